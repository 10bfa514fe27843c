//! The audit log (an append-only hash chain) and the quarantine of refused payloads, written
//! once for both databases through [`Sql`].

use sha2::{Digest, Sha256};
use uuid::Uuid;

use doorstep_core::model::Millis;

use super::sql::{self, Dialect, Lock, Param, Row, Sql, args};
use super::{AuditEvent, Device, NewAuditEvent, QuarantineEntry, StorageError, StorageResult};

/// The canonical bytes an audit hash covers. `serde_json` sorts object keys (no
/// `preserve_order`), so re-serializing a stored event reproduces these bytes exactly.
fn canonical(
    seq: i64,
    at: Millis,
    actor: &str,
    kind: &str,
    subject: &str,
    detail: &serde_json::Value,
) -> Vec<u8> {
    let value = serde_json::json!({
        "seq": seq,
        "at": at,
        "actor": actor,
        "kind": kind,
        "subject": subject,
        "detail": detail,
    });
    serde_json::to_vec(&value).expect("invariant: a JSON value always serializes")
}

fn chain_hash(prev: &[u8], canonical: &[u8]) -> Vec<u8> {
    let mut hasher = Sha256::new();
    hasher.update(prev);
    hasher.update(canonical);
    hasher.finalize().to_vec()
}

/// The key of the PostgreSQL advisory lock that serialises appends to the chain across
/// server processes (any constant that no document lock can take: those are hashed ids).
const AUDIT_LOCK: i64 = 0x00d0_0257_a0d1_7000;

/// Events per insert statement (SQLite binds at most 32,766 values).
pub(super) const PER_INSERT: usize = 500;

/// Append events inside the caller's transaction. On SQLite (one writer) they go on the chain
/// at once. On PostgreSQL they are staged in `audit_pending`, durable with the transaction,
/// and [`chain_pending`] puts them on the chain after it commits: commits of different
/// documents never wait for one another on the one chain of the server.
pub fn append(db: &mut dyn Sql, at: Millis, events: &[NewAuditEvent]) -> StorageResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    if db.dialect() == Dialect::Sqlite {
        let timed: Vec<(Millis, &NewAuditEvent)> = events.iter().map(|e| (at, e)).collect();
        return chain_events(db, &timed);
    }
    for chunk in events.chunks(PER_INSERT) {
        let tuples: Vec<String> = (0..chunk.len())
            .map(|i| {
                let b = i * 5;
                format!(
                    "(?{}, ?{}, ?{}, ?{}, ?{})",
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4,
                    b + 5
                )
            })
            .collect();
        let details = chunk
            .iter()
            .map(|e| serde_json::to_string(&e.detail))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| StorageError::Invalid(e.to_string()))?;
        let mut params = Vec::with_capacity(chunk.len() * 5);
        for (event, detail) in chunk.iter().zip(&details) {
            params.extend([
                Param::Int(at),
                Param::Text(&event.actor),
                Param::Text(&event.kind),
                Param::Text(&event.subject),
                Param::Text(detail),
            ]);
        }
        db.execute(
            &format!(
                "INSERT INTO audit_pending (at, actor, kind, subject, detail) VALUES {}",
                tuples.join(", ")
            ),
            &params,
        )?;
    }
    Ok(())
}

/// Put staged events (PostgreSQL) on the chain, oldest first, in one transaction under the
/// chain's lock; how many (0: nothing was waiting). Each server process runs it after its
/// commits and before it reads the log; whoever takes the lock chains what every process
/// staged, so one durable commit extends the chain by many syncs' events.
pub fn chain_pending(db: &mut dyn Sql) -> StorageResult<usize> {
    db.lock(Lock::Audit, AUDIT_LOCK)?;
    let rows = db.query(
        "SELECT id, at, actor, kind, subject, detail FROM audit_pending ORDER BY id LIMIT ?1",
        args![PER_INSERT as i64],
    )?;
    if rows.is_empty() {
        return Ok(0);
    }
    let mut ids = Vec::with_capacity(rows.len());
    let mut staged = Vec::with_capacity(rows.len());
    for r in &rows {
        let id: i64 = r.get(0)?;
        let detail: String = r.get(5)?;
        ids.push(id);
        staged.push((
            r.get::<i64>(1)?,
            NewAuditEvent::new(
                r.get::<String>(2)?,
                r.get::<String>(3)?,
                r.get::<String>(4)?,
                serde_json::from_str(&detail)
                    .map_err(|e| StorageError::Corrupt(format!("staged audit event {id}: {e}")))?,
            ),
        ));
    }
    let timed: Vec<(Millis, &NewAuditEvent)> = staged.iter().map(|(at, e)| (*at, e)).collect();
    chain_events(db, &timed)?;
    // Exactly the rows chained: one staged meanwhile with a smaller id (its transaction
    // committed after the SELECT) waits for the next run.
    let params: Vec<Param<'_>> = ids.iter().map(|id| Param::Int(*id)).collect();
    sql::execute_in(db, "DELETE FROM audit_pending WHERE id", &[], &params)?;
    Ok(ids.len())
}

/// Put `events` (each with its time) on the chain inside the caller's transaction, continuing
/// from the last stored hash, under the chain's lock (held until the transaction ends).
fn chain_events(db: &mut dyn Sql, events: &[(Millis, &NewAuditEvent)]) -> StorageResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    db.lock(Lock::Audit, AUDIT_LOCK)?;
    let last = db.query_opt(
        "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
        &[],
    )?;
    let (mut seq, mut prev) = match last {
        Some(row) => (row.get::<i64>(0)?, row.get::<Vec<u8>>(1)?),
        None => (0, vec![0u8; 32]),
    };
    // Every event of the call in one statement (the chain's lock is held until the commit).
    let mut rows: Vec<(i64, String, Vec<u8>, Vec<u8>)> = Vec::with_capacity(events.len());
    for (at, event) in events {
        seq += 1;
        let canonical = canonical(
            seq,
            *at,
            &event.actor,
            &event.kind,
            &event.subject,
            &event.detail,
        );
        let hash = chain_hash(&prev, &canonical);
        let detail = serde_json::to_string(&event.detail)
            .map_err(|e| StorageError::Invalid(e.to_string()))?;
        rows.push((
            seq,
            detail,
            std::mem::replace(&mut prev, hash.clone()),
            hash,
        ));
    }
    // In statements of at most `PER_INSERT` events.
    let mut events = events.iter();
    for chunk in rows.chunks(PER_INSERT) {
        let tuples: Vec<String> = (0..chunk.len())
            .map(|i| {
                let b = i * 8;
                format!(
                    "(?{}, ?{}, ?{}, ?{}, ?{}, ?{}, ?{}, ?{})",
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4,
                    b + 5,
                    b + 6,
                    b + 7,
                    b + 8
                )
            })
            .collect();
        let mut params = Vec::with_capacity(chunk.len() * 8);
        for ((seq, detail, prev, hash), (at, event)) in chunk.iter().zip(events.by_ref()) {
            params.extend([
                Param::Int(*seq),
                Param::Int(*at),
                Param::Text(&event.actor),
                Param::Text(&event.kind),
                Param::Text(&event.subject),
                Param::Text(detail),
                Param::Bytes(prev),
                Param::Bytes(hash),
            ]);
        }
        db.execute(
            &format!(
                "INSERT INTO audit_log (seq, at, actor, kind, subject, detail, prev_hash, hash)
                 VALUES {}",
                tuples.join(", ")
            ),
            &params,
        )?;
    }
    Ok(())
}

/// Events with `seq > after`, oldest first, at most `limit`.
pub fn events(db: &mut dyn Sql, after: i64, limit: usize) -> StorageResult<Vec<AuditEvent>> {
    db.query(
        "SELECT seq, at, actor, kind, subject, detail, hash FROM audit_log
         WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        args![after, limit as i64],
    )?
    .iter()
    .map(|r| {
        let seq: i64 = r.get(0)?;
        Ok(AuditEvent {
            seq,
            at: r.get(1)?,
            actor: r.get(2)?,
            kind: r.get(3)?,
            subject: r.get(4)?,
            detail: serde_json::from_str(&r.get::<String>(5)?)
                .map_err(|e| StorageError::Corrupt(format!("audit {seq}: {e}")))?,
            hash: hex::encode(r.get::<Vec<u8>>(6)?),
        })
    })
    .collect()
}

/// How many events are read at a time while the chain is verified.
const VERIFY_PAGE: i64 = 5_000;

/// Recompute the whole chain; the number of events, or `Corrupt` naming the first event whose
/// hash does not match.
pub fn verify(db: &mut dyn Sql) -> StorageResult<i64> {
    let mut prev = vec![0u8; 32];
    let mut count = 0;
    let mut after = 0i64;
    loop {
        let page = db.query(
            "SELECT seq, at, actor, kind, subject, detail, prev_hash, hash
             FROM audit_log WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            args![after, VERIFY_PAGE],
        )?;
        if page.is_empty() {
            return Ok(count);
        }
        for r in &page {
            let seq: i64 = r.get(0)?;
            let detail: serde_json::Value = serde_json::from_str(&r.get::<String>(5)?)
                .map_err(|e| StorageError::Corrupt(format!("audit event {seq}: {e}")))?;
            let stored_prev: Vec<u8> = r.get(6)?;
            let stored: Vec<u8> = r.get(7)?;
            let canonical = canonical(
                seq,
                r.get(1)?,
                &r.get::<String>(2)?,
                &r.get::<String>(3)?,
                &r.get::<String>(4)?,
                &detail,
            );
            if stored_prev != prev || chain_hash(&prev, &canonical) != stored {
                return Err(StorageError::Corrupt(format!(
                    "the audit chain breaks at event {seq}"
                )));
            }
            prev = stored;
            count += 1;
            after = seq;
        }
    }
}

pub(super) fn uuid_from(text: &str) -> StorageResult<Uuid> {
    Uuid::parse_str(text).map_err(|_| StorageError::Corrupt(format!("stored id {text:?}")))
}

fn quarantine_row(r: &Row) -> StorageResult<QuarantineEntry> {
    Ok(QuarantineEntry {
        id: r.get(0)?,
        at: r.get(1)?,
        device_id: uuid_from(&r.get::<String>(2)?)?,
        account_id: r.get(3)?,
        doc: r.get(4)?,
        reason: r.get(5)?,
        payload_bytes: r.get(6)?,
        kept_bytes: r.get(11)?,
        payload_sha256: hex::encode(r.get::<Vec<u8>>(7)?),
        code: r.get(8)?,
        accepted_at: r.get(9)?,
        accepted_by: r.get(10)?,
    })
}

/// Quarantined payloads, newest first.
pub fn quarantine(db: &mut dyn Sql, limit: usize) -> StorageResult<Vec<QuarantineEntry>> {
    db.query(
        "SELECT id, at, device_id, account_id, doc_id, reason,
                COALESCE(size, length(payload)), payload_sha, code, accepted_at,
                accepted_by, length(payload)
         FROM quarantine ORDER BY id DESC LIMIT ?1",
        args![limit as i64],
    )?
    .iter()
    .map(quarantine_row)
    .collect()
}

/// Marks held work as accepted by `by`; false when it already was.
pub fn mark_accepted(
    db: &mut dyn Sql,
    id: i64,
    by: &str,
    at: Millis,
    now: Millis,
) -> StorageResult<bool> {
    let n = db.execute(
        "UPDATE quarantine SET accepted_at = ?2, accepted_by = ?3
         WHERE id = ?1 AND accepted_at IS NULL",
        args![id, at, by],
    )?;
    if n > 0 {
        append(
            db,
            now,
            &[NewAuditEvent::new(
                by,
                "held.accepted",
                id.to_string(),
                serde_json::json!({}),
            )],
        )?;
    }
    Ok(n > 0)
}

/// Lets a device flagged over its quarantine budget sync again.
pub fn release(db: &mut dyn Sql, device: &Uuid, by: &str, now: Millis) -> StorageResult<Device> {
    let key = device.to_string();
    let n = db.execute(
        "UPDATE devices SET quarantined_bytes = 0, quarantine_full_at = NULL WHERE id = ?1",
        args![key],
    )?;
    if n == 0 {
        return Err(StorageError::NotFound(format!("device {device}")));
    }
    append(
        db,
        now,
        &[NewAuditEvent::new(
            by,
            "device.quarantine_released",
            key.clone(),
            serde_json::json!({}),
        )],
    )?;
    super::directory::device(db, device)?
        .ok_or_else(|| StorageError::NotFound(format!("device {device}")))
}

/// One quarantined payload's bytes.
pub fn payload(db: &mut dyn Sql, id: i64) -> StorageResult<Option<Vec<u8>>> {
    match db.query_opt("SELECT payload FROM quarantine WHERE id = ?1", args![id])? {
        Some(mut row) => Ok(Some(row.take_bytes(0)?)),
        None => Ok(None),
    }
}
