//! Accounts, building assignments, enrollment codes and devices. Admins only; every change is
//! audited by storage (account.created / account.updated / assignment.* / enrollment.* /
//! device.revoked).
//!
//! Tenancy: an account holds roles per community (`grants`). An admin sees and manages only
//! the accounts whose every community they administer (and those accounts' codes, assignments
//! and devices); anything else answers 404 as if it did not exist. An admin gives roles only in
//! communities they administer.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use doorstep_core::model::{Millis, Role};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::blocking;
use crate::auth::{self, AdminSession};
use crate::error::{AppError, AppResult};
use crate::json::JsonBody;
use crate::state::AppState;
use crate::storage::{
    Account, Assignment, Communities, Device, EnrollmentCode, Grants, NewAccount,
};

/// `GET /accounts`.
pub async fn list(
    State(state): State<AppState>,
    session: AdminSession,
) -> AppResult<Json<Vec<Account>>> {
    session.require_admin()?;
    Ok(Json(
        blocking(&state, move |st| visible_accounts(st, &session)).await?,
    ))
}

/// The accounts `session` may see, by login.
pub(crate) fn visible_accounts(st: &AppState, session: &AdminSession) -> AppResult<Vec<Account>> {
    let mut accounts = st.storage().accounts()?;
    accounts.retain(|a| session.sees_account(a));
    Ok(accounts)
}

/// Account `id` when `session` may see it; 404 otherwise, as for an account that does not exist.
pub(crate) fn visible_account(
    st: &AppState,
    session: &AdminSession,
    id: &str,
) -> AppResult<Account> {
    let account = st
        .storage()
        .account(id)?
        .ok_or_else(|| AppError::not_found(format!("no account {id}")))?;
    session.require_account(&account)?;
    Ok(account)
}

/// 403 unless `session` administers every community `grants` give a role in.
fn require_grantable(session: &AdminSession, grants: &Grants) -> AppResult<()> {
    if session.account.grants.administers_all(grants) {
        Ok(())
    } else {
        Err(AppError::forbidden(
            "you may only give roles in communities you administer",
        ))
    }
}

/// The roles an account body asks for: `grants`, or the shorthand `roles` (in each of
/// `communities`, by default `default_communities`). Exactly one of the two forms.
fn grants_of(
    grants: Option<Grants>,
    roles: Option<Vec<Role>>,
    communities: Option<Communities>,
    default_roles: impl FnOnce() -> Vec<Role>,
    default_communities: impl FnOnce() -> Communities,
) -> AppResult<Grants> {
    match (grants, roles, communities) {
        (Some(grants), None, None) => Ok(grants),
        (Some(_), _, _) => Err(AppError::invalid(
            "give either grants or roles (with communities), not both",
        )),
        (None, roles, communities) => {
            let roles = roles.unwrap_or_else(default_roles);
            let communities = communities.unwrap_or_else(default_communities);
            Grants::uniform(&roles, &communities)
                .ok_or_else(|| AppError::invalid("an account needs at least one role"))
        }
    }
}

/// The body of `POST /accounts`: the roles as `grants` (`{"tpy": ["admin"], "hx":
/// ["counting_officer"]}`), or as `roles` applying in each of `communities`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAccountBody {
    pub login: String,
    pub display_name: String,
    #[serde(default)]
    pub grants: Option<Grants>,
    #[serde(default)]
    pub roles: Option<Vec<Role>>,
    /// Where `roles` apply (`["*"]`: every community); the communities the creating admin
    /// administers when absent.
    #[serde(default)]
    pub communities: Option<Communities>,
    /// Needed to log in to the dashboard; building heads who only use a phone have none.
    pub password: Option<String>,
}

fn check_login(login: &str) -> AppResult<()> {
    let ok = !login.is_empty()
        && login.len() <= 64
        && login
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c));
    if ok {
        Ok(())
    } else {
        Err(AppError::invalid(
            "a login is 1–64 characters of letters, digits and - _ . @",
        ))
    }
}

/// `POST /accounts`: create a building head, counting officer, dispatcher or admin.
pub async fn create(
    State(state): State<AppState>,
    session: AdminSession,
    JsonBody(body): JsonBody<NewAccountBody>,
) -> AppResult<(StatusCode, Json<Account>)> {
    session.require_admin()?;
    let account = if body.password.is_some() {
        // argon2 is memory-hard: hashing waits its turn like a login does.
        let st = state.clone();
        state
            .hashing()
            .run(move || create_account_as(&st, &session, body))
            .await??
    } else {
        blocking(&state, move |st| create_account_as(st, &session, body)).await?
    };
    Ok((StatusCode::CREATED, Json(account)))
}

/// Create an account as `session` (admins only): the one implementation behind the JSON API
/// and the dashboard's 新建账号 form. A taken login is refused with `login_taken`.
pub(crate) fn create_account_as(
    st: &AppState,
    session: &AdminSession,
    body: NewAccountBody,
) -> AppResult<Account> {
    session.require_admin()?;
    check_login(&body.login)?;
    if body.display_name.chars().count() > 64 {
        return Err(AppError::invalid("display_name is at most 64 characters"));
    }
    if body.grants.is_none() && body.roles.is_none() {
        return Err(AppError::invalid("an account needs at least one role"));
    }
    let grants = grants_of(
        body.grants.clone(),
        body.roles.clone(),
        body.communities.clone(),
        Vec::new,
        || session.account.grants.communities_with(&[Role::Admin]),
    )?;
    require_grantable(session, &grants)?;
    let created = {
        let actor = session.actor();
        match &body.password {
            Some(password) => auth::create_password_account(
                st.storage(),
                &body.login,
                &body.display_name,
                grants,
                password,
                &actor,
            ),
            None => st
                .storage()
                .create_account(
                    &NewAccount {
                        login: body.login.clone(),
                        display_name: body.display_name.clone(),
                        grants,
                        password_hash: None,
                    },
                    &actor,
                )
                .map_err(AppError::from),
        }
    };
    created.map_err(|e| {
        if e.code == "conflict" {
            AppError::conflict("login_taken", "that login is already taken")
        } else {
            e
        }
    })
}

/// The body of `PATCH /accounts/{id}`: new `grants` (replacing all), or the shorthand `roles`
/// and/or `communities` (the same roles in each community; the one not given is kept), or
/// (dis)abling.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountPatch {
    #[serde(default)]
    pub grants: Option<Grants>,
    #[serde(default)]
    pub roles: Option<Vec<Role>>,
    #[serde(default)]
    pub communities: Option<Communities>,
    pub disabled: Option<bool>,
}

/// `PATCH /accounts/{id}`.
pub async fn update(
    State(state): State<AppState>,
    session: AdminSession,
    Path(id): Path<String>,
    JsonBody(patch): JsonBody<AccountPatch>,
) -> AppResult<Json<Account>> {
    let account = blocking(&state, move |st| {
        update_account_as(st, &session, &id, patch)
    })
    .await?;
    Ok(Json(account))
}

/// Change account `id`'s roles or (dis)able it as `session` (admins only): the one
/// implementation behind `PATCH /accounts/{id}` and the dashboard's 角色 forms.
pub(crate) fn update_account_as(
    st: &AppState,
    session: &AdminSession,
    id: &str,
    patch: AccountPatch,
) -> AppResult<Account> {
    session.require_admin()?;
    if patch.roles.as_ref().is_some_and(|r| r.is_empty()) {
        return Err(AppError::invalid("an account needs at least one role"));
    }
    if id == session.account.id && patch.disabled == Some(true) {
        return Err(AppError::invalid("you cannot disable your own account"));
    }
    let current = visible_account(st, session, id)?;
    let grants = if patch.grants.is_none() && patch.roles.is_none() && patch.communities.is_none() {
        current.grants.clone()
    } else {
        grants_of(
            patch.grants,
            patch.roles,
            patch.communities,
            || current.grants.roles(),
            || current.grants.communities(),
        )?
    };
    require_grantable(session, &grants)?;
    let disabled = patch.disabled.unwrap_or(current.disabled);
    Ok(st
        .storage()
        .update_account(id, &grants, disabled, &session.actor())?)
}

/// The body of `POST /accounts/{id}/password`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordReset {
    pub password: String,
}

/// `POST /accounts/{id}/password`: an admin sets another account's password (the policy
/// applies); every session of that account ends. Audited as `account.password_set`.
pub async fn reset_password(
    State(state): State<AppState>,
    session: AdminSession,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<PasswordReset>,
) -> AppResult<StatusCode> {
    session.require_admin()?;
    let st = state.clone();
    state
        .hashing()
        .run(move || reset_password_as(&st, &session, &id, &body.password))
        .await??;
    Ok(StatusCode::NO_CONTENT)
}

/// Reset `id`'s password as `session` (admins only): the API's and the dashboard's one
/// implementation. Blocking (argon2): run it through `HashLimiter::run`.
pub(crate) fn reset_password_as(
    st: &AppState,
    session: &AdminSession,
    id: &str,
    password: &str,
) -> AppResult<()> {
    session.require_admin()?;
    let account = visible_account(st, session, id)?;
    auth::set_password(st.storage(), &account, password, &session.actor())
}

/// A freshly issued enrollment code: shown once, never stored.
#[derive(Debug, Serialize)]
pub struct IssuedCode {
    pub code: String,
    #[serde(flatten)]
    pub record: EnrollmentCode,
}

/// What `POST /accounts/{id}/enrollment-codes` answers: the code, the `doorstep://enroll` URI a
/// QR code carries (with the address this request reached), and that QR code as a PNG.
#[derive(Debug, Serialize)]
pub struct IssuedCodeReply {
    #[serde(flatten)]
    pub issued: IssuedCode,
    pub uri: String,
    /// Base64 of a PNG image of the QR code (the image a head's app opens to enroll).
    pub qr_png: String,
}

/// `POST /accounts/{id}/enrollment-codes`: a one-time code the phone of that account enrolls
/// with (shown as text or QR on the dashboard).
pub async fn issue_code(
    State(state): State<AppState>,
    session: AdminSession,
    headers: axum::http::HeaderMap,
    Path(id): Path<String>,
) -> AppResult<(StatusCode, Json<IssuedCodeReply>)> {
    let server = crate::dashboard::pages::server_address(&headers);
    let issued = blocking(&state, move |st| issue_code_for(st, &session, &id)).await?;
    let uri = crate::dashboard::pages::enrollment_uri(&server, &issued.code);
    let qr_png = crate::dashboard::pages::qr_png_base64(&uri)?;
    Ok((
        StatusCode::CREATED,
        Json(IssuedCodeReply {
            issued,
            uri,
            qr_png,
        }),
    ))
}

/// A fresh one-time enrollment code for account `id` (admins only).
pub(crate) fn issue_code_for(
    st: &AppState,
    session: &AdminSession,
    id: &str,
) -> AppResult<IssuedCode> {
    session.require_admin()?;
    {
        visible_account(st, session, id)?;
        let (code, record) = auth::issue_enrollment_code(
            st.storage(),
            id,
            st.config().enrollment_ttl_ms,
            &session.actor(),
        )?;
        Ok(IssuedCode { code, record })
    }
}

/// `?account=` filter.
#[derive(Debug, Deserialize)]
pub struct AccountQuery {
    pub account: Option<String>,
}

/// `GET /enrollment-codes[?account=]`: codes by handle (never the code itself).
pub async fn codes(
    State(state): State<AppState>,
    session: AdminSession,
    Query(query): Query<AccountQuery>,
) -> AppResult<Json<Vec<EnrollmentCode>>> {
    session.require_admin()?;
    Ok(Json(
        blocking(&state, move |st| {
            let visible = visible_ids(st, &session)?;
            let mut codes = st.storage().enrollment_codes(query.account.as_deref())?;
            codes.retain(|c| visible.contains(&c.account_id));
            Ok(codes)
        })
        .await?,
    ))
}

/// `GET /assignments[?account=]`.
pub async fn assignments(
    State(state): State<AppState>,
    session: AdminSession,
    Query(query): Query<AccountQuery>,
) -> AppResult<Json<Vec<Assignment>>> {
    session.require_admin()?;
    Ok(Json(
        blocking(&state, move |st| {
            visible_assignments(st, &session, query.account.as_deref())
        })
        .await?,
    ))
}

/// The ids of the accounts `session` may see.
fn visible_ids(st: &AppState, session: &AdminSession) -> AppResult<BTreeSet<String>> {
    Ok(visible_accounts(st, session)?
        .into_iter()
        .map(|a| a.id)
        .collect())
}

/// The assignments (of `account`, or all) `session` may see: in its communities, of accounts it
/// may see.
pub(crate) fn visible_assignments(
    st: &AppState,
    session: &AdminSession,
    account: Option<&str>,
) -> AppResult<Vec<Assignment>> {
    let visible = visible_ids(st, session)?;
    let mut assignments = st.storage().assignments(account)?;
    assignments
        .retain(|a| session.can(&[Role::Admin], &a.community) && visible.contains(&a.account_id));
    Ok(assignments)
}

/// The body of `POST /assignments`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssignBody {
    pub account_id: String,
    pub community: String,
    pub building: String,
}

/// `POST /assignments`: the account's phones receive the building's documents on their next
/// sync (the manifest changes).
pub async fn assign(
    State(state): State<AppState>,
    session: AdminSession,
    JsonBody(body): JsonBody<AssignBody>,
) -> AppResult<(StatusCode, Json<Assignment>)> {
    let assignment = blocking(&state, move |st| assign_as(st, &session, body)).await?;
    Ok((StatusCode::CREATED, Json(assignment)))
}

/// Assign a building to an account as `session` (admins only): its phones receive the
/// building's documents on their next sync.
pub(crate) fn assign_as(
    st: &AppState,
    session: &AdminSession,
    body: AssignBody,
) -> AppResult<Assignment> {
    session.require_admin()?;
    {
        let account = visible_account(st, session, &body.account_id)?;
        session.require_in(&[Role::Admin], &body.community)?;
        if !account.grants.communities().includes(&body.community) {
            return Err(AppError::invalid(format!(
                "{} does not work in community {}: give the account a role there first",
                account.login, body.community
            )));
        }
        let building = doorstep_core::doc::DocId::Building {
            community: body.community.clone(),
            building: body.building.clone(),
        };
        if st.storage().document_meta(&building)?.is_none() {
            return Err(AppError::not_found(format!("no building {building}")));
        }
        let assignment = Assignment {
            account_id: body.account_id,
            community: body.community,
            building: body.building,
        };
        st.storage().assign(&assignment, &session.actor())?;
        Ok(assignment)
    }
}

/// `DELETE /assignments/{account}/{community}/{building}`: the phones drop the building's
/// documents on their next sync.
pub async fn unassign(
    State(state): State<AppState>,
    session: AdminSession,
    Path((account_id, community, building)): Path<(String, String, String)>,
) -> AppResult<StatusCode> {
    let assignment = Assignment {
        account_id,
        community,
        building,
    };
    blocking(&state, move |st| unassign_as(st, &session, &assignment)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Take a building from an account as `session` (admins only): its phones drop the
/// building's documents on their next sync.
pub(crate) fn unassign_as(
    st: &AppState,
    session: &AdminSession,
    assignment: &Assignment,
) -> AppResult<()> {
    session.require_admin()?;
    visible_account(st, session, &assignment.account_id)?;
    session.require_in(&[Role::Admin], &assignment.community)?;
    st.storage().unassign(assignment, &session.actor())?;
    Ok(())
}

/// One device as the dashboard lists it.
#[derive(Debug, Serialize)]
pub struct DeviceRow {
    #[serde(flatten)]
    pub device: Device,
    /// The owning account's login, to recognise the phone.
    pub login: Option<String>,
    pub revoked: bool,
    /// How long since the last sync, in ms, when there was one.
    pub since_last_sync_ms: Option<Millis>,
}

/// `GET /devices`: every phone with its last sync, app version, pending and rejected counts.
pub async fn devices(
    State(state): State<AppState>,
    session: AdminSession,
) -> AppResult<Json<Vec<DeviceRow>>> {
    session.require_admin()?;
    Ok(Json(
        blocking(&state, move |st| device_rows(st, &session)).await?,
    ))
}

/// The phones of the accounts `session` may see, with their owner's login: what
/// `GET /devices` and the dashboard's 设备 list show.
pub(crate) fn device_rows(st: &AppState, session: &AdminSession) -> AppResult<Vec<DeviceRow>> {
    let accounts = visible_accounts(st, session)?;
    let now = st.now();
    Ok(st
        .storage()
        .devices()?
        .into_iter()
        .filter(|device| accounts.iter().any(|a| a.id == device.account_id))
        .map(|device| DeviceRow {
            login: accounts
                .iter()
                .find(|a| a.id == device.account_id)
                .map(|a| a.login.clone()),
            revoked: device.revoked_at.is_some(),
            since_last_sync_ms: device.last_sync_at.map(|t| now.saturating_sub(t)),
            device,
        })
        .collect())
}

/// `POST /devices/{id}/revoke`: the device's token stops working at once.
pub async fn revoke(
    State(state): State<AppState>,
    session: AdminSession,
    Path(id): Path<String>,
) -> AppResult<Json<Device>> {
    let id = Uuid::parse_str(&id).map_err(|_| AppError::invalid("a device id is a UUID"))?;
    let device = blocking(&state, move |st| revoke_as(st, &session, &id)).await?;
    Ok(Json(device))
}

/// Device `id` when `session` may see its account; 404 otherwise.
fn visible_device(st: &AppState, session: &AdminSession, id: &Uuid) -> AppResult<Device> {
    let device = st
        .storage()
        .device(id)?
        .ok_or_else(|| AppError::not_found(format!("no device {id}")))?;
    visible_account(st, session, &device.account_id)
        .map_err(|_| AppError::not_found(format!("no device {id}")))?;
    Ok(device)
}

/// Revoke device `id` as `session` (admins only): the API's and the dashboard's one
/// implementation.
pub(crate) fn revoke_as(st: &AppState, session: &AdminSession, id: &Uuid) -> AppResult<Device> {
    session.require_admin()?;
    visible_device(st, session, id)?;
    Ok(st.storage().revoke_device(id, &session.actor())?)
}

/// Let device `id` sync again after `quarantine_full`, as `session` (admins only).
pub(crate) fn release_as(st: &AppState, session: &AdminSession, id: &Uuid) -> AppResult<Device> {
    session.require_admin()?;
    visible_device(st, session, id)?;
    Ok(st.storage().release_quarantine(id, &session.actor())?)
}

/// `POST /devices/{id}/release`: a phone stopped for sending more refused work than its
/// quarantine budget (`quarantine_full`) may sync again; what it sent stays kept.
pub async fn release(
    State(state): State<AppState>,
    session: AdminSession,
    Path(id): Path<String>,
) -> AppResult<Json<Device>> {
    let id = Uuid::parse_str(&id).map_err(|_| AppError::invalid("a device id is a UUID"))?;
    let device = blocking(&state, move |st| release_as(st, &session, &id)).await?;
    Ok(Json(device))
}
