//! Conflicts surfaced, never hidden: concurrent edits of one household field.
//!
//! Automerge keeps every concurrently written value of a map key; the document shows one (last
//! writer wins by its deterministic order) and this module lists the others, so an admin can see
//! both and settle it by writing the field again. Duplicate ballots are found by `ballots`.

use automerge::{ObjType, ROOT, ReadDoc, Value};
use serde::{Deserialize, Serialize};

use crate::doc::Document;
use crate::error::Result;

/// One household field that two people changed concurrently.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldConflict {
    pub doc: String,
    pub unit: String,
    pub field: String,
    /// The value the document currently shows.
    pub shown: String,
    /// Every concurrent value, the shown one included, in Automerge's order.
    pub values: Vec<String>,
}

/// Every household field in a building document that holds more than one concurrent value.
pub fn household_conflicts(doc: &mut Document) -> Result<Vec<FieldConflict>> {
    let doc_id = doc.id().to_string();
    household_conflicts_in(&doc_id, doc.automerge())
}

/// [`household_conflicts`] over any Automerge view of the building document `doc_id` (the
/// server projects them while it stores a change, from the document it already holds).
pub fn household_conflicts_in(doc_id: &str, am: &impl ReadDoc) -> Result<Vec<FieldConflict>> {
    let Some((Value::Object(ObjType::Map), households)) = am.get(ROOT, "households")? else {
        return Ok(Vec::new());
    };
    let units: Vec<String> = am.keys(&households).collect();
    household_conflicts_of(doc_id, am, units.iter().map(String::as_str))
}

/// [`household_conflicts_in`] for the households of `units` only (a change lists the units it
/// wrote, and only their conflicts can have changed).
pub fn household_conflicts_of<'u>(
    doc_id: &str,
    am: &impl ReadDoc,
    units: impl IntoIterator<Item = &'u str>,
) -> Result<Vec<FieldConflict>> {
    let mut out = Vec::new();
    let Some((Value::Object(ObjType::Map), households)) = am.get(ROOT, "households")? else {
        return Ok(out);
    };
    for unit in units {
        let Some((Value::Object(ObjType::Map), household)) = am.get(&households, unit)? else {
            continue;
        };
        for field in am.keys(&household).collect::<Vec<_>>() {
            let all = am.get_all(&household, field.as_str())?;
            if all.len() < 2 {
                continue;
            }
            let values: Vec<String> = all.iter().map(|(v, _)| render(v)).collect();
            let shown = am
                .get(&household, field.as_str())?
                .map(|(v, _)| render(&v))
                .unwrap_or_default();
            out.push(FieldConflict {
                doc: doc_id.to_string(),
                unit: unit.to_string(),
                field,
                shown,
                values,
            });
        }
    }
    Ok(out)
}

fn render(value: &Value<'_>) -> String {
    match value {
        Value::Scalar(s) => match s.as_ref() {
            automerge::ScalarValue::Str(s) => s.to_string(),
            other => other.to_string(),
        },
        Value::Object(t) => format!("<{t:?}>"),
    }
}
