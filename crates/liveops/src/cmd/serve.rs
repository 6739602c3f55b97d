//! `liveops serve [--role R]`: runs the server until SIGTERM / Ctrl-C, then drains and exits.

use std::sync::Arc;

use anyhow::Context;
use liveops_domain::SystemClock;
use liveops_server::config::{Role, SecretSource, Settings};
use liveops_server::Application;
use tokio_util::sync::CancellationToken;

#[derive(clap::Args)]
pub struct Args {
    /// Run one role of a split deployment, on that role's own port unless PORT is set; it
    /// needs DB_URL, BUS_KIND=nats and REDIS_URL, through which the roles share their state.
    /// all runs every role in this process.
    #[arg(long, value_enum, default_value = "all")]
    role: Role,
    #[command(flatten)]
    settings: Settings,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let cfg = args
        .settings
        .validate(|data_dir| {
            liveops_client::load_or_create_dev_secret(data_dir).map_err(|e| e.to_string())
        })
        .and_then(|c| c.with_role(args.role))
        .map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
    liveops_server::telemetry::init(&cfg.log_level);
    match &cfg.secret_source {
        SecretSource::Generated(path) => eprintln!(
            "liveops: no HMAC_SECRET set; generated a dev secret into {} (sign with it, or set HMAC_SECRET):\n  {}",
            path.display(),
            String::from_utf8_lossy(cfg.hmac_secret.expose())
        ),
        SecretSource::File(path) => eprintln!("liveops: using the dev HMAC secret in {}", path.display()),
        SecretSource::Env => {}
    }
    let app = Application::build(cfg.clone(), Arc::new(SystemClock)).await?;
    tracing::info!(service = "liveops", port = app.port(), bind = %cfg.bind_addr, data_dir = %cfg.data_dir.display(), "listening");
    eprintln!(
        "liveops: listening on http://{}:{}",
        cfg.bind_addr,
        app.port()
    );
    let shutdown = CancellationToken::new();
    let signal = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown signal received; draining");
        signal.cancel();
    });
    app.run_until_stopped(shutdown).await.context("server")
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
