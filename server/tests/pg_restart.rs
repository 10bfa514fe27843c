//! PostgreSQL restarts in the middle of a storm of syncs: while it is away the server answers
//! 503 with `Retry-After` (nothing is acknowledged that is not stored), and once it is back the
//! same server process serves again, without a restart, with every acknowledged change there.
//!
//! Its own test binary: it stops the shared test cluster (`scripts/postgres-test.sh pause`),
//! which no other test may be using meanwhile.

mod common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow};
use common::fleet::*;
use doorstep_core::sync::HttpTransport;

/// Stop or start the test cluster on the same data.
fn cluster(action: &str) -> Result<()> {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/postgres-test.sh");
    let status = std::process::Command::new(&script)
        .arg(action)
        .current_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .status()
        .with_context(|| format!("running {}", script.display()))?;
    anyhow::ensure!(status.success(), "postgres-test.sh {action} failed");
    Ok(())
}

/// The status line and headers of `GET /healthz`.
fn healthz(port: u16) -> Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply)?;
    Ok(reply)
}

#[test]
fn postgresql_restarting_mid_storm_answers_503_and_the_server_recovers_by_itself() -> Result<()> {
    const PHONES: usize = 11;
    let (db, codes) = community(PHONES)?;
    let port = free_port()?;
    let mut server = start(&db, port)?;
    let url = format!("http://127.0.0.1:{port}");
    let phones: Vec<Arc<Phone>> = codes
        .iter()
        .map(|(building, code)| Ok(Arc::new(enroll(&url, building, code)?)))
        .collect::<Result<_>>()?;
    let first = url.clone();
    on_phones(&phones, 4, move |_, phone| {
        sync_through(phone, &[HttpTransport::new(&first)], 0).map(|_| ())
    })?;

    // The storm: each phone records a visit and syncs, over and over; a sync that fails is
    // not acknowledged and the phone goes on (its visits stay pending on the phone).
    let done = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicUsize::new(0));
    let (acked, acks) = std::sync::mpsc::channel::<()>();
    let workers: Vec<_> = phones
        .iter()
        .map(|phone| {
            let (phone, done, failures, acked) =
                (phone.clone(), done.clone(), failures.clone(), acked.clone());
            let transport = HttpTransport::new(&url);
            std::thread::spawn(move || -> Result<()> {
                let mut round = 0;
                while !done.load(Ordering::SeqCst) {
                    record(&phone, round)?;
                    match phone
                        .replica
                        .with_store(|s| doorstep_core::sync::sync(s, &transport))
                    {
                        Ok(report) if report.complete => {
                            acknowledge(&phone)?;
                            let _ = acked.send(());
                        }
                        Ok(_) | Err(_) => {
                            failures.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    round += 1;
                }
                Ok(())
            })
        })
        .collect();
    drop(acked);
    let wait = |n: usize, what: &str| -> Result<()> {
        for _ in 0..n {
            acks.recv_timeout(Duration::from_secs(300))
                .map_err(|_| anyhow!("{what}"))?;
        }
        Ok(())
    };
    wait(PHONES * 2, "the storm did not get going")?;

    cluster("pause")?;
    let down = healthz(port)?;
    assert!(
        down.starts_with("HTTP/1.1 503"),
        "with PostgreSQL away the server answers 503: {down}"
    );
    assert!(
        down.to_ascii_lowercase().contains("retry-after:"),
        "and says when to retry: {down}"
    );
    let failed_while_down = failures.load(Ordering::SeqCst);
    cluster("resume")?;

    // The same process serves again: the storm acknowledges more syncs.
    wait(
        PHONES * 2,
        "the server did not recover after PostgreSQL came back",
    )?;
    done.store(true, Ordering::SeqCst);
    for worker in workers {
        worker
            .join()
            .map_err(|_| anyhow!("a phone thread panicked"))??;
    }
    let up = healthz(port)?;
    assert!(up.starts_with("HTTP/1.1 200"), "{up}");
    let transports = [HttpTransport::new(&url)];
    for phone in &phones {
        sync_through(phone, &transports, 0)?;
        acknowledge(phone)?;
    }
    eprintln!(
        "{failed_while_down} syncs failed by the time PostgreSQL was back, {} in all",
        failures.load(Ordering::SeqCst)
    );
    assert_one_server(&db, &phones)?;
    server.kill()?;
    server.wait()?;
    Ok(())
}
