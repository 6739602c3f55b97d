//! `liveops verify-receipt FILE|-`: checks a reward receipt's signature and age offline, with
//! the same secret the server signs with (HMAC_SECRET or the dev secret in DATA_DIR).

use std::io::Read;

use anyhow::Context;
use liveops_domain::signing::Receipt;

#[derive(clap::Args)]
pub struct Args {
    /// A receipt as returned by POST /rewards/claim, or - for stdin.
    file: String,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let text = if args.file == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        s
    } else {
        std::fs::read_to_string(&args.file).with_context(|| format!("reading {}", args.file))?
    };
    let receipt: Receipt = serde_json::from_str(&text)
        .context("expected a receipt {receiptId, playerId, item, sig, timestamp}")?;
    let secret = liveops_client::resolve_secret(None)?;
    let now = chrono::Utc::now().timestamp();
    let (valid, expired) = receipt.verify(&secret.secret, now);
    println!(
        "{}",
        serde_json::json!({"valid": valid, "expired": expired})
    );
    if !valid || expired {
        std::process::exit(1);
    }
    Ok(())
}
