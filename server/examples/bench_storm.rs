//! The reconnect storm with the server in its own process: `doorstep-server serve` runs as a
//! child on a database this benchmark prepared, and the phones (core replicas) run here. Every
//! phone has a day of work offline (86 one-action commits in three documents) and syncs once,
//! all at the same time; a phone is done when its sync completed, which the server answers only
//! after its transaction committed. Afterwards the server is killed (SIGKILL) and its database
//! is opened to check that every change each phone holds is there. Server CPU comes from
//! `/proc/PID/stat` of the server process.
//!
//! `cargo build --release -p doorstep-server --bins --examples &&
//!  target/release/examples/bench_storm -- [PHONES…] [--threads N]
//!  [--postgres postgres://…/postgres [--processes N]]`
//! (default: storms of 100, 300 and 1,000 phones, one after another on one server, each with
//! its own phones; 32 client threads) → prints a table and writes `target/bench/storm.json`.
//! With `--postgres`, a new database is created on that PostgreSQL and `--processes` servers
//! (default 1) serve it, phone `i` syncing through server `i mod N`; server CPU is the sum
//! of theirs, and the table adds the waits for locks another transaction held →
//! `target/bench/storm-postgres-Np.json`.

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
use doorstep_server::storage::postgres::PoolOptions;
use doorstep_server::storage::{self, Backend, PgStorage, SqliteStorage};
use doorstep_server::{AppState, Config};
use phones::{Day, Phone, day_of_work, enroll, percentile, setup};
use serde_json::json;
use server::Server;

/// Buildings per community in the sample register.
const BUILDINGS: usize = 11;

fn main() -> Result<()> {
    let mut sizes = Vec::new();
    let mut threads = 32usize;
    let mut postgres: Option<String> = None;
    let mut processes = 1usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--threads" => threads = args.next().context("--threads N")?.parse()?,
            "--postgres" => postgres = Some(args.next().context("--postgres URL")?),
            "--processes" => processes = args.next().context("--processes N")?.parse()?,
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
    let db = match &postgres {
        Some(admin) => fresh_database(admin)?,
        None => dir
            .path()
            .join("storm.sqlite")
            .to_str()
            .context("a UTF-8 path")?
            .to_string(),
    };
    let backend = if postgres.is_some() {
        "postgres"
    } else {
        "sqlite"
    };
    let t = Instant::now();
    // The state (and its database connections) is dropped before the server opens the file.
    let codes = {
        let state = match &postgres {
            Some(_) => AppState::new(
                PgStorage::open(&db, PoolOptions::default())?,
                Config::default(),
            ),
            None => AppState::new(SqliteStorage::open(&db)?, Config::default()),
        };
        setup(&state, communities)?
    };
    println!(
        "prepared {communities} communities ({} phones' codes) in {:.1} s",
        codes.len(),
        t.elapsed().as_secs_f64()
    );

    let mut servers: Vec<Server> = (0..processes.max(1))
        .map(|_| Server::start(&db))
        .collect::<Result<_>>()?;
    let urls: Vec<String> = servers.iter().map(|s| s.url.clone()).collect();
    // Phone `i` syncs through server `i mod N`.
    let url_of = |phone: usize| urls[phone % urls.len()].clone();

    // Every phone enrolls, syncs once (the building arrives) and records its day offline.
    let t = Instant::now();
    let codes: Vec<_> = codes.into_iter().take(total).enumerate().collect();
    let phones: Vec<(usize, Phone)> = parallel(&codes, threads.min(8), |(i, (c, b, code))| {
        let url = url_of(*i);
        let phone = enroll(&url, code, c, b)?;
        phone.sync(&HttpTransport::new(&url))?;
        day_of_work(&phone, &format!("{c}-election"), Day::STORM)?;
        Ok((*i, phone))
    })?;
    println!(
        "{} phones enrolled, synced and worked a day ({} actions each) in {:.1} s",
        phones.len(),
        Day::STORM.actions(),
        t.elapsed().as_secs_f64()
    );

    println!(
        "{:>6}  {:>8}  {:>9}  {:>8}  {:>8}  {:>12}  {:>14}  {:>6}  {:>12}  {:>16}  {:>16}",
        "phones",
        "seconds",
        "phones/s",
        "p50 ms",
        "p99 ms",
        "server CPU s",
        "CPU µs/change",
        "failed",
        "commits/sync",
        "doc lock waits",
        "audit lock waits"
    );
    let cpu_of =
        |servers: &[Server]| -> Result<f64> { servers.iter().map(|s| s.cpu_seconds()).sum() };
    let metric_of = |servers: &[Server], name: &str| -> Result<f64> {
        servers.iter().map(|s| s.metric(name)).sum()
    };
    const METRICS: [&str; 6] = [
        "doorstep_db_commits_total",
        "doorstep_db_syncs_total",
        "doorstep_db_document_lock_waits_total",
        "doorstep_db_document_lock_wait_microseconds_total",
        "doorstep_db_audit_lock_waits_total",
        "doorstep_db_audit_lock_wait_microseconds_total",
    ];
    let mut runs = Vec::new();
    let mut offset = 0;
    for &n in &sizes {
        let group = &phones[offset..offset + n];
        offset += n;
        let cpu_before = cpu_of(&servers)?;
        let before: Vec<f64> = METRICS
            .iter()
            .map(|m| metric_of(&servers, m))
            .collect::<Result<_>>()?;
        let sampler = match &postgres {
            Some(_) => Some(LockSampler::start(&db)?),
            None => None,
        };
        let t = Instant::now();
        let outcomes = parallel(group, threads, |(i, phone)| {
            let started = Instant::now();
            let report = phone.sync(&HttpTransport::new(&url_of(*i)))?;
            if !report.complete || !report.rejected.is_empty() {
                bail!("incomplete sync: {report:?}");
            }
            Ok(started.elapsed())
        });
        let seconds = t.elapsed().as_secs_f64();
        let cpu = cpu_of(&servers)? - cpu_before;
        let lock_samples = sampler.map(LockSampler::stop).transpose()?;
        // Every acknowledged commit was on disk first; group commit shares the syncs.
        let after: Vec<f64> = METRICS
            .iter()
            .map(|m| metric_of(&servers, m))
            .collect::<Result<_>>()?;
        let delta: Vec<f64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
        let (commits, syncs) = (delta[0], delta[1]);
        let (doc_waits, doc_wait_ms) = (delta[2], delta[3] / 1e3);
        let (audit_waits, audit_wait_ms) = (delta[4], delta[5] / 1e3);
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
            "document_lock_waits": doc_waits,
            "document_lock_wait_ms": doc_wait_ms,
            "audit_lock_waits": audit_waits,
            "audit_lock_wait_ms": audit_wait_ms,
            "sampled_lock_waits": lock_samples.as_ref().map(|s| json!({
                "samples": s.samples,
                "waiting": s.waiting,
            })),
        });
        println!(
            "{n:>6}  {seconds:>8.2}  {:>9.1}  {:>8.0}  {:>8.0}  {cpu:>12.2}  {:>14.1}  {failed:>6}  {:>12}  {:>16}  {:>16}",
            n as f64 / seconds,
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99),
            cpu * 1e6 / changes,
            format!("{commits:.0}/{syncs:.0}"),
            format!("{doc_waits:.0} ({doc_wait_ms:.0} ms)"),
            format!("{audit_waits:.0} ({audit_wait_ms:.0} ms)"),
        );
        if let Some(s) = &lock_samples {
            println!(
                "PostgreSQL backends waiting for a lock, sampled every {} ms during the storm ({} samples):{}",
                LockSampler::EVERY.as_millis(),
                s.samples,
                if s.waiting.is_empty() { " none" } else { "" }
            );
            for (what, seen) in &s.waiting {
                println!("  {seen:>6} × {what}");
            }
        }
        runs.push(row);
    }
    let server_rss_kib = servers
        .iter()
        .map(|s| s.peak_rss_kib())
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .max()
        .unwrap_or(0);

    // Kill the servers without warning: what they acknowledged must be in the database.
    for server in &mut servers {
        server.kill()?;
    }
    let phones: Vec<Phone> = phones.into_iter().map(|(_, p)| p).collect();
    let (checked, lost) = verify(&db, &phones)?;
    println!(
        "server killed; {checked} (phone, document) pairs checked against its database: {lost} with a missing change"
    );
    println!("server peak RSS {:.0} MiB", server_rss_kib as f64 / 1024.0);

    let out = json!({
        "bench": "storm",
        "server": if postgres.is_some() {
            format!("{processes} doorstep-server serve process(es) on one PostgreSQL (synchronous_commit as the cluster sets it)")
        } else {
            "doorstep-server serve (own process), SQLite WAL, group commit (every acknowledged commit fsynced)".to_string()
        },
        "backend": backend,
        "processes": processes,
        "actions_per_phone": Day::STORM.actions(),
        "client_threads": threads,
        "runs": runs,
        "server_peak_rss_kib": server_rss_kib,
        "verified_pairs": checked,
        "lost": lost,
    });
    std::fs::create_dir_all("target/bench")?;
    let file = match &postgres {
        Some(_) => format!("target/bench/storm-postgres-{processes}p.json"),
        None => "target/bench/storm.json".to_string(),
    };
    std::fs::write(&file, serde_json::to_string_pretty(&out)?)?;
    println!("wrote {file}");
    if lost > 0 {
        bail!("{lost} acknowledged documents are missing changes on the server");
    }
    Ok(())
}

/// Watches PostgreSQL's `pg_stat_activity` during a storm for backends of its database that
/// wait for a lock of any kind: advisory (a document's or the audit chain's) and row or
/// transaction locks too, which the servers' own lock metrics cannot see.
struct LockSampler {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Result<LockSamples>>,
}

/// How often each wait was seen: "wait event: the statement's first words" → samples.
struct LockSamples {
    samples: usize,
    waiting: BTreeMap<String, usize>,
}

impl LockSampler {
    const EVERY: std::time::Duration = std::time::Duration::from_millis(10);

    fn start(db: &str) -> Result<Self> {
        let mut client = postgres::Client::connect(db, postgres::NoTls)?;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut out = LockSamples {
                samples: 0,
                waiting: BTreeMap::new(),
            };
            while !flag.load(Ordering::SeqCst) {
                let rows = client.query(
                    "SELECT wait_event, query FROM pg_stat_activity
                     WHERE datname = current_database() AND wait_event_type = 'Lock'
                       AND pid <> pg_backend_pid()",
                    &[],
                )?;
                out.samples += 1;
                for row in rows {
                    let event: String = row.get(0);
                    let query: String = row.get(1);
                    let words: Vec<&str> = query.split_whitespace().take(6).collect();
                    *out.waiting
                        .entry(format!("{event}: {}", words.join(" ")))
                        .or_default() += 1;
                }
                std::thread::sleep(Self::EVERY);
            }
            Ok(out)
        });
        Ok(Self { stop, thread })
    }

    fn stop(self) -> Result<LockSamples> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread
            .join()
            .map_err(|_| anyhow!("the lock sampler panicked"))?
    }
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
fn verify(db: &str, phones: &[Phone]) -> Result<(usize, usize)> {
    let storage: std::sync::Arc<dyn Backend> = storage::open(db, PoolOptions::default())?;
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

/// A new database on the PostgreSQL cluster `admin` (an address of an existing database);
/// the new one's address.
fn fresh_database(admin: &str) -> Result<String> {
    let name = format!("storm_{}", uuid::Uuid::new_v4().simple());
    let mut client = postgres::Client::connect(admin, postgres::NoTls)
        .with_context(|| format!("connecting to {}", storage::describe(admin)))?;
    client.batch_execute(&format!("CREATE DATABASE {name}"))?;
    let (base, _) = admin
        .rsplit_once('/')
        .context("the --postgres address ends with /DATABASE")?;
    Ok(format!("{base}/{name}"))
}
