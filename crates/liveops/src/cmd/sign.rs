//! `liveops sign FILE|-`: print the signature headers of a body and a ready-to-paste curl command
//! (`docs/api.md`). Also home of [`target_path`], which `send` shares.

use std::io::Write;

use liveops_client::cli::{read_input, KeyArgs, DEFAULT_URL};
use liveops_client::{signature_headers, unix_now};

/// `/events`, `/events/batch` with `--batch`, or `--path`.
pub fn target_path(path: Option<&str>, batch: bool) -> String {
    match path {
        Some(p) if p.starts_with('/') => p.to_string(),
        Some(p) => format!("/{p}"),
        None if batch => "/events/batch".to_string(),
        None => "/events".to_string(),
    }
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The exact body to sign (a JSON file), or `-` for standard input.
    pub file: String,
    /// Server URL used in the printed curl command.
    #[arg(long, env = "LIVEOPS_URL", default_value = DEFAULT_URL)]
    pub url: String,
    /// The body is a batch: the curl command posts to /events/batch.
    #[arg(long)]
    pub batch: bool,
    /// Post to this path instead (e.g. /rewards/claim).
    #[arg(long)]
    pub path: Option<String>,
    /// Bind the signature to the current time (X-Timestamp); the server accepts it for
    /// SIGNATURE_TOLERANCE (default 300 s), so paste the command soon.
    #[arg(long)]
    pub timestamp: bool,
    #[command(flatten)]
    pub key: KeyArgs,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let body = read_input(&args.file)?;
    let secret = args.key.resolve()?;
    let timestamp = args.timestamp.then(unix_now);
    let headers = signature_headers(&secret.secret, &body, secret.key_id.as_deref(), timestamp);
    let url = format!(
        "{}{}",
        args.url.trim_end_matches('/'),
        target_path(args.path.as_deref(), args.batch)
    );
    let data = if args.file == "-" {
        DataArg::Inline(&body)
    } else {
        DataArg::File(&args.file)
    };
    let mut out = std::io::stdout().lock();
    for (k, v) in &headers {
        writeln!(out, "{k}: {v}")?;
    }
    writeln!(out)?;
    writeln!(out, "{}", curl_command(&url, &headers, data))?;
    if timestamp.is_some() {
        eprintln!("note: the signature is bound to X-Timestamp and expires after the server's SIGNATURE_TOLERANCE");
    }
    Ok(())
}

/// Where curl takes the body from: the file itself (exact bytes), or inline for stdin.
pub enum DataArg<'a> {
    File(&'a str),
    Inline(&'a [u8]),
}

/// A curl command that sends exactly the signed bytes (`--data-binary`, never `-d`, which would
/// strip newlines and break the MAC).
pub fn curl_command(url: &str, headers: &[(String, String)], data: DataArg<'_>) -> String {
    let mut parts = vec![
        format!("curl -sS -i -X POST {}", shell_quote(url)),
        format!("-H {}", shell_quote("Content-Type: application/json")),
    ];
    for (k, v) in headers {
        parts.push(format!("-H {}", shell_quote(&format!("{k}: {v}"))));
    }
    parts.push(match data {
        DataArg::File(path) => format!("--data-binary @{}", shell_quote(path)),
        DataArg::Inline(body) => format!(
            "--data-binary {}",
            shell_quote(&String::from_utf8_lossy(body))
        ),
    });
    parts.join(" \\\n  ")
}

/// POSIX single-quoting: safe for any text, including quotes and newlines.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_single_quotes() {
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn curl_sends_the_exact_bytes_with_every_header() {
        let headers = signature_headers(b"secret", b"{}", Some("k2"), Some(100));
        let cmd = curl_command(
            "http://127.0.0.1:8080/events",
            &headers,
            DataArg::File("ev.json"),
        );
        assert!(cmd.starts_with("curl -sS -i -X POST 'http://127.0.0.1:8080/events'"));
        assert!(cmd.contains("-H 'Content-Type: application/json'"));
        assert!(cmd.contains("-H 'X-Signature: sha256="));
        assert!(cmd.contains("-H 'X-Timestamp: 100'"));
        assert!(cmd.contains("-H 'X-Key-Id: k2'"));
        assert!(cmd.ends_with("--data-binary @'ev.json'"));
        let inline = curl_command("u", &headers, DataArg::Inline(b"{\"a\":\"it's\"}\n"));
        assert!(
            inline.ends_with("--data-binary '{\"a\":\"it'\\''s\"}\n'"),
            "{inline}"
        );
    }

    #[test]
    fn target_paths() {
        assert_eq!(target_path(None, false), "/events");
        assert_eq!(target_path(None, true), "/events/batch");
        assert_eq!(target_path(Some("rewards/claim"), true), "/rewards/claim");
    }
}
