//! The server process is killed (SIGKILL) in the middle of a storm of syncs and restarted on the
//! same database: every change a phone saw acknowledged is there, and the phones resume.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow};
use common::fleet::{free_port, start};
use common::*;
use doorstep_core::doc::FieldDoc;
use doorstep_core::model::DoorOutcome;
use doorstep_core::replica::Replica;
use doorstep_core::store::Store;
use doorstep_core::sync::{self, HttpTransport};
use doorstep_server::storage::SqliteStorage;
use doorstep_server::{AppState, Config, demo};

struct Head {
    replica: Replica,
    building: String,
    /// Visit ids recorded before a sync that the server answered.
    acknowledged: Mutex<BTreeSet<String>>,
}

#[test]
fn a_killed_server_keeps_every_acknowledged_change_and_phones_resume() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("crash.sqlite");
    let info = {
        let state = AppState::new(SqliteStorage::open(&db)?, Config::default());
        demo::setup(&state, Some(ADMIN_PASSWORD)).map_err(|e| anyhow!("{e}"))?
    };
    let port = free_port()?;
    let url = format!("http://127.0.0.1:{port}");
    let mut server = start(&db, port)?;

    let mut heads = Vec::new();
    for (_, building, code) in &info.heads {
        let enrollment = sync::enroll(&url, code)?;
        let mut store = Store::open_in_memory()?;
        sync::save_enrollment(&mut store, &url, &enrollment)?;
        let replica = Replica::from_store(store);
        let identity =
            sync::identity_of(enrollment.device_id, &enrollment.account).context("identity")?;
        replica.set_identity(&identity)?;
        replica.with_store(|s| sync::sync(s, &HttpTransport::new(&url)))?;
        heads.push(Arc::new(Head {
            replica,
            building: building.clone(),
            acknowledged: Mutex::new(BTreeSet::new()),
        }));
    }

    // The storm: every head records a visit and syncs, over and over, until the server dies.
    let stop = Arc::new(AtomicBool::new(false));
    let (acked, acks) = std::sync::mpsc::channel::<()>();
    let workers: Vec<_> = heads
        .iter()
        .map(|head| {
            let head = head.clone();
            let stop = stop.clone();
            let url = url.clone();
            let acked = acked.clone();
            std::thread::spawn(move || -> Result<usize> {
                let transport = HttpTransport::new(&url);
                let units: Vec<String> = head
                    .replica
                    .units(&head.building, Some(demo::CAMPAIGN))?
                    .into_iter()
                    .map(|u| u.unit.code)
                    .collect();
                let mut recorded = Vec::new();
                let mut rounds = 0;
                while !stop.load(Ordering::SeqCst) {
                    let unit = &units[rounds % units.len()];
                    recorded.push(head.replica.record_visit(
                        demo::CAMPAIGN,
                        unit,
                        DoorOutcome::ComeBack,
                        "",
                    )?);
                    match head.replica.with_store(|s| sync::sync(s, &transport)) {
                        Ok(report) if report.complete => {
                            if let Ok(mut ack) = head.acknowledged.lock() {
                                ack.extend(recorded.iter().cloned());
                            }
                            let _ = acked.send(());
                        }
                        Ok(_) => {}
                        Err(_) => break,
                    }
                    rounds += 1;
                }
                Ok(rounds)
            })
        })
        .collect();
    // Kill it mid-storm: once the phones have had a few syncs acknowledged each (and keep
    // sending), not after a guessed time.
    drop(acked);
    for _ in 0..heads.len() * 3 {
        acks.recv_timeout(Duration::from_secs(120))
            .map_err(|_| anyhow!("the storm did not get going"))?;
    }
    server.kill()?; // SIGKILL: no shutdown, no checkpoint.
    server.wait()?;
    stop.store(true, Ordering::SeqCst);
    let mut rounds = 0;
    for worker in workers {
        rounds += worker.join().map_err(|_| anyhow!("a worker panicked"))??;
    }
    assert!(rounds > heads.len(), "the storm ran ({rounds} rounds)");

    // Restarted on the same file: every acknowledged visit is there.
    let mut server = start(&db, port)?;
    let check = AppState::new(SqliteStorage::open(&db)?, Config::default());
    let mut acknowledged_total = 0;
    for head in &heads {
        let field: FieldDoc = check
            .docs()
            .hydrate(&field(&head.building))
            .map_err(|e| anyhow!("{e}"))?
            .context("field")?;
        let ack = head.acknowledged.lock().map_err(|_| anyhow!("poisoned"))?;
        acknowledged_total += ack.len();
        for visit in ack.iter() {
            assert!(
                field.visits.contains_key(visit),
                "building {}: acknowledged visit {visit} lost",
                head.building
            );
        }
    }
    assert!(acknowledged_total > 0);
    check.storage().verify_audit_chain()?;
    drop(check);

    // The phones resume, deliver what was in flight, and converge with the server.
    let transport = HttpTransport::new(&url);
    for head in &heads {
        let report = head.replica.with_store(|s| sync::sync(s, &transport))?;
        assert!(report.complete && report.rejected.is_empty(), "{report:?}");
    }
    let check = AppState::new(SqliteStorage::open(&db)?, Config::default());
    for head in &heads {
        let id = field(&head.building);
        let on_server = check.storage().document_meta(&id)?.context("field")?.heads;
        let device = head.replica.identity()?.context("identity")?.device;
        let mut on_phone = head
            .replica
            .with_store(|s| Ok(s.load_document(&id, &device)?.map(|mut d| d.heads())))?
            .context("held")?;
        on_phone.sort();
        assert_eq!(on_phone, on_server, "building {}", head.building);
    }
    server.kill()?;
    server.wait()?;
    Ok(())
}
