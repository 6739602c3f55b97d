//! Process-level faults of the scaled-out deployment: real `liveops` processes on
//! PostgreSQL + Redis + NATS JetStream, killed and cut off from an engine under signed load.
//!
//! - Several processes per role: two gateways and two processes of each consumer role share the
//!   engines; a gateway and the consumer leading a role are SIGKILLed mid-run and restarted, the
//!   standby takes the role over, and afterwards every acknowledged event counts exactly once in
//!   progression and on the daily, weekly and seasonal boards, as read from every process.
//! - NATS stopped under load (a private `nats-server`): the gateway answers 503 with
//!   `Retry-After` and never 202 while it is down, resumes by itself when it returns, and loses
//!   nothing it acknowledged.
//! - A split role on the embedded defaults refuses to start and names the URLs to set.
//!
//! Each test has its own PostgreSQL database and one `NAMESPACE` for its Redis keys and NATS
//! stream, all removed afterwards (`common::Engines`). What the load sent and what its answers
//! prove is kept by the ledger shared with `crash.rs` (`common::ledger`).

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::ledger::{
    resend_all, settle, verdict, Fate, Ledger, LoadRun, LoadSpec, Outcome, Targets,
};
use common::{run_to_exit, Engines, Server};
use liveops_client::Client;

/// The fairness guard and the flood gate are not under test: nothing may be refused, flagged
/// into quarantine or blocked, or the fate of a resent event could not be told from its answer.
/// The leader module logs at info, so the test can tell which process leads a role.
const SERVER_ENV: &[(&str, &str)] = &[
    ("FLOOD_MAX_PER_SEC", "1000000"),
    ("ANOMALY_Z", "1000"),
    ("ANOMALY_ACTION", "flag"),
    ("LOG_LEVEL", "warn,liveops_server::leader=info"),
];
const CONSUMER_ROLES: [&str; 3] = ["fairness", "progression", "leaderboard"];
const WINDOWS: [&str; 3] = ["daily", "weekly", "seasonal"];
/// How long the pipeline may take to apply everything once the load stopped.
const CATCH_UP: Duration = Duration::from_secs(30);
/// How long a standby may take to lead a role after its leader died: it retries every second
/// (typically 0.2 to 1 s here); the margin is for a machine busy with other builds.
const TAKEOVER: Duration = Duration::from_secs(10);

/// The two load tests each run many processes on a 2-core machine; run them one at a time so
/// that their timing checks measure the server, not the contention.
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The environment of a process on `engines`, with the test's settings.
fn server_env(engines: &Engines, db_connections: u32) -> Vec<(String, String)> {
    let mut env = engines.env(db_connections);
    env.extend(
        SERVER_ENV
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    env
}

fn as_pairs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// What the processes show about every player.
#[derive(PartialEq, Debug)]
struct Observed {
    /// Per progression process, progress `xp` by player index (`None`: 404).
    xp: Vec<Vec<Option<u64>>>,
    /// Per leaderboard process and window: the board's period and each listed player's score.
    boards: Vec<Vec<(String, HashMap<String, u64>)>>,
}

/// Reads every player's progress from each of `progression`, and every player's score on each
/// window from each of `leaderboards` (`GET /leaderboard?players=...`, the friends board).
async fn observe(
    spec: &LoadSpec,
    progression: &[Client],
    leaderboards: &[Client],
) -> Result<Observed, String> {
    let mut xp = Vec::new();
    for client in progression {
        let mut of_process = Vec::with_capacity(spec.players);
        for p in 0..spec.players {
            let id = spec.player_id(p);
            let r = client
                .get(&format!("/players/{id}/progress"))
                .await
                .map_err(|e| e.to_string())?;
            match r.status {
                200 => {
                    of_process.push(Some(r.body["xp"].as_u64().ok_or_else(|| {
                        format!("progress of {id} has no integer xp: {}", r.text)
                    })?))
                }
                404 => of_process.push(None),
                s => return Err(format!("progress of {id} answered {s}: {}", r.text)),
            }
        }
        xp.push(of_process);
    }
    let players: Vec<String> = (0..spec.players).map(|p| spec.player_id(p)).collect();
    let mut boards = Vec::new();
    for client in leaderboards {
        let mut of_process = Vec::new();
        for window in WINDOWS {
            let mut scores = HashMap::new();
            let mut period = String::new();
            // The friends board takes at most 200 players per request.
            for chunk in players.chunks(200) {
                let r = client
                    .get(&format!(
                        "/leaderboard?window={window}&players={}",
                        chunk.join(",")
                    ))
                    .await
                    .map_err(|e| e.to_string())?;
                if r.status != 200 {
                    return Err(format!(
                        "the {window} board answered {}: {}",
                        r.status, r.text
                    ));
                }
                period = r.body["period"].as_str().unwrap_or_default().to_string();
                let mut entries: Vec<(u64, u64, String)> = Vec::new();
                for e in r.body["entries"].as_array().cloned().unwrap_or_default() {
                    let id = e["playerId"].as_str().unwrap_or_default().to_string();
                    let score = e["score"].as_u64().unwrap_or(u64::MAX);
                    let rank = e["rank"].as_u64().unwrap_or(0);
                    if scores.insert(id.clone(), score).is_some() {
                        return Err(format!("{id} is listed twice on the {window} board"));
                    }
                    entries.push((rank, score, id));
                }
                // Ranks follow the scores (`docs/api.md`: higher first, ties by playerId).
                entries.sort();
                for pair in entries.windows(2) {
                    let ((r1, s1, p1), (r2, s2, p2)) = (&pair[0], &pair[1]);
                    if r1 == r2 || s1 < s2 || (s1 == s2 && p1 > p2) {
                        return Err(format!(
                            "{window} ranks disagree with scores: {p1} rank {r1} score {s1}, {p2} rank {r2} score {s2}"
                        ));
                    }
                }
            }
            of_process.push((period, scores));
        }
        boards.push(of_process);
    }
    Ok(Observed { xp, boards })
}

/// The differences between what the processes show and what was committed. A window whose
/// period rolled over during the test (midnight, a new week) cannot be compared and is left
/// out with a notice.
fn mismatches(
    spec: &LoadSpec,
    expected: &[u64],
    periods_at_start: &[String],
    seen: &Observed,
) -> Vec<String> {
    let mut out = Vec::new();
    for (process, xp) in seen.xp.iter().enumerate() {
        for (p, &want) in expected.iter().enumerate() {
            let got = xp[p].unwrap_or(0);
            if got != want {
                out.push(format!(
                    "progression process {process}: {} xp {got} != {want} committed ({})",
                    spec.player_id(p),
                    verdict(got, want)
                ));
            }
        }
    }
    for (process, windows) in seen.boards.iter().enumerate() {
        for ((window, (period, scores)), at_start) in
            WINDOWS.iter().zip(windows).zip(periods_at_start)
        {
            if period != at_start {
                eprintln!("the {window} period rolled over ({at_start} -> {period}); not compared");
                continue;
            }
            for (p, &want) in expected.iter().enumerate() {
                let got = scores.get(&spec.player_id(p)).copied().unwrap_or(0);
                if got != want {
                    out.push(format!(
                        "leaderboard process {process}: {} {window} score {got} != {want} committed ({})",
                        spec.player_id(p),
                        verdict(got, want)
                    ));
                }
            }
        }
    }
    out
}

/// The current period of each window, as `client` (a leaderboard process) reports it.
async fn periods(client: &Client) -> Vec<String> {
    let mut out = Vec::new();
    for window in WINDOWS {
        let r = client
            .get(&format!("/leaderboard?window={window}&limit=1"))
            .await
            .expect("reading a board");
        assert_eq!(r.status, 200, "the {window} board: {}", r.text);
        out.push(r.body["period"].as_str().unwrap_or_default().to_string());
    }
    out
}

/// Waits until the pipeline shows exactly the committed sums, everywhere; fails otherwise,
/// with what PostgreSQL holds of the players that differ and the processes' logs.
async fn assert_applied_exactly_once(
    ledger: &Arc<Mutex<Ledger>>,
    progression: &[Client],
    leaderboards: &[Client],
    periods_at_start: &[String],
    engines: &Engines,
    logs: impl Fn() -> String,
) -> usize {
    assert_ledger_clean(ledger, engines).await;
    let (expected, committed) = ledger.lock().unwrap().expected();
    let spec = ledger.lock().unwrap().spec;
    let problems = settle(
        || observe(&spec, progression, leaderboards),
        |seen| mismatches(&spec, &expected, periods_at_start, seen),
        CATCH_UP,
    )
    .await;
    if problems.is_empty() {
        return committed;
    }
    let players: Vec<usize> = (0..spec.players)
        .filter(|p| {
            // Mismatch lines read "<process>: <playerId> xp|score ...".
            let id = format!(": {} ", spec.player_id(*p));
            problems.iter().any(|m| m.contains(&id))
        })
        .collect();
    let diagnosis = diagnose(engines, ledger, &players)
        .await
        .unwrap_or_else(|e| format!("(could not read PostgreSQL: {e})"));
    panic!(
        "{} of the effects of {committed} committed events differ, first ones:\n{}\n\n{diagnosis}\n\nlogs:\n{}",
        problems.len(),
        problems
            .iter()
            .take(30)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n"),
        logs()
    );
}

/// What the system of record says, for a failure report: gaps in the recorded log (JetStream
/// numbers messages without gaps, and fairness records each under its stream seq), the
/// consumers' cursors, and where each acknowledged event of the differing players is.
async fn diagnose(
    engines: &Engines,
    ledger: &Arc<Mutex<Ledger>>,
    players: &[usize],
) -> Result<String, sqlx::Error> {
    use sqlx::Connection;
    let mut db = sqlx::PgConnection::connect(engines.pg_url()).await?;
    let (count, max): (i64, Option<i64>) = sqlx::query_as("SELECT count(*), max(seq) FROM events")
        .fetch_one(&mut db)
        .await?;
    let gaps: Vec<i64> = sqlx::query_scalar(
        "SELECT s FROM generate_series(1, (SELECT coalesce(max(seq), 0) FROM events)) s \
         WHERE NOT EXISTS (SELECT 1 FROM events WHERE seq = s) ORDER BY s LIMIT 50",
    )
    .fetch_all(&mut db)
    .await?;
    let cursors: Vec<(String, i64)> =
        sqlx::query_as("SELECT consumer, seq FROM consumer_offsets ORDER BY consumer")
            .fetch_all(&mut db)
            .await?;
    let mut out = format!(
        "PostgreSQL: {count} events recorded, max seq {max:?}, seqs missing (first 50): {gaps:?}; cursors {cursors:?}"
    );
    let spec = ledger.lock().unwrap().spec;
    for &p in players.iter().take(5) {
        let events = ledger.lock().unwrap().events_of(p);
        let ids: Vec<String> = events.iter().map(|e| e.0.clone()).collect();
        let recorded: HashMap<String, i64> = sqlx::query_as::<_, (String, i64)>(
            "SELECT event_id, seq FROM events WHERE event_id = ANY($1)",
        )
        .bind(&ids)
        .fetch_all(&mut db)
        .await?
        .into_iter()
        .collect();
        let not_recorded: Vec<String> = events
            .iter()
            .filter(|(id, _, fate)| *fate == Fate::Acked && !recorded.contains_key(id))
            .map(|(id, xp, _)| format!("{id} ({xp} XP)"))
            .collect();
        let unacked_recorded: Vec<String> = events
            .iter()
            .filter(|(id, _, fate)| *fate != Fate::Acked && recorded.contains_key(id))
            .map(|(id, _, fate)| format!("{id} ({fate:?})"))
            .collect();
        out.push_str(&format!(
            "\n{}: {} events sent, acknowledged but not recorded: {not_recorded:?}; recorded but not acknowledged: {unacked_recorded:?}",
            spec.player_id(p),
            events.len()
        ));
    }
    let _ = db.close().await;
    Ok(out)
}

/// Fails on any contract violation the ledger saw, with how busy PostgreSQL is (a saturated
/// shared server shows up as timeouts).
async fn assert_ledger_clean(ledger: &Arc<Mutex<Ledger>>, engines: &Engines) {
    let report = ledger.lock().unwrap().violations_report();
    if let Some(report) = report {
        panic!("{report}\n{}", engines.postgres_state().await);
    }
}

/// Which of `processes` leads `role` now: the one that most recently logged winning it.
fn leader(processes: &[Server], role: &str) -> Option<usize> {
    processes
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.led_since(role).map(|t| (t, i)))
        .max()
        .map(|(_, i)| i)
}

/// Waits until some process of `processes` other than `not` leads `role`.
async fn wait_for_leader(
    engines: &Engines,
    processes: &[Server],
    role: &str,
    not: Option<usize>,
) -> usize {
    let deadline = Instant::now() + TAKEOVER;
    loop {
        if let Some(i) = leader(processes, role).filter(|i| Some(*i) != not) {
            return i;
        }
        if Instant::now() > deadline {
            let tails: Vec<String> = processes.iter().map(|s| s.log_tail()).collect();
            panic!(
                "no {role} process took the role over within {TAKEOVER:?}; {}; logs:\n{}",
                engines.postgres_state().await,
                tails.join("\n---\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn multi_process_sigkill_of_a_gateway_and_role_leaders_applies_acked_events_exactly_once() {
    const TEST: &str = "scaleout_multi_process";
    let Some(engines) = Engines::acquire(TEST).await else {
        return;
    };
    let _heavy = HEAVY.lock().await;
    let started = Instant::now();
    let data = tempfile::TempDir::new().unwrap();
    let logs = tempfile::TempDir::new().unwrap();
    // Eight processes on one PostgreSQL: small pools.
    let env = server_env(&engines, 6);
    let env = as_pairs(&env);
    let spec = LoadSpec {
        player_prefix: "mp_player",
        players: 200,
        tasks: 16,
        batch_size: 20,
        unavailable_ok: false,
    };

    // Everything starts at once, as a deployment would: the migrations, the stream and the
    // elections race.
    let start = |role: &'static str| Server::start_role(role, data.path(), logs.path(), &env);
    let (gateways, consumers) = futures::join!(
        futures::future::join_all([start("gateway"), start("gateway")]),
        futures::future::join_all(CONSUMER_ROLES.iter().flat_map(|r| [start(r), start(r)])),
    );
    let mut gateways = gateways;
    // Two processes per role, in CONSUMER_ROLES order.
    let mut roles: HashMap<&str, Vec<Server>> = HashMap::new();
    let mut consumers = consumers.into_iter();
    for role in CONSUMER_ROLES {
        roles.insert(
            role,
            vec![consumers.next().unwrap(), consumers.next().unwrap()],
        );
    }
    for role in CONSUMER_ROLES {
        wait_for_leader(&engines, &roles[role], role, None).await;
    }
    eprintln!("8 processes started and elected in {:?}", started.elapsed());
    let periods_at_start = periods(&roles["leaderboard"][0].client).await;

    let ledger = Ledger::new(spec);
    let targets = Targets::new(gateways.iter().map(|g| g.client.clone()).collect());
    let load = LoadRun::start(&ledger, &targets, "mp");
    // Each round: load, then SIGKILL one gateway and the leaders of some roles while requests
    // are in flight; the load goes on against the other gateway; restart the killed ones.
    let rounds: [(usize, &[&str]); 2] = [(0, &["fairness"]), (1, &["progression", "leaderboard"])];
    for (round, (gateway, killed_roles)) in rounds.iter().enumerate() {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        gateways[*gateway].sigkill();
        let mut killed = Vec::new();
        for role in *killed_roles {
            let i = leader(&roles[role], role).expect("every role has a leader");
            roles.get_mut(role).unwrap()[i].sigkill();
            killed.push((*role, i, Instant::now()));
        }
        let killed_at = Instant::now();
        // The standbys take over while the killed processes are down.
        for (role, i, at) in &killed {
            let new = wait_for_leader(&engines, &roles[role], role, Some(*i)).await;
            eprintln!(
                "round {round}: {role} taken over by its standby within {:?} of the kill",
                at.elapsed()
            );
            assert_ne!(new, *i);
        }
        gateways[*gateway].restart().await;
        targets.set(*gateway, gateways[*gateway].client.clone());
        for (role, i, _) in &killed {
            roles.get_mut(role).unwrap()[*i].restart().await;
        }
        eprintln!(
            "round {round}: gateway {gateway} and {killed_roles:?} leaders killed and restarted in {:?}",
            killed_at.elapsed()
        );
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    load.stop().await;
    assert_ledger_clean(&ledger, &engines).await;

    let resend_started = Instant::now();
    let (resent, unknown) = resend_all(&gateways[0].client, &ledger, "after the load", 16).await;
    eprintln!(
        "resent {resent} events ({unknown} of unknown fate) in {:?}",
        resend_started.elapsed()
    );

    let drain_started = Instant::now();
    let clients =
        |role: &str| -> Vec<Client> { roles[role].iter().map(|s| s.client.clone()).collect() };
    let all_logs = || {
        gateways
            .iter()
            .chain(roles.values().flatten())
            .map(|s| s.log_tail())
            .collect::<Vec<_>>()
            .join("\n---\n")
    };
    let committed = assert_applied_exactly_once(
        &ledger,
        &clients("progression"),
        &clients("leaderboard"),
        &periods_at_start,
        &engines,
        all_logs,
    )
    .await;
    assert!(
        committed > 1000,
        "only {committed} events were committed: the load did not run"
    );
    for s in gateways.iter_mut().chain(roles.values_mut().flatten()) {
        assert!(
            s.exited().is_none(),
            "a process died on its own; log:\n{}",
            s.log_tail()
        );
    }
    eprintln!(
        "{committed} events committed over {} players, applied exactly once (drained in {:?}); {:?} in all",
        spec.players,
        drain_started.elapsed(),
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nats_outage_answers_503_and_recovers_without_losing_acked_events() {
    const TEST: &str = "scaleout_nats_outage";
    /// How long NATS stays down: longer than the gateway's PubAck timeout (2 s), so requests
    /// sent during the outage are answered while it lasts.
    const DOWN: Duration = Duration::from_secs(4);
    let mut nats = match liveops_bus::testing::NatsServer::spawn() {
        Ok(n) => n,
        Err(e) => {
            liveops_store::testing::skip_or_fail(
                &format!("cannot start a private nats-server ({e})"),
                "apt-get install -y nats-server, or set NATS_SERVER_BIN",
            );
            return;
        }
    };
    let Some(engines) = Engines::acquire_on(TEST, nats.url()).await else {
        return;
    };
    let _heavy = HEAVY.lock().await;
    let data = tempfile::TempDir::new().unwrap();
    let logs = tempfile::TempDir::new().unwrap();
    let env = server_env(&engines, 8);
    let mut server = Server::start(data.path(), logs.path(), &as_pairs(&env)).await;
    let pid = server.pid();
    let spec = LoadSpec {
        player_prefix: "outage_player",
        players: 50,
        tasks: 8,
        batch_size: 10,
        unavailable_ok: true,
    };
    let periods_at_start = periods(&server.client).await;
    let ledger = Ledger::new(spec);
    let load = LoadRun::start(
        &ledger,
        &Targets::new(vec![server.client.clone()]),
        "outage",
    );

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let stopped_at = Instant::now();
    nats.stop();
    // While it is down, /readyz says so.
    tokio::time::sleep(DOWN / 2).await;
    let ready = server.client.get("/readyz").await.expect("/readyz answers");
    assert_eq!(ready.status, 503, "/readyz with NATS down: {}", ready.text);
    assert_ne!(ready.body["checks"]["bus"], "ok", "{}", ready.text);
    tokio::time::sleep(DOWN - DOWN / 2).await;
    let restarting_at = Instant::now();
    nats.start().expect("restarting nats-server");
    // The load goes on: 202s must resume without restarting liveops.
    let resumed = {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let resumed = ledger
                .lock()
                .unwrap()
                .answers
                .iter()
                .find(|a| a.sent > restarting_at && a.outcome == Outcome::Accepted)
                .map(|a| a.answered);
            if let Some(at) = resumed {
                break at;
            }
            if Instant::now() > deadline {
                panic!(
                    "no 202 within 15 s of NATS coming back; log:\n{}",
                    server.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    load.stop().await;
    assert_eq!(server.pid(), pid);
    assert!(
        server.exited().is_none(),
        "liveops died during the outage; log:\n{}",
        server.log_tail()
    );

    assert_ledger_clean(&ledger, &engines).await;
    {
        let l = ledger.lock().unwrap();
        // Every request sent after NATS died and answered before it came back: 503, never a
        // 202 (nothing could have acknowledged it) and never a dropped connection.
        let during: Vec<_> = l
            .answers
            .iter()
            .filter(|a| a.sent >= stopped_at && a.answered < restarting_at)
            .collect();
        let wrong: Vec<_> = during
            .iter()
            .filter(|a| a.outcome != Outcome::Unavailable)
            .collect();
        assert!(
            wrong.is_empty(),
            "{} of {} requests sent during the outage were not answered 503: {wrong:?}",
            wrong.len(),
            during.len()
        );
        let first_503 = l
            .answers
            .iter()
            .filter(|a| a.answered >= stopped_at && a.outcome == Outcome::Unavailable)
            .map(|a| a.answered - stopped_at)
            .min()
            .expect("some request was answered 503 while NATS was down");
        assert!(
            first_503 < Duration::from_secs(5),
            "the first 503 came {first_503:?} after NATS died"
        );
        eprintln!(
            "outage: {} requests answered 503 while NATS was down, the first {first_503:?} after it died; 202s resumed {:?} after its restart",
            during.len(),
            resumed - restarting_at
        );
    }
    let ready = server.client.get("/readyz").await.expect("/readyz answers");
    assert_eq!(ready.status, 200, "/readyz after recovery: {}", ready.text);

    let (resent, unknown) = resend_all(&server.client, &ledger, "after the outage", 8).await;
    eprintln!("resent {resent} events ({unknown} of unknown fate)");
    let committed = assert_applied_exactly_once(
        &ledger,
        std::slice::from_ref(&server.client),
        std::slice::from_ref(&server.client),
        &periods_at_start,
        &engines,
        || server.log_tail(),
    )
    .await;
    assert!(
        committed > 200,
        "only {committed} events were committed: the load did not run"
    );
    eprintln!("{committed} events committed across the outage, applied exactly once");
}

#[test]
fn a_split_role_on_the_embedded_defaults_refuses_to_start_and_names_the_urls() {
    let data = tempfile::TempDir::new().unwrap();
    for role in ["gateway", "fairness", "progression", "leaderboard", "web"] {
        let (status, stderr) = run_to_exit(&["serve", "--role", role], data.path(), &[]);
        assert!(!status.success(), "--role {role} started: {stderr}");
        assert_eq!(status.code(), Some(1), "--role {role}: {stderr}");
        for needed in [
            "DB_URL=postgres://",
            "BUS_KIND=nats",
            "BUS_CONN=nats://",
            "REDIS_URL=redis://",
        ] {
            assert!(
                stderr.contains(needed),
                "--role {role}: the error does not name {needed}: {stderr}"
            );
        }
        assert!(stderr.contains(&format!("--role {role}")), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    // With some engines configured, only the missing ones are named (nothing is connected to
    // before the check, so the URLs need not answer).
    let (status, stderr) = run_to_exit(
        &["serve", "--role", "gateway"],
        data.path(),
        &[
            ("DB_URL", "postgres://postgres@127.0.0.1:1/none"),
            ("REDIS_URL", "redis://127.0.0.1:1"),
        ],
    );
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("BUS_KIND=nats"), "{stderr}");
    assert!(!stderr.contains("DB_URL="), "{stderr}");
    assert!(!stderr.contains("REDIS_URL="), "{stderr}");
}
