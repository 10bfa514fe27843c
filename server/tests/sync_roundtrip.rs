//! Enroll and sync against the real router: phones receive their buildings, record work offline,
//! and converge with each other and with the server; unchanged documents cost no work.

mod common;

use std::collections::BTreeSet;

use anyhow::Result;
use common::*;
use doorstep_core::doc::{DocId, FieldDoc, OrdersDoc, RegisterDoc};
use doorstep_core::model::{DoorOutcome, Role};
use doorstep_core::protocol;
use doorstep_server::auth;
use doorstep_server::demo;
use doorstep_server::storage::{Assignment, Grants, NewAccount};

fn deputy_code(server: &TestServer, building: &str) -> Result<String> {
    let storage = server.storage();
    let account = storage.create_account(
        &NewAccount {
            login: format!("deputy-{building}"),
            display_name: "副楼栋长".into(),
            grants: Grants::one("tpy", &[Role::BuildingHead]).expect("a role"),
            password_hash: None,
        },
        "server",
    )?;
    storage.assign(
        &Assignment {
            account_id: account.id.clone(),
            community: demo::COMMUNITY.into(),
            building: building.into(),
        },
        "server",
    )?;
    let (code, _) = auth::issue_enrollment_code(storage, &account.id, 60_000, "server")?;
    Ok(code)
}

#[test]
fn a_phone_receives_exactly_its_buildings_documents() -> Result<()> {
    let server = TestServer::start()?;
    let phone = Phone::enroll(&server, &server.code("3"))?;
    let held: BTreeSet<String> = phone.held()?.iter().map(|d| d.to_string()).collect();
    let expected: BTreeSet<String> = [
        "building/tpy/3",
        "campaign/election-2025",
        "field/election-2025/3",
        "orders/tpy/3",
        "register/tpy",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(held, expected);
    for id in phone.held()? {
        assert_eq!(phone.heads(&id)?, server.heads(&id)?, "{id}");
    }
    let register: RegisterDoc = phone.read(&"register/tpy".parse()?)?;
    assert_eq!(register.total_units, 306);
    let field: FieldDoc = phone.read(&field("3"))?;
    assert!(!field.roll.is_empty());
    assert!(field.roll.values().all(|e| e.building == "3"));
    Ok(())
}

#[test]
fn two_phones_on_one_building_converge_through_the_server() -> Result<()> {
    let server = TestServer::start()?;
    let head = Phone::enroll(&server, &server.code("3"))?;
    let deputy = Phone::enroll(&server, &deputy_code(&server, "3")?)?;
    let units = units_of(&server, "3")?;

    // Both work offline.
    head.replica
        .record_visit(demo::CAMPAIGN, &units[0], DoorOutcome::NotHome, "")?;
    head.replica
        .record_visit(demo::CAMPAIGN, &units[1], DoorOutcome::Delivered, "")?;
    let order = head.replica.create_order(&units[2], "楼道灯坏了", "")?;
    deputy
        .replica
        .record_visit(demo::CAMPAIGN, &units[3], DoorOutcome::Refused, "")?;

    // They reconnect one after the other, then once more.
    let r1 = head.sync()?;
    assert!(r1.rejected.is_empty(), "{:?}", r1.rejected);
    assert!(r1.complete);
    let r2 = deputy.sync()?;
    assert!(r2.rejected.is_empty(), "{:?}", r2.rejected);
    let r3 = head.sync()?;
    assert!(r3.docs_changed >= 1, "the head receives the deputy's visit");

    for id in [field("3"), orders("3"), building_doc("3")] {
        let server_heads = server.heads(&id)?;
        assert_eq!(head.heads(&id)?, server_heads, "{id} on the head's phone");
        assert_eq!(
            deputy.heads(&id)?,
            server_heads,
            "{id} on the deputy's phone"
        );
    }
    let on_server: FieldDoc = server.read(&field("3"))?;
    assert_eq!(on_server.visits.len(), 3);
    let on_deputy: FieldDoc = deputy.read(&field("3"))?;
    assert_eq!(on_deputy, on_server);
    let orders_doc: OrdersDoc = deputy.read(&orders("3"))?;
    assert!(orders_doc.orders.contains_key(&order));

    // Every accepted change was audited, and the chain holds.
    let events = server.storage().audit_events(0, 10_000)?;
    assert!(events.iter().any(|e| e.kind == "sync.accepted"));
    server.storage().verify_audit_chain()?;
    Ok(())
}

#[test]
fn an_unchanged_phone_costs_one_small_round_trip() -> Result<()> {
    let server = TestServer::start()?;
    let phone = Phone::enroll(&server, &server.code("5"))?;
    let report = phone.sync()?;
    assert_eq!(report.round_trips, 1);
    assert_eq!(report.docs_changed, 0);
    assert!(report.complete);
    // One request naming no document, one reply with the manifest digest: no per-document cost.
    assert!(
        report.bytes_up < 100,
        "request of {} bytes",
        report.bytes_up
    );
    assert!(
        report.bytes_down < 200,
        "reply of {} bytes",
        report.bytes_down
    );
    Ok(())
}

#[test]
fn server_news_reaches_an_idle_phone_in_one_round_trip() -> Result<()> {
    let server = TestServer::start()?;
    let head = Phone::enroll(&server, &server.code("7"))?;
    let deputy = Phone::enroll(&server, &deputy_code(&server, "7")?)?;
    let units = units_of(&server, "7")?;
    deputy
        .replica
        .record_visit(demo::CAMPAIGN, &units[0], DoorOutcome::ComeBack, "")?;
    deputy.sync()?;
    let report = head.sync()?;
    assert_eq!(report.round_trips, 1, "{report:?}");
    assert_eq!(report.docs_changed, 1);
    assert_eq!(head.heads(&field("7"))?, server.heads(&field("7"))?);
    Ok(())
}

#[test]
fn a_new_assignment_arrives_with_the_next_sync_and_a_removed_one_leaves() -> Result<()> {
    let server = TestServer::start()?;
    let phone = Phone::enroll(&server, &server.code("2"))?;
    let assignment = Assignment {
        account_id: phone.enrollment.account_id.clone(),
        community: demo::COMMUNITY.into(),
        building: "9".into(),
    };
    server.storage().assign(&assignment, "server")?;
    let report = phone.sync()?;
    assert!(report.complete);
    let held = phone.held()?;
    assert!(held.contains(&field("9")) && held.contains(&building_doc("9")));
    let account = report.account.expect("account info");
    assert!(account.assignments.iter().any(|a| a.building == "9"));

    server.storage().unassign(&assignment, "server")?;
    let report = phone.sync()?;
    let held = phone.held()?;
    assert!(!held.contains(&field("9")), "{held:?}");
    assert!(report.dropped.contains(&building_doc("9")));
    assert!(held.contains(&field("2")));
    Ok(())
}

#[test]
fn sync_requests_are_a_documented_cbor_envelope() -> Result<()> {
    let server = TestServer::start()?;
    let phone = Phone::enroll(&server, &server.code("1"))?;
    let (body, _) = phone
        .transport
        .last_request
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .clone()
        .expect("a request");
    let request = protocol::decode_request(&body)?;
    assert_eq!(request.protocol, protocol::PROTOCOL_VERSION);
    assert_eq!(request.app_version, env!("CARGO_PKG_VERSION"));
    assert!(request.manifest.is_some());
    let _: Vec<DocId> = request
        .docs
        .iter()
        .map(|d| d.id.parse())
        .collect::<Result<_, _>>()?;
    Ok(())
}

/// A transport that holds the first request until the test lets it go (or a minute passes, so
/// that a phone that wrongly keeps its store locked fails the test instead of hanging it).
struct Held {
    inner: std::sync::Arc<InProcess>,
    gate: std::sync::Mutex<Option<(std::sync::mpsc::Sender<()>, std::sync::mpsc::Receiver<()>)>>,
    released_by_test: std::sync::atomic::AtomicBool,
}

impl doorstep_core::sync::Transport for Held {
    fn post(
        &self,
        body: Vec<u8>,
        token: &str,
    ) -> Result<Vec<u8>, doorstep_core::sync::TransportError> {
        let gate = self.gate.lock().expect("gate").take();
        if let Some((entered, release)) = gate {
            entered.send(()).expect("the test listens");
            let released = release
                .recv_timeout(std::time::Duration::from_secs(60))
                .is_ok();
            self.released_by_test
                .store(released, std::sync::atomic::Ordering::SeqCst);
        }
        self.inner.post(body, token)
    }

    fn enroll(&self, body: Vec<u8>) -> Result<Vec<u8>, doorstep_core::sync::TransportError> {
        self.inner.enroll(body)
    }
}

#[test]
fn a_head_keeps_working_while_a_sync_waits_on_the_server_and_nothing_recorded_meanwhile_is_lost()
-> Result<()> {
    let server = TestServer::start()?;
    let head = Phone::enroll(&server, &server.code("3"))?;
    let units = units_of(&server, "3")?;
    head.replica
        .record_visit(demo::CAMPAIGN, &units[0], DoorOutcome::Delivered, "")?;

    let (entered_tx, entered) = std::sync::mpsc::channel();
    let (release, release_rx) = std::sync::mpsc::channel();
    let held = Held {
        inner: head.transport.clone(),
        gate: std::sync::Mutex::new(Some((entered_tx, release_rx))),
        released_by_test: Default::default(),
    };
    let report = std::thread::scope(|s| -> Result<_> {
        let syncing = s.spawn(|| head.replica.sync(&held, "0.1.0-test"));
        entered.recv()?;
        // The request is on the network. The unit list reads and a door is recorded at once.
        assert_eq!(
            head.replica.units("3", Some(demo::CAMPAIGN))?.len(),
            units.len()
        );
        head.replica
            .record_visit(demo::CAMPAIGN, &units[1], DoorOutcome::NotHome, "回头再来")?;
        release.send(())?;
        Ok(syncing.join().expect("the sync thread")?)
    })?;
    assert!(
        held.released_by_test
            .load(std::sync::atomic::Ordering::SeqCst),
        "the visit was recorded while the request waited (the store was not locked across it)"
    );
    assert!(report.rejected.is_empty(), "{report:?}");

    // Both visits are on the phone, and (after the sync that follows) on the server.
    let visited = |doc: &FieldDoc| -> BTreeSet<String> {
        doc.visits.values().map(|v| v.unit.clone()).collect()
    };
    let expected: BTreeSet<String> = [units[0].clone(), units[1].clone()].into();
    assert_eq!(visited(&head.read::<FieldDoc>(&field("3"))?), expected);
    let report = head.sync()?;
    assert!(report.complete && report.rejected.is_empty(), "{report:?}");
    assert_eq!(visited(&server.read::<FieldDoc>(&field("3"))?), expected);
    assert_eq!(head.replica.pending_changes()?, 0);
    Ok(())
}

#[test]
fn a_door_timeline_says_which_records_wait_on_the_phone_until_the_server_has_them() -> Result<()> {
    let server = TestServer::start()?;
    let head = Phone::enroll(&server, &server.code("3"))?;
    let unit = units_of(&server, "3")?.remove(0);
    head.replica
        .record_visit(demo::CAMPAIGN, &unit, DoorOutcome::NotHome, "")?;
    head.replica.record_delivery(demo::CAMPAIGN, &unit)?;
    let waiting = head.replica.unit_timeline(demo::CAMPAIGN, &unit)?;
    assert_eq!(waiting.len(), 2);
    assert!(
        waiting.iter().all(|e| !e.synced),
        "⏳待同步 before the sync: {waiting:?}"
    );
    assert!(waiting[0].at <= waiting[1].at, "oldest first");

    head.sync()?;
    let later = head.replica.unit_timeline(demo::CAMPAIGN, &unit)?;
    assert!(
        later.iter().all(|e| e.synced),
        "✓已同步 after it: {later:?}"
    );
    // One more door outcome: only it waits.
    head.replica
        .record_visit(demo::CAMPAIGN, &unit, DoorOutcome::Delivered, "")?;
    let mixed = head.replica.unit_timeline(demo::CAMPAIGN, &unit)?;
    assert_eq!(mixed.iter().filter(|e| !e.synced).count(), 1, "{mixed:?}");
    Ok(())
}

#[test]
fn a_request_that_fails_midway_leaves_no_unstored_change_in_the_servers_memory() -> Result<()> {
    let server = TestServer::start()?;
    let head = Phone::enroll(&server, &server.code("4"))?;
    let units = units_of(&server, "4")?;
    // Offline: a household correction (the building document) and a 微心愿 (the orders one).
    head.replica.edit_household(
        &units[0],
        &doorstep_core::replica::HouseholdEdit {
            residents: Some(61),
            ..Default::default()
        },
    )?;
    head.replica.create_order(&units[0], "修灯", "楼道灯坏了")?;
    // The orders document is damaged in storage and not in memory: loading it fails in the
    // middle of the request, after the building document's change was received.
    let id = orders("4").to_string();
    server.state.db().write_raw(&mut |db| {
        db.execute(
            "UPDATE documents SET snapshot = ?2 WHERE id = ?1",
            doorstep_server::args![id, vec![0u8]],
        )?;
        Ok(())
    })?;
    server.state.docs().invalidate(&orders("4"));
    let stored = server.heads(&building_doc("4"))?;

    let err = head
        .sync()
        .expect_err("the damaged document fails the request");
    let err = err
        .downcast_ref::<doorstep_core::Error>()
        .expect("a core error");
    assert!(
        matches!(err, doorstep_core::Error::Network(_)),
        "a server failure means retry: {err:?}"
    );
    assert_eq!(
        server.heads(&building_doc("4"))?,
        stored,
        "nothing was stored"
    );
    let in_memory: doorstep_core::doc::BuildingDoc = server.read(&building_doc("4"))?;
    assert_ne!(
        in_memory.households[&units[0]].residents, 61,
        "the server's memory holds only what its storage holds"
    );
    assert_eq!(
        head.replica.pending_changes()?,
        2,
        "the phone keeps both actions for the next sync"
    );
    Ok(())
}
