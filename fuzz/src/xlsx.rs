//! `register_xlsx`: a register uploaded as an XLSX workbook, read as the server reads it
//! (`doorstep_core::xlsx::xlsx_rows`), then imported with `import::parse_rows`.
//!
//! The bytes are used two ways. Bytes starting with `PK` are the upload itself. Any other bytes
//! are the text of a workbook's parts (the sheet, then its shared strings, styles and workbook
//! part, separated by NUL bytes) stored in a valid zip file, so that the fuzzer explores
//! calamine's XML reading instead of failing zip checksums.
//!
//! Shared by the fuzz target and `core/tests/fuzz_crashers.rs` (included there with `#[path]`
//! next to `register.rs`), so it uses only doorstep-core.

use doorstep_core::import;

use super::register;

/// Read `data` as an uploaded workbook (or the parts of one) and import its first sheet.
pub fn run(data: &[u8]) {
    let bytes = if data.starts_with(b"PK") {
        data.to_vec()
    } else {
        workbook(data)
    };
    if let Ok(rows) = doorstep_core::xlsx::xlsx_rows(&bytes) {
        register::check(import::parse_rows(
            register::COMMUNITY,
            register::NAME,
            rows,
        ));
    }
}

const WORKBOOK: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>"#;

const RELATIONSHIPS: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#;

const CONTENT_TYPES: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/></Types>"#;

/// A workbook whose parts are the NUL-separated pieces of `data`: the sheet, then (when
/// present) the shared strings, the styles and the workbook part.
pub fn workbook(data: &[u8]) -> Vec<u8> {
    let mut parts = data.splitn(4, |b| *b == 0);
    let sheet = parts.next().unwrap_or_default();
    let strings = parts.next();
    let styles = parts.next();
    let book = parts.next().unwrap_or(WORKBOOK.as_bytes());
    let mut files: Vec<(&str, &[u8])> = vec![
        ("[Content_Types].xml", CONTENT_TYPES.as_bytes()),
        ("xl/_rels/workbook.xml.rels", RELATIONSHIPS.as_bytes()),
        ("xl/workbook.xml", book),
        ("xl/worksheets/sheet1.xml", sheet),
    ];
    if let Some(strings) = strings {
        files.push(("xl/sharedStrings.xml", strings));
    }
    if let Some(styles) = styles {
        files.push(("xl/styles.xml", styles));
    }
    stored_zip(&files)
}

/// A zip file holding `files` uncompressed (method 0), with correct CRCs.
pub fn stored_zip(files: &[(&str, &[u8])]) -> Vec<u8> {
    fn u16le(out: &mut Vec<u8>, v: u16) {
        out.extend_from_slice(&v.to_le_bytes());
    }
    fn u32le(out: &mut Vec<u8>, v: u32) {
        out.extend_from_slice(&v.to_le_bytes());
    }
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in files {
        let offset = out.len() as u32;
        let crc = crc32(data);
        let len = data.len() as u32;
        // Local file header.
        u32le(&mut out, 0x0403_4b50);
        for v in [20, 0, 0, 0, 0x21] {
            u16le(&mut out, v); // version, flags, method, time, date (1980-01-01)
        }
        for v in [crc, len, len] {
            u32le(&mut out, v);
        }
        u16le(&mut out, name.len() as u16);
        u16le(&mut out, 0);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);
        // Its central directory entry.
        u32le(&mut central, 0x0201_4b50);
        for v in [20, 20, 0, 0, 0, 0x21] {
            u16le(&mut central, v); // made by, needed, flags, method, time, date
        }
        for v in [crc, len, len] {
            u32le(&mut central, v);
        }
        for v in [name.len() as u16, 0, 0, 0, 0] {
            u16le(&mut central, v); // name, extra, comment, disk, internal attributes
        }
        u32le(&mut central, 0); // external attributes
        u32le(&mut central, offset);
        central.extend_from_slice(name.as_bytes());
    }
    let central_offset = out.len() as u32;
    let central_len = central.len() as u32;
    out.extend_from_slice(&central);
    // End of central directory.
    u32le(&mut out, 0x0605_4b50);
    for v in [0, 0, files.len() as u16, files.len() as u16] {
        u16le(&mut out, v);
    }
    u32le(&mut out, central_len);
    u32le(&mut out, central_offset);
    u16le(&mut out, 0);
    out
}

/// CRC-32 (IEEE), as zip files use it.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for byte in data {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
