//! The building head's actions on a phone store made the way a real phone gets one: the demo
//! server publishes the campaign, the phone enrolls with a one-time code over HTTP and syncs
//! once, then records work. Each action is timed as the document grows, so the figure shows
//! whether an action's cost depends on how much the building already holds. A last round asks
//! the same questions while a sync waits 10 s on a slow server.
//!
//! `cargo run --release -p doorstep-server --example bench_phone -- [SIZES…]`
//! (default sizes: 100 1000 2000 10000 visits in the field document) → prints a table and
//! writes `target/bench/phone_actions.json`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow};
use doorstep_core::encryption::StoreKey;
use doorstep_core::model::{Answer, Choice, DoorOutcome, QuestionKind};
use doorstep_core::replica::{HouseholdEdit, Replica};
use doorstep_core::sync::{HttpTransport, Transport, TransportError};
use doorstep_server::storage::SqliteStorage;
use doorstep_server::{AppState, Config, demo};
use serde_json::json;

const APP_VERSION: &str = "bench-phone/0.1";
/// Timed calls per action and size.
const RUNS: usize = 41;

fn main() -> Result<()> {
    let sizes: Vec<usize> = match std::env::args().skip(1).collect::<Vec<_>>() {
        args if args.is_empty() => vec![100, 1_000, 2_000, 10_000],
        args => args
            .iter()
            .map(|a| a.parse().context("sizes are numbers of visits"))
            .collect::<Result<_>>()?,
    };
    let dir = tempfile::tempdir()?;
    let storage = SqliteStorage::open(dir.path().join("server.sqlite"))?;
    let state = AppState::new(storage, Config::default());
    let info = demo::setup(&state, Some("bench-passphrase-1")).map_err(|e| anyhow!("{e}"))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let url = format!("http://{}", listener.local_addr()?);
    let server_state = state.clone();
    rt.spawn(async move {
        let _ = doorstep_server::serve(server_state, listener, std::future::pending()).await;
    });

    // The phone: an encrypted store, enrolled with the first head's code, synced once.
    let (_, building, code) = info.heads.first().context("the demo has heads")?.clone();
    let campaign = info.campaign.clone();
    let key = StoreKey::from_bytes(&[7u8; 32])?;
    let phone_path = dir.path().join("phone.sqlite");
    let replica = Arc::new(Replica::open_encrypted(&phone_path, &key)?);
    let transport = HttpTransport::new(&url);
    replica.enroll(&transport, &url, &code, "bench phone", APP_VERSION)?;
    let report = replica.sync(&transport, APP_VERSION)?;
    anyhow::ensure!(report.complete, "the first sync did not complete");
    let units: Vec<String> = replica
        .units(&building, Some(&campaign))?
        .into_iter()
        .map(|u| u.unit.code)
        .collect();
    anyhow::ensure!(!units.is_empty(), "building {building} has no units");
    let answers = answers_for(&replica, &campaign)?;

    println!(
        "phone actions, building {building} ({} units), campaign {campaign}",
        units.len()
    );
    println!(
        "{:>7}  {:>28}  {:>10}  {:>10}",
        "visits", "action", "median ms", "p95 ms"
    );
    let mut results = Vec::new();
    let mut visits = 0usize;
    let mut i = 0usize;
    for &size in &sizes {
        let fill = Instant::now();
        while visits < size {
            replica.record_visit(&campaign, &units[i % units.len()], DoorOutcome::NotHome, "")?;
            visits += 1;
            i += 1;
        }
        let fill_s = fill.elapsed().as_secs_f64();
        let mut row = BTreeMap::new();
        let mut time = |name: &str, f: &mut dyn FnMut(usize) -> Result<()>| -> Result<()> {
            let mut samples = Vec::with_capacity(RUNS);
            for n in 0..RUNS {
                let t = Instant::now();
                f(n)?;
                samples.push(t.elapsed());
            }
            let (median, p95) = stats(&mut samples);
            println!("{size:>7}  {name:>28}  {median:>10.3}  {p95:>10.3}");
            row.insert(
                name.to_string(),
                json!({ "median_ms": median, "p95_ms": p95 }),
            );
            Ok(())
        };
        time("record_visit", &mut |n| {
            replica.record_visit(
                &campaign,
                &units[n % units.len()],
                DoorOutcome::ComeBack,
                "",
            )?;
            Ok(())
        })?;
        time("record_delivery", &mut |n| {
            replica.record_delivery(&campaign, &units[n % units.len()])?;
            Ok(())
        })?;
        time("record_ballot", &mut |n| {
            replica.record_ballot(&campaign, &units[n % units.len()], answers.clone(), None)?;
            Ok(())
        })?;
        time("edit_household", &mut |n| {
            let edit = HouseholdEdit {
                residents: Some((n % 5) as i64 + 1),
                ..HouseholdEdit::default()
            };
            replica.edit_household(&units[n % units.len()], &edit)?;
            Ok(())
        })?;
        time("create_order", &mut |n| {
            replica.create_order(&units[n % units.len()], "报修", "楼道灯")?;
            Ok(())
        })?;
        time("units", &mut |_| {
            replica.units(&building, Some(&campaign))?;
            Ok(())
        })?;
        time("unit_timeline", &mut |n| {
            replica.unit_timeline(&campaign, &units[n % units.len()])?;
            Ok(())
        })?;
        time("pending_changes", &mut |_| {
            replica.pending_changes()?;
            Ok(())
        })?;
        results.push(json!({ "visits": size, "fill_s": fill_s, "actions": row }));
        visits += RUNS;
    }

    // During a slow sync: the server answers after 10 s; the head keeps working meanwhile.
    let slow = Arc::new(Slow {
        inner: HttpTransport::new(&url),
        delay: Duration::from_secs(10),
    });
    let syncing = {
        let replica = replica.clone();
        let slow = slow.clone();
        std::thread::spawn(move || replica.sync(slow.as_ref(), APP_VERSION))
    };
    std::thread::sleep(Duration::from_millis(200));
    let mut during = BTreeMap::new();
    for (name, f) in [
        (
            "units",
            &mut (|_: usize| replica.units(&building, Some(&campaign)).map(|_| ()))
                as &mut dyn FnMut(usize) -> doorstep_core::error::Result<()>,
        ),
        ("record_visit", &mut |n: usize| {
            replica
                .record_visit(
                    &campaign,
                    &units[n % units.len()],
                    DoorOutcome::ComeBack,
                    "",
                )
                .map(|_| ())
        }),
    ] {
        let mut samples = Vec::new();
        for n in 0..RUNS {
            let t = Instant::now();
            f(n)?;
            samples.push(t.elapsed());
        }
        let (median, p95) = stats(&mut samples);
        let max = samples.last().map(|d| d.as_secs_f64() * 1e3).unwrap_or(0.0);
        println!(
            "during a 10 s sync  {name:>14}: median {median:.3} ms, p95 {p95:.3} ms, max {max:.3} ms"
        );
        during.insert(
            name,
            json!({ "median_ms": median, "p95_ms": p95, "max_ms": max }),
        );
    }
    let synced = syncing
        .join()
        .map_err(|_| anyhow!("the sync thread panicked"))??;
    anyhow::ensure!(
        synced.rejected.is_empty(),
        "rejected: {:?}",
        synced.rejected
    );

    let out = json!({
        "bench": "phone_actions",
        "building": building,
        "units": units.len(),
        "runs": RUNS,
        "sizes": results,
        "during_slow_sync": during,
    });
    std::fs::create_dir_all("target/bench")?;
    std::fs::write(
        "target/bench/phone_actions.json",
        serde_json::to_string_pretty(&out)?,
    )?;
    println!("wrote target/bench/phone_actions.json");
    Ok(())
}

/// Median and p95 in milliseconds; sorts the samples.
fn stats(samples: &mut [Duration]) -> (f64, f64) {
    samples.sort();
    let at = |q: f64| {
        let i = ((samples.len() - 1) as f64 * q).round() as usize;
        samples[i].as_secs_f64() * 1e3
    };
    (at(0.5), at(0.95))
}

/// A valid answer to every question of the campaign: the first choice of each.
fn answers_for(replica: &Replica, campaign: &str) -> Result<BTreeMap<String, Answer>> {
    let campaign = replica
        .campaigns()?
        .into_iter()
        .find(|c| c.id == campaign)
        .context("the campaign is on the phone")?;
    Ok(campaign
        .questions
        .iter()
        .map(|(qid, q)| {
            let answer = match &q.kind {
                QuestionKind::Resolution { .. } => Answer {
                    choice: Some(Choice::Yes),
                    candidates: BTreeMap::new(),
                    options: Vec::new(),
                },
                QuestionKind::Election { candidates, .. } => Answer {
                    choice: None,
                    candidates: candidates
                        .keys()
                        .take(1)
                        .map(|c| (c.clone(), Choice::Yes))
                        .collect(),
                    options: Vec::new(),
                },
                QuestionKind::Survey { options, .. } => Answer {
                    choice: None,
                    candidates: BTreeMap::new(),
                    options: options.keys().take(1).cloned().collect(),
                },
            };
            (qid.clone(), answer)
        })
        .collect())
}

/// A transport whose server answers only after `delay`.
struct Slow {
    inner: HttpTransport,
    delay: Duration,
}

impl Transport for Slow {
    fn post(&self, body: Vec<u8>, token: &str) -> std::result::Result<Vec<u8>, TransportError> {
        std::thread::sleep(self.delay);
        self.inner.post(body, token)
    }

    fn enroll(&self, body: Vec<u8>) -> std::result::Result<Vec<u8>, TransportError> {
        self.inner.enroll(body)
    }
}
