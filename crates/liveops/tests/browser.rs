//! The dashboard and the demo game end to end, in a real headless Chromium against the real
//! binary. The browser work is `e2e/run.mjs` (playwright-core driving Debian's
//! `chromium`); this test starts `liveops serve` with a known ADMIN_TOKEN, runs the script
//! against it and fails on a non-zero exit, with the script's output and the server's log.
//!
//! Prerequisites: `node` 20+, a Chromium (`CHROMIUM_PATH`, else `/usr/bin/chromium`) and
//! `e2e/node_modules` (`cd e2e && npm ci`). When one is missing the test skips with a notice on
//! the terminal naming the command that installs it, except under `CI=true`, where it fails:
//! CI (`.ci/run`) installs them.
//! Screenshots go to `e2e/artifacts/` (git-ignored).

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::Server;

const ADMIN_TOKEN: &str = "browser-test-admin-token-0123456789";
/// The script's own checks wait at most 20 s each; the whole run takes about 20 s.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(150);
/// What the script must leave in `e2e/artifacts/`.
const SCREENSHOTS: [&str; 4] = [
    "play-desktop",
    "play-phone",
    "dashboard-desktop",
    "dashboard-phone",
];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn chromium() -> Option<PathBuf> {
    let candidates: Vec<PathBuf> = std::env::var_os("CHROMIUM_PATH")
        .map(PathBuf::from)
        .into_iter()
        .chain(["/usr/bin/chromium", "/usr/bin/chromium-browser"].map(PathBuf::from))
        .collect();
    candidates.into_iter().find(|p| p.is_file())
}

/// The major version of `node` on PATH, if it runs.
fn node_major() -> Option<u32> {
    let out = std::process::Command::new("node")
        .arg("--version")
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .strip_prefix('v')?
        .split('.')
        .next()?
        .parse()
        .ok()
}

/// What is missing to run the browser tests, if anything, and the command that installs it.
fn missing_prerequisite(e2e: &Path) -> Option<(String, &'static str)> {
    const NODE: &str =
        "install Node.js 20 or newer (e.g. from NodeSource), then `cd e2e && npm ci`";
    match node_major() {
        None => return Some(("node is not installed".into(), NODE)),
        // playwright-core's own requirement.
        Some(v) if v < 20 => {
            return Some((
                format!("node {v} is too old (playwright-core needs 20+)"),
                NODE,
            ))
        }
        Some(_) => {}
    }
    if chromium().is_none() {
        return Some((
            "no Chromium at CHROMIUM_PATH, /usr/bin/chromium or /usr/bin/chromium-browser".into(),
            "apt-get install -y chromium (or set CHROMIUM_PATH)",
        ));
    }
    if !e2e.join("node_modules/playwright-core").is_dir() {
        return Some((
            format!("{} has no node_modules/playwright-core", e2e.display()),
            "cd e2e && npm ci",
        ));
    }
    None
}

/// Whether to skip: under `CI=true` a missing prerequisite fails the test instead, and
/// elsewhere the skip is written to the terminal (see `liveops_store::testing::skip_or_fail`).
fn skip_unless_ready(e2e: &Path) -> bool {
    let Some((why, enable_with)) = missing_prerequisite(e2e) else {
        return false;
    };
    liveops_store::testing::skip_or_fail(&why, enable_with);
    true
}

#[tokio::test]
async fn dashboard_and_game_work_in_a_real_browser() {
    let e2e = repo_root().join("e2e");
    if skip_unless_ready(&e2e) {
        return;
    }
    let data = tempfile::tempdir().expect("data dir");
    let logs = tempfile::tempdir().expect("log dir");
    // The server's defaults for flood and fairness stay on: the game must live with them. The
    // per-IP limit is off (common::Server) since every request here comes from one address.
    let server = Server::start(
        data.path(),
        logs.path(),
        &[("ADMIN_TOKEN", ADMIN_TOKEN), ("LOG_LEVEL", "warn")],
    )
    .await;
    let artifacts = e2e.join("artifacts");
    // Screenshots of an earlier run must not pass for this one's.
    for shot in SCREENSHOTS {
        let _ = std::fs::remove_file(artifacts.join(format!("{shot}.png")));
    }
    let mut child = tokio::process::Command::new("node")
        .arg("run.mjs")
        .current_dir(&e2e)
        .env("BASE_URL", format!("http://127.0.0.1:{}", server.port))
        .env("ADMIN_TOKEN", ADMIN_TOKEN)
        .env("CHROMIUM_PATH", chromium().expect("checked above"))
        .env("ARTIFACTS_DIR", &artifacts)
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("starting node");
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    let read_all = |mut r: Box<dyn tokio::io::AsyncRead + Unpin + Send>| {
        tokio::spawn(async move {
            let mut s = String::new();
            let _ = tokio::io::AsyncReadExt::read_to_string(&mut r, &mut s).await;
            s
        })
    };
    let out = read_all(Box::new(stdout));
    let err = read_all(Box::new(stderr));
    let status = match tokio::time::timeout(SCRIPT_TIMEOUT, child.wait()).await {
        Ok(s) => s.expect("waiting for node"),
        Err(_) => {
            let _ = child.kill().await;
            panic!(
                "the browser script did not finish within {SCRIPT_TIMEOUT:?}; output:\n{}\n{}",
                out.await.unwrap_or_default(),
                err.await.unwrap_or_default()
            );
        }
    };
    let out = out.await.unwrap_or_default();
    let err = err.await.unwrap_or_default();
    eprintln!("{out}");
    assert!(
        status.success(),
        "the browser script failed ({status}):\n{out}\n{err}\nserver log:\n{}\nscreenshots: {}",
        server.log_tail(),
        artifacts.display()
    );
    for shot in SCREENSHOTS {
        assert!(
            artifacts.join(format!("{shot}.png")).is_file(),
            "no screenshot {shot}.png"
        );
    }
}
