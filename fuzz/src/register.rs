//! `register_csv`: a register upload from arbitrary bytes, through `import::parse_csv` as the
//! server reads a CSV upload, and through `import::parse_rows` on rows cut from the same bytes
//! without CSV quoting rules (what an XLSX sheet can hand it: any text in any cell).
//!
//! Shared by the fuzz target, the XLSX harness and `core/tests/fuzz_crashers.rs` (included there
//! with `#[path]`), so it uses only doorstep-core.

use std::collections::BTreeSet;

use doorstep_core::import::{self, ImportedRegister};

pub const COMMUNITY: &str = "tpy";
pub const NAME: &str = "太平洋花园";

/// Import `data` as a CSV file and as raw rows.
pub fn run(data: &[u8]) {
    check(import::parse_csv(COMMUNITY, NAME, data));
    check(import::parse_rows(COMMUNITY, NAME, rows_of(data)));
}

/// Lines as rows, commas as cell boundaries, invalid UTF-8 replaced: no quoting at all.
pub fn rows_of(data: &[u8]) -> Vec<Vec<String>> {
    data.split(|b| *b == b'\n')
        .map(|line| {
            line.split(|b| *b == b',')
                .map(|cell| String::from_utf8_lossy(cell).into_owned())
                .collect()
        })
        .collect()
}

/// An import either fails with a line and column, or yields a register whose totals add up.
pub fn check(result: doorstep_core::Result<ImportedRegister>) {
    let register = match result {
        Ok(register) => register,
        Err(doorstep_core::Error::Import { line, .. }) => {
            assert!(line >= 1, "an import error on line 0");
            return;
        }
        // A community id outside the document ids' grammar (never `COMMUNITY`).
        Err(doorstep_core::Error::Invalid(_)) => return,
        Err(other) => panic!("an import fails with an error that is not the import's: {other:?}"),
    };
    assert_eq!(
        register.register.total_units,
        register.unit_count() as i64,
        "the register's unit total"
    );
    let area: i64 = register.units().map(|u| u.area).sum();
    assert_eq!(
        register.register.total_area, area,
        "the register's area total"
    );
    let mut codes = BTreeSet::new();
    for building in &register.buildings {
        assert_eq!(building.community, COMMUNITY);
        assert!(
            register
                .register
                .buildings
                .contains_key(&building.building.id),
            "a building missing from the register"
        );
        for (code, unit) in &building.units {
            assert_eq!(code, &unit.code);
            assert_eq!(unit.building, building.building.id);
            assert!((1..=1_000_000).contains(&unit.area), "area {}", unit.area);
            assert_eq!(
                import::parse_area(&import::format_area(unit.area)),
                Ok(unit.area)
            );
            assert!(
                building.building.entrances.contains_key(&unit.entrance),
                "a unit's entrance is not its building's"
            );
            assert!(codes.insert(code.clone()), "unit {code} imported twice");
            let household = building.households.get(code).expect("a household per unit");
            assert!((0..=99).contains(&household.residents));
        }
        assert_eq!(building.units.len(), building.households.len());
    }
    assert!(!codes.is_empty(), "a register without units");
}
