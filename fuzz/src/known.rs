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

/// Dependencies whose every call doorstep makes under `catch_unwind` and turns a panic into a
/// refusal with a code: `doorstep_core::xlsx` (calamine) and `doc::receive_sync_message` /
/// `rules::check_changes` (automerge and its column store, hexane). A panic from inside them
/// is let through to that guard instead of aborting, and the first input from each place is
/// saved in `known-panics/` as for a known bug. If such a panic escapes the guard — reaches
/// [`run`] — that is a crash.
/// hexane is built from `vendor/hexane` (vendor/README.md), so its source path has no version.
const GUARDED: &[(&str, &str)] = &[
    ("register_xlsx", "/calamine-"),
    ("sync_message_rules", "/automerge-"),
    ("sync_message_rules", "/hexane-"),
    ("sync_message_rules", "/vendor/hexane/"),
];

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

thread_local! {
    /// Where the last panic inside a guarded dependency came from.
    static GUARDED_AT: RefCell<Option<String>> = const { RefCell::new(None) };
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
        let guarded = GUARDED
            .iter()
            .any(|(t, krate)| *t == target && file.contains(krate));
        if guarded {
            let line = info.location().map(|l| l.line()).unwrap_or_default();
            GUARDED_AT.with(|at| *at.borrow_mut() = Some(format!("{file}:{line}")));
        } else if known {
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
    let escaped = panic::catch_unwind(AssertUnwindSafe(f)).is_err();
    let guarded = GUARDED_AT.with(|at| at.borrow_mut().take());
    if escaped && guarded.is_some() {
        eprintln!("a panic at {guarded:?} escaped doorstep's catch_unwind guard");
        std::process::abort();
    }
    if let Some(place) = guarded {
        save(data, place);
        return;
    }
    if !escaped {
        return;
    }
    let Some(place) = LAST.with(|last| last.borrow_mut().take()) else {
        return;
    };
    save(data, place);
}

/// Save `data` in `known-panics/` the first time a panic comes from `place`.
fn save(data: &[u8], place: String) {
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    if seen.insert(place.clone()) {
        let name: String = place
            .rsplit("/src/")
            .next()
            .unwrap_or_default()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let parts: Vec<&str> = place.split('/').collect();
        let vendored = parts
            .windows(2)
            .find(|pair| pair[0] == "vendor")
            .map(|pair| pair[1]);
        let crate_name = parts
            .iter()
            .copied()
            .find(|part| part.contains("-0.") || part.contains("-1."))
            .or(vendored)
            .unwrap_or("doorstep");
        let path = format!("known-panics/{crate_name}-{name}");
        let _ = std::fs::create_dir_all("known-panics");
        let _ = std::fs::write(&path, data);
        eprintln!("a tolerated panic at {place}; first input saved as {path}");
    }
}
