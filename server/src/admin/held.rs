//! Held work: changes a phone recorded offline that the server could not take as sent — its
//! building was reassigned meanwhile (`held_for_review`), or the rules refused them
//! (`not_assigned` after a reassignment, `foreign_actor` after a re-enrollment of the same
//! install). They wait, unapplied, until an admin looks: accepting one applies its changes to
//! the document under the rules, as written by the account that recorded them (without the
//! device check: the admin vouches for the install), and audits who accepted it.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::{Path, State};
use doorstep_core::doc::DocId;
use doorstep_core::model::{Millis, Role};
use serde::Serialize;

use super::blocking;
use crate::auth::AdminSession;
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::storage::QuarantineEntry;

/// The codes whose payloads are offline work an admin may accept. Others (a malformed
/// message, changes that cannot be applied) are kept only as evidence.
pub const ACCEPTABLE: &[&str] = &["held_for_review", "not_assigned", "foreign_actor"];

/// How many quarantine rows the list looks at.
const LIST_LIMIT: usize = 500;

/// One piece of held work as `GET /held` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct HeldWork {
    pub id: i64,
    pub at: Millis,
    pub code: String,
    pub doc: String,
    pub account_id: String,
    pub device_id: String,
    pub bytes: i64,
    pub accepted_at: Option<Millis>,
    pub accepted_by: Option<String>,
}

impl HeldWork {
    fn of(q: QuarantineEntry) -> Option<HeldWork> {
        let code = q.code.filter(|c| ACCEPTABLE.contains(&c.as_str()))?;
        Some(HeldWork {
            id: q.id,
            at: q.at,
            code,
            doc: q.doc,
            account_id: q.account_id,
            device_id: q.device_id.to_string(),
            bytes: q.payload_bytes,
            accepted_at: q.accepted_at,
            accepted_by: q.accepted_by,
        })
    }
}

/// The held work `session` can accept (in the communities it works in), newest first
/// (accepted ones stay listed, marked).
pub fn held_work(st: &AppState, session: &AdminSession) -> AppResult<Vec<HeldWork>> {
    let mut held = Vec::new();
    for work in st
        .storage()
        .quarantine(LIST_LIMIT)?
        .into_iter()
        .filter_map(HeldWork::of)
    {
        if community_in_scope(st, session, &work.doc)?.is_some() {
            held.push(work);
        }
    }
    Ok(held)
}

/// The community of document `doc` when `session` administers it.
fn community_in_scope(
    st: &AppState,
    session: &AdminSession,
    doc: &str,
) -> AppResult<Option<String>> {
    let Ok(id) = doc.parse::<DocId>() else {
        return Ok(None);
    };
    Ok(st
        .storage()
        .document_meta(&id)?
        .map(|meta| meta.community)
        .filter(|community| session.can(&[Role::Admin], community)))
}

/// `GET /held` (admins).
pub async fn list(
    State(state): State<AppState>,
    session: AdminSession,
) -> AppResult<Json<Vec<HeldWork>>> {
    session.require_admin()?;
    Ok(Json(
        blocking(&state, move |st| held_work(st, &session)).await?,
    ))
}

/// What accepting did.
#[derive(Debug, Clone, Serialize)]
pub struct Accepted {
    pub id: i64,
    pub doc: String,
    /// The document's heads afterwards (hex).
    pub heads: Vec<String>,
}

/// Applies held work `id` to its document as its account wrote it, under the rules; refuses
/// (`already_accepted`, a rule's code, `unapplicable_changes`) without changing anything.
pub fn accept_held(st: &AppState, session: &AdminSession, id: i64) -> AppResult<Accepted> {
    session.require_admin()?;
    let entry = st
        .storage()
        .quarantine(LIST_LIMIT)?
        .into_iter()
        .find(|q| q.id == id)
        .and_then(HeldWork::of)
        .ok_or_else(|| AppError::not_found(format!("no held work {id}")))?;
    let Some(community) = community_in_scope(st, session, &entry.doc)? else {
        return Err(AppError::not_found(format!("no held work {id}")));
    };
    if entry.accepted_at.is_some() {
        return Err(AppError::conflict(
            "already_accepted",
            "this held work was accepted already",
        ));
    }
    let payload = st
        .storage()
        .quarantine_payload(id)?
        .ok_or_else(|| AppError::not_found(format!("no held work {id}")))?;
    let doc: DocId = entry
        .doc
        .parse()
        .map_err(|e| AppError::invalid(format!("held work names no document: {e}")))?;
    let account = st
        .storage()
        .account(&entry.account_id)?
        .ok_or_else(|| AppError::not_found(format!("no account {}", entry.account_id)))?;
    // The account as it was when it recorded the work: assigned to the document's building.
    let buildings: BTreeSet<String> = doc.building().map(str::to_string).into_iter().collect();
    let writer = crate::ops::account_writer(&account, &community, buildings);
    let message = automerge::sync::Message::decode(&payload)
        .map_err(|e| AppError::bad_request("malformed_message", e.to_string()))?;
    let wanted = message.heads.clone();
    let actor = session.actor();
    let heads = st.docs().change(
        &doc,
        &writer,
        &actor,
        &format!("held work {id} accepted"),
        |fork| {
            doorstep_core::doc::receive_sync_message(
                fork,
                &mut automerge::sync::State::new(),
                message,
            )?;
            if wanted.iter().any(|h| fork.get_change_by_hash(h).is_none()) {
                return Err(doorstep_core::Error::Invalid(
                    "the held changes depend on changes the server never got".into(),
                ));
            }
            Ok(())
        },
    );
    let heads = match heads {
        Err(crate::docs::DocError::Core(doorstep_core::Error::Invalid(m))) => {
            return Err(AppError::bad_request("unapplicable_changes", m));
        }
        other => other?,
    };
    st.storage()
        .mark_quarantine_accepted(id, &actor, st.now())?;
    Ok(Accepted {
        id,
        doc: doc.to_string(),
        heads: heads.iter().map(|h| h.to_string()).collect(),
    })
}

/// `POST /held/{id}/accept` (admins).
pub async fn accept(
    State(state): State<AppState>,
    session: AdminSession,
    Path(id): Path<i64>,
) -> AppResult<Json<Accepted>> {
    Ok(Json(
        blocking(&state, move |st| accept_held(st, &session, id)).await?,
    ))
}
