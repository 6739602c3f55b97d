pub mod loadgen;
pub mod send;
pub mod serve;
pub mod sign;
