//! The commands as an operator runs them: the offline commands against a real data dir
//! (`rebuild` prints what the log says, `snapshot` archives it, `verify-receipt` checks a
//! receipt the server issued), `send` signing with the dev secret file the server generated,
//! and the configuration's help and errors, which name the variables.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{run_to_exit, Server, SECRET};
use serde_json::json;

fn liveops(data_dir: &std::path::Path, args: &[&str]) -> (bool, String) {
    liveops_with(
        args,
        &[
            ("DATA_DIR", data_dir.to_str().unwrap()),
            ("HMAC_SECRET", SECRET),
        ],
    )
}

/// Runs `liveops <args>` with only `env` as its environment; returns whether it succeeded and
/// what it printed (stdout, then stderr).
fn liveops_with(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_liveops"))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("running liveops");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test]
async fn rebuild_snapshot_and_verify_receipt_work_on_a_live_data_dir() {
    let data = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), logs.path(), &[]).await;
    let event = json!({"eventId": "cli-1", "type": "progression", "playerId": "cli_player", "ts": 1,
        "payload": {"deltaXp": 1500, "activity": "quest"}});
    assert_eq!(
        server.client.post_event_json(&event).await.unwrap().status,
        202
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let p = server
            .client
            .get("/players/cli_player/progress")
            .await
            .unwrap();
        if p.status == 200 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "event never applied");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (ok, out) = liveops(data.path(), &["rebuild", "--top", "5"]);
    assert!(ok, "{out}");
    assert!(out.contains("cli_player") && out.contains("1500"), "{out}");
    let (ok, out) = liveops(data.path(), &["snapshot"]);
    assert!(ok, "{out}");
    let snaps = data.path().join("archive/snapshots/seasonal");
    assert!(
        std::fs::read_dir(&snaps)
            .map(|d| d.count() > 0)
            .unwrap_or(false),
        "{out}"
    );

    let receipt = server
        .client
        .claim_reward("cli_player", "lvl2_gold_100")
        .await
        .unwrap()
        .body;
    let file = data.path().join("receipt.json");
    std::fs::write(&file, serde_json::to_vec(&receipt).unwrap()).unwrap();
    let (ok, out) = liveops(data.path(), &["verify-receipt", file.to_str().unwrap()]);
    assert!(ok && out.contains("\"valid\":true"), "{out}");
    let mut forged = receipt.clone();
    forged["item"] = json!("chest_rare");
    std::fs::write(&file, serde_json::to_vec(&forged).unwrap()).unwrap();
    let (ok, out) = liveops(data.path(), &["verify-receipt", file.to_str().unwrap()]);
    assert!(!ok && out.contains("\"valid\":false"), "{out}");
}

#[test]
fn a_bad_value_names_its_variable_what_is_expected_and_what_was_given() {
    let data = tempfile::tempdir().unwrap();
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("PORT", "abc")],
            "PORT: expected a port number 0-65535 (0 picks any free port), got \"abc\"",
        ),
        (
            &[("ENV", "production")],
            "ENV: expected one of dev, staging, prod, got \"production\"",
        ),
        (
            &[("IDEMP_TTL", "forever")],
            "IDEMP_TTL: expected a duration such as 300s",
        ),
        (
            &[("LB_WINDOWS", "daily,hourly")],
            "LB_WINDOWS: \"hourly\" is not a window",
        ),
        (
            &[("TRUSTED_PROXIES", "10.0.0.0/33")],
            "TRUSTED_PROXIES: \"10.0.0.0/33\" is not a CIDR",
        ),
        (
            &[("BUS_KIND", "nats")],
            "BUS_KIND: BUS_KIND=nats needs PostgreSQL as the system of record: set DB_URL",
        ),
        (
            &[("ENV", "prod"), ("HMAC_SECRET", "")],
            "HMAC_SECRET: is required with ENV=prod",
        ),
        (
            &[("SEASON_ID", "s1")],
            "SEASON_START: is unset: SEASON_ID, SEASON_START and SEASON_END are set together",
        ),
    ];
    for (env, expected) in cases {
        let (status, err) = run_to_exit(&["serve"], data.path(), env);
        assert!(!status.success(), "{env:?} started: {err}");
        assert!(err.contains(expected), "{env:?}: {err}");
    }
    // A short secret is refused without being echoed.
    let (status, err) = run_to_exit(&["serve"], data.path(), &[("HMAC_SECRET", "hunter2")]);
    assert!(!status.success(), "{err}");
    assert!(
        err.contains("HMAC_SECRET: must be at least 32 bytes"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
    // A split role names what it lacks.
    let (status, err) = run_to_exit(&["serve", "--role", "gateway"], data.path(), &[]);
    assert!(!status.success(), "{err}");
    assert!(
        err.contains("DB_URL: --role gateway runs one role"),
        "{err}"
    );
    // The tools take only their own settings: a server setting is not even read.
    let (status, err) = run_to_exit(&["migrate"], data.path(), &[("PORT", "abc")]);
    assert!(status.success(), "{err}");
    assert!(data.path().join("liveops.db").exists(), "{err}");
}

#[test]
fn serve_help_describes_every_setting_with_its_default_and_hides_secrets() {
    let (ok, help) = liveops_with(
        &["serve", "--help"],
        &[
            ("HMAC_SECRET", SECRET),
            ("DB_URL", "postgres://u:hunter2@db/x"),
        ],
    );
    assert!(ok, "{help}");
    for var in [
        "PORT",
        "BIND_ADDR",
        "ENV",
        "DATA_DIR",
        "HMAC_SECRET",
        "HMAC_KEYS",
        "DB_URL",
        "REDIS_URL",
        "BUS_KIND",
        "BUS_CONN",
        "ARCHIVE_URL",
        "LB_WINDOWS",
        "LB_TOPN",
        "LB_TIMEZONE",
        "SEASON_ID",
        "SEASON_START",
        "SEASON_END",
        "SNAPSHOT_CRON",
        "ANOMALY_Z",
        "ANOMALY_ACTION",
        "BLOCK_SEC",
        "FLOOD_MAX_PER_SEC",
        "RATE_LIMIT_MAX",
        "RATE_LIMIT_EXEMPT",
        "TRUSTED_PROXIES",
        "MAX_DELTA_XP",
        "MAX_BOSS_POINTS",
        "IDEMP_TTL",
        "SIGNATURE_TOLERANCE",
        "REQUIRE_TIMESTAMP",
        "GUEST_SESSIONS",
        "ADMIN_TOKEN",
        "LOG_LEVEL",
        "METRICS_ENABLED",
        "NAMESPACE",
        "DB_MAX_CONNECTIONS",
    ] {
        assert!(
            help.contains(&format!("[env: {var}")),
            "{var} missing from:\n{help}"
        );
    }
    for default in [
        "[default: 127.0.0.1]",
        "[default: dev]",
        "[default: 300s]",
        "[default: daily,weekly,seasonal]",
        "[default: quarantine]",
        "[default: \"0 */15 * * * *\"]",
        "[default: liveops]",
    ] {
        assert!(help.contains(default), "{default} missing from:\n{help}");
    }
    // Every option has a sentence of its own, not just its variable.
    for block in help.split("\n  --").skip(1) {
        let text: String = block.lines().skip(1).collect::<Vec<_>>().join(" ");
        assert!(
            text.split_whitespace().count() > 6
                || block.starts_with("help")
                || block.starts_with("role"),
            "undocumented option --{block}"
        );
    }
    assert!(
        !help.contains(SECRET) && !help.contains("hunter2"),
        "{help}"
    );
}

#[test]
fn tools_take_only_the_settings_they_use() {
    let takes = |cmd: &str, var: &str| {
        let help = liveops_with(&[cmd, "--help"], &[]).1;
        help.contains(&format!("[env: {var}"))
    };
    for var in ["DATA_DIR", "DB_URL", "DB_MAX_CONNECTIONS"] {
        assert!(takes("migrate", var), "migrate lacks {var}");
    }
    for var in [
        "PORT",
        "HMAC_SECRET",
        "LB_WINDOWS",
        "REDIS_URL",
        "ANOMALY_Z",
        "ARCHIVE_URL",
    ] {
        assert!(!takes("migrate", var), "migrate takes {var}");
    }
    for var in [
        "DB_URL",
        "LB_WINDOWS",
        "LB_TIMEZONE",
        "SEASON_ID",
        "REDIS_URL",
        "NAMESPACE",
    ] {
        assert!(takes("rebuild", var), "rebuild lacks {var}");
    }
    for var in [
        "PORT",
        "HMAC_SECRET",
        "ARCHIVE_URL",
        "ANOMALY_Z",
        "BUS_KIND",
        "LB_TOPN",
    ] {
        assert!(!takes("rebuild", var), "rebuild takes {var}");
    }
    for var in ["DB_URL", "LB_WINDOWS", "LB_TOPN", "ARCHIVE_URL"] {
        assert!(takes("snapshot", var), "snapshot lacks {var}");
    }
    for var in [
        "PORT",
        "HMAC_SECRET",
        "REDIS_URL",
        "SNAPSHOT_CRON",
        "BUS_KIND",
    ] {
        assert!(!takes("snapshot", var), "snapshot takes {var}");
    }
}

#[tokio::test]
async fn send_signs_with_the_dev_secret_the_server_generated() {
    let data = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    // An empty HMAC_SECRET is unset: the dev server generates its secret into DATA_DIR.
    let server = Server::start(data.path(), logs.path(), &[("HMAC_SECRET", "")]).await;
    let secret = std::fs::read_to_string(data.path().join("hmac_secret")).unwrap();
    assert_eq!(secret.trim().len(), 64);
    let event = data.path().join("event.json");
    std::fs::write(
        &event,
        json!({"eventId": "dev-1", "type": "progression", "playerId": "dev_player", "ts": 1,
            "payload": {"deltaXp": 10, "activity": "quest"}})
        .to_string(),
    )
    .unwrap();
    let url = format!("http://127.0.0.1:{}", server.port);
    let (ok, out) = liveops_with(
        &["send", event.to_str().unwrap(), "--url", &url],
        &[("DATA_DIR", data.path().to_str().unwrap())],
    );
    assert!(ok && out.contains("HTTP 202"), "{out}");
}
