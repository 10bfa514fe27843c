//! The fuzzers' findings stay found: every crasher (`fuzz/crashers/<target>/`) and every seed
//! (`fuzz/seeds/<target>/`) is replayed through the harness its fuzz target runs, included here
//! from `fuzz/src/` as is, and must end without a panic: each decoder, import and rule check
//! returns `Ok` or its typed error (docs/security.md, "Fuzzing").
//!
//! A crasher whose bug is not fixed yet is listed in `UNFIXED` and replayed by its own
//! `#[ignore]`d test; whoever fixes the bug removes both lines.

use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

#[allow(dead_code)]
#[path = "../../fuzz/src/envelope.rs"]
mod envelope;
#[allow(dead_code)]
#[path = "../../fuzz/src/register.rs"]
mod register;
#[allow(dead_code)]
#[path = "../../fuzz/src/rules.rs"]
mod rules;
#[allow(dead_code)]
#[path = "../../fuzz/src/xlsx.rs"]
mod xlsx;

/// Crashers of bugs not fixed yet, as `(target, file)`; each bug has an ignored test below.
const UNFIXED: &[(&str, &str)] = &[
    ("register_xlsx", "cell-reference-overflow"),
    ("register_xlsx", "cells-far-apart"),
    ("register_xlsx", "shared-string-out-of-range"),
    ("sync_message_rules", "bundle-chunk-columns"),
    ("sync_message_rules", "bundle-chunk-rle-run"),
    ("sync_message_rules", "change-actor-index"),
    ("sync_message_rules", "change-collector"),
    ("sync_message_rules", "change-missing-object"),
    ("sync_message_rules", "order-event-under-another-key"),
];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The input files of `fuzz/<kind>/<target>/`, by name (dot files and READMEs are not inputs).
fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = fuzz_dir().join(kind).join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or(".");
            path.is_file() && !name.starts_with('.') && !name.starts_with("README")
        })
        .collect();
    files.sort();
    files
}

/// Run `harness` on one file; the panic's words when it panics.
fn replay_one(path: &Path, harness: fn(&[u8])) -> Result<(), String> {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    panic::catch_unwind(AssertUnwindSafe(|| harness(&data))).map_err(|payload| {
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a panic".to_string())
    })
}

/// Every seed and every crasher of `target` except the unfixed ones.
fn replay(target: &str, harness: fn(&[u8])) {
    let mut failures = Vec::new();
    let mut count = 0;
    for kind in ["seeds", "crashers"] {
        for path in inputs(kind, target) {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if UNFIXED.contains(&(target, name)) {
                continue;
            }
            count += 1;
            if let Err(why) = replay_one(&path, harness) {
                failures.push(format!("{kind}/{target}/{name}: {why}"));
            }
        }
    }
    assert!(count > 0, "no seeds for {target}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Some unfixed crashers of `target`: each must end without a panic once its bug is fixed.
fn replay_unfixed(target: &str, names: &[&str], harness: fn(&[u8])) {
    let failures: Vec<String> = names
        .iter()
        .filter_map(|name| {
            let path = fuzz_dir().join("crashers").join(target).join(name);
            replay_one(&path, harness)
                .err()
                .map(|why| format!("crashers/{target}/{name}: {why}"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn sync_message_rules(data: &[u8]) {
    // Every outcome is an answer; only a panic is a failure.
    let _ = rules::run(data);
}

#[test]
fn the_sync_envelope_decoders_survive_their_seeds_and_crashers() {
    replay("sync_envelope", envelope::run);
}

#[test]
fn the_register_csv_import_survives_its_seeds_and_crashers() {
    replay("register_csv", register::run);
}

#[test]
fn the_register_xlsx_import_survives_its_seeds_and_crashers() {
    replay("register_xlsx", xlsx::run);
}

#[test]
fn the_sync_message_rules_survive_their_seeds_and_crashers() {
    replay("sync_message_rules", sync_message_rules);
}

#[test]
#[ignore = "unfixed: calamine 0.31.0 panics on malformed sheets, so the server's xlsx_rows \
            (server/src/admin/register.rs) does too: a shared-string cell with no shared \
            strings, a cell reference with a row past u32; docs/security.md, Fuzzing"]
fn crashers_calamine_panics() {
    replay_unfixed(
        "register_xlsx",
        &["shared-string-out-of-range", "cell-reference-overflow"],
        xlsx::run,
    );
}

#[test]
#[ignore = "unfixed and heavy (3.2 GB): calamine 0.31.0 allocates every cell between the first \
            and the last (Range::from_sparse), so xlsx_rows (server/src/admin/register.rs) does \
            for two cells A1 and A99999999; docs/security.md, Fuzzing"]
fn crasher_calamine_cells_far_apart() {
    replay_unfixed("register_xlsx", &["cells-far-apart"], xlsx::run);
}

#[test]
#[ignore = "unfixed: automerge 0.12.0 (and hexane 1.0.0-alpha.5) panic inside \
            receive_sync_message on malformed bundles and changes, which server/src/sync.rs \
            work_one runs unguarded under the document's lock; docs/security.md, Fuzzing"]
fn crashers_automerge_panics_on_malformed_changes() {
    replay_unfixed(
        "sync_message_rules",
        &[
            "bundle-chunk-columns",
            "bundle-chunk-rle-run",
            "change-actor-index",
            "change-collector",
            "change-missing-object",
        ],
        sync_message_rules,
    );
}

#[test]
#[ignore = "unfixed: rules::check_order_events (core/src/rules.rs) checks nothing of a new \
            work-order event whose id is already in the order's history under another key, \
            so any writer of the order can append any status; docs/security.md, Fuzzing"]
fn crasher_order_event_under_another_key() {
    replay_unfixed(
        "sync_message_rules",
        &["order-event-under-another-key"],
        sync_message_rules,
    );
}
