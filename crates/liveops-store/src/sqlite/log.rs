//! [`EventLog`] on SQLite: the `events` table, appended to by the writer thread and read back
//! through the read pool.
//!
//! `seq` is the table's `AUTOINCREMENT` row id, so it follows commit order and is never reused,
//! even after the newest event is erased; `event_id` is `UNIQUE`, which makes the dedup
//! permanent.

use async_trait::async_trait;
use liveops_domain::{Event, EventId, EventType, Payload, PlayerId};
use rusqlite::{params, Connection};
use tokio::sync::{broadcast, watch};

use super::writer::WriteCmd;
use super::{ms_to_time, SqliteStore};
use crate::{Appended, CommittedBatch, EventLog, LoggedEvent, NewEvent, StoreError};

/// The columns [`row_to_logged`] decodes, in order.
pub(super) const EVENT_COLUMNS: &str =
    "seq, event_id, player_id, type, ts, received_at_ms, xp, payload";

/// Decodes a row of [`EVENT_COLUMNS`] (the first eight columns of the row).
pub(super) fn row_to_logged(r: &rusqlite::Row<'_>) -> Result<LoggedEvent, StoreError> {
    let seq: i64 = r.get(0)?;
    let corrupt = |what: String| StoreError::Corrupt(format!("event seq {seq}: {what}"));
    let event_id = EventId::parse(r.get::<_, String>(1)?).map_err(corrupt)?;
    let player_id = PlayerId::parse(r.get::<_, String>(2)?).map_err(corrupt)?;
    let type_str: String = r.get(3)?;
    let event_type =
        EventType::parse(&type_str).ok_or_else(|| corrupt(format!("unknown type {type_str}")))?;
    let payload = Payload::from_stored(r.get(7)?).map_err(corrupt)?;
    let event = Event::from_stored(event_id, player_id, r.get(4)?, event_type, payload)
        .map_err(|e| corrupt(e.to_string()))?;
    Ok(LoggedEvent {
        seq: seq as u64,
        event,
        received_at: ms_to_time(r.get(5)?),
        xp: r.get(6)?,
    })
}

/// Inserts events in the writer's transaction, in order; an `eventId` already in the table is a
/// [`Appended::Duplicate`]. Returns each event's fate and the new events as logged, which the
/// writer hands to in-process consumers once the group is committed.
pub(super) fn append(
    conn: &Connection,
    events: Vec<NewEvent>,
) -> Result<(Vec<Appended>, Vec<LoggedEvent>), StoreError> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO events (event_id, player_id, type, ts, received_at_ms, xp, payload)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (event_id) DO NOTHING",
    )?;
    let mut out = Vec::with_capacity(events.len());
    let mut logged = Vec::with_capacity(events.len());
    for ne in events {
        let e = &ne.event;
        let xp = liveops_domain::progression::xp_for(&e.kind);
        let n = stmt.execute(params![
            e.event_id.as_str(),
            e.player_id.as_str(),
            e.kind.event_type().as_str(),
            e.ts,
            ne.received_at.timestamp_millis(),
            xp,
            e.payload.as_str(),
        ])?;
        if n == 1 {
            let seq = conn.last_insert_rowid() as u64;
            out.push(Appended::New { seq });
            logged.push(LoggedEvent {
                seq,
                event: ne.event,
                // What the log stores: millisecond precision, so consumers fed from memory
                // see exactly what a consumer reading the log sees.
                received_at: ms_to_time(ne.received_at.timestamp_millis()),
                xp,
            });
        } else {
            out.push(Appended::Duplicate);
        }
    }
    Ok((out, logged))
}

#[async_trait]
impl EventLog for SqliteStore {
    async fn append(&self, events: Vec<NewEvent>) -> Result<Vec<Appended>, StoreError> {
        self.write(|reply| WriteCmd::Append(events, reply)).await
    }

    async fn read_after(&self, after: u64, limit: usize) -> Result<Vec<LoggedEvent>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT seq, event_id, player_id, type, ts, received_at_ms, xp, payload
                 FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )?;
            let mut rows = stmt.query(params![after as i64, limit as i64])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(row_to_logged(r)?);
            }
            Ok(out)
        })
        .await
    }

    fn committed(&self) -> watch::Receiver<u64> {
        self.committed.clone()
    }

    fn tail(&self) -> Option<broadcast::Receiver<CommittedBatch>> {
        Some(self.tail.subscribe())
    }

    fn open_connections(&self) -> Option<u64> {
        // The writer's connection plus the read pool's.
        Some(1 + self.readers.open.load(std::sync::atomic::Ordering::Relaxed))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        if self.writer.is_closed() {
            return Err(StoreError::Closed);
        }
        self.read(|conn| Ok(conn.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?))
            .await
            .map(|_| ())
    }
}
