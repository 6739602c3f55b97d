//! `liveops`: one binary for every role and tool (SPEC section 9). `main` parses and dispatches;
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
    Loadgen(cmd::loadgen::Args),
}

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
            Command::Loadgen(args) => cmd::loadgen::run(args).await,
        }
    })
}
