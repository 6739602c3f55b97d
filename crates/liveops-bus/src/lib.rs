//! The durable event bus of a scaled-out deployment (`docs/operations.md`): NATS
//! JetStream as the event log, shared by every gateway process.
//!
//! - [`NatsEventLog`] ([`log`](crate::log)): implements [`liveops_store::EventLog`] on one
//!   stream per namespace (`<namespace>_events`, subject `<namespace>.events`). An append
//!   returns after JetStream acknowledged it; the stream sequence is the log's `seq`; the
//!   `eventId` is the message id JetStream deduplicates on.
//! - [`RoleConsumer`] ([`consumer`](crate::consumer)): a role's durable pull consumer
//!   (`<namespace>_<role>`), explicit acks after the effect commits, repositioned at the role's
//!   committed cursor when a process takes the role over.
//! - [`codec`]: the versioned JSON record of one event in the stream.
//! - [`BusError`]: what can go wrong, convertible into [`liveops_store::StoreError`]
//!   (`Unavailable` for everything transient).
//! - [`testing`]: test support (unique namespaces cleaned up after, a private `nats-server`
//!   that can be stopped and started again, the engine-missing rule). Not for production use.

pub mod codec;
mod consumer;
mod error;
mod feed;
mod log;
mod options;
pub mod testing;

pub use consumer::{Delivery, RoleConsumer, RoleConsumerState, RoleOptions};
pub use error::BusError;
pub use feed::RoleFeed;
pub use log::{NatsEventLog, NatsOptions};
