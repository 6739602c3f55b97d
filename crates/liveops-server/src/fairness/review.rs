//! [`Review`]: what the admin API may do with the fairness guard's decisions. Built once by the
//! composition root beside the role's state and shared by `Arc`, so the admin API calls these
//! methods and never holds or changes the role's fields.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use liveops_domain::fairness::Detector;
use liveops_domain::{EventId, PlayerId};
use liveops_store::{FairnessStore, Resolution, ResolveOutcome, StoreError};
use parking_lot::RwLock;

use super::FairnessState;

pub struct Review {
    store: Arc<dyn FairnessStore>,
    /// The worker's detector: a release teaches it, an erasure makes it forget.
    detector: Arc<RwLock<Detector>>,
}

impl Review {
    pub fn new(state: &FairnessState) -> Self {
        Review {
            store: state.store.clone(),
            detector: state.detector.clone(),
        }
    }

    /// Releases or rejects a quarantined event, once: the store changes its status and, on
    /// release, applies it to progression and numbers the release, in one transaction (the
    /// leaderboards catch up with it by that number). A released event then teaches the
    /// detector, as an accepted event would have.
    pub async fn resolve(
        &self,
        event_id: &EventId,
        resolution: Resolution,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<ResolveOutcome, StoreError> {
        let outcome = self.store.resolve(event_id, resolution, by, at).await?;
        if let ResolveOutcome::Resolved { event: Some(e), .. } = &outcome {
            self.detector
                .write()
                .accept(&e.event.player_id, &e.event.kind);
        }
        Ok(outcome)
    }

    /// Forgets an erased player's baselines (GDPR).
    pub fn forget(&self, player: &PlayerId) {
        self.detector.write().forget(player);
    }
}
