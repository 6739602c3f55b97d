//! The contract against a real three-node Redis Cluster, started here on spare loopback ports
//! in a temporary directory and torn down afterwards (also when a check fails: the nodes are
//! killed when the guard drops). Shows that the hash tags keep every multi-key operation in
//! one slot and that the scripts run on whichever node owns it.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use liveops_hotstate::testing::{engine_missing, unique_namespace};
use liveops_hotstate::RedisHotState;

use crate::suite;
use crate::Backend;

/// The nodes this test started; killed (by their own pids) when dropped.
struct Nodes {
    children: Vec<Child>,
    ports: Vec<u16>,
    _dir: tempfile::TempDir,
}

impl Drop for Nodes {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A port that is free, with its cluster bus port (+10000) free too.
fn spare_port(taken: &[u16]) -> Option<u16> {
    for _ in 0..200 {
        let l = TcpListener::bind("127.0.0.1:0").ok()?;
        let port = l.local_addr().ok()?.port();
        if port > 55_000 || taken.contains(&port) {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return Some(port);
        }
    }
    None
}

fn redis_cli(args: &[&str]) -> std::io::Result<std::process::Output> {
    Command::new("redis-cli").args(args).output()
}

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("timed out waiting for {what}"))
}

fn start_cluster() -> Result<Nodes, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut nodes = Nodes {
        children: Vec::new(),
        ports: Vec::new(),
        _dir: dir,
    };
    for i in 0..3 {
        let port = spare_port(&nodes.ports).ok_or("no spare port")?;
        let node_dir = nodes._dir.path().join(format!("node{i}"));
        std::fs::create_dir_all(&node_dir).map_err(|e| e.to_string())?;
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
            ])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(&node_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting redis-server: {e}"))?;
        nodes.children.push(child);
        nodes.ports.push(port);
    }
    for port in &nodes.ports {
        let p = port.to_string();
        wait_until(&format!("node {port}"), || {
            redis_cli(&["-p", &p, "ping"]).is_ok_and(|o| o.stdout.starts_with(b"PONG"))
        })?;
    }
    let addrs: Vec<String> = nodes
        .ports
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect();
    let mut args = vec!["--cluster", "create"];
    args.extend(addrs.iter().map(String::as_str));
    args.extend(["--cluster-replicas", "0", "--cluster-yes"]);
    let out = redis_cli(&args).map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&out.stdout)
        ));
    }
    for port in &nodes.ports {
        let p = port.to_string();
        wait_until(&format!("cluster_state:ok on {port}"), || {
            redis_cli(&["-p", &p, "cluster", "info"])
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("cluster_state:ok"))
        })?;
    }
    Ok(nodes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_holds_on_a_three_node_cluster() {
    if let Err(e) = Command::new("redis-server").arg("--version").output() {
        engine_missing("redis-server (for the cluster test)", &e);
        return;
    }
    let nodes = match tokio::task::spawn_blocking(start_cluster).await {
        Ok(Ok(n)) => n,
        Ok(Err(e)) => panic!("could not start the test cluster: {e}"),
        Err(e) => panic!("cluster start-up task: {e}"),
    };
    let url = nodes
        .ports
        .iter()
        .map(|p| format!("redis://127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(",");
    let state = RedisHotState::connect(&url, &unique_namespace())
        .await
        .expect("connects to the cluster");
    assert!(state.is_cluster());
    let b = Backend::Redis(state);
    suite::boards_order_ties_by_player_and_rank_from_one(&b).await;
    suite::boards_page_through_and_clamp_around(&b).await;
    suite::apply_twice_counts_each_event_once(&b).await;
    suite::concurrent_applies_count_each_event_once(&b).await;
    suite::replace_installs_exact_boards_and_the_cursor(&b).await;
    suite::rollover_hands_each_ended_period_out_once(&b).await;
    suite::reset_and_remove_player(&b).await;
    suite::an_erasure_keeps_events_read_before_it_off_the_boards(&b).await;
    suite::idempotency_replay_conflict_release_and_ttl(&b).await;
    suite::rate_limit_burst_then_wait_then_refill(&b).await;
    suite::blocks_expire_prune_and_load(&b).await;
    suite::player_gate_answers_the_block_and_the_flood_limit_together(&b).await;
    suite::player_gate_answers_concurrent_requests_each_for_their_player(&b).await;
    drop(nodes);
}
