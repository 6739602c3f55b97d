//! Store. Being written.
