//! Client. Being written.
