//! Benchmark of the phone store for one building (28 units) after one campaign day: 28 visits,
//! 25 ballots and 5 work orders, each saved as its own action as the phone does. Prints a table
//! and writes `target/bench/store.json`.
//!
//! Run: `cargo run --release -p doorstep-core --example bench_store`

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use doorstep_core::doc::{BuildingDoc, DocId, Document, FieldDoc, OrdersDoc, SCHEMA_VERSION};
use doorstep_core::model::{
    Answer, AreaSource, Ballot, Building, Choice, DoorOutcome, Household, Occupancy, OrderEvent,
    OrderStatus, RollEntry, SaleStatus, Unit, Visit, WorkOrder,
};
use doorstep_core::store::{self, Compaction, Store, StoreConfig, Written};
use uuid::Uuid;

const UNITS: usize = 28;
const VISITS: usize = 28;
const BALLOTS: usize = 25;
const ORDERS: usize = 5;
const LOAD_RUNS: usize = 21;
const T0: i64 = 1_750_000_000_000;

/// Unit codes `3-<entrance>-<floor><room>`: two entrances, seven floors, two rooms each.
fn unit_codes() -> Vec<String> {
    (0..UNITS)
        .map(|i| {
            let entrance = 1 + i / 14;
            let floor = 1 + (i % 14) / 2;
            let room = 1 + i % 2;
            format!("3-{entrance}-{floor:02}{room:02}")
        })
        .collect()
}

fn building_doc(codes: &[String]) -> BuildingDoc {
    let units = codes
        .iter()
        .enumerate()
        .map(|(i, code)| {
            let parts: Vec<&str> = code.split('-').collect();
            let room = parts.get(2).copied().unwrap_or_default();
            let unit = Unit {
                code: code.clone(),
                building: "3".into(),
                entrance: format!("3-{}", parts.get(1).copied().unwrap_or_default()),
                floor: room.get(..2).and_then(|f| f.parse().ok()).unwrap_or(1),
                room: room.to_string(),
                area: 8_950 + (i as i64 % 3) * 1_275,
                area_source: AreaSource::Registered,
                sale_status: if i == 27 {
                    SaleStatus::DeveloperUnsold
                } else {
                    SaleStatus::Sold
                },
                owner_key: format!("owner-{i:03}"),
                owner_names: vec![format!("业主{i}")],
            };
            (code.clone(), unit)
        })
        .collect();
    let households = codes
        .iter()
        .enumerate()
        .map(|(i, code)| {
            let household = Household {
                unit: code.clone(),
                contact_name: format!("住户{i}"),
                phone: format!("1380000{i:04}"),
                occupancy: if i % 5 == 0 {
                    Occupancy::Rented
                } else {
                    Occupancy::OwnerOccupied
                },
                residents: 1 + i as i64 % 4,
                note: String::new(),
            };
            (code.clone(), household)
        })
        .collect();
    BuildingDoc {
        schema: SCHEMA_VERSION,
        community: "hy".into(),
        building: Building {
            id: "3".into(),
            label: "3号楼".into(),
            entrances: [
                ("3-1".to_string(), "1单元".to_string()),
                ("3-2".to_string(), "2单元".to_string()),
            ]
            .into(),
        },
        units,
        households,
    }
}

fn field_doc(codes: &[String]) -> FieldDoc {
    let roll = codes
        .iter()
        .enumerate()
        .map(|(i, code)| {
            let entry = RollEntry {
                unit: code.clone(),
                building: "3".into(),
                entrance: code
                    .rsplit_once('-')
                    .map(|(e, _)| e.to_string())
                    .unwrap_or_default(),
                voter_key: format!("owner-{i:03}"),
                area: 8_950 + (i as i64 % 3) * 1_275,
            };
            (code.clone(), entry)
        })
        .collect();
    FieldDoc {
        schema: SCHEMA_VERSION,
        campaign: "2025-elevator".into(),
        building: "3".into(),
        roll,
        ..FieldDoc::default()
    }
}

fn visit(i: usize, code: &str) -> Visit {
    Visit {
        id: Uuid::now_v7().to_string(),
        unit: code.to_string(),
        outcome: DoorOutcome::ALL[i % 4 + 7],
        note: if i.is_multiple_of(3) {
            "业主晚上七点后在家".into()
        } else {
            String::new()
        },
        at: T0 + i as i64 * 300_000,
        by: "head-7".into(),
    }
}

fn ballot(i: usize, code: &str) -> Ballot {
    let answers: BTreeMap<String, Answer> = ["q1", "q2"]
        .iter()
        .enumerate()
        .map(|(q, id)| {
            let choice = [Choice::Yes, Choice::Yes, Choice::No, Choice::Abstain][(i + q) % 4];
            (
                id.to_string(),
                Answer {
                    choice: Some(choice),
                    ..Answer::default()
                },
            )
        })
        .collect();
    Ballot {
        id: Uuid::now_v7().to_string(),
        voter_key: format!("owner-{i:03}"),
        unit: code.to_string(),
        answers,
        collected_at: T0 + i as i64 * 320_000,
        by: "head-7".into(),
        supersedes: None,
        method: None,
    }
}

fn work_order(i: usize, code: &str) -> WorkOrder {
    let event_id = Uuid::now_v7().to_string();
    WorkOrder {
        id: Uuid::now_v7().to_string(),
        unit: code.to_string(),
        title: [
            "换楼道灯",
            "修单元门禁",
            "清理楼顶杂物",
            "代买药品",
            "陪同就医",
        ][i % 5]
            .into(),
        detail: "居民点单，楼长接单".into(),
        created_at: T0 + i as i64 * 900_000,
        created_by: "head-7".into(),
        assignee: Some("head-7".into()),
        events: [(
            event_id.clone(),
            OrderEvent {
                id: event_id,
                to: OrderStatus::Claimed,
                at: T0 + i as i64 * 900_000 + 60_000,
                by: "head-7".into(),
                note: String::new(),
            },
        )]
        .into(),
    }
}

/// What one simulated day wrote.
struct Day {
    records: usize,
    actions: usize,
    save_times: Vec<Duration>,
    snapshots_written: usize,
}

/// Create the three documents and record the day's work, one action per record.
fn simulate_day(path: &Path, compaction: Compaction) -> Result<Day> {
    let mut store = Store::open_with(path, StoreConfig { compaction })?;
    let device = store.device_id()?;
    let codes = unit_codes();
    let mut building = Document::new(
        DocId::Building {
            community: "hy".into(),
            building: "3".into(),
        },
        &device,
    );
    building.write(&building_doc(&codes))?;
    building.commit("register building 3");
    let mut field = Document::new(
        DocId::Field {
            campaign: "2025-elevator".into(),
            building: "3".into(),
        },
        &device,
    );
    field.write(&field_doc(&codes))?;
    field.commit("publish roll");
    let mut orders = Document::new(
        DocId::Orders {
            community: "hy".into(),
            building: "3".into(),
        },
        &device,
    );
    orders.write(&OrdersDoc {
        schema: SCHEMA_VERSION,
        community: "hy".into(),
        building: "3".into(),
        ..OrdersDoc::default()
    })?;
    orders.commit("create orders");
    store.save(&mut [&mut building, &mut field, &mut orders])?;

    let mut day = Day {
        records: 0,
        actions: 0,
        save_times: Vec::new(),
        snapshots_written: 0,
    };
    let mut act = |store: &mut Store, doc: &mut Document| -> Result<()> {
        let started = Instant::now();
        let tx = store.transaction()?;
        let pending = tx.save(doc)?;
        if matches!(pending.written(), Written::Snapshot(_)) {
            day.snapshots_written += 1;
        }
        tx.commit([pending])?;
        day.save_times.push(started.elapsed());
        day.records += 1;
        day.actions += 1;
        Ok(())
    };
    for (i, code) in codes.iter().take(VISITS).enumerate() {
        let v = visit(i, code);
        field.put_record("visits", &v.id, &v)?;
        field.commit("visit");
        act(&mut store, &mut field)?;
        if i < BALLOTS {
            let b = ballot(i, code);
            field.put_record("ballots", &b.id, &b)?;
            field.commit("ballot");
            act(&mut store, &mut field)?;
        }
        if i.is_multiple_of(6) && i / 6 < ORDERS {
            let o = work_order(i / 6, code);
            orders.put_record("orders", &o.id, &o)?;
            orders.commit("claim work order");
            act(&mut store, &mut orders)?;
        }
    }
    store.checkpoint()?;
    Ok(day)
}

/// Bytes of the SQLite file plus its WAL (if any).
fn file_bytes(path: &Path) -> u64 {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    size(path) + size(Path::new(&wal))
}

fn blob_bytes(store: &Store) -> Result<u64> {
    let mut total = 0;
    for id in store.document_ids()? {
        total += store::stored_size(store.conn(), &id)?
            .context("listed document has no size")?
            .total_bytes();
    }
    Ok(total)
}

fn chunk_count(store: &Store) -> Result<u64> {
    let mut total = 0;
    for id in store.document_ids()? {
        total += store::stored_size(store.conn(), &id)?
            .context("listed document has no size")?
            .chunk_count;
    }
    Ok(total)
}

/// `VmHWM` (peak resident) and `VmRSS` (resident now) in KiB, from /proc/self/status.
fn memory_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// Open the store and load every document; returns the duration and the document count.
fn open_and_load(path: &Path) -> Result<(Duration, usize)> {
    let started = Instant::now();
    let store = Store::open(path)?;
    let device = store.device_id()?;
    let docs = store.load_all(&device)?;
    Ok((started.elapsed(), docs.len()))
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs.get(xs.len() / 2).copied().unwrap_or_default()
}

fn percentile(mut xs: Vec<Duration>, p: f64) -> Duration {
    xs.sort();
    let at = ((xs.len() as f64 - 1.0) * p).round() as usize;
    xs.get(at).copied().unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() -> Result<()> {
    let dir = tempfile::tempdir()?;

    // Day one without compaction: every action is one chunk, which shows the raw increments.
    let raw_path = dir.path().join("raw.db");
    let day = simulate_day(&raw_path, Compaction::Never)?;
    let records = day.records;
    let raw_store = Store::open_with(
        &raw_path,
        StoreConfig {
            compaction: Compaction::Never,
        },
    )?;
    let blob_before = blob_bytes(&raw_store)?;
    let chunks_before = chunk_count(&raw_store)?;
    raw_store.checkpoint()?;
    let file_before = file_bytes(&raw_path);
    drop(raw_store);

    let (hwm0, rss0) = memory_kib();
    let mut raw_loads = Vec::new();
    let mut docs = 0;
    for _ in 0..LOAD_RUNS {
        let (t, n) = open_and_load(&raw_path)?;
        raw_loads.push(t);
        docs = n;
    }
    let (hwm1, rss1) = memory_kib();

    // Compact every document, then vacuum so the file shows the compacted size.
    let mut store = Store::open(&raw_path)?;
    let device = store.device_id()?;
    let mut all = store.load_all(&device)?;
    let tx = store.transaction()?;
    let mut saved = Vec::new();
    for doc in all.iter_mut() {
        saved.push(tx.compact(doc)?);
    }
    tx.commit(saved)?;
    let blob_after = blob_bytes(&store)?;
    store.conn().execute_batch("VACUUM")?;
    store.checkpoint()?;
    let file_after = file_bytes(&raw_path);
    drop(store);
    let mut compact_loads = Vec::new();
    for _ in 0..LOAD_RUNS {
        compact_loads.push(open_and_load(&raw_path)?.0);
    }

    // The same day with the default policy, as the phone runs it.
    let auto_path = dir.path().join("auto.db");
    let auto_day = simulate_day(&auto_path, Compaction::default())?;
    let auto_store = Store::open(&auto_path)?;
    let blob_auto = blob_bytes(&auto_store)?;
    let chunks_auto = chunk_count(&auto_store)?;
    drop(auto_store);
    let file_auto = file_bytes(&auto_path);
    let mut auto_loads = Vec::new();
    for _ in 0..LOAD_RUNS {
        auto_loads.push(open_and_load(&auto_path)?.0);
    }
    let (hwm2, rss2) = memory_kib();

    let per = |bytes: u64| bytes as f64 / records as f64;
    let save_median = median(day.save_times.clone());
    let save_p95 = percentile(day.save_times.clone(), 0.95);
    let auto_save_median = median(auto_day.save_times.clone());
    let auto_save_p95 = percentile(auto_day.save_times.clone(), 0.95);

    println!(
        "doorstep store benchmark: 1 building, {UNITS} units, {VISITS} visits, {BALLOTS} ballots, {ORDERS} work orders"
    );
    println!(
        "{records} records saved as {} actions, {docs} documents\n",
        day.actions
    );
    println!("{:<46} {:>12}", "measure", "value");
    println!(
        "{:<46} {:>12.3}",
        "open + load all, never compacted (ms, median)",
        ms(median(raw_loads.clone()))
    );
    println!(
        "{:<46} {:>12.3}",
        "open + load all, compacted (ms, median)",
        ms(median(compact_loads.clone()))
    );
    println!(
        "{:<46} {:>12.3}",
        "open + load all, auto policy (ms, median)",
        ms(median(auto_loads.clone()))
    );
    println!(
        "{:<46} {:>12.3}",
        "save one action, never compacted (ms, median)",
        ms(save_median)
    );
    println!(
        "{:<46} {:>12.3}",
        "save one action, never compacted (ms, p95)",
        ms(save_p95)
    );
    println!(
        "{:<46} {:>12.3}",
        "save one action, auto policy (ms, median)",
        ms(auto_save_median)
    );
    println!(
        "{:<46} {:>12.3}",
        "save one action, auto policy (ms, p95)",
        ms(auto_save_p95)
    );
    println!("{:<46} {:>12}", "chunks before compaction", chunks_before);
    println!(
        "{:<46} {:>12.1}",
        "blob bytes / record before compaction",
        per(blob_before)
    );
    println!(
        "{:<46} {:>12.1}",
        "blob bytes / record after compaction",
        per(blob_after)
    );
    println!(
        "{:<46} {:>12.1}",
        "file bytes / record before (incl. WAL)",
        per(file_before)
    );
    println!(
        "{:<46} {:>12.1}",
        "file bytes / record after (vacuumed)",
        per(file_after)
    );
    println!(
        "{:<46} {:>12}",
        "auto policy: snapshots written during day", auto_day.snapshots_written
    );
    println!(
        "{:<46} {:>12}",
        "auto policy: chunks at end of day", chunks_auto
    );
    println!(
        "{:<46} {:>12.1}",
        "auto policy: blob bytes / record",
        per(blob_auto)
    );
    println!(
        "{:<46} {:>12.1}",
        "auto policy: file bytes / record",
        per(file_auto)
    );
    println!("{:<46} {:>12}", "VmHWM before loads (KiB)", hwm0);
    println!("{:<46} {:>12}", "VmHWM after raw loads (KiB)", hwm1);
    println!("{:<46} {:>12}", "VmHWM at end (KiB)", hwm2);
    println!(
        "{:<46} {:>12}",
        "VmRSS before / after raw loads / end (KiB)",
        format!("{rss0}/{rss1}/{rss2}")
    );

    let json = serde_json::json!({
        "bench": "store",
        "workload": {
            "units": UNITS, "visits": VISITS, "ballots": BALLOTS, "work_orders": ORDERS,
            "records": records, "actions": day.actions, "documents": docs, "load_runs": LOAD_RUNS,
        },
        "open_load_all_ms_median": {
            "never_compacted": ms(median(raw_loads)),
            "compacted": ms(median(compact_loads)),
            "auto_policy": ms(median(auto_loads)),
        },
        "save_action_ms": {
            "never_compacted": { "median": ms(save_median), "p95": ms(save_p95) },
            "auto_policy": { "median": ms(auto_save_median), "p95": ms(auto_save_p95) },
        },
        "bytes_per_record": {
            "blob_before_compaction": per(blob_before),
            "blob_after_compaction": per(blob_after),
            "file_before_compaction": per(file_before),
            "file_after_compaction_vacuumed": per(file_after),
            "blob_auto_policy": per(blob_auto),
            "file_auto_policy": per(file_auto),
        },
        "chunks": { "before_compaction": chunks_before, "auto_policy_end_of_day": chunks_auto,
                    "auto_policy_snapshots_written": auto_day.snapshots_written },
        "memory_kib": {
            "vm_hwm_before_loads": hwm0, "vm_hwm_after_loads": hwm1, "vm_hwm_end": hwm2,
            "vm_rss_before_loads": rss0, "vm_rss_after_loads": rss1, "vm_rss_end": rss2,
        },
    });
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
    std::fs::create_dir_all(&out)?;
    let file = out.canonicalize()?.join("store.json");
    std::fs::write(&file, serde_json::to_string_pretty(&json)? + "\n")?;
    println!("\nwrote {}", file.display());
    Ok(())
}
