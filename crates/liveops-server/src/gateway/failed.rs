//! The failed-events store (`docs/api.md`): the last refused requests, bounded, like a
//! dead-letter queue the dashboard and the admin API show. Bodies are truncated so a flood of
//! large garbage cannot grow memory.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::Serialize;

const MAX_BODY_BYTES: usize = 4096;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FailedEvent {
    pub at: DateTime<Utc>,
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub client_ip: String,
    /// The refused body (lossy UTF-8), truncated to 4 KiB.
    pub body: String,
    pub truncated: bool,
}

pub struct FailedEvents {
    capacity: usize,
    recent: Mutex<VecDeque<FailedEvent>>,
}

impl FailedEvents {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            recent: Mutex::new(VecDeque::with_capacity(capacity)),
        }
    }

    pub fn body_excerpt(body: &[u8]) -> (String, bool) {
        let cut = body.len().min(MAX_BODY_BYTES);
        (
            String::from_utf8_lossy(&body[..cut]).into_owned(),
            body.len() > cut,
        )
    }

    pub fn push(&self, e: FailedEvent) {
        let mut q = self.recent.lock();
        if q.len() == self.capacity {
            q.pop_front();
        }
        q.push_back(e);
    }

    /// Drops every kept body that names the player (GDPR erasure).
    pub fn forget(&self, player: &str) {
        let quoted = format!("\"{player}\"");
        self.recent.lock().retain(|e| !e.body.contains(&quoted));
    }

    /// Newest first.
    pub fn recent(&self, limit: usize) -> Vec<FailedEvent> {
        self.recent
            .lock()
            .iter()
            .rev()
            .take(limit)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(i: usize) -> FailedEvent {
        let (body, truncated) = FailedEvents::body_excerpt(&vec![b'x'; 5000]);
        FailedEvent {
            at: Utc::now(),
            status: 400,
            code: "invalid_event",
            message: format!("#{i}"),
            field: None,
            client_ip: "127.0.0.1".into(),
            body,
            truncated,
        }
    }

    #[test]
    fn keeps_the_newest_up_to_capacity_with_truncated_bodies() {
        let store = FailedEvents::new(3);
        for i in 0..5 {
            store.push(failed(i));
        }
        let recent = store.recent(10);
        let order: Vec<_> = recent.iter().map(|f| f.message.as_str()).collect();
        assert_eq!(order, vec!["#4", "#3", "#2"]);
        assert!(recent[0].truncated);
        assert_eq!(recent[0].body.len(), MAX_BODY_BYTES);
    }
}
