//! Where the CLI finds the HMAC secret, and the one implementation of the dev secret file
//! (`.env.example`).
//!
//! In order: with a key id, the matching entry of `HMAC_KEYS` (`id:secret,...`) and nothing else,
//! so a typo in the id never silently signs with another key; otherwise `HMAC_SECRET`; otherwise
//! the dev secret the server generated into `$DATA_DIR/hmac_secret`; otherwise the first
//! `HMAC_KEYS` entry, sent with its id. The variables are read once into [`SecretSources`] so the
//! rules are testable without touching the process environment.
//!
//! The rules of a valid key (at least 32 bytes, the `HMAC_KEYS` syntax, the file's trimmed text)
//! are `liveops_domain::keys`; this module adds the file IO, which `liveops serve` uses too
//! ([`load_or_create_dev_secret`]), so the server and the CLI read the same file the same way.

use std::path::{Path, PathBuf};

use liveops_domain::keys::{self, DevSecret, KeyError, Secret};
pub use liveops_domain::keys::{parse_hmac_keys, DEV_SECRET_FILE as SECRET_FILE};

/// The default `DATA_DIR` (`docs/operations.md`).
pub const DEFAULT_DATA_DIR: &str = "./liveops-data";

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
    #[error("HMAC_KEYS: {0}")]
    Keys(#[source] KeyError),
    #[error("HMAC_SECRET: {0}")]
    ShortSecret(#[source] KeyError),
    #[error(
        "{path} {source} (delete it to have the dev server generate a new one, or set HMAC_SECRET)"
    )]
    BadDevFile {
        path: String,
        #[source]
        source: KeyError,
    },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
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
            Some(k) => parse_hmac_keys(k).map_err(SecretError::Keys)?,
            None => Vec::new(),
        };
        if let Some(id) = key_id {
            if self.hmac_keys.is_none() {
                return Err(SecretError::NoKeys {
                    key_id: id.to_string(),
                });
            }
            let known = keys
                .iter()
                .map(|(k, _)| k.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            return match keys.into_iter().find(|(k, _)| k == id) {
                Some((k, secret)) => Ok(ResolvedSecret {
                    secret: secret.expose().to_vec(),
                    source: format!("HMAC_KEYS entry {k:?}"),
                    key_id: Some(k),
                }),
                None => Err(SecretError::UnknownKeyId {
                    key_id: id.to_string(),
                    known: if known.is_empty() {
                        "none".to_string()
                    } else {
                        known
                    },
                }),
            };
        }
        if let Some(s) = &self.hmac_secret {
            let secret = keys::signing_secret(s).map_err(SecretError::ShortSecret)?;
            return Ok(ResolvedSecret {
                secret: secret.expose().to_vec(),
                key_id: None,
                source: "HMAC_SECRET".to_string(),
            });
        }
        let path = self.secret_file();
        let missing = match read_dev_secret(&self.data_dir)? {
            Some(secret) => {
                return Ok(ResolvedSecret {
                    secret: secret.expose().to_vec(),
                    key_id: None,
                    source: path.display().to_string(),
                })
            }
            None => path,
        };
        if let Some((id, secret)) = keys.into_iter().next() {
            return Ok(ResolvedSecret {
                secret: secret.expose().to_vec(),
                source: format!("HMAC_KEYS entry {id:?} (the first one)"),
                key_id: Some(id),
            });
        }
        Err(SecretError::NotFound {
            path: missing.display().to_string(),
            why: "does not exist".to_string(),
        })
    }
}

/// Resolves the secret from the process environment (see the module documentation).
pub fn resolve_secret(key_id: Option<&str>) -> Result<ResolvedSecret, SecretError> {
    SecretSources::from_env().resolve(key_id)
}

/// The dev secret in `data_dir`, if its file exists; a file that cannot be read or holds a
/// secret shorter than 32 bytes is an error, never silently replaced.
pub fn read_dev_secret(data_dir: &Path) -> Result<Option<Secret>, SecretError> {
    let path = data_dir.join(SECRET_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => keys::dev_secret_from_file(&text)
            .map(Some)
            .map_err(|source| SecretError::BadDevFile {
                path: path.display().to_string(),
                source,
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(SecretError::Io {
            path: path.display().to_string(),
            source,
        }),
    }
}

/// The dev secret in `data_dir`, created (with the directory) on first use: what `liveops
/// serve` signs with when `HMAC_SECRET` is unset outside `ENV=prod`.
pub fn load_or_create_dev_secret(data_dir: &Path) -> Result<DevSecret, SecretError> {
    let path = data_dir.join(SECRET_FILE);
    if let Some(secret) = read_dev_secret(data_dir)? {
        return Ok(DevSecret {
            secret,
            path,
            created: false,
        });
    }
    let io = |source| SecretError::Io {
        path: path.display().to_string(),
        source,
    };
    let text = keys::new_dev_secret_text(rand::random());
    std::fs::create_dir_all(data_dir).map_err(io)?;
    std::fs::write(&path, &text).map_err(io)?;
    Ok(DevSecret {
        secret: Secret::new(text.into_bytes()),
        path,
        created: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENV_SECRET: &str = "from-env-0123456789abcdef0123456789";
    const FILE_SECRET: &str = "from-file-0123456789abcdef0123456789";
    const ONE: &str = "one-0123456789abcdef0123456789abcdef";
    const TWO: &str = "two:with:colons-0123456789abcdef0123";

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
        std::fs::write(dir.path().join("hmac_secret"), format!("{FILE_SECRET}\n")).unwrap();
        let r = sources(Some(ENV_SECRET), None, dir.path())
            .resolve(None)
            .unwrap();
        assert_eq!(r.secret, ENV_SECRET.as_bytes());
        assert_eq!(r.key_id, None);
    }

    #[test]
    fn a_short_hmac_secret_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = sources(Some("short"), None, dir.path())
            .resolve(None)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("HMAC_SECRET: must be at least 32 bytes"),
            "{err}"
        );
    }

    #[test]
    fn dev_file_is_read_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("hmac_secret"),
            format!("  {FILE_SECRET} \n"),
        )
        .unwrap();
        let r = sources(None, None, dir.path()).resolve(None).unwrap();
        assert_eq!(r.secret, FILE_SECRET.as_bytes());
    }

    #[test]
    fn a_short_dev_file_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("hmac_secret"), "abc\n").unwrap();
        let err = sources(None, None, dir.path())
            .resolve(None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("hmac_secret") && err.contains("32 bytes"),
            "{err}"
        );
        assert!(load_or_create_dev_secret(dir.path()).is_err());
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
    fn the_dev_secret_is_created_once_and_then_read_by_server_and_cli() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let first = load_or_create_dev_secret(&data).unwrap();
        assert!(first.created);
        assert_eq!(first.path, data.join("hmac_secret"));
        assert_eq!(first.secret.len(), 64);
        let second = load_or_create_dev_secret(&data).unwrap();
        assert!(!second.created);
        assert_eq!(first.secret, second.secret);
        let cli = sources(None, None, &data).resolve(None).unwrap();
        assert_eq!(cli.secret, first.secret.expose());
    }

    #[test]
    fn key_id_picks_the_rotated_key() {
        let dir = tempfile::tempdir().unwrap();
        let keys = format!("k1:{ONE}, k2:{TWO}");
        let s = sources(Some(ENV_SECRET), Some(&keys), dir.path());
        let r = s.resolve(Some("k2")).unwrap();
        assert_eq!(r.secret, TWO.as_bytes());
        assert_eq!(r.key_id.as_deref(), Some("k2"));
        let err = s.resolve(Some("k3")).unwrap_err().to_string();
        assert!(err.contains("k1, k2"), "{err}");
    }

    #[test]
    fn key_id_without_hmac_keys_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = sources(Some(ENV_SECRET), None, dir.path())
            .resolve(Some("k1"))
            .unwrap_err();
        assert!(matches!(err, SecretError::NoKeys { .. }));
    }

    #[test]
    fn first_rotated_key_is_the_last_resort() {
        let dir = tempfile::tempdir().unwrap();
        let keys = format!("k1:{ONE},k2:{TWO}");
        let r = sources(None, Some(&keys), dir.path())
            .resolve(None)
            .unwrap();
        assert_eq!(r.secret, ONE.as_bytes());
        assert_eq!(r.key_id.as_deref(), Some("k1"));
    }

    #[test]
    fn malformed_keys_name_the_variable_and_do_not_echo_the_secret() {
        let dir = tempfile::tempdir().unwrap();
        let err = sources(None, Some("k1:not-long-enough"), dir.path())
            .resolve(None)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("HMAC_KEYS: key \"k1\""), "{err}");
        assert!(!err.contains("not-long-enough"), "{err}");
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
