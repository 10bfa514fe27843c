//! `docs/protocol.md` must stay true: every hex example in it decodes with the real envelope
//! types, the Automerge messages inside decode with Automerge, and the examples agree with each
//! other and with the byte counts the text states.

use anyhow::{Context as _, Result};
use automerge::sync::Message;
use doorstep_core::protocol::{self, DocStatus, heads_from_wire};

/// The hex block following `<!-- example: {kind} {name} -->`, as bytes.
fn example(doc: &str, kind: &str, name: &str) -> Result<Vec<u8>> {
    let marker = format!("<!-- example: {kind} {name} -->");
    let start = doc.find(&marker).with_context(|| marker.clone())? + marker.len();
    let rest = &doc[start..];
    let open = rest.find("```hex").context("no hex block")? + "```hex".len();
    let close = rest[open..].find("```").context("unclosed hex block")? + open;
    let hex: String = rest[open..close].split_whitespace().collect();
    Ok(hex::decode(hex)?)
}

#[test]
fn the_worked_examples_decode_and_agree() -> Result<()> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/protocol.md");
    let doc = std::fs::read_to_string(path)?;

    let req1 = example(&doc, "request", "nothing-new")?;
    let rep1 = example(&doc, "response", "nothing-new")?;
    let req2 = example(&doc, "request", "one-visit")?;
    let rep2 = example(&doc, "response", "one-visit")?;
    assert_eq!(
        [req1.len(), rep1.len(), req2.len(), rep2.len()],
        [78, 190, 551, 280]
    );

    let request1 = protocol::decode_request(&req1)?;
    let response1 = protocol::decode_response(&rep1)?;
    assert!(request1.docs.is_empty());
    let manifest1 = response1.manifest.clone().context("manifest")?;
    assert_eq!(request1.manifest.as_ref(), Some(&manifest1.digest));
    assert!(!manifest1.full);

    let request2 = protocol::decode_request(&req2)?;
    let response2 = protocol::decode_response(&rep2)?;
    assert_eq!(request2.manifest.as_ref(), Some(&manifest1.digest));
    let entry = &request2.docs[0];
    assert_eq!(entry.id, "field/election-2025/3");
    let message = Message::decode(&entry.msg.as_ref().context("msg")?.0)?;
    assert_eq!(message.heads, heads_from_wire(&entry.heads)?);
    assert_eq!(message.changes.len(), 1);
    let answer = &response2.docs[0];
    assert_eq!(answer.status, DocStatus::Ok);
    assert_eq!(answer.heads, entry.heads);
    assert!(answer.msg.is_none());
    assert_ne!(
        response2.manifest.clone().context("manifest")?.digest,
        manifest1.digest
    );

    // Re-encoding gives the same bytes: the documented key order and encodings are the code's.
    assert_eq!(protocol::encode(&request1), req1);
    assert_eq!(protocol::encode(&response1), rep1);
    assert_eq!(protocol::encode(&request2), req2);
    assert_eq!(protocol::encode(&response2), rep2);
    Ok(())
}

#[test]
fn every_write_rule_code_is_documented_and_every_documented_code_exists() -> Result<()> {
    use doorstep_core::rules::Rule;
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/protocol.md");
    let doc = std::fs::read_to_string(path)?;
    let start = doc
        .find("### 5.1 Codes of a refused document")
        .context("§5.1")?;
    let section = &doc[start..start + doc[start..].find("\n## ").context("end of §5")?];
    let table = &section[..section.find("Other codes").context("second table")?];
    let documented: Vec<&str> = table
        .lines()
        .filter_map(|l| l.strip_prefix("| `")?.split('`').next())
        .collect();
    let codes: Vec<&str> = Rule::ALL.iter().map(|r| r.code()).collect();
    assert_eq!(
        documented, codes,
        "§5.1 lists the rules in the code's order"
    );
    for code in codes {
        assert_eq!(Rule::from_code(code).map(Rule::code), Some(code));
    }
    Ok(())
}

/// The codes in the first column of the table that follows `heading` (until a blank line after
/// the table), in order.
fn codes_in_table(doc: &str, heading: &str, column: usize) -> Result<Vec<String>> {
    let start = doc.find(heading).with_context(|| heading.to_string())?;
    let rest = &doc[start..];
    let table = rest
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2);
    let mut codes = Vec::new();
    for line in table {
        let cell = line.split('|').nth(column + 1).context("a column")?;
        for code in cell.split('`').skip(1).step_by(2) {
            codes.push(code.to_string());
        }
    }
    Ok(codes)
}

#[test]
fn the_documented_refusal_codes_are_the_codes_the_phone_knows() -> Result<()> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/protocol.md");
    let doc = std::fs::read_to_string(path)?;
    let mut request = codes_in_table(&doc, "## 10. Errors", 1)?;
    request.sort();
    let mut known: Vec<String> = protocol::REQUEST_CODES
        .iter()
        .map(|c| c.to_string())
        .collect();
    known.sort();
    assert_eq!(request, known, "§10 and protocol::REQUEST_CODES");
    let mut per_doc = codes_in_table(&doc, "Other codes of per-document answers", 1)?;
    per_doc.sort();
    per_doc.dedup();
    let mut known: Vec<String> = protocol::DOC_CODES.iter().map(|c| c.to_string()).collect();
    known.sort();
    assert_eq!(per_doc, known, "§5.1 and protocol::DOC_CODES");
    Ok(())
}
