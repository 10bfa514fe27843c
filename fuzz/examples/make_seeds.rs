//! Writes the seed corpus of every fuzz target into `fuzz/seeds/<target>/` (committed; the
//! fuzzer's own corpus grows in the ignored `fuzz/corpus/<target>/`).
//!
//! `cargo run --manifest-path fuzz/Cargo.toml --example make_seeds`
//!
//! The seeds are deterministic: running it again rewrites the same files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use doorstep_core::protocol::{
    self, AccountInfo, BuildingRef, Bytes, DocRequest, DocResponse, DocStatus, Manifest,
    ManifestEntry, SyncRequest, SyncResponse,
};
use doorstep_fuzz::rules::{self, Input, Outcome};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    envelope(&root.join("sync_envelope"));
    csv(&root.join("register_csv"));
    xlsx(&root.join("register_xlsx"));
    sync_message_rules(&root.join("sync_message_rules"));
}

fn dir(path: &Path) -> PathBuf {
    if path.exists() {
        std::fs::remove_dir_all(path).expect("clear the seed directory");
    }
    std::fs::create_dir_all(path).expect("make the seed directory");
    path.to_path_buf()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::write(dir.join(name), bytes).expect("write a seed");
}

fn envelope(path: &Path) {
    let dir = dir(path);
    let request = SyncRequest {
        protocol: protocol::PROTOCOL_VERSION,
        schema: 1,
        app_version: "0.1.0".into(),
        pending: 2,
        manifest: Some(Bytes(vec![9; protocol::DIGEST_LEN])),
        docs: vec![
            DocRequest {
                id: "field/0190a000-0000-7000-8000-00000000c001/3".into(),
                heads: vec![Bytes(vec![7; 32]), Bytes(vec![8; 32])],
                msg: Some(Bytes(vec![0x42, 0, 0, 0])),
            },
            DocRequest {
                id: "building/tpy/3".into(),
                heads: vec![],
                msg: None,
            },
            DocRequest {
                id: "orders/tpy/3".into(),
                heads: vec![Bytes(vec![1; 32])],
                msg: None,
            },
        ],
    };
    write(&dir, "request", &protocol::encode(&request));
    let first = SyncRequest {
        manifest: None,
        docs: vec![],
        ..request.clone()
    };
    write(&dir, "request-first", &protocol::encode(&first));
    let future = SyncRequest {
        protocol: 2,
        ..first.clone()
    };
    write(&dir, "request-protocol-2", &protocol::encode(&future));
    let response = SyncResponse {
        protocol: protocol::PROTOCOL_VERSION,
        schema: 1,
        docs: vec![
            DocResponse {
                id: "field/0190a000-0000-7000-8000-00000000c001/3".into(),
                status: DocStatus::Ok,
                reason: None,
                code: None,
                heads: vec![Bytes(vec![7; 32])],
                msg: Some(Bytes(vec![0x42, 0, 0, 0])),
            },
            DocResponse {
                id: "building/tpy/4".into(),
                status: DocStatus::Rejected,
                reason: Some("building 4 is not assigned to you".into()),
                code: Some("not_assigned".into()),
                heads: vec![],
                msg: None,
            },
        ],
        manifest: Some(Manifest {
            digest: Bytes(vec![3; protocol::DIGEST_LEN]),
            full: true,
            docs: vec![ManifestEntry {
                id: "register/tpy".into(),
                heads: vec![Bytes(vec![5; 32])],
            }],
            removed: vec!["orders/tpy/9".into()],
        }),
        account: Some(AccountInfo {
            id: "head3".into(),
            roles: vec![doorstep_core::model::Role::BuildingHead],
            assignments: vec![BuildingRef {
                community: "tpy".into(),
                building: "3".into(),
            }],
        }),
    };
    write(&dir, "response", &protocol::encode(&response));
    let refused = SyncResponse {
        docs: vec![],
        manifest: None,
        account: None,
        ..response
    };
    write(&dir, "response-refused", &protocol::encode(&refused));
}

const CSV_HEADER: &str =
    "unit_code,building,entrance,floor,room,area_m2,owner_key,owner_name,phone,residents,note\n";

fn csv(path: &Path) {
    let dir = dir(path);
    let rows = "1-1-0101,1号楼,1单元,1,0101,86.03,P0001,崔振平,13808940945,2,\n\
                1-1-0102,1号楼,1单元,1,0102,88.52,P0002,彭洋静,13801786786,1,\n\
                1-2-0201,1号楼,2单元,2,0201,128.2,P0003,\"李明、王芳\",+86-138,0,co_owned\n\
                2-1-0101,2号楼,1单元,1,0101,70,DEV,开发商,,0,developer_unsold\n\
                2-1-0102,2号楼,1单元,1,0102,70.5,P0002,彭洋静,138,3,second_unit_of_owner\n";
    let good = format!("{CSV_HEADER}{rows}");
    write(&dir, "register", good.as_bytes());
    write(
        &dir,
        "register-bom-crlf",
        &[
            b"\xEF\xBB\xBF".as_slice(),
            good.replace('\n', "\r\n").as_bytes(),
        ]
        .concat(),
    );
    write(
        &dir,
        "register-extra-column",
        format!("extra,{}", good.replace('\n', "\nx,")).as_bytes(),
    );
    write(
        &dir,
        "register-bad-area",
        format!("{CSV_HEADER}1-1-0101,1号楼,1单元,1,0101,86.035,P0001,崔振平,138,2,\n").as_bytes(),
    );
    write(
        &dir,
        "register-duplicate",
        format!(
            "{CSV_HEADER}1-1-0101,1号楼,1单元,1,0101,86.03,P0001,崔振平,138,2,\n\
             1-1-0101,1号楼,1单元,1,0101,86.03,P0001,崔振平,138,2,\n"
        )
        .as_bytes(),
    );
    write(&dir, "header-only", CSV_HEADER.as_bytes());
}

fn xlsx(path: &Path) {
    let dir = dir(path);
    // A workbook as a spreadsheet program writes it, with numbers as numbers.
    let mut book = rust_xlsxwriter::Workbook::new();
    // A fixed creation time, so that the seed is the same bytes on every run.
    let created = rust_xlsxwriter::ExcelDateTime::from_ymd(2024, 1, 1).expect("a date");
    book.set_properties(&rust_xlsxwriter::DocProperties::new().set_creation_datetime(&created));
    let sheet = book.add_worksheet();
    for (c, h) in CSV_HEADER.trim().split(',').enumerate() {
        sheet.write_string(0, c as u16, h).expect("header");
    }
    let rows: [[&str; 11]; 3] = [
        [
            "1-1-0101",
            "1号楼",
            "1单元",
            "1",
            "0101",
            "86.03",
            "P0001",
            "崔振平",
            "13808940945",
            "2",
            "",
        ],
        [
            "1-1-0102",
            "1号楼",
            "1单元",
            "1",
            "0102",
            "88.5",
            "P0002",
            "彭洋静",
            "138",
            "1",
            "",
        ],
        [
            "2-1-0101",
            "2号楼",
            "1单元",
            "1",
            "0101",
            "70",
            "DEV",
            "开发商",
            "",
            "0",
            "developer_unsold",
        ],
    ];
    for (r, row) in rows.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            let (r, c) = (r as u32 + 1, c as u16);
            match (c, cell.parse::<f64>()) {
                (3 | 5 | 9, Ok(n)) => sheet.write_number(r, c, n).map(|_| ()),
                _ => sheet.write_string(r, c, *cell).map(|_| ()),
            }
            .expect("cell");
        }
    }
    let bytes = book.save_to_buffer().expect("save the workbook");
    write(&dir, "workbook.xlsx", &bytes);

    // The parts form: sheet, shared strings, styles, workbook part (NUL-separated).
    let strings = [
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
        "1-1-0101",
        "1号楼",
        "1单元",
        "0101",
        "P0001",
        "崔振平",
    ];
    let shared = format!(
        r#"<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="{n}" uniqueCount="{n}">{}</sst>"#,
        strings
            .iter()
            .map(|s| format!("<si><t>{s}</t></si>"))
            .collect::<String>(),
        n = strings.len()
    );
    let cols = ["A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K"];
    let header: String = cols
        .iter()
        .enumerate()
        .map(|(i, c)| format!(r#"<c r="{c}1" t="s"><v>{i}</v></c>"#))
        .collect();
    let row = r#"<c r="A2" t="s"><v>11</v></c><c r="B2" t="s"><v>12</v></c><c r="C2" t="s"><v>13</v></c><c r="D2"><v>1</v></c><c r="E2" t="s"><v>14</v></c><c r="F2"><v>86.03</v></c><c r="G2" t="s"><v>15</v></c><c r="H2" t="s"><v>16</v></c><c r="I2" t="inlineStr"><is><t>13808940945</t></is></c><c r="J2"><v>2</v></c><c r="K2" t="str"><v></v></c>"#;
    let sheet = format!(
        r#"<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><dimension ref="A1:K2"/><sheetData><row r="1">{header}</row><row r="2">{row}</row></sheetData></worksheet>"#
    );
    let styles = r#"<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><numFmts count="1"><numFmt numFmtId="164" formatCode="yyyy-mm-dd"/></numFmts><cellXfs count="2"><xf numFmtId="0"/><xf numFmtId="164" applyNumberFormat="1"/></cellXfs></styleSheet>"#;
    // The sheet alone, every text inline (no shared strings part).
    let inline = |text: &str| format!(r#"t="inlineStr"><is><t>{text}</t></is></c>"#);
    let mut alone = sheet.clone();
    for (i, text) in strings.iter().enumerate() {
        alone = alone.replace(&format!(r#"t="s"><v>{i}</v></c>"#), &inline(text));
    }
    write(&dir, "parts-sheet", alone.as_bytes());
    write(
        &dir,
        "parts-shared-strings",
        format!("{sheet}\0{shared}").as_bytes(),
    );
    write(
        &dir,
        "parts-styles",
        format!(
            "{}\0{shared}\0{styles}",
            sheet.replace(r#"<c r="F2">"#, r#"<c r="F2" s="1">"#)
        )
        .as_bytes(),
    );
    for name in ["parts-sheet", "parts-shared-strings", "parts-styles"] {
        let parts = std::fs::read(dir.join(name)).expect("read");
        let rows = doorstep_fuzz::xlsx::xlsx_rows(doorstep_fuzz::xlsx::workbook(&parts))
            .expect("the parts make a readable workbook");
        assert!(rows.len() == 2, "{name}: {rows:?}");
    }
    assert!(doorstep_fuzz::xlsx::xlsx_rows(bytes).is_ok());
}

/// A small deterministic generator, so that the seeds are the same on every run.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u8 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 24) as u8
    }
}

/// Programs for every document and writer, kept one per (document, writer, outcome); accepted
/// programs also become raw-message and raw-chunk seeds. Inputs over 2 KiB are left out.
fn sync_message_rules(path: &Path) {
    let dir = dir(path);
    let world = rules::world();
    let docs = ["field", "building", "orders", "campaign", "register"];
    let writers = ["head3", "head4", "admin", "officer", "dispatcher"];
    let mut kept: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut crashes = Vec::new();
    // Panics are counted, not printed one by one.
    std::panic::set_hook(Box::new(|_| {}));
    for round in 0..40_000u32 {
        let doc = (round % 5) as u8;
        let writer = ((round / 5) % 5) as u8;
        // Mostly the open campaign and the working day's clock.
        let campaign = if rng.next().is_multiple_of(4) {
            rng.next() % 5
        } else {
            0
        };
        let now = if rng.next().is_multiple_of(4) {
            rng.next() % 6
        } else {
            0
        };
        let len = 4 + rng.next() as usize % 60;
        let program: Vec<u8> = (0..len)
            .map(|_| {
                // Small bytes pick the likely-valid choices; a few are anything.
                if rng.next().is_multiple_of(3) {
                    rng.next()
                } else {
                    rng.next() % 4 + 1
                }
            })
            .collect();
        let header = [doc, writer, campaign, now];
        let input = [&header[..], &[0], &program].concat();
        let Ok(result) = std::panic::catch_unwind(|| rules::run(&input)) else {
            crashes.push(hex(&input));
            continue;
        };
        let outcome = match result {
            Outcome::Accepted(_) => "accepted".to_string(),
            Outcome::Refused(v) => v.code().to_string(),
            Outcome::Unchanged => "unchanged".to_string(),
            Outcome::Malformed => "malformed".to_string(),
            Outcome::Unapplicable => "unapplicable".to_string(),
        };
        let name = format!(
            "{}-{}-{outcome}",
            docs[doc as usize], writers[writer as usize]
        );
        if kept.contains_key(&name) || input.len() > 2048 {
            continue;
        }
        if outcome == "accepted" {
            let held = &world.docs[doc as usize];
            let who = &world.writers[writer as usize];
            let message = rules::phone_message(world, held, who, &mut Input::new(&program));
            if message.len() > 2048 {
                continue;
            }
            kept.insert(
                format!("{name}-message"),
                [&header[..], &[1], &message].concat(),
            );
            for (i, body) in rules::chunk_bodies(&message).into_iter().enumerate() {
                kept.insert(
                    format!("{name}-chunk{i}"),
                    [&header[..], &[2], &body].concat(),
                );
            }
        }
        kept.insert(name, input);
    }
    for (name, input) in &kept {
        write(&dir, name, input);
    }
    let _ = std::panic::take_hook();
    println!("sync_message_rules: {} seeds", kept.len());
    if let Some(first) = crashes.first() {
        println!(
            "sync_message_rules: {} programs crashed (not seeds), the first: {first}",
            crashes.len()
        );
    }
}
