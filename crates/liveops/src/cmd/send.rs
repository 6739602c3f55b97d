//! `liveops send FILE|-`: sign a body, send it, print the status line and the answer
//! (`docs/api.md`). Exits non-zero when the answer is not 2xx, or when a batch answer refused
//! any of its events, so scripts can rely on the exit code.

use std::io::Write;

use anyhow::Context;
use liveops_client::cli::{read_input, KeyArgs, DEFAULT_URL};
use liveops_client::{ApiResponse, Client, ClientConfig};
use serde_json::{json, Value};

use super::sign::target_path;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The body to send (a JSON file), or `-` for standard input. Sent byte for byte, except
    /// that with --batch a JSON array or JSON lines are wrapped into {"events": [...]}.
    pub file: String,
    /// Server URL.
    #[arg(long, env = "LIVEOPS_URL", default_value = DEFAULT_URL)]
    pub url: String,
    /// POST /events/batch instead of /events.
    #[arg(long)]
    pub batch: bool,
    /// POST to this path instead (e.g. /rewards/claim); signed the same way.
    #[arg(long)]
    pub path: Option<String>,
    /// Send an Idempotency-Key header (at most 255 characters).
    #[arg(long)]
    pub idempotency_key: Option<String>,
    /// Send X-Timestamp (now) and bind the signature to it.
    #[arg(long)]
    pub timestamp: bool,
    #[command(flatten)]
    pub key: KeyArgs,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let raw = read_input(&args.file)?;
    let body = if args.batch {
        let (body, wrapped) = batch_body(raw)?;
        if let Some(n) = wrapped {
            eprintln!("note: sending the {n} event(s) as {{\"events\": [...]}}");
        }
        body
    } else {
        raw
    };
    let secret = args.key.resolve()?;
    let client = Client::new(ClientConfig {
        base_url: args.url.clone(),
        secret: secret.secret,
        key_id: secret.key_id,
        with_timestamp: args.timestamp,
    })?;
    let mut extra = Vec::new();
    if let Some(k) = &args.idempotency_key {
        extra.push(("Idempotency-Key", k.as_str()));
    }
    let path = target_path(args.path.as_deref(), args.batch);
    let resp = client
        .post_signed(&path, body, &extra)
        .await
        .with_context(|| format!("is the server running at {}?", args.url))?;

    print_response(&resp)?;
    let refused = refused_in_batch(&resp);
    if refused > 0 {
        eprintln!("{refused} event(s) of the batch were refused");
    }
    if resp.status == 401 {
        eprintln!(
            "hint: the signature was refused; the secret came from {}, check it matches the server's",
            secret.source
        );
    }
    if !resp.is_success() || refused > 0 {
        std::process::exit(1);
    }
    Ok(())
}

fn print_response(resp: &ApiResponse) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "HTTP {}", resp.status_line())?;
    if let Some(retry) = resp.header("retry-after") {
        writeln!(out, "Retry-After: {retry}")?;
    }
    match &resp.body {
        Value::Null => {}
        Value::String(text) => writeln!(out, "{text}")?,
        body => writeln!(out, "{}", serde_json::to_string_pretty(body)?)?,
    }
    Ok(())
}

/// Events of a batch answer whose own status is not 2xx.
fn refused_in_batch(resp: &ApiResponse) -> usize {
    resp.body
        .get("results")
        .and_then(Value::as_array)
        .map(|results| {
            results
                .iter()
                .filter(|r| {
                    r.get("status")
                        .and_then(Value::as_u64)
                        .is_some_and(|s| !(200..300).contains(&s))
                })
                .count()
        })
        .unwrap_or(0)
}

/// A batch body: `{"events": [...]}` is sent as is; a JSON array, JSON lines, or a single event
/// object are wrapped (the count of wrapped events is returned). Anything else is sent as is, so
/// the server's own error explains it.
fn batch_body(raw: Vec<u8>) -> anyhow::Result<(Vec<u8>, Option<usize>)> {
    let values: Result<Vec<Value>, _> = serde_json::Deserializer::from_slice(&raw)
        .into_iter::<Value>()
        .collect();
    let Ok(values) = values else {
        return Ok((raw, None));
    };
    let events: Vec<Value> = match values.as_slice() {
        [Value::Object(o)] if o.contains_key("events") => return Ok((raw, None)),
        [Value::Array(items)] => items.clone(),
        [] => return Ok((raw, None)),
        many => many.to_vec(),
    };
    let n = events.len();
    Ok((serde_json::to_vec(&json!({ "events": events }))?, Some(n)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_bodies_are_wrapped_only_when_needed() {
        let as_is = br#"{"events":[{"a":1}]}"#.to_vec();
        assert_eq!(batch_body(as_is.clone()).unwrap(), (as_is, None));

        let (b, n) = batch_body(br#"[{"a":1},{"a":2}]"#.to_vec()).unwrap();
        assert_eq!(n, Some(2));
        assert_eq!(
            serde_json::from_slice::<Value>(&b).unwrap(),
            json!({"events": [{"a": 1}, {"a": 2}]})
        );

        let (b, n) = batch_body(b"{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n".to_vec()).unwrap();
        assert_eq!(n, Some(3));
        assert_eq!(
            serde_json::from_slice::<Value>(&b).unwrap()["events"][2],
            json!({"a": 3})
        );

        let garbage = b"not json".to_vec();
        assert_eq!(batch_body(garbage.clone()).unwrap(), (garbage, None));
    }

    #[test]
    fn refused_events_of_a_batch_are_counted() {
        let resp = ApiResponse {
            status: 200,
            headers: Default::default(),
            body: json!({"results": [
                {"index": 0, "status": 202, "eventId": "a"},
                {"index": 1, "status": 400, "error": {"code": "invalid_event"}},
                {"index": 2, "status": 208, "eventId": "c"}
            ]}),
            text: String::new(),
        };
        assert_eq!(refused_in_batch(&resp), 1);
    }
}
