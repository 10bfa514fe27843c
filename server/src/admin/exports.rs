//! CSV exports (ballots, tally, visits), each sent as an attachment and recorded in the audit
//! log, and the audit log listing itself.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use doorstep_core::tally::{QuestionOutcome, Tally, VoteCounts};
use serde::Deserialize;

use super::campaigns::tally_from_tables;
use super::{READERS, blocking};
use crate::auth::AdminSession;
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::storage::{AuditEvent, NewAuditEvent};

fn csv_error(e: impl std::fmt::Display) -> AppError {
    AppError::internal(format!("writing CSV: {e}"))
}

/// Rows as CSV bytes, with a UTF-8 byte-order mark so spreadsheet programs read Chinese right.
fn to_csv(header: &[&str], rows: Vec<Vec<String>>) -> AppResult<Vec<u8>> {
    let mut out = b"\xEF\xBB\xBF".to_vec();
    {
        let mut writer = csv::Writer::from_writer(&mut out);
        writer.write_record(header).map_err(csv_error)?;
        for row in rows {
            writer.write_record(&row).map_err(csv_error)?;
        }
        writer.flush().map_err(csv_error)?;
    }
    Ok(out)
}

/// The ballots of a campaign with the state the tally gives each one.
fn ballots_csv(st: &AppState, campaign: &str, tally: &Tally) -> AppResult<Vec<u8>> {
    let superseded: std::collections::BTreeSet<&str> =
        tally.superseded.iter().map(String::as_str).collect();
    let invalid: std::collections::BTreeMap<&str, String> = tally
        .invalid
        .iter()
        .map(|i| (i.ballot.as_str(), i.reason.to_string()))
        .collect();
    let conflicted: std::collections::BTreeSet<&str> = tally
        .conflicts
        .iter()
        .flat_map(|c| c.ballots.iter().map(String::as_str))
        .collect();
    let rows = st.db().read(|c| {
        let mut stmt = c.prepare_cached(
            "SELECT id, building, unit, voter_key, collected_at, by, COALESCE(supersedes, ''),
                    received_at, late_synced, answers
             FROM p_ballots WHERE campaign = ?1 ORDER BY building, unit, id",
        )?;
        let rows = stmt
            .query_map([campaign], |r| {
                (0..10)
                    .map(|i| {
                        r.get_ref(i).map(|v| match v {
                            rusqlite::types::ValueRef::Integer(n) => n.to_string(),
                            rusqlite::types::ValueRef::Text(t) => {
                                String::from_utf8_lossy(t).into_owned()
                            }
                            _ => String::new(),
                        })
                    })
                    .collect::<rusqlite::Result<Vec<String>>>()
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    })?;
    let rows =
        rows.into_iter()
            .map(|mut row| {
                let id = row[0].clone();
                let status =
                    if let Some(reason) = invalid.get(id.as_str()) {
                        format!("invalid: {reason}")
                    } else if superseded.contains(id.as_str()) {
                        "superseded".to_string()
                    } else if conflicted.contains(id.as_str()) {
                        "conflict".to_string()
                    } else if tally.adjudicated.iter().any(|a| {
                        a.ballots.contains(&id) && a.chosen.as_deref() != Some(id.as_str())
                    }) {
                        "not chosen".to_string()
                    } else {
                        "counted".to_string()
                    };
                row.insert(9, status);
                row
            })
            .collect();
    to_csv(
        &[
            "ballot",
            "building",
            "unit",
            "voter_key",
            "collected_at",
            "collected_by",
            "supersedes",
            "received_at",
            "late_synced",
            "status",
            "answers",
        ],
        rows,
    )
}

fn counts_row(
    question: &str,
    subject: &str,
    counts: &VoteCounts,
    quorum: Option<bool>,
    threshold: Option<bool>,
    passed: Option<bool>,
) -> Vec<String> {
    let flag = |b: Option<bool>| b.map(|b| b.to_string()).unwrap_or_default();
    vec![
        question.to_string(),
        subject.to_string(),
        counts.participating.area.to_string(),
        counts.participating.headcount.to_string(),
        counts.yes.area.to_string(),
        counts.yes.headcount.to_string(),
        counts.no.area.to_string(),
        counts.no.headcount.to_string(),
        counts.abstain.area.to_string(),
        counts.abstain.headcount.to_string(),
        flag(quorum),
        flag(threshold),
        flag(passed),
    ]
}

/// One row per resolution question, election candidate and survey option.
fn tally_csv(tally: &Tally) -> AppResult<Vec<u8>> {
    let mut rows = Vec::new();
    for q in &tally.questions {
        match &q.outcome {
            QuestionOutcome::Resolution(r) => rows.push(counts_row(
                &q.question,
                "",
                &r.counts,
                Some(r.quorum.met),
                Some(r.threshold.met),
                r.passed,
            )),
            QuestionOutcome::Election(e) => {
                for c in &e.candidates {
                    let mut row = counts_row(
                        &q.question,
                        &c.candidate,
                        &c.counts,
                        Some(e.quorum.met),
                        Some(c.threshold.met),
                        c.passed,
                    );
                    let seat = e.seating.as_ref().map(|s| {
                        if s.elected.contains(&c.candidate) {
                            "elected"
                        } else if s.alternates.contains(&c.candidate) {
                            "alternate"
                        } else {
                            ""
                        }
                    });
                    row.push(seat.unwrap_or_default().to_string());
                    rows.push(row);
                }
            }
            QuestionOutcome::Survey(s) => {
                for o in &s.options {
                    let counts = VoteCounts {
                        yes: o.chosen,
                        participating: s.respondents,
                        ..VoteCounts::default()
                    };
                    rows.push(counts_row(
                        &q.question,
                        &o.option,
                        &counts,
                        None,
                        None,
                        None,
                    ));
                }
            }
        }
    }
    for row in &mut rows {
        row.resize(14, String::new());
        row.push(tally.inputs_hash.clone());
    }
    to_csv(
        &[
            "question",
            "candidate_or_option",
            "participating_area",
            "participating_headcount",
            "yes_area",
            "yes_headcount",
            "no_area",
            "no_headcount",
            "abstain_area",
            "abstain_headcount",
            "quorum_met",
            "threshold_met",
            "passed",
            "seat",
            "inputs_hash",
        ],
        rows,
    )
}

/// Every visit of a campaign (no personal data: units, outcomes, times, account ids).
fn visits_csv(st: &AppState, campaign: &str) -> AppResult<Vec<u8>> {
    let rows = st.db().read(|c| {
        let mut stmt = c.prepare_cached(
            "SELECT id, building, unit, outcome, at, by FROM p_visits
             WHERE campaign = ?1 ORDER BY at, id",
        )?;
        let rows = stmt
            .query_map([campaign], |r| {
                Ok(vec![
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?.to_string(),
                    r.get::<_, String>(5)?,
                ])
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    })?;
    to_csv(&["visit", "building", "unit", "outcome", "at", "by"], rows)
}

/// `GET /campaigns/{id}/exports/{ballots.csv|tally.csv|visits.csv}`: an attachment, audited.
pub async fn export(
    State(state): State<AppState>,
    session: AdminSession,
    Path((id, file)): Path<(String, String)>,
) -> AppResult<Response> {
    session.require_any(READERS)?;
    let kind = match file.as_str() {
        "ballots.csv" => "ballots",
        "tally.csv" => "tally",
        "visits.csv" => "visits",
        _ => {
            return Err(AppError::not_found(
                "no such export; use ballots.csv, tally.csv or visits.csv",
            ));
        }
    };
    let campaign = id.clone();
    let bytes = blocking(&state, move |st| {
        let tally = tally_from_tables(st, &campaign)?;
        let bytes = match kind {
            "ballots" => ballots_csv(st, &campaign, &tally)?,
            "tally" => tally_csv(&tally)?,
            _ => visits_csv(st, &campaign)?,
        };
        st.storage().append_audit(&[NewAuditEvent::new(
            session.actor(),
            format!("export.{kind}"),
            format!("campaign/{campaign}"),
            serde_json::json!({ "bytes": bytes.len(), "inputs_hash": tally.inputs_hash }),
        )])?;
        Ok(bytes)
    })
    .await?;
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{id}-{file}\""))
        .map_err(AppError::internal)?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response())
}

/// `?after=&limit=` of the audit listing.
#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    pub after: i64,
    pub limit: Option<usize>,
}

/// `GET /audit?after=0&limit=100`: audit events oldest first, with their chain hashes.
pub async fn audit(
    State(state): State<AppState>,
    session: AdminSession,
    Query(query): Query<AuditQuery>,
) -> AppResult<Json<Vec<AuditEvent>>> {
    session.require_any(READERS)?;
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    Ok(Json(
        blocking(&state, move |st| {
            Ok(st.storage().audit_events(query.after, limit)?)
        })
        .await?,
    ))
}
