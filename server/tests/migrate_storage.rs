//! `doorstep-server migrate-storage` moves a community from SQLite to PostgreSQL and back with
//! nothing lost or changed, and refuses to copy into a database that holds anything.

mod common;

use std::process::Command;

use anyhow::{Context as _, Result};
use common::*;
use doorstep_core::model::DoorOutcome;
use doorstep_server::demo;
use doorstep_server::storage::postgres::PoolOptions;
use doorstep_server::storage::{self, Backend};

fn migrate(from: &str, to: &str) -> Result<std::process::Output> {
    Ok(Command::new(env!("CARGO_BIN_EXE_doorstep-server"))
        .args(["migrate-storage", "--from", from, "--to", to])
        .env("RUST_LOG", "warn")
        .output()?)
}

/// Everything a user could see differ between two databases.
fn content(db: &dyn Backend) -> Result<String> {
    let accounts = db.accounts()?;
    let devices = db.devices()?;
    let assignments = db.assignments(None)?;
    let codes = db.enrollment_codes(None)?;
    let documents: Vec<_> = db
        .documents()?
        .into_iter()
        .map(|m| {
            let stored = db.load_document(&m.id)?.context("listed document")?;
            Ok(format!("{:?} {}", m, stored.bytes.len()))
        })
        .collect::<Result<_>>()?;
    let sync_rows: Vec<_> = devices
        .iter()
        .map(|d| db.sync_rows(&d.id))
        .collect::<Result<_, _>>()?;
    let audit = db.audit_events(0, usize::MAX >> 1)?;
    let quarantine = db.quarantine(1_000)?;
    Ok(format!(
        "{accounts:#?}\n{devices:#?}\n{assignments:#?}\n{codes:#?}\n{documents:#?}\n\
         {sync_rows:#?}\n{audit:#?}\n{quarantine:#?}\n{:#?}\n{}",
        db.projection_rows()?,
        db.server_device()
    ))
}

#[test]
fn a_community_moves_to_postgresql_and_back_unchanged() -> Result<()> {
    // The demo community with a day's work synced in.
    let server = TestServer::start()?;
    let phone = Phone::enroll(&server, &server.code("4"))?;
    for unit in units_of(&server, "4")?.iter().take(5) {
        phone
            .replica
            .record_visit(demo::CAMPAIGN, unit, DoorOutcome::ComeBack, "")?;
    }
    phone.sync()?;
    let visits = server.state.db().projection_rows()?;
    assert_eq!(
        visits.get("p_visits").map(Vec::len),
        Some(5),
        "the day's visits"
    );
    let sqlite = server.dir.path().join("server.sqlite");
    let sqlite = sqlite.to_str().context("path")?.to_string();
    let before = content(server.state.db())?;

    let postgres = fresh_postgres()?;
    let out = migrate(&format!("sqlite:{sqlite}"), &postgres)?;
    assert!(
        out.status.success(),
        "SQLite to PostgreSQL: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains("copied and verified"), "{printed}");
    let on_postgres = storage::open(&postgres, PoolOptions::default())?;
    assert_eq!(content(on_postgres.as_ref())?, before, "on PostgreSQL");
    drop(on_postgres);

    let back = tempfile::tempdir()?;
    let back = back.path().join("back.sqlite");
    let back = back.to_str().context("path")?.to_string();
    let out = migrate(&postgres, &back)?;
    assert!(
        out.status.success(),
        "PostgreSQL to SQLite: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let round_trip = storage::open(&back, PoolOptions::default())?;
    assert_eq!(content(round_trip.as_ref())?, before, "back on SQLite");
    round_trip.verify_audit_chain()?;

    // Copying into a database that holds a community is refused, and changes nothing there.
    let out = migrate(&format!("sqlite:{sqlite}"), &postgres)?;
    assert!(!out.status.success(), "a non-empty target is refused");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("not empty"), "{said}");
    let on_postgres = storage::open(&postgres, PoolOptions::default())?;
    assert_eq!(
        content(on_postgres.as_ref())?,
        before,
        "the target is untouched"
    );
    drop(server);
    Ok(())
}

#[test]
fn a_copy_that_does_not_verify_leaves_the_target_empty() -> Result<()> {
    let server = TestServer::start()?;
    let phone = Phone::enroll(&server, &server.code("4"))?;
    for unit in units_of(&server, "4")?.iter().take(3) {
        phone
            .replica
            .record_visit(demo::CAMPAIGN, unit, DoorOutcome::ComeBack, "")?;
    }
    phone.sync()?;
    // The source's projections no longer follow its documents (as after a crash of an old
    // release): the target's, rebuilt from the same documents, cannot equal them.
    server.state.db().write_raw(&mut |db| {
        db.execute("UPDATE p_visits SET outcome = 'refused'", &[])?;
        Ok(())
    })?;
    let sqlite = server.dir.path().join("server.sqlite");
    let sqlite = sqlite.to_str().context("path")?.to_string();
    let dir = tempfile::tempdir()?;
    let target = dir.path().join("target.sqlite");
    let target = target.to_str().context("path")?.to_string();

    let out = migrate(&format!("sqlite:{sqlite}"), &target)?;
    assert!(!out.status.success(), "a copy that differs is refused");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("rebuild-projections"),
        "says what to do: {said}"
    );
    let copy = storage::open(&target, PoolOptions::default())?;
    assert!(copy.accounts()?.is_empty(), "no account was left behind");
    assert!(copy.documents()?.is_empty(), "no document was left behind");
    assert!(copy.devices()?.is_empty(), "no device was left behind");
    assert_eq!(
        copy.verify_audit_chain()?,
        0,
        "no audit event was left behind"
    );
    drop(copy);

    // Once the source's projections are rebuilt, the same target takes the copy.
    server.state.db().rebuild_projections()?;
    let out = migrate(&format!("sqlite:{sqlite}"), &target)?;
    assert!(
        out.status.success(),
        "after the rebuild: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let copy = storage::open(&target, PoolOptions::default())?;
    assert_eq!(content(copy.as_ref())?, content(server.state.db())?);
    drop(server);
    Ok(())
}
