//! [`RoleConsumer`]: a role's durable pull consumer on the event stream.
//!
//! One durable consumer per role, named `<namespace>_<role>`, with cumulative acks (`AckPolicy::All`:
//! acking a message acks every earlier one, so a batch costs one ack, not one per event) and unlimited
//! deliveries (a message is never dropped after N attempts: an event must not vanish because a
//! database was down for a while).
//!
//! The contract between the bus and a role (the caller):
//! - The role's cursor (the last seq whose effect is committed) lives in the system of record,
//!   moved in the same transaction as the effects. The bus position is only a hint.
//! - A message is acked only after its effect (and the cursor) committed. A crash in between
//!   leaves it unacked, so it is delivered again after `ack_wait`.
//! - A delivery with `seq <= cursor` is a redelivery of something already applied: the caller
//!   acks it and skips it. Together these make every effect happen exactly once.
//! - [`RoleConsumer::open`] is called when a process takes the role over, with the committed
//!   cursor: the consumer delivers from `cursor + 1`. A consumer that is exactly there (its ack
//!   floor is the cursor) is kept, with its in-flight messages, which come back as redeliveries
//!   after `ack_wait`; otherwise it is deleted and created anew at `cursor + 1`, so nothing is
//!   skipped (ack floor ahead of the cursor: acks outran commits, e.g. a restored database) and
//!   nothing applied is fetched again for nothing (ack floor behind the cursor).
//! - Repositioning deletes the durable, which cuts off any other process pulling from it: a role
//!   consumer has one owner at a time (how ownership is decided is the role's business).

use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy, PullConsumer, ReplayPolicy};
use async_nats::jetstream::message::Acker;
use async_nats::jetstream::stream::{ConsumerError, ConsumerErrorKind};
use async_nats::jetstream::ErrorCode;
use futures::StreamExt;
use liveops_store::LoggedEvent;

use crate::log::MAX_PULL;
use crate::options::check_name;
use crate::{codec, BusError, NatsEventLog};

/// How a role consumer is created. [`Default`] gives the documented defaults.
#[derive(Debug, Clone)]
pub struct RoleOptions {
    /// An unacked delivery comes again after this long. It bounds how long a takeover waits
    /// for the messages a dead owner had in flight, and must exceed the time to commit a
    /// batch's effects (a too-early redelivery is harmless, only wasted). Default 10 s.
    pub ack_wait: Duration,
    /// Deliveries in flight (unacked) at most; a fetch gets no more until some are acked.
    /// Default 20 000, above the pipeline's batch of 2 000.
    pub max_ack_pending: i64,
}

impl Default for RoleOptions {
    fn default() -> Self {
        Self {
            ack_wait: Duration::from_secs(10),
            max_ack_pending: 20_000,
        }
    }
}

/// A role's durable consumer. See the module documentation for the ack contract.
pub struct RoleConsumer {
    log: NatsEventLog,
    /// `<namespace>_<role>`.
    name: String,
    consumer: PullConsumer,
}

/// The server's view of a role consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleConsumerState {
    /// Every seq up to this one is acked.
    pub ack_floor: u64,
    /// The highest seq delivered so far.
    pub delivered: u64,
    /// Messages not yet delivered.
    pub num_pending: u64,
    /// Delivered, not yet acked.
    pub num_ack_pending: usize,
}

/// One delivered event, to be acked once its effect is committed.
pub struct Delivery {
    /// The event, with `seq` = its stream sequence.
    pub event: LoggedEvent,
    /// 1 for the first delivery, more for a redelivery.
    pub delivery_count: u64,
    acker: Acker,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("seq", &self.event.seq)
            .field("event_id", &self.event.event.event_id)
            .field("delivery_count", &self.delivery_count)
            .finish()
    }
}

impl Delivery {
    pub fn seq(&self) -> u64 {
        self.event.seq
    }

    /// Delivered before (and not acked in time, or the ack was lost).
    pub fn is_redelivery(&self) -> bool {
        self.delivery_count > 1
    }
}

impl RoleConsumer {
    /// Takes the role over at `cursor`: the consumer delivers from `cursor + 1` (see the module
    /// documentation for when the existing durable is kept). Fails with
    /// [`BusError::CursorAhead`] when the cursor is past the stream's last sequence.
    pub async fn open(
        log: &NatsEventLog,
        role: &str,
        cursor: u64,
        opts: RoleOptions,
    ) -> Result<Self, BusError> {
        check_name("role", role)?;
        if opts.ack_wait.is_zero() || opts.max_ack_pending < 1 {
            return Err(BusError::InvalidOptions(
                "ack wait and max ack pending must be > 0".into(),
            ));
        }
        log.ensure_connected()?;
        let name = format!("{}_{role}", log.namespace());
        let (first, last) = log.seq_range().await?;
        if cursor > last {
            return Err(BusError::CursorAhead {
                consumer: name,
                cursor,
                last,
            });
        }
        if cursor + 1 < first {
            // Retention (max_age) removed events this role never consumed: they cannot come
            // from the stream any more. Said loudly; the role goes on from what is left.
            tracing::error!(
                consumer = %name,
                cursor,
                first_seq = first,
                "events aged out of the stream before this role consumed them"
            );
        }
        let js = log.jetstream();
        let stream = log.stream_name();
        let existing: Option<PullConsumer> = match js.get_consumer_from_stream(&name, stream).await
        {
            Ok(c) => Some(c),
            Err(e) if is_not_found(&e) => None,
            Err(e) => return Err(BusError::unavailable("consumer info", e)),
        };
        if let Some(c) = existing {
            let info = c.cached_info();
            let cfg = &info.config;
            if info.ack_floor.stream_sequence == cursor
                && cfg.ack_policy == AckPolicy::All
                && cfg.ack_wait == opts.ack_wait
                && cfg.max_ack_pending == opts.max_ack_pending
            {
                return Ok(Self {
                    log: log.clone(),
                    name,
                    consumer: c,
                });
            }
            tracing::info!(
                consumer = %name,
                ack_floor = info.ack_floor.stream_sequence,
                cursor,
                "repositioning role consumer at the committed cursor"
            );
        }
        Ok(Self {
            consumer: create(log, &name, cursor, &opts).await?,
            log: log.clone(),
            name,
        })
    }

    /// Deletes the durable and creates it anew at `cursor + 1`, whatever its state.
    pub async fn reposition(&mut self, cursor: u64, opts: RoleOptions) -> Result<(), BusError> {
        self.consumer = create(&self.log, &self.name, cursor, &opts).await?;
        Ok(())
    }

    /// `<namespace>_<role>`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Up to `max` (at most 10 000) deliveries, in stream order for first deliveries
    /// (redeliveries come when their `ack_wait` ends). Returns at once with what is there; when nothing is, waits up to
    /// `wait` for the first message and returns as soon as it arrives (with whatever followed
    /// it), so an idle role neither spins nor adds latency.
    pub async fn fetch(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>, BusError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let max = max.min(MAX_PULL);
        self.log.ensure_connected()?;
        let mut out = self.pull(max, None).await?;
        if out.is_empty() && !wait.is_zero() {
            out = self.pull(1, Some(wait)).await?;
            if !out.is_empty() && max > 1 {
                out.extend(self.pull(max - 1, None).await?);
            }
        }
        Ok(out)
    }

    /// Acks deliveries whose effects are committed, and waits until the ack is on the wire.
    /// The acks are cumulative, so only the highest sequence is sent: call it with a prefix of
    /// the stream (everything up to a committed cursor), never with a message whose
    /// predecessors are not committed. A lost ack only means a redelivery, which the caller
    /// skips by its cursor.
    pub async fn ack(&self, deliveries: &[Delivery]) -> Result<(), BusError> {
        if let Some(d) = deliveries.iter().max_by_key(|d| d.seq()) {
            d.acker
                .ack()
                .await
                .map_err(|e| BusError::unavailable("ack", e))?;
        }
        let timeout = self.log.options().request_timeout;
        tokio::time::timeout(timeout, self.log.client().flush())
            .await
            .map_err(|_| BusError::Unavailable(format!("ack flush not done within {timeout:?}")))?
            .map_err(|e| BusError::unavailable("ack flush", e))
    }

    /// The consumer's position as the server sees it.
    pub async fn state(&mut self) -> Result<RoleConsumerState, BusError> {
        let info = self
            .consumer
            .info()
            .await
            .map_err(|e| BusError::unavailable("consumer info", e))?;
        Ok(RoleConsumerState {
            ack_floor: info.ack_floor.stream_sequence,
            delivered: info.delivered.stream_sequence,
            num_pending: info.num_pending,
            num_ack_pending: info.num_ack_pending,
        })
    }

    /// Removes the durable from the server (the role is retired, or a test ends).
    pub async fn delete(self) -> Result<(), BusError> {
        self.log
            .jetstream()
            .delete_consumer_from_stream(&self.name, self.log.stream_name())
            .await
            .map(|_| ())
            .map_err(|e| BusError::unavailable("delete consumer", e))
    }

    /// One pull request: `no_wait` when `expires` is `None` (what is there now), else held by
    /// the server until a message arrives or `expires` ends.
    async fn pull(&self, n: usize, expires: Option<Duration>) -> Result<Vec<Delivery>, BusError> {
        let request_timeout = self.log.options().request_timeout;
        let collect = async {
            let mut batch = match expires {
                None => self.consumer.fetch().max_messages(n).messages().await,
                Some(wait) => {
                    self.consumer
                        .batch()
                        .max_messages(n)
                        .expires(wait)
                        .messages()
                        .await
                }
            }
            .map_err(|e| BusError::unavailable("pull", e))?;
            let mut out = Vec::new();
            while let Some(msg) = batch.next().await {
                let msg = msg.map_err(|e| BusError::unavailable("pull", e))?;
                let info = msg
                    .info()
                    .map_err(|e| BusError::JetStream(format!("message without metadata: {e}")))?;
                let (seq, count) = (info.stream_sequence, info.delivered.max(1) as u64);
                let (msg, acker) = msg.split();
                out.push(Delivery {
                    event: codec::decode(seq, &msg.payload)?,
                    delivery_count: count,
                    acker,
                });
            }
            Ok::<_, BusError>(out)
        };
        let limit = expires.unwrap_or_default() + request_timeout;
        tokio::time::timeout(limit, collect)
            .await
            .map_err(|_| BusError::Unavailable(format!("pull not answered within {limit:?}")))?
    }
}

/// Deletes `name` if it exists and creates it delivering from `cursor + 1`.
async fn create(
    log: &NatsEventLog,
    name: &str,
    cursor: u64,
    opts: &RoleOptions,
) -> Result<PullConsumer, BusError> {
    let js = log.jetstream();
    let stream = log.stream_name();
    match js.delete_consumer_from_stream(name, stream).await {
        Ok(_) => {}
        Err(e) if is_not_found(&e) => {}
        Err(e) => return Err(BusError::unavailable("delete consumer", e)),
    }
    let config = pull::Config {
        durable_name: Some(name.to_owned()),
        description: Some("liveops role consumer".into()),
        deliver_policy: DeliverPolicy::ByStartSequence {
            start_sequence: cursor + 1,
        },
        ack_policy: AckPolicy::All,
        ack_wait: opts.ack_wait,
        max_deliver: -1,
        max_ack_pending: opts.max_ack_pending,
        replay_policy: ReplayPolicy::Instant,
        ..Default::default()
    };
    js.create_consumer_on_stream(config, stream)
        .await
        .map_err(|e| BusError::unavailable("create consumer", e))
}

/// Whether JetStream answered "consumer not found", which is an answer, not a fault.
fn is_not_found(e: &ConsumerError) -> bool {
    matches!(e.kind(), ConsumerErrorKind::JetStream(err)
        if err.error_code() == ErrorCode::CONSUMER_NOT_FOUND)
}
