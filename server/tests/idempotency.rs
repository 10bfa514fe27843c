//! Re-sent requests and replies lost after the server committed: nothing is duplicated and
//! nothing is lost, and what was acknowledged survives reopening the database.

mod common;

use std::sync::atomic::Ordering;

use anyhow::{Context as _, Result};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::*;
use doorstep_core::doc::FieldDoc;
use doorstep_core::model::DoorOutcome;
use doorstep_core::protocol::{self, DocStatus};
use doorstep_server::demo;
use doorstep_server::storage::SqliteStorage;
use doorstep_server::{AppState, Config};

fn accepted_events(server: &TestServer, doc: &str) -> Result<usize> {
    Ok(server
        .storage()
        .audit_events(0, 100_000)?
        .iter()
        .filter(|e| e.kind == "sync.accepted" && e.subject == doc)
        .count())
}

fn replay(server: &TestServer, body: Vec<u8>, token: &str) -> Result<protocol::SyncResponse> {
    let request = Request::post(protocol::SYNC_PATH)
        .header(header::CONTENT_TYPE, protocol::CONTENT_TYPE)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::from(body))?;
    let (status, bytes) = server.call(request)?;
    anyhow::ensure!(status == StatusCode::OK, "replay answered {status}");
    Ok(protocol::decode_response(&bytes)?)
}

#[test]
fn a_reply_lost_after_the_commit_loses_nothing_and_duplicates_nothing() -> Result<()> {
    let server = TestServer::start()?;
    let phone = Phone::enroll(&server, &server.code("6"))?;
    let units = units_of(&server, "6")?;
    phone
        .replica
        .record_visit(demo::CAMPAIGN, &units[0], DoorOutcome::NotHome, "")?;
    phone
        .replica
        .record_visit(demo::CAMPAIGN, &units[1], DoorOutcome::Collected, "")?;
    let heads_before_sync = phone.heads(&field("6"))?;

    // The server stores the visits, then the reply never arrives.
    phone
        .transport
        .lose_next_reply
        .store(true, Ordering::SeqCst);
    assert!(phone.sync().is_err());
    let (lost_body, token) = phone
        .transport
        .last_request
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .clone()
        .context("a request")?;
    let stored: FieldDoc = server.read(&field("6"))?;
    assert_eq!(
        stored.visits.len(),
        2,
        "the server committed before replying"
    );
    // The phone's store is exactly as before the failed round.
    assert_eq!(phone.heads(&field("6"))?, heads_before_sync);
    let field_id = field("6").to_string();
    assert_eq!(accepted_events(&server, &field_id)?, 1);

    // The next sync re-sends; the server already has it all.
    let report = phone.sync()?;
    assert!(report.rejected.is_empty());
    assert!(report.complete);
    let stored: FieldDoc = server.read(&field("6"))?;
    assert_eq!(stored.visits.len(), 2);
    assert_eq!(phone.heads(&field("6"))?, server.heads(&field("6"))?);
    assert_eq!(
        accepted_events(&server, &field_id)?,
        1,
        "no change, no new event"
    );

    // Replaying the lost request byte for byte changes nothing either.
    let heads = server.heads(&field("6"))?;
    let audit_len = server.storage().audit_events(0, 100_000)?.len();
    let response = replay(&server, lost_body.clone(), &token)?;
    assert!(response.docs.iter().all(|d| d.status == DocStatus::Ok));
    let response = replay(&server, lost_body, &token)?;
    assert!(response.docs.iter().all(|d| d.status == DocStatus::Ok));
    assert_eq!(server.heads(&field("6"))?, heads);
    assert_eq!(server.storage().audit_events(0, 100_000)?.len(), audit_len);
    assert!(server.storage().quarantine(10)?.is_empty());
    let stored: FieldDoc = server.read(&field("6"))?;
    assert_eq!(stored.visits.len(), 2);

    // After the replays the phone's manifest digest is stale; it recovers in one sync.
    let report = phone.sync()?;
    assert!(report.complete && report.rejected.is_empty());
    assert_eq!(phone.heads(&field("6"))?, server.heads(&field("6"))?);
    Ok(())
}

#[test]
fn a_request_sent_twice_in_a_row_stores_once() -> Result<()> {
    let server = TestServer::start()?;
    let phone = Phone::enroll(&server, &server.code("8"))?;
    let units = units_of(&server, "8")?;
    phone.replica.orders("8")?;
    phone.replica.create_order(&units[0], "门禁坏了", "")?;
    phone.sync()?;
    let (body, token) = phone
        .transport
        .last_request
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .clone()
        .context("a request")?;
    let heads = server.heads(&orders("8"))?;
    for _ in 0..3 {
        replay(&server, body.clone(), &token)?;
    }
    assert_eq!(server.heads(&orders("8"))?, heads);
    let doc: doorstep_core::doc::OrdersDoc = server.read(&orders("8"))?;
    assert_eq!(doc.orders.len(), 1);
    Ok(())
}

#[test]
fn acknowledged_changes_survive_reopening_the_database() -> Result<()> {
    let server = TestServer::start()?;
    let phone = Phone::enroll(&server, &server.code("10"))?;
    let units = units_of(&server, "10")?;
    for unit in units.iter().take(5) {
        phone
            .replica
            .record_visit(demo::CAMPAIGN, unit, DoorOutcome::Vacant, "")?;
        phone.sync()?;
    }
    let heads = server.heads(&field("10"))?;
    let path = server.dir.path().join("server.sqlite");
    // A second process view of the same file (the first one is still open, as after a crash
    // nobody checkpointed): everything acknowledged is there.
    let reopened = AppState::new(SqliteStorage::open(&path)?, Config::default());
    let meta = reopened
        .storage()
        .document_meta(&field("10"))?
        .context("field document")?;
    assert_eq!(meta.heads, heads);
    let doc: FieldDoc = reopened
        .docs()
        .hydrate(&field("10"))
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .context("field document")?;
    assert_eq!(doc.visits.len(), 5);
    reopened.storage().verify_audit_chain()?;
    Ok(())
}
