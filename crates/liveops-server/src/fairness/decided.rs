//! The decided view of the log: what progression and leaderboards consume. It reads the log up
//! to the fairness cursor (the decided head) without the held events, and its tail carries each
//! batch the worker decided, so the consumers rarely read the store at all.
//!
//! In a deployment of several processes another one may lead fairness; then the head here
//! follows the stored fairness cursor ([`FairnessState::follow_stored_cursor`]) and the
//! consumers read the decisions back from the store.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use async_trait::async_trait;
use liveops_store::{
    Appended, CommittedBatch, EventLog, FairnessStore, LoggedEvent, NewEvent, StoreError,
};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use super::FairnessState;

/// The log as progression and leaderboards see it: decided events only.
pub struct DecidedLog {
    store: Arc<dyn FairnessStore>,
    raw: Arc<dyn EventLog>,
    /// The fairness cursor, moved by the worker (or the stored-cursor follower).
    head: watch::Receiver<u64>,
    /// Each decided batch, as the worker hands it on.
    tail: broadcast::Sender<CommittedBatch>,
}

impl DecidedLog {
    pub(super) fn new(
        store: Arc<dyn FairnessStore>,
        raw: Arc<dyn EventLog>,
        head: watch::Receiver<u64>,
        tail: broadcast::Sender<CommittedBatch>,
    ) -> Self {
        DecidedLog {
            store,
            raw,
            head,
            tail,
        }
    }
}

#[async_trait]
impl EventLog for DecidedLog {
    async fn append(&self, _events: Vec<NewEvent>) -> Result<Vec<Appended>, StoreError> {
        Err(StoreError::Database(
            "the decided view of the log is read-only".into(),
        ))
    }

    async fn read_after(&self, after: u64, limit: usize) -> Result<Vec<LoggedEvent>, StoreError> {
        let upto = *self.head.borrow();
        self.store.read_decided_after(after, limit, upto).await
    }

    fn committed(&self) -> watch::Receiver<u64> {
        self.head.clone()
    }

    fn tail(&self) -> Option<broadcast::Receiver<CommittedBatch>> {
        Some(self.tail.subscribe())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.raw.ping().await
    }
}

impl FairnessState {
    /// Moves the decided head to the stored fairness cursor as it moves. In a deployment of
    /// several processes another one may lead fairness; this process's progression and
    /// leaderboard workers then learn of its decisions here (and read them from the store).
    pub async fn follow_stored_cursor(
        &self,
        mut stored: watch::Receiver<u64>,
        shutdown: CancellationToken,
    ) {
        loop {
            let cursor = *stored.borrow_and_update();
            // While this process decides, its worker moves the head itself.
            if !self.leading.load(Ordering::Acquire) {
                self.decided_head.send_if_modified(|head| {
                    let moved = cursor > *head;
                    *head = (*head).max(cursor);
                    moved
                });
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                changed = stored.changed() => if changed.is_err() { return },
            }
        }
    }
}
