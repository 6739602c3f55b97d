//! Where the CLI finds the HMAC secret (SPEC section 3).
//!
//! In order: with a key id, the matching entry of `HMAC_KEYS` (`id:secret,...`) and nothing else,
//! so a typo in the id never silently signs with another key; otherwise `HMAC_SECRET`; otherwise
//! the dev secret the server generated into `$DATA_DIR/hmac_secret` (its trimmed text); otherwise
//! the first `HMAC_KEYS` entry, sent with its id. The variables are read once into
//! [`SecretSources`] so the rules are testable without touching the process environment.

use std::path::PathBuf;

/// The default `DATA_DIR` (SPEC section 2).
pub const DEFAULT_DATA_DIR: &str = "./liveops-data";
/// The dev secret's file name inside `DATA_DIR`.
pub const SECRET_FILE: &str = "hmac_secret";

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "no HMAC secret found: HMAC_SECRET is not set and {path} {why} \
         (set HMAC_SECRET, or start the dev server once so it writes that file, \
         or point DATA_DIR at the server's data directory)"
    )]
    NotFound { path: String, why: String },
    #[error("key id {key_id:?} requested but HMAC_KEYS is not set")]
    NoKeys { key_id: String },
    #[error("key id {key_id:?} is not in HMAC_KEYS (known ids: {known})")]
    UnknownKeyId { key_id: String, known: String },
    #[error("HMAC_KEYS entry {entry:?} is not of the form id:secret")]
    BadKeysEntry { entry: String },
    #[error("{source_name} is empty")]
    Empty { source_name: String },
}

/// The raw inputs of secret resolution.
#[derive(Clone, Default)]
pub struct SecretSources {
    pub hmac_secret: Option<String>,
    pub hmac_keys: Option<String>,
    pub data_dir: PathBuf,
}

impl std::fmt::Debug for SecretSources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretSources")
            .field(
                "hmac_secret",
                &self.hmac_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("hmac_keys", &self.hmac_keys.as_ref().map(|_| "<redacted>"))
            .field("data_dir", &self.data_dir)
            .finish()
    }
}

/// A secret and where it came from. `Debug` never prints the secret.
#[derive(Clone)]
pub struct ResolvedSecret {
    pub secret: Vec<u8>,
    /// The key id to send as `X-Key-Id`, when the secret came from `HMAC_KEYS`.
    pub key_id: Option<String>,
    /// Where the secret was found, in words (for messages such as a 401 hint).
    pub source: String,
}

impl std::fmt::Debug for ResolvedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResolvedSecret")
            .field("secret", &"<redacted>")
            .field("key_id", &self.key_id)
            .field("source", &self.source)
            .finish()
    }
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.is_empty())
}

impl SecretSources {
    /// Reads `HMAC_SECRET`, `HMAC_KEYS` and `DATA_DIR` (default `./liveops-data`).
    pub fn from_env() -> Self {
        SecretSources {
            hmac_secret: non_empty(std::env::var("HMAC_SECRET").ok()),
            hmac_keys: non_empty(std::env::var("HMAC_KEYS").ok()),
            data_dir: non_empty(std::env::var("DATA_DIR").ok())
                .unwrap_or_else(|| DEFAULT_DATA_DIR.to_string())
                .into(),
        }
    }

    pub fn secret_file(&self) -> PathBuf {
        self.data_dir.join(SECRET_FILE)
    }

    pub fn resolve(&self, key_id: Option<&str>) -> Result<ResolvedSecret, SecretError> {
        let keys = match &self.hmac_keys {
            Some(k) => parse_hmac_keys(k)?,
            None => Vec::new(),
        };
        if let Some(id) = key_id {
            if self.hmac_keys.is_none() {
                return Err(SecretError::NoKeys {
                    key_id: id.to_string(),
                });
            }
            return match keys.into_iter().find(|(k, _)| k == id) {
                Some((k, secret)) => Ok(ResolvedSecret {
                    secret,
                    key_id: Some(k.clone()),
                    source: format!("HMAC_KEYS entry {k:?}"),
                }),
                None => Err(SecretError::UnknownKeyId {
                    key_id: id.to_string(),
                    known: known_ids(self.hmac_keys.as_deref().unwrap_or_default()),
                }),
            };
        }
        if let Some(s) = &self.hmac_secret {
            return Ok(ResolvedSecret {
                secret: s.as_bytes().to_vec(),
                key_id: None,
                source: "HMAC_SECRET".to_string(),
            });
        }
        let path = self.secret_file();
        let file_err = match std::fs::read_to_string(&path) {
            Ok(text) => {
                let trimmed = text.trim();
                if trimmed.is_empty() {
                    return Err(SecretError::Empty {
                        source_name: path.display().to_string(),
                    });
                }
                return Ok(ResolvedSecret {
                    secret: trimmed.as_bytes().to_vec(),
                    key_id: None,
                    source: path.display().to_string(),
                });
            }
            Err(e) => e,
        };
        if let Some((id, secret)) = keys.into_iter().next() {
            return Ok(ResolvedSecret {
                secret,
                source: format!("HMAC_KEYS entry {id:?} (the first one)"),
                key_id: Some(id),
            });
        }
        let why = if file_err.kind() == std::io::ErrorKind::NotFound {
            "does not exist".to_string()
        } else {
            format!("cannot be read ({file_err})")
        };
        Err(SecretError::NotFound {
            path: path.display().to_string(),
            why,
        })
    }
}

/// Resolves the secret from the process environment (see the module documentation).
pub fn resolve_secret(key_id: Option<&str>) -> Result<ResolvedSecret, SecretError> {
    SecretSources::from_env().resolve(key_id)
}

/// Parses `HMAC_KEYS` (`id:secret,id2:secret2`). The secret is everything after the first `:`;
/// blank entries are skipped.
pub fn parse_hmac_keys(s: &str) -> Result<Vec<(String, Vec<u8>)>, SecretError> {
    let mut out = Vec::new();
    for entry in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        match entry.split_once(':') {
            Some((id, secret)) if !id.trim().is_empty() && !secret.is_empty() => {
                out.push((id.trim().to_string(), secret.as_bytes().to_vec()));
            }
            _ => {
                // Only the id is echoed: the entry may hold a secret.
                let shown = entry.split(':').next().unwrap_or_default();
                return Err(SecretError::BadKeysEntry {
                    entry: format!("{shown}:..."),
                });
            }
        }
    }
    Ok(out)
}

fn known_ids(keys: &str) -> String {
    let ids: Vec<&str> = keys
        .split(',')
        .filter_map(|e| e.trim().split_once(':').map(|(id, _)| id.trim()))
        .filter(|id| !id.is_empty())
        .collect();
    if ids.is_empty() {
        "none".to_string()
    } else {
        ids.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(secret: Option<&str>, keys: Option<&str>, dir: &std::path::Path) -> SecretSources {
        SecretSources {
            hmac_secret: secret.map(String::from),
            hmac_keys: keys.map(String::from),
            data_dir: dir.to_path_buf(),
        }
    }

    #[test]
    fn hmac_secret_wins_over_the_dev_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("hmac_secret"), "from-file\n").unwrap();
        let r = sources(Some("from-env"), None, dir.path())
            .resolve(None)
            .unwrap();
        assert_eq!(r.secret, b"from-env");
        assert_eq!(r.key_id, None);
    }

    #[test]
    fn dev_file_is_read_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("hmac_secret"), "  abc123 \n").unwrap();
        let r = sources(None, None, dir.path()).resolve(None).unwrap();
        assert_eq!(r.secret, b"abc123");
    }

    #[test]
    fn missing_secret_names_both_places() {
        let dir = tempfile::tempdir().unwrap();
        let err = sources(None, None, dir.path()).resolve(None).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("HMAC_SECRET"), "{msg}");
        assert!(msg.contains("hmac_secret"), "{msg}");
        assert!(msg.contains("does not exist"), "{msg}");
    }

    #[test]
    fn key_id_picks_the_rotated_key() {
        let dir = tempfile::tempdir().unwrap();
        let s = sources(
            Some("default"),
            Some("k1:one, k2:two:with:colons"),
            dir.path(),
        );
        let r = s.resolve(Some("k2")).unwrap();
        assert_eq!(r.secret, b"two:with:colons");
        assert_eq!(r.key_id.as_deref(), Some("k2"));
        let err = s.resolve(Some("k3")).unwrap_err().to_string();
        assert!(err.contains("k1, k2"), "{err}");
    }

    #[test]
    fn key_id_without_hmac_keys_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = sources(Some("x"), None, dir.path())
            .resolve(Some("k1"))
            .unwrap_err();
        assert!(matches!(err, SecretError::NoKeys { .. }));
    }

    #[test]
    fn first_rotated_key_is_the_last_resort() {
        let dir = tempfile::tempdir().unwrap();
        let r = sources(None, Some("k1:one,k2:two"), dir.path())
            .resolve(None)
            .unwrap();
        assert_eq!(r.secret, b"one");
        assert_eq!(r.key_id.as_deref(), Some("k1"));
    }

    #[test]
    fn malformed_keys_do_not_echo_the_secret() {
        let err = parse_hmac_keys("k1:one,oops").unwrap_err().to_string();
        assert!(err.contains("oops"), "{err}");
        let err = parse_hmac_keys("k1:").unwrap_err().to_string();
        assert!(!err.contains("one"), "{err}");
        assert_eq!(parse_hmac_keys(" , ").unwrap(), vec![]);
    }

    #[test]
    fn debug_redacts_secrets() {
        let r = ResolvedSecret {
            secret: b"topsecret".to_vec(),
            key_id: None,
            source: "HMAC_SECRET".into(),
        };
        assert!(!format!("{r:?}").contains("topsecret"));
        let s = SecretSources {
            hmac_secret: Some("topsecret".into()),
            ..Default::default()
        };
        assert!(!format!("{s:?}").contains("topsecret"));
    }
}
