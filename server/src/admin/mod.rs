//! The admin JSON API under `/api/v1/admin/...` (documented in `docs/api.md`). Every handler
//! takes an [`crate::auth::AdminSession`] and answers errors as [`crate::error::AppError`].
//!
//! Handlers are thin: they check the caller's role, then run the blocking work (storage,
//! documents, projections) on a blocking thread through [`blocking`]. Changes to documents go
//! through [`crate::docs::DocCache::change`], so core's rules check them, the projections and the
//! audit log are written in the same transaction, and phones receive them on their next sync.

pub(crate) mod accounts;
pub(crate) mod activity;
pub(crate) mod campaigns;
pub(crate) mod exports;
pub(crate) mod figures;
pub(crate) mod held;
pub(crate) mod orders;
pub(crate) mod register;

use std::collections::BTreeSet;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, patch, post};
use doorstep_core::model::Role;
use doorstep_core::rules::Writer;

use crate::auth::AdminSession;
use crate::error::{AppError, AppResult};
use crate::state::{AppState, Config};

/// The admin routes; mounted by [`crate::app`] at `/api/v1/admin`.
pub fn router(config: &Config) -> Router<AppState> {
    Router::new()
        // Register, buildings, units, households.
        .route(
            "/register/import",
            post(register::import).layer(DefaultBodyLimit::max(config.import_body_limit)),
        )
        .route("/buildings", get(register::buildings))
        .route(
            "/buildings/{community}/{building}/units",
            get(register::units),
        )
        .route(
            "/buildings/{community}/{building}/households",
            get(register::households),
        )
        .route(
            "/households/{community}/{unit}",
            patch(register::edit_household),
        )
        .route("/conflicts/households", get(register::household_conflicts))
        // 微心愿 work orders.
        .route("/orders", get(orders::list).post(orders::create))
        .route("/orders/{community}/{building}/{id}", get(orders::show))
        .route(
            "/orders/{community}/{building}/{id}/transitions",
            post(orders::transition),
        )
        // Accounts, assignments, enrollment, devices.
        .route("/accounts", get(accounts::list).post(accounts::create))
        .route("/accounts/{id}", patch(accounts::update))
        .route("/accounts/{id}/password", post(accounts::reset_password))
        .route(
            "/accounts/{id}/enrollment-codes",
            post(accounts::issue_code),
        )
        .route("/enrollment-codes", get(accounts::codes))
        .route(
            "/assignments",
            get(accounts::assignments).post(accounts::assign),
        )
        .route(
            "/assignments/{account}/{community}/{building}",
            delete(accounts::unassign),
        )
        .route("/devices", get(accounts::devices))
        .route("/devices/{id}/revoke", post(accounts::revoke))
        .route("/devices/{id}/release", post(accounts::release))
        // Offline work that could not be delivered as sent, for an admin to accept.
        .route("/held", get(held::list))
        .route("/held/{id}/accept", post(held::accept))
        // Campaigns.
        .route("/campaigns", get(campaigns::list).post(campaigns::create))
        .route("/campaigns/{id}", get(campaigns::show).put(campaigns::edit))
        .route(
            "/campaigns/{id}/actions/{action}",
            post(campaigns::lifecycle),
        )
        .route("/campaigns/{id}/conflicts", get(campaigns::conflicts))
        .route("/campaigns/{id}/adjudications", post(campaigns::adjudicate))
        .route("/campaigns/{id}/tally", get(campaigns::tally))
        .route("/campaigns/{id}/progress", get(campaigns::progress))
        .route("/campaigns/{id}/exports/{file}", get(exports::export))
        .route("/audit", get(exports::audit))
}

/// Run blocking work (storage, documents) off the async runtime.
pub(crate) async fn blocking<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&AppState) -> AppResult<T> + Send + 'static,
) -> AppResult<T> {
    let st = state.clone();
    tokio::task::spawn_blocking(move || f(&st)).await?
}

/// The rules' view of the session's account in `community`: its roles and assigned buildings
/// there.
pub(crate) fn writer_of(
    state: &AppState,
    session: &AdminSession,
    community: &str,
) -> AppResult<Writer> {
    let buildings: BTreeSet<String> = state
        .storage()
        .assignments(Some(&session.account.id))?
        .into_iter()
        .filter(|a| a.community == community)
        .map(|a| a.building)
        .collect();
    Ok(crate::ops::account_writer(
        &session.account,
        community,
        buildings,
    ))
}

/// Roles that use the dashboard's building pages (buildings, units, households — names and
/// phones masked unless admin).
pub(crate) const OFFICE: &[Role] = &[Role::Admin, Role::CountingOfficer, Role::Dispatcher];

/// Roles that may read the dashboard (registers, campaigns, tallies, exports, the audit log).
pub(crate) const READERS: &[Role] = &[Role::Admin, Role::CountingOfficer];

/// A phone number as non-admins see it: the first three and last four digits, e.g.
/// `138****0945`. Short or odd values are hidden entirely rather than half-shown.
pub fn mask_phone(phone: &str) -> String {
    let chars: Vec<char> = phone.chars().collect();
    if phone.is_empty() {
        return String::new();
    }
    if chars.len() < 8 {
        return "****".to_string();
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}****{tail}")
}

/// A name as non-admins see it: the first character, the rest starred (e.g. `张**`).
pub fn mask_name(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => format!("{first}{}", "*".repeat(chars.count())),
        None => String::new(),
    }
}

/// 404 for an unknown campaign.
pub(crate) fn no_campaign(id: &str) -> AppError {
    AppError::not_found(format!("no campaign {id}"))
}

/// Campaign `id` when `session` holds one of `roles` in its community; 404 when it holds no
/// role there, exactly as for a campaign that does not exist; 403 when it works there in
/// another role.
pub(crate) fn campaign_of(
    st: &AppState,
    session: &AdminSession,
    roles: &[Role],
    id: &str,
) -> AppResult<doorstep_core::model::Campaign> {
    let campaign = st
        .docs()
        .campaign(id)?
        .filter(|c| session.works_in(&c.community))
        .ok_or_else(|| no_campaign(id))?;
    session.require_in(roles, &campaign.community)?;
    Ok(campaign)
}

/// Unless campaign `id` exists in a community where `session` holds one of `roles` (read from
/// the projection, without loading the document): 404 or 403 as [`campaign_of`] answers.
pub(crate) fn require_campaign(
    st: &AppState,
    session: &AdminSession,
    roles: &[Role],
    id: &str,
) -> AppResult<()> {
    match st.views().campaign_community(id)? {
        Some(community) if session.works_in(&community) => session.require_in(roles, &community),
        _ => Err(no_campaign(id)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_are_masked_to_first_three_and_last_four() {
        assert_eq!(mask_phone("13812340945"), "138****0945");
        assert_eq!(mask_phone("123"), "****");
        assert_eq!(mask_phone(""), "");
        assert_eq!(mask_name("张三丰"), "张**");
    }
}
