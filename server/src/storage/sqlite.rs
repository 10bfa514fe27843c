//! The SQLite backend of [`Storage`]: WAL, exactly one writer connection, a small pool of
//! readers.
//!
//! The writer sits behind a mutex and is only used from blocking threads; every write is one
//! `BEGIN IMMEDIATE` transaction. Readers see the last committed state (WAL snapshots), so
//! dashboards and manifests never wait for a sync in progress. Migrations are keyed on
//! `PRAGMA user_version`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior};
use uuid::Uuid;

use doorstep_core::clock::Clock;
use doorstep_core::model::Millis;

use super::sql::{Lite, Sql};
use super::*;

/// How many idle reader connections are kept open.
const MAX_IDLE_READERS: usize = 8;

/// The schema, one entry per version; index `i` upgrades from `user_version = i`.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE server_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE accounts (
    id            TEXT PRIMARY KEY,
    login         TEXT NOT NULL UNIQUE,
    display_name  TEXT NOT NULL,
    roles         TEXT NOT NULL,
    password_hash TEXT,
    created_at    INTEGER NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE assignments (
    account_id TEXT NOT NULL REFERENCES accounts(id),
    community  TEXT NOT NULL,
    building   TEXT NOT NULL,
    PRIMARY KEY (account_id, community, building)
);
CREATE INDEX assignments_building ON assignments(community, building);

CREATE TABLE sessions (
    token_hash BLOB PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);

CREATE TABLE enrollment_codes (
    code_hash  BLOB PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER,
    device_id  TEXT
);

CREATE TABLE devices (
    id              TEXT PRIMARY KEY,
    account_id      TEXT NOT NULL REFERENCES accounts(id),
    label           TEXT NOT NULL,
    token_hash      BLOB NOT NULL UNIQUE,
    enrolled_at     INTEGER NOT NULL,
    revoked_at      INTEGER,
    last_sync_at    INTEGER,
    app_version     TEXT NOT NULL DEFAULT '',
    pending         INTEGER NOT NULL DEFAULT 0,
    rejected        INTEGER NOT NULL DEFAULT 0,
    syncs           INTEGER NOT NULL DEFAULT 0,
    bytes_up        INTEGER NOT NULL DEFAULT 0,
    bytes_down      INTEGER NOT NULL DEFAULT 0,
    manifest_digest BLOB
);

CREATE TABLE documents (
    id             TEXT PRIMARY KEY,
    kind           TEXT NOT NULL,
    community      TEXT NOT NULL,
    building       TEXT,
    campaign       TEXT,
    heads          BLOB NOT NULL,
    snapshot       BLOB NOT NULL,
    snapshot_bytes INTEGER NOT NULL,
    chunk_bytes    INTEGER NOT NULL DEFAULT 0,
    chunks         INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
CREATE INDEX documents_place ON documents(kind, community, building);
CREATE INDEX documents_campaign ON documents(campaign);

CREATE TABLE document_chunks (
    doc_id TEXT NOT NULL REFERENCES documents(id),
    seq    INTEGER NOT NULL,
    bytes  BLOB NOT NULL,
    PRIMARY KEY (doc_id, seq)
);

CREATE TABLE sync_states (
    device_id TEXT NOT NULL,
    doc_id    TEXT NOT NULL,
    state     BLOB,
    announced BLOB,
    PRIMARY KEY (device_id, doc_id)
);

CREATE TABLE quarantine (
    id          INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    device_id   TEXT NOT NULL,
    account_id  TEXT NOT NULL,
    doc_id      TEXT NOT NULL,
    reason      TEXT NOT NULL,
    payload     BLOB NOT NULL,
    payload_sha BLOB NOT NULL,
    UNIQUE (device_id, doc_id, payload_sha)
);

CREATE TABLE audit_log (
    seq       INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,
    actor     TEXT NOT NULL,
    kind      TEXT NOT NULL,
    subject   TEXT NOT NULL,
    detail    TEXT NOT NULL,
    prev_hash BLOB NOT NULL,
    hash      BLOB NOT NULL
);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"#,
    r#"
-- Held work: a quarantined payload's machine code, and an admin's acceptance of work recorded
-- offline that could not be delivered (a reassignment, a re-enrollment).
ALTER TABLE quarantine ADD COLUMN code TEXT;
ALTER TABLE quarantine ADD COLUMN accepted_at INTEGER;
ALTER TABLE quarantine ADD COLUMN accepted_by TEXT;
"#,
    r#"
-- Bounded quarantine: a refused payload that is only evidence keeps a sample (`size` is its
-- whole length); each device has a budget of stored bytes, and is stopped once over it.
ALTER TABLE quarantine ADD COLUMN size INTEGER;
ALTER TABLE devices ADD COLUMN quarantined_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN quarantine_full_at INTEGER;
"#,
    r#"
-- Tenancy: the communities an account's roles apply in, as a JSON list (["*"]: all). Accounts
-- from before had global roles, so they keep every community.
ALTER TABLE accounts ADD COLUMN communities TEXT NOT NULL DEFAULT '["*"]';
"#,
    r#"
-- Roles per community: `grants` maps each community id (or "*", every community) to the roles
-- held there. Before, one role list applied in each of `communities`, so each of those
-- communities gets that list.
ALTER TABLE accounts ADD COLUMN grants TEXT NOT NULL DEFAULT '{}';
UPDATE accounts SET grants = (
    SELECT json_group_object(c.value, json(accounts.roles)) FROM json_each(accounts.communities) c);
ALTER TABLE accounts DROP COLUMN roles;
ALTER TABLE accounts DROP COLUMN communities;
"#,
    r#"
-- Throttling of failed logins and enrollment codes lives in the database, so every server
-- process sees the same counts. Keys are hashes (no login or address is stored).
CREATE TABLE throttle (
    key          TEXT PRIMARY KEY,
    failures     INTEGER NOT NULL,
    last_failure INTEGER NOT NULL,
    locked_until INTEGER NOT NULL
);
CREATE INDEX throttle_last_failure ON throttle(last_failure);
"#,
];

/// The SQLite storage: one file, one writer, several readers.
pub struct SqliteStorage {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    /// Every write is fsynced before it returns, concurrent writes sharing one fsync.
    group: GroupSync,
    server_device: Uuid,
    /// Where every time the server stamps comes from (tests set it by hand).
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for SqliteStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStorage")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn poisoned<T>(_: T) -> StorageError {
    StorageError::Unavailable("a database lock was poisoned".into())
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    // Every statement of a sync's commit (documents, projections, sync rows, quarantine,
    // audit) stays prepared: the default cache of 16 evicted some on every commit, and
    // parsing them again was ~5 % of the server's time in the storm benchmark.
    conn.set_prepared_statement_cache_capacity(256);
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(())
}

impl SqliteStorage {
    /// The same storage stamping times from `clock`.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> SqliteStorage {
        self.clock = clock;
        self
    }

    /// Open (creating if missing) the database at `path`, migrate it, and make sure the
    /// server has a device id.
    pub fn open(path: impl AsRef<Path>) -> StorageResult<SqliteStorage> {
        let path = path.as_ref().to_path_buf();
        let mut writer = Connection::open(&path)?;
        let mode: String =
            writer.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StorageError::Invalid(format!(
                "the database refuses WAL mode (got {mode})"
            )));
        }
        configure(&writer)?;
        let stale_projections = migrate(&mut writer)?;
        let server_device = {
            let tx = writer.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let existing: Option<String> = tx
                .query_row(
                    "SELECT value FROM server_meta WHERE key = 'server_device'",
                    [],
                    |r| r.get(0),
                )
                .optional()?;
            let id = match existing {
                Some(text) => Uuid::parse_str(&text)
                    .map_err(|_| StorageError::Corrupt("server_device is not a UUID".into()))?,
                None => {
                    let id = Uuid::new_v4();
                    tx.execute(
                        "INSERT INTO server_meta (key, value) VALUES ('server_device', ?1)",
                        [id.to_string()],
                    )?;
                    id
                }
            };
            tx.commit()?;
            id
        };
        let storage = SqliteStorage {
            path: path.clone(),
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
            group: GroupSync::new(&path),
            server_device,
            clock: doorstep_core::clock::system(),
        };
        if stale_projections {
            // Made by another projection version (or before versions were recorded): derived
            // data, so it is derived again rather than left short of a table or column.
            Backend::rebuild_projections(&storage)?;
        }
        Ok(storage)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Run `f` on a reader connection (a snapshot of the last commit).
    pub fn read<T>(&self, f: impl FnOnce(&Connection) -> StorageResult<T>) -> StorageResult<T> {
        let conn = self.readers.lock().map_err(poisoned)?.pop();
        let conn = match conn {
            Some(conn) => conn,
            None => {
                let conn = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                configure(&conn)?;
                conn
            }
        };
        let result = f(&conn);
        let mut idle = self.readers.lock().map_err(poisoned)?;
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        }
        result
    }

    /// Run `f` inside one immediate transaction on the single writer connection; commit when it
    /// returns `Ok`, roll back otherwise. Returns once the commit is on disk (group commit: see
    /// [`GroupSync`]); an fsync that fails is `Unavailable` — the write may or may not survive a
    /// power loss, so it is not acknowledged, and a retry is safe.
    pub fn write<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> StorageResult<T>,
    ) -> StorageResult<T> {
        let commit = {
            let mut conn = self.writer.lock().map_err(poisoned)?;
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let value = f(&tx)?;
            tx.commit()?;
            (value, self.group.committed())
        };
        let (value, n) = commit;
        self.group.wait(n).map_err(|e| {
            StorageError::Unavailable(format!("the database's log could not be synced: {e}"))
        })?;
        Ok(value)
    }
}

/// Bring the schema up to date; true when the projections must be rebuilt.
fn migrate(conn: &mut Connection) -> StorageResult<bool> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let version = usize::try_from(version)
        .map_err(|_| StorageError::Corrupt("negative schema version".into()))?;
    if version > MIGRATIONS.len() {
        return Err(StorageError::Invalid(format!(
            "the database has schema {version}, newer than this server ({})",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
    }
    let stale = crate::projections::migrate(&mut crate::storage::sql::Lite(&tx))
        .map_err(|e| StorageError::Projection(e.to_string()))?;
    tx.commit()?;
    Ok(stale)
}

impl SqlBackend for SqliteStorage {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    /// Checkpoint the WAL into the main file (on shutdown, so the file is self-contained).
    fn checkpoint(&self) -> StorageResult<()> {
        let conn = self.writer.lock().map_err(poisoned)?;
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
        Ok(())
    }
    fn write_sql<T>(&self, f: impl FnOnce(&mut dyn Sql) -> StorageResult<T>) -> StorageResult<T> {
        self.write(|tx| f(&mut Lite(tx)))
    }

    fn clock_now(&self) -> Millis {
        self.clock.now()
    }

    fn own_device(&self) -> Uuid {
        self.server_device
    }

    fn durability_stats(&self) -> DurabilityStats {
        self.group.stats()
    }
}
