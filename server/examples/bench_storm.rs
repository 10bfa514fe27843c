//! The reconnect storm with the server in its own process: `doorstep-server serve` runs as a
//! child on a database this benchmark prepared, and the phones (core replicas) run here. Every
//! phone has a day of work offline (86 one-action commits in three documents) and syncs once,
//! all at the same time; a phone is done when its sync completed, which the server answers only
//! after its transaction committed. Afterwards the server is killed (SIGKILL) and its database
//! is opened to check that every change each phone holds is there. Server CPU comes from
//! `/proc/PID/stat` of the server process.
//!
//! `cargo build --release -p doorstep-server --bins --examples &&
//!  target/release/examples/bench_storm -- [PHONES…] [--threads N]`
//! (default: storms of 100, 300 and 1,000 phones, one after another on one server, each with
//! its own phones; 32 client threads) → prints a table and writes `target/bench/storm.json`.

#[path = "support/phones.rs"]
mod phones;
#[path = "support/server.rs"]
mod server;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context as _, Result, anyhow, bail};
use automerge::{AutoCommit, ChangeHash};
use doorstep_core::doc::DocId;
use doorstep_core::sync::HttpTransport;
use doorstep_server::storage::{SqliteStorage, Storage};
use doorstep_server::{AppState, Config};
use phones::{Day, Phone, day_of_work, enroll, percentile, setup};
use serde_json::json;
use server::Server;

/// Buildings per community in the sample register.
const BUILDINGS: usize = 11;

fn main() -> Result<()> {
    let mut sizes = Vec::new();
    let mut threads = 32usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--threads" => threads = args.next().context("--threads N")?.parse()?,
            "--" => {}
            n => sizes.push(
                n.parse::<usize>()
                    .context("storm sizes are numbers of phones")?,
            ),
        }
    }
    if sizes.is_empty() {
        sizes = vec![100, 300, 1_000];
    }
    let total: usize = sizes.iter().sum();
    let communities = total.div_ceil(BUILDINGS);

    let dir = tempfile::tempdir()?;
    let db = dir.path().join("storm.sqlite");
    let t = Instant::now();
    // The state (and its database connections) is dropped before the server opens the file.
    let codes = {
        let state = AppState::new(SqliteStorage::open(&db)?, Config::default());
        setup(&state, communities)?
    };
    println!(
        "prepared {communities} communities ({} phones' codes) in {:.1} s",
        codes.len(),
        t.elapsed().as_secs_f64()
    );

    let mut server = Server::start(&db)?;
    let url = server.url.clone();

    // Every phone enrolls, syncs once (the building arrives) and records its day offline.
    let t = Instant::now();
    let codes: Vec<_> = codes.into_iter().take(total).collect();
    let phones: Vec<Phone> = parallel(&codes, threads.min(8), |(c, b, code)| {
        let phone = enroll(&url, code, c, b)?;
        phone.sync(&HttpTransport::new(&url))?;
        day_of_work(&phone, &format!("{c}-election"), Day::STORM)?;
        Ok(phone)
    })?;
    println!(
        "{} phones enrolled, synced and worked a day ({} actions each) in {:.1} s",
        phones.len(),
        Day::STORM.actions(),
        t.elapsed().as_secs_f64()
    );

    println!(
        "{:>6}  {:>8}  {:>9}  {:>8}  {:>8}  {:>12}  {:>14}  {:>6}  {:>12}",
        "phones",
        "seconds",
        "phones/s",
        "p50 ms",
        "p99 ms",
        "server CPU s",
        "CPU µs/change",
        "failed",
        "commits/sync"
    );
    let mut runs = Vec::new();
    let mut offset = 0;
    for &n in &sizes {
        let group = &phones[offset..offset + n];
        offset += n;
        let cpu_before = server.cpu_seconds()?;
        let commits_before = server.metric("doorstep_db_commits_total")?;
        let syncs_before = server.metric("doorstep_db_syncs_total")?;
        let t = Instant::now();
        let outcomes = parallel(group, threads, |phone| {
            let started = Instant::now();
            let report = phone.sync(&HttpTransport::new(&url))?;
            if !report.complete || !report.rejected.is_empty() {
                bail!("incomplete sync: {report:?}");
            }
            Ok(started.elapsed())
        });
        let seconds = t.elapsed().as_secs_f64();
        let cpu = server.cpu_seconds()? - cpu_before;
        // Every acknowledged commit was on disk first; group commit shares the syncs.
        let commits = server.metric("doorstep_db_commits_total")? - commits_before;
        let syncs = server.metric("doorstep_db_syncs_total")? - syncs_before;
        let (mut latencies, failed) = match outcomes {
            Ok(l) => (l, 0),
            Err(e) => {
                eprintln!("storm of {n}: {e}");
                (Vec::new(), n)
            }
        };
        latencies.sort();
        let changes = (n * Day::STORM.actions()) as f64;
        let row = json!({
            "phones": n,
            "seconds": seconds,
            "phones_per_second": n as f64 / seconds,
            "p50_ms": percentile(&latencies, 0.5),
            "p99_ms": percentile(&latencies, 0.99),
            "server_cpu_seconds": cpu,
            "server_cpu_ms_per_phone": cpu * 1e3 / n as f64,
            "server_cpu_us_per_change": cpu * 1e6 / changes,
            "failed": failed,
            "db_commits": commits,
            "db_syncs": syncs,
        });
        println!(
            "{n:>6}  {seconds:>8.2}  {:>9.1}  {:>8.0}  {:>8.0}  {cpu:>12.2}  {:>14.1}  {failed:>6}  {:>12}",
            n as f64 / seconds,
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99),
            cpu * 1e6 / changes,
            format!("{commits:.0}/{syncs:.0}"),
        );
        runs.push(row);
    }
    let server_rss_kib = server.peak_rss_kib()?;

    // Kill the server without warning: what it acknowledged must be in its database.
    server.kill()?;
    let (checked, lost) = verify(&db, &phones)?;
    println!(
        "server killed; {checked} (phone, document) pairs checked against its database: {lost} with a missing change"
    );
    println!("server peak RSS {:.0} MiB", server_rss_kib as f64 / 1024.0);

    let out = json!({
        "bench": "storm",
        "server": "doorstep-server serve (own process), SQLite WAL, group commit (every acknowledged commit fsynced)",
        "actions_per_phone": Day::STORM.actions(),
        "client_threads": threads,
        "runs": runs,
        "server_peak_rss_kib": server_rss_kib,
        "verified_pairs": checked,
        "lost": lost,
    });
    std::fs::create_dir_all("target/bench")?;
    std::fs::write(
        "target/bench/storm.json",
        serde_json::to_string_pretty(&out)?,
    )?;
    println!("wrote target/bench/storm.json");
    if lost > 0 {
        bail!("{lost} acknowledged documents are missing changes on the server");
    }
    Ok(())
}

/// Run `f` over `items` on `threads` threads; every result, in order, or the first error.
fn parallel<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    let next = AtomicUsize::new(0);
    let results: Mutex<BTreeMap<usize, Result<R>>> = Mutex::new(BTreeMap::new());
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(item) = items.get(i) else { break };
                    let r = f(item);
                    if let Ok(mut results) = results.lock() {
                        results.insert(i, r);
                    }
                }
            });
        }
    });
    results
        .into_inner()
        .map_err(|_| anyhow!("a worker panicked"))?
        .into_values()
        .collect()
}

/// Every document each phone holds: all of its changes must be in the server's database.
fn verify(db: &std::path::Path, phones: &[Phone]) -> Result<(usize, usize)> {
    let storage = SqliteStorage::open(db)?;
    let mut server_docs: BTreeMap<DocId, AutoCommit> = BTreeMap::new();
    let (mut checked, mut lost) = (0, 0);
    for phone in phones {
        let held: Vec<(DocId, Vec<ChangeHash>)> = phone.replica.with_store(|store| {
            let device = store.device_id()?;
            let mut out = Vec::new();
            for id in store.document_ids()? {
                if let Some(mut doc) = store.load_document(&id, &device)? {
                    out.push((id, doc.heads()));
                }
            }
            Ok(out)
        })?;
        for (id, heads) in held {
            if !server_docs.contains_key(&id) {
                let stored = storage
                    .load_document(&id)?
                    .with_context(|| format!("{id} is not on the server"))?;
                server_docs.insert(id.clone(), AutoCommit::load(&stored.bytes)?);
            }
            let doc = server_docs.get_mut(&id).context("loaded")?;
            checked += 1;
            if heads.iter().any(|h| doc.get_change_by_hash(h).is_none()) {
                lost += 1;
            }
        }
    }
    Ok((checked, lost))
}
