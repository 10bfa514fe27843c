//! The phone's local store: one SQLite file per install holding every document the phone carries
//! (a snapshot plus incremental chunks), the sync state per document and peer, what the server last
//! said about each document, and the install's settings.
//!
//! Durability contract: one user action is one Automerge commit persisted by one SQLite
//! transaction, in WAL mode with `synchronous=FULL`. Once [`StoreTx::commit`] returns the action
//! survives a crash or power loss; an action whose transaction never committed leaves no trace.
//! A document learns that its changes are saved (`Document::mark_saved`) only after the commit, so
//! a rolled-back transaction can never make the phone believe something is stored that is not.
//!
//! Writers take a `&Transaction` and readers a `&Connection` (the application-services style), so
//! several writes compose into one transaction and reads work inside or outside one. [`Store`]
//! owns the single writer connection; share it behind a `Mutex`.

use std::ops::Deref;
use std::path::{Path, PathBuf};

use automerge::ChangeHash;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, ffi, params};
use uuid::Uuid;

use crate::doc::{DocId, Document};
use crate::encryption::{self, StoreKey};
use crate::error::{Error, Result};
use crate::model::{Millis, now_millis};

/// Marks a SQLite file as a doorstep phone store (`PRAGMA application_id`, ASCII "DSTP"), so a
/// foreign SQLite file is refused instead of being migrated into.
pub const APPLICATION_ID: i32 = 0x4453_5450;

/// Schema migrations, applied in order inside one transaction; `PRAGMA user_version` counts how
/// many a file has had. Append only: a released migration is never edited, a change is a new one.
const MIGRATIONS: &[&str] = &[MIGRATION_1, MIGRATION_2];

/// The schema version this build writes: the number of migrations it knows.
pub const STORE_VERSION: i64 = MIGRATIONS.len() as i64;

/// Version 1: documents as snapshot plus chunks, sync states, server status, settings.
const MIGRATION_1: &str = "
-- One row per document the phone holds. `heads` are the heads the stored bytes reach; loading
-- checks that they are all present, which catches a lost tail that Automerge alone would accept.
CREATE TABLE documents (
    doc_id         TEXT PRIMARY KEY NOT NULL,
    snapshot       BLOB,
    snapshot_heads BLOB NOT NULL DEFAULT x'',
    snapshot_len   INTEGER NOT NULL DEFAULT 0,
    heads          BLOB NOT NULL DEFAULT x'',
    updated_at     INTEGER NOT NULL
) STRICT;

-- Incremental changes saved after the snapshot, in order; replaced by a new snapshot on compaction.
CREATE TABLE doc_chunks (
    doc_id TEXT NOT NULL REFERENCES documents (doc_id) ON DELETE CASCADE,
    seq    INTEGER NOT NULL,
    bytes  BLOB NOT NULL,
    PRIMARY KEY (doc_id, seq)
) STRICT;

-- Encoded automerge::sync::State per (document, peer): keeps the heads both sides share.
CREATE TABLE sync_states (
    doc_id TEXT NOT NULL REFERENCES documents (doc_id) ON DELETE CASCADE,
    peer   TEXT NOT NULL,
    state  BLOB NOT NULL,
    PRIMARY KEY (doc_id, peer)
) STRICT;

-- What the server last said about each document, and the heads it reported. A document the
-- server names may not be held here yet, so there is no foreign key.
CREATE TABLE doc_status (
    doc_id       TEXT PRIMARY KEY NOT NULL,
    verdict      TEXT NOT NULL,
    reason       TEXT,
    server_heads BLOB NOT NULL DEFAULT x'',
    updated_at   INTEGER NOT NULL
) STRICT;

CREATE TABLE settings (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) STRICT;
";

/// Version 2: the machine code of what the server said about a document, so an app shows the
/// right sentence for a rejection it received before a restart.
const MIGRATION_2: &str = "
ALTER TABLE doc_status ADD COLUMN code TEXT;
";

/// Names of the settings the store and the sync client use.
pub mod keys {
    /// The install's device UUID: random on first open, replaced by the server's at enrollment.
    pub const DEVICE_ID: &str = "device_id";
    /// Base URL of the doorstep server this install is enrolled with.
    pub const SERVER_URL: &str = "server_url";
    /// Bearer token issued at enrollment. It sits in the app's private storage, like the data.
    pub const DEVICE_TOKEN: &str = "device_token";
    /// The account (building head) this install works for.
    pub const ACCOUNT: &str = "account";
    /// The time of the newest notice (通知) the head has seen, in milliseconds.
    pub const NOTICES_SEEN: &str = "notices_seen_at";
}

// ---------------------------------------------------------------------------------------------
// Configuration.
// ---------------------------------------------------------------------------------------------

/// When a document's incremental chunks are folded into one snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compaction {
    /// Keep every increment; only the first save of a document writes a snapshot.
    Never,
    /// Write a fresh snapshot instead of another chunk when the chunks would outgrow the
    /// snapshot, or would number more than `max_chunks` (as automerge-repo does).
    Auto { max_chunks: u64 },
}

impl Default for Compaction {
    fn default() -> Self {
        Compaction::Auto { max_chunks: 64 }
    }
}

impl Compaction {
    /// True when adding `incoming` bytes to a document stored as `size` should write a snapshot.
    fn wants_snapshot(self, size: &StoredSize, incoming: u64) -> bool {
        match self {
            Compaction::Never => false,
            Compaction::Auto { max_chunks } => {
                size.snapshot_bytes == 0
                    || size.chunk_bytes + incoming > size.snapshot_bytes
                    || size.chunk_count + 1 > max_chunks
            }
        }
    }
}

/// How a store is opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreConfig {
    pub compaction: Compaction,
}

// ---------------------------------------------------------------------------------------------
// Records the store hands out.
// ---------------------------------------------------------------------------------------------

/// How much one document occupies in the store (blob bytes, without SQLite's page overhead).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoredSize {
    pub snapshot_bytes: u64,
    pub chunk_count: u64,
    pub chunk_bytes: u64,
}

impl StoredSize {
    pub fn total_bytes(&self) -> u64 {
        self.snapshot_bytes + self.chunk_bytes
    }
}

/// What one save wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// The store already held every change.
    Nothing,
    /// One incremental chunk of this many bytes.
    Chunk(usize),
    /// A full snapshot of this many bytes, replacing every chunk.
    Snapshot(usize),
}

/// The server's word on one document, from the last sync response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    Ok,
    /// A change was refused (tampered client, rules changed); the app shows `reason` and can
    /// reset the document to the server's state.
    Rejected,
    /// This device may not hold or write the document (e.g. it was reassigned).
    Forbidden,
    /// The document no longer exists on the server.
    Gone,
    /// The server needs a newer app; local changes are kept until the upgrade.
    UpgradeRequired,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Rejected => "rejected",
            Verdict::Forbidden => "forbidden",
            Verdict::Gone => "gone",
            Verdict::UpgradeRequired => "upgrade_required",
        }
    }

    fn parse(s: &str) -> Option<Verdict> {
        [
            Verdict::Ok,
            Verdict::Rejected,
            Verdict::Forbidden,
            Verdict::Gone,
            Verdict::UpgradeRequired,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// What the server last said about one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerStatus {
    pub verdict: Verdict,
    pub reason: Option<String>,
    /// The machine code of `reason` (absent from servers older than the codes).
    pub code: Option<String>,
    /// The server's heads for the document as of that response.
    pub server_heads: Vec<ChangeHash>,
    pub at: Millis,
}

/// Changes written inside a transaction that is not committed yet.
///
/// It holds the document mutably until [`StoreTx::commit`] (or [`commit`]) consumes it: only then
/// does the document learn that the store holds those heads. Dropping it instead (the transaction
/// rolled back, an error returned early) leaves the document believing nothing new is saved, so
/// its next save writes the same changes again, which is harmless.
#[must_use = "pass it to StoreTx::commit so the document learns what the store holds"]
#[derive(Debug)]
pub struct Pending<'d> {
    doc: &'d mut Document,
    heads: Vec<ChangeHash>,
    written: Written,
}

impl Pending<'_> {
    pub fn written(&self) -> Written {
        self.written
    }

    pub fn doc_id(&self) -> &DocId {
        self.doc.id()
    }
}

// ---------------------------------------------------------------------------------------------
// The store.
// ---------------------------------------------------------------------------------------------

/// The phone's store: the one writer connection to the install's SQLite file.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    config: StoreConfig,
    path: Option<PathBuf>,
}

/// One transaction on the store: every write of one user action goes through it.
///
/// It dereferences to the rusqlite [`Transaction`], so the free writer functions of this module
/// (`put_setting(&tx, ..)`, `put_sync_state(&tx, ..)`) take it directly. Dropping it rolls back.
#[derive(Debug)]
pub struct StoreTx<'s> {
    tx: Transaction<'s>,
    compaction: Compaction,
}

impl Store {
    /// Open (creating if needed) the store at `path` with the default configuration.
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        Store::open_with(path, StoreConfig::default())
    }

    /// Open (creating if needed) the store at `path`.
    ///
    /// Refuses, with a storage error naming the file, anything that is not a doorstep store and
    /// a store written by a newer version of doorstep.
    pub fn open_with(path: impl AsRef<Path>, config: StoreConfig) -> Result<Store> {
        let path = path.as_ref().to_path_buf();
        let conn = Connection::open(&path)?;
        Store::init(conn, config, Some(path), false)
    }

    /// Open (creating if needed) the store at `path`, encrypted with `key` (SQLCipher).
    ///
    /// A plain store written before encryption is encrypted in place first, keeping every
    /// record ([`crate::encryption::encrypt_in_place`]). A key that does not open the store is
    /// [`Error::WrongKey`] (`wrong_key`), and nothing on disk changes.
    pub fn open_encrypted(
        path: impl AsRef<Path>,
        key: &StoreKey,
        config: StoreConfig,
    ) -> Result<Store> {
        let path = path.as_ref().to_path_buf();
        if encryption::is_plain(&path)? {
            encryption::encrypt_in_place(&path, key)?;
        }
        let conn = Connection::open(&path)?;
        encryption::apply_key(&conn, key)?;
        let store = Store::init(conn, config, Some(path.clone()), true)?;
        // An encryption interrupted after its rename left the old plain copy: remove it now.
        encryption::remove_plain_leftover(&path)?;
        Ok(store)
    }

    /// A store that lives in memory only (tests, previews).
    pub fn open_in_memory() -> Result<Store> {
        Store::open_in_memory_with(StoreConfig::default())
    }

    pub fn open_in_memory_with(config: StoreConfig) -> Result<Store> {
        Store::init(Connection::open_in_memory()?, config, None, false)
    }

    fn init(
        mut conn: Connection,
        config: StoreConfig,
        path: Option<PathBuf>,
        keyed: bool,
    ) -> Result<Store> {
        let label = path
            .as_ref()
            .map_or_else(|| ":memory:".to_string(), |p| p.display().to_string());
        // The first read is where SQLite notices a file that is not a database at all.
        let app_id: i32 = conn
            .pragma_query_value(None, "application_id", |r| r.get(0))
            .map_err(|e| match e.sqlite_error_code() {
                // Under a key, an unreadable first page means the key does not fit (nothing
                // has been written: the store is as it was).
                Some(ffi::ErrorCode::NotADatabase) if keyed => Error::WrongKey,
                Some(ffi::ErrorCode::NotADatabase) => refuse(
                    ffi::SQLITE_NOTADB,
                    format!(
                        "{label} is not a doorstep store (or an encrypted one opened without its key): {e}"
                    ),
                ),
                _ => Error::Storage(e),
            })?;
        if app_id != APPLICATION_ID {
            let tables: i64 =
                conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))?;
            if app_id != 0 || tables != 0 {
                return Err(refuse(
                    ffi::SQLITE_NOTADB,
                    format!(
                        "{label} is not a doorstep store (a SQLite file of another application)"
                    ),
                ));
            }
        }
        // WAL lets the app read while the writer works; FULL makes a returned commit durable.
        let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        migrate(&mut conn, &label)?;
        let mut store = Store { conn, config, path };
        store.ensure_device_id()?;
        Ok(store)
    }

    /// A first open gets a random device id so documents can be written before enrollment.
    fn ensure_device_id(&mut self) -> Result<()> {
        if setting(&self.conn, keys::DEVICE_ID)?.is_some() {
            return Ok(());
        }
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT OR IGNORE INTO settings (key, value) VALUES (?1, ?2)",
            params![keys::DEVICE_ID, Uuid::new_v4().to_string()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The connection, for the reader functions of this module.
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    pub fn config(&self) -> StoreConfig {
        self.config
    }

    /// The file behind the store; `None` in memory.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Begin the transaction of one user action. It takes the write lock at once (`IMMEDIATE`)
    /// so it cannot fail half-way for a reader holding the file.
    pub fn transaction(&mut self) -> Result<StoreTx<'_>> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        Ok(StoreTx {
            tx,
            compaction: self.config.compaction,
        })
    }

    /// Persist the unsaved changes of `docs` as one action: one transaction, committed, and only
    /// then each document marked saved.
    pub fn save(&mut self, docs: &mut [&mut Document]) -> Result<()> {
        let tx = self.transaction()?;
        let mut saved = Vec::with_capacity(docs.len());
        for doc in docs.iter_mut() {
            saved.push(tx.save(doc)?);
        }
        tx.commit(saved)
    }

    /// See [`load_document`].
    pub fn load_document(&self, id: &DocId, device: &Uuid) -> Result<Option<Document>> {
        load_document(&self.conn, id, device)
    }

    /// See [`load_all`].
    pub fn load_all(&self, device: &Uuid) -> Result<Vec<Document>> {
        load_all(&self.conn, device)
    }

    /// See [`document_ids`].
    pub fn document_ids(&self) -> Result<Vec<DocId>> {
        document_ids(&self.conn)
    }

    /// See [`device_id`].
    pub fn device_id(&self) -> Result<Uuid> {
        device_id(&self.conn)
    }

    /// Copy the write-ahead log into the main file and truncate it (e.g. when the app goes to
    /// the background), so the file alone holds everything.
    pub fn checkpoint(&self) -> Result<()> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }
}

impl<'s> Deref for StoreTx<'s> {
    type Target = Transaction<'s>;

    fn deref(&self) -> &Transaction<'s> {
        &self.tx
    }
}

impl StoreTx<'_> {
    /// Write `doc`'s unsaved changes, as one chunk or, when the store's compaction policy says
    /// so, as a fresh snapshot replacing the chunks.
    pub fn save<'d>(&self, doc: &'d mut Document) -> Result<Pending<'d>> {
        persist(&self.tx, doc, self.compaction)
    }

    /// Replace everything stored for `doc` by one snapshot. See [`compact_document`].
    pub fn compact<'d>(&self, doc: &'d mut Document) -> Result<Pending<'d>> {
        compact_document(&self.tx, doc)
    }

    /// Commit, then mark each saved document. See [`commit`].
    pub fn commit<'d>(self, saved: impl IntoIterator<Item = Pending<'d>>) -> Result<()> {
        commit(self.tx, saved)
    }

    /// Abandon every write of this transaction (dropping it does the same).
    pub fn rollback(self) -> Result<()> {
        self.tx.rollback()?;
        Ok(())
    }
}

/// A storage error with SQLite's `code` and our own message, so the app still classifies it as
/// storage while the message says what is wrong with which file.
fn refuse(code: std::os::raw::c_int, message: String) -> Error {
    Error::Storage(rusqlite::Error::SqliteFailure(
        ffi::Error::new(code),
        Some(message),
    ))
}

/// Bring the schema up to [`STORE_VERSION`], all or nothing. A store already at that version is
/// only read, so an ordinary open costs no write and no fsync.
fn migrate(conn: &mut Connection, label: &str) -> Result<()> {
    let newer = |version: i64| {
        refuse(
            ffi::SQLITE_CANTOPEN,
            format!(
                "{label} was written by a newer doorstep (store version {version}, this app reads up \
                 to {STORE_VERSION}); update the app"
            ),
        )
    };
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > STORE_VERSION {
        return Err(newer(version));
    }
    if version == STORE_VERSION {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Read again under the write lock: another connection may have migrated meanwhile.
    let version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > STORE_VERSION {
        return Err(newer(version));
    }
    for (done, sql) in MIGRATIONS.iter().enumerate() {
        let reached = done as i64 + 1;
        if reached > version {
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", reached)?;
        }
    }
    tx.pragma_update(None, "application_id", APPLICATION_ID)?;
    tx.commit()?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Writers: each takes the caller's transaction.
// ---------------------------------------------------------------------------------------------

/// Append `doc`'s unsaved changes (`Document::unsaved`) as one chunk, never compacting.
///
/// The first save of a document (or the first after [`delete_document`]) writes a full snapshot
/// instead: a handle's increments only make sense on top of what it saved before.
pub fn save_document<'d>(tx: &Transaction<'_>, doc: &'d mut Document) -> Result<Pending<'d>> {
    persist(tx, doc, Compaction::Never)
}

/// Replace everything stored for `doc` by one `save()` snapshot. The snapshot holds the whole
/// in-memory document, so it also saves any unsaved change.
pub fn compact_document<'d>(tx: &Transaction<'_>, doc: &'d mut Document) -> Result<Pending<'d>> {
    let heads = doc.heads();
    if heads.is_empty() {
        return Ok(Pending {
            doc,
            heads,
            written: Written::Nothing,
        });
    }
    let bytes = doc.snapshot();
    write_snapshot(tx, &doc.id().to_string(), &bytes, &heads)?;
    Ok(Pending {
        doc,
        heads,
        written: Written::Snapshot(bytes.len()),
    })
}

/// Commit `tx`, then tell each saved document which heads the store now holds.
pub fn commit<'d>(tx: Transaction<'_>, saved: impl IntoIterator<Item = Pending<'d>>) -> Result<()> {
    let saved: Vec<Pending<'d>> = saved.into_iter().collect();
    tx.commit()?;
    for pending in saved {
        pending.doc.mark_saved(pending.heads);
    }
    Ok(())
}

fn persist<'d>(
    tx: &Transaction<'_>,
    doc: &'d mut Document,
    compaction: Compaction,
) -> Result<Pending<'d>> {
    let id = doc.id().to_string();
    let Some(size) = stored_size_of(tx, &id)? else {
        return compact_document(tx, doc);
    };
    let (bytes, heads) = doc.unsaved();
    if bytes.is_empty() {
        return Ok(Pending {
            doc,
            heads,
            written: Written::Nothing,
        });
    }
    if compaction.wants_snapshot(&size, bytes.len() as u64) {
        return compact_document(tx, doc);
    }
    tx.execute(
        "INSERT INTO doc_chunks (doc_id, seq, bytes)
         VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM doc_chunks WHERE doc_id = ?1), ?2)",
        params![id, bytes],
    )?;
    tx.execute(
        "UPDATE documents SET heads = ?2, updated_at = ?3 WHERE doc_id = ?1",
        params![id, encode_heads(&heads), now_millis()],
    )?;
    Ok(Pending {
        doc,
        heads,
        written: Written::Chunk(bytes.len()),
    })
}

fn write_snapshot(
    tx: &Transaction<'_>,
    id: &str,
    bytes: &[u8],
    heads: &[ChangeHash],
) -> Result<()> {
    let heads = encode_heads(heads);
    tx.execute(
        "INSERT INTO documents (doc_id, snapshot, snapshot_heads, snapshot_len, heads, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?3, ?5)
         ON CONFLICT (doc_id) DO UPDATE SET
             snapshot = excluded.snapshot,
             snapshot_heads = excluded.snapshot_heads,
             snapshot_len = excluded.snapshot_len,
             heads = excluded.heads,
             updated_at = excluded.updated_at",
        params![id, bytes, heads, bytes.len() as i64, now_millis()],
    )?;
    tx.execute("DELETE FROM doc_chunks WHERE doc_id = ?1", params![id])?;
    Ok(())
}

/// Forget a document entirely: its bytes, sync states and server status. Used to reset a
/// document to the server's state; the in-memory handle must be dropped too (a later save of it
/// would store it whole again). Returns whether the document was held.
pub fn delete_document(tx: &Transaction<'_>, id: &DocId) -> Result<bool> {
    let id = id.to_string();
    tx.execute("DELETE FROM doc_status WHERE doc_id = ?1", params![id])?;
    let deleted = tx.execute("DELETE FROM documents WHERE doc_id = ?1", params![id])?;
    Ok(deleted > 0)
}

/// Store the encoded `automerge::sync::State` for (`id`, `peer`). The document must be held.
pub fn put_sync_state(tx: &Transaction<'_>, id: &DocId, peer: &str, state: &[u8]) -> Result<()> {
    let id = id.to_string();
    if stored_size_of(tx, &id)?.is_none() {
        return Err(Error::NotFound(format!(
            "document {id} is not in the store; save it before its sync state"
        )));
    }
    tx.execute(
        "INSERT INTO sync_states (doc_id, peer, state) VALUES (?1, ?2, ?3)
         ON CONFLICT (doc_id, peer) DO UPDATE SET state = excluded.state",
        params![id, peer, state],
    )?;
    Ok(())
}

pub fn put_setting(tx: &Transaction<'_>, key: &str, value: &str) -> Result<()> {
    tx.execute(
        "INSERT INTO settings (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}

pub fn delete_setting(tx: &Transaction<'_>, key: &str) -> Result<()> {
    tx.execute("DELETE FROM settings WHERE key = ?1", params![key])?;
    Ok(())
}

/// Replace the install's device id (enrollment hands out the server's). Documents opened before
/// need `Document::set_device` to write under it.
pub fn set_device_id(tx: &Transaction<'_>, device: &Uuid) -> Result<()> {
    put_setting(tx, keys::DEVICE_ID, &device.to_string())
}

/// Record what the server said about document `id`.
pub fn put_server_status(tx: &Transaction<'_>, id: &DocId, status: &ServerStatus) -> Result<()> {
    tx.execute(
        "INSERT INTO doc_status (doc_id, verdict, reason, server_heads, updated_at, code)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (doc_id) DO UPDATE SET
             verdict = excluded.verdict,
             reason = excluded.reason,
             code = excluded.code,
             server_heads = excluded.server_heads,
             updated_at = excluded.updated_at",
        params![
            id.to_string(),
            status.verdict.as_str(),
            status.reason,
            encode_heads(&status.server_heads),
            status.at,
            status.code
        ],
    )?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Readers: each takes a connection (a transaction dereferences to one).
// ---------------------------------------------------------------------------------------------

/// Load document `id` strictly, with a fresh actor for `device`; `None` when it is not held.
///
/// Snapshot and chunks are loaded as one byte string with `OnPartialLoad::Error`, and every head
/// the store recorded must be present without missing dependencies. So a flipped byte, a lost
/// chunk or a lost tail is `Error::Corrupt` naming the document, never a quietly older document.
pub fn load_document(conn: &Connection, id: &DocId, device: &Uuid) -> Result<Option<Document>> {
    let key = id.to_string();
    let row: Option<(Option<Vec<u8>>, Vec<u8>)> = conn
        .query_row(
            "SELECT snapshot, heads FROM documents WHERE doc_id = ?1",
            params![key],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((snapshot, heads)) = row else {
        return Ok(None);
    };
    let mut bytes = snapshot.unwrap_or_default();
    let mut stmt =
        conn.prepare_cached("SELECT bytes FROM doc_chunks WHERE doc_id = ?1 ORDER BY seq")?;
    let mut rows = stmt.query(params![key])?;
    while let Some(row) = rows.next()? {
        let chunk = row
            .get_ref(0)?
            .as_blob()
            .map_err(|e| Error::Corrupt(format!("{id}: a chunk is not bytes: {e}")))?;
        bytes.extend_from_slice(chunk);
    }
    let expected = decode_heads(&heads)
        .ok_or_else(|| Error::Corrupt(format!("{id}: stored heads are malformed")))?;
    let mut doc = Document::load(id.clone(), &bytes, device)?;
    let missing = doc.automerge().get_missing_deps(&expected);
    if !missing.is_empty() {
        return Err(Error::Corrupt(format!(
            "{id}: {} change(s) the store recorded are missing (lost chunk or truncated data)",
            missing.len()
        )));
    }
    Ok(Some(doc))
}

/// The heads the store holds for document `id` (sorted), or `None` when it is not held. Cheap:
/// no document is loaded.
pub fn stored_heads(conn: &Connection, id: &DocId) -> Result<Option<Vec<ChangeHash>>> {
    let heads: Option<Vec<u8>> = conn
        .query_row(
            "SELECT heads FROM documents WHERE doc_id = ?1",
            params![id.to_string()],
            |r| r.get(0),
        )
        .optional()?;
    heads
        .map(|h| {
            decode_heads(&h)
                .ok_or_else(|| Error::Corrupt(format!("{id}: stored heads are malformed")))
        })
        .transpose()
}

/// Load every held document strictly, in id order. The first corrupt one fails the call with an
/// error naming it; [`document_ids`] and [`load_document`] let an app load the others and
/// reset that one.
pub fn load_all(conn: &Connection, device: &Uuid) -> Result<Vec<Document>> {
    let mut docs = Vec::new();
    for id in document_ids(conn)? {
        if let Some(doc) = load_document(conn, &id, device)? {
            docs.push(doc);
        }
    }
    Ok(docs)
}

/// The ids of every held document, in order.
pub fn document_ids(conn: &Connection) -> Result<Vec<DocId>> {
    let mut stmt = conn.prepare_cached("SELECT doc_id FROM documents ORDER BY doc_id")?;
    let ids = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    ids.iter().map(|s| parse_doc_id(s)).collect()
}

/// How much document `id` occupies; `None` when it is not held.
pub fn stored_size(conn: &Connection, id: &DocId) -> Result<Option<StoredSize>> {
    stored_size_of(conn, &id.to_string())
}

fn stored_size_of(conn: &Connection, id: &str) -> Result<Option<StoredSize>> {
    let size = conn
        .query_row(
            "SELECT d.snapshot_len, COUNT(c.seq), COALESCE(SUM(LENGTH(c.bytes)), 0)
             FROM documents d LEFT JOIN doc_chunks c ON c.doc_id = d.doc_id
             WHERE d.doc_id = ?1 GROUP BY d.doc_id",
            params![id],
            |r| {
                Ok(StoredSize {
                    snapshot_bytes: u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
                    chunk_count: u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                    chunk_bytes: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                })
            },
        )
        .optional()?;
    Ok(size)
}

/// The encoded sync state for (`id`, `peer`), if one was stored.
pub fn sync_state(conn: &Connection, id: &DocId, peer: &str) -> Result<Option<Vec<u8>>> {
    let state = conn
        .query_row(
            "SELECT state FROM sync_states WHERE doc_id = ?1 AND peer = ?2",
            params![id.to_string(), peer],
            |r| r.get(0),
        )
        .optional()?;
    Ok(state)
}

pub fn setting(conn: &Connection, key: &str) -> Result<Option<String>> {
    let value = conn
        .query_row(
            "SELECT value FROM settings WHERE key = ?1",
            params![key],
            |r| r.get(0),
        )
        .optional()?;
    Ok(value)
}

/// The install's device id (created at the first open).
pub fn device_id(conn: &Connection) -> Result<Uuid> {
    let value = setting(conn, keys::DEVICE_ID)?
        .ok_or_else(|| Error::NotFound("the store has no device id".to_string()))?;
    Uuid::parse_str(&value)
        .map_err(|e| Error::Corrupt(format!("settings: device id {value:?} is not a UUID: {e}")))
}

/// What the server last said about document `id`, if anything.
pub fn server_status(conn: &Connection, id: &DocId) -> Result<Option<ServerStatus>> {
    type Row = (String, Option<String>, Vec<u8>, i64, Option<String>);
    let row: Option<Row> = conn
        .query_row(
            "SELECT verdict, reason, server_heads, updated_at, code FROM doc_status
             WHERE doc_id = ?1",
            params![id.to_string()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .optional()?;
    let Some((verdict, reason, heads, at, code)) = row else {
        return Ok(None);
    };
    let verdict = Verdict::parse(&verdict)
        .ok_or_else(|| Error::Corrupt(format!("{id}: unknown server verdict {verdict:?}")))?;
    let server_heads = decode_heads(&heads)
        .ok_or_else(|| Error::Corrupt(format!("{id}: stored server heads are malformed")))?;
    Ok(Some(ServerStatus {
        verdict,
        reason,
        code,
        server_heads,
        at,
    }))
}

/// The outbox: held documents whose heads differ from the heads the server last reported (or
/// that the server has never reported), i.e. those the next sync must include.
pub fn unsynced_documents(conn: &Connection) -> Result<Vec<DocId>> {
    let mut stmt = conn.prepare_cached(
        "SELECT d.doc_id FROM documents d LEFT JOIN doc_status s ON s.doc_id = d.doc_id
         WHERE s.doc_id IS NULL OR s.server_heads != d.heads
         ORDER BY d.doc_id",
    )?;
    let ids = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    ids.iter().map(|s| parse_doc_id(s)).collect()
}

fn parse_doc_id(s: &str) -> Result<DocId> {
    s.parse()
        .map_err(|_| Error::Corrupt(format!("the store lists an invalid document id {s:?}")))
}

// ---------------------------------------------------------------------------------------------
// Heads as bytes: sorted 32-byte hashes, concatenated, so equal sets compare equal in SQL.
// ---------------------------------------------------------------------------------------------

fn encode_heads(heads: &[ChangeHash]) -> Vec<u8> {
    let mut sorted = heads.to_vec();
    sorted.sort();
    sorted.iter().flat_map(|h| h.0).collect()
}

fn decode_heads(bytes: &[u8]) -> Option<Vec<ChangeHash>> {
    if !bytes.len().is_multiple_of(32) {
        return None;
    }
    bytes
        .chunks_exact(32)
        .map(|c| ChangeHash::try_from(c).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_round_trip_sorted() {
        let a = ChangeHash([7; 32]);
        let b = ChangeHash([1; 32]);
        let bytes = encode_heads(&[a, b]);
        assert_eq!(bytes, encode_heads(&[b, a]));
        assert_eq!(decode_heads(&bytes), Some(vec![b, a]));
        assert_eq!(decode_heads(&[]), Some(vec![]));
        assert_eq!(decode_heads(&[0; 31]), None);
    }

    #[test]
    fn verdicts_round_trip() {
        for v in [
            Verdict::Ok,
            Verdict::Rejected,
            Verdict::Forbidden,
            Verdict::Gone,
            Verdict::UpgradeRequired,
        ] {
            assert_eq!(Verdict::parse(v.as_str()), Some(v));
        }
        assert_eq!(Verdict::parse("maybe"), None);
    }

    #[test]
    fn compaction_policy() {
        let auto = Compaction::Auto { max_chunks: 3 };
        let size = |snapshot_bytes, chunk_count, chunk_bytes| StoredSize {
            snapshot_bytes,
            chunk_count,
            chunk_bytes,
        };
        // No snapshot yet: the first bytes become one.
        assert!(auto.wants_snapshot(&size(0, 0, 0), 10));
        // Chunks still smaller than the snapshot: append.
        assert!(!auto.wants_snapshot(&size(1000, 1, 200), 300));
        // Chunks would outgrow the snapshot.
        assert!(auto.wants_snapshot(&size(1000, 2, 900), 200));
        // Too many chunks.
        assert!(auto.wants_snapshot(&size(1000, 3, 30), 10));
        assert!(!Compaction::Never.wants_snapshot(&size(0, 100, 10_000), 10));
    }

    #[test]
    fn fresh_store_is_at_the_latest_version_with_durable_pragmas() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::Invalid(e.to_string()))?;
        let store = Store::open(dir.path().join("phone.db"))?;
        let conn = store.conn();
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let app: i32 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
        let mode: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0))?;
        let sync: i64 = conn.pragma_query_value(None, "synchronous", |r| r.get(0))?;
        let fks: i64 = conn.pragma_query_value(None, "foreign_keys", |r| r.get(0))?;
        assert_eq!(version, STORE_VERSION);
        assert_eq!(app, APPLICATION_ID);
        assert_eq!(mode, "wal");
        assert_eq!(sync, 2, "synchronous must be FULL");
        assert_eq!(fks, 1);
        Ok(())
    }

    #[test]
    fn migrations_are_idempotent_across_reopen() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::Invalid(e.to_string()))?;
        let path = dir.path().join("phone.db");
        let first = Store::open(&path)?.device_id()?;
        let second = Store::open(&path)?.device_id()?;
        assert_eq!(first, second, "the device id is created once");
        Ok(())
    }

    #[test]
    fn schema_is_stable() -> Result<()> {
        let store = Store::open_in_memory()?;
        let mut stmt = store
            .conn()
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")?;
        let names = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        insta::assert_snapshot!(names.join(" "), @"doc_chunks doc_status documents settings sync_states");
        Ok(())
    }
}
