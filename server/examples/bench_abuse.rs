//! The abuse cases of issue 11 against `doorstep-server serve` in its own process: how far the
//! server's memory and its database grow before the bounds stop an attacker.
//!
//! 1. **Refused payloads.** Each of D enrolled phones sends sync requests of a few KB of gzip
//!    that inflate to a 15 MiB Automerge message the server cannot read (each request
//!    different, so none is a re-send), until it is refused with `quarantine_full`, then a few
//!    more. The measurement before the bounds: three such requests put 314 MB into the
//!    quarantine table and took the server from 39 to 816 MiB.
//! 2. **A burst of logins.** N wrong-password logins at once, each from its own address (the
//!    server runs `--behind-proxy`, the benchmark sets `X-Forwarded-For`), so that the
//!    per-address throttle does not answer them before the password is hashed: the worst case
//!    for memory.
//!
//! `cargo build --release -p doorstep-server --bins --examples &&
//!  target/release/examples/bench_abuse [--phones D] [--logins N]` (defaults 10 and 200) →
//! prints a table and writes `target/bench/abuse.json`. Targets: server memory ≤ 200 MiB,
//! database growth ≤ 10 MB per phone before it is refused.

#[path = "support/phones.rs"]
mod phones;
#[path = "support/server.rs"]
mod server;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use doorstep_core::doc::{DocId, SCHEMA_VERSION};
use doorstep_core::protocol::{self, DocRequest, SyncRequest};
use doorstep_core::sync::{self, HttpTransport, Transport as _, TransportError};
use doorstep_server::storage::SqliteStorage;
use doorstep_server::{AppState, Config};
use serde_json::json;
use server::Server;

/// The size a bomb inflates to: under the 16 MiB sync limit, so the server reads it.
const BOMB: usize = 15 * 1024 * 1024;
/// Requests each phone sends after it was refused, to show it stays refused.
const AFTER: usize = 3;

fn main() -> Result<()> {
    let (mut phones, mut logins) = (10usize, 200usize);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--phones" => phones = args.next().context("--phones D")?.parse()?,
            "--logins" => logins = args.next().context("--logins N")?.parse()?,
            "--" => {}
            other => bail!("unknown argument {other}"),
        }
    }
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("abuse.sqlite");
    let codes = {
        let state = AppState::new(SqliteStorage::open(&db)?, Config::default());
        phones::setup(&state, phones.div_ceil(11))?
    };
    if codes.len() < phones {
        bail!("only {} heads to enroll", codes.len());
    }
    let server = Server::start_with(&db, &["--behind-proxy"])?;
    let url = server.url.clone();
    let idle_rss = server.rss_kib()?;
    let start_bytes = db_bytes(&db);

    // 1. Refused payloads.
    let t = Instant::now();
    let mut per_phone = Vec::new();
    for (i, (community, building, code)) in codes.iter().take(phones).enumerate() {
        let enrollment = sync::enroll(&url, code)?;
        let transport = HttpTransport::new(&url);
        let doc = DocId::Field {
            campaign: format!("{community}-election"),
            building: building.clone(),
        };
        let before = db_bytes(&db);
        let (mut accepted, mut refused_at) = (0usize, None);
        let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
        for n in 0..10_000usize {
            let mut msg = vec![(n % 251) as u8; BOMB];
            msg[0] = 0x42;
            msg[1..9].copy_from_slice(&(i * 10_000 + n).to_le_bytes());
            let body = protocol::encode(&SyncRequest {
                protocol: protocol::PROTOCOL_VERSION,
                schema: SCHEMA_VERSION,
                app_version: "bench-abuse".into(),
                pending: 0,
                manifest: None,
                docs: vec![DocRequest {
                    id: doc.to_string(),
                    heads: vec![],
                    msg: Some(protocol::Bytes(msg)),
                }],
            });
            let outcome = match transport.post(body, &enrollment.device_token) {
                Ok(_) => {
                    accepted += 1;
                    "200 (document refused)".to_string()
                }
                Err(TransportError::Http { status, code, .. }) => {
                    refused_at.get_or_insert(n);
                    format!("{status} {code}")
                }
                Err(e) => bail!("request {n} of phone {i}: {e}"),
            };
            *outcomes.entry(outcome).or_default() += 1;
            if refused_at.is_some_and(|r| n >= r + AFTER) {
                break;
            }
        }
        let grew = db_bytes(&db).saturating_sub(before);
        per_phone.push(json!({
            "answered_200": accepted,
            "refused_after": refused_at,
            "outcomes": outcomes,
            "database_growth_bytes": grew,
        }));
    }
    let bombs_seconds = t.elapsed().as_secs_f64();
    let after_bombs_rss = server.peak_rss_kib()?;
    let growth = db_bytes(&db).saturating_sub(start_bytes);

    // 2. A burst of logins, each from its own address.
    let t = Instant::now();
    let statuses = std::thread::scope(|s| {
        let handles: Vec<_> = (0..logins)
            .map(|i| {
                let url = &url;
                s.spawn(move || login(url, i))
            })
            .collect();
        let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
        for h in handles {
            let status = h
                .join()
                .map_err(|_| anyhow::anyhow!("a login thread panicked"))?;
            *statuses.entry(status?).or_default() += 1;
        }
        anyhow::Ok(statuses)
    })?;
    let logins_seconds = t.elapsed().as_secs_f64();
    let peak_rss = server.peak_rss_kib()?;

    let mib = |kib: u64| kib as f64 / 1024.0;
    let growth_per_phone = growth as f64 / phones as f64 / 1e6;
    println!("server idle RSS {:.0} MiB", mib(idle_rss));
    println!(
        "refused payloads: {phones} phones, each stopped after {:?} requests of {BOMB} bytes \
         inflated, in {bombs_seconds:.1} s",
        per_phone
            .iter()
            .map(|p| p["refused_after"].as_u64().unwrap_or(0))
            .collect::<Vec<_>>()
    );
    println!(
        "  database growth {:.2} MB in all, {growth_per_phone:.2} MB per phone (target ≤ 10)",
        growth as f64 / 1e6
    );
    println!(
        "  server peak RSS {:.0} MiB (target ≤ 200)",
        mib(after_bombs_rss)
    );
    println!(
        "logins: {logins} at once from {logins} addresses in {logins_seconds:.1} s, answers \
         {statuses:?}; server peak RSS {:.0} MiB (target ≤ 200)",
        mib(peak_rss)
    );
    let out = json!({
        "bomb_inflated_bytes": BOMB,
        "phones": phones,
        "per_phone": per_phone,
        "database_growth_bytes": growth,
        "database_growth_mb_per_phone": growth_per_phone,
        "bombs_seconds": bombs_seconds,
        "idle_rss_kib": idle_rss,
        "peak_rss_after_bombs_kib": after_bombs_rss,
        "logins": logins,
        "login_answers": statuses,
        "logins_seconds": logins_seconds,
        "peak_rss_kib": peak_rss,
    });
    std::fs::create_dir_all("target/bench")?;
    std::fs::write("target/bench/abuse.json", serde_json::to_vec_pretty(&out)?)?;
    println!("wrote target/bench/abuse.json");
    Ok(())
}

/// One wrong-password login for an unknown account from the address 10.x.y.z; its status.
fn login(url: &str, i: usize) -> Result<u16> {
    let address = format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255);
    let body = json!({ "login": format!("nobody{i}"), "password": "wrong password, surely" });
    let answer = ureq::post(&format!("{url}/api/v1/auth/login"))
        .header("X-Forwarded-For", &address)
        .header("Content-Type", "application/json")
        .config()
        .http_status_as_error(false)
        .build()
        .send(&serde_json::to_vec(&body)?[..])?;
    Ok(answer.status().as_u16())
}

/// The database file and its WAL, in bytes.
fn db_bytes(db: &Path) -> u64 {
    ["", "-wal"]
        .iter()
        .filter_map(|s| std::fs::metadata(format!("{}{s}", db.display())).ok())
        .map(|m| m.len())
        .sum()
}
