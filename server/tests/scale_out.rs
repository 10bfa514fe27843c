//! Several `doorstep-server serve` processes on one PostgreSQL behave as one server: phones
//! sync through either, documents shared by devices on different processes converge, nothing
//! is duplicated, the projections equal a rebuild, and a process killed mid-storm loses
//! nothing it acknowledged while phones carry on through the other.

mod common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow};
use common::fleet::*;
use doorstep_core::sync::HttpTransport;

#[test]
fn two_processes_on_one_postgresql_behave_as_one_server() -> Result<()> {
    const PHONES: usize = 200;
    let (db, codes) = community(PHONES)?;
    let (mut servers, _, urls) = processes(&db, 2)?;

    // Enroll through either process, alternately.
    let phones = enroll_through(&urls, &codes)?;

    // Each phone syncs through one process, records, syncs through the other, twice over.
    let attempts = Arc::new(AtomicUsize::new(0));
    let counted = attempts.clone();
    let urls_for_phones = urls.clone();
    on_phones(&phones, 6, move |i, phone| {
        let transports: Vec<HttpTransport> = urls_for_phones
            .iter()
            .map(|u| HttpTransport::new(u))
            .collect();
        counted.fetch_add(sync_through(phone, &transports, i % 2)?, Ordering::SeqCst);
        for round in 0..2 {
            record(phone, i + round)?;
            counted.fetch_add(
                sync_through(phone, &transports, (i + round + 1) % 2)?,
                Ordering::SeqCst,
            );
            acknowledge(phone)?;
        }
        Ok(())
    })?;
    // Everyone syncs once more (through the other process than before), so every phone has
    // what the others sent.
    sync_all(&phones, &urls, 6)?;
    eprintln!(
        "{PHONES} phones, {} sync attempts for {} syncs",
        attempts.load(Ordering::SeqCst),
        PHONES * 3
    );
    assert_one_server(&db, &phones)?;
    stop(&mut servers)
}

#[test]
fn a_killed_process_loses_nothing_it_acknowledged_and_phones_carry_on_through_the_other()
-> Result<()> {
    const PHONES: usize = 22;
    let (db, codes) = community(PHONES)?;
    let (mut servers, _, urls) = processes(&db, 2)?;
    let phones = enroll_through(&urls, &codes)?;
    sync_all(&phones, &urls, 4)?;

    // The storm: every phone records and syncs through the first process while it lives,
    // then through the second.
    let done = Arc::new(AtomicBool::new(false));
    let (acked, acks) = std::sync::mpsc::channel::<()>();
    let workers: Vec<_> = phones
        .iter()
        .map(|phone| {
            let phone = phone.clone();
            let done = done.clone();
            let urls = urls.clone();
            let acked = acked.clone();
            std::thread::spawn(move || -> Result<usize> {
                let transports: Vec<HttpTransport> =
                    urls.iter().map(|u| HttpTransport::new(u)).collect();
                let mut round = 0;
                while !done.load(Ordering::SeqCst) {
                    record(&phone, round)?;
                    sync_through(&phone, &transports, 0)?;
                    acknowledge(&phone)?;
                    let _ = acked.send(());
                    round += 1;
                }
                Ok(round)
            })
        })
        .collect();
    drop(acked);
    // SIGKILL the first process once every phone has had a few syncs acknowledged.
    for _ in 0..PHONES * 3 {
        acks.recv_timeout(Duration::from_secs(300))
            .map_err(|_| anyhow!("the storm did not get going"))?;
    }
    stop(&mut servers[..1])?;
    // The storm goes on through the second process for a while.
    for _ in 0..PHONES * 2 {
        acks.recv_timeout(Duration::from_secs(300))
            .map_err(|_| anyhow!("the phones did not carry on through the second process"))?;
    }
    done.store(true, Ordering::SeqCst);
    for worker in workers {
        worker
            .join()
            .map_err(|_| anyhow!("a phone thread panicked"))??;
    }
    let transports = vec![HttpTransport::new(&urls[1])];
    for phone in &phones {
        sync_through(phone, &transports, 0)?;
    }
    assert_one_server(&db, &phones)?;
    stop(&mut servers[1..])?;
    Ok(())
}

/// `POST /api/v1/auth/login` on one process: the status and `Retry-After`.
fn login(url: &str, password: &str) -> Result<(u16, Option<String>)> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let reply = agent
        .post(format!("{url}/api/v1/auth/login"))
        .header("content-type", "application/json")
        .send(
            serde_json::json!({ "login": "admin", "password": password })
                .to_string()
                .as_bytes(),
        )?;
    let retry = reply
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    Ok((reply.status().as_u16(), retry))
}

#[test]
fn failed_logins_counted_by_one_process_lock_the_account_on_the_other() -> Result<()> {
    let (db, _) = community(0)?;
    let (mut servers, _, urls) = processes(&db, 2)?;
    for i in 0..6 {
        let (status, _) = login(&urls[i % 2], "wrong password!")?;
        assert_eq!(status, 401, "wrong password {i}");
    }
    // Six failures spread over both processes lock the account on both.
    for url in &urls {
        let (status, retry) = login(url, common::ADMIN_PASSWORD)?;
        assert_eq!(status, 429, "locked on {url}");
        assert!(retry.is_some(), "with Retry-After");
    }
    stop(&mut servers)
}

#[test]
fn a_dashboard_page_on_one_process_hears_a_sync_served_by_the_other() -> Result<()> {
    let (db, codes) = community(1)?;
    let (mut servers, ports, urls) = processes(&db, 2)?;

    // The admin's page listens on the second process.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let reply: serde_json::Value = serde_json::from_str(
        &agent
            .post(format!("{}/api/v1/auth/login", urls[1]))
            .header("content-type", "application/json")
            .send(
                serde_json::json!({ "login": "admin", "password": common::ADMIN_PASSWORD })
                    .to_string()
                    .as_bytes(),
            )?
            .body_mut()
            .read_to_string()?,
    )?;
    let token = reply["token"]
        .as_str()
        .context("a session token")?
        .to_string();
    let mut events = TcpStream::connect(("127.0.0.1", ports[1]))?;
    events.set_read_timeout(Some(Duration::from_secs(60)))?;
    events.write_all(
        format!(
            "GET /events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\
             Cookie: doorstep_session={token}\r\n\r\n"
        )
        .as_bytes(),
    )?;

    // A phone records a visit and syncs through the first process.
    let (building, code) = &codes[0];
    let phone = enroll(&urls[0], building, code)?;
    let transports = [HttpTransport::new(&urls[0])];
    sync_through(&phone, &transports, 0)?;
    record(&phone, 0)?;
    sync_through(&phone, &transports, 0)?;

    // The page hears of the field document's change.
    let field = format!("field/{}/{building}", doorstep_server::demo::CAMPAIGN);
    let mut heard = String::new();
    let mut buf = [0u8; 4096];
    while !(heard.contains("event: change") && heard.contains(&field)) {
        let n = events
            .read(&mut buf)
            .context("the page heard nothing of the sync on the other process")?;
        anyhow::ensure!(n > 0, "the stream ended: {heard}");
        heard.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(heard.starts_with("HTTP/1.1 200"), "{heard}");
    stop(&mut servers)
}
