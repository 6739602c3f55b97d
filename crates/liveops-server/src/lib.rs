//! Server. Being written.
