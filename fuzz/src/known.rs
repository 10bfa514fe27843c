//! Bugs the fuzzers found that are not fixed yet (docs/security.md, "Fuzzing", lists them with
//! their crashers). While fuzzing, a panic that matches one of them is recorded and swallowed
//! so that the run goes on looking for others; every other panic still aborts as a crash. Each
//! new place such a panic comes from (file and line) has its first input saved in
//! `known-panics/` under the fuzzer's working directory, to be minimised and kept as a crasher.
//! Set `DOORSTEP_FUZZ_STRICT=1` to make them crashes again (to minimise or replay one with
//! `cargo fuzz tmin` / `cargo fuzz run`). `core/tests/fuzz_crashers.rs` never tolerates them:
//! its replay of each crasher is `#[ignore]`d until the bug is fixed.
//!
//! Remove an entry when its bug is fixed.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::panic::{self, AssertUnwindSafe, PanicHookInfo};
use std::sync::Mutex;

/// One known bug: where it panics (part of the source path) and words of its message.
struct Known {
    target: &'static str,
    file: &'static str,
    message: &'static str,
}

/// Empty: the bugs found so far are fixed (automerge's and calamine's panics are caught where
/// doorstep calls them, `doc::receive_sync_message` and `xlsx::xlsx_rows`; the work-order
/// events are checked by their keys).
const KNOWN: &[Known] = &[];

fn strict() -> bool {
    std::env::var_os("DOORSTEP_FUZZ_STRICT").is_some_and(|v| v != "0")
}

fn message(info: &PanicHookInfo<'_>) -> String {
    let payload = info.payload();
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

thread_local! {
    /// Where the last tolerated panic came from.
    static LAST: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// The places known panics came from so far in this run.
static SEEN: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// Install the panic hook that lets the known bugs of `target` through (call once, in the
/// fuzz target's `init`, after libfuzzer-sys installed its aborting hook).
pub fn install(target: &'static str) {
    if strict() {
        return;
    }
    let abort = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        let file = info.location().map(|l| l.file()).unwrap_or_default();
        let words = message(info);
        let known = KNOWN
            .iter()
            .any(|k| k.target == target && file.contains(k.file) && words.contains(k.message));
        if known {
            let line = info.location().map(|l| l.line()).unwrap_or_default();
            LAST.with(|last| *last.borrow_mut() = Some(format!("{file}:{line}")));
        } else {
            abort(info);
        }
    }));
}

/// Run one input; a known bug's panic ends it quietly (only after [`install`]), its input
/// saved the first time its place is seen.
pub fn run(data: &[u8], f: impl FnOnce()) {
    if panic::catch_unwind(AssertUnwindSafe(f)).is_ok() {
        return;
    }
    let Some(place) = LAST.with(|last| last.borrow_mut().take()) else {
        return;
    };
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    if seen.insert(place.clone()) {
        let name: String = place
            .rsplit("/src/")
            .next()
            .unwrap_or_default()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let crate_name = place
            .split('/')
            .find(|part| part.contains("-0.") || part.contains("-1."))
            .unwrap_or("doorstep");
        let path = format!("known-panics/{crate_name}-{name}");
        let _ = std::fs::create_dir_all("known-panics");
        let _ = std::fs::write(&path, data);
        eprintln!("known bug: a panic at {place}; first input saved as {path}");
    }
}
