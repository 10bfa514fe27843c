//! Register endpoints: import a register (CSV or XLSX), list buildings, units and households
//! (phones masked for non-admins), edit a household as the server, list household field
//! conflicts. Work orders live in [`super::orders`].

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use doorstep_core::conflicts::FieldConflict;
use doorstep_core::doc::{BuildingDoc, DocId};
use doorstep_core::import;
use doorstep_core::model::{Household, Occupancy, Role};
use serde::Deserialize;

use super::{OFFICE, READERS, blocking, mask_name, mask_phone, writer_of};
use crate::auth::AdminSession;
use crate::error::{AppError, AppResult};
use crate::json::JsonBody;
use crate::ops::{self, ImportSummary};
use crate::state::AppState;
use crate::storage::NewAuditEvent;

/// The XLSX media type.
const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// `?community=tpy&name=太平洋花园` of an import.
#[derive(Debug, Deserialize)]
pub struct ImportQuery {
    pub community: String,
    pub name: String,
}

/// The rows of the first sheet of an XLSX workbook, as text cells (bounded and panic-free:
/// `doorstep_core::xlsx`); `invalid_xlsx` when it cannot be read.
pub(crate) fn xlsx_rows(bytes: &[u8]) -> AppResult<Vec<Vec<String>>> {
    doorstep_core::xlsx::xlsx_rows(bytes).map_err(|e| {
        let why = match e {
            doorstep_core::Error::Invalid(why) => why,
            other => other.to_string(),
        };
        AppError::bad_request("invalid_xlsx", why)
    })
}

/// The two file formats a register comes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RegisterFormat {
    Csv,
    Xlsx,
}

impl RegisterFormat {
    /// The format of an upload from its declared media type, or its bytes (an XLSX workbook is
    /// a zip file); `unsupported_media_type` when it is neither CSV nor XLSX.
    pub(crate) fn of(content_type: &str, bytes: &[u8]) -> AppResult<RegisterFormat> {
        let content_type = content_type.to_ascii_lowercase();
        if content_type.starts_with(XLSX) || bytes.starts_with(b"PK\x03\x04") {
            Ok(RegisterFormat::Xlsx)
        } else if content_type.starts_with("text/csv") {
            Ok(RegisterFormat::Csv)
        } else {
            Err(AppError::new(
                axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the register as text/csv or as an XLSX workbook",
            ))
        }
    }

    fn name(self) -> &'static str {
        match self {
            RegisterFormat::Csv => "csv",
            RegisterFormat::Xlsx => "xlsx",
        }
    }
}

/// A register file checked by core's import (all rows, all or nothing), not yet stored.
pub(crate) fn parse_register(
    community: &str,
    name: &str,
    bytes: &[u8],
    format: RegisterFormat,
) -> AppResult<import::ImportedRegister> {
    // Core's import checks the community id and every unit code against the document ids'
    // grammar, so nothing it accepts can make a document id that does not read back.
    Ok(match format {
        RegisterFormat::Xlsx => import::parse_rows(community, name, xlsx_rows(bytes)?)?,
        RegisterFormat::Csv => import::parse_csv(community, name, bytes)?,
    })
}

/// Check and store a register file as `session` (admins only): the one implementation behind
/// `POST /register/import` and the dashboard's 名册 upload. Nothing is stored unless every
/// row is good. Returns what was stored and the checked register it came from.
pub(crate) fn import_register_as(
    st: &AppState,
    session: &AdminSession,
    community: &str,
    name: &str,
    bytes: &[u8],
    format: RegisterFormat,
) -> AppResult<(ImportSummary, import::ImportedRegister)> {
    session.require_admin()?;
    if !session.can(&[Role::Admin], community) {
        return Err(AppError::forbidden(format!(
            "you do not administer community {community}"
        )));
    }
    let imported = parse_register(community, name, bytes, format)?;
    let writer = writer_of(st, session, community)?;
    let summary = ops::import_register(st.docs(), &imported, &writer, &session.actor())?;
    st.storage().append_audit(&[NewAuditEvent::new(
        session.actor(),
        "register.imported",
        format!("register/{}", summary.community),
        serde_json::json!({
            "format": format.name(),
            "buildings": summary.buildings,
            "units": summary.units,
            "created": summary.documents_created,
            "changed": summary.documents_changed,
        }),
    )])?;
    Ok((summary, imported))
}

/// `POST /register/import?community=..&name=..`: a register as CSV (`text/csv`) or XLSX; all or
/// nothing. Admins only.
pub async fn import(
    State(state): State<AppState>,
    session: AdminSession,
    Query(query): Query<ImportQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<Json<ImportSummary>> {
    session.require_admin()?;
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let format = RegisterFormat::of(content_type, &body)?;
    let (summary, _) = blocking(&state, move |st| {
        import_register_as(st, &session, &query.community, &query.name, &body, format)
    })
    .await?;
    Ok(Json(summary))
}

/// `?community=` filter.
#[derive(Debug, Deserialize)]
pub struct CommunityQuery {
    pub community: Option<String>,
}

pub use crate::storage::views::BuildingRow;

/// `GET /buildings[?community=]`.
pub async fn buildings(
    State(state): State<AppState>,
    session: AdminSession,
    Query(query): Query<CommunityQuery>,
) -> AppResult<Json<Vec<BuildingRow>>> {
    session.require_any(OFFICE)?;
    Ok(Json(
        blocking(&state, move |st| {
            building_rows(st, &session, query.community.as_deref())
        })
        .await?,
    ))
}

/// The buildings of one community (or of every community `session` works in) with units,
/// area and assigned heads: what `GET /buildings` and the dashboard's 楼栋 page list.
pub(crate) fn building_rows(
    st: &AppState,
    session: &AdminSession,
    community: Option<&str>,
) -> AppResult<Vec<BuildingRow>> {
    let community = community.map(str::to_string);
    {
        let assignments = st.storage().assignments(None)?;
        let mut rows = st.views().building_rows(community.as_deref())?;
        for row in &mut rows {
            row.assigned = assignments
                .iter()
                .filter(|a| a.community == row.community && a.building == row.building)
                .map(|a| a.account_id.clone())
                .collect();
        }
        rows.retain(|r| session.can(OFFICE, &r.community));
        rows.sort_by_key(|r| (r.community.clone(), natural(&r.building)));
        Ok(rows)
    }
}

/// Sort key that puts building `2` before `10`.
fn natural(id: &str) -> (u64, String) {
    (id.parse::<u64>().unwrap_or(u64::MAX), id.to_string())
}

pub use crate::storage::views::UnitRow;

/// `GET /buildings/{community}/{building}/units`.
pub async fn units(
    State(state): State<AppState>,
    session: AdminSession,
    Path((community, building)): Path<(String, String)>,
) -> AppResult<Json<Vec<UnitRow>>> {
    session.require_any(READERS)?;
    Ok(Json(
        blocking(&state, move |st| {
            unit_rows(st, &session, &community, &building)
        })
        .await?,
    ))
}

/// The units of one building as projected: what `GET .../units` and the dashboard list.
pub(crate) fn unit_rows(
    st: &AppState,
    session: &AdminSession,
    community: &str,
    building: &str,
) -> AppResult<Vec<UnitRow>> {
    session.require_in(OFFICE, community)?;
    Ok(st.views().unit_rows(community, building)?)
}

pub use crate::storage::views::HouseholdRow;

/// `GET /buildings/{community}/{building}/households`: names and phones masked unless the
/// caller is an admin.
pub async fn households(
    State(state): State<AppState>,
    session: AdminSession,
    Path((community, building)): Path<(String, String)>,
) -> AppResult<Json<Vec<HouseholdRow>>> {
    session.require_any(OFFICE)?;
    Ok(Json(
        blocking(&state, move |st| {
            household_rows(st, &session, &community, &building)
        })
        .await?,
    ))
}

/// The households of one building, names and phones masked unless `session` is an admin's:
/// what `GET .../households` and the dashboard's building page show.
pub(crate) fn household_rows(
    st: &AppState,
    session: &AdminSession,
    community: &str,
    building: &str,
) -> AppResult<Vec<HouseholdRow>> {
    session.require_in(OFFICE, community)?;
    let full = session.can(&[Role::Admin], community);
    let mut rows = st.views().household_rows(community, building)?;
    if !full {
        for row in &mut rows {
            row.contact_name = mask_name(&row.contact_name);
            row.phone = mask_phone(&row.phone);
        }
    }
    Ok(rows)
}

/// The fields an admin may correct on a household; absent fields stay as they are.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HouseholdPatch {
    pub contact_name: Option<String>,
    pub phone: Option<String>,
    pub occupancy: Option<Occupancy>,
    pub residents: Option<i64>,
    pub note: Option<String>,
}

/// `PATCH /households/{community}/{unit}`: an admin's follow-up (e.g. by phone), written as a
/// server change to the building document so it reaches the building head's phone.
pub async fn edit_household(
    State(state): State<AppState>,
    session: AdminSession,
    Path((community, unit)): Path<(String, String)>,
    JsonBody(patch): JsonBody<HouseholdPatch>,
) -> AppResult<Json<Household>> {
    session.require_admin()?;
    session.require_in(&[Role::Admin], &community)?;
    let household = blocking(&state, move |st| {
        let building = st.views().building_of_unit(&community, &unit)?;
        let building = building.ok_or_else(|| AppError::not_found(format!("no unit {unit}")))?;
        let id = DocId::Building {
            community: community.clone(),
            building,
        };
        let doc = st
            .docs()
            .hydrate::<BuildingDoc>(&id)?
            .ok_or_else(|| AppError::not_found(format!("no document {id}")))?;
        let mut household = doc
            .households
            .get(&unit)
            .cloned()
            .ok_or_else(|| AppError::not_found(format!("unit {unit} has no household")))?;
        if let Some(v) = patch.contact_name {
            household.contact_name = v;
        }
        if let Some(v) = patch.phone {
            household.phone = v;
        }
        if let Some(v) = patch.occupancy {
            household.occupancy = v;
        }
        if let Some(v) = patch.residents {
            household.residents = v;
        }
        if let Some(v) = patch.note {
            household.note = v;
        }
        let writer = writer_of(st, &session, &community)?;
        let value = household.clone();
        st.docs()
            .change(&id, &writer, &session.actor(), "edit household", |d| {
                put_record(d, "households", &unit, &value)
            })?;
        Ok(household)
    })
    .await?;
    Ok(Json(household))
}

/// Write one record under `collection/key` of a document root (the server-side twin of
/// `Document::put_record`).
pub(crate) fn put_record<R: autosurgeon::Reconcile>(
    doc: &mut automerge::AutoCommit,
    collection: &str,
    key: &str,
    value: &R,
) -> Result<(), doorstep_core::Error> {
    use automerge::transaction::Transactable;
    use automerge::{ObjType, ROOT, ReadDoc, Value};
    let shape = |e: automerge::AutomergeError| doorstep_core::Error::Shape(e.to_string());
    let coll = match doc.get(ROOT, collection).map_err(shape)? {
        Some((Value::Object(ObjType::Map), id)) => id,
        _ => doc
            .put_object(ROOT, collection, ObjType::Map)
            .map_err(shape)?,
    };
    autosurgeon::reconcile_prop(doc, coll, key, value)
        .map_err(|e| doorstep_core::Error::Shape(e.to_string()))
}

/// `GET /conflicts/households[?community=]`: household fields two people changed concurrently,
/// every value kept. Values are masked for non-admins (they may be names or phones).
pub async fn household_conflicts(
    State(state): State<AppState>,
    session: AdminSession,
    Query(query): Query<CommunityQuery>,
) -> AppResult<Json<Vec<FieldConflict>>> {
    session.require_any(READERS)?;
    Ok(Json(
        blocking(&state, move |st| {
            household_conflict_rows(st, &session, query.community.as_deref(), None)
        })
        .await?,
    ))
}

/// Household fields edited in parallel (every concurrent value kept) in `community` (and
/// `building`) when given, values masked unless `session` is an admin's: what
/// `GET /conflicts/households` and the dashboard list. Read from their projection, which the
/// server writes while it stores each building change.
pub(crate) fn household_conflict_rows(
    st: &AppState,
    session: &AdminSession,
    community: Option<&str>,
    building: Option<&str>,
) -> AppResult<Vec<FieldConflict>> {
    let rows = st.views().household_conflicts(community, building)?;
    let mut out = Vec::with_capacity(rows.len());
    for mut row in rows {
        let Ok(DocId::Building { community, .. }) = row.doc.parse::<DocId>() else {
            continue;
        };
        if !session.can(READERS, &community) {
            continue;
        }
        if !session.can(&[Role::Admin], &community) {
            row.shown = mask_phone(&row.shown);
            for v in &mut row.values {
                *v = mask_phone(v);
            }
        }
        out.push(row);
    }
    Ok(out)
}
