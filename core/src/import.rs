//! Register import (登记册导入): the CSV format of `shared/data/README.md` (or the same columns
//! read from an XLSX sheet) into a register document and one building document per building.
//!
//! All or nothing: every row is checked first, and the first bad row is reported with its line
//! and column; nothing is produced unless the whole file is good.

use std::collections::{BTreeMap, BTreeSet};

use crate::doc::{BuildingDoc, RegisterDoc, SCHEMA_VERSION};
use crate::error::{Error, Result};
use crate::model::{AreaSource, Building, Household, Occupancy, SaleStatus, Unit};

/// The columns a register file must have, in any order; extra columns are ignored.
pub const REQUIRED_COLUMNS: [&str; 11] = [
    "unit_code",
    "building",
    "entrance",
    "floor",
    "room",
    "area_m2",
    "owner_key",
    "owner_name",
    "phone",
    "residents",
    "note",
];

/// The largest exclusive area accepted for one unit (10,000 m²), to catch unit slips.
const MAX_UNIT_AREA: i64 = 1_000_000;

/// A checked register, ready to be written into documents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedRegister {
    pub register: RegisterDoc,
    pub buildings: Vec<BuildingDoc>,
    /// Sum of the `residents` column.
    pub residents: i64,
}

impl ImportedRegister {
    /// Number of units across all buildings.
    pub fn unit_count(&self) -> usize {
        self.buildings.iter().map(|b| b.units.len()).sum()
    }

    /// Every unit, building by building.
    pub fn units(&self) -> impl Iterator<Item = &Unit> {
        self.buildings.iter().flat_map(|b| b.units.values())
    }
}

/// Parse a register CSV (UTF-8, header row first).
pub fn parse_csv(community: &str, name: &str, csv_bytes: &[u8]) -> Result<ImportedRegister> {
    let bytes = csv_bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(csv_bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| Error::Import {
            line: e.position().map(|p| p.line()).unwrap_or(i as u64 + 1),
            column: String::new(),
            message: format!("not readable as CSV: {e}"),
        })?;
        rows.push(record.iter().map(str::to_string).collect());
    }
    parse_rows(community, name, rows)
}

/// Parse rows of cells (header row first), e.g. read from an XLSX sheet.
pub fn parse_rows(community: &str, name: &str, rows: Vec<Vec<String>>) -> Result<ImportedRegister> {
    if !crate::doc::is_id_segment(community) {
        return Err(Error::Invalid(format!(
            "the community id must be 1–64 characters without '/', spaces or control \
             characters (got {} characters)",
            community.chars().count()
        )));
    }
    let mut rows = rows.into_iter();
    let header: Vec<String> = rows
        .next()
        .ok_or_else(|| import_error(1, "", "the file is empty"))?
        .into_iter()
        .map(|h| h.trim().to_string())
        .collect();
    let mut index = BTreeMap::new();
    for column in REQUIRED_COLUMNS {
        let at = header
            .iter()
            .position(|h| h == column)
            .ok_or_else(|| import_error(1, column, "missing column"))?;
        index.insert(column, at);
    }

    let mut buildings: BTreeMap<String, BuildingDoc> = BTreeMap::new();
    let mut seen_units = BTreeSet::new();
    let mut residents_total = 0i64;
    for (i, row) in rows.enumerate() {
        let line = i as u64 + 2;
        if row.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        let cell = |column: &'static str| -> &str {
            row.get(index[column]).map(|s| s.trim()).unwrap_or("")
        };
        let parsed = parse_row(line, &cell)?;
        if !seen_units.insert(parsed.unit.code.clone()) {
            return Err(import_error(line, "unit_code", "duplicate unit code"));
        }
        residents_total += parsed.household.residents;
        let building_id = parsed.unit.building.clone();
        let doc = buildings
            .entry(building_id.clone())
            .or_insert_with(|| BuildingDoc {
                schema: SCHEMA_VERSION,
                community: community.to_string(),
                building: Building {
                    id: building_id.clone(),
                    label: parsed.building_label.clone(),
                    entrances: BTreeMap::new(),
                },
                units: BTreeMap::new(),
                households: BTreeMap::new(),
            });
        if doc.building.label != parsed.building_label {
            return Err(import_error(
                line,
                "building",
                &format!(
                    "building {building_id} is labelled {:?} on an earlier row",
                    doc.building.label
                ),
            ));
        }
        match doc.building.entrances.get(&parsed.unit.entrance) {
            Some(label) if *label != parsed.entrance_label => {
                return Err(import_error(
                    line,
                    "entrance",
                    &format!(
                        "entrance {} is labelled {label:?} on an earlier row",
                        parsed.unit.entrance
                    ),
                ));
            }
            _ => {
                doc.building
                    .entrances
                    .insert(parsed.unit.entrance.clone(), parsed.entrance_label.clone());
            }
        }
        doc.households
            .insert(parsed.unit.code.clone(), parsed.household);
        doc.units.insert(parsed.unit.code.clone(), parsed.unit);
    }
    if buildings.is_empty() {
        return Err(import_error(2, "", "the file has no units"));
    }

    let total_area = buildings
        .values()
        .flat_map(|b| b.units.values())
        .map(|u| u.area)
        .sum();
    let total_units = buildings.values().map(|b| b.units.len() as i64).sum();
    let register = RegisterDoc {
        schema: SCHEMA_VERSION,
        community: community.to_string(),
        name: name.to_string(),
        buildings: buildings
            .iter()
            .map(|(id, b)| (id.clone(), b.building.clone()))
            .collect(),
        total_area,
        total_units,
    };
    Ok(ImportedRegister {
        register,
        buildings: buildings.into_values().collect(),
        residents: residents_total,
    })
}

struct ParsedRow {
    unit: Unit,
    household: Household,
    building_label: String,
    entrance_label: String,
}

fn parse_row<'a>(line: u64, cell: &dyn Fn(&'static str) -> &'a str) -> Result<ParsedRow> {
    let code = cell("unit_code");
    let parts: Vec<&str> = code.split('-').collect();
    // Each part becomes part of an id (the building's document id, the entrance id), so it
    // is kept to the ids' grammar: letters and digits, at most 16 each.
    let valid_part =
        |p: &&str| !p.is_empty() && p.len() <= 16 && p.chars().all(|c| c.is_ascii_alphanumeric());
    if parts.len() != 3 || !parts.iter().all(valid_part) {
        return Err(import_error(
            line,
            "unit_code",
            "expected building-entrance-room of letters and digits (at most 16 each), e.g. 3-2-0501",
        ));
    }
    let room = cell("room");
    if room != parts[2] {
        return Err(import_error(line, "room", "does not match the unit code"));
    }
    let building_label = required(line, "building", cell("building"))?;
    let entrance_label = required(line, "entrance", cell("entrance"))?;
    let floor = cell("floor")
        .parse::<i64>()
        .map_err(|_| import_error(line, "floor", "not a whole number"))?;
    let area = parse_area(cell("area_m2")).map_err(|m| import_error(line, "area_m2", &m))?;
    let note = cell("note");
    let sale_status = match note {
        "developer_unsold" => SaleStatus::DeveloperUnsold,
        "developer_undelivered" => SaleStatus::DeveloperUndelivered,
        "" | "co_owned" | "second_unit_of_owner" => SaleStatus::Sold,
        other => {
            return Err(import_error(
                line,
                "note",
                &format!("unknown note {other:?}"),
            ));
        }
    };
    let owner_key = required(line, "owner_key", cell("owner_key"))?;
    let owner_name = required(line, "owner_name", cell("owner_name"))?;
    let owner_names: Vec<String> = owner_name.split('、').map(str::to_string).collect();
    if note == "co_owned" && owner_names.len() < 2 {
        return Err(import_error(
            line,
            "owner_name",
            "co_owned needs the co-owners joined by 、",
        ));
    }
    let residents = cell("residents")
        .parse::<i64>()
        .ok()
        .filter(|r| (0..=99).contains(r))
        .ok_or_else(|| import_error(line, "residents", "not a whole number from 0 to 99"))?;
    let phone = cell("phone");
    if !phone
        .chars()
        .all(|c| c.is_ascii_digit() || c == '-' || c == '+')
    {
        return Err(import_error(
            line,
            "phone",
            "only digits, + and - are allowed",
        ));
    }
    let unit = Unit {
        code: code.to_string(),
        building: parts[0].to_string(),
        entrance: format!("{}-{}", parts[0], parts[1]),
        floor,
        room: room.to_string(),
        area,
        area_source: AreaSource::Registered,
        sale_status,
        owner_key: owner_key.to_string(),
        owner_names,
    };
    let household = Household {
        unit: code.to_string(),
        contact_name: unit.owner_names.first().cloned().unwrap_or_default(),
        phone: phone.to_string(),
        occupancy: if residents == 0 {
            Occupancy::Unknown
        } else {
            Occupancy::OwnerOccupied
        },
        residents,
        note: String::new(),
    };
    Ok(ParsedRow {
        unit,
        household,
        building_label: building_label.to_string(),
        entrance_label: entrance_label.to_string(),
    })
}

/// Parse an area in m² with at most two decimals into 0.01 m², without floats.
pub fn parse_area(text: &str) -> std::result::Result<i64, String> {
    let (whole, frac) = match text.split_once('.') {
        Some((w, f)) => (w, f),
        None => (text, ""),
    };
    let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    if !digits(whole) || !(frac.is_empty() || digits(frac)) || frac.len() > 2 || whole.len() > 7 {
        return Err(format!(
            "{text:?} is not an area in m² with at most two decimals"
        ));
    }
    let whole: i64 = whole
        .parse()
        .map_err(|_| format!("{text:?} is too large"))?;
    let frac: i64 = format!("{frac:0<2}")
        .parse()
        .map_err(|_| format!("{text:?} is not an area"))?;
    let area = whole * 100 + frac;
    if area <= 0 || area > MAX_UNIT_AREA {
        return Err(format!("{text:?} m² is outside 0.01–10000 m²"));
    }
    Ok(area)
}

/// Format 0.01 m² as `1234.56`.
pub fn format_area(area: i64) -> String {
    let sign = if area < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", area.abs() / 100, area.abs() % 100)
}

fn required<'a>(line: u64, column: &str, value: &'a str) -> Result<&'a str> {
    if value.is_empty() {
        Err(import_error(line, column, "must not be empty"))
    } else {
        Ok(value)
    }
}

fn import_error(line: u64, column: &str, message: &str) -> Error {
    Error::Import {
        line,
        column: column.to_string(),
        message: message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &[u8] = include_bytes!("../testdata/taipingyang-garden.csv");

    #[test]
    fn sample_register_imports_to_the_published_totals() {
        let reg = parse_csv("tpy", "太平洋花园", SAMPLE).expect("sample imports");
        assert_eq!(reg.unit_count(), 306);
        assert_eq!(reg.residents, 910);
        assert_eq!(reg.register.total_area, 2_896_559);
        assert_eq!(reg.register.total_units, 306);
        assert_eq!(reg.buildings.len(), 11);
        let voter_keys: BTreeSet<String> = reg.units().map(Unit::voter_key).collect();
        assert_eq!(voter_keys.len(), 303);
        let developer = reg.units().filter(|u| u.sale_status.is_developer()).count();
        assert_eq!(developer, 3);
    }

    #[test]
    fn areas_parse_exactly_without_floats() {
        assert_eq!(parse_area("86.03"), Ok(8603));
        assert_eq!(parse_area("128.2"), Ok(12820));
        assert_eq!(parse_area("70"), Ok(7000));
        assert!(parse_area("86.035").is_err());
        assert!(parse_area("-1.00").is_err());
        assert!(parse_area("8,6").is_err());
        assert!(parse_area("0.00").is_err());
        assert!(parse_area("1e3").is_err());
        assert_eq!(format_area(2_896_559), "28965.59");
    }

    fn with_line(line_no: usize, replacement: &str) -> Vec<u8> {
        let text = std::str::from_utf8(SAMPLE).expect("utf-8");
        let mut lines: Vec<&str> = text.lines().collect();
        lines[line_no - 1] = replacement;
        lines.join("\n").into_bytes()
    }

    #[test]
    fn bad_rows_name_their_line_and_column_and_import_nothing() {
        let cases = [
            (
                5,
                "1-1-0202,1号楼,1单元,2,0202,ninety,P0004,莫志志,13807387217,3,",
                "area_m2",
            ),
            (
                5,
                "1-1-0202,1号楼,1单元,two,0202,90.82,P0004,莫志志,13807387217,3,",
                "floor",
            ),
            (
                5,
                "1-1-0201,1号楼,1单元,2,0201,90.82,P0004,莫志志,13807387217,3,",
                "unit_code",
            ),
            (
                5,
                "1-1-0202,1号楼,1单元,2,0202,90.82,,莫志志,13807387217,3,",
                "owner_key",
            ),
            (
                5,
                "1-1-0202,1号楼,1单元,2,0202,90.82,P0004,莫志志,13807387217,3,weird",
                "note",
            ),
            (
                5,
                "1-1-0202,1号楼,1单元,2,0202,90.82,P0004,莫志志,13807387217,-3,",
                "residents",
            ),
            (
                5,
                "1-1-0202,一号楼,1单元,2,0202,90.82,P0004,莫志志,13807387217,3,",
                "building",
            ),
            (
                5,
                "1-1-0203,1号楼,1单元,2,0202,90.82,P0004,莫志志,13807387217,3,",
                "room",
            ),
        ];
        for (line, row, column) in cases {
            match parse_csv("tpy", "x", &with_line(line, row)) {
                Err(Error::Import {
                    line: l, column: c, ..
                }) => {
                    assert_eq!((l, c.as_str()), (line as u64, column), "row {row}");
                }
                other => panic!("expected an import error for {row}, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_missing_column_is_named() {
        let text = std::str::from_utf8(SAMPLE)
            .expect("utf-8")
            .replace("area_m2", "area");
        let err = parse_csv("tpy", "x", text.as_bytes()).expect_err("must fail");
        assert_eq!(err.to_string(), "line 1, column area_m2: missing column");
    }

    #[test]
    fn garbage_bytes_are_an_error_not_a_panic() {
        for input in [
            &b""[..],
            b"\xff\xfe\x00garbage",
            b"unit_code\n",
            b"a,b,c\n1,2,3",
        ] {
            assert!(parse_csv("tpy", "x", input).is_err());
        }
    }
}
