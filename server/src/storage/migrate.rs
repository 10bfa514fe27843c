//! Moving a community between databases (`doorstep-server migrate-storage --from … --to …`):
//! every stored fact is copied in one target transaction, read from one source snapshot, and
//! verified before that transaction commits — row counts, documents and their heads, the audit
//! chain recomputed to the same last hash, and projections rebuilt on the target equal to the
//! source's — so a copy that does not verify leaves the target as empty as it was. A target
//! that holds anything is refused. Projections are derived, so they are rebuilt rather than copied; the server facts
//! beside them (when each ballot first arrived, the campaigns' change counters) are copied.

use std::collections::BTreeMap;

use doorstep_core::model::Millis;

use super::sql::{Dialect, Param, Row, Sql, insert_rows};
use super::{Backend, StorageError, StorageResult};
use super::{audit, documents};

/// Every table that holds facts (not derived data), its columns, and the key it is read in
/// order of. The columns are the same on both databases.
const TABLES: &[(&str, &[&str], &str)] = &[
    (
        "accounts",
        &[
            "id",
            "login",
            "display_name",
            "grants",
            "password_hash",
            "created_at",
            "disabled",
        ],
        "id",
    ),
    (
        "assignments",
        &["account_id", "community", "building"],
        "account_id, community, building",
    ),
    (
        "sessions",
        &["token_hash", "account_id", "created_at", "expires_at"],
        "token_hash",
    ),
    (
        "enrollment_codes",
        &[
            "code_hash",
            "account_id",
            "created_at",
            "expires_at",
            "used_at",
            "device_id",
        ],
        "code_hash",
    ),
    (
        "devices",
        &[
            "id",
            "account_id",
            "label",
            "token_hash",
            "enrolled_at",
            "revoked_at",
            "last_sync_at",
            "app_version",
            "pending",
            "rejected",
            "syncs",
            "bytes_up",
            "bytes_down",
            "manifest_digest",
            "quarantined_bytes",
            "quarantine_full_at",
        ],
        "id",
    ),
    (
        "documents",
        &[
            "id",
            "kind",
            "community",
            "building",
            "campaign",
            "heads",
            "snapshot",
            "snapshot_bytes",
            "chunk_bytes",
            "chunks",
            "created_at",
            "updated_at",
        ],
        "id",
    ),
    (
        "document_chunks",
        &["doc_id", "seq", "bytes"],
        "doc_id, seq",
    ),
    (
        "sync_states",
        &["device_id", "doc_id", "state", "announced"],
        "device_id, doc_id",
    ),
    (
        "quarantine",
        &[
            "id",
            "at",
            "device_id",
            "account_id",
            "doc_id",
            "reason",
            "payload",
            "payload_sha",
            "code",
            "accepted_at",
            "accepted_by",
            "size",
        ],
        "id",
    ),
    (
        "audit_log",
        &[
            "seq",
            "at",
            "actor",
            "kind",
            "subject",
            "detail",
            "prev_hash",
            "hash",
        ],
        "seq",
    ),
    (
        "ballot_receipts",
        &["campaign", "ballot", "received_at"],
        "campaign, ballot",
    ),
    (
        "p_campaign_changes",
        &["campaign", "building", "changes"],
        "campaign, building",
    ),
];

/// Rows read from the source at a time.
const PAGE: i64 = 500;

/// What a migration copied and checked.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Migrated {
    /// Rows copied, by table.
    pub rows: BTreeMap<String, usize>,
    /// Documents whose heads were compared.
    pub documents: usize,
    /// Audit events whose chain was recomputed on the target.
    pub audit_events: i64,
}

fn count(db: &mut dyn Sql, table: &str) -> StorageResult<i64> {
    Ok(db
        .query_one(&format!("SELECT COUNT(*) FROM {table}"), &[])?
        .get(0)?)
}

/// Copy everything `from` stores into `to`, which must hold nothing yet, and verify the copy
/// before it commits. `now` stamps what the rebuild of the target's projections needs a time
/// for. Stop the servers of both first: writes made meanwhile would not be copied.
pub fn migrate(from: &dyn Backend, to: &dyn Backend, now: Millis) -> StorageResult<Migrated> {
    let mut migrated = Migrated::default();
    // Every staged audit event on the source's chain first (the copy takes the chain).
    from.verify_audit_chain()?;
    from.read_raw(&mut |source| {
        let server_device: String = source
            .query_one(
                "SELECT value FROM server_meta WHERE key = 'server_device'",
                &[],
            )?
            .get(0)?;
        to.write_raw(&mut |target| {
            for table in ["accounts", "documents", "audit_log", "devices"] {
                if count(target, table)? > 0 {
                    return Err(StorageError::Conflict(format!(
                        "the target database is not empty (its {table} table has rows): \
                         migrate-storage only copies into a new database"
                    )));
                }
            }
            // The target's fresh ids and counters give way to the source's.
            target.execute(
                "UPDATE server_meta SET value = ?1 WHERE key = 'server_device'",
                &[Param::Text(&server_device)],
            )?;
            target.execute("DELETE FROM p_campaign_changes", &[])?;
            for (table, columns, key) in TABLES {
                let copied = copy_table(source, target, table, columns, key)?;
                migrated.rows.insert((*table).to_string(), copied);
            }
            if target.dialect() == Dialect::Postgres {
                // Rows came with their ids: the identity continues after the largest.
                target.execute(
                    "SELECT setval(pg_get_serial_sequence('quarantine', 'id'),
                                   COALESCE(MAX(id), 0) + 1, false) FROM quarantine",
                    &[],
                )?;
            }
            documents::rebuild_projections(target, now)?;
            // An error here rolls the whole copy back.
            verify(source, target, &mut migrated)
        })
    })?;
    Ok(migrated)
}

/// Copy `table` in pages read in `key` order, each page after the last key of the one before
/// (no `OFFSET`, which rereads every earlier row), each written in a few multi-row inserts.
fn copy_table(
    source: &mut dyn Sql,
    target: &mut dyn Sql,
    table: &str,
    columns: &[&str],
    key: &str,
) -> StorageResult<usize> {
    let list = columns.join(", ");
    let keys: Vec<usize> = key
        .split(", ")
        .map(|k| {
            columns
                .iter()
                .position(|c| c == &k)
                .unwrap_or_else(|| panic!("invariant: {table}'s key {k} is one of its columns"))
        })
        .collect();
    let first = format!("SELECT {list} FROM {table} ORDER BY {key} LIMIT {PAGE}");
    let marks: Vec<String> = (1..=keys.len()).map(|i| format!("?{i}")).collect();
    let next = format!(
        "SELECT {list} FROM {table} WHERE ({key}) > ({}) ORDER BY {key} LIMIT {PAGE}",
        marks.join(", ")
    );
    let insert = format!("INSERT INTO {table} ({list})");
    let mut copied = 0usize;
    let mut page: Vec<Row> = source.query(&first, &[])?;
    while !page.is_empty() {
        let params: Vec<Param<'_>> = page
            .iter()
            .flat_map(|row| row.values().iter().map(|v| v.as_param()))
            .collect();
        insert_rows(target, &insert, "", columns.len(), &params)?;
        copied += page.len();
        let last = page.last().expect("invariant: the page is not empty");
        let after: Vec<Param<'_>> = keys.iter().map(|&i| last.values()[i].as_param()).collect();
        let following = source.query(&next, &after)?;
        page = following;
    }
    Ok(copied)
}

/// Both databases hold the same: row counts, documents and their heads, the audit chain
/// (recomputed, ending on the same hash), and the projections (the target's rebuilt).
fn verify(
    source: &mut dyn Sql,
    target: &mut dyn Sql,
    migrated: &mut Migrated,
) -> StorageResult<()> {
    let mismatch = |what: String| StorageError::Corrupt(format!("the copy differs: {what}"));
    let mut counts = BTreeMap::new();
    let mut target_counts = BTreeMap::new();
    for (table, _, _) in TABLES {
        counts.insert(*table, count(source, table)?);
        target_counts.insert(*table, count(target, table)?);
    }
    if counts != target_counts {
        return Err(mismatch(format!(
            "rows {counts:?} against {target_counts:?}"
        )));
    }
    let target_docs = documents::documents(target)?;
    if documents::documents(source)? != target_docs {
        return Err(mismatch("documents or their heads".into()));
    }
    migrated.documents = target_docs.len();
    let events = audit::verify(target)?;
    if events != audit::verify(source)? {
        return Err(mismatch("the number of audit events".into()));
    }
    let last = |db: &mut dyn Sql| -> StorageResult<Option<String>> {
        Ok(audit::events(db, (events - 1).max(0), 1)?
            .pop()
            .map(|e| e.hash))
    };
    if last(source)? != last(target)? {
        return Err(mismatch("the audit chain's last hash".into()));
    }
    migrated.audit_events = events;
    let projections = |db: &mut dyn Sql| {
        crate::projections::dump(db).map_err(|e| StorageError::Projection(e.to_string()))
    };
    if projections(source)? != projections(target)? {
        return Err(mismatch(
            "the projections rebuilt on the target differ from the source's (if the source's \
             are stale, `doorstep-server rebuild-projections` on it first)"
                .into(),
        ));
    }
    Ok(())
}
