//! Work done offline is never stranded: a building reassigned while its head was offline, or a
//! re-enrollment of the same install (a new device id), leaves the head's undelivered records
//! on the phone, listed with why, and held on the server until an admin accepts them into the
//! document; then the phone lets the document go or sees it synced.

mod common;

use anyhow::{Context as _, Result};
use common::*;
use doorstep_core::doc::FieldDoc;
use doorstep_core::model::DoorOutcome;
use doorstep_server::demo;
use serde_json::json;

const ADMIN: &str = "/api/v1/admin";

/// The held work of `doc`, as the admin API lists it.
fn held(server: &TestServer, token: &str, doc: &str) -> Result<Vec<serde_json::Value>> {
    let listed = api_ok(server, "GET", &format!("{ADMIN}/held"), None, token)?;
    Ok(listed
        .as_array()
        .context("a list")?
        .iter()
        .filter(|h| h["doc"] == json!(doc))
        .cloned()
        .collect())
}

#[test]
fn work_recorded_before_a_reassignment_waits_for_an_admin_and_then_lands() -> Result<()> {
    let server = TestServer::start()?;
    let admin = server.admin_token()?;
    let phone = Phone::enroll(&server, &server.code("1"))?;
    let units = units_of(&server, "1")?;
    // Offline: three doors, then the office moves building 1 to someone else.
    for unit in &units[..3] {
        phone
            .replica
            .record_visit(demo::CAMPAIGN, unit, DoorOutcome::NotHome, "")?;
    }
    let account = phone.enrollment.account.id.clone();
    api_ok(
        &server,
        "DELETE",
        &format!("{ADMIN}/assignments/{account}/{}/1", demo::COMMUNITY),
        None,
        &admin,
    )?;

    let report = phone.sync()?;
    let doc = field("1").to_string();
    let rejection = report
        .rejected
        .iter()
        .find(|r| r.doc == field("1"))
        .context("the field document is reported")?;
    assert_eq!(rejection.code, "held_for_review", "{report:?}");
    // Nothing is lost on the phone, and it says which records wait and why.
    let on_phone: FieldDoc = phone.read(&field("1"))?;
    assert_eq!(on_phone.visits.len(), 3);
    assert!(phone.replica.pending_changes()? > 0);
    let on_server: FieldDoc = server.read(&field("1"))?;
    assert_eq!(on_server.visits.len(), 0, "nothing applied unseen");

    // The admin sees the held work and accepts it.
    let rows = held(&server, &admin, &doc)?;
    assert!(!rows.is_empty(), "held work is listed");
    assert!(rows.iter().all(|r| r["code"] == "held_for_review"));
    let id = rows[0]["id"].as_i64().context("id")?;
    api_ok(
        &server,
        "POST",
        &format!("{ADMIN}/held/{id}/accept"),
        None,
        &admin,
    )?;
    let on_server: FieldDoc = server.read(&field("1"))?;
    assert_eq!(on_server.visits.len(), 3, "the three visits landed");
    assert!(on_server.visits.values().all(|v| v.by == account));
    let (status, body) = api(
        &server,
        "POST",
        &format!("{ADMIN}/held/{id}/accept"),
        None,
        Some(&admin),
    )?;
    assert_eq!(status.as_u16(), 409);
    assert_eq!(body["error"]["code"], "already_accepted");

    // The next sync: the server has everything, so the phone lets the document go.
    let report = phone.sync()?;
    assert!(report.dropped.contains(&field("1")), "{report:?}");
    assert!(!phone.held()?.contains(&field("1")));
    assert_eq!(phone.replica.attention()?.rejections.len(), 0);
    Ok(())
}

#[test]
fn work_recorded_before_a_re_enrollment_of_the_same_install_is_accepted_by_an_admin() -> Result<()>
{
    let server = TestServer::start()?;
    let admin = server.admin_token()?;
    let phone = Phone::enroll(&server, &server.code("2"))?;
    let units = units_of(&server, "2")?;
    phone
        .replica
        .record_visit(demo::CAMPAIGN, &units[0], DoorOutcome::ComeBack, "")?;
    // The same install enrolls again (a new code, so a new device id) before it synced.
    let account = phone.enrollment.account.id.clone();
    let code = api_ok(
        &server,
        "POST",
        &format!("{ADMIN}/accounts/{account}/enrollment-codes"),
        None,
        &admin,
    )?["code"]
        .as_str()
        .context("code")?
        .to_string();
    phone.replica.enroll(
        phone.transport.as_ref(),
        "http://in-process",
        &code,
        "test phone",
        "0.1.0-test",
    )?;
    let report = phone.sync()?;
    let rejection = report
        .rejected
        .iter()
        .find(|r| r.doc == field("2"))
        .context("the field document is reported")?;
    assert_eq!(rejection.code, "foreign_actor", "{report:?}");
    let on_phone: FieldDoc = phone.read(&field("2"))?;
    assert_eq!(on_phone.visits.len(), 1, "kept on the phone");

    let rows = held(&server, &admin, &field("2").to_string())?;
    let id = rows
        .iter()
        .find(|r| r["code"] == "foreign_actor")
        .context("held as foreign_actor")?["id"]
        .as_i64()
        .context("id")?;
    api_ok(
        &server,
        "POST",
        &format!("{ADMIN}/held/{id}/accept"),
        None,
        &admin,
    )?;
    let on_server: FieldDoc = server.read(&field("2"))?;
    assert_eq!(on_server.visits.len(), 1);
    let report = phone.sync()?;
    assert!(report.rejected.is_empty(), "{report:?}");
    assert_eq!(phone.replica.pending_changes()?, 0, "everything delivered");
    assert_eq!(
        phone.heads(&field("2"))?,
        server.heads(&field("2"))?,
        "phone and server agree"
    );
    Ok(())
}
