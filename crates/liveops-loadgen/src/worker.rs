//! The scheduler and the workers.
//!
//! Every worker owns one connection and one request in flight. Requests are numbered; a worker
//! claims the next number from a shared counter when it is free, so the numbers (and the event
//! ids and players derived from them) are handed out in order without a channel.
//!
//! Paced (`--rate`): request `i` is due at `start + i / rate`. A free worker claims `i`, sleeps
//! until it is due and sends it; the latency is measured from the due time, not from the send.
//! When every connection is busy the due times keep passing, and that backlog shows up as
//! latency: a stalled server cannot make the generator politely wait (coordinated omission).
//! A `--duration` run stops sending at the end even if due requests are left; the report counts
//! them as the backlog. Flat out: a worker sends its next request as soon as it has the answer, and the latency is
//! the round trip.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::http::{Conn, TransportError};
use super::options::{Bound, Pace, Plan};
use super::payload::RequestWriter;
use super::stats::Stats;

/// Tokio timers have millisecond resolution; a request due within this margin is sent at once
/// rather than after a sleep that could overshoot by a millisecond. Its latency then counts from
/// the actual send, so sending early never flatters the figures.
const SEND_EARLY: Duration = Duration::from_millis(1);
/// How late past the end of a paced `--duration` run a due request may still be sent.
const END_GRACE: Duration = Duration::from_millis(10);
/// Pause after a failed connect, so a server that is down is not hammered with SYNs.
const RECONNECT_PAUSE: Duration = Duration::from_millis(50);

/// State shared by the workers, the progress bar and the Ctrl-C handler.
pub struct Shared {
    /// The next request number to claim.
    next: AtomicU64,
    /// Set by Ctrl-C: workers stop claiming.
    pub stop: AtomicBool,
    /// Events in answered requests (any status), for the progress bar.
    pub done_events: AtomicU64,
    /// Events not answered 2xx (refused or failed), for the progress bar.
    pub bad_events: AtomicU64,
}

impl Shared {
    pub fn new() -> Arc<Shared> {
        Arc::new(Shared {
            next: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            done_events: AtomicU64::new(0),
            bad_events: AtomicU64::new(0),
        })
    }
}

/// What a generator thread reports once its connections are open.
pub struct Ready {
    pub connected: usize,
    /// Why the first failed connection failed, if any did.
    pub first_error: Option<String>,
}

/// The main task's side of a generator thread.
pub struct GeneratorThread {
    pub ready: oneshot::Receiver<Ready>,
    /// Sending the common start time lets the workers go; dropping it ends the thread.
    pub start: oneshot::Sender<Instant>,
    pub done: oneshot::Receiver<Stats>,
}

/// Starts an OS thread with its own single-threaded runtime carrying one worker per writer.
///
/// Why a thread of its own rather than the CLI's multi-threaded runtime: on a machine shared with
/// the server, work stealing between runtime threads costs more per request than it gains, and a
/// single-threaded generator uses at most one core, leaving the rest to the server under test
/// (about 8 us of CPU per request on one thread against 10 us on a two-thread runtime: the
/// generator's CPU time over a `--count` run, from `/usr/bin/time`, divided by its requests).
/// `--threads` adds threads when one core is not enough.
pub fn spawn_thread(
    index: u32,
    plan: Arc<Plan>,
    shared: Arc<Shared>,
    writers: Vec<RequestWriter>,
) -> std::io::Result<GeneratorThread> {
    let (ready_tx, ready) = oneshot::channel();
    let (start, start_rx) = oneshot::channel::<Instant>();
    let (done_tx, done) = oneshot::channel();
    std::thread::Builder::new()
        .name(format!("loadgen-{index}"))
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Ready {
                        connected: 0,
                        first_error: Some(format!("cannot start a runtime: {e}")),
                    });
                    return;
                }
            };
            rt.block_on(async move {
                let conns =
                    futures::future::join_all(writers.iter().map(|_| Conn::connect(plan.addr)))
                        .await;
                let _ = ready_tx.send(Ready {
                    connected: conns.iter().filter(|c| c.is_ok()).count(),
                    first_error: conns
                        .iter()
                        .find_map(|c| c.as_ref().err().map(|e| e.to_string())),
                });
                let Ok(start) = start_rx.await else {
                    return;
                };
                let tasks: Vec<_> = writers
                    .into_iter()
                    .zip(conns)
                    .map(|(writer, conn)| {
                        tokio::spawn(run_worker(
                            plan.clone(),
                            shared.clone(),
                            writer,
                            conn.ok(),
                            start,
                        ))
                    })
                    .collect();
                let mut stats = Stats::default();
                for t in tasks {
                    // A worker only ends by returning its stats; a panic would be a bug, and
                    // losing its share of the counts is better than losing the whole report.
                    if let Ok(s) = t.await {
                        stats.merge(&s);
                    }
                }
                let _ = done_tx.send(stats);
            });
        })?;
    Ok(GeneratorThread { ready, start, done })
}

/// Requests due before the end of a paced `--duration` run: those with `index / rate < duration`.
pub fn due_within(duration: Duration, requests_per_sec: f64) -> u64 {
    (duration.as_secs_f64() * requests_per_sec).ceil() as u64
}

/// When request `index` is due, for a paced run.
pub fn due_time(start: Instant, index: u64, requests_per_sec: f64) -> Instant {
    start + Duration::from_secs_f64(index as f64 / requests_per_sec)
}

/// Runs one worker until the run's bound is reached; returns what it saw. `conn` is opened
/// before the start so that connecting does not count as the first requests' latency.
pub async fn run_worker(
    plan: Arc<Plan>,
    shared: Arc<Shared>,
    mut writer: RequestWriter,
    mut conn: Option<Conn>,
    start: Instant,
) -> Stats {
    let mut stats = Stats::default();
    let mut request = Vec::with_capacity(8 * 1024);
    let end = match plan.bound {
        Bound::Duration(d) => Some(start + d),
        Bound::Requests { .. } => None,
    };
    loop {
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
        let index = shared.next.fetch_add(1, Ordering::Relaxed);
        if let Bound::Requests { requests, .. } = plan.bound {
            if index >= requests {
                break;
            }
        }
        let due = match plan.pace {
            Pace::Rate { requests_per_sec } => {
                let due = due_time(start, index, requests_per_sec);
                if end.is_some_and(|end| due >= end) {
                    break;
                }
                if due > Instant::now() + SEND_EARLY {
                    tokio::time::sleep_until(due - SEND_EARLY).await;
                }
                // A run bounded by time ends on time even when the server fell behind: what was
                // due but not sent is reported as the backlog, not sent late for minutes. The
                // grace keeps timer jitter at the very end from counting as backlog.
                if end.is_some_and(|end| Instant::now() >= end + END_GRACE) {
                    break;
                }
                Some(due)
            }
            Pace::FlatOut => {
                if end.is_some_and(|end| Instant::now() >= end) {
                    break;
                }
                None
            }
        };
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
        let n_events = plan.events_in_request(index);
        let first_seq = index * u64::from(plan.batch_size);
        writer.write_request(plan.batch, first_seq, n_events, &mut request);

        if conn.is_none() {
            match Conn::connect(plan.addr).await {
                Ok(c) => conn = Some(c),
                Err(_) => {
                    stats.record_transport(TransportError::Connect, n_events);
                    shared
                        .done_events
                        .fetch_add(u64::from(n_events), Ordering::Relaxed);
                    shared
                        .bad_events
                        .fetch_add(u64::from(n_events), Ordering::Relaxed);
                    tokio::time::sleep(RECONNECT_PAUSE).await;
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };

        let sent = Instant::now();
        // Latency counts from the due time when late, from the send when (slightly) early.
        let from = due.map_or(sent, |due| due.min(sent));
        let outcome = tokio::time::timeout(plan.timeout, c.round_trip(&request)).await;
        let done = Instant::now();
        let ok = match outcome {
            Ok(Ok(resp)) => {
                stats.record_latency(done - from);
                stats.record_answer(plan.batch, n_events, resp.status, resp.body);
                // Approximate for batches (a 200 may refuse some events): only the bar reads it.
                if plan.batch {
                    resp.status == 200
                } else {
                    (200..300).contains(&resp.status)
                }
            }
            Ok(Err(kind)) => {
                stats.record_transport(kind, n_events);
                conn = None;
                false
            }
            Err(_elapsed) => {
                stats.record_transport(TransportError::Timeout, n_events);
                conn = None;
                false
            }
        };
        if conn.as_ref().is_some_and(|c| !c.reusable) {
            conn = None;
        }
        shared
            .done_events
            .fetch_add(u64::from(n_events), Ordering::Relaxed);
        if !ok {
            shared
                .bad_events
                .fetch_add(u64::from(n_events), Ordering::Relaxed);
        }
    }
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_times_are_evenly_spaced_from_the_start() {
        let start = Instant::now();
        assert_eq!(due_time(start, 0, 1000.0), start);
        assert_eq!(due_time(start, 1, 1000.0), start + Duration::from_millis(1));
        assert_eq!(
            due_time(start, 2500, 1000.0),
            start + Duration::from_millis(2500)
        );
        assert_eq!(due_time(start, 3, 0.5), start + Duration::from_secs(6));
        // Indices 0..=9 are due before 1 s at 10/s; 0..=2 before 2.5 s at 1/s.
        assert_eq!(due_within(Duration::from_secs(1), 10.0), 10);
        assert_eq!(due_within(Duration::from_millis(2500), 1.0), 3);
    }
}
