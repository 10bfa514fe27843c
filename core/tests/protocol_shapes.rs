//! `docs/protocol.md` §14–§15 must stay true: every key and type of the documents' snapshots
//! (`snapshots/shapes__*.snap`) is documented with that type, every documented key occurs in a
//! snapshot, the enum table lists every value of every document enum in both its spellings,
//! and §5.1 lists exactly the rules' codes.

use std::collections::{BTreeMap, BTreeSet};

use automerge::{AutoCommit, ROOT, ReadDoc};
use autosurgeon::{Reconcile, reconcile_prop};
use doorstep_core::model::*;
use doorstep_core::rules::Rule;
use serde::Serialize;
use serde_json::Value;
use strum::VariantArray;

const PROTOCOL: &str = include_str!("../../docs/protocol.md");

/// Which snapshot files show each documented kind.
const SNAPSHOTS: &[(&str, &[&str])] = &[
    (
        "register",
        &[include_str!("snapshots/shapes__register.snap")],
    ),
    (
        "building",
        &[include_str!("snapshots/shapes__building.snap")],
    ),
    (
        "campaign",
        &[
            include_str!("snapshots/shapes__campaign.snap"),
            include_str!("snapshots/shapes__campaign_variants.snap"),
        ],
    ),
    ("field", &[include_str!("snapshots/shapes__field.snap")]),
    ("orders", &[include_str!("snapshots/shapes__orders.snap")]),
];

/// Documented paths no snapshot shows, and why that is acceptable.
const NOT_IN_SNAPSHOTS: &[&str] = &[
    // A campaign has one scope: the snapshots show `Whole` and `Building`; `Entrance` has the
    // same form as `Building`.
    "campaign.scope.Entrance",
    "campaign.scope.Entrance.entrance",
];

/// The rows of the table that follows `marker`: the cells of each row, without the header.
fn table(marker: &str) -> Vec<Vec<String>> {
    let start = PROTOCOL
        .find(marker)
        .unwrap_or_else(|| panic!("docs/protocol.md has no {marker}"));
    PROTOCOL[start + marker.len()..]
        .lines()
        .skip_while(|l| l.trim().is_empty())
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(|row| {
            row.trim()
                .trim_matches('|')
                .split('|')
                .map(|cell| cell.trim().trim_matches('`').to_string())
                .collect()
        })
        .collect()
}

/// One documented row: a path pattern and its type.
struct Row {
    path: Vec<String>,
    ty: String,
}

fn documented(kind: &str) -> Vec<Row> {
    table(&format!("<!-- shape: {kind} -->"))
        .into_iter()
        .map(|cells| Row {
            path: cells[0].split('.').map(str::to_string).collect(),
            ty: cells[1].clone(),
        })
        .collect()
}

/// A snapshot file's JSON (after insta's header).
fn snapshot(text: &str) -> Value {
    let body = text.splitn(3, "---").nth(2).expect("an insta header");
    serde_json::from_str(body).expect("snapshot JSON")
}

/// Every path below the root with its value.
fn leaves<'v>(value: &'v Value, path: &mut Vec<String>, out: &mut Vec<(Vec<String>, &'v Value)>) {
    if let Value::Object(map) = value {
        for (key, child) in map {
            path.push(key.clone());
            out.push((path.clone(), child));
            // A list's items are described by its type (`list<str>`).
            leaves(child, path, out);
            path.pop();
        }
    }
}

fn matches(pattern: &[String], path: &[String]) -> bool {
    pattern.len() == path.len()
        && pattern
            .iter()
            .zip(path)
            .all(|(p, k)| (p.starts_with('{') && p.ends_with('}')) || p == k)
}

/// The document spellings of each enum, from the enum table.
fn document_spellings() -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for cells in table("<!-- enums -->") {
        out.entry(cells[0].clone())
            .or_default()
            .insert(cells[1].clone());
    }
    out
}

/// Whether `value` fits the documented type `ty`.
fn fits(ty: &str, value: &Value, enums: &BTreeMap<String, BTreeSet<String>>) -> Result<(), String> {
    let (ty, nullable) = match ty.strip_suffix('?') {
        Some(t) => (t, true),
        None => (ty, false),
    };
    if value.is_null() {
        return if nullable {
            Ok(())
        } else {
            Err("null where the type is not optional".into())
        };
    }
    let ok = match ty {
        "str" => value.is_string(),
        "int" | "ms" | "area" => value.is_i64(),
        "bool" => value.is_boolean(),
        "map" => value.is_object(),
        "list<str>" => value
            .as_array()
            .is_some_and(|items| items.iter().all(Value::is_string)),
        t if t.starts_with("variant ") => value.is_string() || value.is_object(),
        t if t.starts_with("enum ") => {
            let name = &t["enum ".len()..];
            let known = enums
                .get(name)
                .unwrap_or_else(|| panic!("enum {name} is not in the enum table"));
            return match value.as_str() {
                Some(s) if known.contains(s) => Ok(()),
                _ => Err(format!("{value} is not a documented {name}")),
            };
        }
        other => panic!("unknown documented type {other}"),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{value} is not {ty}"))
    }
}

#[test]
fn the_documented_shapes_are_the_documents_shapes() {
    let enums = document_spellings();
    let mut problems = Vec::new();
    for (kind, files) in SNAPSHOTS {
        let rows = documented(kind);
        assert!(!rows.is_empty(), "no table for {kind}");
        let mut used = vec![false; rows.len()];
        for file in *files {
            let json = snapshot(file);
            let mut all = Vec::new();
            leaves(&json, &mut Vec::new(), &mut all);
            for (path, value) in all {
                let found = rows.iter().position(|r| matches(&r.path, &path));
                match found {
                    None => problems.push(format!("{kind}: {} is not documented", path.join("."))),
                    Some(i) => {
                        used[i] = true;
                        if let Err(e) = fits(&rows[i].ty, value, &enums) {
                            problems.push(format!("{kind}: {}: {e}", path.join(".")));
                        }
                    }
                }
            }
        }
        for (row, used) in rows.iter().zip(used) {
            let path = row.path.join(".");
            if !used && !NOT_IN_SNAPSHOTS.contains(&path.as_str()) {
                problems.push(format!("{kind}: {path} is documented but in no snapshot"));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// How `value` is spelled in a document (autosurgeon) and in the API (serde).
fn spellings<T: Reconcile + Serialize>(value: &T) -> (String, String) {
    let mut doc = AutoCommit::new();
    reconcile_prop(&mut doc, ROOT, "v", value).expect("reconcile");
    let (stored, _) = doc.get(ROOT, "v").expect("read").expect("a value");
    let document = stored
        .as_str()
        .expect("a unit enum is stored as a string")
        .to_string();
    let api = serde_json::to_value(value)
        .expect("serialize")
        .as_str()
        .expect("a unit enum serialises as a string")
        .to_string();
    (document, api)
}

fn all_spellings<T: Reconcile + Serialize + VariantArray>() -> BTreeSet<(String, String)> {
    T::VARIANTS.iter().map(spellings).collect()
}

#[test]
fn the_enum_table_lists_every_value_in_both_spellings() {
    let mut documented: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
    for cells in table("<!-- enums -->") {
        documented
            .entry(cells[0].clone())
            .or_default()
            .insert((cells[1].clone(), cells[2].clone()));
    }
    let code: BTreeMap<String, BTreeSet<(String, String)>> = [
        ("AreaSource", all_spellings::<AreaSource>()),
        ("SaleStatus", all_spellings::<SaleStatus>()),
        ("Occupancy", all_spellings::<Occupancy>()),
        ("CampaignKind", all_spellings::<CampaignKind>()),
        ("CampaignStatus", all_spellings::<CampaignStatus>()),
        ("SilencePolicy", all_spellings::<SilencePolicy>()),
        ("DoorOutcome", all_spellings::<DoorOutcome>()),
        ("Choice", all_spellings::<Choice>()),
        ("CollectionMethod", all_spellings::<CollectionMethod>()),
        ("OrderStatus", all_spellings::<OrderStatus>()),
    ]
    .into_iter()
    .map(|(name, set)| (name.to_string(), set))
    .collect();
    assert_eq!(documented, code);
    // The roles the API spells (they are not stored in documents).
    let roles: Vec<String> = Role::VARIANTS
        .iter()
        .map(|r| {
            serde_json::to_value(r)
                .expect("role")
                .as_str()
                .expect("str")
                .to_string()
        })
        .collect();
    for role in roles {
        assert!(
            PROTOCOL.contains(&format!("`{role}`")),
            "role {role} is not named in docs/protocol.md"
        );
    }
}

#[test]
fn the_refusal_codes_are_the_rules_codes() {
    let documented: BTreeSet<String> = table("<!-- codes -->")
        .into_iter()
        .map(|cells| cells[0].clone())
        .collect();
    let code: BTreeSet<String> = Rule::ALL.iter().map(|r| r.code().to_string()).collect();
    assert_eq!(documented, code);
}
