//! Final standings of ended leaderboard periods (`docs/api.md`, `GET /leaderboard/history`).
//! The embedded archive is one JSON file per period under `DATA_DIR/archive`; the PostgreSQL
//! store keeps the same documents in a table. Another medium (object storage) is one more
//! implementation of [`Archive`].

use std::path::PathBuf;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use liveops_domain::PlayerId;

use crate::StoreError;

/// One archived standing row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchivedEntry {
    pub rank: u64,
    pub player_id: PlayerId,
    pub score: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchivedPeriod {
    pub window: String,
    pub period: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub archived_at: DateTime<Utc>,
    pub total: u64,
    pub entries: Vec<ArchivedEntry>,
}

#[async_trait]
pub trait Archive: Send + Sync + 'static {
    /// Stores the standings of an ended period, replacing any earlier copy.
    async fn put_period(&self, period: &ArchivedPeriod) -> Result<(), StoreError>;
    /// Removes a player from every archived standing and snapshot (GDPR), re-ranking the
    /// rest. Returns how many files changed.
    async fn erase_player(&self, player: &PlayerId) -> Result<usize, StoreError>;
    /// Stores a snapshot of a running period's standings taken at `archived_at`
    /// (`SNAPSHOT_CRON`, `liveops snapshot`); snapshots accumulate.
    async fn put_snapshot(&self, snapshot: &ArchivedPeriod) -> Result<(), StoreError>;
    async fn get_period(
        &self,
        window: &str,
        period: &str,
    ) -> Result<Option<ArchivedPeriod>, StoreError>;
}

/// Files under `root/leaderboards/<window>/<period>.json`, written atomically (temp + rename)
/// so a crash never leaves half a file.
pub struct FileArchive {
    root: PathBuf,
}

impl FileArchive {
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    fn path(&self, window: &str, period: &str) -> Option<PathBuf> {
        // Window and period ids are validated upstream; refuse anything path-like anyway.
        let safe = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        };
        (safe(window) && safe(period)).then(|| {
            self.root
                .join("leaderboards")
                .join(window)
                .join(format!("{period}.json"))
        })
    }
}

/// Writes `body` to `path` through a temporary file and a rename, fsynced.
async fn write_atomically(path: PathBuf, body: Vec<u8>) -> Result<(), StoreError> {
    tokio::task::spawn_blocking(move || -> Result<(), StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, body)?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        Ok(())
    })
    .await
    .map_err(|_| StoreError::Closed)?
}

fn json_files(dir: &std::path::Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let path = entry?.path();
        if path.is_dir() {
            json_files(&path, out)?;
        } else if path.extension().is_some_and(|x| x == "json") {
            out.push(path);
        }
    }
    Ok(())
}

#[async_trait]
impl Archive for FileArchive {
    async fn erase_player(&self, player: &PlayerId) -> Result<usize, StoreError> {
        let root = self.root.clone();
        let player = player.clone();
        tokio::task::spawn_blocking(move || -> Result<usize, StoreError> {
            let mut files = Vec::new();
            json_files(&root, &mut files)?;
            let mut changed = 0;
            for path in files {
                let bytes = std::fs::read(&path)?;
                let Ok(mut p) = serde_json::from_slice::<ArchivedPeriod>(&bytes) else {
                    continue;
                };
                let before = p.entries.len();
                p.entries.retain(|e| e.player_id != player);
                if p.entries.len() == before {
                    continue;
                }
                for (i, e) in p.entries.iter_mut().enumerate() {
                    e.rank = i as u64 + 1;
                }
                p.total = p.total.saturating_sub((before - p.entries.len()) as u64);
                let body =
                    serde_json::to_vec(&p).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                let tmp = path.with_extension("json.tmp");
                std::fs::write(&tmp, body)?;
                std::fs::File::open(&tmp)?.sync_all()?;
                std::fs::rename(&tmp, &path)?;
                changed += 1;
            }
            Ok(changed)
        })
        .await
        .map_err(|_| StoreError::Closed)?
    }

    async fn put_period(&self, p: &ArchivedPeriod) -> Result<(), StoreError> {
        let path = self.path(&p.window, &p.period).ok_or_else(|| {
            StoreError::Corrupt(format!("bad archive name {}/{}", p.window, p.period))
        })?;
        let body = serde_json::to_vec(p).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        write_atomically(path, body).await
    }

    async fn put_snapshot(&self, p: &ArchivedPeriod) -> Result<(), StoreError> {
        let period_path = self.path(&p.window, &p.period).ok_or_else(|| {
            StoreError::Corrupt(format!("bad archive name {}/{}", p.window, p.period))
        })?;
        // archive/snapshots/<window>/<period>/<unix millis>.json
        let path = self
            .root
            .join("snapshots")
            .join(&p.window)
            .join(period_path.file_stem().unwrap_or_default())
            .join(format!("{}.json", p.archived_at.timestamp_millis()));
        let body = serde_json::to_vec(p).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        write_atomically(path, body).await
    }

    async fn get_period(
        &self,
        window: &str,
        period: &str,
    ) -> Result<Option<ArchivedPeriod>, StoreError> {
        let Some(path) = self.path(window, period) else {
            return Ok(None);
        };
        match tokio::fs::read(&path).await {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| StoreError::Corrupt(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}
