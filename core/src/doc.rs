//! Documents: which Automerge document holds what, their typed shapes, and a handle that
//! opens them strictly with a fresh actor and tracks what is already saved.
//!
//! Documents are partitioned by who writes and who may read them (ARCHITECTURE.md):
//! `register/{community}`, `building/{community}/{building}`, `campaign/{id}`,
//! `field/{campaign}/{building}`, `orders/{community}/{building}`.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use automerge::{ActorId, AutoCommit, ChangeHash, LoadOptions, OnPartialLoad, ROOT, ReadDoc};
use autosurgeon::{Hydrate, Reconcile, hydrate, reconcile_prop};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{
    Adjudication, Ballot, Building, Campaign, Delivery, Household, RollEntry, Unit, Visit,
    WorkOrder,
};

/// The shape version every document carries at its root under `schema`, and that the phone
/// names in its sync requests.
///
/// - 1: the first release.
/// - 2: a ballot records how it came back (`Ballot::method`: at the door, by a written proxy,
///   at the polling place, returned to the box). Schema-1 ballots have no such key and read
///   as collected at the door; the server lifts the `schema` of what it stores to 2 when it
///   starts (`doorstep_server::upgrade`).
pub const SCHEMA_VERSION: u64 = 2;

/// Names one document. Its string form (`Display` / `FromStr`) is what the wire and the stores use.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DocId {
    Register { community: String },
    Building { community: String, building: String },
    Campaign { campaign: String },
    Field { campaign: String, building: String },
    Orders { community: String, building: String },
}

/// The kind of a document, without its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocKind {
    Register,
    Building,
    Campaign,
    Field,
    Orders,
}

impl DocId {
    pub fn kind(&self) -> DocKind {
        match self {
            DocId::Register { .. } => DocKind::Register,
            DocId::Building { .. } => DocKind::Building,
            DocId::Campaign { .. } => DocKind::Campaign,
            DocId::Field { .. } => DocKind::Field,
            DocId::Orders { .. } => DocKind::Orders,
        }
    }

    /// The building this document belongs to, for building-scoped documents.
    pub fn building(&self) -> Option<&str> {
        match self {
            DocId::Building { building, .. }
            | DocId::Field { building, .. }
            | DocId::Orders { building, .. } => Some(building),
            _ => None,
        }
    }

    /// The campaign this document belongs to, for campaign and field documents.
    pub fn campaign(&self) -> Option<&str> {
        match self {
            DocId::Campaign { campaign } | DocId::Field { campaign, .. } => Some(campaign),
            _ => None,
        }
    }
}

impl fmt::Display for DocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DocId::Register { community } => write!(f, "register/{community}"),
            DocId::Building {
                community,
                building,
            } => write!(f, "building/{community}/{building}"),
            DocId::Campaign { campaign } => write!(f, "campaign/{campaign}"),
            DocId::Field { campaign, building } => write!(f, "field/{campaign}/{building}"),
            DocId::Orders {
                community,
                building,
            } => write!(f, "orders/{community}/{building}"),
        }
    }
}

/// The grammar of one segment of a document id (a community, building or campaign id):
/// 1–64 bytes, no `/`, no whitespace or control characters. Every id that becomes part of a
/// document id is checked against it where it enters (register import, campaign drafts).
pub fn is_id_segment(segment: &str) -> bool {
    !segment.is_empty()
        && segment.len() <= 64
        && !segment
            .chars()
            .any(|c| c == '/' || c.is_whitespace() || c.is_control())
}

impl DocId {
    /// True when this id is written the way [`DocId::from_str`] reads it back (an id built
    /// from unchecked parts may not be).
    pub fn is_well_formed(&self) -> bool {
        self.to_string()
            .parse::<DocId>()
            .is_ok_and(|back| back == *self)
    }
}

impl FromStr for DocId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let parts: Vec<&str> = s.split('/').collect();
        if !parts.iter().all(|p| is_id_segment(p)) {
            return Err(Error::BadDocId(s.to_string()));
        }
        let id = match parts.as_slice() {
            ["register", c] => DocId::Register {
                community: c.to_string(),
            },
            ["building", c, b] => DocId::Building {
                community: c.to_string(),
                building: b.to_string(),
            },
            ["campaign", c] => DocId::Campaign {
                campaign: c.to_string(),
            },
            ["field", c, b] => DocId::Field {
                campaign: c.to_string(),
                building: b.to_string(),
            },
            ["orders", c, b] => DocId::Orders {
                community: c.to_string(),
                building: b.to_string(),
            },
            _ => return Err(Error::BadDocId(s.to_string())),
        };
        Ok(id)
    }
}

// ---------------------------------------------------------------------------------------------
// Typed shapes of each document kind (hydrated whole; written record by record).
// ---------------------------------------------------------------------------------------------

/// `register/{community}`: the property area (物业管理区域) and its buildings. Admin-written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Hydrate, Reconcile)]
pub struct RegisterDoc {
    pub schema: u64,
    pub community: String,
    pub name: String,
    pub buildings: BTreeMap<String, Building>,
    /// Sum of all units' exclusive areas, 0.01 m².
    pub total_area: i64,
    pub total_units: i64,
}

/// `building/{community}/{building}`: units (admin) and households (building head).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Hydrate, Reconcile)]
pub struct BuildingDoc {
    pub schema: u64,
    pub community: String,
    pub building: Building,
    pub units: BTreeMap<String, Unit>,
    pub households: BTreeMap<String, Household>,
}

/// `campaign/{id}`: the definition, rules, questions and status. Admin-written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Hydrate, Reconcile)]
pub struct CampaignDoc {
    pub schema: u64,
    pub campaign: Campaign,
}

/// `field/{campaign}/{building}`: the frozen roll slice and everything collected at the doors.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, Hydrate, Reconcile)]
pub struct FieldDoc {
    pub schema: u64,
    pub campaign: String,
    pub building: String,
    /// Unit code → roll entry, written once at publication.
    pub roll: BTreeMap<String, RollEntry>,
    pub visits: BTreeMap<String, Visit>,
    pub deliveries: BTreeMap<String, Delivery>,
    pub ballots: BTreeMap<String, Ballot>,
    pub adjudications: BTreeMap<String, Adjudication>,
}

/// `orders/{community}/{building}`: 微心愿 work orders.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, Hydrate, Reconcile)]
pub struct OrdersDoc {
    pub schema: u64,
    pub community: String,
    pub building: String,
    pub orders: BTreeMap<String, WorkOrder>,
}

// ---------------------------------------------------------------------------------------------
// Actors: one device, many short-lived actors.
// ---------------------------------------------------------------------------------------------

/// Length of the device prefix inside every actor id.
pub const DEVICE_PREFIX_LEN: usize = 16;

/// A fresh actor for `device`: the device's 16-byte id followed by 8 random bytes.
///
/// Reusing an actor across two live replicas breaks merges forever (DuplicateSeqNumber), so each
/// opening of a document gets a new one; the prefix lets the server tie every change to the
/// device that made it.
pub fn fresh_actor(device: &uuid::Uuid) -> ActorId {
    let mut bytes = device.as_bytes().to_vec();
    bytes.extend_from_slice(&uuid::Uuid::new_v4().as_bytes()[..8]);
    ActorId::from(bytes)
}

/// The device an actor belongs to, if it has the doorstep shape.
pub fn actor_device(actor: &ActorId) -> Option<uuid::Uuid> {
    let bytes = actor.to_bytes();
    if bytes.len() != DEVICE_PREFIX_LEN + 8 {
        return None;
    }
    uuid::Uuid::from_slice(&bytes[..DEVICE_PREFIX_LEN]).ok()
}

// ---------------------------------------------------------------------------------------------
// Receiving from a peer.
// ---------------------------------------------------------------------------------------------

/// Receive a peer's sync message into `doc`: the one way doorstep applies changes it did not
/// make (the server from phones, an admin accepting held work, the phone from the server).
///
/// automerge 0.12 (and hexane, its column codec) panics on some malformed changes and bundles
/// instead of returning an error (`fuzz/crashers/sync_message_rules/`). Such a panic is caught
/// here and returned as [`Error::Invalid`], so that it cannot end a thread that holds the
/// document's lock. After any error `doc` may hold part of the message: the caller must drop it
/// and load it again from storage.
pub fn receive_sync_message(
    doc: &mut AutoCommit,
    state: &mut automerge::sync::State,
    message: automerge::sync::Message,
) -> Result<()> {
    use automerge::sync::SyncDoc;
    let received = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        doc.sync().receive_sync_message(state, message)
    }));
    match received {
        Ok(applied) => Ok(applied?),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(Error::Invalid(format!(
                "the changes cannot be decoded (automerge failed on them: {what})"
            )))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The handle.
// ---------------------------------------------------------------------------------------------

/// One open document: its id, the Automerge state, and the heads already persisted.
#[derive(Debug)]
pub struct Document {
    id: DocId,
    doc: AutoCommit,
    saved_heads: Vec<ChangeHash>,
}

impl Document {
    /// A new, empty document written by `device`. Nothing is saved yet.
    pub fn new(id: DocId, device: &uuid::Uuid) -> Self {
        let doc = AutoCommit::new().with_actor(fresh_actor(device));
        Document {
            id,
            doc,
            saved_heads: Vec::new(),
        }
    }

    /// Load strictly from saved bytes (a snapshot followed by increments): a corrupt or
    /// truncated tail is an error, never a silent partial load. The actor is fresh.
    pub fn load(id: DocId, bytes: &[u8], device: &uuid::Uuid) -> Result<Self> {
        let options = LoadOptions::new().on_partial_load(OnPartialLoad::Error);
        let mut doc = AutoCommit::load_with_options(bytes, options)
            .map_err(|e| Error::Corrupt(format!("{id}: {e}")))?
            .with_actor(fresh_actor(device));
        let saved_heads = doc.get_heads();
        Ok(Document {
            id,
            doc,
            saved_heads,
        })
    }

    pub fn id(&self) -> &DocId {
        &self.id
    }

    pub fn heads(&mut self) -> Vec<ChangeHash> {
        self.doc.get_heads()
    }

    /// The Automerge document, for reading and for sync.
    pub fn automerge(&mut self) -> &mut AutoCommit {
        &mut self.doc
    }

    pub fn actor(&self) -> &ActorId {
        self.doc.get_actor()
    }

    /// Replace the actor (e.g. after enrollment gives this install its device id).
    pub fn set_device(&mut self, device: &uuid::Uuid) {
        self.doc.set_actor(fresh_actor(device));
    }

    /// Bytes of every change not yet persisted, and the heads they bring the store to.
    pub fn unsaved(&mut self) -> (Vec<u8>, Vec<ChangeHash>) {
        let heads = self.doc.get_heads();
        let bytes = self.doc.save_after(&self.saved_heads);
        (bytes, heads)
    }

    /// Record that the store now holds everything up to `heads`.
    pub fn mark_saved(&mut self, heads: Vec<ChangeHash>) {
        self.saved_heads = heads;
    }

    /// A compact snapshot of the whole document.
    pub fn snapshot(&mut self) -> Vec<u8> {
        self.doc.save()
    }

    /// Hydrate the whole document into its typed shape.
    pub fn read<T: Hydrate>(&self) -> Result<T> {
        hydrate(&self.doc).map_err(|e| Error::Shape(format!("{}: {e}", self.id)))
    }

    /// Hydrate one record `collection/key` (e.g. `orders/<uuid>`); `None` when it is not there.
    pub fn read_record<T: Hydrate>(&self, collection: &str, key: &str) -> Result<Option<T>> {
        let shape = |e: autosurgeon::HydrateError| Error::Shape(format!("{}: {e}", self.id));
        match self.doc.get(ROOT, collection)? {
            Some((automerge::Value::Object(automerge::ObjType::Map), coll)) => {
                if self.doc.get(&coll, key)?.is_none() {
                    return Ok(None);
                }
                autosurgeon::hydrate_prop::<_, T, _, _>(&self.doc, &coll, key)
                    .map(Some)
                    .map_err(shape)
            }
            _ => Ok(None),
        }
    }

    /// Write one record `value` under `collection/key` (e.g. `visits/<uuid>`), creating the
    /// collection map when missing. Does not commit.
    pub fn put_record<R: Reconcile>(
        &mut self,
        collection: &str,
        key: &str,
        value: &R,
    ) -> Result<()> {
        let coll = match self.doc.get(ROOT, collection)? {
            Some((automerge::Value::Object(automerge::ObjType::Map), id)) => id,
            _ => {
                use automerge::transaction::Transactable;
                self.doc
                    .put_object(ROOT, collection, automerge::ObjType::Map)?
            }
        };
        reconcile_prop(&mut self.doc, coll, key, value)
            .map_err(|e| Error::Shape(format!("{}: {e}", self.id)))
    }

    /// Write the whole typed shape (used to create a document and for admin edits).
    pub fn write<R: Reconcile>(&mut self, value: &R) -> Result<()> {
        autosurgeon::reconcile(&mut self.doc, value)
            .map_err(|e| Error::Shape(format!("{}: {e}", self.id)))
    }

    /// Commit pending operations as one change with a message; returns its hash, if any.
    pub fn commit(&mut self, message: &str) -> Option<ChangeHash> {
        self.commit_at(message, crate::model::now_millis())
    }

    /// [`Document::commit`] stamped with `now` (milliseconds; the change keeps seconds).
    pub fn commit_at(&mut self, message: &str, now: crate::model::Millis) -> Option<ChangeHash> {
        self.doc.commit_with(
            automerge::transaction::CommitOptions::default()
                .with_message(message.to_string())
                .with_time(now / 1000),
        )
    }

    /// Drop every change after `heads` (used when the rules refuse a local change): the
    /// document returns to exactly that state with a fresh actor.
    pub fn revert_to(&mut self, heads: &[ChangeHash], device: &uuid::Uuid) -> Result<()> {
        let forked = self.doc.fork_at(heads)?;
        self.doc = forked.with_actor(fresh_actor(device));
        Ok(())
    }
}
