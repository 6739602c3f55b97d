//! [`NatsEventLog`]: a JetStream stream as the durable, totally ordered event log.
//!
//! One stream per deployment namespace: `<namespace>_events`, bound to the single subject
//! `<namespace>.events` (stream names cannot hold dots, subjects use them as separators, hence
//! the two spellings). Every gateway process publishes there; the stream sequence JetStream
//! assigns is the log's `seq`, one total order across all gateways.
//!
//! Durability: an append returns only after JetStream acknowledged every event (the PubAck
//! means the message is stored, on a quorum of replicas when the stream is replicated), so the
//! gateway's 202 is never ahead of the log. File storage survives a server restart; note that
//! nats-server flushes its files to the OS at once but fsyncs only periodically (`sync_interval`,
//! 2 min by default), so a killed server process loses nothing while a power loss of a
//! single-replica server can: run replicas 3 (or `sync_interval: always`) where that matters.
//!
//! Deduplication: each message carries `Nats-Msg-Id = eventId`; JetStream drops a repeat within
//! the stream's duplicate window ([`NatsOptions::duplicate_window`]) and says so in the PubAck,
//! which becomes [`Appended::Duplicate`]. A repeat *after* the window is stored again under a new
//! seq: the API's "a repeated eventId is a duplicate forever" is then kept by the consumer that
//! records the log into the system of record (unique `eventId` there), not by the bus.
//!
//! Retention: limits-based by age ([`NatsOptions::max_age`], 7 days by default). The stream is
//! the bus, not the system of record: fairness copies every event into PostgreSQL, so the stream
//! only has to hold events until every role has consumed them, plus a margin for a consumer that
//! was down or is replaying. Not work-queue or interest retention: several roles and ad-hoc
//! readers ([`EventLog::read_after`]) read the same messages, and a reader may start from any
//! seq still inside the window.
//!
//! Outages: async-nats reconnects by itself (backoff capped at
//! [`NatsOptions::max_reconnect_delay`]). While the connection is down an append fails at once
//! with [`StoreError::Unavailable`], and an append whose ack does not come within
//! [`NatsOptions::request_timeout`] fails the same way. Such a failure is ambiguous for messages
//! already handed to the connection: they may still be stored (the caller's retry with the same
//! eventId is then a duplicate within the window). At start-up NATS must be reachable:
//! [`NatsEventLog::connect`] fails fast with [`BusError::Connect`] instead of waiting.
//!
//! One file of a little over 600 lines: the append, the reads and the head follower share the
//! connection state and its invariants (which seq is committed, which readers may be reused),
//! and read best side by side.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::connection::State;
use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy, ReplayPolicy};
use async_nats::jetstream::context::{Publish, PublishAckFuture, PublishErrorKind};
use async_nats::jetstream::stream::{self, DiscardPolicy, RetentionPolicy, StorageType};
use async_nats::jetstream::{self, Context};
use async_trait::async_trait;
use futures::StreamExt;
use liveops_store::{Appended, CommittedBatch, EventLog, LoggedEvent, NewEvent, StoreError};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

use crate::options::check_name;
pub use crate::options::NatsOptions;
use crate::{codec, BusError};

/// Committed batches buffered for a slow in-process consumer before it falls back to the log.
const TAIL_DEPTH: usize = 4096;
/// Idle read positions kept for [`EventLog::read_after`] (one per concurrent reader is enough).
const MAX_READERS: usize = 8;
/// The server forgets a reader's ephemeral consumer after this long without a pull; we stop
/// reusing it well before that, so a reused reader is normally still alive.
const READER_INACTIVE: Duration = Duration::from_secs(30);
const READER_REUSE: Duration = Duration::from_secs(20);
/// The most messages one pull request asks for; a larger `limit` returns this many (callers
/// page on, as "at most `limit`" allows).
pub(crate) const MAX_PULL: usize = 10_000;
/// Pauses before re-reading when a read came back empty below the known head (see
/// [`NatsEventLog::read_events`]); the stored messages are normally delivered on the next try.
pub(crate) const EMPTY_READ_PAUSES_MS: [u64; 4] = [5, 20, 50, 100];

/// The JetStream event log. Cheap to clone; the clones share one connection.
#[derive(Clone)]
pub struct NatsEventLog {
    inner: Arc<Inner>,
}

struct Inner {
    /// The connection, re-established by async-nats after a loss; lives as long as the log.
    client: async_nats::Client,
    /// JetStream API over `client`, with `request_timeout` on every request and PubAck.
    js: Context,
    namespace: String,
    /// `<namespace>_events`.
    stream: String,
    /// `<namespace>.events`.
    subject: async_nats::Subject,
    opts: NatsOptions,
    /// The highest stream sequence known committed: raised by own PubAcks at once and by the
    /// poller for other processes' appends. Only ever moves up.
    head: watch::Sender<u64>,
    /// Runs of own appends with contiguous seqs, for in-process consumers.
    tail: broadcast::Sender<CommittedBatch>,
    /// Idle read positions, each an ephemeral consumer parked at the seq it delivers next.
    readers: Mutex<Vec<Reader>>,
    /// The head poller; aborted when the last clone of the log is dropped.
    poller: JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.poller.abort();
    }
}

/// A read position of [`EventLog::read_after`]: an ephemeral, unacknowledged pull consumer that
/// delivers the stream from `next` on. Reading on from where the last read stopped costs one
/// pull request, not a consumer creation.
struct Reader {
    consumer: jetstream::consumer::PullConsumer,
    /// The stream sequence the consumer delivers next.
    next: u64,
    last_used: Instant,
}

impl NatsEventLog {
    /// Connects, then gets or creates the namespace's stream (and brings its duplicate window,
    /// retention and replicas to `opts` if it exists with others). Fails fast, with
    /// [`BusError::Connect`], when NATS does not answer within `opts.connect_timeout`.
    pub async fn connect(url: &str, namespace: &str, opts: NatsOptions) -> Result<Self, BusError> {
        check_name("namespace", namespace)?;
        opts.validate()?;
        let cap = opts.max_reconnect_delay;
        let shown_url = redact(url);
        let client = async_nats::ConnectOptions::new()
            .name(format!("liveops-{namespace}"))
            .connection_timeout(opts.connect_timeout)
            .request_timeout(Some(opts.request_timeout))
            .reconnect_delay_callback(move |attempts| reconnect_delay(attempts, cap))
            .event_callback(|event| async move {
                match event {
                    async_nats::Event::Connected => tracing::info!("nats connected"),
                    async_nats::Event::Disconnected => tracing::warn!("nats disconnected"),
                    other => tracing::debug!(event = %other, "nats event"),
                }
            })
            .connect(url)
            .await
            .map_err(|e| BusError::Connect {
                url: shown_url.clone(),
                reason: e.to_string(),
            })?;
        let mut js = jetstream::new(client.clone());
        js.set_timeout(opts.request_timeout);
        let stream = format!("{namespace}_events");
        let subject = format!("{namespace}.events");
        let last = ensure_stream(&js, &stream, &subject, &opts).await?;

        let (head, _) = watch::channel(last);
        let poller = tokio::spawn(poll_head(
            js.clone(),
            stream.clone(),
            head.clone(),
            opts.head_poll_interval,
        ));
        let (tail, _) = broadcast::channel(TAIL_DEPTH);
        tracing::info!(url = %shown_url, %stream, last_seq = last, "nats event log ready");
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                js,
                namespace: namespace.to_owned(),
                stream,
                subject: subject.into(),
                opts,
                head,
                tail,
                readers: Mutex::new(Vec::new()),
                poller,
            }),
        })
    }

    pub fn namespace(&self) -> &str {
        &self.inner.namespace
    }

    /// `<namespace>_events`.
    pub fn stream_name(&self) -> &str {
        &self.inner.stream
    }

    /// `<namespace>.events`.
    pub fn subject(&self) -> &str {
        self.inner.subject.as_str()
    }

    pub fn options(&self) -> &NatsOptions {
        &self.inner.opts
    }

    /// The JetStream context (for role consumers and test support).
    pub(crate) fn jetstream(&self) -> &Context {
        &self.inner.js
    }

    pub(crate) fn client(&self) -> &async_nats::Client {
        &self.inner.client
    }

    pub(crate) fn ensure_connected(&self) -> Result<(), BusError> {
        match self.inner.client.connection_state() {
            State::Connected => Ok(()),
            state => Err(BusError::Unavailable(format!(
                "not connected to nats ({state:?}); reconnecting"
            ))),
        }
    }

    /// The stream's last sequence, asked of the server now.
    pub async fn last_seq(&self) -> Result<u64, BusError> {
        Ok(self.seq_range().await?.1)
    }

    /// The first and last sequence still in the stream, asked of the server now (an empty
    /// stream reports 0 or, once messages were removed, last + 1 as its first).
    pub async fn seq_range(&self) -> Result<(u64, u64), BusError> {
        let stream = self
            .inner
            .js
            .get_stream_no_info(&self.inner.stream)
            .await
            .map_err(|e| BusError::JetStream(e.to_string()))?;
        let info = stream
            .get_info()
            .await
            .map_err(|e| BusError::unavailable("stream info", e))?;
        self.raise_head(info.state.last_sequence);
        Ok((info.state.first_sequence, info.state.last_sequence))
    }

    /// Publishes the batch and awaits every PubAck together (one round trip for the batch, not
    /// one per event). The messages go out in batch order on one connection, so their seqs
    /// increase in that order (other gateways' events may fall in between).
    pub async fn append_events(&self, events: Vec<NewEvent>) -> Result<Vec<Appended>, BusError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        self.ensure_connected()?;
        // Encode everything before sending anything: an encoding failure publishes nothing.
        // A repeat of an eventId inside the batch is a duplicate of its first copy, as in the
        // SQLite log; it is not sent, so the answer does not depend on server-side timing.
        let mut seen = HashSet::with_capacity(events.len());
        let mut encoded = Vec::with_capacity(events.len());
        for (i, e) in events.iter().enumerate() {
            if seen.insert(e.event.event_id.as_str()) {
                let (payload, xp) = codec::encode(e)?;
                encoded.push((i, payload, xp));
            }
        }
        let mut acks: Vec<(usize, i64, PublishAckFuture)> = Vec::with_capacity(encoded.len());
        for (i, payload, xp) in encoded {
            let publish = Publish::build()
                .payload(payload)
                .message_id(events[i].event.event_id.as_str());
            let ack = self
                .inner
                .js
                .send_publish(self.inner.subject.clone(), publish)
                .await
                .map_err(|e| BusError::unavailable("publish", e))?;
            acks.push((i, xp, ack));
        }
        let waits = acks
            .into_iter()
            .map(|(i, xp, ack)| async move { (i, xp, ack.await) });
        let results = futures::future::join_all(waits).await;

        let mut out = vec![Appended::Duplicate; events.len()];
        let mut new: Vec<(usize, u64, i64)> = Vec::new();
        let mut failure = None;
        for (i, xp, r) in results {
            match r {
                Ok(ack) if ack.duplicate => out[i] = Appended::Duplicate,
                Ok(ack) => {
                    out[i] = Appended::New { seq: ack.sequence };
                    new.push((i, ack.sequence, xp));
                }
                Err(e) => {
                    failure.get_or_insert_with(|| match e.kind() {
                        PublishErrorKind::TimedOut => BusError::Unavailable(format!(
                            "no ack from jetstream within {:?}",
                            self.inner.opts.request_timeout
                        )),
                        PublishErrorKind::StreamNotFound => BusError::JetStream(format!(
                            "no stream listens on {} (deleted?)",
                            self.inner.subject
                        )),
                        _ => BusError::unavailable("publish ack", e),
                    });
                }
            }
        }
        // Whatever was acknowledged is in the log even if the call as a whole fails: tell
        // in-process consumers now rather than making them find it on the next poll.
        self.publish_tail(events, new);
        match failure {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// Sends own committed events to the tail as runs of contiguous seqs, then raises the head
    /// (batch first, like the SQLite log: a consumer woken by the head finds it queued). A run
    /// is exact: `(prev_head, head]` holds these events and no other process's.
    fn publish_tail(&self, events: Vec<NewEvent>, mut new: Vec<(usize, u64, i64)>) {
        if new.is_empty() {
            return;
        }
        new.sort_by_key(|&(_, seq, _)| seq);
        let top = new.last().map(|&(_, seq, _)| seq).unwrap_or(0);
        if self.inner.tail.receiver_count() > 0 {
            let mut slots: Vec<Option<NewEvent>> = events.into_iter().map(Some).collect();
            let mut run: Vec<LoggedEvent> = Vec::new();
            for (i, seq, xp) in new {
                if run.last().is_some_and(|l| l.seq + 1 != seq) {
                    self.send_run(std::mem::take(&mut run));
                }
                if let Some(e) = slots[i].take() {
                    run.push(codec::logged(seq, e, xp));
                }
            }
            self.send_run(run);
        }
        self.raise_head(top);
    }

    fn send_run(&self, run: Vec<LoggedEvent>) {
        if let (Some(first), Some(last)) = (run.first(), run.last()) {
            let batch = CommittedBatch {
                prev_head: first.seq - 1,
                head: last.seq,
                events: Arc::new(run),
            };
            // No receiver is fine: consumers read the log instead.
            let _ = self.inner.tail.send(batch);
        }
    }

    fn raise_head(&self, seq: u64) {
        self.inner.head.send_if_modified(|h| {
            let up = seq > *h;
            if up {
                *h = seq;
            }
            up
        });
    }

    /// Events with `seq > after`, at most `limit`, in order: one pull request from a reader
    /// parked at `after + 1` (a new ephemeral consumer if none is).
    ///
    /// Never an empty answer while the stream holds events past `after`: JetStream (seen on
    /// nats-server 2.9 under load, found by the scale-out fault test) can answer a no-wait pull
    /// with "no messages" although messages past the consumer's position are already stored
    /// and counted in the stream's last sequence. Consumers take an empty read below the head
    /// as "nothing up to the head" (the SQL logs' erased gaps) and move their cursor past it,
    /// so passing that answer on would skip acknowledged events for good. An empty answer
    /// below the known head is therefore retried briefly, and then reported as unavailable
    /// (the caller retries later) unless the stream really holds nothing up to the head any
    /// more (expired by age).
    pub async fn read_events(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<LoggedEvent>, BusError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let limit = limit.min(MAX_PULL);
        for pause_ms in EMPTY_READ_PAUSES_MS {
            let events = self.read_once(after, limit).await?;
            if !events.is_empty() || *self.inner.head.borrow() <= after {
                return Ok(events);
            }
            tokio::time::sleep(Duration::from_millis(pause_ms)).await;
        }
        let events = self.read_once(after, limit).await?;
        let head = *self.inner.head.borrow();
        if !events.is_empty() || head <= after || self.seq_range().await?.0 > head {
            return Ok(events);
        }
        Err(BusError::Unavailable(format!(
            "the stream holds events up to {head} but delivered none after {after}; retry"
        )))
    }

    async fn read_once(&self, after: u64, limit: usize) -> Result<Vec<LoggedEvent>, BusError> {
        let start = after.saturating_add(1);
        let mut reader = match self.take_reader(start) {
            Some(r) => r,
            None => self.new_reader(start).await?,
        };
        // A parked reader may have been forgotten by the server (idle, restart): one retry with
        // a fresh reader. A second failure is the server's, and is reported.
        let mut retried = false;
        loop {
            match self.fetch(&mut reader, after, limit).await {
                Ok(events) => {
                    self.park_reader(reader);
                    return Ok(events);
                }
                Err(e @ BusError::Decode { .. }) => {
                    self.drop_reader(reader);
                    return Err(e);
                }
                Err(e) => {
                    self.drop_reader(reader);
                    if retried {
                        return Err(e);
                    }
                    tracing::debug!(error = %e, "read_after: retrying with a fresh reader");
                    retried = true;
                    reader = self.new_reader(start).await?;
                }
            }
        }
    }

    async fn fetch(
        &self,
        reader: &mut Reader,
        after: u64,
        limit: usize,
    ) -> Result<Vec<LoggedEvent>, BusError> {
        self.ensure_connected()?;
        let timeout = self.inner.opts.request_timeout;
        let collect = async {
            let mut batch = reader
                .consumer
                .fetch()
                .max_messages(limit)
                .messages()
                .await
                .map_err(|e| BusError::unavailable("fetch", e))?;
            let mut out = Vec::new();
            while let Some(msg) = batch.next().await {
                let msg = msg.map_err(|e| BusError::unavailable("fetch", e))?;
                let seq = msg
                    .info()
                    .map_err(|e| BusError::JetStream(format!("message without metadata: {e}")))?
                    .stream_sequence;
                if seq > after {
                    out.push(codec::decode(seq, &msg.payload)?);
                }
            }
            Ok::<_, BusError>(out)
        };
        let out = tokio::time::timeout(timeout, collect).await.map_err(|_| {
            BusError::Unavailable(format!("read not answered within {timeout:?}"))
        })??;
        if let Some(last) = out.last() {
            reader.next = last.seq + 1;
            self.raise_head(last.seq);
        }
        reader.last_used = Instant::now();
        Ok(out)
    }

    fn take_reader(&self, start: u64) -> Option<Reader> {
        let mut readers = self.inner.readers.lock().unwrap_or_else(|p| p.into_inner());
        let i = readers
            .iter()
            .position(|r| r.next == start && r.last_used.elapsed() < READER_REUSE)?;
        Some(readers.swap_remove(i))
    }

    fn park_reader(&self, reader: Reader) {
        let evicted = {
            let mut readers = self.inner.readers.lock().unwrap_or_else(|p| p.into_inner());
            readers.push(reader);
            readers.retain(|r| r.last_used.elapsed() < READER_REUSE);
            if readers.len() > MAX_READERS {
                Some(readers.remove(0))
            } else {
                None
            }
        };
        if let Some(r) = evicted {
            self.drop_reader(r);
        }
    }

    /// Deletes a reader's consumer in the background; if that fails the server still forgets
    /// it after `READER_INACTIVE`.
    fn drop_reader(&self, reader: Reader) {
        let js = self.inner.js.clone();
        let stream = self.inner.stream.clone();
        let name = reader.consumer.cached_info().name.clone();
        tokio::spawn(async move {
            let _ = js.delete_consumer_from_stream(&name, &stream).await;
        });
    }

    async fn new_reader(&self, start: u64) -> Result<Reader, BusError> {
        self.ensure_connected()?;
        let config = pull::Config {
            description: Some("liveops read_after".into()),
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: start,
            },
            ack_policy: AckPolicy::None,
            replay_policy: ReplayPolicy::Instant,
            inactive_threshold: READER_INACTIVE,
            memory_storage: true,
            num_replicas: 1,
            ..Default::default()
        };
        let consumer = self
            .inner
            .js
            .create_consumer_on_stream(config, &self.inner.stream)
            .await
            .map_err(|e| BusError::unavailable("create reader", e))?;
        Ok(Reader {
            consumer,
            next: start,
            last_used: Instant::now(),
        })
    }
}

#[async_trait]
impl EventLog for NatsEventLog {
    async fn append(&self, events: Vec<NewEvent>) -> Result<Vec<Appended>, StoreError> {
        Ok(self.append_events(events).await?)
    }

    async fn read_after(&self, after: u64, limit: usize) -> Result<Vec<LoggedEvent>, StoreError> {
        Ok(self.read_events(after, limit).await?)
    }

    fn committed(&self) -> watch::Receiver<u64> {
        self.inner.head.subscribe()
    }

    fn tail(&self) -> Option<broadcast::Receiver<CommittedBatch>> {
        Some(self.inner.tail.subscribe())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.ensure_connected()?;
        self.last_seq().await?;
        Ok(())
    }
}

/// Gets or creates the stream and returns its last sequence. An existing stream keeps its
/// storage (JetStream cannot change it) but takes the duplicate window, retention and replicas
/// asked for, so `IDEMP_TTL` changes reach it on the next start.
async fn ensure_stream(
    js: &Context,
    name: &str,
    subject: &str,
    opts: &NatsOptions,
) -> Result<u64, BusError> {
    let want = stream::Config {
        name: name.to_owned(),
        description: Some("liveops event log: one message per accepted event".into()),
        subjects: vec![subject.to_owned()],
        storage: StorageType::File,
        retention: RetentionPolicy::Limits,
        discard: DiscardPolicy::Old,
        max_age: opts.max_age,
        duplicate_window: opts.duplicate_window,
        num_replicas: opts.replicas,
        allow_direct: true,
        ..Default::default()
    };
    let stream = js
        .get_or_create_stream(want.clone())
        .await
        .map_err(|e| BusError::JetStream(format!("get or create stream {name}: {e}")))?;
    let info = stream.cached_info();
    let have = &info.config;
    if have.storage != StorageType::File {
        tracing::warn!(stream = name, storage = ?have.storage, "event stream is not file-backed");
    }
    if have.duplicate_window != want.duplicate_window
        || have.max_age != want.max_age
        || have.num_replicas != want.num_replicas
        || have.subjects != want.subjects
    {
        let mut update = have.clone();
        update.duplicate_window = want.duplicate_window;
        update.max_age = want.max_age;
        update.num_replicas = want.num_replicas;
        update.subjects = want.subjects;
        js.update_stream(update)
            .await
            .map_err(|e| BusError::JetStream(format!("update stream {name}: {e}")))?;
        tracing::info!(stream = name, "event stream settings updated");
    }
    Ok(info.state.last_sequence)
}

/// Keeps [`Inner::head`] up with other processes' appends. A failed poll (NATS down) keeps the
/// last value: the head never moves back, and consumers simply see nothing new meanwhile.
async fn poll_head(js: Context, stream: String, head: watch::Sender<u64>, every: Duration) {
    let Ok(handle) = js.get_stream_no_info(&stream).await else {
        // Only an invalid name fails here, and `connect` checked it.
        return;
    };
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match handle.get_info().await {
            Ok(info) => {
                let last = info.state.last_sequence;
                head.send_if_modified(|h| {
                    let up = last > *h;
                    if up {
                        *h = last;
                    }
                    up
                });
            }
            Err(e) => tracing::debug!(error = %e, "head poll failed"),
        }
    }
}

/// 0 for the first retry, then doubling from 100 ms up to `cap`.
fn reconnect_delay(attempts: usize, cap: Duration) -> Duration {
    if attempts <= 1 {
        return Duration::ZERO;
    }
    let exp = (attempts - 2).min(16) as u32;
    Duration::from_millis(100u64.saturating_mul(1 << exp)).min(cap)
}

/// The URL without credentials, for logs and errors.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***@{}", &url[..scheme], &url[at + 1..])
        }
        (None, Some(at)) => format!("***@{}", &url[at + 1..]),
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_dots_or_wildcards_are_refused() {
        for bad in ["", "a.b", "a*", "a>", "a b", &"x".repeat(65)] {
            assert!(check_name("namespace", bad).is_err(), "{bad:?}");
        }
        for good in ["liveops", "t_1-x", "A9"] {
            assert!(check_name("namespace", good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn credentials_never_reach_the_logs() {
        assert_eq!(redact("nats://u:p@h:4222"), "nats://***@h:4222");
        assert_eq!(redact("nats://h:4222"), "nats://h:4222");
        assert_eq!(redact("tok@h"), "***@h");
    }

    #[test]
    fn reconnect_backoff_is_capped() {
        let cap = Duration::from_secs(1);
        assert_eq!(reconnect_delay(1, cap), Duration::ZERO);
        assert_eq!(reconnect_delay(2, cap), Duration::from_millis(100));
        assert_eq!(reconnect_delay(4, cap), Duration::from_millis(400));
        assert_eq!(reconnect_delay(100, cap), cap);
    }

    #[test]
    fn a_duplicate_window_longer_than_retention_is_refused() {
        let opts = NatsOptions {
            duplicate_window: Duration::from_secs(10),
            max_age: Duration::from_secs(5),
            ..Default::default()
        };
        assert!(matches!(opts.validate(), Err(BusError::InvalidOptions(_))));
        assert!(NatsOptions::default().validate().is_ok());
    }
}
