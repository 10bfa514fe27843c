//! FFI overhead baseline: the calls the Kotlin and Python benches make through the generated
//! bindings, made here from Rust on the same exported `DoorstepReplica`, so the difference is
//! the cost of crossing the FFI (`mobile-demo/src/DoorstepBench.kt`,
//! `bindings/tests/python/bench_ffi.py`).
//!
//! Measures: opening a seeded replica with three building documents (and its first read),
//! CALLS `record_visit` calls (each one checked, committed and fsynced), and CALLS `identity`
//! calls (a small read, where the crossing itself is most of the cost).
//! Run: `cargo run -p doorstep-ffi --release --features testing --example bench_ffi [-- CALLS]`
//! or `scripts/bindings-test.sh --bench`. Prints one JSON object per measurement.

use std::time::Instant;

use doorstep_ffi::DoorstepReplica;
use doorstep_ffi::testing::seed_demo_replica;
use doorstep_ffi::types::DoorOutcome;

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
    report("open_replica", 1, started);
    let started = Instant::now();
    let buildings = replica.buildings()?;
    report("first_read_3_buildings", 1, started);
    anyhow::ensure!(
        buildings.len() == 3,
        "the seeded replica holds three buildings"
    );

    let started = Instant::now();
    for _ in 0..calls {
        std::hint::black_box(replica.identity()?);
    }
    report("identity", calls, started);

    let path = dir.path().join("visits.db").display().to_string();
    let seed = seed_demo_replica(path.clone())?;
    let replica = DoorstepReplica::open(path)?;
    let mut units = Vec::new();
    for b in &seed.buildings {
        units.extend(
            replica
                .units(b.clone(), None)?
                .into_iter()
                .map(|u| u.unit.code),
        );
    }
    let started = Instant::now();
    for i in 0..calls {
        replica.record_visit(
            seed.resolution.clone(),
            units[i % units.len()].clone(),
            DoorOutcome::NotHome,
            String::new(),
        )?;
    }
    report("record_visit", calls, started);
    Ok(())
}

fn report(name: &str, calls: usize, started: Instant) {
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    println!(
        "{{\"bench\":\"{name}\",\"lang\":\"rust\",\"calls\":{calls},\"total_ms\":{ms:.1},\"per_call_us\":{:.1}}}",
        ms * 1000.0 / calls as f64
    );
}
