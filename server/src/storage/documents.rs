//! Documents, their per-device sync rows, and the one-transaction commit of a sync request
//! (documents, projections, sync rows, quarantine, device bookkeeping, audit), written once for
//! both databases through [`Sql`].

use std::collections::HashMap;

use sha2::{Digest, Sha256};
use uuid::Uuid;

use doorstep_core::doc::{DocId, DocKind};
use doorstep_core::model::Millis;

use super::sql::{Lock, Param, Row, Sql, args, insert_rows, lock_key, query_in};
use super::{
    Announce, Batch, CommitReport, DocContent, DocMeta, DocWrite, NewAuditEvent, QUARANTINE_SAMPLE,
    StorageError, StorageResult, StoredDoc, SyncRow, SyncStateWrite, audit, heads_from_blob,
    heads_to_blob,
};

const META_COLUMNS: &str =
    "id, community, heads, snapshot_bytes, chunk_bytes, chunks, created_at, updated_at";

fn meta_row(r: &Row) -> StorageResult<Option<DocMeta>> {
    let id: String = r.get(0)?;
    let Ok(parsed) = id.parse::<DocId>() else {
        // A document stored by an earlier release under an id the grammar now refuses (e.g.
        // a community id with a space) is left out of listings, loudly, so it can never make
        // a listing, a sync or a projection rebuild fail; it stays in the database for an
        // operator to rename or remove.
        tracing::warn!(id = %id, "skipping a stored document whose id is not well formed");
        return Ok(None);
    };
    Ok(Some(DocMeta {
        id: parsed,
        community: r.get(1)?,
        heads: heads_from_blob(&r.get::<Vec<u8>>(2)?)?,
        snapshot_bytes: r.get(3)?,
        chunk_bytes: r.get(4)?,
        chunks: r.get(5)?,
        created_at: r.get(6)?,
        updated_at: r.get(7)?,
    }))
}

fn metas(
    db: &mut dyn Sql,
    sql: &str,
    params: &[super::sql::Param<'_>],
) -> StorageResult<Vec<DocMeta>> {
    let mut out = Vec::new();
    for row in db.query(sql, params)? {
        if let Some(meta) = meta_row(&row)? {
            out.push(meta);
        }
    }
    Ok(out)
}

pub fn document_meta(db: &mut dyn Sql, id: &DocId) -> StorageResult<Option<DocMeta>> {
    Ok(metas(
        db,
        &format!("SELECT {META_COLUMNS} FROM documents WHERE id = ?1"),
        args![id.to_string()],
    )?
    .pop())
}

/// The stored bytes of a document, or `None` when it does not exist.
pub fn load_document(db: &mut dyn Sql, id: &DocId) -> StorageResult<Option<StoredDoc>> {
    let Some(meta) = document_meta(db, id)? else {
        return Ok(None);
    };
    let key = id.to_string();
    let bytes = document_bytes(db, &key)?.ok_or_else(|| StorageError::NotFound(key.clone()))?;
    Ok(Some(StoredDoc { meta, bytes }))
}

/// Every document's metadata, ordered by id.
pub fn documents(db: &mut dyn Sql) -> StorageResult<Vec<DocMeta>> {
    metas(
        db,
        &format!("SELECT {META_COLUMNS} FROM documents ORDER BY id"),
        &[],
    )
}

/// The documents an account's phones should hold.
pub fn account_documents(db: &mut dyn Sql, account_id: &str) -> StorageResult<Vec<DocMeta>> {
    metas(
        db,
        // From the account's assignments outwards through the indexes (CROSS JOIN keeps
        // SQLite's planner from starting at the documents), so the cost follows what the
        // account holds, not how many documents the server has.
        &format!(
            "SELECT {META_COLUMNS} FROM documents WHERE id IN (
                 SELECT d.id FROM assignments a CROSS JOIN documents d
                 WHERE d.kind IN ('building', 'orders', 'field')
                   AND d.community = a.community AND d.building = a.building
                   AND a.account_id = ?1
               UNION
                 SELECT d.id FROM assignments a CROSS JOIN documents d
                 WHERE d.kind = 'register' AND d.community = a.community
                   AND a.account_id = ?1
               UNION
                 SELECT c.id FROM assignments a
                   CROSS JOIN documents f
                   CROSS JOIN documents c
                 WHERE f.kind = 'field' AND f.community = a.community
                   AND f.building = a.building
                   AND c.kind = 'campaign' AND c.campaign = f.campaign
                   AND a.account_id = ?1)
             ORDER BY id"
        ),
        args![account_id],
    )
}

/// A document's snapshot followed by its chunks.
pub fn document_bytes(db: &mut dyn Sql, key: &str) -> StorageResult<Option<Vec<u8>>> {
    let Some(mut row) = db.query_opt("SELECT snapshot FROM documents WHERE id = ?1", args![key])?
    else {
        return Ok(None);
    };
    let mut bytes = row.take_bytes(0)?;
    for mut chunk in db.query(
        "SELECT bytes FROM document_chunks WHERE doc_id = ?1 ORDER BY seq",
        args![key],
    )? {
        bytes.extend_from_slice(&chunk.take_bytes(0)?);
    }
    Ok(Some(bytes))
}

/// The order documents are projected in: registers and buildings before the campaigns and
/// field records that refer to them.
pub fn kind_rank(id: &DocId) -> u8 {
    match id.kind() {
        DocKind::Register => 0,
        DocKind::Building => 1,
        DocKind::Campaign => 2,
        DocKind::Field => 3,
        DocKind::Orders => 4,
    }
}

fn kind_name(id: &DocId) -> &'static str {
    match id.kind() {
        DocKind::Register => "register",
        DocKind::Building => "building",
        DocKind::Campaign => "campaign",
        DocKind::Field => "field",
        DocKind::Orders => "orders",
    }
}

/// Serialise writes to these documents with every other server process, until the
/// transaction ends (SQLite has a single writer already). Taken in id order, so two commits of
/// overlapping documents cannot deadlock.
fn lock_documents(db: &mut dyn Sql, writes: &[DocWrite<'_>]) -> StorageResult<()> {
    let mut keys: Vec<String> = writes.iter().map(|w| w.id.to_string()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        db.lock(Lock::Document, lock_key(&format!("document:{key}")))?;
    }
    Ok(())
}

/// The stored heads of the documents `writes` change (absent: not created yet), read in one
/// statement once their locks are held.
fn stored_heads(
    db: &mut dyn Sql,
    writes: &[DocWrite<'_>],
) -> StorageResult<HashMap<String, Vec<u8>>> {
    let ids: Vec<String> = writes.iter().map(|w| w.id.to_string()).collect();
    let list: Vec<Param<'_>> = ids.iter().map(|id| Param::Text(id)).collect();
    let mut out = HashMap::with_capacity(ids.len());
    for row in query_in(db, "SELECT id, heads FROM documents WHERE id", &[], &list)? {
        out.insert(row.get::<String>(0)?, row.get::<Vec<u8>>(1)?);
    }
    Ok(out)
}

fn write_document(
    db: &mut dyn Sql,
    write: &DocWrite<'_>,
    stored: Option<Vec<u8>>,
    now: Millis,
) -> StorageResult<()> {
    if !write.id.is_well_formed() {
        return Err(StorageError::Invalid(format!(
            "document id {:?} does not follow the id grammar",
            write.id.to_string()
        )));
    }
    let id = write.id.to_string();
    let heads = heads_to_blob(&write.heads);
    match (&write.base, &stored) {
        // Another server process changed the document after this one loaded it: what this
        // write would store (heads, projections) misses that change. Refused whole; the
        // caller reloads the document and tries again.
        (Some(base), Some(stored)) if heads_to_blob(base) != *stored => {
            return Err(StorageError::Stale(id));
        }
        // A creation of a document another process created meanwhile: never overwritten.
        (None, Some(_)) => return Err(StorageError::Stale(id)),
        _ => {}
    }
    match (&write.content, stored.is_some()) {
        (DocContent::Snapshot(bytes), false) => {
            db.execute(
                "INSERT INTO documents (id, kind, community, building, campaign, heads, snapshot,
                     snapshot_bytes, chunk_bytes, chunks, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0, 0, ?9, ?9)",
                args![
                    id,
                    kind_name(&write.id),
                    write.community,
                    write.id.building(),
                    write.id.campaign(),
                    heads,
                    bytes,
                    bytes.len() as i64,
                    now
                ],
            )?;
        }
        (DocContent::Snapshot(bytes), true) => {
            db.execute("DELETE FROM document_chunks WHERE doc_id = ?1", args![id])?;
            db.execute(
                "UPDATE documents SET heads = ?2, snapshot = ?3, snapshot_bytes = ?4,
                     chunk_bytes = 0, chunks = 0, updated_at = ?5 WHERE id = ?1",
                args![id, heads, bytes, bytes.len() as i64, now],
            )?;
        }
        (DocContent::Chunk(_), false) => {
            return Err(StorageError::NotFound(format!(
                "document {id} (a chunk needs an existing snapshot)"
            )));
        }
        (DocContent::Chunk(bytes), true) => {
            db.execute(
                "INSERT INTO document_chunks (doc_id, seq, bytes)
                 VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM document_chunks
                              WHERE doc_id = ?1), ?2)",
                args![id, bytes],
            )?;
            db.execute(
                "UPDATE documents SET heads = ?2, chunk_bytes = chunk_bytes + ?3,
                     chunks = chunks + 1, updated_at = ?4 WHERE id = ?1",
                args![id, heads, bytes.len() as i64, now],
            )?;
        }
    }
    crate::projections::document_changed(db, &write.id, write.doc, write.checked.as_ref(), now)
        .map_err(|e| StorageError::Projection(format!("{}: {e}", write.id)))?;
    Ok(())
}

/// The device's sync rows, in a few statements for all: a new state replaces the stored one
/// (`None` keeps it); the announced heads are kept, set, or cleared. A document written twice
/// in one batch (PostgreSQL refuses to update a row twice in one statement) has its second
/// write in a later round, so the writes still apply in order.
fn write_sync_states(
    db: &mut dyn Sql,
    device: &str,
    writes: &[SyncStateWrite],
) -> StorageResult<()> {
    let docs: Vec<String> = writes.iter().map(|w| w.doc.to_string()).collect();
    let announced: Vec<Option<Vec<u8>>> = writes
        .iter()
        .map(|w| match &w.announced {
            Announce::Set(heads) => Some(heads_to_blob(heads)),
            Announce::Keep | Announce::Clear => None,
        })
        .collect();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let round: Vec<usize> = docs
        .iter()
        .map(|d| {
            let n = seen.entry(d.as_str()).or_default();
            *n += 1;
            *n - 1
        })
        .collect();
    const HEAD: &str = "INSERT INTO sync_states (device_id, doc_id, state, announced)";
    const KEEP: &str = "ON CONFLICT (device_id, doc_id) DO UPDATE SET
         state = COALESCE(excluded.state, sync_states.state)";
    const REPLACE: &str = "ON CONFLICT (device_id, doc_id) DO UPDATE SET
         state = COALESCE(excluded.state, sync_states.state), announced = excluded.announced";
    for r in 0..=round.iter().copied().max().unwrap_or(0) {
        let (mut keep, mut replace) = (Vec::new(), Vec::new());
        for (i, w) in writes.iter().enumerate().filter(|(i, _)| round[*i] == r) {
            let rows = match w.announced {
                Announce::Keep => &mut keep,
                Announce::Set(_) | Announce::Clear => &mut replace,
            };
            rows.extend_from_slice(args![device, docs[i], w.state, announced[i]]);
        }
        insert_rows(db, HEAD, KEEP, 4, &keep)?;
        insert_rows(db, HEAD, REPLACE, 4, &replace)?;
    }
    Ok(())
}

/// Apply a batch inside the caller's transaction.
pub fn commit(db: &mut dyn Sql, batch: &Batch<'_>, now: Millis) -> StorageResult<CommitReport> {
    let mut report = CommitReport::default();
    lock_documents(db, &batch.documents)?;
    let mut stored = stored_heads(db, &batch.documents)?;
    for doc in &batch.documents {
        // A batch writing one document twice sees its own first write.
        let before = stored.remove(&doc.id.to_string());
        write_document(db, doc, before, now)?;
        stored.insert(doc.id.to_string(), heads_to_blob(&doc.heads));
    }
    let device_key = batch.device.as_ref().map(|d| d.device.to_string());
    if let (Some(device), Some(key)) = (&batch.device, &device_key) {
        if device.reset_announced {
            db.execute(
                "UPDATE sync_states SET announced = NULL WHERE device_id = ?1",
                args![key],
            )?;
        }
        write_sync_states(db, key, &batch.sync_states)?;
        let mut audits = Vec::new();
        // Read only when something may be quarantined: most syncs refuse nothing.
        let mut stored: i64 = if batch.quarantine.is_empty() {
            0
        } else {
            db.query_one(
                "SELECT quarantined_bytes FROM devices WHERE id = ?1",
                args![key],
            )?
            .get(0)?
        };
        let mut over_budget = false;
        for q in &batch.quarantine {
            let sha = Sha256::digest(&q.payload).to_vec();
            let kept = if q.keep_whole {
                &q.payload[..]
            } else {
                &q.payload[..q.payload.len().min(QUARANTINE_SAMPLE)]
            };
            if stored + kept.len() as i64 > device.quarantine_budget {
                over_budget = true;
                continue;
            }
            let inserted = db.execute(
                "INSERT INTO quarantine
                 (at, device_id, account_id, doc_id, reason, payload, payload_sha, code, size)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT DO NOTHING",
                args![
                    now,
                    key,
                    device.account_id,
                    q.doc.to_string(),
                    q.reason,
                    kept,
                    sha,
                    q.code,
                    q.payload.len() as i64
                ],
            )?;
            if inserted > 0 {
                stored += kept.len() as i64;
                report.quarantined += 1;
                audits.push(q.audit.clone());
            }
        }
        if over_budget {
            let flagged = db.execute(
                "UPDATE devices SET quarantine_full_at = ?2
                 WHERE id = ?1 AND quarantine_full_at IS NULL",
                args![key, now],
            )?;
            if flagged > 0 {
                audits.push(NewAuditEvent::new(
                    format!("device:{key}"),
                    "device.quarantine_full",
                    key.to_string(),
                    serde_json::json!({ "account": device.account_id, "stored": stored }),
                ));
            }
            report.over_budget = true;
        }
        if !batch.quarantine.is_empty() {
            db.execute(
                "UPDATE devices SET quarantined_bytes = ?2 WHERE id = ?1",
                args![key, stored],
            )?;
        }
        db.execute(
            "UPDATE devices SET last_sync_at = ?2, app_version = ?3, pending = ?4,
                 rejected = rejected + ?5, syncs = syncs + 1,
                 bytes_up = bytes_up + ?6, bytes_down = bytes_down + ?7,
                 manifest_digest = COALESCE(?8, manifest_digest)
             WHERE id = ?1",
            args![
                key,
                device.at,
                device.app_version,
                device.pending,
                report.quarantined as i64,
                device.bytes_up,
                device.bytes_down,
                device.manifest_digest
            ],
        )?;
        audit::append(db, now, &audits)?;
    } else if !batch.sync_states.is_empty() || !batch.quarantine.is_empty() {
        return Err(StorageError::Invalid(
            "sync rows and quarantine need a device".into(),
        ));
    }
    audit::append(db, now, &batch.audit)?;
    Ok(report)
}

/// What the server remembers per document for one device.
pub fn sync_rows(db: &mut dyn Sql, device: &Uuid) -> StorageResult<Vec<SyncRow>> {
    db.query(
        "SELECT doc_id, state, announced FROM sync_states WHERE device_id = ?1",
        args![device.to_string()],
    )?
    .iter()
    .map(|r| {
        let doc: String = r.get(0)?;
        let announced: Option<Vec<u8>> = r.get(2)?;
        Ok(SyncRow {
            doc: doc
                .parse()
                .map_err(|_| StorageError::Corrupt(format!("sync row document {doc:?}")))?,
            state: r.get(1)?,
            announced: announced.as_deref().map(heads_from_blob).transpose()?,
        })
    })
    .collect()
}

/// Empty every projection table and derive it again from the stored documents (registers and
/// buildings first, then campaigns, field records and orders), inside the caller's
/// transaction. Returns how many documents were projected.
pub fn rebuild_projections(db: &mut dyn Sql, now: Millis) -> StorageResult<usize> {
    let mut metas = documents(db)?;
    metas.sort_by_key(|m| (kind_rank(&m.id), m.id.to_string()));
    crate::projections::clear(db).map_err(|e| StorageError::Projection(e.to_string()))?;
    for meta in &metas {
        let bytes = document_bytes(db, &meta.id.to_string())?
            .ok_or_else(|| StorageError::NotFound(meta.id.to_string()))?;
        let options =
            automerge::LoadOptions::new().on_partial_load(automerge::OnPartialLoad::Error);
        let doc = automerge::AutoCommit::load_with_options(&bytes, options)
            .map_err(|e| StorageError::Corrupt(format!("{}: {e}", meta.id)))?;
        crate::projections::document_changed(db, &meta.id, &doc, None, now)
            .map_err(|e| StorageError::Projection(format!("{}: {e}", meta.id)))?;
    }
    crate::projections::mark_current(db).map_err(|e| StorageError::Projection(e.to_string()))?;
    Ok(metas.len())
}
