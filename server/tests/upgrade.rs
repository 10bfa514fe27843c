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

/// The previous release's phone store, copied (the fixture is never changed) and opened by
/// today's code, as the updated app opens it.
fn old_phone() -> Result<(tempfile::TempDir, Replica)> {
    let dir = tempfile::tempdir()?;
    let store = dir.path().join("phone.sqlite");
    std::fs::copy(fixture("phone", "sqlite"), &store)?;
    let phone = Replica::open(&store)?;
    Ok((dir, phone))
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

    let (_dir, phone) = old_phone()?;
    let pending = phone.pending_changes()?;
    assert!(pending > 0, "the old phone holds undelivered work");

    let report = phone.sync(server.transport().as_ref(), "upgrade-test/0.1")?;
    assert!(report.complete, "{report:?}");
    assert!(report.rejected.is_empty(), "{report:?}");
    assert!(!report.upgrade_required, "{report:?}");
    assert_eq!(phone.pending_changes()?, 0);

    // The three ballots it held are counted now, and the correction replaced the first
    // owner's earlier ballot; nothing else moved.
    let after = tally(&server, &token)?;
    let returned = |t: &Value| t["returned"]["headcount"].as_i64();
    assert_eq!(
        returned(&after).context("returned")?,
        returned(&before).context("returned")? + 3,
        "{after}"
    );
    let superseded = |t: &Value| t["superseded"].as_array().map(Vec::len);
    assert_eq!(
        superseded(&after).context("superseded")?,
        superseded(&before).context("superseded")? + 1,
        "{after}"
    );
    Ok(())
}

/// The app of the previous release: the same requests, naming schema 1.
struct SchemaOne(std::sync::Arc<common::InProcess>);

impl doorstep_core::sync::Transport for SchemaOne {
    fn post(
        &self,
        body: Vec<u8>,
        token: &str,
    ) -> Result<Vec<u8>, doorstep_core::sync::TransportError> {
        let mut request =
            doorstep_core::protocol::decode_request(&body).expect("the phone's own request");
        request.schema = 1;
        self.0
            .post(doorstep_core::protocol::encode(&request), token)
    }

    fn enroll(&self, body: Vec<u8>) -> Result<Vec<u8>, doorstep_core::sync::TransportError> {
        self.0.enroll(body)
    }
}

#[test]
fn a_phone_still_on_schema_one_is_told_to_upgrade_and_loses_nothing() -> Result<()> {
    let server = TestServer::open_copy(&fixture("server", "sqlite"))?;
    let token = admin_token(&server)?;
    let before = tally(&server, &token)?;
    let (_dir, phone) = old_phone()?;
    let pending = phone.pending_changes()?;

    let report = phone.sync(&SchemaOne(server.transport()), "old-app/1")?;
    assert!(report.upgrade_required, "{report:?}");
    assert!(report.rejected.is_empty(), "{report:?}");
    assert_eq!(phone.pending_changes()?, pending, "every record is kept");
    assert_eq!(tally(&server, &token)?, before, "nothing was applied");

    // After the update the same store delivers it all.
    let report = phone.sync(server.transport().as_ref(), "new-app/2")?;
    assert!(report.complete && !report.upgrade_required, "{report:?}");
    assert_eq!(phone.pending_changes()?, 0);
    Ok(())
}

/// Set for the child process of the interrupted upgrade: the database it upgrades.
const CHILD_DB: &str = "DOORSTEP_UPGRADE_CHILD_DB";

/// Not a test of its own: the child process the interrupted-upgrade test kills. Lifts 7
/// documents, then aborts.
#[test]
fn upgrade_killed_after_seven_documents() -> Result<()> {
    let Some(db) = std::env::var_os(CHILD_DB) else {
        return Ok(());
    };
    let state = doorstep_server::AppState::new(
        doorstep_server::storage::SqliteStorage::open(db)?,
        doorstep_server::Config::default(),
    );
    let done = doorstep_server::upgrade::upgrade_at_most(&state, 7)?;
    assert_eq!(done.documents, 7);
    std::process::abort();
}

/// Every stored document's root `schema`.
fn schemas(server: &TestServer) -> Result<Vec<(String, u64)>> {
    let mut out = Vec::new();
    for meta in server.storage().documents()? {
        let schema = server
            .state
            .docs()
            .read(&meta.id, |doc| {
                autosurgeon::hydrate_prop::<_, u64, _, _>(&*doc, automerge::ROOT, "schema")
            })?
            .context("stored")??;
        out.push((meta.id.to_string(), schema));
    }
    Ok(out)
}

#[test]
fn the_servers_upgrade_lifts_every_document_and_resumes_after_an_interruption() -> Result<()> {
    use doorstep_core::doc::SCHEMA_VERSION;
    use doorstep_server::upgrade::upgrade_documents;
    // Uninterrupted: every document of the old database is lifted, once.
    let whole = TestServer::open_copy(&fixture("server", "sqlite"))?;
    let lifted = schemas(&whole)?;
    assert!(lifted.len() > 20, "{lifted:?}");
    assert!(
        lifted.iter().all(|(_, s)| *s == SCHEMA_VERSION),
        "{lifted:?}"
    );
    let again = upgrade_documents(&whole.state)?;
    assert_eq!(
        again.documents, 0,
        "an upgraded document is not touched again"
    );
    let events = whole.storage().audit_events(0, 100_000)?;
    let upgrades = events
        .iter()
        .filter(|e| e.actor == doorstep_server::upgrade::ACTOR)
        .count();
    assert_eq!(upgrades, lifted.len(), "one audited change per document");

    // A server process killed (SIGABRT, no cleanup) after lifting 7 documents, then started
    // again on what it left.
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("server.sqlite");
    std::fs::copy(fixture("server", "sqlite"), &db)?;
    let status = std::process::Command::new(std::env::current_exe()?)
        .args([
            "--exact",
            "upgrade_killed_after_seven_documents",
            "--nocapture",
        ])
        .env(CHILD_DB, &db)
        .status()?;
    use std::os::unix::process::ExitStatusExt as _;
    assert_eq!(
        status.signal(),
        Some(6),
        "the child aborted after the 7th: {status}"
    );
    let resumed = TestServer::open_copy(&db)?;
    assert_eq!(schemas(&resumed)?, lifted);
    let token = admin_token(&resumed)?;
    assert_eq!(tally(&resumed, &token)?, saved_tally()?);
    assert_eq!(
        common::projections(&resumed)?,
        common::projections(&whole)?,
        "the same projections as an uninterrupted upgrade"
    );
    Ok(())
}
