//! The command-line pieces every signing tool shares (`liveops send`, `sign`, `loadgen`): which
//! secret signs ([`KeyArgs`]), the default server URL and reading a body from `FILE|-`.

use std::io::Read;
use std::path::PathBuf;

use anyhow::Context;

use crate::secret::{ResolvedSecret, SecretSources, DEFAULT_DATA_DIR};

/// The default server URL of the client commands.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";

/// Which secret signs: `HMAC_SECRET`, else `HMAC_KEYS` with `--key-id`, else the dev server's
/// `$DATA_DIR/hmac_secret`. The secret itself is never a flag (it would land in shell history).
#[derive(clap::Args, Debug, Clone)]
pub struct KeyArgs {
    /// Sign with this rotated key from HMAC_KEYS (`id:secret,...`) and send it as X-Key-Id.
    #[arg(long, env = "LIVEOPS_KEY_ID")]
    pub key_id: Option<String>,
    /// Where the dev server keeps its generated secret (`hmac_secret`), read when HMAC_SECRET is
    /// not set.
    #[arg(long, env = "DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
}

impl KeyArgs {
    pub fn resolve(&self) -> anyhow::Result<ResolvedSecret> {
        let sources = SecretSources {
            data_dir: self.data_dir.clone(),
            ..SecretSources::from_env()
        };
        Ok(sources.resolve(self.key_id.as_deref())?)
    }
}

/// Reads `FILE`, or standard input for `-`.
pub fn read_input(file: &str) -> anyhow::Result<Vec<u8>> {
    if file == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("reading the body from standard input")?;
        Ok(buf)
    } else {
        std::fs::read(file).with_context(|| format!("reading {file}"))
    }
}
