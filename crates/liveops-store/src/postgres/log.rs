//! The event log on PostgreSQL: the group-committing writer task, [`EventLog`], and the
//! JetStream deployment's [`PgStore::record_sequenced`] / [`PgStore::id_lookup`].
//!
//! Group commit: the writer takes whatever commands queued while the previous commit ran and
//! commits them in one transaction, consecutive appends as ONE multi-row insert (arrays through
//! `UNNEST`); a group of appends only is that single statement, which PostgreSQL commits
//! atomically by itself. So under load one round trip and one WAL flush cover hundreds of
//! events, while an idle server still commits a lone event at once. Sequence numbers come from `events_seq`
//! inside that single task, so within the process `seq` order is commit order, which is what
//! lets consumers read "everything after my cursor" without missing a late commit. (Several
//! processes appending to one database would break that; the scaled-out deployment sequences
//! events in JetStream and records them with [`PgStore::record_sequenced`] instead.)
//!
//! A failing group is retried one command per transaction, so one bad command cannot take its
//! neighbours down (PostgreSQL aborts the whole transaction on an error; per-command savepoints
//! would cost a round trip each in the common case where nothing fails). An unreachable engine
//! fails the whole group at once with [`StoreError::Unavailable`].

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use liveops_domain::{Event, PlayerId};
use sqlx::{PgConnection, PgPool};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::{fairness, ms, row_to_logged, seq_bound, Head, PgStore, EVENT_COLUMNS};
use crate::{Appended, CommittedBatch, EventLog, FlagRecord, LoggedEvent, NewEvent, StoreError};

/// The most commands one group commit takes, bounding the latency of the first one.
const MAX_GROUP_CMDS: usize = 2048;
/// The most events one group commit takes (a batch of 500 is never split, only followed).
const MAX_GROUP_EVENTS: usize = 8192;

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// What the writer does, in queue order.
pub(super) enum WriteCmd {
    Append(Vec<NewEvent>, Reply<Vec<Appended>>),
    /// A GDPR erase: ordered with the appends, so an event appended before it is erased and one
    /// appended after it survives, as in the SQLite store.
    Erase(PlayerId, Reply<u64>),
}

enum Op {
    Append(Vec<NewEvent>),
    Erase(PlayerId),
}

enum Answer {
    Append(Reply<Vec<Appended>>),
    Erase(Reply<u64>),
}

enum Outcome {
    Append(Vec<Appended>),
    Erase(u64),
}

impl WriteCmd {
    fn split(self) -> (Op, Answer) {
        match self {
            WriteCmd::Append(events, r) => (Op::Append(events), Answer::Append(r)),
            WriteCmd::Erase(player, r) => (Op::Erase(player), Answer::Erase(r)),
        }
    }

    fn events(&self) -> usize {
        match self {
            WriteCmd::Append(events, _) => events.len(),
            WriteCmd::Erase(..) => 1,
        }
    }
}

pub(super) async fn writer_loop(pool: PgPool, mut rx: mpsc::Receiver<WriteCmd>, head: Arc<Head>) {
    while let Some(first) = rx.recv().await {
        let mut n = first.events();
        let mut cmds = vec![first];
        while cmds.len() < MAX_GROUP_CMDS && n < MAX_GROUP_EVENTS {
            match rx.try_recv() {
                Ok(c) => {
                    n += c.events();
                    cmds.push(c);
                }
                Err(_) => break,
            }
        }
        let (ops, answers): (Vec<Op>, Vec<Answer>) = cmds.into_iter().map(WriteCmd::split).unzip();
        run_group(&pool, &head, ops, answers).await;
    }
}

/// Commits a group and answers each command once the commit is durable (or failed).
async fn run_group(pool: &PgPool, head: &Head, ops: Vec<Op>, answers: Vec<Answer>) {
    let result = commit(pool, head, &ops).await;
    match result {
        Ok(outcomes) => finish(pool, head, ops, answers, outcomes).await,
        Err(e) if ops.len() > 1 && !e.is_unavailable() => {
            head.in_doubt.store(true, Ordering::SeqCst);
            tracing::warn!(error = %e, commands = ops.len(), "postgres group commit failed; retrying its commands one by one");
            for (op, answer) in ops.into_iter().zip(answers) {
                let ops = vec![op];
                match commit(pool, head, &ops).await {
                    Ok(outcomes) => finish(pool, head, ops, vec![answer], outcomes).await,
                    Err(e) => answer.fail(e),
                }
            }
        }
        Err(e) => {
            head.in_doubt.store(true, Ordering::SeqCst);
            tracing::error!(error = %e, "postgres group commit failed");
            for answer in answers {
                answer.fail(copy_error(&e));
            }
        }
    }
}

/// Publishes the committed events, then answers: nobody hears "done" before the head moved,
/// so a caller that reads right after its append finds its events.
async fn finish(
    pool: &PgPool,
    head: &Head,
    ops: Vec<Op>,
    answers: Vec<Answer>,
    outcomes: Vec<Outcome>,
) {
    let mut logged = Vec::new();
    let mut last = 0;
    for (op, outcome) in ops.into_iter().zip(&outcomes) {
        let (Op::Append(events), Outcome::Append(results)) = (op, outcome) else {
            continue;
        };
        for (ne, r) in events.into_iter().zip(results) {
            if let Appended::New { seq } = *r {
                last = last.max(seq);
                let xp = liveops_domain::progression::xp_for(&ne.event.kind);
                logged.push(LoggedEvent {
                    seq,
                    event: ne.event,
                    received_at: ms(ne.received_at),
                    xp,
                });
            }
        }
    }
    if head.in_doubt.load(Ordering::SeqCst) {
        // After a failed commit: announce the log's real head, and no tail batch, so consumers
        // read from the log whatever that commit may have left (see `Head::in_doubt`).
        let max: Result<i64, sqlx::Error> =
            sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM events")
                .fetch_one(pool)
                .await;
        if let Ok(max) = max {
            head.in_doubt.store(false, Ordering::SeqCst);
            last = last.max(max as u64);
        }
        head.publish(last, None);
    } else if !logged.is_empty() {
        head.publish(last, Some(logged));
    }
    for (answer, outcome) in answers.into_iter().zip(outcomes) {
        match (answer, outcome) {
            (Answer::Append(r), Outcome::Append(o)) => {
                let _ = r.send(Ok(o));
            }
            (Answer::Erase(r), Outcome::Erase(upto)) => {
                let _ = r.send(Ok(upto));
            }
            // `commit` returns one outcome of the same kind per op, in order.
            (answer, _) => answer.fail(StoreError::Database("writer outcome mismatch".into())),
        }
    }
}

impl Answer {
    fn fail(self, e: StoreError) {
        // A caller that gave up waiting is fine to miss its answer.
        match self {
            Answer::Append(r) => {
                let _ = r.send(Err(e));
            }
            Answer::Erase(r) => {
                let _ = r.send(Err(e));
            }
        }
    }
}

/// One error for many waiters: `StoreError` is not `Clone` (it wraps `io::Error`).
fn copy_error(e: &StoreError) -> StoreError {
    match e {
        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
        StoreError::Closed => StoreError::Closed,
        other => StoreError::Database(other.to_string()),
    }
}

/// Runs the ops in one transaction, consecutive appends as one insert.
async fn commit(pool: &PgPool, head: &Head, ops: &[Op]) -> Result<Vec<Outcome>, StoreError> {
    if ops.iter().all(|op| matches!(op, Op::Append(_))) {
        // The common case: one insert statement, atomic and durable on its own.
        let run: Vec<&[NewEvent]> = ops
            .iter()
            .filter_map(|op| match op {
                Op::Append(events) => Some(events.as_slice()),
                Op::Erase(_) => None,
            })
            .collect();
        let mut conn = pool.acquire().await?;
        let results = insert_run(&mut conn, &run).await?;
        return Ok(results.into_iter().map(Outcome::Append).collect());
    }
    let mut tx = pool.begin().await?;
    let mut outcomes = Vec::with_capacity(ops.len());
    let mut i = 0;
    while i < ops.len() {
        match &ops[i] {
            Op::Append(_) => {
                let mut j = i;
                let mut run: Vec<&[NewEvent]> = Vec::new();
                while let Some(Op::Append(events)) = ops.get(j) {
                    run.push(events);
                    j += 1;
                }
                outcomes.extend(
                    insert_run(&mut tx, &run)
                        .await?
                        .into_iter()
                        .map(Outcome::Append),
                );
                i = j;
            }
            Op::Erase(player) => {
                let known = *head.tx.borrow();
                let upto = super::admin::erase(&mut tx, player, known).await?;
                outcomes.push(Outcome::Erase(upto));
                i += 1;
            }
        }
    }
    tx.commit().await?;
    Ok(outcomes)
}

/// Inserts consecutive appends with one statement; returns each append's results.
async fn insert_run(
    conn: &mut PgConnection,
    run: &[&[NewEvent]],
) -> Result<Vec<Vec<Appended>>, StoreError> {
    // A repeated eventId within the run: the first occurrence is the candidate, the others are
    // duplicates outright (an insert may not see the same key twice in a useful way).
    let mut candidates: HashSet<&str> = HashSet::new();
    let mut rows = Rows::default();
    for events in run {
        for ne in *events {
            let e = &ne.event;
            if !candidates.insert(e.event_id.as_str()) {
                continue;
            }
            rows.push(ne)?;
        }
    }
    let n = rows.event_id.len();
    // One statement: it draws the sequence numbers, sorts them and gives the k-th smallest to
    // the k-th event, so their order is the append order by construction (not by how a plan
    // happens to evaluate `nextval`). Outside an explicit transaction it commits by itself, so
    // an append-only group costs one round trip. A duplicate burns its number; gaps are
    // harmless (consumers follow the head, not seq + 1).
    let returned: Vec<(i64, String)> = sqlx::query_as(
        "WITH drawn AS MATERIALIZED (SELECT nextval('events_seq') AS seq FROM generate_series(1, $1)),
              numbered AS (SELECT seq, row_number() OVER (ORDER BY seq) AS k FROM drawn)
         INSERT INTO events (seq, event_id, player_id, type, ts, received_at, xp, payload)
         SELECT n.seq, u.e, u.p, u.t, u.ts, u.r, u.x, u.pl::json
         FROM UNNEST($2::text[], $3::text[], $4::text[], $5::int8[], $6::timestamptz[],
                     $7::int8[], $8::text[]) WITH ORDINALITY AS u(e, p, t, ts, r, x, pl, k)
         JOIN numbered n ON n.k = u.k
         ON CONFLICT (event_id) DO NOTHING
         RETURNING seq, event_id",
    )
    .bind(n as i64)
    .bind(&rows.event_id)
    .bind(&rows.player_id)
    .bind(&rows.kind)
    .bind(&rows.ts)
    .bind(&rows.received_at)
    .bind(&rows.xp)
    .bind(&rows.payload)
    .fetch_all(&mut *conn)
    .await?;
    let mut seq_of: HashMap<&str, i64> = HashMap::with_capacity(returned.len());
    for (seq, id) in &returned {
        seq_of.insert(id.as_str(), *seq);
    }
    let mut out = Vec::with_capacity(run.len());
    for events in run {
        let mut results = Vec::with_capacity(events.len());
        for ne in *events {
            // `remove`: only the first occurrence of an eventId can be the new one.
            let r = match seq_of.remove(ne.event.event_id.as_str()) {
                Some(seq) => Appended::New { seq: seq as u64 },
                None => Appended::Duplicate,
            };
            results.push(r);
        }
        out.push(results);
    }
    Ok(out)
}

/// Column arrays for one multi-row insert into `events`.
#[derive(Default)]
struct Rows {
    event_id: Vec<String>,
    player_id: Vec<String>,
    kind: Vec<&'static str>,
    ts: Vec<i64>,
    received_at: Vec<DateTime<Utc>>,
    xp: Vec<i64>,
    payload: Vec<String>,
}

impl Rows {
    fn push(&mut self, ne: &NewEvent) -> Result<(), StoreError> {
        self.push_parts(&ne.event, ne.received_at)
    }

    fn push_parts(&mut self, e: &Event, received_at: DateTime<Utc>) -> Result<(), StoreError> {
        self.event_id.push(e.event_id.to_string());
        self.player_id.push(e.player_id.to_string());
        self.kind.push(e.kind.event_type().as_str());
        self.ts.push(e.ts);
        self.received_at.push(ms(received_at));
        self.xp.push(liveops_domain::progression::xp_for(&e.kind));
        self.payload.push(e.payload.as_str().to_owned());
        Ok(())
    }
}

/// Moves a consumer's cursor, never backwards (a late or repeated commit cannot rewind it).
pub(super) async fn move_cursor(
    conn: &mut PgConnection,
    consumer: &str,
    cursor: u64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO consumer_offsets (consumer, seq) VALUES ($1, $2)
         ON CONFLICT (consumer) DO UPDATE SET seq = GREATEST(consumer_offsets.seq, excluded.seq)",
    )
    .bind(consumer)
    .bind(seq_bound(cursor))
    .execute(conn)
    .await?;
    Ok(())
}

impl PgStore {
    async fn write<T>(&self, make: impl FnOnce(Reply<T>) -> WriteCmd) -> Result<T, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.writer
            .send(make(tx))
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    pub(super) async fn erase_via_writer(&self, player: PlayerId) -> Result<u64, StoreError> {
        self.write(|reply| WriteCmd::Erase(player, reply)).await
    }

    /// For the deployment where NATS JetStream is the durable log and sequences the events: in
    /// ONE transaction, records `events` with their given `seq` (the stream sequence; an
    /// eventId already recorded is skipped, so a redelivery is not recorded twice), records the
    /// `flags` of the events actually inserted, and moves `consumer`'s cursor to `cursor`
    /// (forward only). Returns the seqs inserted, ascending. [`EventLog::committed`] and
    /// [`EventLog::read_after`] of this process see them once this returns.
    pub async fn record_sequenced(
        &self,
        consumer: &str,
        events: &[LoggedEvent],
        flags: Vec<FlagRecord>,
        cursor: u64,
    ) -> Result<Vec<u64>, StoreError> {
        let mut rows = Rows::default();
        let mut seqs = Vec::with_capacity(events.len());
        for le in events {
            let seq = i64::try_from(le.seq)
                .map_err(|_| StoreError::Corrupt(format!("sequence {} out of range", le.seq)))?;
            seqs.push(seq);
            rows.push_parts(&le.event, le.received_at)?;
        }
        let mut tx = self.pool.begin().await?;
        let mut inserted: Vec<i64> = if events.is_empty() {
            Vec::new()
        } else {
            sqlx::query_scalar(
                "INSERT INTO events (seq, event_id, player_id, type, ts, received_at, xp, payload)
                 SELECT s, e, p, t, ts, r, x, pl::json
                 FROM UNNEST($1::int8[], $2::text[], $3::text[], $4::text[], $5::int8[],
                             $6::timestamptz[], $7::int8[], $8::text[]) AS u(s, e, p, t, ts, r, x, pl)
                 ON CONFLICT (event_id) DO NOTHING
                 RETURNING seq",
            )
            .bind(&seqs)
            .bind(&rows.event_id)
            .bind(&rows.player_id)
            .bind(&rows.kind)
            .bind(&rows.ts)
            .bind(&rows.received_at)
            .bind(&rows.xp)
            .bind(&rows.payload)
            .fetch_all(&mut *tx)
            .await?
        };
        inserted.sort_unstable();
        let fresh: HashSet<u64> = inserted.iter().map(|s| *s as u64).collect();
        let flags: Vec<FlagRecord> = flags
            .into_iter()
            .filter(|f| fresh.contains(&f.seq))
            .collect();
        fairness::insert_flags(&mut tx, &flags).await?;
        move_cursor(&mut tx, consumer, cursor).await?;
        tx.commit().await?;
        if let Some(last) = inserted.last() {
            self.head.publish(*last as u64, None);
        }
        Ok(inserted.into_iter().map(|s| s as u64).collect())
    }

    /// The gateway's permanent-dedup check when JetStream is the log ("which of these eventIds
    /// are in the log already?"), with a connection of its own; see [`IdLookup`].
    pub fn id_lookup(&self) -> IdLookup {
        IdLookup {
            pool: self.pool.clone(),
            conn: None,
        }
    }

    /// A consumer's cursor, polled every `poll` by a background task, so this process sees the
    /// progress another process makes. The task stops when the last receiver is dropped; a
    /// failed poll is logged and retried at the next tick (the value stays where it was).
    pub fn cursor_watch(&self, consumer: &str, poll: Duration) -> watch::Receiver<u64> {
        let (tx, rx) = watch::channel(0);
        let (pool, consumer) = (self.pool.clone(), consumer.to_string());
        tokio::spawn(async move {
            loop {
                let seq: Result<Option<i64>, sqlx::Error> =
                    sqlx::query_scalar("SELECT seq FROM consumer_offsets WHERE consumer = $1")
                        .bind(&consumer)
                        .fetch_optional(&pool)
                        .await;
                match seq {
                    Ok(seq) => {
                        let seq = seq.unwrap_or(0) as u64;
                        tx.send_if_modified(|v| std::mem::replace(v, seq) != seq);
                    }
                    Err(e) => {
                        tracing::warn!(consumer, error = %e, "polling a consumer cursor failed")
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(poll) => {}
                    _ = tx.closed() => return,
                }
            }
        });
        rx
    }
}

#[async_trait]
impl EventLog for PgStore {
    async fn append(&self, events: Vec<NewEvent>) -> Result<Vec<Appended>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        self.write(|reply| WriteCmd::Append(events, reply)).await
    }

    async fn read_after(&self, after: u64, limit: usize) -> Result<Vec<LoggedEvent>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE seq > $1 ORDER BY seq LIMIT $2"
        ))
        .bind(seq_bound(after))
        .bind(limit.min(i64::MAX as usize) as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row_to_logged).collect()
    }

    fn committed(&self) -> watch::Receiver<u64> {
        self.head.tx.subscribe()
    }

    fn tail(&self) -> Option<broadcast::Receiver<CommittedBatch>> {
        Some(self.head.tail.subscribe())
    }

    fn open_connections(&self) -> Option<u64> {
        Some(u64::from(self.pool.size()))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        if self.writer.is_closed() {
            return Err(StoreError::Closed);
        }
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

/// Which of `ids` are in `events`.
async fn known_ids_query(
    conn: &mut PgConnection,
    ids: &[&str],
) -> Result<HashSet<String>, StoreError> {
    let found: Vec<String> =
        sqlx::query_scalar("SELECT event_id FROM events WHERE event_id = ANY($1)")
            .bind(ids)
            .fetch_all(conn)
            .await?;
    Ok(found.into_iter().collect())
}

/// The gateway's permanent-dedup lookups ("is this eventId in the log already?") on one
/// connection taken out of the pool and kept, for the one task that runs them.
///
/// Why not the pool: sqlx pings every connection it takes back (a second round trip per
/// lookup), and the lookups, one per group of concurrent requests, would queue for connections
/// behind the consumers' transactions. Both sit on the ingest path, whose single-event and
/// batch figures on the engines `docs/performance.md` reproduces.
///
/// A failed or timed-out lookup drops the connection (it may be half-way through a reply);
/// the next one takes a fresh connection, so the lookup recovers with PostgreSQL by itself.
pub struct IdLookup {
    pool: PgPool,
    /// The connection, once taken; `None` before the first lookup and after a failure.
    conn: Option<PgConnection>,
}

impl IdLookup {
    /// Which of `ids` are already in the log. Bounded by [`LOOKUP_TIMEOUT`], so a hung
    /// database turns into [`StoreError::Unavailable`] (the gateway's 503) instead of a hung
    /// request.
    pub async fn known(&mut self, ids: &[&str]) -> Result<HashSet<String>, StoreError> {
        if ids.is_empty() {
            return Ok(HashSet::new());
        }
        let result = tokio::time::timeout(LOOKUP_TIMEOUT, async {
            let conn = match &mut self.conn {
                Some(conn) => conn,
                None => {
                    let mut conn = self.pool.acquire().await?.detach();
                    // A point lookup by the unique key is never better as a sequential scan,
                    // but this connection runs one statement for ever, and a plan made while
                    // the statistics said "empty table" would scan the whole log per lookup
                    // (seconds per lookup under batch load).
                    sqlx::query("SET enable_seqscan = off")
                        .execute(&mut conn)
                        .await?;
                    // And one plan for good: left to choose, PostgreSQL re-plans the lookup
                    // on most calls, and planning it costs more than running it
                    // (`pg_stat_statements.track_planning` shows both). With sequential scans
                    // off, the one plan is the index probe.
                    sqlx::query("SET plan_cache_mode = force_generic_plan")
                        .execute(&mut conn)
                        .await?;
                    self.conn.insert(conn)
                }
            };
            known_ids_query(conn, ids).await
        })
        .await
        .unwrap_or_else(|_| {
            Err(StoreError::Unavailable(format!(
                "no answer from PostgreSQL within {LOOKUP_TIMEOUT:?}"
            )))
        });
        if result.is_err() {
            self.conn = None;
        }
        result
    }
}

/// The longest a dedup lookup may take, reconnecting included.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);
