//! The offline commands against a real data dir: `rebuild` prints what the log says, `snapshot`
//! archives it, `verify-receipt` checks a receipt the server issued, `send` signs with the
//! dev secret file.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Server, SECRET};
use serde_json::json;

fn liveops(data_dir: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_liveops"))
        .args(args)
        .env_clear()
        .env("DATA_DIR", data_dir)
        .env("HMAC_SECRET", SECRET)
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
