//! A tampered client (one that writes straight into its documents, bypassing the local rules)
//! is refused by the server: the document stays as it was, the payload is quarantined with its
//! reason, the refusal is audited, and nothing else of that phone or anyone else is lost. The
//! phone can reset the refused document and carry on.

mod common;

use std::collections::BTreeMap;

use anyhow::{Context as _, Result};
use automerge::transaction::Transactable;
use automerge::{ObjType, ROOT, ReadDoc};
use common::*;
use doorstep_core::doc::{DocId, Document, FieldDoc, OrdersDoc};
use doorstep_core::model::{Answer, Choice, DoorOutcome, Visit, new_record_id, now_millis};
use doorstep_server::demo;

/// Change a document on the phone without any rule check, as a tampered app would, and keep it
/// in the store so the next sync sends it.
fn tamper(phone: &Phone, id: &DocId, edit: impl FnOnce(&mut Document) -> Result<()>) -> Result<()> {
    let device = phone.enrollment.device_id;
    let mut edit = Some(edit);
    let mut failure = None;
    phone.replica.with_store(|store| {
        let mut doc = store
            .load_document(id, &device)?
            .ok_or_else(|| doorstep_core::Error::NotFound(id.to_string()))?;
        if let Some(edit) = edit.take()
            && let Err(e) = edit(&mut doc)
        {
            failure = Some(e);
            return Ok(());
        }
        doc.commit("tampered");
        store.save(&mut [&mut doc])
    })?;
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn map_at(doc: &mut Document, path: &[&str]) -> Result<automerge::ObjId> {
    let mut obj = ROOT;
    for key in path {
        let (_, id) = doc
            .automerge()
            .get(&obj, *key)?
            .with_context(|| format!("no {key}"))?;
        obj = id;
    }
    Ok(obj)
}

/// A direct edit of one document that the rules must refuse.
type Edit = Box<dyn Fn(&mut Document, &TestServer) -> Result<()>>;

struct Case {
    name: &'static str,
    doc: DocId,
    edit: Edit,
    /// The machine code the server refuses it with.
    code: &'static str,
}

fn quarantined(server: &TestServer) -> Result<usize> {
    Ok(server.storage().quarantine(10_000)?.len())
}

#[test]
fn tampered_changes_are_rejected_quarantined_and_audited_and_nothing_else_is_lost() -> Result<()> {
    let server = TestServer::start()?;
    let head = Phone::enroll(&server, &server.code("3"))?;
    let neighbour = Phone::enroll(&server, &server.code("4"))?;
    let units = units_of(&server, "3")?;

    // A legitimate ballot, synced, for the "someone's ballot" case.
    let mut answers = BTreeMap::new();
    answers.insert(
        "q1".to_string(),
        Answer {
            candidates: BTreeMap::from([("cand-1".to_string(), Choice::Yes)]),
            ..Answer::default()
        },
    );
    let ballot = head
        .replica
        .record_ballot(demo::CAMPAIGN, &units[0], answers, None)?;
    assert!(head.sync()?.rejected.is_empty());
    let neighbour_device = neighbour.enrollment.device_id;
    let unit4 = units_of(&server, "4")?.remove(0);

    let cases = vec![
        Case {
            name: "edits a register area",
            doc: building_doc("3"),
            edit: Box::new({
                let unit = units[1].clone();
                move |doc, _| {
                    let obj = map_at(doc, &["units", &unit])?;
                    doc.automerge().put(&obj, "area", 1_i64)?;
                    Ok(())
                }
            }),
            code: "admin_only",
        },
        Case {
            name: "writes into another building",
            doc: field("3"),
            edit: Box::new({
                let unit4 = unit4.clone();
                let me = head.enrollment.account_id.clone();
                move |doc, _| {
                    let visit = Visit {
                        id: new_record_id(),
                        unit: unit4.clone(),
                        outcome: DoorOutcome::NotHome,
                        note: String::new(),
                        at: now_millis(),
                        by: me.clone(),
                    };
                    doc.put_record("visits", &visit.id.clone(), &visit)?;
                    Ok(())
                }
            }),
            code: "not_on_roll",
        },
        Case {
            name: "edits someone's ballot",
            doc: field("3"),
            edit: Box::new({
                let ballot = ballot.clone();
                move |doc, _| {
                    let obj = map_at(doc, &["ballots", &ballot])?;
                    doc.automerge().put(&obj, "collected_at", 1_i64)?;
                    Ok(())
                }
            }),
            code: "append_only",
        },
        Case {
            name: "forges another device's change",
            doc: field("3"),
            edit: Box::new({
                let unit = units[2].clone();
                move |doc, _| {
                    doc.set_device(&neighbour_device);
                    let visit = Visit {
                        id: new_record_id(),
                        unit: unit.clone(),
                        outcome: DoorOutcome::NotHome,
                        note: String::new(),
                        at: now_millis(),
                        by: "someone".into(),
                    };
                    doc.put_record("visits", &visit.id.clone(), &visit)?;
                    Ok(())
                }
            }),
            code: "foreign_actor",
        },
    ];

    for case in cases {
        let before_bad = server.heads(&case.doc)?;
        let quarantine_before = quarantined(&server)?;

        // A legitimate change in another document travels in the same sync.
        head.replica.orders("3")?;
        let order =
            head.replica
                .create_order(&units[3], &format!("request during: {}", case.name), "")?;
        // The neighbour keeps working too.
        neighbour.replica.record_visit(
            demo::CAMPAIGN,
            &unit4,
            DoorOutcome::Delivered,
            case.name,
        )?;

        tamper(&head, &case.doc, |doc| (case.edit)(doc, &server))?;
        let report = head.sync()?;
        let rejection = report
            .rejected
            .iter()
            .find(|r| r.doc == case.doc)
            .with_context(|| format!("{}: not rejected: {report:?}", case.name))?;
        assert_eq!(rejection.code, case.code, "{}: {rejection:?}", case.name);
        assert_eq!(server.heads(&case.doc)?, before_bad, "{}", case.name);
        assert_eq!(
            quarantined(&server)?,
            quarantine_before + 1,
            "{}",
            case.name
        );

        // The order in the other document was accepted.
        let orders_doc: OrdersDoc = server.read(&orders("3"))?;
        assert!(orders_doc.orders.contains_key(&order), "{}", case.name);
        // The neighbour's work is untouched by any of this.
        assert!(neighbour.sync()?.rejected.is_empty());

        // Re-sending the same tampered change neither stores it nor duplicates the quarantine.
        let again = head.sync()?;
        assert!(again.rejected.iter().any(|r| r.doc == case.doc));
        assert_eq!(
            quarantined(&server)?,
            quarantine_before + 1,
            "{}",
            case.name
        );

        // The phone resets that one document and is in step again.
        head.replica
            .with_store(|store| doorstep_core::sync::reset_document(store, &case.doc))?;
        let report = head.sync()?;
        assert!(report.rejected.is_empty(), "{}: {report:?}", case.name);
        assert_eq!(head.heads(&case.doc)?, server.heads(&case.doc)?);
        assert_eq!(head.heads(&orders("3"))?, server.heads(&orders("3"))?);
    }

    // Everything was audited, on an intact chain; the device shows its rejections.
    let events = server.storage().audit_events(0, 100_000)?;
    let rejected: Vec<_> = events
        .iter()
        .filter(|e| e.kind == "sync.rejected")
        .collect();
    assert_eq!(rejected.len(), 4);
    assert!(
        rejected
            .iter()
            .all(|e| e.actor == format!("device:{}", head.enrollment.device_id))
    );
    server.storage().verify_audit_chain()?;
    let device = server
        .storage()
        .device(&head.enrollment.device_id)?
        .context("device")?;
    assert_eq!(device.rejected, 4);

    // The ballot is as it was recorded, on the server and on both phones that hold it.
    let on_server: FieldDoc = server.read(&field("3"))?;
    assert_ne!(on_server.ballots[&ballot].collected_at, 1);
    assert!(on_server.visits.values().all(|v| v.unit.starts_with("3-")));
    let neighbour_field: FieldDoc = server.read(&field("4"))?;
    assert_eq!(neighbour_field.visits.len(), 4);
    Ok(())
}

#[test]
fn a_document_of_another_building_is_forbidden_and_never_stored() -> Result<()> {
    let server = TestServer::start()?;
    let head = Phone::enroll(&server, &server.code("3"))?;
    let other = field("4");
    let before = server.heads(&other)?;
    // The tampered phone fabricates building 4's field document and offers it.
    let device = head.enrollment.device_id;
    head.replica.with_store(|store| {
        let mut doc = Document::new(other.clone(), &device);
        doc.automerge().put_object(ROOT, "visits", ObjType::Map)?;
        doc.automerge().put(ROOT, "campaign", demo::CAMPAIGN)?;
        doc.commit("fabricated");
        store.save(&mut [&mut doc])
    })?;
    let report = head.sync()?;
    assert_eq!(server.heads(&other)?, before);
    assert!(
        report
            .rejected
            .iter()
            .any(|r| r.doc == other && r.code == "not_held"),
        "kept and reported, since it holds undelivered changes: {report:?}"
    );
    let events = server.storage().audit_events(0, 100_000)?;
    assert!(
        !events
            .iter()
            .any(|e| e.subject == other.to_string() && e.kind == "sync.accepted")
    );
    Ok(())
}

/// Raw gzip'd sync request of one document whose message is `msg`, as a hostile client sends it.
fn raw_sync(server: &TestServer, token: &str, doc: &DocId, msg: Vec<u8>) -> Result<(u16, String)> {
    use std::io::Write as _;
    let request = doorstep_core::protocol::SyncRequest {
        protocol: doorstep_core::protocol::PROTOCOL_VERSION,
        schema: doorstep_core::doc::SCHEMA_VERSION,
        app_version: "attacker".into(),
        pending: 0,
        manifest: None,
        docs: vec![doorstep_core::protocol::DocRequest {
            id: doc.to_string(),
            heads: vec![],
            msg: Some(doorstep_core::protocol::Bytes(msg)),
        }],
    };
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&doorstep_core::protocol::encode(&request))?;
    let body = gz.finish()?;
    let (status, bytes) = server.call(
        axum::http::Request::post(doorstep_core::protocol::SYNC_PATH)
            .header("content-type", doorstep_core::protocol::CONTENT_TYPE)
            .header("content-encoding", "gzip")
            .header("authorization", format!("Bearer {token}"))
            .body(axum::body::Body::from(body))?,
    )?;
    let code = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|j| j["error"]["code"].as_str().map(str::to_string))
        .unwrap_or_default();
    Ok((status.as_u16(), code))
}

#[test]
fn refused_payloads_are_kept_as_bounded_samples_and_a_phone_over_its_budget_is_stopped_until_an_admin_releases_it()
-> Result<()> {
    use doorstep_server::Config;
    use doorstep_server::storage::QUARANTINE_SAMPLE;
    let budget = 64 * 1024;
    let server = TestServer::start_with(Config {
        quarantine_budget: budget,
        ..Config::default()
    })?;
    let head = Phone::enroll(&server, &server.code("3"))?;
    let token = head.enrollment.device_token.clone();
    let db = server.dir.path().join("server.sqlite");
    let file_bytes = || -> u64 {
        ["", "-wal"]
            .iter()
            .filter_map(|s| std::fs::metadata(format!("{}{s}", db.display())).ok())
            .map(|m| m.len())
            .sum()
    };
    let start = file_bytes();

    // Requests of a few KB that inflate to 8 MB messages the server cannot read, each one
    // different so none is a re-send.
    let mut stopped_after = None;
    for i in 0..40u8 {
        let mut msg = vec![i; 8 * 1024 * 1024];
        msg[0] = 0x42;
        let (status, code) = raw_sync(&server, &token, &field("3"), msg)?;
        if status == 403 {
            assert_eq!(code, "quarantine_full");
            stopped_after = Some(i);
            break;
        }
        assert_eq!(status, 200, "request {i}: {code}");
    }
    let stopped_after = stopped_after.context("the phone was never stopped")?;
    let kept = server.storage().quarantine(1_000)?;
    assert!(!kept.is_empty());
    for q in &kept {
        assert_eq!(
            q.payload_bytes,
            8 * 1024 * 1024,
            "the whole size is recorded"
        );
        assert_eq!(
            q.kept_bytes, QUARANTINE_SAMPLE as i64,
            "only a sample is kept"
        );
    }
    let total: i64 = kept.iter().map(|q| q.kept_bytes).sum();
    assert!(total <= budget, "{total} bytes kept, budget {budget}");
    assert!(
        usize::from(stopped_after) >= kept.len(),
        "stopped only once over the budget"
    );
    let growth = file_bytes().saturating_sub(start);
    assert!(
        growth < 2 * 1024 * 1024,
        "the database grew by {growth} bytes"
    );

    // The phone itself is now refused with the code, and keeps its work meanwhile.
    let units = units_of(&server, "3")?;
    head.replica
        .record_visit(demo::CAMPAIGN, &units[0], DoorOutcome::NotHome, "")?;
    let err = head.sync().expect_err("a stopped phone is refused");
    let err = err
        .downcast_ref::<doorstep_core::Error>()
        .context("a core error")?;
    assert_eq!(err.code(), "quarantine_full");

    // The devices list flags it; an admin releases it and the work arrives.
    let admin = server.admin_token()?;
    let devices = api_ok(&server, "GET", "/api/v1/admin/devices", None, &admin)?;
    let row = devices
        .as_array()
        .context("a list")?
        .iter()
        .find(|d| d["id"] == head.enrollment.device_id.to_string())
        .context("the phone is listed")?;
    assert!(row["quarantine_full_at"].is_number(), "{row}");
    let path = format!(
        "/api/v1/admin/devices/{}/release",
        head.enrollment.device_id
    );
    api_ok(&server, "POST", &path, Some(&serde_json::json!({})), &admin)?;
    let report = head.sync()?;
    assert!(report.rejected.is_empty(), "{report:?}");
    let doc: FieldDoc = server.read(&field("3"))?;
    assert!(doc.visits.values().any(|v| v.unit == units[0]));
    let events = server.storage().audit_events(0, 10_000)?;
    for kind in ["device.quarantine_full", "device.quarantine_released"] {
        assert!(events.iter().any(|e| e.kind == kind), "{kind} audited");
    }
    Ok(())
}

#[test]
fn a_twenty_megabyte_work_order_is_refused_on_the_phone_and_on_the_server() -> Result<()> {
    let server = TestServer::start()?;
    let head = Phone::enroll(&server, &server.code("3"))?;
    let units = units_of(&server, "3")?;
    head.replica.orders("3")?;
    let detail = "灯".repeat(20 * 1024 * 1024 / 3);

    // The app's own check refuses it before it is stored.
    let err = head
        .replica
        .create_order(&units[0], "楼道灯坏了", &detail)
        .expect_err("refused on the phone");
    assert_eq!(err.code(), "too_large");
    assert!(head.replica.orders("3")?.is_empty(), "nothing stored");

    // A tampered app that stores an oversized order anyway is refused by the server: at 1 MB
    // by the same rule (nothing applied, a sample kept), at 20 MB the request itself is too
    // large to read. Either way nothing of it is applied.
    head.replica.create_order(&units[1], "门禁坏了", "")?;
    assert!(head.sync()?.rejected.is_empty());
    let server_before = server.heads(&orders("3"))?;
    let me = head.enrollment.account_id.clone();
    let unit = units[0].clone();
    let oversized = |detail: String| {
        let (me, unit) = (me.clone(), unit.clone());
        move |doc: &mut Document| -> Result<()> {
            let order = doorstep_core::model::WorkOrder {
                id: new_record_id(),
                unit,
                title: "楼道灯坏了".into(),
                detail,
                created_at: now_millis(),
                created_by: me,
                assignee: None,
                events: BTreeMap::new(),
            };
            doc.put_record("orders", &order.id.clone(), &order)?;
            Ok(())
        }
    };
    tamper(&head, &orders("3"), oversized("灯".repeat(1024 * 1024 / 3)))?;
    let report = head.sync()?;
    let rejection = report
        .rejected
        .iter()
        .find(|r| r.doc == orders("3"))
        .context("rejected")?;
    assert_eq!(rejection.code, "too_large");
    assert_eq!(server.heads(&orders("3"))?, server_before);
    let kept = server.storage().quarantine(10)?;
    assert!(kept[0].payload_bytes > 1_000_000);
    assert!(kept[0].kept_bytes <= doorstep_server::storage::QUARANTINE_SAMPLE as i64);
    head.replica
        .with_store(|store| doorstep_core::sync::reset_document(store, &orders("3")))?;
    assert!(head.sync()?.rejected.is_empty());

    tamper(&head, &orders("3"), oversized(detail))?;
    let err = head.sync().expect_err("the request is too large");
    let err = err
        .downcast_ref::<doorstep_core::Error>()
        .context("a core error")?;
    assert_eq!(err.code(), "body_too_large");
    assert_eq!(server.heads(&orders("3"))?, server_before);
    Ok(())
}

#[test]
fn changes_that_make_automerge_panic_or_hang_are_refused_and_the_building_keeps_syncing()
-> Result<()> {
    // Sync messages made from the fuzzers' crashers (fuzz/crashers/sync_message_rules/):
    // `bundle-chunk-*`, their chunk sent as `fuzz/src/rules.rs`'s `chunk_message` sends it, on
    // which automerge 0.12's column decoder panics in `receive_sync_message`, whatever the
    // document; and `hang-hexane-bool-count` (written by `fuzz/examples/replay.rs message`), a
    // bundle whose boolean column ends in a count cut short, on which the published hexane
    // decoder looped forever, holding the request's thread and the document's lock
    // (vendor/README.md). Before that patch this test never returned.
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/automerge-panics");
    let mut messages: Vec<_> = std::fs::read_dir(&dir)?
        .map(|e| Ok(e?.path()))
        .collect::<Result<_>>()?;
    messages.sort();
    assert_eq!(messages.len(), 3);
    let server = TestServer::start()?;
    let head = Phone::enroll(&server, &server.code("3"))?;
    let token = head.enrollment.device_token.clone();
    let before: FieldDoc = server.read(&field("3"))?;
    for (i, path) in messages.iter().enumerate() {
        let (status, code) = raw_sync(&server, &token, &field("3"), std::fs::read(path)?)?;
        assert_eq!(status, 200, "{}: {code}", path.display());
        let kept = server.storage().quarantine(100)?;
        assert_eq!(
            kept.len(),
            i + 1,
            "{}: refused and quarantined",
            path.display()
        );
        let code = kept[0].code.as_deref();
        assert!(
            matches!(code, Some("unapplicable_changes" | "malformed_change")),
            "{}: {code:?}",
            path.display()
        );
    }
    assert_eq!(
        server.read::<FieldDoc>(&field("3"))?,
        before,
        "nothing of them is kept"
    );

    // The document is not stuck: the head's next visit syncs and arrives.
    let units = units_of(&server, "3")?;
    head.replica
        .record_visit(demo::CAMPAIGN, &units[0], DoorOutcome::NotHome, "")?;
    let report = head.sync()?;
    assert!(report.rejected.is_empty(), "{report:?}");
    let after: FieldDoc = server.read(&field("3"))?;
    assert!(after.visits.values().any(|v| v.unit == units[0]));
    Ok(())
}

/// A phone of an account that is admin of another community and building head of this one:
/// it is told only its roles here, and the server checks its writes with them, so an admin's
/// edit of this community's register is refused even when the phone claims otherwise.
#[test]
fn a_phone_writes_with_the_roles_its_account_holds_in_the_documents_community() -> Result<()> {
    let server = TestServer::start()?;
    let admin = server.admin_token()?;
    let enroll = |login: &str, grants: serde_json::Value| -> Result<Phone> {
        let account = api_ok(
            &server,
            "POST",
            "/api/v1/admin/accounts",
            Some(&serde_json::json!({ "login": login, "display_name": "", "grants": grants })),
            &admin,
        )?;
        let id = account["id"].as_str().context("an account id")?.to_string();
        api_ok(
            &server,
            "POST",
            "/api/v1/admin/assignments",
            Some(&serde_json::json!({
                "account_id": id, "community": demo::COMMUNITY, "building": "3",
            })),
            &admin,
        )?;
        let code = api_ok(
            &server,
            "POST",
            &format!("/api/v1/admin/accounts/{id}/enrollment-codes"),
            None,
            &admin,
        )?;
        Phone::enroll(&server, code["code"].as_str().context("a code")?)
    };
    let unit = units_of(&server, "3")?.remove(1);
    let edit_area = |phone: &Phone| {
        let unit = unit.clone();
        tamper(phone, &building_doc("3"), move |doc| {
            let obj = map_at(doc, &["units", &unit])?;
            doc.automerge().put(&obj, "area", 1_i64)?;
            Ok(())
        })
    };

    let elsewhere = enroll(
        "head-and-admin-elsewhere",
        serde_json::json!({ "other": ["admin"], demo::COMMUNITY: ["building_head"] }),
    )?;
    assert_eq!(
        elsewhere.enrollment.account.roles,
        vec![doorstep_core::model::Role::BuildingHead],
        "the phone is told the roles of its buildings' community"
    );
    let before = server.heads(&building_doc("3"))?;
    edit_area(&elsewhere)?;
    let report = elsewhere.sync()?;
    assert!(
        report
            .rejected
            .iter()
            .any(|r| r.doc == building_doc("3") && r.code == "admin_only"),
        "{report:?}"
    );
    assert_eq!(server.heads(&building_doc("3"))?, before, "nothing stored");

    // The same edit from an account that is admin here is the register's correction it is.
    let here = enroll(
        "head-and-admin-here",
        serde_json::json!({ demo::COMMUNITY: ["admin", "building_head"] }),
    )?;
    edit_area(&here)?;
    let report = here.sync()?;
    assert!(report.rejected.is_empty(), "{report:?}");
    assert_ne!(server.heads(&building_doc("3"))?, before, "stored");
    Ok(())
}
