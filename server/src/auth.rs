//! Who is calling: password hashing, session and device tokens, enrollment codes, and the axum
//! extractors that turn a bearer token into an [`AdminSession`] or a [`DeviceAuth`].
//!
//! Secrets (passwords, session tokens, device tokens, enrollment codes) are never stored: only
//! an argon2 hash (passwords) or a SHA-256 hash (random tokens, which are long enough that a
//! fast hash is safe). Tokens are compared by looking up their hash, so timing reveals nothing.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, SaltString};
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
use crate::guard::{ClientAddr, Key};
use crate::state::AppState;
use crate::storage::{
    Account, Device, Grants, NewAccount, NewAuditEvent, NewDevice, Storage, StorageError,
};

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

/// The shortest and longest passwords accepted when one is set.
pub const PASSWORD_CHARS: std::ops::RangeInclusive<usize> = 10..=128;

/// Common passwords of 10 or more characters, lower case (see the file's header).
static COMMON_PASSWORDS: &str = include_str!("../data/common-passwords.txt");

/// The password policy, checked wherever a password is set (account creation, change, reset,
/// the demo's admin): 10–128 characters, not blank, not one character repeated, not containing
/// the login, not a common password. Refused with `weak_password` and the reason.
pub fn check_password(login: &str, password: &str) -> AppResult<()> {
    let weak = |why: &str| Err(AppError::invalid(why.to_string()).with_code("weak_password"));
    let chars = password.chars().count();
    if !PASSWORD_CHARS.contains(&chars) {
        return weak("a password has 10 to 128 characters");
    }
    if password.trim().is_empty() {
        return weak("a password cannot be only spaces");
    }
    let mut distinct = password.chars().collect::<Vec<_>>();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < 3 {
        return weak("a password needs more than one or two different characters");
    }
    let lower = password.to_lowercase();
    let login = login.trim().to_lowercase();
    if !login.is_empty() && lower.contains(&login) {
        return weak("a password cannot contain the login");
    }
    let common = COMMON_PASSWORDS
        .lines()
        .filter(|l| !l.starts_with('#'))
        .any(|l| l == lower.trim());
    if common {
        return weak("this password is on the list of common passwords");
    }
    Ok(())
}

/// Hash a password with argon2id (default parameters, ~19 MiB of working memory: callers run
/// it through [`crate::guard::HashLimiter::run`]) and a random salt. Only the length is
/// checked here; [`check_password`] is the policy.
pub fn hash_password(password: &str) -> Result<String, AppError> {
    if !PASSWORD_CHARS.contains(&password.chars().count()) {
        return Err(
            AppError::invalid("a password has 10 to 128 characters").with_code("weak_password")
        );
    }
    let salt = SaltString::encode_b64(&random_bytes(16)).map_err(AppError::internal)?;
    let params = argon2::Params::default();
    let argon = Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        params.clone(),
    );
    let mut salt_bytes = [0u8; 64];
    let salt_raw = salt
        .as_salt()
        .decode_b64(&mut salt_bytes)
        .map_err(AppError::internal)?;
    let mut out = [0u8; argon2::Params::DEFAULT_OUTPUT_LEN];
    with_blocks(params.block_count(), |blocks| {
        argon.hash_password_into_with_memory(password.as_bytes(), salt_raw, &mut out, blocks)
    })
    .map_err(AppError::internal)?;
    let phc = PasswordHash {
        algorithm: argon2::Algorithm::Argon2id.ident(),
        version: Some(argon2::Version::V0x13.into()),
        params: argon2::password_hash::ParamsString::try_from(&params)
            .map_err(AppError::internal)?,
        salt: Some(salt.as_salt()),
        hash: Some(argon2::password_hash::Output::new(&out).map_err(AppError::internal)?),
    };
    Ok(phc.to_string())
}

/// The most argon2 working memory a stored hash may ask for (64 MiB): a hash tampered with in
/// the database cannot make a login allocate more.
const MAX_ARGON2_BLOCKS: usize = 64 * 1024;

/// True when `password` matches the stored PHC string (argon2, any variant and parameters up
/// to [`MAX_ARGON2_BLOCKS`]), compared in constant time.
pub fn verify_password(password: &str, phc: &str) -> bool {
    let verify = || -> Option<bool> {
        let parsed = PasswordHash::new(phc).ok()?;
        let algorithm = argon2::Algorithm::try_from(parsed.algorithm).ok()?;
        let version = argon2::Version::try_from(parsed.version.unwrap_or(0x13)).ok()?;
        let params = argon2::Params::try_from(&parsed).ok()?;
        let expected = parsed.hash?;
        if params.block_count() > MAX_ARGON2_BLOCKS {
            return None;
        }
        let mut salt = [0u8; 64];
        let salt = parsed.salt?.decode_b64(&mut salt).ok()?;
        let mut out = vec![0u8; expected.len()];
        let argon = Argon2::new(algorithm, version, params.clone());
        with_blocks(params.block_count(), |blocks| {
            argon.hash_password_into_with_memory(password.as_bytes(), salt, &mut out, blocks)
        })
        .ok()?;
        // `Output`'s equality is constant-time.
        Some(argon2::password_hash::Output::new(&out).ok()? == expected)
    };
    verify().unwrap_or(false)
}

thread_local! {
    /// argon2's working memory, kept per thread and reused: allocating ~19 MiB per hash made
    /// the C allocator raise its mmap threshold and keep every freed block (a burst of 200
    /// logins left ~850 MiB resident; see docs/security.md). Hashes run on the few threads of
    /// [`crate::guard::HashLimiter`], so this is bounded by their number.
    static ARGON2_BLOCKS: std::cell::RefCell<Vec<argon2::Block>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

fn with_blocks<T>(count: usize, f: impl FnOnce(&mut [argon2::Block]) -> T) -> T {
    ARGON2_BLOCKS.with(|blocks| {
        let mut blocks = blocks.borrow_mut();
        if blocks.len() < count {
            blocks.resize(count, argon2::Block::default());
        }
        f(&mut blocks[..count])
    })
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
    grants: Grants,
    password: &str,
    actor: &str,
) -> Result<Account, AppError> {
    check_password(login, password)?;
    let hash = hash_password(password)?;
    Ok(storage.create_account(
        &NewAccount {
            login: login.to_string(),
            display_name: display_name.to_string(),
            grants,
            password_hash: Some(hash),
        },
        actor,
    )?)
}

/// Set `account`'s password (the policy applies) and end all its sessions. Blocking (argon2):
/// run it through [`crate::guard::HashLimiter::run`].
pub fn set_password(
    storage: &dyn Storage,
    account: &Account,
    password: &str,
    actor: &str,
) -> AppResult<()> {
    check_password(&account.login, password)?;
    let hash = hash_password(password)?;
    storage.set_password(&account.id, &hash, actor)?;
    Ok(())
}

/// The bearer token of a request, if it has one.
fn bearer(parts: &Parts) -> Option<&str> {
    bearer_of(&parts.headers)
}

/// The bearer token in `headers` (`Bearer` in any case), if there is one.
pub fn bearer_of(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
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

    /// 403 unless the user has one of `roles` in some community: the gate of an endpoint,
    /// whose rows are then those of [`Self::can`]'s communities.
    pub fn require_any(&self, roles: &[Role]) -> AppResult<()> {
        if roles.iter().any(|r| self.account.is(*r)) {
            Ok(())
        } else {
            Err(AppError::forbidden("your role may not do this"))
        }
    }

    /// 403 unless the user is an admin of some community.
    pub fn require_admin(&self) -> AppResult<()> {
        self.require_any(&[Role::Admin])
    }

    /// Whether the user holds one of `roles` in `community`.
    pub fn can(&self, roles: &[Role], community: &str) -> bool {
        self.account.grants.has_any_in(roles, community)
    }

    /// Whether the user holds any role in `community`.
    pub fn works_in(&self, community: &str) -> bool {
        self.account.grants.communities().includes(community)
    }

    /// Unless the user holds one of `roles` in `community`: 404 when they hold no role there
    /// (another community's things answer exactly as things that do not exist, so that not
    /// even their existence shows), 403 when they work there in another role.
    pub fn require_in(&self, roles: &[Role], community: &str) -> AppResult<()> {
        if self.can(roles, community) {
            Ok(())
        } else if self.works_in(community) {
            Err(AppError::forbidden(format!(
                "your role in community {community} may not do this"
            )))
        } else {
            Err(AppError::not_found(format!("no community {community}")))
        }
    }

    /// Whether the user may see and manage `account`: their own, or one whose every community
    /// (and the whole server, for a 街道-wide account) they administer. What they may give it
    /// is checked separately: only roles in communities they administer.
    pub fn sees_account(&self, account: &Account) -> bool {
        account.id == self.account.id || self.account.grants.administers_all(&account.grants)
    }

    /// 404 unless the user may see `account` (see [`Self::sees_account`]).
    pub fn require_account(&self, account: &Account) -> AppResult<()> {
        if self.sees_account(account) {
            Ok(())
        } else {
            Err(AppError::not_found(format!("no account {}", account.id)))
        }
    }

    /// Whether the user holds a role across every community of the server (a 街道's staff).
    pub fn street_wide(&self) -> bool {
        self.account.grants.street_wide()
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
    ClientAddr(addr): ClientAddr,
    body: crate::json::JsonBody<LoginRequest>,
) -> AppResult<Json<LoginResponse>> {
    let request = body.0;
    Ok(Json(
        login_guarded(&state, addr, request.login, request.password).await?,
    ))
}

/// A password login as every entry point does it (the JSON API and the dashboard's form):
/// refused with `429 too_many_attempts` while the login or the address is throttled, hashed
/// under the [`crate::guard::HashLimiter`] (`503 busy` when it stays full), counted as a
/// failure or a success afterwards.
pub async fn login_guarded(
    state: &AppState,
    addr: std::net::IpAddr,
    login: String,
    password: String,
) -> AppResult<LoginResponse> {
    let keys = [
        Key::Login(login.trim().to_lowercase()),
        Key::LoginFrom(addr),
    ];
    state.throttle().attempt(&keys, state.now()).await?;
    let st = state.clone();
    let result = state
        .hashing()
        .run(move || password_login(&st, &login, &password))
        .await?;
    match &result {
        Ok(_) => state.throttle().succeeded(&keys, state.now()).await?,
        Err(e) if e.code == "invalid_credentials" => {
            state.throttle().failed(&keys, state.now()).await?
        }
        Err(_) => {}
    }
    result
}

/// Check a login and password and open a session. Blocking (argon2): call it off the async
/// runtime, on a hashing thread — [`login_guarded`] does both. A wrong password for an
/// existing account is audited (`auth.login_failed`, with the account's id, never the typed
/// password or the address).
pub fn password_login(st: &AppState, login: &str, password: &str) -> AppResult<LoginResponse> {
    let refused = || AppError::unauthorized("invalid_credentials", "wrong login or password");
    if password.len() > 4 * *PASSWORD_CHARS.end() || login.len() > 256 {
        // Nothing that long was ever accepted as a password or a login: no need to hash it.
        st.metrics().login_failed();
        return Err(refused());
    }
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
        known => {
            st.metrics().login_failed();
            if let Some(account) = known {
                st.storage().append_audit(&[NewAuditEvent::new(
                    format!("account:{}", account.id),
                    "auth.login_failed",
                    format!("account:{}", account.id),
                    serde_json::json!({
                        "reason": if account.disabled { "disabled" } else { "wrong_password" },
                    }),
                )])?;
            }
            return Err(refused());
        }
    };
    tracing::info!(account = %account.id, "login");
    open_session(st, account)
}

/// The body of `POST /api/v1/auth/password`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
}

/// `POST /api/v1/auth/password`: the caller changes their own password (the current one is
/// checked and throttled like a login). Every session of the account ends, and the reply is a
/// fresh session, so the caller stays logged in where they are and nowhere else.
pub async fn change_password(
    State(state): State<AppState>,
    session: AdminSession,
    ClientAddr(addr): ClientAddr,
    body: crate::json::JsonBody<PasswordChange>,
) -> AppResult<Json<LoginResponse>> {
    Ok(Json(
        change_password_as(&state, &session, addr, body.0).await?,
    ))
}

/// The one implementation behind the API's and the dashboard's password change.
pub async fn change_password_as(
    state: &AppState,
    session: &AdminSession,
    addr: std::net::IpAddr,
    change: PasswordChange,
) -> AppResult<LoginResponse> {
    check_password(&session.account.login, &change.new_password)?;
    let login = session.account.login.clone();
    // The current password is checked exactly as a login is (throttled, bounded, audited).
    login_guarded(state, addr, login.clone(), change.current_password).await?;
    let st = state.clone();
    let account = session.account.clone();
    let actor = session.actor();
    state
        .hashing()
        .run(move || {
            set_password(st.storage(), &account, &change.new_password, &actor)?;
            open_session(&st, account)
        })
        .await?
}

/// A new dashboard session for `account`.
fn open_session(st: &AppState, account: Account) -> AppResult<LoginResponse> {
    let token = new_token("ds_");
    let expires_at = st.now().saturating_add(st.config().session_ttl_ms);
    st.storage()
        .create_session(&token_hash(&token), &account.id, expires_at)?;
    Ok(LoginResponse {
        token,
        expires_at,
        account,
    })
}

/// `POST /api/v1/auth/logout`: end the caller's session.
pub async fn logout(
    State(state): State<AppState>,
    parts: axum::http::HeaderMap,
) -> AppResult<axum::http::StatusCode> {
    let token = bearer_of(&parts)
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
    ClientAddr(addr): ClientAddr,
    body: crate::json::JsonBody<EnrollRequest>,
) -> AppResult<Json<EnrollResponse>> {
    let request = body.0;
    let keys = [Key::EnrollFrom(addr)];
    state.throttle().attempt(&keys, state.now()).await?;
    if request.label.chars().count() > 128 || request.app_version.chars().count() > 64 {
        return Err(AppError::invalid("label or app_version too long"));
    }
    let code = normalize_code(&request.code);
    if code.len() != CODE_LEN {
        state.metrics().enroll_failed();
        state.throttle().failed(&keys, state.now()).await?;
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
            state.throttle().failed(&keys, state.now()).await?;
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
    let roles = account
        .map(|a| {
            a.grants
                .phone_roles(assignments.iter().map(|x| x.community.as_str()))
        })
        .unwrap_or_default();
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
    fn hashes_made_by_the_argon2_crate_itself_still_verify() {
        use argon2::password_hash::PasswordHasher as _;
        let salt = SaltString::encode_b64(&random_bytes(16)).unwrap();
        let stored = Argon2::default()
            .hash_password(b"an older release's hash", &salt)
            .unwrap()
            .to_string();
        assert!(verify_password("an older release's hash", &stored));
        assert!(!verify_password("an older release's hash!", &stored));
        // A hash asking for more working memory than allowed is refused without allocating.
        let greedy = stored.replace("m=19456", "m=4000000");
        assert!(!verify_password("an older release's hash", &greedy));
    }

    #[test]
    fn random_bytes_are_not_repeated() {
        assert_ne!(random_bytes(32), random_bytes(32));
        assert_eq!(random_bytes(5).len(), 5);
    }
}
