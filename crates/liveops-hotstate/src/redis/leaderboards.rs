//! [`RedisLeaderboards`]: one sorted set per (window, period), exact integer scores, the batch
//! apply and its cursor in one Lua script.
//!
//! Ordering (SPEC section 6): members are player ids and scores are `-xp`, so an ascending
//! ZRANGE lists the highest score first and, for equal scores, Redis's lexicographic member
//! order puts player ids ascending; rank = ZRANK + 1. Scores are doubles in Redis: exact for
//! integers up to 2^53, far above any XP total (`MAX_DELTA_XP` is 10^4 per event). Numbers
//! travel to and from the scripts as strings, never through Lua's `tostring` (14 digits).
//!
//! Keys, all under the hash tag `{<ns>:lb}` so that one script can touch every board and the
//! cursor atomically on Redis Cluster too. That keeps all boards on one node: acceptable
//! because they are small (three windows of at most a few million members each) and the
//! per-event work is a few ZINCRBYs; the high-volume keys (idempotency, rate limits) are not
//! tagged and spread over the cluster.
//! - `board:<window>:<start ms>` (ZSET): a period's board;
//! - `live` (ZSET): `<window>|<start ms>|<end ms>|<period id>` scored by end ms, the periods
//!   with a board, so rollover finds the ended ones with one range query;
//! - `closed` (HASH): window -> ms; periods ending at or before it were handed out by rollover
//!   and refuse late events (like the memory implementation's `closed_until`);
//! - `cursor` (STRING): the last log seq the boards include; absent = nothing built;
//! - `released` (STRING): the last release number the boards include, set with `cursor` by a
//!   rebuild; boards without it (built before releases were numbered) count as not built;
//! - `erased` (HASH): player -> the log seq an erasure covers; the apply script skips their
//!   events up to it (an apply in flight during the erasure) and drops it once the cursor passes;
//! - `ver` (HASH): window -> change counter; `upd` (HASH): live member -> latest receive ms;
//! - `ended:<window>:<start ms>`: a board claimed by rollover, read out and deleted;
//! - `tmp:<token>:<window>:<start ms>`: a board being rebuilt, renamed into place at commit.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use liveops_domain::window::{Calendar, Period, Window};
use liveops_domain::PlayerId;
use redis::{Script, Value};

use super::RedisConn;
use crate::board_index::Entry;
use crate::boards::{BoardPage, FinishedPeriod};
use crate::error::HotStateError;
use crate::leaderboards::{ApplyOutcome, BoardEvent, Leaderboards};

/// Members per ZADD / ZRANGE when moving whole boards.
const CHUNK: usize = 2000;
/// Commands per pipeline when loading a board.
const PIPELINE: usize = 10;
/// A claimed or half-built board left behind by a crashed process disappears after this.
const LEFTOVER_TTL_MS: u64 = 3_600_000;

/// KEYS: cursor, live, closed, ver, upd, erased, board per period. ARGV: upto, #periods, #windows,
/// then per period (window, live member, end ms), then per event (seq, player, -xp, receive
/// ms, one period index per window). Returns {-1} without a cursor, else {counted, skipped,
/// then (period index, late count) pairs}. An erased player's event at or below the seq their
/// erasure covers is skipped; erasures the cursor has passed are dropped.
const APPLY: &str = r#"
local cur = redis.call('GET', KEYS[1])
if not cur then return {-1} end
cur = tonumber(cur)
local np, nw = tonumber(ARGV[2]), tonumber(ARGV[3])
local win, member, ends, late, newest = {}, {}, {}, {}, {}
local i = 4
for p = 1, np do
  win[p], member[p], ends[p] = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local closed = redis.call('HGET', KEYS[3], win[p])
  if closed and tonumber(ends[p]) <= tonumber(closed) then late[p] = 0 else late[p] = false end
  i = i + 3
end
local erased = redis.call('HLEN', KEYS[6]) > 0
local counted, skipped = 0, 0
while i <= #ARGV do
  local keep = tonumber(ARGV[i]) > cur
  if keep and erased then
    local upto = redis.call('HGET', KEYS[6], ARGV[i + 1])
    if upto and tonumber(ARGV[i]) <= tonumber(upto) then keep = false end
  end
  if keep then
    counted = counted + 1
    for w = 1, nw do
      local p = tonumber(ARGV[i + 3 + w])
      if late[p] then
        late[p] = late[p] + 1
      else
        redis.call('ZINCRBY', KEYS[6 + p], ARGV[i + 2], ARGV[i + 1])
        if not newest[p] or tonumber(ARGV[i + 3]) > tonumber(newest[p]) then newest[p] = ARGV[i + 3] end
      end
    end
  else
    skipped = skipped + 1
  end
  i = i + 4 + nw
end
local touched = {}
for p = 1, np do
  if newest[p] then
    redis.call('ZADD', KEYS[2], ends[p], member[p])
    local old = redis.call('HGET', KEYS[5], member[p])
    if not old or tonumber(old) < tonumber(newest[p]) then redis.call('HSET', KEYS[5], member[p], newest[p]) end
    touched[win[p]] = true
  end
end
for w, _ in pairs(touched) do redis.call('HINCRBY', KEYS[4], w, 1) end
if tonumber(ARGV[1]) > cur then
  redis.call('SET', KEYS[1], ARGV[1])
  if erased then
    local e = redis.call('HGETALL', KEYS[6])
    for j = 1, #e, 2 do
      if tonumber(e[j + 1]) <= tonumber(ARGV[1]) then redis.call('HDEL', KEYS[6], e[j]) end
    end
  end
end
local out = {counted, skipped}
for p = 1, np do
  if late[p] and late[p] > 0 then out[#out + 1] = p; out[#out + 1] = late[p] end
end
return out
"#;

/// KEYS: erased, cursor. ARGV: player, seq. Records that the player's events up to seq are
/// erased (keeping the higher of two erasures), unless the boards' cursor is already there.
const ERASE: &str = r#"
local cur = redis.call('GET', KEYS[2])
if cur and tonumber(ARGV[2]) <= tonumber(cur) then return end
local old = redis.call('HGET', KEYS[1], ARGV[1])
if not old or tonumber(old) < tonumber(ARGV[2]) then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
"#;

/// Like APPLY for one released event, against the release cursor instead of the log cursor.
/// KEYS: cursor, released, live, closed, ver, upd, board per window. ARGV: release number,
/// player, -xp, receive ms, then per window (window, member, end). Returns {-1} when the boards
/// are not built, {0} when the release is at or below the release cursor, else {1, then the
/// indexes of the late periods}.
const APPLY_RELEASED: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
local rel = redis.call('GET', KEYS[2])
if not rel then return {-1} end
if tonumber(ARGV[1]) <= tonumber(rel) then return {0} end
local out = {1}
for w = 1, #KEYS - 6 do
  local i = 5 + 3 * (w - 1)
  local closed = redis.call('HGET', KEYS[4], ARGV[i])
  if closed and tonumber(ARGV[i + 2]) <= tonumber(closed) then
    out[#out + 1] = w
  else
    redis.call('ZINCRBY', KEYS[6 + w], ARGV[3], ARGV[2])
    redis.call('ZADD', KEYS[3], ARGV[i + 2], ARGV[i + 1])
    local old = redis.call('HGET', KEYS[6], ARGV[i + 1])
    if not old or tonumber(old) < tonumber(ARGV[4]) then redis.call('HSET', KEYS[6], ARGV[i + 1], ARGV[4]) end
    redis.call('HINCRBY', KEYS[5], ARGV[i], 1)
  end
end
redis.call('SET', KEYS[2], ARGV[1])
return out
"#;

/// KEYS: live, closed, ver, upd, then (board, ended) per candidate. ARGV: now ms, #candidates,
/// the candidates' live members, then the enabled windows. Claims each candidate still live
/// (ZREM succeeds for one caller only), renames its board aside, closes every window up to now.
/// Returns the claimed candidates' indexes.
const ROLL_OVER: &str = r#"
local n = tonumber(ARGV[2])
local out = {}
for j = 1, n do
  local m = ARGV[2 + j]
  if redis.call('ZREM', KEYS[1], m) == 1 then
    local board, ended = KEYS[3 + 2 * j], KEYS[4 + 2 * j]
    if redis.call('EXISTS', board) == 1 then
      redis.call('RENAME', board, ended)
      redis.call('PEXPIRE', ended, ARGV[#ARGV])
    end
    redis.call('HDEL', KEYS[4], m)
    redis.call('HINCRBY', KEYS[3], string.match(m, '^[^|]+'), 1)
    out[#out + 1] = j
  end
end
for j = 3 + n, #ARGV - 1 do
  local old = redis.call('HGET', KEYS[2], ARGV[j])
  if not old or tonumber(old) < tonumber(ARGV[1]) then redis.call('HSET', KEYS[2], ARGV[j], ARGV[1]) end
end
return out
"#;

/// KEYS: cursor, released, live, closed, ver, upd, old boards, then (tmp, board) per new
/// board. ARGV: cursor, release cursor, #old, #new, (member, end ms) per new board, then the
/// enabled windows. Swaps the rebuilt boards in and sets both cursors in one step.
const COMMIT: &str = r#"
local nold, nnew = tonumber(ARGV[3]), tonumber(ARGV[4])
for j = 1, nold do redis.call('DEL', KEYS[6 + j]) end
redis.call('DEL', KEYS[3], KEYS[4], KEYS[6])
for j = 1, nnew do
  local tmp, dest = KEYS[5 + nold + 2 * j], KEYS[6 + nold + 2 * j]
  if redis.call('EXISTS', tmp) == 1 then
    redis.call('RENAME', tmp, dest)
    redis.call('PERSIST', dest)
  else
    redis.call('DEL', dest)
  end
  redis.call('ZADD', KEYS[3], ARGV[4 + 2 * j], ARGV[3 + 2 * j])
end
for j = 5 + 2 * nnew, #ARGV do redis.call('HINCRBY', KEYS[5], ARGV[j], 1) end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[2])
return 1
"#;

/// KEYS: board. ARGV: player, k. Returns false, or {first position, flat member/score list}.
const AROUND: &str = r#"
local r = redis.call('ZRANK', KEYS[1], ARGV[1])
if not r then return false end
local k = tonumber(ARGV[2])
local first = r - k
if first < 0 then first = 0 end
return {first, redis.call('ZRANGE', KEYS[1], first, r + k, 'WITHSCORES')}
"#;

/// Live boards in Redis; see the module doc for the key layout.
pub struct RedisLeaderboards {
    conn: RedisConn,
    /// `{<ns>:lb}`: the hash tag every key of the boards starts with.
    tag: String,
    calendar: Calendar,
    /// Enabled windows in [`Window::ALL`] order, without duplicates.
    windows: Vec<Window>,
    apply: Script,
    apply_released: Script,
    erase: Script,
    roll_over: Script,
    commit: Script,
    around: Script,
}

/// The live-set member naming a period: everything needed to rebuild the `Period`.
fn member(p: &Period) -> String {
    format!(
        "{}|{}|{}|{}",
        p.window.as_str(),
        p.start.timestamp_millis(),
        p.end.timestamp_millis(),
        p.id
    )
}

fn parse_member(m: &str) -> Option<Period> {
    let mut parts = m.splitn(4, '|');
    let window = Window::parse(parts.next()?)?;
    let start = Utc
        .timestamp_millis_opt(parts.next()?.parse().ok()?)
        .single()?;
    let end = Utc
        .timestamp_millis_opt(parts.next()?.parse().ok()?)
        .single()?;
    let id = parts.next()?.to_string();
    Some(Period {
        window,
        id,
        start,
        end,
    })
}

/// A stored score (`-xp`) back to XP. Redis prints integral doubles without a fraction.
fn xp_of(score: &str) -> Result<i64, HotStateError> {
    if let Ok(n) = score.parse::<i64>() {
        return Ok(n.saturating_neg());
    }
    match score.parse::<f64>() {
        Ok(f) if f.is_finite() && f.fract() == 0.0 => Ok(-(f as i64)),
        _ => Err(HotStateError::Corrupt(format!(
            "leaderboard score {score:?} is not an integer"
        ))),
    }
}

fn player_of(name: String) -> Result<PlayerId, HotStateError> {
    PlayerId::parse(name).map_err(|e| HotStateError::Corrupt(format!("board member: {e}")))
}

/// Entries from a flat ZRANGE WITHSCORES answer whose first element is at 0-based `first`.
fn entries(first: u64, rows: Vec<(String, String)>) -> Result<Vec<Entry>, HotStateError> {
    rows.into_iter()
        .zip(first..)
        .map(|((name, score), pos)| {
            Ok(Entry {
                rank: pos + 1,
                player_id: player_of(name)?,
                score: xp_of(&score)?,
            })
        })
        .collect()
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> HotStateError {
    HotStateError::Corrupt(format!("{what}: {e}"))
}

impl RedisLeaderboards {
    pub(crate) fn new(
        conn: RedisConn,
        namespace: &str,
        calendar: Calendar,
        windows: Vec<Window>,
    ) -> Self {
        let windows = Window::ALL
            .into_iter()
            .filter(|w| windows.contains(w))
            .collect();
        Self {
            conn,
            tag: format!("{{{namespace}:lb}}"),
            calendar,
            windows,
            apply: Script::new(APPLY),
            apply_released: Script::new(APPLY_RELEASED),
            erase: Script::new(ERASE),
            roll_over: Script::new(ROLL_OVER),
            commit: Script::new(COMMIT),
            around: Script::new(AROUND),
        }
    }

    fn key(&self, name: &str) -> String {
        format!("{}:{name}", self.tag)
    }

    fn board_key(&self, kind: &str, p: &Period) -> String {
        format!(
            "{}:{kind}:{}:{}",
            self.tag,
            p.window.as_str(),
            p.start.timestamp_millis()
        )
    }

    /// The log cursor and the release cursor; `None` unless both are there (boards built before
    /// releases were numbered have no release cursor: they are rebuilt once).
    async fn cursors(&self) -> Result<Option<(u64, u64)>, HotStateError> {
        let (log, released): (Option<String>, Option<String>) = self
            .conn
            .query(
                redis::cmd("MGET")
                    .arg(self.key("cursor"))
                    .arg(self.key("released")),
            )
            .await?;
        let parse = |what: &str, s: String| s.parse::<u64>().map_err(|e| corrupt(what, e));
        match (log, released) {
            (Some(log), Some(released)) => Ok(Some((
                parse("leaderboard cursor", log)?,
                parse("leaderboard release cursor", released)?,
            ))),
            _ => Ok(None),
        }
    }

    /// The live members currently tracked, as periods.
    async fn live(&self) -> Result<Vec<Period>, HotStateError> {
        let members: Vec<String> = self
            .conn
            .query(redis::cmd("ZRANGE").arg(self.key("live")).arg(0).arg(-1))
            .await?;
        Ok(members.iter().filter_map(|m| parse_member(m)).collect())
    }

    /// Reads a whole board in chunks, by rank.
    async fn read_board(&self, key: &str) -> Result<Vec<Entry>, HotStateError> {
        let mut out = Vec::new();
        loop {
            let first = out.len() as u64;
            let rows: Vec<(String, String)> = self
                .conn
                .query(
                    redis::cmd("ZRANGE")
                        .arg(key)
                        .arg(first)
                        .arg(first + CHUNK as u64 - 1)
                        .arg("WITHSCORES"),
                )
                .await?;
            let n = rows.len();
            out.extend(entries(first, rows)?);
            if n < CHUNK {
                return Ok(out);
            }
        }
    }

    /// Writes `rows` (summed per player) into `key` with a TTL, in pipelined ZADD chunks.
    async fn write_board(
        &self,
        key: &str,
        rows: Vec<(PlayerId, i64)>,
    ) -> Result<(), HotStateError> {
        let mut sums: HashMap<PlayerId, i64> = HashMap::with_capacity(rows.len());
        for (player, xp) in rows {
            let s = sums.entry(player).or_insert(0);
            *s = s.saturating_add(xp);
        }
        self.conn.query::<()>(redis::cmd("DEL").arg(key)).await?;
        let sums: Vec<(PlayerId, i64)> = sums.into_iter().collect();
        for group in sums.chunks(CHUNK * PIPELINE) {
            let mut pipe = redis::pipe();
            for chunk in group.chunks(CHUNK) {
                let cmd = pipe.cmd("ZADD").arg(key);
                for (player, xp) in chunk {
                    cmd.arg(xp.saturating_neg().to_string())
                        .arg(player.as_str());
                }
                cmd.ignore();
            }
            pipe.cmd("PEXPIRE").arg(key).arg(LEFTOVER_TTL_MS).ignore();
            self.conn.pipe::<()>(&pipe).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Leaderboards for RedisLeaderboards {
    fn calendar(&self) -> &Calendar {
        &self.calendar
    }

    fn windows(&self) -> Vec<Window> {
        self.windows.clone()
    }

    async fn page(
        &self,
        window: Window,
        now: DateTime<Utc>,
        offset: usize,
        limit: usize,
    ) -> Result<BoardPage, HotStateError> {
        let period = self.period(window, now);
        if !self.is_enabled(window) {
            return Ok(BoardPage {
                period,
                total: 0,
                updated_at: None,
                entries: Vec::new(),
            });
        }
        let key = self.board_key("board", &period);
        let first = offset as u64;
        let last = first.saturating_add(limit as u64).saturating_sub(1);
        let mut pipe = redis::pipe();
        pipe.cmd("ZCARD").arg(&key);
        pipe.cmd("HGET").arg(self.key("upd")).arg(member(&period));
        // `limit = 0` would make the stop index -1 (the end of the set): skip the range.
        if limit > 0 {
            pipe.cmd("ZRANGE")
                .arg(&key)
                .arg(first.min(i64::MAX as u64))
                .arg(last.min(i64::MAX as u64))
                .arg("WITHSCORES");
        }
        let mut answer: Vec<Value> = self.conn.pipe(&pipe).await?;
        let rows: Vec<(String, String)> = if limit > 0 {
            let v = answer.pop().unwrap_or(Value::Nil);
            redis::from_redis_value(&v).map_err(|e| corrupt("ZRANGE", e))?
        } else {
            Vec::new()
        };
        let (total, updated): (u64, Option<i64>) =
            redis::from_redis_value(&Value::Array(answer)).map_err(|e| corrupt("ZCARD", e))?;
        Ok(BoardPage {
            updated_at: updated.and_then(|ms| Utc.timestamp_millis_opt(ms).single()),
            total,
            entries: entries(first, rows)?,
            period,
        })
    }

    async fn rank_of(
        &self,
        window: Window,
        now: DateTime<Utc>,
        player: &PlayerId,
    ) -> Result<Option<Entry>, HotStateError> {
        if !self.is_enabled(window) {
            return Ok(None);
        }
        let key = self.board_key("board", &self.period(window, now));
        let mut pipe = redis::pipe();
        pipe.cmd("ZRANK").arg(&key).arg(player.as_str());
        pipe.cmd("ZSCORE").arg(&key).arg(player.as_str());
        let (rank, score): (Option<u64>, Option<String>) = self.conn.pipe(&pipe).await?;
        match (rank, score) {
            (Some(rank), Some(score)) => Ok(Some(Entry {
                rank: rank + 1,
                player_id: player.clone(),
                score: xp_of(&score)?,
            })),
            _ => Ok(None),
        }
    }

    async fn around(
        &self,
        window: Window,
        now: DateTime<Utc>,
        player: &PlayerId,
        k: usize,
    ) -> Result<Option<Vec<Entry>>, HotStateError> {
        if !self.is_enabled(window) {
            return Ok(None);
        }
        let key = self.board_key("board", &self.period(window, now));
        // Lua prints numbers with 14 significant digits: keep `k` well inside that.
        let k = (k as u64).min(1 << 40);
        let found: Option<(u64, Vec<(String, String)>)> = self
            .conn
            .script(self.around.key(&key).arg(player.as_str()).arg(k))
            .await?;
        found.map(|(first, rows)| entries(first, rows)).transpose()
    }

    async fn entries_for(
        &self,
        window: Window,
        now: DateTime<Utc>,
        players: &[PlayerId],
    ) -> Result<Vec<Entry>, HotStateError> {
        if !self.is_enabled(window) || players.is_empty() {
            return Ok(Vec::new());
        }
        let key = self.board_key("board", &self.period(window, now));
        let mut pipe = redis::pipe();
        for p in players {
            pipe.cmd("ZRANK").arg(&key).arg(p.as_str());
            pipe.cmd("ZSCORE").arg(&key).arg(p.as_str());
        }
        let answer: Vec<Value> = self.conn.pipe(&pipe).await?;
        let mut out = Vec::new();
        for (p, pair) in players.iter().zip(answer.chunks(2)) {
            let (rank, score): (Option<u64>, Option<String>) =
                redis::from_redis_value(&Value::Array(pair.to_vec()))
                    .map_err(|e| corrupt("ZRANK", e))?;
            if let (Some(rank), Some(score)) = (rank, score) {
                out.push(Entry {
                    rank: rank + 1,
                    player_id: p.clone(),
                    score: xp_of(&score)?,
                });
            }
        }
        out.sort_unstable_by_key(|e| e.rank);
        out.dedup_by_key(|e| e.rank);
        Ok(out)
    }

    async fn total(&self, window: Window, now: DateTime<Utc>) -> Result<u64, HotStateError> {
        if !self.is_enabled(window) {
            return Ok(0);
        }
        let key = self.board_key("board", &self.period(window, now));
        self.conn.query(redis::cmd("ZCARD").arg(key)).await
    }

    async fn version(&self, window: Window) -> Result<u64, HotStateError> {
        let v: Option<u64> = self
            .conn
            .query(redis::cmd("HGET").arg(self.key("ver")).arg(window.as_str()))
            .await?;
        Ok(v.unwrap_or(0))
    }

    async fn cursor(&self) -> Result<Option<u64>, HotStateError> {
        Ok(self.cursors().await?.map(|(log, _)| log))
    }

    async fn released_cursor(&self) -> Result<Option<u64>, HotStateError> {
        Ok(self.cursors().await?.map(|(_, released)| released))
    }

    async fn apply(&self, events: &[BoardEvent], upto: u64) -> Result<ApplyOutcome, HotStateError> {
        let mut periods: Vec<Period> = Vec::new();
        let mut index: HashMap<(Window, i64), usize> = HashMap::new();
        let mut event_args: Vec<String> = Vec::with_capacity(events.len() * (4 + 3));
        for e in events {
            event_args.push(e.seq.to_string());
            event_args.push(e.player.as_str().to_string());
            event_args.push(e.xp.saturating_neg().to_string());
            event_args.push(e.received_at.timestamp_millis().to_string());
            for &w in &self.windows {
                let period = self.calendar.period_at(w, e.received_at);
                let n = periods.len();
                let i = *index
                    .entry((w, period.start.timestamp_millis()))
                    .or_insert_with(|| {
                        periods.push(period);
                        n
                    });
                event_args.push((i + 1).to_string());
            }
        }
        let mut inv = self.apply.prepare_invoke();
        inv.key(self.key("cursor"))
            .key(self.key("live"))
            .key(self.key("closed"))
            .key(self.key("ver"))
            .key(self.key("upd"))
            .key(self.key("erased"));
        for p in &periods {
            inv.key(self.board_key("board", p));
        }
        inv.arg(upto).arg(periods.len()).arg(self.windows.len());
        for p in &periods {
            inv.arg(p.window.as_str())
                .arg(member(p))
                .arg(p.end.timestamp_millis());
        }
        for a in &event_args {
            inv.arg(a);
        }
        let out: Vec<i64> = self.conn.script(&inv).await?;
        match out.as_slice() {
            [-1] => Ok(ApplyOutcome::NotBuilt),
            [counted, skipped, late @ ..] => {
                let mut late_periods = Vec::new();
                for pair in late.chunks(2) {
                    if let [p, n] = pair {
                        if let Some(period) = periods.get((*p as usize).wrapping_sub(1)) {
                            late_periods
                                .extend(std::iter::repeat_n(period.clone(), (*n).max(0) as usize));
                        }
                    }
                }
                Ok(ApplyOutcome::Applied {
                    counted: (*counted).max(0) as u64,
                    skipped: (*skipped).max(0) as u64,
                    late: late_periods,
                })
            }
            other => Err(corrupt("apply script answer", format!("{other:?}"))),
        }
    }

    async fn apply_released(
        &self,
        release: u64,
        event: &BoardEvent,
        except: &[Window],
    ) -> Result<ApplyOutcome, HotStateError> {
        let periods: Vec<Period> = self
            .windows
            .iter()
            .filter(|w| !except.contains(w))
            .map(|w| self.calendar.period_at(*w, event.received_at))
            .collect();
        let mut inv = self.apply_released.prepare_invoke();
        inv.key(self.key("cursor"))
            .key(self.key("released"))
            .key(self.key("live"))
            .key(self.key("closed"))
            .key(self.key("ver"))
            .key(self.key("upd"));
        for p in &periods {
            inv.key(self.board_key("board", p));
        }
        inv.arg(release)
            .arg(event.player.as_str())
            .arg(event.xp.saturating_neg().to_string())
            .arg(event.received_at.timestamp_millis());
        for p in &periods {
            inv.arg(p.window.as_str())
                .arg(member(p))
                .arg(p.end.timestamp_millis());
        }
        let out: Vec<i64> = self.conn.script(&inv).await?;
        match out.as_slice() {
            [-1] => Ok(ApplyOutcome::NotBuilt),
            [0] => Ok(ApplyOutcome::Applied {
                counted: 0,
                skipped: 1,
                late: Vec::new(),
            }),
            [1, late @ ..] => Ok(ApplyOutcome::Applied {
                counted: 1,
                skipped: 0,
                late: late
                    .iter()
                    .filter_map(|i| periods.get((*i as usize).wrapping_sub(1)).cloned())
                    .collect(),
            }),
            other => Err(corrupt(
                "apply-released script answer",
                format!("{other:?}"),
            )),
        }
    }

    async fn roll_over(&self, now: DateTime<Utc>) -> Result<Vec<FinishedPeriod>, HotStateError> {
        let now_ms = now.timestamp_millis();
        let candidates: Vec<String> = self
            .conn
            .query(
                redis::cmd("ZRANGEBYSCORE")
                    .arg(self.key("live"))
                    .arg("-inf")
                    .arg(now_ms),
            )
            .await?;
        let periods: Vec<Option<Period>> = candidates.iter().map(|m| parse_member(m)).collect();
        let mut inv = self.roll_over.prepare_invoke();
        inv.key(self.key("live"))
            .key(self.key("closed"))
            .key(self.key("ver"))
            .key(self.key("upd"));
        for (m, p) in candidates.iter().zip(&periods) {
            match p {
                Some(p) => inv
                    .key(self.board_key("board", p))
                    .key(self.board_key("ended", p)),
                // An unreadable member still gets claimed (so it stops coming back), on a
                // key of its own that holds nothing.
                None => inv
                    .key(self.key(&format!("bad:{m}")))
                    .key(self.key(&format!("bad-ended:{m}"))),
            };
        }
        inv.arg(now_ms).arg(candidates.len());
        for m in &candidates {
            inv.arg(m);
        }
        for w in &self.windows {
            inv.arg(w.as_str());
        }
        inv.arg(LEFTOVER_TTL_MS);
        let claimed: Vec<usize> = self.conn.script(&inv).await?;
        let mut finished = Vec::new();
        for j in claimed {
            match periods.get(j.wrapping_sub(1)).cloned().flatten() {
                Some(period) => {
                    let ended = self.board_key("ended", &period);
                    let entries = self.read_board(&ended).await?;
                    self.conn.query::<()>(redis::cmd("DEL").arg(&ended)).await?;
                    finished.push(FinishedPeriod { period, entries });
                }
                None => tracing::warn!(
                    member = candidates.get(j.wrapping_sub(1)).map(String::as_str),
                    "dropped an unreadable leaderboard period"
                ),
            }
        }
        Ok(finished)
    }

    async fn reset(&self, window: Window, now: DateTime<Utc>) -> Result<(), HotStateError> {
        let period = self.period(window, now);
        let mut pipe = redis::pipe();
        pipe.cmd("DEL")
            .arg(self.board_key("board", &period))
            .ignore();
        pipe.cmd("HDEL")
            .arg(self.key("upd"))
            .arg(member(&period))
            .ignore();
        pipe.cmd("HINCRBY")
            .arg(self.key("ver"))
            .arg(window.as_str())
            .arg(1)
            .ignore();
        self.conn.pipe(&pipe).await
    }

    async fn remove_player(&self, player: &PlayerId, upto: u64) -> Result<bool, HotStateError> {
        // The tombstone first, then the boards as they are after it: an apply before the
        // tombstone is in those boards and is removed below, an apply after it skips the player.
        let mut inv = self.erase.prepare_invoke();
        inv.key(self.key("erased"))
            .key(self.key("cursor"))
            .arg(player.as_str())
            .arg(upto);
        self.conn.script::<()>(&inv).await?;
        let live = self.live().await?;
        if live.is_empty() {
            return Ok(false);
        }
        let mut pipe = redis::pipe();
        for p in &live {
            pipe.cmd("ZREM")
                .arg(self.board_key("board", p))
                .arg(player.as_str());
        }
        let removed: Vec<u64> = self.conn.pipe(&pipe).await?;
        let mut touched: Vec<Window> = live
            .iter()
            .zip(&removed)
            .filter(|(_, n)| **n > 0)
            .map(|(p, _)| p.window)
            .collect();
        touched.dedup();
        if touched.is_empty() {
            return Ok(false);
        }
        let mut pipe = redis::pipe();
        for w in &touched {
            pipe.cmd("HINCRBY")
                .arg(self.key("ver"))
                .arg(w.as_str())
                .arg(1)
                .ignore();
        }
        self.conn.pipe::<()>(&pipe).await?;
        Ok(true)
    }

    async fn replace(
        &self,
        boards: Vec<(Period, Vec<(PlayerId, i64)>)>,
        cursor: u64,
        released: u64,
    ) -> Result<(), HotStateError> {
        // A token per rebuild, so two rebuilding processes never write the same scratch keys.
        let token = format!(
            "{}-{}",
            std::process::id(),
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        );
        let mut built: Vec<(String, Period)> = Vec::new();
        for (period, rows) in boards {
            if !self.is_enabled(period.window) {
                continue;
            }
            let tmp = self.board_key(&format!("tmp:{token}"), &period);
            self.write_board(&tmp, rows).await?;
            built.push((tmp, period));
        }
        let old = self.live().await?;
        let mut inv = self.commit.prepare_invoke();
        inv.key(self.key("cursor"))
            .key(self.key("released"))
            .key(self.key("live"))
            .key(self.key("closed"))
            .key(self.key("ver"))
            .key(self.key("upd"));
        for p in &old {
            inv.key(self.board_key("board", p));
        }
        for (tmp, p) in &built {
            inv.key(tmp).key(self.board_key("board", p));
        }
        inv.arg(cursor)
            .arg(released)
            .arg(old.len())
            .arg(built.len());
        for (_, p) in &built {
            inv.arg(member(p)).arg(p.end.timestamp_millis());
        }
        for w in &self.windows {
            inv.arg(w.as_str());
        }
        self.conn.script::<i64>(&inv).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_round_trip_even_with_bars_in_the_period_id() {
        let p = Period {
            window: Window::Seasonal,
            id: "s|1".into(),
            start: Utc.timestamp_millis_opt(1_000).single().expect("valid"),
            end: Utc.timestamp_millis_opt(2_000).single().expect("valid"),
        };
        assert_eq!(parse_member(&member(&p)), Some(p));
        assert_eq!(parse_member("hourly|1|2|x"), None);
        assert_eq!(parse_member("daily|x|2|x"), None);
    }

    #[test]
    fn scores_are_negated_exact_integers() {
        assert_eq!(xp_of("-150").ok(), Some(150));
        assert_eq!(xp_of("0").ok(), Some(0));
        assert_eq!(xp_of("-0").ok(), Some(0));
        assert_eq!(xp_of("25").ok(), Some(-25));
        assert_eq!(xp_of("-1e+15").ok(), Some(1_000_000_000_000_000));
        assert!(xp_of("1.5").is_err());
        assert!(xp_of("inf").is_err());
    }
}
