//! The server's storage seam: the [`Storage`] trait and the records it keeps.
//!
//! Everything the sync engine and the accounts code need goes through this trait, so a
//! PostgreSQL backend is an added implementation, not a rewrite. The trait is blocking on
//! purpose: the SQLite backend is blocking, handlers call it from `spawn_blocking`, and a
//! PostgreSQL backend can sit behind the same calls. Projections are SQL tables maintained inside
//! the backend's write transaction (see `crate::projections`).
//!
//! Architecture Invariant: one call to [`Storage::commit`] is one transaction. A sync request's
//! documents, sync states, quarantine rows, audit events and projection updates land together or
//! not at all.

use std::collections::BTreeSet;

use automerge::{AutoCommit, ChangeHash};
use doorstep_core::doc::DocId;
use doorstep_core::model::{Millis, Role};
use serde::Serialize;
use uuid::Uuid;

mod grants;
pub use grants::{EVERYWHERE, Grants};
mod group_sync;
pub use group_sync::{DurabilityStats, GroupSync};
pub mod views;
pub use views::Views;
pub mod sql_views;
pub use sql_views::SqlRead;

pub mod sql;

pub mod audit;
mod backend;
pub use backend::{Backend, Remote, Sink, SqlBackend};
pub mod directory;
pub mod documents;
pub mod migrate;

pub mod postgres;
pub mod sqlite;

pub use postgres::PgStorage;
pub use sqlite::SqliteStorage;

/// What can go wrong in storage.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database: {0}")]
    Sql(sql::SqlError),
    /// The document changed in another server process after this one loaded it; nothing was
    /// written. Load it again and retry.
    #[error("stale: {0} changed in another process")]
    Stale(String),
    /// The thing asked for does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// A uniqueness or state conflict (login taken, code already used).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The input cannot be stored as given.
    #[error("invalid: {0}")]
    Invalid(String),
    /// Stored bytes do not decode; never silently skipped.
    #[error("corrupt: {0}")]
    Corrupt(String),
    /// A projection could not be updated; the whole transaction is rolled back.
    #[error("projection: {0}")]
    Projection(String),
    /// The change would leave no active admin who can log in.
    #[error("the last active admin cannot be disabled or lose the admin role")]
    LastAdmin,
    /// A lock was poisoned by a panic in another thread.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
}

/// A statement that could not reach the database is `Unavailable` (answered 503 with
/// `Retry-After`); any other failure keeps its cause.
impl From<sql::SqlError> for StorageError {
    fn from(e: sql::SqlError) -> Self {
        if e.is_unavailable() {
            StorageError::Unavailable(e.to_string())
        } else {
            StorageError::Sql(e)
        }
    }
}

/// Shorthand for storage results.
pub type StorageResult<T> = Result<T, StorageError>;

/// The communities (小区) an account's roles apply in: some, or every community on the server
/// (a 街道's staff). Written `["tpy", …]`, and `["*"]` for all, in the JSON API and in storage.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Communities {
    All,
    Only(BTreeSet<String>),
}

impl Communities {
    /// The one community `id`.
    pub fn one(id: &str) -> Communities {
        Communities::Only(BTreeSet::from([id.to_string()]))
    }

    /// Whether `community` is among them.
    pub fn includes(&self, community: &str) -> bool {
        match self {
            Communities::All => true,
            Communities::Only(set) => set.contains(community),
        }
    }

    /// Whether every community of `other` is among them.
    pub fn covers(&self, other: &Communities) -> bool {
        match (self, other) {
            (Communities::All, _) => true,
            (Communities::Only(_), Communities::All) => false,
            (Communities::Only(mine), Communities::Only(theirs)) => theirs.is_subset(mine),
        }
    }

    /// The list form: community ids, or `["*"]`.
    pub fn to_list(&self) -> Vec<String> {
        match self {
            Communities::All => vec!["*".to_string()],
            Communities::Only(set) => set.iter().cloned().collect(),
        }
    }

    /// From the list form; `None` when it is empty or mixes `*` with ids.
    pub fn from_list(list: &[String]) -> Option<Communities> {
        if list.iter().any(|c| c == "*") {
            return (list.len() == 1).then_some(Communities::All);
        }
        let set: BTreeSet<String> = list.iter().map(|c| c.trim().to_string()).collect();
        (!set.is_empty() && set.iter().all(|c| doorstep_core::doc::is_id_segment(c)))
            .then_some(Communities::Only(set))
    }
}

impl Serialize for Communities {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_list().serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for Communities {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let list = Vec::<String>::deserialize(d)?;
        Communities::from_list(&list).ok_or_else(|| {
            serde::de::Error::custom(
                "communities is a non-empty list of community ids, or [\"*\"] for all",
            )
        })
    }
}

/// An account: a person who logs in to the dashboard and/or whose phones sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Stable id written as `by` on records (never the person's name).
    pub id: String,
    pub login: String,
    /// Shown on the dashboard only; personal data, never logged.
    pub display_name: String,
    /// The roles held in each community: every admin endpoint, export and page shows only
    /// what they allow.
    pub grants: Grants,
    /// The argon2 PHC string; `None` for accounts that only sync from phones.
    pub password_hash: Option<String>,
    pub created_at: Millis,
    pub disabled: bool,
}

impl Account {
    /// Whether `role` is held in some community.
    pub fn is(&self, role: Role) -> bool {
        self.grants.anywhere(role)
    }
}

/// The JSON form: the grants, and (to read at a glance) every role held somewhere and the
/// communities where one is; never the password hash.
impl Serialize for Account {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Json<'a> {
            id: &'a str,
            login: &'a str,
            display_name: &'a str,
            grants: &'a Grants,
            roles: Vec<Role>,
            communities: Communities,
            created_at: Millis,
            disabled: bool,
        }
        Json {
            id: &self.id,
            login: &self.login,
            display_name: &self.display_name,
            grants: &self.grants,
            roles: self.grants.roles(),
            communities: self.grants.communities(),
            created_at: self.created_at,
            disabled: self.disabled,
        }
        .serialize(s)
    }
}

/// The fields of a new account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccount {
    pub login: String,
    pub display_name: String,
    pub grants: Grants,
    pub password_hash: Option<String>,
}

/// A building assigned to an account (楼栋长 responsibility).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Assignment {
    pub account_id: String,
    pub community: String,
    pub building: String,
}

/// An enrolled phone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Device {
    /// Server-issued; the 16-byte prefix of every actor the phone uses.
    pub id: Uuid,
    pub account_id: String,
    pub label: String,
    pub enrolled_at: Millis,
    pub revoked_at: Option<Millis>,
    pub last_sync_at: Option<Millis>,
    pub app_version: String,
    /// Documents with local changes not yet acknowledged, as the phone last reported.
    pub pending: i64,
    /// How many distinct payloads from this device were rejected and quarantined.
    pub rejected: i64,
    pub syncs: i64,
    pub bytes_up: i64,
    pub bytes_down: i64,
    /// The digest of the manifest last announced to this device.
    #[serde(skip)]
    pub manifest_digest: Option<Vec<u8>>,
    /// Bytes of refused payloads kept for this device, counted against its budget.
    pub quarantined_bytes: i64,
    /// When this device went over its quarantine budget: from then on its syncs are refused
    /// (`quarantine_full`) until an admin releases it.
    pub quarantine_full_at: Option<Millis>,
}

/// A device about to be created by an enrollment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDevice {
    pub id: Uuid,
    pub label: String,
    pub app_version: String,
    pub token_hash: Vec<u8>,
}

/// A one-time enrollment code (its hash stays in the database, never the code).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnrollmentCode {
    /// The first bytes of the code's hash, hex: identifies a code on the dashboard.
    pub handle: String,
    pub account_id: String,
    pub created_at: Millis,
    pub expires_at: Millis,
    pub used_at: Option<Millis>,
    pub device_id: Option<Uuid>,
}

/// What the storage knows about a document without loading it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocMeta {
    pub id: DocId,
    /// The community the document belongs to (for field documents: the campaign's).
    pub community: String,
    pub heads: Vec<ChangeHash>,
    pub snapshot_bytes: i64,
    pub chunk_bytes: i64,
    pub chunks: i64,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// A document's stored bytes: the snapshot followed by every incremental chunk, in order,
/// ready for a strict `load`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDoc {
    pub meta: DocMeta,
    pub bytes: Vec<u8>,
}

/// What the server remembers per (device, document).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRow {
    pub doc: DocId,
    /// `automerge::sync::State::encode()` (the shared heads), if any exchange happened.
    pub state: Option<Vec<u8>>,
    /// The heads last announced to the device for this document, if any.
    pub announced: Option<Vec<ChangeHash>>,
}

/// One audit event as stored, with its place in the hash chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEvent {
    pub seq: i64,
    pub at: Millis,
    /// Who did it: `account:<id>`, `device:<uuid>` or `server`.
    pub actor: String,
    /// What happened, e.g. `sync.rejected`, `device.enrolled`.
    pub kind: String,
    /// What it happened to, e.g. a document id or device id.
    pub subject: String,
    /// Structured detail; never names or phone numbers.
    pub detail: serde_json::Value,
    /// hex(sha256(previous hash || canonical event)).
    pub hash: String,
}

/// An audit event to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuditEvent {
    pub actor: String,
    pub kind: String,
    pub subject: String,
    pub detail: serde_json::Value,
}

impl NewAuditEvent {
    pub fn new(
        actor: impl Into<String>,
        kind: impl Into<String>,
        subject: impl Into<String>,
        detail: serde_json::Value,
    ) -> Self {
        NewAuditEvent {
            actor: actor.into(),
            kind: kind.into(),
            subject: subject.into(),
            detail,
        }
    }
}

/// A rejected payload kept for review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuarantineEntry {
    pub id: i64,
    pub at: Millis,
    pub device_id: Uuid,
    pub account_id: String,
    pub doc: String,
    pub reason: String,
    pub payload_bytes: i64,
    /// How many of them are kept: all of held work, a sample of other refusals.
    pub kept_bytes: i64,
    /// hex sha256 of the payload.
    pub payload_sha256: String,
    /// The refusal's machine code (`None` for rows from before codes were kept).
    pub code: Option<String>,
    /// When an admin accepted this held work into its document, and who.
    pub accepted_at: Option<Millis>,
    pub accepted_by: Option<String>,
}

/// How a document's bytes change in a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocContent {
    /// Append one incremental chunk (`save_after` the previously stored heads).
    Chunk(Vec<u8>),
    /// Replace the snapshot and drop every chunk (creation and compaction).
    Snapshot(Vec<u8>),
}

/// One document written in a commit.
#[derive(Debug)]
pub struct DocWrite<'a> {
    pub id: DocId,
    /// Only read when the document is created.
    pub community: String,
    pub content: DocContent,
    /// The document's heads after this write.
    pub heads: Vec<ChangeHash>,
    /// The heads the write was made on, `None` for a new document: when the stored heads
    /// differ (or a new document exists already), another process changed the document since
    /// it was loaded and the commit is refused as [`StorageError::Stale`].
    pub base: Option<Vec<ChangeHash>>,
    /// The document after the write, for the projection hook.
    pub doc: &'a AutoCommit,
    /// What the rules' check found this write's changes touched (paths and the records read),
    /// so only those records are projected, without reading them again; `None` projects the
    /// whole document.
    pub checked: Option<doorstep_core::rules::Checked>,
}

/// What happens to the announced heads of one (device, document).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Announce {
    Keep,
    Set(Vec<ChangeHash>),
    Clear,
}

/// One (device, document) sync row written in a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncStateWrite {
    pub doc: DocId,
    /// New encoded `sync::State`, or `None` to keep the stored one.
    pub state: Option<Vec<u8>>,
    pub announced: Announce,
}

/// A rejected payload to quarantine (deduplicated on device, document and payload hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantineWrite {
    pub doc: DocId,
    /// The refusal's machine code.
    pub code: &'static str,
    pub reason: String,
    pub payload: Vec<u8>,
    /// Keep every byte (work an admin may accept); otherwise only the first
    /// [`QUARANTINE_SAMPLE`] bytes are kept, with the whole payload's hash and size.
    pub keep_whole: bool,
    /// Appended only when the payload was not quarantined before, so a re-sent request does
    /// not duplicate it.
    pub audit: NewAuditEvent,
}

/// The per-device bookkeeping of one sync request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSyncWrite {
    pub device: Uuid,
    pub account_id: String,
    pub at: Millis,
    pub app_version: String,
    pub pending: i64,
    pub bytes_up: i64,
    pub bytes_down: i64,
    /// When set, every announced heads of this device is cleared before `sync_states` apply
    /// (a full manifest replaces what the device knew).
    pub reset_announced: bool,
    pub manifest_digest: Option<Vec<u8>>,
    /// Bytes of refused payloads this device may have kept in all; beyond it nothing more is
    /// kept and the device is flagged ([`Device::quarantine_full_at`]).
    pub quarantine_budget: i64,
}

/// How many bytes of a refused payload that is only evidence are kept.
pub const QUARANTINE_SAMPLE: usize = 4 * 1024;

/// Everything one transaction writes.
#[derive(Debug, Default)]
pub struct Batch<'a> {
    pub documents: Vec<DocWrite<'a>>,
    pub device: Option<DeviceSyncWrite>,
    pub sync_states: Vec<SyncStateWrite>,
    pub quarantine: Vec<QuarantineWrite>,
    pub audit: Vec<NewAuditEvent>,
}

/// The outcome of a commit that the caller needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitReport {
    /// Quarantine rows actually inserted (re-sent payloads are not counted again).
    pub quarantined: usize,
    /// Some refused payload was not kept: the device is over its quarantine budget.
    pub over_budget: bool,
}

/// The server's storage, split by what each caller needs: documents and sync rows (sync),
/// the directory (accounts, devices, sessions, enrollment, throttling), the audit log and
/// quarantine; the dashboard's reads are [`Views`]. Every method is blocking; call it off the
/// async runtime. Implemented once, for every SQL backend (`backend.rs`).
pub trait Storage: DocumentStore + Directory + AuditLog {}

impl<T: DocumentStore + Directory + AuditLog + ?Sized> Storage for T {}

/// What sync needs: documents, their per-device sync rows, and one transaction per request.
pub trait DocumentStore: Send + Sync + 'static {
    /// The server's own device id: the actor prefix of changes the server makes.
    fn server_device(&self) -> Uuid;

    /// The server's clock: every time it stamps (a change, a session, a ballot's arrival)
    /// comes from here, so tests move time by hand.
    fn now(&self) -> doorstep_core::model::Millis;

    // Documents ------------------------------------------------------------------------------

    /// The stored bytes of a document, or `None` when it does not exist.
    fn load_document(&self, id: &DocId) -> StorageResult<Option<StoredDoc>>;
    fn document_meta(&self, id: &DocId) -> StorageResult<Option<DocMeta>>;
    /// Every document's metadata, ordered by id.
    fn documents(&self) -> StorageResult<Vec<DocMeta>>;
    /// The documents an account's phones should hold: for each assigned building its
    /// building, orders and field documents, the community's register, and the campaigns those
    /// field documents belong to.
    fn account_documents(&self, account_id: &str) -> StorageResult<Vec<DocMeta>>;
    /// Apply a batch in one transaction (documents, projections, sync rows, quarantine, audit).
    /// Like every write, it returns once the transaction is on disk.
    fn commit(&self, batch: &Batch<'_>) -> StorageResult<CommitReport>;
    /// How many transactions committed and how many syncs to disk made them durable (group
    /// commit shares one sync among concurrent writes).
    fn durability(&self) -> DurabilityStats;
    /// A trivial read: the database answers (`/healthz`).
    fn ping(&self) -> StorageResult<()>;

    // Sync rows ------------------------------------------------------------------------------

    fn sync_rows(&self, device: &Uuid) -> StorageResult<Vec<SyncRow>>;
}

/// The directory: accounts and their grants, building assignments, dashboard sessions,
/// enrollment codes, devices, and throttling counts.
pub trait Directory: Send + Sync + 'static {
    // Accounts, assignments, sessions --------------------------------------------------------

    /// Create an account; `Conflict` when the login is taken. Audited as `account.created`.
    fn create_account(&self, new: &NewAccount, actor: &str) -> StorageResult<Account>;
    fn account(&self, id: &str) -> StorageResult<Option<Account>>;
    fn account_by_login(&self, login: &str) -> StorageResult<Option<Account>>;
    fn accounts(&self) -> StorageResult<Vec<Account>>;
    /// Replace the grants and the disabled flag. Audited as `account.updated` (a role change).
    /// [`StorageError::LastAdmin`] when a community (or the server) would be left with no
    /// enabled admin who can log in.
    fn update_account(
        &self,
        id: &str,
        grants: &Grants,
        disabled: bool,
        actor: &str,
    ) -> StorageResult<Account>;
    /// Set a new password hash. Audited as `account.password_set`.
    fn set_password(&self, id: &str, password_hash: &str, actor: &str) -> StorageResult<()>;
    /// Assign a building; idempotent. Audited as `assignment.added`.
    fn assign(&self, assignment: &Assignment, actor: &str) -> StorageResult<()>;
    /// Remove an assignment; `NotFound` when absent. Audited as `assignment.removed`.
    fn unassign(&self, assignment: &Assignment, actor: &str) -> StorageResult<()>;
    /// Assignments of one account, or of everyone.
    fn assignments(&self, account_id: Option<&str>) -> StorageResult<Vec<Assignment>>;
    fn create_session(
        &self,
        token_hash: &[u8],
        account_id: &str,
        expires_at: Millis,
    ) -> StorageResult<()>;
    /// The account behind a live session (not expired, account not disabled).
    fn session_account(&self, token_hash: &[u8], now: Millis) -> StorageResult<Option<Account>>;
    fn delete_session(&self, token_hash: &[u8]) -> StorageResult<()>;

    // Enrollment and devices -----------------------------------------------------------------

    /// Store a new one-time code's hash. Audited as `enrollment.code_created`.
    fn create_enrollment_code(
        &self,
        code_hash: &[u8],
        account_id: &str,
        expires_at: Millis,
        actor: &str,
    ) -> StorageResult<EnrollmentCode>;
    fn enrollment_codes(&self, account_id: Option<&str>) -> StorageResult<Vec<EnrollmentCode>>;
    /// Atomically use a code and create the device. `NotFound` for an unknown code,
    /// `Conflict` for a used or expired one. Audited as `device.enrolled`.
    fn redeem_enrollment_code(
        &self,
        code_hash: &[u8],
        now: Millis,
        device: &NewDevice,
    ) -> StorageResult<Device>;
    fn device(&self, id: &Uuid) -> StorageResult<Option<Device>>;
    fn device_by_token(&self, token_hash: &[u8]) -> StorageResult<Option<Device>>;
    fn devices(&self) -> StorageResult<Vec<Device>>;
    /// Revoke a device; its token stops working at once. Audited as `device.revoked`.
    fn revoke_device(&self, id: &Uuid, actor: &str) -> StorageResult<Device>;

    // Throttling --------------------------------------------------------------------------------

    /// In one transaction (serialised per key across server processes): forget entries whose
    /// last failure is before `forget_before`, read the entries of `keys`, let `update` change
    /// them (an entry it removes is deleted), and store what it leaves. `crate::guard` decides
    /// the policy; keys are opaque (hashed) strings.
    fn throttle(
        &self,
        keys: &[String],
        forget_before: Millis,
        update: &mut dyn FnMut(&mut std::collections::BTreeMap<String, ThrottleEntry>),
    ) -> StorageResult<()>;
}

/// The audit chain and the quarantine of refused payloads.
pub trait AuditLog: Send + Sync + 'static {
    // Audit and quarantine -------------------------------------------------------------------

    fn append_audit(&self, events: &[NewAuditEvent]) -> StorageResult<()>;
    /// Events with `seq > after`, oldest first, at most `limit`.
    fn audit_events(&self, after: i64, limit: usize) -> StorageResult<Vec<AuditEvent>>;
    /// Recompute the whole chain; returns the number of events, or `Corrupt` naming the first
    /// event whose hash does not match.
    fn verify_audit_chain(&self) -> StorageResult<i64>;
    /// Quarantined payloads, newest first.
    fn quarantine(&self, limit: usize) -> StorageResult<Vec<QuarantineEntry>>;
    /// Marks held work as accepted by `by` (an admin); false when it already was.
    fn mark_quarantine_accepted(&self, id: i64, by: &str, at: Millis) -> StorageResult<bool>;
    /// Lets a device flagged over its quarantine budget sync again, its budget counted afresh
    /// (what it sent stays kept). Audited as `device.quarantine_released`.
    fn release_quarantine(&self, device: &Uuid, by: &str) -> StorageResult<Device>;
    /// One quarantined payload's bytes.
    fn quarantine_payload(&self, id: i64) -> StorageResult<Option<Vec<u8>>>;
}

/// The failures counted against one throttled key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleEntry {
    pub failures: u32,
    pub last_failure: Millis,
    pub locked_until: Millis,
}

/// Open the database `target` names: `postgres://…` (or `postgresql://…`) for PostgreSQL, a
/// file path (optionally written `sqlite:PATH`) for SQLite. `pool` sizes PostgreSQL's
/// connection pool. Blocking: call it off the async runtime.
pub fn open(
    target: &str,
    pool: postgres::PoolOptions,
) -> StorageResult<std::sync::Arc<dyn Backend>> {
    if postgres::is_postgres_url(target) {
        Ok(std::sync::Arc::new(PgStorage::open(target, pool)?))
    } else {
        let path = target.strip_prefix("sqlite:").unwrap_or(target);
        Ok(std::sync::Arc::new(SqliteStorage::open(path)?))
    }
}

/// How to name a database in logs and on the console: a file's path, or only "PostgreSQL"
/// (its address may carry a password).
pub fn describe(target: &str) -> String {
    if postgres::is_postgres_url(target) {
        "PostgreSQL".to_string()
    } else {
        target.strip_prefix("sqlite:").unwrap_or(target).to_string()
    }
}

/// Heads as one blob of concatenated 32-byte hashes (sorted, so equal sets give equal blobs).
pub fn heads_to_blob(heads: &[ChangeHash]) -> Vec<u8> {
    let mut sorted = heads.to_vec();
    sorted.sort();
    sorted.iter().flat_map(|h| h.0).collect()
}

/// The inverse of [`heads_to_blob`].
pub fn heads_from_blob(blob: &[u8]) -> StorageResult<Vec<ChangeHash>> {
    if !blob.len().is_multiple_of(32) {
        return Err(StorageError::Corrupt(format!(
            "heads blob of {} bytes",
            blob.len()
        )));
    }
    Ok(blob
        .chunks_exact(32)
        .map(|c| {
            let mut h = [0u8; 32];
            h.copy_from_slice(c);
            ChangeHash(h)
        })
        .collect())
}
