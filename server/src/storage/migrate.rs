//! Moving a community between databases (`doorstep-server migrate-storage --from … --to …`):
//! every stored fact is copied in one target transaction, read from one source snapshot, and
//! then verified — documents' heads, the audit chain recomputed to the same last hash, and
//! projections rebuilt on the target equal to the source's. A target that holds anything is
//! refused. Projections are derived, so they are rebuilt rather than copied; the server facts
//! beside them (when each ballot first arrived, the campaigns' change counters) are copied.

use std::collections::BTreeMap;

use super::sql::{Dialect, Param, Row, Sql, Value};
use super::{Backend, StorageError, StorageResult};

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

fn as_param(value: &Value) -> Param<'_> {
    match value {
        Value::Null => Param::Null,
        Value::Int(v) => Param::Int(*v),
        Value::Real(v) => Param::Real(*v),
        Value::Text(v) => Param::Text(v),
        Value::Bytes(v) => Param::Bytes(v),
    }
}

fn count(db: &mut dyn Sql, table: &str) -> StorageResult<i64> {
    Ok(db
        .query_one(&format!("SELECT COUNT(*) FROM {table}"), &[])?
        .get(0)?)
}

/// Copy everything `from` stores into `to`, which must hold nothing yet, and verify the copy.
/// Stop the servers of both first: writes made meanwhile would not be copied.
pub fn migrate(from: &dyn Backend, to: &dyn Backend) -> StorageResult<Migrated> {
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
            Ok(())
        })
    })?;
    to.rebuild_projections()?;
    verify(from, to, &mut migrated)?;
    Ok(migrated)
}

fn copy_table(
    source: &mut dyn Sql,
    target: &mut dyn Sql,
    table: &str,
    columns: &[&str],
    key: &str,
) -> StorageResult<usize> {
    let list = columns.join(", ");
    let select = format!("SELECT {list} FROM {table} ORDER BY {key} LIMIT ?1 OFFSET ?2");
    let placeholders: Vec<String> = (1..=columns.len()).map(|i| format!("?{i}")).collect();
    let insert = format!(
        "INSERT INTO {table} ({list}) VALUES ({})",
        placeholders.join(", ")
    );
    let mut copied = 0usize;
    loop {
        let page: Vec<Row> =
            source.query(&select, &[Param::Int(PAGE), Param::Int(copied as i64)])?;
        if page.is_empty() {
            return Ok(copied);
        }
        for row in &page {
            let params: Vec<Param<'_>> = row.values().iter().map(as_param).collect();
            target.execute(&insert, &params)?;
        }
        copied += page.len();
    }
}

/// Both databases hold the same: row counts, documents and their heads, the audit chain
/// (recomputed, ending on the same hash), and the projections (the target's rebuilt).
fn verify(from: &dyn Backend, to: &dyn Backend, migrated: &mut Migrated) -> StorageResult<()> {
    let mismatch = |what: String| StorageError::Corrupt(format!("the copy differs: {what}"));
    let mut counts = BTreeMap::new();
    from.read_raw(&mut |db| {
        for (table, _, _) in TABLES {
            counts.insert(*table, count(db, table)?);
        }
        Ok(())
    })?;
    let mut target_counts = BTreeMap::new();
    to.read_raw(&mut |db| {
        for (table, _, _) in TABLES {
            target_counts.insert(*table, count(db, table)?);
        }
        Ok(())
    })?;
    if counts != target_counts {
        return Err(mismatch(format!(
            "rows {counts:?} against {target_counts:?}"
        )));
    }
    let source_docs = from.documents()?;
    let target_docs = to.documents()?;
    if source_docs != target_docs {
        return Err(mismatch("documents or their heads".into()));
    }
    migrated.documents = target_docs.len();
    let events = to.verify_audit_chain()?;
    if events != from.verify_audit_chain()? {
        return Err(mismatch("the number of audit events".into()));
    }
    let last = |b: &dyn Backend| -> StorageResult<Option<String>> {
        Ok(b.audit_events((events - 1).max(0), 1)?
            .pop()
            .map(|e| e.hash))
    };
    if last(from)? != last(to)? {
        return Err(mismatch("the audit chain's last hash".into()));
    }
    migrated.audit_events = events;
    if from.projection_rows()? != to.projection_rows()? {
        return Err(mismatch("the projections rebuilt on the target".into()));
    }
    Ok(())
}
