//! A building head's phone on the command line, over the real core: the same replica, store
//! and HTTP sync an app uses. Cross-component tests (the dashboard's browser tests) and demos
//! drive it to put real offline work on a server; each command prints one JSON line.
//!
//! ```sh
//! cargo run -p doorstep-core --example field_phone -- STORE enroll SERVER_URL CODE [LABEL]
//! cargo run -p doorstep-core --example field_phone -- STORE visit CAMPAIGN UNIT [OUTCOME]
//! cargo run -p doorstep-core --example field_phone -- STORE deliver CAMPAIGN UNIT
//! cargo run -p doorstep-core --example field_phone -- STORE vote CAMPAIGN UNIT QUESTION CANDIDATE...
//! cargo run -p doorstep-core --example field_phone -- STORE correct CAMPAIGN UNIT BALLOT QUESTION CANDIDATE...
//! cargo run -p doorstep-core --example field_phone -- STORE proxy-vote CAMPAIGN UNIT QUESTION CANDIDATE...
//! cargo run -p doorstep-core --example field_phone -- STORE sync
//! cargo run -p doorstep-core --example field_phone -- STORE units BUILDING
//! ```
//!
//! `visit`, `deliver`, `vote` and `correct` work offline (they only touch the phone's store);
//! `vote` marks the named candidates yes on an election question, `correct` does the same as a
//! correction that supersedes the owner's ballot `BALLOT`, `proxy-vote` as a ballot signed by
//! the owner's written proxy (委托代签). Exit status 1 with `{"error": …}` on a
//! refusal, so a caller can tell a rule's refusal from success.

use std::collections::BTreeMap;

use doorstep_core::model::{Answer, Choice, DoorOutcome};
use doorstep_core::replica::Replica;
use serde_json::json;

const APP_VERSION: &str = "field-phone/0.1";

fn outcome(name: &str) -> anyhow::Result<DoorOutcome> {
    Ok(serde_json::from_value(json!(name))?)
}

/// An election answer approving `candidates` (the others left blank).
fn approve(candidates: &[String]) -> Answer {
    Answer {
        choice: None,
        candidates: candidates
            .iter()
            .map(|c| (c.clone(), Choice::Yes))
            .collect(),
        options: Vec::new(),
    }
}

fn report_json(report: &doorstep_core::sync::SyncReport) -> serde_json::Value {
    json!({
        "complete": report.complete,
        "docs_changed": report.docs_changed,
        "upgrade_required": report.upgrade_required,
        "rejected": report
            .rejected
            .iter()
            .map(|r| json!({ "doc": r.doc.to_string(), "code": r.code, "reason": r.reason }))
            .collect::<Vec<_>>(),
    })
}

fn run(args: &[String]) -> anyhow::Result<serde_json::Value> {
    let [store, command, rest @ ..] = args else {
        anyhow::bail!("usage: field_phone STORE COMMAND ARGS… (see the file's header)");
    };
    let replica = Replica::open(store)?;
    Ok(match (command.as_str(), rest) {
        ("enroll", [server, code, label @ ..]) => {
            let transport = doorstep_core::sync::HttpTransport::new(server);
            let label = label.first().map(String::as_str).unwrap_or("field phone");
            let identity = replica.enroll(&transport, server, code, label, APP_VERSION)?;
            let report = replica.sync(&replica.http_transport()?, APP_VERSION)?;
            json!({ "enrolled": identity.is_some(), "sync": report_json(&report) })
        }
        ("sync", []) => {
            let report = replica.sync(&replica.http_transport()?, APP_VERSION)?;
            json!({ "sync": report_json(&report), "pending": replica.pending_changes()? })
        }
        ("visit", [campaign, unit, rest @ ..]) => {
            let outcome = outcome(rest.first().map(String::as_str).unwrap_or("delivered"))?;
            json!({ "visit": replica.record_visit(campaign, unit, outcome, "")? })
        }
        ("deliver", [campaign, unit]) => {
            json!({ "delivery": replica.record_delivery(campaign, unit)? })
        }
        ("vote", [campaign, unit, question, candidates @ ..]) => {
            let answers = BTreeMap::from([(question.clone(), approve(candidates))]);
            json!({ "ballot": replica.record_ballot(campaign, unit, answers, None)? })
        }
        ("proxy-vote", [campaign, unit, question, candidates @ ..]) => {
            let answers = BTreeMap::from([(question.clone(), approve(candidates))]);
            let id = replica.record_ballot_by(
                campaign,
                unit,
                answers,
                None,
                doorstep_core::model::CollectionMethod::Proxy,
            )?;
            json!({ "ballot": id })
        }
        ("correct", [campaign, unit, ballot, question, candidates @ ..]) => {
            let answers = BTreeMap::from([(question.clone(), approve(candidates))]);
            let id = replica.record_ballot(campaign, unit, answers, Some(ballot.clone()))?;
            json!({ "ballot": id })
        }
        ("units", [building]) => {
            let units: Vec<String> = replica
                .units(building, None)?
                .into_iter()
                .map(|u| u.unit.code)
                .collect();
            json!({ "units": units })
        }
        _ => anyhow::bail!("unknown command {command} {rest:?} (see the file's header)"),
    })
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(value) => println!("{value}"),
        Err(e) => {
            println!("{}", json!({ "error": e.to_string() }));
            std::process::exit(1);
        }
    }
}
