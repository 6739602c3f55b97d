//! Durability under `kill -9` (`docs/operations.md`): a `202` means the event is in the system of
//! record, so a crash loses nothing that was acknowledged, and after the restart every event is
//! applied exactly once, to progression and to the leaderboards alike.
//!
//! The test runs the real binary under concurrent load (single events, batches, retries of
//! acknowledged eventIds), kills it with SIGKILL mid-flight, restarts it on the same data
//! directory and resends everything: acknowledged events must be known (208), events whose fate
//! was unknown (the request failed in transport) may be either. Then each player's XP and
//! seasonal score must equal the sum of its events' XP, each counted once. The ledger and the
//! load are shared with the scale-out tests (`common::ledger`).

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::ledger::{resend_all, settle, verdict, Ledger, LoadRun, LoadSpec, Targets};
use common::Server;
use liveops_client::Client;

const SPEC: LoadSpec = LoadSpec {
    player_prefix: "crash_player",
    players: 50,
    tasks: 16,
    batch_size: 20,
    unavailable_ok: false,
};
const PLAYERS: usize = SPEC.players;
/// How long the load runs before the SIGKILL, per kill/restart cycle.
const LOAD_BEFORE_KILL: [Duration; 2] = [Duration::from_millis(2000), Duration::from_millis(1600)];
/// How long the pipeline may take to catch up after the last restart.
const CATCH_UP: Duration = Duration::from_secs(20);
/// The fairness guard is not under test here: nothing may be flooded, quarantined or blocked,
/// or the fate of a resent event could not be told from its answer.
const SERVER_ENV: &[(&str, &str)] = &[
    ("FLOOD_MAX_PER_SEC", "1000000"),
    ("ANOMALY_Z", "1000"),
    ("ANOMALY_ACTION", "flag"),
];

fn player_id(i: usize) -> String {
    SPEC.player_id(i)
}

/// What the server says about every player.
#[derive(PartialEq)]
struct Observed {
    /// Progress `xp` by player index; `None` = 404 (no progress).
    xp: Vec<Option<u64>>,
    /// The full seasonal board, read page by page: playerId -> score.
    board: HashMap<String, u64>,
}

async fn observe(client: &Client) -> Result<Observed, String> {
    let mut xp = Vec::with_capacity(PLAYERS);
    for p in 0..PLAYERS {
        let r = client
            .get(&format!("/players/{}/progress", player_id(p)))
            .await
            .map_err(|e| e.to_string())?;
        match r.status {
            200 => xp.push(Some(r.body["xp"].as_u64().ok_or_else(|| {
                format!("progress of {} has no integer xp: {}", player_id(p), r.text)
            })?)),
            404 => xp.push(None),
            s => {
                return Err(format!(
                    "progress of {} answered {s}: {}",
                    player_id(p),
                    r.text
                ))
            }
        }
    }
    let mut board = HashMap::new();
    let page = 20;
    let mut offset = 0;
    loop {
        let r = client
            .get(&format!(
                "/leaderboard?window=seasonal&limit={page}&offset={offset}"
            ))
            .await
            .map_err(|e| e.to_string())?;
        if r.status != 200 {
            return Err(format!(
                "the seasonal board answered {}: {}",
                r.status, r.text
            ));
        }
        let entries = r.body["entries"].as_array().cloned().unwrap_or_default();
        for e in &entries {
            let id = e["playerId"].as_str().unwrap_or_default().to_string();
            let score = e["score"].as_u64().unwrap_or(u64::MAX);
            if board.insert(id.clone(), score).is_some() {
                return Err(format!("{id} appears twice on the seasonal board"));
            }
        }
        offset += page;
        let total = r.body["total"].as_u64().unwrap_or(0) as usize;
        if entries.is_empty() || offset >= total {
            break;
        }
    }
    Ok(Observed { xp, board })
}

/// The differences between what the server shows and what was committed.
fn mismatches(expected: &[u64], seen: &Observed) -> Vec<String> {
    let Observed { xp, board } = seen;
    let mut out = Vec::new();
    for (p, &want) in expected.iter().enumerate() {
        let id = player_id(p);
        let got = xp[p].unwrap_or(0);
        if got != want {
            out.push(format!(
                "{id}: progress xp {got} != {want} committed ({})",
                verdict(got, want)
            ));
        }
        let score = board.get(&id).copied().unwrap_or(0);
        if score != want {
            out.push(format!(
                "{id}: seasonal score {score} != {want} committed ({})",
                verdict(score, want)
            ));
        }
    }
    for id in board.keys() {
        if !(0..PLAYERS).any(|p| &player_id(p) == id) {
            out.push(format!("unexpected player {id} on the seasonal board"));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_events_survive_sigkill_exactly_once() {
    let started = Instant::now();
    let data = tempfile::TempDir::new().unwrap();
    let logs = tempfile::TempDir::new().unwrap();
    let ledger = Ledger::new(SPEC);

    let mut server = Server::start(data.path(), logs.path(), SERVER_ENV).await;
    for (cycle, duration) in LOAD_BEFORE_KILL.iter().enumerate() {
        let cycle = cycle + 1;
        let load = LoadRun::start(
            &ledger,
            &Targets::new(vec![server.client.clone()]),
            &format!("crash-c{cycle}"),
        );
        tokio::time::sleep(*duration).await;
        server.sigkill();
        load.stop().await;
        let killed_at = Instant::now();
        server.restart().await;
        let restart = killed_at.elapsed();
        let (resent, unknown) = resend_all(
            &server.client,
            &ledger,
            &format!("after restart {cycle}"),
            SPEC.tasks,
        )
        .await;
        eprintln!(
            "cycle {cycle}: restarted in {restart:?}, resent {resent} events ({unknown} of unknown fate) in {:?}",
            killed_at.elapsed() - restart
        );
    }

    let (expected, committed) = ledger.lock().unwrap().expected();
    assert!(
        committed > 500,
        "only {committed} events were committed: the load did not run"
    );

    let problems = settle(
        || async {
            observe(&server.client)
                .await
                .map_err(|e| format!("{e}; log:\n{}", server.log_tail()))
        },
        |seen| mismatches(&expected, seen),
        CATCH_UP,
    )
    .await;
    assert!(
        problems.is_empty(),
        "after two SIGKILLs, {} of {committed} committed events' effects differ:\n{}",
        problems.len(),
        problems.join("\n")
    );

    // The per-player rank endpoint reads the same board.
    for (p, &want) in expected.iter().enumerate() {
        let r = server
            .client
            .get(&format!(
                "/leaderboard/players/{}?window=seasonal",
                player_id(p)
            ))
            .await
            .unwrap();
        if want == 0 {
            assert_eq!(r.status, 404, "{}: {}", player_id(p), r.text);
        } else {
            assert_eq!(r.status, 200, "{}: {}", player_id(p), r.text);
            assert_eq!(r.body["score"].as_u64(), Some(want), "{}", player_id(p));
        }
    }
    eprintln!(
        "{committed} events committed over {PLAYERS} players, verified in {:?} total",
        started.elapsed()
    );
}
