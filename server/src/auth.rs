//! Who is calling: password hashing, session and device tokens, enrollment codes, and the axum
//! extractors that turn a bearer token into an [`AdminSession`] or a [`DeviceAuth`].
//!
//! Secrets (passwords, session tokens, device tokens, enrollment codes) are never stored: only
//! an argon2 hash (passwords) or a SHA-256 hash (random tokens, which are long enough that a
//! fast hash is safe). Tokens are compared by looking up their hash, so timing reveals nothing.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use doorstep_core::model::{Millis, Role};
use doorstep_core::protocol::{AccountInfo, BuildingRef, EnrollRequest, EnrollResponse};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::storage::{Account, Device, NewAccount, NewDevice, Storage, StorageError};

/// The alphabet of enrollment codes: Crockford's base32, no I, L, O or U to misread.
const CODE_ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Characters in an enrollment code (60 bits), shown as three groups of four.
const CODE_LEN: usize = 12;

/// `n` random bytes from the operating system (through UUIDv4, which draws from `getrandom`).
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n + 16);
    while out.len() < n {
        // Each v4 UUID carries 122 random bits; the six fixed version/variant bits are
        // overwritten by mixing in a second UUID so every output byte is fully random.
        let a = Uuid::new_v4().into_bytes();
        let b = Uuid::new_v4().into_bytes();
        out.extend(a.iter().zip(b.iter().rev()).map(|(x, y)| x ^ y));
    }
    out.truncate(n);
    out
}

/// SHA-256 of a token or code: what the database keeps instead of the secret.
pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// A new random bearer token with a readable prefix (`ds_` sessions, `dt_` devices).
pub fn new_token(prefix: &str) -> String {
    format!("{prefix}{}", hex::encode(random_bytes(32)))
}

/// Hash a password with argon2id (default parameters) and a random salt.
pub fn hash_password(password: &str) -> Result<String, AppError> {
    if password.chars().count() < 8 {
        return Err(AppError::invalid("a password needs at least 8 characters"));
    }
    let salt = SaltString::encode_b64(&random_bytes(16)).map_err(AppError::internal)?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(AppError::internal)
}

/// True when `password` matches the stored PHC string.
pub fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A new enrollment code, formatted `XXXX-XXXX-XXXX`.
pub fn new_enrollment_code() -> String {
    let raw: String = random_bytes(CODE_LEN)
        .iter()
        .map(|b| CODE_ALPHABET[usize::from(b & 31)] as char)
        .collect();
    format!("{}-{}-{}", &raw[0..4], &raw[4..8], &raw[8..12])
}

/// The canonical form of a typed code: upper case, no separators, look-alikes folded.
pub fn normalize_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            other => other,
        })
        .collect()
}

/// Create a one-time enrollment code for `account_id`, valid for `ttl_ms`; returns the code
/// (shown once on the dashboard or printed by `demo`) and its record.
pub fn issue_enrollment_code(
    storage: &dyn Storage,
    account_id: &str,
    ttl_ms: Millis,
    actor: &str,
) -> Result<(String, crate::storage::EnrollmentCode), StorageError> {
    let code = new_enrollment_code();
    let record = storage.create_enrollment_code(
        &token_hash(&normalize_code(&code)),
        account_id,
        storage.now().saturating_add(ttl_ms),
        actor,
    )?;
    Ok((code, record))
}

/// Create an account with a password (admins, counting officers, dispatchers).
pub fn create_password_account(
    storage: &dyn Storage,
    login: &str,
    display_name: &str,
    roles: Vec<Role>,
    password: &str,
    actor: &str,
) -> Result<Account, AppError> {
    let hash = hash_password(password)?;
    Ok(storage.create_account(
        &NewAccount {
            login: login.to_string(),
            display_name: display_name.to_string(),
            roles,
            password_hash: Some(hash),
        },
        actor,
    )?)
}

/// The bearer token of a request, if it has one.
fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))?;
    let token = token.trim();
    (!token.is_empty() && token.len() <= 256).then_some(token)
}

/// A logged-in dashboard user. Extracting it answers 401 without a live session.
#[derive(Debug, Clone)]
pub struct AdminSession {
    pub account: Account,
}

impl AdminSession {
    /// The audit `actor` string for this user.
    pub fn actor(&self) -> String {
        format!("account:{}", self.account.id)
    }

    /// 403 unless the user has one of `roles`.
    pub fn require_any(&self, roles: &[Role]) -> AppResult<()> {
        if roles.iter().any(|r| self.account.is(*r)) {
            Ok(())
        } else {
            Err(AppError::forbidden("your role may not do this"))
        }
    }

    /// 403 unless the user is an admin.
    pub fn require_admin(&self) -> AppResult<()> {
        self.require_any(&[Role::Admin])
    }
}

impl FromRequestParts<AppState> for AdminSession {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> AppResult<Self> {
        let token = bearer(parts).ok_or_else(|| {
            AppError::unauthorized("missing_token", "log in first (Authorization: Bearer …)")
        })?;
        let hash = token_hash(token);
        let st = state.clone();
        let account =
            tokio::task::spawn_blocking(move || st.storage().session_account(&hash, st.now()))
                .await??;
        match account {
            Some(account) => Ok(AdminSession { account }),
            None => Err(AppError::unauthorized(
                "invalid_token",
                "the session is unknown or expired; log in again",
            )),
        }
    }
}

/// An enrolled, unrevoked device. Extracting it answers 401 otherwise.
#[derive(Debug, Clone)]
pub struct DeviceAuth {
    pub device: Device,
}

impl FromRequestParts<AppState> for DeviceAuth {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> AppResult<Self> {
        let token = bearer(parts).ok_or_else(|| {
            AppError::unauthorized("missing_token", "a device token is required; enroll first")
        })?;
        let hash = token_hash(token);
        let st = state.clone();
        let device =
            tokio::task::spawn_blocking(move || st.storage().device_by_token(&hash)).await??;
        match device {
            Some(device) if device.revoked_at.is_none() => Ok(DeviceAuth { device }),
            Some(_) => Err(AppError::unauthorized(
                "device_revoked",
                "this device was revoked; enroll it again with a new code",
            )),
            None => Err(AppError::unauthorized(
                "invalid_token",
                "unknown device token; enroll first",
            )),
        }
    }
}

/// The body of `POST /api/v1/auth/login`.
#[derive(Debug, Clone, Deserialize)]
pub struct LoginRequest {
    pub login: String,
    pub password: String,
}

/// The reply of a successful login.
#[derive(Debug, Clone, Serialize)]
pub struct LoginResponse {
    pub token: String,
    pub expires_at: Millis,
    pub account: Account,
}

/// `POST /api/v1/auth/login`: password → bearer session token for the admin API.
pub async fn login(
    State(state): State<AppState>,
    body: crate::json::JsonBody<LoginRequest>,
) -> AppResult<Json<LoginResponse>> {
    let request = body.0;
    let st = state.clone();
    let result =
        tokio::task::spawn_blocking(move || password_login(&st, &request.login, &request.password))
            .await??;
    Ok(Json(result))
}

/// Check a login and password and open a session: the one implementation behind the JSON
/// login and the dashboard's login form. Blocking (argon2); call it off the async runtime.
pub fn password_login(st: &AppState, login: &str, password: &str) -> AppResult<LoginResponse> {
    {
        let account = st.storage().account_by_login(login)?;
        // Verify against a fixed hash when the login is unknown, so a wrong login and a wrong
        // password take the same time.
        let phc = account
            .as_ref()
            .and_then(|a| a.password_hash.clone())
            .unwrap_or_else(|| st.dummy_password_hash().to_string());
        let ok = verify_password(password, &phc);
        let account = match account {
            Some(account) if ok && !account.disabled && account.password_hash.is_some() => account,
            _ => {
                st.metrics().login_failed();
                return Err(AppError::unauthorized(
                    "invalid_credentials",
                    "wrong login or password",
                ));
            }
        };
        let token = new_token("ds_");
        let expires_at = st.now().saturating_add(st.config().session_ttl_ms);
        st.storage()
            .create_session(&token_hash(&token), &account.id, expires_at)?;
        tracing::info!(account = %account.id, "login");
        Ok(LoginResponse {
            token,
            expires_at,
            account,
        })
    }
}

/// `POST /api/v1/auth/logout`: end the caller's session.
pub async fn logout(
    State(state): State<AppState>,
    parts: axum::http::HeaderMap,
) -> AppResult<axum::http::StatusCode> {
    let token = parts
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| AppError::unauthorized("missing_token", "no session to end"))?;
    let hash = token_hash(token);
    let st = state.clone();
    tokio::task::spawn_blocking(move || st.storage().delete_session(&hash)).await??;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// `GET /api/v1/auth/me`: who the session belongs to.
pub async fn me(session: AdminSession) -> Json<Account> {
    Json(session.account)
}

/// `POST /api/v1/enroll`: a one-time code → a device id and a device token.
pub async fn enroll(
    State(state): State<AppState>,
    body: crate::json::JsonBody<EnrollRequest>,
) -> AppResult<Json<EnrollResponse>> {
    let request = body.0;
    if request.label.chars().count() > 128 || request.app_version.chars().count() > 64 {
        return Err(AppError::invalid("label or app_version too long"));
    }
    let code = normalize_code(&request.code);
    if code.len() != CODE_LEN {
        state.metrics().enroll_failed();
        return Err(AppError::unauthorized(
            "invalid_enrollment_code",
            "the enrollment code is unknown, used or expired",
        ));
    }
    let token = new_token("dt_");
    let new_device = NewDevice {
        id: Uuid::new_v4(),
        label: request.label,
        app_version: request.app_version,
        token_hash: token_hash(&token),
    };
    let st = state.clone();
    let now = state.now();
    let device = tokio::task::spawn_blocking(move || {
        st.storage()
            .redeem_enrollment_code(&token_hash(&code), now, &new_device)
    })
    .await?;
    let device = match device {
        Ok(device) => device,
        Err(StorageError::NotFound(_)) | Err(StorageError::Conflict(_)) => {
            state.metrics().enroll_failed();
            return Err(AppError::unauthorized(
                "invalid_enrollment_code",
                "the enrollment code is unknown, used or expired",
            ));
        }
        Err(other) => return Err(other.into()),
    };
    tracing::info!(device = %device.id, account = %device.account_id, "device enrolled");
    let st = state.clone();
    let account_id = device.account_id.clone();
    let (account, assignments) = tokio::task::spawn_blocking(move || {
        Ok::<_, StorageError>((
            st.storage().account(&account_id)?,
            st.storage().assignments(Some(&account_id))?,
        ))
    })
    .await??;
    let roles = account.map(|a| a.roles).unwrap_or_default();
    Ok(Json(EnrollResponse {
        device_id: device.id,
        device_token: token,
        account_id: device.account_id.clone(),
        account: AccountInfo {
            id: device.account_id,
            roles,
            assignments: assignments
                .into_iter()
                .map(|a| BuildingRef {
                    community: a.community,
                    building: a.building,
                })
                .collect(),
        },
        server_time: now,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_normalize_and_look_alikes_fold() {
        let code = new_enrollment_code();
        assert_eq!(code.len(), 14);
        assert_eq!(normalize_code(&code).len(), CODE_LEN);
        assert_eq!(
            normalize_code("abcd-ef0o-il12"),
            "ABCDEF00I112".replace('I', "1")
        );
    }

    #[test]
    fn passwords_verify() {
        let hash = hash_password("correct horse").unwrap();
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("wrong horse!", &hash));
        assert!(!verify_password("x", "not a phc string"));
        assert!(hash_password("short").is_err());
    }

    #[test]
    fn random_bytes_are_not_repeated() {
        assert_ne!(random_bytes(32), random_bytes(32));
        assert_eq!(random_bytes(5).len(), 5);
    }
}
