//! The liveops domain: pure types and rules, no IO.
//!
//! - [`ids`]: `PlayerId`, `EventId`, parsed once at the edge (SPEC section 4).
//! - [`event`]: the event envelope, its validation with field names and did-you-mean hints.
//! - [`progression`]: XP per event, levels and level-up rewards (SPEC section 5).
//! - [`fairness`]: hard limits, player and population baselines, the flag window (SPEC section 7).
//! - [`window`]: leaderboard windows and periods in a time zone (SPEC section 6).
//! - [`signing`]: HMAC-SHA256 request signatures and reward receipts (SPEC sections 4, 5).
//! - [`keys`]: the [`Secret`](keys::Secret) wrapper, `HMAC_KEYS` and the dev secret file rules,
//!   shared by the server and the CLI (SPEC section 3).
//! - [`clock`]: the injected clock, so calendar windows and expiries are testable.

pub mod clock;
pub mod event;
pub mod fairness;
pub mod ids;
pub mod keys;
pub mod progression;
pub mod signing;
pub mod window;

pub use clock::{Clock, ManualClock, SystemClock};
pub use event::{Event, EventKind, EventType, Payload, ValidationError};
pub use ids::{EventId, PlayerId};
