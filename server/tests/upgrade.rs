//! Upgrades from files a previous release wrote (issue 14), kept in `fixtures/upgrade/` and made
//! by `scripts/make-upgrade-fixtures.sh` with that release's own binaries: its server database
//! (the demo community, two buildings' ballots synced) and building 3's phone store with work
//! it never delivered. Today's server must open that database, migrate it and serve the same
//! tally; today's phone code must open that store and deliver the old work, which the tally
//! then counts.

mod common;

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::TestServer;
use doorstep_core::replica::Replica;
use doorstep_server::demo;
use serde_json::{Value, json};

/// The release the fixtures come from.
const RELEASE: &str = "7ad00ca";
/// The admin password the fixture script set.
const PASSWORD: &str = "upgrade-fixture-passphrase";

fn fixture(kind: &str, ext: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/upgrade")
        .join(format!("{kind}-{RELEASE}.{ext}"))
}

fn admin_token(server: &TestServer) -> Result<String> {
    let (status, body) = server.post_json(
        "/api/v1/auth/login",
        &json!({ "login": demo::ADMIN_LOGIN, "password": PASSWORD }),
        None,
    )?;
    anyhow::ensure!(status == StatusCode::OK, "login: {status} {body}");
    Ok(body["token"].as_str().context("token")?.to_string())
}

fn tally(server: &TestServer, token: &str) -> Result<Value> {
    let (status, bytes) = server.call(
        Request::get(format!("/api/v1/admin/campaigns/{}/tally", demo::CAMPAIGN))
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())?,
    )?;
    anyhow::ensure!(status == StatusCode::OK, "tally: {status}");
    Ok(serde_json::from_slice(&bytes)?)
}

fn saved_tally() -> Result<Value> {
    Ok(serde_json::from_slice(&std::fs::read(fixture(
        "tally", "json",
    ))?)?)
}

#[test]
fn a_previous_releases_server_database_opens_migrates_and_serves_the_same_tally() -> Result<()> {
    let server = TestServer::open_copy(&fixture("server", "sqlite"))?;
    let token = admin_token(&server)?;
    assert_eq!(tally(&server, &token)?, saved_tally()?);
    // The accounts that release had (roles were global then) see every community now.
    let me = common::api_ok(&server, "GET", "/api/v1/auth/me", None, &token)?;
    assert_eq!(me["communities"], json!(["*"]), "{me}");
    // Rebuilding the projections from the documents gives what the migration kept.
    let before = common::projections(&server)?;
    server.state.db().rebuild_projections()?;
    assert_eq!(common::projections(&server)?, before);
    Ok(())
}

#[test]
fn a_previous_releases_phone_delivers_its_undelivered_work_after_the_upgrade() -> Result<()> {
    let server = TestServer::open_copy(&fixture("server", "sqlite"))?;
    let token = admin_token(&server)?;
    let before = tally(&server, &token)?;

    let dir = tempfile::tempdir()?;
    let store = dir.path().join("phone.sqlite");
    std::fs::copy(fixture("phone", "sqlite"), &store)?;
    let phone = Replica::open(&store)?;
    let pending = phone.pending_changes()?;
    assert!(pending > 0, "the old phone holds undelivered work");

    let report = phone.sync(server.transport().as_ref(), "upgrade-test/0.1")?;
    assert!(report.complete, "{report:?}");
    assert!(report.rejected.is_empty(), "{report:?}");
    assert!(!report.upgrade_required, "{report:?}");
    assert_eq!(phone.pending_changes()?, 0);

    // The three ballots it held are counted now; nothing else moved.
    let after = tally(&server, &token)?;
    let returned = |t: &Value| t["returned"]["headcount"].as_i64();
    assert_eq!(
        returned(&after).context("returned")?,
        returned(&before).context("returned")? + 3,
        "{after}"
    );
    Ok(())
}
