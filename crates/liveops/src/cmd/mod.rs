pub mod boards;
pub mod migrate;
pub mod rebuild;
pub mod send;
pub mod serve;
pub mod sign;
pub mod snapshot;
pub mod verify_receipt;
