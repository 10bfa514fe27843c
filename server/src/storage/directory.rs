//! The directory: accounts and their grants, building assignments, dashboard sessions,
//! enrollment codes and devices, written once for both databases through [`Sql`].

use std::collections::BTreeSet;

use uuid::Uuid;

use doorstep_core::model::{Millis, Role};

use super::audit::{self, uuid_from};
use super::sql::{Lock, Row, Sql, args, lock_key};
use super::{
    Account, Assignment, Device, EnrollmentCode, Grants, NewAccount, NewAuditEvent, NewDevice,
    StorageError, StorageResult, ThrottleEntry,
};

const ACCOUNT_COLUMNS: &str =
    "id, login, display_name, grants, password_hash, created_at, disabled";

fn grants_to_text(grants: &Grants) -> StorageResult<String> {
    serde_json::to_string(grants).map_err(|e| StorageError::Invalid(e.to_string()))
}

fn account_row(r: &Row) -> StorageResult<Account> {
    let grants: String = r.get(3)?;
    Ok(Account {
        id: r.get(0)?,
        login: r.get(1)?,
        display_name: r.get(2)?,
        grants: serde_json::from_str(&grants)
            .map_err(|e| StorageError::Corrupt(format!("stored grants: {e}")))?,
        password_hash: r.get(4)?,
        created_at: r.get(5)?,
        disabled: r.get(6)?,
    })
}

const DEVICE_COLUMNS: &str = "id, account_id, label, enrolled_at, revoked_at, last_sync_at, \
     app_version, pending, rejected, syncs, bytes_up, bytes_down, manifest_digest, \
     quarantined_bytes, quarantine_full_at";

fn device_row(r: &Row) -> StorageResult<Device> {
    Ok(Device {
        id: uuid_from(&r.get::<String>(0)?)?,
        account_id: r.get(1)?,
        label: r.get(2)?,
        enrolled_at: r.get(3)?,
        revoked_at: r.get(4)?,
        last_sync_at: r.get(5)?,
        app_version: r.get(6)?,
        pending: r.get(7)?,
        rejected: r.get(8)?,
        syncs: r.get(9)?,
        bytes_up: r.get(10)?,
        bytes_down: r.get(11)?,
        manifest_digest: r.get(12)?,
        quarantined_bytes: r.get(13)?,
        quarantine_full_at: r.get(14)?,
    })
}

fn code_row(r: &Row) -> StorageResult<EnrollmentCode> {
    let hash: Vec<u8> = r.get(0)?;
    let device: Option<String> = r.get(5)?;
    Ok(EnrollmentCode {
        handle: hex::encode(&hash[..hash.len().min(6)]),
        account_id: r.get(1)?,
        created_at: r.get(2)?,
        expires_at: r.get(3)?,
        used_at: r.get(4)?,
        device_id: device.as_deref().map(uuid_from).transpose()?,
    })
}

fn rows<T>(rows: Vec<Row>, map: fn(&Row) -> StorageResult<T>) -> StorageResult<Vec<T>> {
    rows.iter().map(map).collect()
}

/// The first of `scopes` (community ids, or `"*"` for the whole server) that no enabled admin
/// who can log in (has a password) administers any more.
fn scope_without_admin(
    db: &mut dyn Sql,
    scopes: &BTreeSet<String>,
) -> StorageResult<Option<String>> {
    if scopes.is_empty() {
        return Ok(None);
    }
    let admins = rows(
        db.query(
            &format!(
                "SELECT {ACCOUNT_COLUMNS} FROM accounts
                 WHERE disabled = 0 AND password_hash IS NOT NULL AND grants LIKE '%\"admin\"%'"
            ),
            &[],
        )?,
        account_row,
    )?;
    Ok(scopes
        .iter()
        .find(|scope| !admins.iter().any(|a| a.grants.administers(scope)))
        .cloned())
}

/// The scopes `account` keeps running as an admin who can log in: the communities (or `"*"`)
/// where it holds the admin role, while it is enabled and has a password.
fn admin_scopes(account: &Account) -> BTreeSet<String> {
    if account.disabled || account.password_hash.is_none() {
        return BTreeSet::new();
    }
    account
        .grants
        .scopes()
        .filter(|(_, roles)| roles.contains(&Role::Admin))
        .map(|(scope, _)| scope.to_string())
        .collect()
}

/// Create an account; `Conflict` when the login is taken.
pub fn create_account(
    db: &mut dyn Sql,
    new: &NewAccount,
    actor: &str,
    now: Millis,
) -> StorageResult<Account> {
    let login = new.login.trim();
    if login.is_empty() || login.len() > 64 {
        return Err(StorageError::Invalid(
            "a login needs 1 to 64 characters".into(),
        ));
    }
    let account = Account {
        id: Uuid::now_v7().to_string(),
        login: login.to_string(),
        display_name: new.display_name.clone(),
        grants: new.grants.clone(),
        password_hash: new.password_hash.clone(),
        created_at: now,
        disabled: false,
    };
    let grants = grants_to_text(&account.grants)?;
    if db
        .query_opt("SELECT 1 FROM accounts WHERE login = ?1", args![login])?
        .is_some()
    {
        return Err(StorageError::Conflict(format!("login {login:?} is taken")));
    }
    db.execute(
        "INSERT INTO accounts (id, login, display_name, grants, password_hash, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        args![
            account.id,
            account.login,
            account.display_name,
            grants,
            account.password_hash,
            account.created_at,
        ],
    )
    .map_err(|e| {
        if e.is_unique_violation() {
            // Another server process took the login between the check and the insert.
            StorageError::Conflict(format!("login {login:?} is taken"))
        } else {
            e.into()
        }
    })?;
    audit::append(
        db,
        now,
        &[NewAuditEvent::new(
            actor,
            "account.created",
            format!("account:{}", account.id),
            serde_json::json!({ "grants": account.grants }),
        )],
    )?;
    Ok(account)
}

pub fn account(db: &mut dyn Sql, id: &str) -> StorageResult<Option<Account>> {
    db.query_opt(
        &format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = ?1"),
        args![id],
    )?
    .as_ref()
    .map(account_row)
    .transpose()
}

pub fn account_by_login(db: &mut dyn Sql, login: &str) -> StorageResult<Option<Account>> {
    db.query_opt(
        &format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE login = ?1"),
        args![login.trim()],
    )?
    .as_ref()
    .map(account_row)
    .transpose()
}

pub fn accounts(db: &mut dyn Sql) -> StorageResult<Vec<Account>> {
    rows(
        db.query(
            &format!("SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY login"),
            &[],
        )?,
        account_row,
    )
}

/// The key of the PostgreSQL advisory lock that serialises changes to accounts' grants and
/// disabled flags across connections and server processes (see [`update_account`]).
const ADMIN_LOCK: i64 = 0x00d0_0257_ad01_0000;

/// Replace the grants and the disabled flag; `LastAdmin` when a scope would be left without
/// an admin.
pub fn update_account(
    db: &mut dyn Sql,
    id: &str,
    grants: &Grants,
    disabled: bool,
    actor: &str,
    now: Millis,
) -> StorageResult<Account> {
    let grants_text = grants_to_text(grants)?;
    // On PostgreSQL writes are READ COMMITTED: two admins demoting each other at once would
    // each check against the other's committed (still admin) row and both succeed, leaving no
    // admin. Held until the transaction ends, the lock makes the second wait for the first's
    // commit, and its check then sees it. (SQLite has a single writer already.)
    db.lock(Lock::Accounts, ADMIN_LOCK)?;
    let before = account(db, id)?.ok_or_else(|| StorageError::NotFound(format!("account {id}")))?;
    db.execute(
        "UPDATE accounts SET grants = ?2, disabled = ?3 WHERE id = ?1",
        args![id, grants_text, disabled],
    )?;
    // Inside the same transaction, so two admins demoting each other at once cannot both
    // succeed: every community this account ran as an admin (and the server, for a 街道-wide
    // admin) must keep somebody to administer it. On PostgreSQL the advisory lock taken above
    // serialises these checks.
    if scope_without_admin(db, &admin_scopes(&before))?.is_some() {
        return Err(StorageError::LastAdmin);
    }
    audit::append(
        db,
        now,
        &[NewAuditEvent::new(
            actor,
            "account.updated",
            format!("account:{id}"),
            serde_json::json!({ "grants": grants, "disabled": disabled }),
        )],
    )?;
    account(db, id)?.ok_or_else(|| StorageError::NotFound(format!("account {id}")))
}

/// Set a new password hash; every session opened with the old one ends.
pub fn set_password(
    db: &mut dyn Sql,
    id: &str,
    password_hash: &str,
    actor: &str,
    now: Millis,
) -> StorageResult<()> {
    let changed = db.execute(
        "UPDATE accounts SET password_hash = ?2 WHERE id = ?1",
        args![id, password_hash],
    )?;
    if changed == 0 {
        return Err(StorageError::NotFound(format!("account {id}")));
    }
    db.execute("DELETE FROM sessions WHERE account_id = ?1", args![id])?;
    audit::append(
        db,
        now,
        &[NewAuditEvent::new(
            actor,
            "account.password_set",
            format!("account:{id}"),
            serde_json::json!({}),
        )],
    )
}

/// Assign a building; idempotent.
pub fn assign(db: &mut dyn Sql, a: &Assignment, actor: &str, now: Millis) -> StorageResult<()> {
    if account(db, &a.account_id)?.is_none() {
        return Err(StorageError::NotFound(format!("account {}", a.account_id)));
    }
    let inserted = db.execute(
        "INSERT INTO assignments (account_id, community, building) VALUES (?1, ?2, ?3)
         ON CONFLICT DO NOTHING",
        args![a.account_id, a.community, a.building],
    )?;
    if inserted > 0 {
        audit::append(
            db,
            now,
            &[NewAuditEvent::new(
                actor,
                "assignment.added",
                format!("account:{}", a.account_id),
                serde_json::json!({ "community": a.community, "building": a.building }),
            )],
        )?;
    }
    Ok(())
}

/// Remove an assignment; `NotFound` when absent.
pub fn unassign(db: &mut dyn Sql, a: &Assignment, actor: &str, now: Millis) -> StorageResult<()> {
    let removed = db.execute(
        "DELETE FROM assignments WHERE account_id = ?1 AND community = ?2 AND building = ?3",
        args![a.account_id, a.community, a.building],
    )?;
    if removed == 0 {
        return Err(StorageError::NotFound("assignment".into()));
    }
    audit::append(
        db,
        now,
        &[NewAuditEvent::new(
            actor,
            "assignment.removed",
            format!("account:{}", a.account_id),
            serde_json::json!({ "community": a.community, "building": a.building }),
        )],
    )
}

/// Assignments of one account, or of everyone.
pub fn assignments(db: &mut dyn Sql, account_id: Option<&str>) -> StorageResult<Vec<Assignment>> {
    db.query(
        "SELECT account_id, community, building FROM assignments
         WHERE CAST(?1 AS TEXT) IS NULL OR account_id = ?1
         ORDER BY community, building, account_id",
        args![account_id],
    )?
    .iter()
    .map(|r| {
        Ok(Assignment {
            account_id: r.get(0)?,
            community: r.get(1)?,
            building: r.get(2)?,
        })
    })
    .collect()
}

pub fn create_session(
    db: &mut dyn Sql,
    token_hash: &[u8],
    account_id: &str,
    expires_at: Millis,
    now: Millis,
) -> StorageResult<()> {
    // Expired sessions are swept here, where a write happens anyway.
    db.execute("DELETE FROM sessions WHERE expires_at <= ?1", args![now])?;
    db.execute(
        "INSERT INTO sessions (token_hash, account_id, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4)",
        args![token_hash, account_id, now, expires_at],
    )?;
    Ok(())
}

/// The account behind a live session (not expired, account not disabled).
pub fn session_account(
    db: &mut dyn Sql,
    token_hash: &[u8],
    now: Millis,
) -> StorageResult<Option<Account>> {
    db.query_opt(
        "SELECT a.id, a.login, a.display_name, a.grants, a.password_hash, a.created_at,
                a.disabled
         FROM sessions s JOIN accounts a ON a.id = s.account_id
         WHERE s.token_hash = ?1 AND s.expires_at > ?2 AND a.disabled = 0",
        args![token_hash, now],
    )?
    .as_ref()
    .map(account_row)
    .transpose()
}

pub fn delete_session(db: &mut dyn Sql, token_hash: &[u8]) -> StorageResult<()> {
    db.execute(
        "DELETE FROM sessions WHERE token_hash = ?1",
        args![token_hash],
    )?;
    Ok(())
}

/// Store a new one-time code's hash.
pub fn create_enrollment_code(
    db: &mut dyn Sql,
    code_hash: &[u8],
    account_id: &str,
    expires_at: Millis,
    actor: &str,
    now: Millis,
) -> StorageResult<EnrollmentCode> {
    if account(db, account_id)?.is_none() {
        return Err(StorageError::NotFound(format!("account {account_id}")));
    }
    db.execute(
        "INSERT INTO enrollment_codes (code_hash, account_id, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4)",
        args![code_hash, account_id, now, expires_at],
    )?;
    audit::append(
        db,
        now,
        &[NewAuditEvent::new(
            actor,
            "enrollment.code_created",
            format!("account:{account_id}"),
            serde_json::json!({ "expires_at": expires_at }),
        )],
    )?;
    Ok(EnrollmentCode {
        handle: hex::encode(&code_hash[..code_hash.len().min(6)]),
        account_id: account_id.to_string(),
        created_at: now,
        expires_at,
        used_at: None,
        device_id: None,
    })
}

pub fn enrollment_codes(
    db: &mut dyn Sql,
    account_id: Option<&str>,
) -> StorageResult<Vec<EnrollmentCode>> {
    rows(
        db.query(
            "SELECT code_hash, account_id, created_at, expires_at, used_at, device_id
             FROM enrollment_codes WHERE CAST(?1 AS TEXT) IS NULL OR account_id = ?1
             ORDER BY created_at DESC, code_hash",
            args![account_id],
        )?,
        code_row,
    )
}

/// Use a code and create the device, in the caller's transaction.
pub fn redeem_enrollment_code(
    db: &mut dyn Sql,
    code_hash: &[u8],
    now: Millis,
    device: &NewDevice,
) -> StorageResult<Device> {
    // `FOR UPDATE` would be PostgreSQL-only; the conditional UPDATE below is what makes a code
    // usable once, on both databases and across processes.
    let code = db.query_opt(
        "SELECT account_id, expires_at, used_at FROM enrollment_codes WHERE code_hash = ?1",
        args![code_hash],
    )?;
    let Some(code) = code else {
        return Err(StorageError::NotFound("enrollment code".into()));
    };
    let (account_id, expires_at, used_at): (String, Millis, Option<Millis>) =
        (code.get(0)?, code.get(1)?, code.get(2)?);
    if used_at.is_some() {
        return Err(StorageError::Conflict(
            "this enrollment code was already used".into(),
        ));
    }
    if expires_at <= now {
        return Err(StorageError::Conflict(
            "this enrollment code expired".into(),
        ));
    }
    match account(db, &account_id)? {
        Some(account) if !account.disabled => {}
        _ => {
            return Err(StorageError::Conflict(
                "the code's account is disabled".into(),
            ));
        }
    }
    let id = device.id.to_string();
    let claimed = db.execute(
        "UPDATE enrollment_codes SET used_at = ?2, device_id = ?3
         WHERE code_hash = ?1 AND used_at IS NULL",
        args![code_hash, now, id],
    )?;
    if claimed == 0 {
        return Err(StorageError::Conflict(
            "this enrollment code was already used".into(),
        ));
    }
    db.execute(
        "INSERT INTO devices (id, account_id, label, token_hash, enrolled_at, app_version)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        args![
            id,
            account_id,
            device.label,
            device.token_hash,
            now,
            device.app_version
        ],
    )?;
    audit::append(
        db,
        now,
        &[NewAuditEvent::new(
            format!("account:{account_id}"),
            "device.enrolled",
            format!("device:{id}"),
            serde_json::json!({ "app_version": device.app_version }),
        )],
    )?;
    self::device(db, &device.id)?.ok_or_else(|| StorageError::NotFound(format!("device {id}")))
}

pub fn device(db: &mut dyn Sql, id: &Uuid) -> StorageResult<Option<Device>> {
    db.query_opt(
        &format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE id = ?1"),
        args![id.to_string()],
    )?
    .as_ref()
    .map(device_row)
    .transpose()
}

pub fn device_by_token(db: &mut dyn Sql, token_hash: &[u8]) -> StorageResult<Option<Device>> {
    db.query_opt(
        &format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE token_hash = ?1"),
        args![token_hash],
    )?
    .as_ref()
    .map(device_row)
    .transpose()
}

pub fn devices(db: &mut dyn Sql) -> StorageResult<Vec<Device>> {
    rows(
        db.query(
            &format!("SELECT {DEVICE_COLUMNS} FROM devices ORDER BY enrolled_at, id"),
            &[],
        )?,
        device_row,
    )
}

/// Revoke a device; its token stops working at once.
pub fn revoke_device(
    db: &mut dyn Sql,
    id: &Uuid,
    actor: &str,
    now: Millis,
) -> StorageResult<Device> {
    let changed = db.execute(
        "UPDATE devices SET revoked_at = COALESCE(revoked_at, ?2) WHERE id = ?1",
        args![id.to_string(), now],
    )?;
    if changed == 0 {
        return Err(StorageError::NotFound(format!("device {id}")));
    }
    audit::append(
        db,
        now,
        &[NewAuditEvent::new(
            actor,
            "device.revoked",
            format!("device:{id}"),
            serde_json::json!({}),
        )],
    )?;
    device(db, id)?.ok_or_else(|| StorageError::NotFound(format!("device {id}")))
}

/// The throttling table's read-modify-write (see `Storage::throttle`).
pub fn throttle(
    db: &mut dyn Sql,
    keys: &[String],
    forget_before: Millis,
    update: &mut dyn FnMut(&mut std::collections::BTreeMap<String, ThrottleEntry>),
) -> StorageResult<()> {
    let mut sorted: Vec<&String> = keys.iter().collect();
    sorted.sort();
    sorted.dedup();
    // Two processes counting a failure on one key at once would both read the old count.
    for key in &sorted {
        db.lock(Lock::Throttle, lock_key(&format!("throttle:{key}")))?;
    }
    db.execute(
        "DELETE FROM throttle WHERE last_failure < ?1",
        args![forget_before],
    )?;
    let mut entries = std::collections::BTreeMap::new();
    for key in &sorted {
        if let Some(row) = db.query_opt(
            "SELECT failures, last_failure, locked_until FROM throttle WHERE key = ?1",
            args![key],
        )? {
            entries.insert(
                (*key).clone(),
                ThrottleEntry {
                    failures: row.get(0)?,
                    last_failure: row.get(1)?,
                    locked_until: row.get(2)?,
                },
            );
        }
    }
    let before = entries.clone();
    update(&mut entries);
    for key in &sorted {
        match entries.get(*key) {
            Some(entry) if before.get(*key) != Some(entry) => {
                db.execute(
                    "INSERT INTO throttle (key, failures, last_failure, locked_until)
                     VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (key) DO UPDATE SET failures = excluded.failures,
                         last_failure = excluded.last_failure,
                         locked_until = excluded.locked_until",
                    args![key, entry.failures, entry.last_failure, entry.locked_until],
                )?;
            }
            Some(_) => {}
            None if before.contains_key(*key) => {
                db.execute("DELETE FROM throttle WHERE key = ?1", args![key])?;
            }
            None => {}
        }
    }
    Ok(())
}
