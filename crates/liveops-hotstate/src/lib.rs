//! Hot state. Being written.
