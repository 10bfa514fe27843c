//! Campaign endpoints: drafts, the lifecycle (publish freezes the roll and rules and writes the
//! field documents; open, close, tally, publicise, archive — never backwards), ballot conflicts
//! and their adjudication by counting officers, the tally and per-building progress.
//!
//! Every lifecycle step and every adjudication is an Automerge change made by the server on the
//! caller's behalf, checked by core's rules, so it reaches the phones on their next sync.

use std::collections::{BTreeMap, BTreeSet};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use doorstep_core::ballots::{AdjudicatedConflict, InvalidBallot, UnusedAdjudication};
use doorstep_core::campaign;
use doorstep_core::doc::{CampaignDoc, DocId, FieldDoc, SCHEMA_VERSION};
use doorstep_core::model::{
    Adjudication, Answer, Campaign, CampaignKind, CampaignStatus, Millis, Question, Role, Rules,
    Scope, new_record_id,
};
use serde::{Deserialize, Serialize};

use super::figures::{CampaignFigures, figures};
use super::register::put_record;
use super::{READERS, blocking, campaign_of, writer_of};
use crate::auth::AdminSession;
use crate::error::{AppError, AppResult};
use crate::json::JsonBody;
use crate::ops;
use crate::projections::enum_name;
use crate::state::AppState;
use crate::storage::NewAuditEvent;

pub use crate::storage::views::CampaignRow;

/// `GET /campaigns`.
pub async fn list(
    State(state): State<AppState>,
    session: AdminSession,
) -> AppResult<Json<Vec<CampaignRow>>> {
    session.require_any(READERS)?;
    Ok(Json(
        blocking(&state, move |st| campaign_rows(st, &session)).await?,
    ))
}

/// The campaigns of the communities `session` works in, by id: what `GET /campaigns` and the
/// dashboard list.
pub(crate) fn campaign_rows(st: &AppState, session: &AdminSession) -> AppResult<Vec<CampaignRow>> {
    let mut rows = all_campaign_rows(st)?;
    rows.retain(|r| session.can(READERS, &r.community));
    Ok(rows)
}

/// Every campaign of the server, by id (the live cards, filtered per page).
pub(crate) fn all_campaign_rows(st: &AppState) -> AppResult<Vec<CampaignRow>> {
    Ok(st.views().campaign_rows()?)
}

/// `GET /campaigns/{id}`: the definition as the campaign document holds it.
pub async fn show(
    State(state): State<AppState>,
    session: AdminSession,
    Path(id): Path<String>,
) -> AppResult<Json<Campaign>> {
    session.require_any(READERS)?;
    let campaign = blocking(&state, move |st| campaign_of(st, &session, READERS, &id)).await?;
    Ok(Json(campaign))
}

/// The body of `POST /campaigns` and `PUT /campaigns/{id}`: a draft's definition.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DraftBody {
    pub id: String,
    pub community: String,
    pub title: String,
    pub kind: CampaignKind,
    pub binding: bool,
    pub scope: Scope,
    #[serde(default)]
    pub rules: Rules,
    pub questions: BTreeMap<String, Question>,
}

impl DraftBody {
    /// The draft campaign this body defines, checked by core's `validate_definition`.
    pub(crate) fn into_campaign(self) -> AppResult<Campaign> {
        let ok_id = !self.id.is_empty()
            && self.id.len() <= 64
            && self
                .id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !ok_id {
            return Err(AppError::invalid(
                "a campaign id is 1–64 characters of letters, digits and - _ .",
            ));
        }
        let draft = Campaign {
            id: self.id,
            community: self.community,
            title: self.title,
            kind: self.kind,
            binding: self.binding,
            scope: self.scope,
            rules: self.rules,
            questions: self.questions,
            status: CampaignStatus::Draft,
            status_times: BTreeMap::new(),
            roll_hash: None,
            rules_hash: None,
        };
        campaign::validate_definition(&draft)?;
        Ok(draft)
    }
}

/// `POST /campaigns`: store a new draft.
pub async fn create(
    State(state): State<AppState>,
    session: AdminSession,
    JsonBody(body): JsonBody<DraftBody>,
) -> AppResult<(StatusCode, Json<Campaign>)> {
    let draft = blocking(&state, move |st| create_draft_as(st, &session, body)).await?;
    Ok((StatusCode::CREATED, Json(draft)))
}

/// Store a new draft defined by `body` as `session` (admins only): the one implementation
/// behind `POST /campaigns` and the dashboard's draft editor.
pub(crate) fn create_draft_as(
    st: &AppState,
    session: &AdminSession,
    body: DraftBody,
) -> AppResult<Campaign> {
    session.require_admin()?;
    let draft = body.into_campaign()?;
    session.require_in(&[Role::Admin], &draft.community)?;
    let register = DocId::Register {
        community: draft.community.clone(),
    };
    if st.storage().document_meta(&register)?.is_none() {
        return Err(AppError::not_found(format!(
            "no register for community {}; import it first",
            draft.community
        )));
    }
    let writer = writer_of(st, session, &draft.community)?;
    ops::create_draft(st.docs(), &draft, &writer, &session.actor())?;
    Ok(draft)
}

/// `PUT /campaigns/{id}`: replace a draft's definition (drafts only).
pub async fn edit(
    State(state): State<AppState>,
    session: AdminSession,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<DraftBody>,
) -> AppResult<Json<Campaign>> {
    let draft = blocking(&state, move |st| edit_draft_as(st, &session, &id, body)).await?;
    Ok(Json(draft))
}

/// Replace the definition of draft `id` by `body` as `session` (admins only, drafts only): the
/// one implementation behind `PUT /campaigns/{id}` and the dashboard's draft editor.
pub(crate) fn edit_draft_as(
    st: &AppState,
    session: &AdminSession,
    id: &str,
    body: DraftBody,
) -> AppResult<Campaign> {
    session.require_admin()?;
    if body.id != id {
        return Err(AppError::invalid("the body's id must match the path"));
    }
    let draft = body.into_campaign()?;
    let current = campaign_of(st, session, &[Role::Admin], id)?;
    if current.status != CampaignStatus::Draft {
        return Err(AppError::conflict(
            "not_a_draft",
            "only a draft can be edited; a published campaign is frozen",
        ));
    }
    if current.community != draft.community {
        return Err(AppError::invalid("a campaign stays in its community"));
    }
    let writer = writer_of(st, session, &current.community)?;
    let value = CampaignDoc {
        schema: SCHEMA_VERSION,
        campaign: draft.clone(),
    };
    st.docs().change(
        &DocId::Campaign {
            campaign: id.to_string(),
        },
        &writer,
        &session.actor(),
        "edit draft",
        |d| ops::write_all(d, &value),
    )?;
    Ok(draft)
}

/// The status a lifecycle action leads to.
fn action_status(action: &str) -> Option<CampaignStatus> {
    Some(match action {
        "publish" => CampaignStatus::Published,
        "open" => CampaignStatus::Open,
        "close" => CampaignStatus::Closed,
        "tally" => CampaignStatus::Tallied,
        "publicise" => CampaignStatus::Publicised,
        "archive" => CampaignStatus::Archived,
        _ => return None,
    })
}

/// `POST /campaigns/{id}/actions/{action}`: `publish`, `open`, `close`, `tally`, `publicise`,
/// `archive`. Each moves exactly one step forward; `tally` refuses while conflicts wait.
pub async fn lifecycle(
    State(state): State<AppState>,
    session: AdminSession,
    Path((id, action)): Path<(String, String)>,
) -> AppResult<Json<Campaign>> {
    let campaign = blocking(&state, move |st| run_action(st, &session, &id, &action)).await?;
    Ok(Json(campaign))
}

/// Move campaign `id` one step forward by `action`, as `session` (admins only): the one
/// implementation behind the JSON API and the dashboard's confirmed buttons.
pub(crate) fn run_action(
    st: &AppState,
    session: &AdminSession,
    id: &str,
    action: &str,
) -> AppResult<Campaign> {
    session.require_admin()?;
    let id = id.to_string();
    let to = action_status(action).ok_or_else(|| {
        AppError::not_found(format!(
            "no action {action}; use publish, open, close, tally, publicise or archive"
        ))
    })?;
    {
        let current = campaign_of(st, session, &[Role::Admin], &id)?;
        if current.status.next() != Some(to) {
            return Err(AppError::conflict(
                "wrong_status",
                format!(
                    "a {} campaign cannot become {}; the lifecycle never moves backwards",
                    enum_name(&current.status),
                    enum_name(&to)
                ),
            ));
        }
        let writer = writer_of(st, session, &current.community)?;
        let actor = session.actor();
        let mut detail = serde_json::json!({ "to": enum_name(&to) });
        let next = if to == CampaignStatus::Published {
            ops::publish_campaign(st.docs(), &id, &writer, &actor)?
        } else {
            if to == CampaignStatus::Tallied {
                let figures = figures(st, session, &id)?;
                let tally = &figures.tally;
                if !tally.conflicts.is_empty() {
                    return Err(AppError::conflict(
                        "open_conflicts",
                        format!(
                            "{} ballot conflicts wait for a counting officer",
                            tally.conflicts.len()
                        ),
                    ));
                }
                detail["inputs_hash"] = serde_json::json!(tally.inputs_hash);
            }
            let next = campaign::advance(&current, to, st.now())?;
            let value = CampaignDoc {
                schema: SCHEMA_VERSION,
                campaign: next.clone(),
            };
            st.docs().change(
                &DocId::Campaign {
                    campaign: id.clone(),
                },
                &writer,
                &actor,
                &format!("campaign {}", enum_name(&to)),
                |d| ops::write_all(d, &value),
            )?;
            next
        };
        detail["roll_hash"] = serde_json::json!(next.roll_hash);
        st.storage().append_audit(&[NewAuditEvent::new(
            actor,
            format!("campaign.{action}"),
            format!("campaign/{id}"),
            detail,
        )])?;
        Ok(next)
    }
}

/// One competing ballot as a counting officer sees it.
#[derive(Debug, Serialize)]
pub struct CompetingBallot {
    pub id: String,
    pub building: String,
    pub unit: String,
    /// The account that collected it.
    pub by: String,
    pub collected_at: Millis,
    pub supersedes: Option<String>,
    pub answers: BTreeMap<String, Answer>,
}

/// An unsettled conflict with its ballots.
#[derive(Debug, Serialize)]
pub struct ConflictRow {
    pub voter_key: String,
    pub ballots: Vec<CompetingBallot>,
}

/// The reply of `GET /campaigns/{id}/conflicts`.
#[derive(Debug, Serialize)]
pub struct ConflictsReply {
    pub campaign: String,
    pub conflicts: Vec<ConflictRow>,
    pub adjudicated: Vec<AdjudicatedConflict>,
    pub invalid: Vec<InvalidBallot>,
    pub unused_adjudications: Vec<UnusedAdjudication>,
}

/// `GET /campaigns/{id}/conflicts`: competing ballots across all field documents of the
/// campaign (none of them counts until adjudicated), settled ones, invalid ballots.
pub async fn conflicts(
    State(state): State<AppState>,
    session: AdminSession,
    Path(id): Path<String>,
) -> AppResult<Json<ConflictsReply>> {
    session.require_any(READERS)?;
    Ok(Json(
        blocking(&state, move |st| conflicts_of(st, &session, &id)).await?,
    ))
}

/// The conflicts of campaign `id` read from its field documents: what `GET .../conflicts` and
/// the dashboard's 冲突 queue show.
pub(crate) fn conflicts_of(
    st: &AppState,
    session: &AdminSession,
    id: &str,
) -> AppResult<ConflictsReply> {
    let figures = figures(st, session, id)?;
    let resolution = &figures.resolution;
    let conflicts = resolution
        .conflicts
        .iter()
        .map(|c| ConflictRow {
            voter_key: c.voter_key.clone(),
            ballots: c
                .ballots
                .iter()
                .filter_map(|b| figures.ballot(b))
                .map(|(building, b)| CompetingBallot {
                    id: b.id.clone(),
                    building: building.to_string(),
                    unit: b.unit.clone(),
                    by: b.by.clone(),
                    collected_at: b.collected_at,
                    supersedes: b.supersedes.clone(),
                    answers: b.answers.clone(),
                })
                .collect(),
        })
        .collect();
    Ok(ConflictsReply {
        campaign: id.to_string(),
        conflicts,
        adjudicated: resolution.adjudicated.clone(),
        invalid: resolution.invalid.clone(),
        unused_adjudications: resolution.unused_adjudications.clone(),
    })
}

/// The body of `POST /campaigns/{id}/adjudications`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdjudicateBody {
    pub voter_key: String,
    /// The ballot that counts, or `null` to void them all.
    pub chosen: Option<String>,
    pub reason: String,
    /// The competing ballots the officer looked at; defaults to the current ones. When given,
    /// it must be exactly the current competing set, so a ballot that arrived meanwhile is
    /// never decided unseen.
    pub considered: Option<Vec<String>>,
}

/// `POST /campaigns/{id}/adjudications`: a counting officer settles a conflict. Written into
/// the field document of the competing ballots as a server change authored by the officer.
pub async fn adjudicate(
    State(state): State<AppState>,
    session: AdminSession,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<AdjudicateBody>,
) -> AppResult<(StatusCode, Json<Adjudication>)> {
    let adjudication = blocking(&state, move |st| adjudicate_as(st, &session, &id, body)).await?;
    Ok((StatusCode::CREATED, Json(adjudication)))
}

/// A counting officer settles the conflict `body.voter_key` of campaign `id`: the one
/// implementation behind the JSON API and the dashboard's 冲突 form. A conflict someone else
/// decided meanwhile is refused with `already_adjudicated`, naming who decided.
pub(crate) fn adjudicate_as(
    st: &AppState,
    session: &AdminSession,
    id: &str,
    body: AdjudicateBody,
) -> AppResult<Adjudication> {
    session.require_any(&[Role::CountingOfficer])?;
    if body.reason.trim().is_empty() {
        return Err(AppError::invalid("an adjudication needs a reason"));
    }
    let id = id.to_string();
    {
        let campaign = campaign_of(st, session, &[Role::CountingOfficer], &id)?;
        let figures = super::figures::figures_unscoped(st, &id)?;
        let Some(conflict) = figures
            .resolution
            .conflicts
            .iter()
            .find(|c| c.voter_key == body.voter_key)
        else {
            return Err(already_decided(st, &id, &figures, &body.voter_key));
        };
        let current: BTreeSet<&String> = conflict.ballots.iter().collect();
        let considered = body.considered.unwrap_or_else(|| conflict.ballots.clone());
        if considered.iter().collect::<BTreeSet<_>>() != current {
            return Err(AppError::conflict(
                "conflict_changed",
                "the competing ballots changed; reload the conflict and decide again",
            ));
        }
        if let Some(chosen) = &body.chosen
            && !current.contains(chosen)
        {
            return Err(AppError::invalid(
                "the chosen ballot must be one of the competing ones",
            ));
        }
        let building = conflict
            .ballots
            .iter()
            .find_map(|b| figures.ballot(b).map(|(building, _)| building.to_string()))
            .ok_or_else(|| AppError::internal("a competing ballot has no field document"))?;
        let mut considered = considered;
        considered.sort();
        let adjudication = Adjudication {
            id: new_record_id(),
            voter_key: body.voter_key.clone(),
            considered,
            chosen: body.chosen.clone(),
            reason: body.reason.clone(),
            at: st.now(),
            by: session.account.id.clone(),
        };
        // The officer's own rights, not an admin's: core's rules let only counting officers
        // write adjudications, and check that the record names its author.
        let writer = ops::account_writer(&session.account, &campaign.community, BTreeSet::new());
        let field = DocId::Field {
            campaign: id.clone(),
            building,
        };
        let value = adjudication.clone();
        st.docs()
            .change(&field, &writer, &session.actor(), "adjudicate", |d| {
                put_record(d, "adjudications", &value.id, &value)
            })?;
        st.storage().append_audit(&[NewAuditEvent::new(
            session.actor(),
            "ballot.adjudicated",
            field.to_string(),
            serde_json::json!({
                "adjudication": adjudication.id,
                "considered": adjudication.considered,
                "chosen": adjudication.chosen,
            }),
        )])?;
        Ok(adjudication)
    }
}

/// Why there is nothing to decide for `voter_key`: decided already (by whom, when), or no
/// conflict at all.
fn already_decided(
    st: &AppState,
    campaign: &str,
    figures: &CampaignFigures,
    voter_key: &str,
) -> AppError {
    let Some(done) = figures
        .resolution
        .adjudicated
        .iter()
        .find(|a| a.voter_key == voter_key)
    else {
        return AppError::conflict("no_conflict", "this owner has no conflict waiting");
    };
    let decided = done
        .ballots
        .iter()
        .find_map(|b| figures.ballot(b))
        .and_then(|(building, _)| {
            let field = DocId::Field {
                campaign: campaign.to_string(),
                building: building.to_string(),
            };
            st.docs().hydrate::<FieldDoc>(&field).ok().flatten()
        })
        .and_then(|f| f.adjudications.get(&done.adjudication).cloned());
    match decided {
        Some(a) => {
            let who = st
                .storage()
                .account(&a.by)
                .ok()
                .flatten()
                .map(|acc| acc.display_name)
                .unwrap_or(a.by.clone());
            AppError::conflict(
                "already_adjudicated",
                format!(
                    "已由 {who} 于 {} 裁决，无需再次裁决 (already decided by {who})",
                    crate::dashboard::format::clock(a.at)
                ),
            )
        }
        None => AppError::conflict(
            "already_adjudicated",
            "该冲突已裁决，无需再次裁决 (already decided)",
        ),
    }
}

/// `GET /campaigns/{id}/tally`: core's tally JSON (byte-stable for the same inputs), computed
/// from the projection tables.
pub async fn tally(
    State(state): State<AppState>,
    session: AdminSession,
    Path(id): Path<String>,
) -> AppResult<Response> {
    session.require_any(READERS)?;
    let json = blocking(&state, move |st| {
        Ok(figures(st, &session, &id)?.tally.to_json())
    })
    .await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        json,
    )
        .into_response())
}

pub use crate::storage::views::{AreaHeadcount, BuildingProgress};

/// The reply of `GET /campaigns/{id}/progress`.
#[derive(Debug, Serialize)]
pub struct Progress {
    pub campaign: String,
    pub status: String,
    pub totals: AreaHeadcount,
    /// The 2/3 lines: the least area and headcount that meet the quorum (`3·P ≥ 2·T`).
    pub quorum_line: AreaHeadcount,
    /// Effective ballots (conflicts excluded), as the tally counts them.
    pub returned: AreaHeadcount,
    pub quorum_met_area: bool,
    pub quorum_met_headcount: bool,
    pub open_conflicts: i64,
    pub late_synced: i64,
    pub buildings: Vec<BuildingProgress>,
}

/// The least `p` with `3·p ≥ 2·t`.
fn two_thirds_line(total: i64) -> i64 {
    (2 * total + 2) / 3
}

/// `GET /campaigns/{id}/progress`: per building visited units and ballots collected, and the
/// whole campaign's returned ballots against the 2/3 lines.
pub async fn progress(
    State(state): State<AppState>,
    session: AdminSession,
    Path(id): Path<String>,
) -> AppResult<Json<Progress>> {
    session.require_any(READERS)?;
    Ok(Json(
        blocking(&state, move |st| progress_of(st, &session, &id)).await?,
    ))
}

/// Per building visited units and ballots collected of campaign `id`, and its returned ballots
/// against the 2/3 lines: what `GET .../progress` and the dashboard's overview show.
pub(crate) fn progress_of(st: &AppState, session: &AdminSession, id: &str) -> AppResult<Progress> {
    let figures = figures(st, session, id)?;
    progress_from(id, &figures)
}

/// The progress of campaign `id` shown by its figures.
pub(crate) fn progress_from(id: &str, figures: &CampaignFigures) -> AppResult<Progress> {
    let tally = &figures.tally;
    let mut buildings = figures.buildings.clone();
    buildings.sort_by_key(|b| {
        (
            b.building.parse::<u64>().unwrap_or(u64::MAX),
            b.building.clone(),
        )
    });
    let totals = AreaHeadcount {
        area: tally.totals.area,
        headcount: tally.totals.headcount,
    };
    Ok(Progress {
        campaign: id.to_string(),
        status: figures.status.clone(),
        totals,
        quorum_line: AreaHeadcount {
            area: two_thirds_line(totals.area),
            headcount: two_thirds_line(totals.headcount),
        },
        returned: AreaHeadcount {
            area: tally.returned.area,
            headcount: tally.returned.headcount,
        },
        quorum_met_area: doorstep_core::tally::quorum_met(tally.returned.area, totals.area),
        quorum_met_headcount: doorstep_core::tally::quorum_met(
            tally.returned.headcount,
            totals.headcount,
        ),
        open_conflicts: tally.conflicts.len() as i64,
        late_synced: buildings.iter().map(|b| b.late_synced).sum(),
        buildings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_two_thirds_line_is_the_least_value_meeting_the_quorum() {
        for total in 0..500 {
            let line = two_thirds_line(total);
            assert!(doorstep_core::tally::quorum_met(line, total));
            assert!(line == 0 || !doorstep_core::tally::quorum_met(line - 1, total));
        }
    }
}
