//! `liveops`: one binary for every role and tool (`docs/api.md`). `main` parses and dispatches;
//! each subcommand lives in its own file under `cmd/`.

use clap::{Parser, Subcommand};

mod cmd;

#[derive(Parser)]
#[command(
    name = "liveops",
    version,
    about = "Game LiveOps backend: signed ingest, progression, leaderboards"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (all roles on one port by default).
    Serve(Box<cmd::serve::Args>),
    /// Sign an event file (or - for stdin) and send it; print the answer.
    Send(cmd::send::Args),
    /// Print the signature headers for an event file, for use with curl.
    Sign(cmd::sign::Args),
    /// Generate signed load against a running server and report throughput and latency.
    Loadgen(liveops_loadgen::Args),
    /// Apply the store's schema migrations and exit (takes only the store's settings).
    Migrate(cmd::migrate::Args),
    /// Rebuild the current leaderboards from the system of record and print them.
    Rebuild(Box<cmd::rebuild::Args>),
    /// Snapshot the current leaderboards from the system of record into the archive.
    Snapshot(Box<cmd::snapshot::Args>),
    /// Check a reward receipt's signature and age.
    VerifyReceipt(cmd::verify_receipt::Args),
}

/// mimalloc rather than glibc's malloc: the request path allocates small, short-lived buffers
/// on several threads, where glibc's arena locking and consolidation take ~15% of the server's
/// CPU (`perf record` on `liveops serve` under `liveops loadgen`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => cmd::serve::run(*args).await,
            Command::Send(args) => cmd::send::run(args).await,
            Command::Sign(args) => cmd::sign::run(args).await,
            Command::Loadgen(args) => liveops_loadgen::run(args).await,
            Command::Migrate(args) => cmd::migrate::run(args).await,
            Command::Rebuild(args) => cmd::rebuild::run(*args).await,
            Command::Snapshot(args) => cmd::snapshot::run(*args).await,
            Command::VerifyReceipt(args) => cmd::verify_receipt::run(args).await,
        }
    })
}
