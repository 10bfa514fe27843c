//! Operations and accounts: login sessions, device bookkeeping and revocation, health and
//! metrics, the append-only audit chain, compaction and eviction, and a real listening server
//! reached over HTTP by the phone's own transport, shut down gracefully.

mod common;

use std::time::Duration;

use anyhow::{Context as _, Result};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::*;
use doorstep_core::doc::FieldDoc;
use doorstep_core::model::DoorOutcome;
use doorstep_core::store::Store;
use doorstep_core::sync::{self, HttpTransport};
use doorstep_server::demo;
use doorstep_server::storage::SqliteStorage;
use doorstep_server::{AppState, Config};

fn get(server: &TestServer, path: &str, token: Option<&str>) -> Result<(StatusCode, Vec<u8>)> {
    let mut builder = Request::get(path);
    if let Some(t) = token {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    server.call(builder.body(Body::empty())?)
}

#[test]
fn a_session_opens_with_the_password_and_ends_at_logout() -> Result<()> {
    let server = TestServer::start()?;
    let token = server.admin_token()?;
    let (status, body) = get(&server, "/api/v1/auth/me", Some(&token))?;
    assert_eq!(status, StatusCode::OK);
    let me: serde_json::Value = serde_json::from_slice(&body)?;
    assert_eq!(me["login"], "admin");
    assert!(me.get("password_hash").is_none(), "never serialized");

    let (status, _) = server.call(
        Request::post("/api/v1/auth/logout")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())?,
    )?;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = get(&server, "/api/v1/auth/me", Some(&token))?;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    Ok(())
}

#[test]
fn devices_record_their_syncs_and_a_revoked_one_is_shut_out() -> Result<()> {
    let server = TestServer::start()?;
    let phone = Phone::enroll(&server, &server.code("2"))?;
    let units = units_of(&server, "2")?;
    phone
        .replica
        .record_visit(demo::CAMPAIGN, &units[0], DoorOutcome::NotHome, "")?;
    phone.sync()?;
    let device = server
        .storage()
        .device(&phone.enrollment.device_id)?
        .context("device")?;
    assert_eq!(device.app_version, env!("CARGO_PKG_VERSION"));
    assert!(device.last_sync_at.is_some());
    assert!(device.syncs >= 2);
    assert_eq!(device.pending, 1, "one document had undelivered work");
    assert_eq!(device.rejected, 0);
    assert!(device.bytes_up > 0 && device.bytes_down > 0);

    server
        .storage()
        .revoke_device(&phone.enrollment.device_id, "server")?;
    let err = phone.sync().expect_err("revoked");
    assert!(err.to_string().contains("device_revoked"), "{err}");
    let events = server.storage().audit_events(0, 10_000)?;
    for kind in [
        "device.enrolled",
        "device.revoked",
        "account.created",
        "assignment.added",
    ] {
        assert!(events.iter().any(|e| e.kind == kind), "{kind} audited");
    }
    Ok(())
}

#[test]
fn health_and_metrics_answer() -> Result<()> {
    let server = TestServer::start_with(Config {
        metrics_token: Some("operator-metrics-token".into()),
        ..Config::default()
    })?;
    let phone = Phone::enroll(&server, &server.code("1"))?;
    phone.sync()?;
    let (status, body) = get(&server, "/healthz", None)?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&body)?["status"],
        "ok"
    );
    let (status, body) = get(&server, "/metrics", Some("operator-metrics-token"))?;
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8(body)?;
    assert!(
        text.contains("doorstep_sync_requests_total{outcome=\"ok\"} 3"),
        "{text}"
    );
    assert!(text.contains("doorstep_sync_duration_seconds_count 3"));
    assert!(text.contains("# TYPE doorstep_sync_duration_seconds histogram"));
    Ok(())
}

#[test]
fn the_audit_log_is_append_only_and_its_chain_detects_tampering() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("audit.sqlite");
    let storage = SqliteStorage::open(&path)?;
    let state = AppState::new(storage, Config::default());
    demo::setup(&state, Some(ADMIN_PASSWORD)).map_err(|e| anyhow::anyhow!("{e}"))?;
    let count = state.storage().verify_audit_chain()?;
    assert!(count > 20);

    // The database itself refuses to change or delete an event.
    let conn = rusqlite::Connection::open(&path)?;
    assert!(
        conn.execute("UPDATE audit_log SET kind = 'x' WHERE seq = 1", [])
            .is_err()
    );
    assert!(
        conn.execute("DELETE FROM audit_log WHERE seq = 1", [])
            .is_err()
    );
    // Even with the guard removed, a rewritten event breaks the chain.
    conn.execute_batch(
        "DROP TRIGGER audit_log_no_update;
         UPDATE audit_log SET subject = 'forged' WHERE seq = 2;",
    )?;
    let err = state.storage().verify_audit_chain().expect_err("tampered");
    assert!(err.to_string().contains("event 2"), "{err}");
    Ok(())
}

#[test]
fn documents_compact_and_idle_ones_leave_memory() -> Result<()> {
    let server = TestServer::start_with(Config {
        compact_after_chunks: 4,
        ..Config::default()
    })?;
    let phone = Phone::enroll(&server, &server.code("11"))?;
    let units = units_of(&server, "11")?;
    for unit in units.iter().take(9) {
        phone
            .replica
            .record_visit(demo::CAMPAIGN, unit, DoorOutcome::Vacant, "")?;
        phone.sync()?;
    }
    let meta = server
        .storage()
        .document_meta(&field("11"))?
        .context("field")?;
    assert!(meta.chunks < 4, "compacted: {} chunks", meta.chunks);
    let cached = server.state.docs().len();
    assert!(cached > 0);
    assert_eq!(server.state.docs().evict_idle(Duration::ZERO), cached);
    assert_eq!(server.state.docs().len(), 0);
    // Reloaded strictly from snapshot + chunks, the document is whole.
    let doc: FieldDoc = server.read(&field("11"))?;
    assert_eq!(doc.visits.len(), 9);
    assert_eq!(server.heads(&field("11"))?, phone.heads(&field("11"))?);
    Ok(())
}

#[test]
fn a_real_listener_serves_the_http_transport_and_shuts_down_gracefully() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let storage = SqliteStorage::open(dir.path().join("live.sqlite"))?;
    let state = AppState::new(storage, Config::default());
    let info = demo::setup(&state, Some(ADMIN_PASSWORD)).map_err(|e| anyhow::anyhow!("{e}"))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let url = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = rt.spawn(doorstep_server::serve(state.clone(), listener, async {
        let _ = stopped.await;
    }));

    let code = info
        .heads
        .iter()
        .find(|(_, b, _)| b == "4")
        .map(|(_, _, c)| c.clone())
        .context("code")?;
    let enrollment = sync::enroll(&url, &code)?;
    let mut store = Store::open_in_memory()?;
    sync::save_enrollment(&mut store, &url, &enrollment)?;
    let transport = HttpTransport::new(&url);
    let report = sync::sync(&mut store, &transport)?;
    assert!(report.complete);
    assert_eq!(store.document_ids()?.len(), 5);
    let again = sync::sync(&mut store, &transport)?;
    assert_eq!(again.round_trips, 1);

    stop.send(()).ok();
    rt.block_on(server)??;
    // After shutdown the phone gets a network error and keeps everything.
    let err = sync::sync(&mut store, &transport).expect_err("server stopped");
    assert!(matches!(err, doorstep_core::Error::Network(_)), "{err}");
    assert_eq!(store.document_ids()?.len(), 5);
    Ok(())
}
