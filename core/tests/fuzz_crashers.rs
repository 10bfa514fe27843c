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
/// Empty: every bug the fuzzers found so far is fixed.
const UNFIXED: &[(&str, &str)] = &[];

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
