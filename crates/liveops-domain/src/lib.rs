//! The liveops domain: pure types and rules, no IO.
//!
//! - [`ids`]: `PlayerId`, `EventId`, parsed once at the edge (`docs/api.md`).
//! - [`event`]: the event envelope, its validation with field names and did-you-mean hints.
//! - [`progression`]: XP per event, levels and level-up rewards (`docs/api.md`).
//! - [`fairness`]: hard limits, player and population baselines, the flag window (`docs/fairness.md`).
//! - [`window`]: leaderboard windows and periods in a time zone (`docs/api.md`).
//! - [`signing`]: HMAC-SHA256 request signatures and reward receipts (`docs/api.md`).
//! - [`keys`]: the [`Secret`](keys::Secret) wrapper, `HMAC_KEYS` and the dev secret file rules,
//!   shared by the server and the CLI (`.env.example`).
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
