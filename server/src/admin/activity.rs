//! Read functions over the field activity projections that the dashboard shows beside the
//! JSON API's: when ballots arrived, visits per unit and per account, the whole audit log.

use std::collections::{BTreeMap, HashMap};

use doorstep_core::model::Millis;

use crate::error::AppResult;
use crate::state::AppState;
use crate::storage::AuditEvent;

/// Ballot id → when the server first received it, for one campaign.
pub(crate) fn ballot_receipts(
    st: &AppState,
    campaign: &str,
) -> AppResult<BTreeMap<String, Millis>> {
    Ok(st.views().ballot_receipts(campaign)?)
}

/// (unit, outcome, at) of every visit to a unit of `building` in `community`, in any campaign.
pub(crate) fn unit_visits(
    st: &AppState,
    community: &str,
    building: &str,
) -> AppResult<Vec<(String, String, Millis)>> {
    Ok(st.views().unit_visits(community, building)?)
}

/// Account id → the times of every visit it recorded (to spot impossible paces).
pub(crate) fn visit_times_by_account(st: &AppState) -> AppResult<HashMap<String, Vec<Millis>>> {
    Ok(st.views().visit_times_by_account()?)
}

/// Every audit event, oldest first, read in pages of the storage's own listing.
pub(crate) fn all_audit_events(st: &AppState) -> AppResult<Vec<AuditEvent>> {
    const PAGE: usize = 1000;
    let mut out: Vec<AuditEvent> = Vec::new();
    loop {
        let after = out.last().map(|e| e.seq).unwrap_or(0);
        let page = st.storage().audit_events(after, PAGE)?;
        let done = page.len() < PAGE;
        out.extend(page);
        if done {
            return Ok(out);
        }
    }
}

pub(crate) use crate::storage::views::UnitEvent;

/// Everything recorded in the field about one unit of `community`, oldest first (see
/// [`crate::storage::views::Views::unit_timeline`]).
pub(crate) fn unit_timeline(
    st: &AppState,
    community: &str,
    unit: &str,
) -> AppResult<Vec<UnitEvent>> {
    Ok(st.views().unit_timeline(community, unit)?)
}

/// Who made a change to a household: a phone (its device) or the server on an admin's behalf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EditedBy {
    Device(uuid::Uuid),
    Server,
    Unknown,
}

/// One stored change to one household's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HouseholdEdit {
    /// When the change was committed, by its author's clock (seconds precision).
    pub at: Millis,
    pub by: EditedBy,
    /// (field, value written), in the change's order; the register import is the first.
    pub fields: Vec<(String, String)>,
}

/// The edit history of the household of `unit`, in causal order, read from the building
/// document's own change history (every value ever written survives there, so nothing needs
/// recording besides). Only this one document is read.
pub(crate) fn household_edits(
    st: &AppState,
    community: &str,
    building: &str,
    unit: &str,
) -> AppResult<Vec<HouseholdEdit>> {
    use automerge::legacy::{Key, ObjectId, OpId, OpType};
    use automerge::{ObjId, ObjType, ROOT, ReadDoc, Value};
    let id = doorstep_core::doc::DocId::Building {
        community: community.to_string(),
        building: building.to_string(),
    };
    let server = st.docs().server_device();
    let edits = st.docs().read(
        &id,
        |doc| -> Result<Vec<HouseholdEdit>, automerge::AutomergeError> {
            let Some((Value::Object(ObjType::Map), households)) = doc.get(ROOT, "households")?
            else {
                return Ok(Vec::new());
            };
            let Some((Value::Object(ObjType::Map), household)) = doc.get(&households, unit)? else {
                return Ok(Vec::new());
            };
            let ObjId::Id(counter, actor, _) = household else {
                return Ok(Vec::new());
            };
            let target = ObjectId::Id(OpId(counter, actor));
            let mut out = Vec::new();
            for change in doc.get_changes(&[]) {
                let expanded = change.decode();
                let fields: Vec<(String, String)> = expanded
                    .operations
                    .iter()
                    .filter(|op| op.obj == target)
                    .filter_map(|op| match (&op.key, &op.action) {
                        (Key::Map(key), OpType::Put(value)) => Some((
                            key.to_string(),
                            match value {
                                automerge::ScalarValue::Str(s) => s.to_string(),
                                other => other.to_string(),
                            },
                        )),
                        _ => None,
                    })
                    .collect();
                if fields.is_empty() {
                    continue;
                }
                let by = match doorstep_core::doc::actor_device(change.actor_id()) {
                    Some(device) if device == server => EditedBy::Server,
                    Some(device) => EditedBy::Device(device),
                    None => EditedBy::Unknown,
                };
                out.push(HouseholdEdit {
                    at: change.timestamp().saturating_mul(1000),
                    by,
                    fields,
                });
            }
            // Causal order as the document holds it (authors' clocks may disagree).
            Ok(out)
        },
    )?;
    match edits {
        None => Ok(Vec::new()),
        Some(Ok(edits)) => Ok(edits),
        Some(Err(e)) => Err(crate::AppError::internal(format!("{id}: {e}"))),
    }
}
