//! What a SQL database must lend for the server to keep everything in it: a connection for
//! reads ([`SqlRead`]), one transaction for writes, the clock and the server's id. Given those,
//! [`Storage`] is the same code on SQLite and on PostgreSQL: the statements live in the
//! aggregates ([`documents`], [`directory`], [`audit`]) and run through [`Sql`].

use uuid::Uuid;

use doorstep_core::doc::DocId;
use doorstep_core::model::Millis;

use super::sql::Sql;
use super::*;

/// A SQL database the server can keep everything in.
pub trait SqlBackend: SqlRead + std::fmt::Debug + 'static {
    /// `sqlite` or `postgres`, for logs and `/healthz`.
    fn name(&self) -> &'static str;
    /// Run `f` inside one write transaction; commit when it returns `Ok` (and return once the
    /// commit is durable), roll back otherwise.
    fn write_sql<T>(&self, f: impl FnOnce(&mut dyn Sql) -> StorageResult<T>) -> StorageResult<T>;
    /// The time every stamp comes from.
    fn clock_now(&self) -> Millis;
    /// The server's own device id.
    fn own_device(&self) -> Uuid;
    /// Commits and syncs to disk so far.
    fn durability_stats(&self) -> DurabilityStats;
    /// Fold the write-ahead log into the database file (SQLite, on shutdown); nothing to do
    /// elsewhere.
    fn checkpoint(&self) -> StorageResult<()> {
        Ok(())
    }
    /// Inside a commit's transaction: tell the other server processes what it changed, once it
    /// commits (PostgreSQL's NOTIFY). Nothing to do where one process holds the database.
    fn announce(&self, _db: &mut dyn Sql, _batch: &Batch<'_>) -> StorageResult<()> {
        Ok(())
    }
    /// Put audit events staged by commits on the chain now (PostgreSQL chains them after the
    /// commit; SQLite at once), so a read of the log sees every committed event.
    fn settle_audit(&self) -> StorageResult<()> {
        Ok(())
    }
    /// Hear what other server processes commit (see [`Backend::watch`]).
    fn watch(&self, _sink: Sink) {}
}

/// A change another server process committed to the shared database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remote {
    /// A document was written (`source`: `sync` from a phone, `server` from the dashboard).
    Document { id: DocId, source: &'static str },
    /// A device synced (its bookkeeping changed).
    Device(Uuid),
    /// Changes may have been missed (the listening connection was lost and is back): every
    /// document held in memory is loaded again before its next use.
    Missed,
}

/// Where remote changes go: called with each one, and with `None` now and then while nothing
/// happens; returning false stops the watch (the server state it fed is gone).
pub type Sink = Box<dyn Fn(Option<Remote>) -> bool + Send>;

/// Everything the server asks of its database, as one object: the seam ([`Storage`]), the
/// dashboard's reads ([`Views`]), and the operator's maintenance. The server holds it as
/// `dyn Backend`, so SQLite and PostgreSQL are chosen when it starts.
pub trait Backend: Storage + Views + std::fmt::Debug {
    /// `sqlite` or `postgres`.
    fn name(&self) -> &'static str;
    /// Empty every projection table and derive it again from the stored documents, in one
    /// transaction; how many documents were projected.
    fn rebuild_projections(&self) -> StorageResult<usize>;
    /// See [`SqlBackend::checkpoint`].
    fn checkpoint(&self) -> StorageResult<()>;
    /// Every projection row, by table, as text (tests compare them with a rebuild's).
    fn projection_rows(
        &self,
    ) -> StorageResult<std::collections::BTreeMap<String, Vec<Vec<String>>>>;
    /// Run queries on one consistent snapshot (operator tools: copying a database).
    fn read_raw(&self, f: &mut dyn FnMut(&mut dyn Sql) -> StorageResult<()>) -> StorageResult<()>;
    /// Hear the changes other server processes commit to the same database, for the
    /// document cache and the dashboard's live feed; on a database only this process uses,
    /// there are none.
    fn watch(&self, sink: Sink);
    /// Run statements in one write transaction (operator tools and tests that must reach
    /// under the seam, e.g. to plant a row an old release could have stored).
    fn write_raw(&self, f: &mut dyn FnMut(&mut dyn Sql) -> StorageResult<()>) -> StorageResult<()>;
}

impl<B: SqlBackend> Backend for B {
    fn name(&self) -> &'static str {
        SqlBackend::name(self)
    }

    fn rebuild_projections(&self) -> StorageResult<usize> {
        let now = self.clock_now();
        self.write_sql(|db| documents::rebuild_projections(db, now))
    }

    fn checkpoint(&self) -> StorageResult<()> {
        SqlBackend::checkpoint(self)
    }

    fn projection_rows(
        &self,
    ) -> StorageResult<std::collections::BTreeMap<String, Vec<Vec<String>>>> {
        self.snapshot_sql(|db| {
            crate::projections::dump(db).map_err(|e| StorageError::Projection(e.to_string()))
        })
    }

    fn watch(&self, sink: Sink) {
        SqlBackend::watch(self, sink)
    }

    fn read_raw(&self, f: &mut dyn FnMut(&mut dyn Sql) -> StorageResult<()>) -> StorageResult<()> {
        self.snapshot_sql(f)
    }

    fn write_raw(&self, f: &mut dyn FnMut(&mut dyn Sql) -> StorageResult<()>) -> StorageResult<()> {
        self.write_sql(f)
    }
}

impl<B: SqlBackend> DocumentStore for B {
    fn server_device(&self) -> Uuid {
        self.own_device()
    }

    fn now(&self) -> Millis {
        self.clock_now()
    }

    fn load_document(&self, id: &DocId) -> StorageResult<Option<StoredDoc>> {
        // One snapshot: the document's row and its chunks agree.
        self.snapshot_sql(|db| documents::load_document(db, id))
    }

    fn document_meta(&self, id: &DocId) -> StorageResult<Option<DocMeta>> {
        self.read_sql(|db| documents::document_meta(db, id))
    }

    fn documents(&self) -> StorageResult<Vec<DocMeta>> {
        self.read_sql(documents::documents)
    }

    fn account_documents(&self, account_id: &str) -> StorageResult<Vec<DocMeta>> {
        self.read_sql(|db| documents::account_documents(db, account_id))
    }

    fn commit(&self, batch: &Batch<'_>) -> StorageResult<CommitReport> {
        let now = self.clock_now();
        self.write_sql(|db| {
            // Announced first: the audit chain's lock, taken at the end of the commit, is held
            // for as few statements as possible.
            self.announce(db, batch)?;
            documents::commit(db, batch, now)
        })
    }

    fn durability(&self) -> DurabilityStats {
        self.durability_stats()
    }

    fn ping(&self) -> StorageResult<()> {
        self.read_sql(|db| {
            db.query_one("SELECT 1", &[])
                .map(|_| ())
                .map_err(Into::into)
        })
    }

    fn sync_rows(&self, device: &Uuid) -> StorageResult<Vec<SyncRow>> {
        self.read_sql(|db| documents::sync_rows(db, device))
    }
}

impl<B: SqlBackend> Directory for B {
    fn create_account(&self, new: &NewAccount, actor: &str) -> StorageResult<Account> {
        let now = self.clock_now();
        self.write_sql(|db| directory::create_account(db, new, actor, now))
    }

    fn account(&self, id: &str) -> StorageResult<Option<Account>> {
        self.read_sql(|db| directory::account(db, id))
    }

    fn account_by_login(&self, login: &str) -> StorageResult<Option<Account>> {
        self.read_sql(|db| directory::account_by_login(db, login))
    }

    fn accounts(&self) -> StorageResult<Vec<Account>> {
        self.read_sql(directory::accounts)
    }

    fn update_account(
        &self,
        id: &str,
        grants: &Grants,
        disabled: bool,
        actor: &str,
    ) -> StorageResult<Account> {
        let now = self.clock_now();
        self.write_sql(|db| directory::update_account(db, id, grants, disabled, actor, now))
    }

    fn set_password(&self, id: &str, password_hash: &str, actor: &str) -> StorageResult<()> {
        let now = self.clock_now();
        self.write_sql(|db| directory::set_password(db, id, password_hash, actor, now))
    }

    fn assign(&self, assignment: &Assignment, actor: &str) -> StorageResult<()> {
        let now = self.clock_now();
        self.write_sql(|db| directory::assign(db, assignment, actor, now))
    }

    fn unassign(&self, assignment: &Assignment, actor: &str) -> StorageResult<()> {
        let now = self.clock_now();
        self.write_sql(|db| directory::unassign(db, assignment, actor, now))
    }

    fn assignments(&self, account_id: Option<&str>) -> StorageResult<Vec<Assignment>> {
        self.read_sql(|db| directory::assignments(db, account_id))
    }

    fn create_session(
        &self,
        token_hash: &[u8],
        account_id: &str,
        expires_at: Millis,
    ) -> StorageResult<()> {
        let now = self.clock_now();
        self.write_sql(|db| directory::create_session(db, token_hash, account_id, expires_at, now))
    }

    fn session_account(&self, token_hash: &[u8], now: Millis) -> StorageResult<Option<Account>> {
        self.read_sql(|db| directory::session_account(db, token_hash, now))
    }

    fn delete_session(&self, token_hash: &[u8]) -> StorageResult<()> {
        self.write_sql(|db| directory::delete_session(db, token_hash))
    }

    fn create_enrollment_code(
        &self,
        code_hash: &[u8],
        account_id: &str,
        expires_at: Millis,
        actor: &str,
    ) -> StorageResult<EnrollmentCode> {
        let now = self.clock_now();
        self.write_sql(|db| {
            directory::create_enrollment_code(db, code_hash, account_id, expires_at, actor, now)
        })
    }

    fn enrollment_codes(&self, account_id: Option<&str>) -> StorageResult<Vec<EnrollmentCode>> {
        self.read_sql(|db| directory::enrollment_codes(db, account_id))
    }

    fn redeem_enrollment_code(
        &self,
        code_hash: &[u8],
        now: Millis,
        device: &NewDevice,
    ) -> StorageResult<Device> {
        self.write_sql(|db| directory::redeem_enrollment_code(db, code_hash, now, device))
    }

    fn device(&self, id: &Uuid) -> StorageResult<Option<Device>> {
        self.read_sql(|db| directory::device(db, id))
    }

    fn device_by_token(&self, token_hash: &[u8]) -> StorageResult<Option<Device>> {
        self.read_sql(|db| directory::device_by_token(db, token_hash))
    }

    fn devices(&self) -> StorageResult<Vec<Device>> {
        self.read_sql(directory::devices)
    }

    fn revoke_device(&self, id: &Uuid, actor: &str) -> StorageResult<Device> {
        let now = self.clock_now();
        self.write_sql(|db| directory::revoke_device(db, id, actor, now))
    }

    fn throttle(
        &self,
        keys: &[String],
        forget_before: Millis,
        update: &mut dyn FnMut(&mut std::collections::BTreeMap<String, ThrottleEntry>),
    ) -> StorageResult<()> {
        self.write_sql(|db| directory::throttle(db, keys, forget_before, update))
    }
}

impl<B: SqlBackend> AuditLog for B {
    fn append_audit(&self, events: &[NewAuditEvent]) -> StorageResult<()> {
        let now = self.clock_now();
        self.write_sql(|db| audit::append(db, now, events))
    }

    fn audit_events(&self, after: i64, limit: usize) -> StorageResult<Vec<AuditEvent>> {
        self.settle_audit()?;
        self.read_sql(|db| audit::events(db, after, limit))
    }

    fn verify_audit_chain(&self) -> StorageResult<i64> {
        self.settle_audit()?;
        self.snapshot_sql(audit::verify)
    }

    fn quarantine(&self, limit: usize) -> StorageResult<Vec<QuarantineEntry>> {
        self.read_sql(|db| audit::quarantine(db, limit))
    }

    fn mark_quarantine_accepted(&self, id: i64, by: &str, at: Millis) -> StorageResult<bool> {
        let now = self.clock_now();
        self.write_sql(|db| audit::mark_accepted(db, id, by, at, now))
    }

    fn release_quarantine(&self, device: &Uuid, by: &str) -> StorageResult<Device> {
        let now = self.clock_now();
        self.write_sql(|db| audit::release(db, device, by, now))
    }

    fn quarantine_payload(&self, id: i64) -> StorageResult<Option<Vec<u8>>> {
        self.read_sql(|db| audit::payload(db, id))
    }
}
