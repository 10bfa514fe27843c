//! The live feed: what changed, for open dashboard pages (`GET /events`, server-sent events).
//!
//! Every stored document change (a phone's sync, an admin's edit, an officer's decision) and
//! every device's sync publishes one [`Change`] after its transaction committed. Pages decide
//! what to refetch from `kind` and `campaign`; the feed carries ids only, never names or phones.
//! A page that falls behind (the channel is bounded) is told to reload rather than silently
//! missing changes.

use doorstep_core::doc::{DocId, DocKind};
use doorstep_core::model::{Millis, now_millis};
use serde::Serialize;
use tokio::sync::broadcast;

/// How many changes a slow page may lag before it is told to reload.
const BACKLOG: usize = 1024;

/// One thing that changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// `register`, `building`, `campaign`, `field`, `orders`, or `device` for a sync that changed
    /// only the device's bookkeeping (last sync, pending, rejected).
    pub kind: &'static str,
    /// The document id, or the device id for `device`.
    pub id: String,
    pub campaign: Option<String>,
    /// `sync` (a phone) or `server` (an admin or officer on the dashboard or API).
    pub source: &'static str,
    pub at: Millis,
}

/// The sending side; cheap to clone.
#[derive(Debug, Clone)]
pub struct Live {
    tx: broadcast::Sender<Change>,
}

impl Default for Live {
    fn default() -> Self {
        Live {
            tx: broadcast::channel(BACKLOG).0,
        }
    }
}

impl Live {
    /// A stored document changed.
    pub fn document(&self, id: &DocId, source: &'static str) {
        let kind = match id.kind() {
            DocKind::Register => "register",
            DocKind::Building => "building",
            DocKind::Campaign => "campaign",
            DocKind::Field => "field",
            DocKind::Orders => "orders",
        };
        self.send(Change {
            kind,
            id: id.to_string(),
            campaign: id.campaign().map(str::to_string),
            source,
            at: now_millis(),
        });
    }

    /// A device synced (its last sync, pending and rejected counts changed).
    pub fn device(&self, device: &uuid::Uuid) {
        self.send(Change {
            kind: "device",
            id: device.to_string(),
            campaign: None,
            source: "sync",
            at: now_millis(),
        });
    }

    fn send(&self, change: Change) {
        // No receiver (no page open) is the normal case, not an error.
        let _ = self.tx.send(change);
    }

    /// A new listener, seeing changes from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.tx.subscribe()
    }

    /// Pages listening now.
    pub fn listeners(&self) -> usize {
        self.tx.receiver_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listeners_hear_document_changes_with_their_campaign() {
        let live = Live::default();
        let mut rx = live.subscribe();
        live.document(
            &DocId::Field {
                campaign: "c1".into(),
                building: "3".into(),
            },
            "sync",
        );
        let change = rx.try_recv().expect("a change was sent");
        assert_eq!(change.kind, "field");
        assert_eq!(change.campaign.as_deref(), Some("c1"));
        assert_eq!(change.source, "sync");
    }
}
