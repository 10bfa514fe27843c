//! FFI overhead baseline: 10,000 `record_visit` calls made from Rust, through core's `Replica`
//! and through the exported `DoorstepReplica` wrapper, against a seeded replica on disk.
//!
//! The Kotlin (`mobile-demo/src/DoorstepBench.kt`) and Python (`bindings/tests/python/bench_ffi.py`)
//! benches make the same calls through the generated bindings; the difference is the FFI's cost.
//! Run: `cargo run -p doorstep-ffi --release --features testing --example bench_ffi [-- CALLS]`.
//! Prints one JSON object per measurement.

use std::time::Instant;

use doorstep_core::model::DoorOutcome;
use doorstep_core::replica::Replica;
use doorstep_ffi::DoorstepReplica;
use doorstep_ffi::testing::seed_demo_replica;

fn main() -> anyhow::Result<()> {
    let calls: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(10_000);
    let dir = tempfile::tempdir()?;

    let path = dir.path().join("open.db").display().to_string();
    seed_demo_replica(path.clone())?;
    let started = Instant::now();
    let replica = DoorstepReplica::open(path)?;
    let buildings = replica.buildings()?;
    report("open_replica_3_buildings", 1, started);
    anyhow::ensure!(
        buildings.len() == 3,
        "the seeded replica holds three buildings"
    );

    let path = dir.path().join("core.db").display().to_string();
    let seed = seed_demo_replica(path.clone())?;
    let core = Replica::open(&path)?;
    let units = unit_codes(&*DoorstepReplica::open(path)?, &seed.buildings)?;
    let started = Instant::now();
    for i in 0..calls {
        core.record_visit(
            &seed.resolution,
            &units[i % units.len()],
            DoorOutcome::NotHome,
            "",
        )?;
    }
    report("record_visit_core", calls, started);

    let path = dir.path().join("ffi.db").display().to_string();
    let seed = seed_demo_replica(path.clone())?;
    let replica = DoorstepReplica::open(path)?;
    let units = unit_codes(&replica, &seed.buildings)?;
    let started = Instant::now();
    for i in 0..calls {
        replica.record_visit(
            seed.resolution.clone(),
            units[i % units.len()].clone(),
            doorstep_ffi::types::DoorOutcome::NotHome,
            String::new(),
        )?;
    }
    report("record_visit_rust_wrapper", calls, started);
    Ok(())
}

/// Every unit code of the seeded buildings, so visits spread over three field documents.
fn unit_codes(replica: &DoorstepReplica, buildings: &[String]) -> anyhow::Result<Vec<String>> {
    let mut codes = Vec::new();
    for b in buildings {
        codes.extend(
            replica
                .units(b.clone(), None)?
                .into_iter()
                .map(|u| u.unit.code),
        );
    }
    Ok(codes)
}

fn report(name: &str, calls: usize, started: Instant) {
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    println!(
        "{{\"bench\":\"{name}\",\"lang\":\"rust\",\"calls\":{calls},\"total_ms\":{ms:.1},\"per_call_us\":{:.1}}}",
        ms * 1000.0 / calls as f64
    );
}
