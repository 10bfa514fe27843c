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

const KNOWN: &[Known] = &[
    // calamine 0.31.0 panics on malformed sheets: it indexes the shared strings with a cell's
    // value unchecked (`<c t="s"><v/>` with no shared strings) and reads a cell reference's
    // row with unchecked u32 arithmetic (`r="A99999999999"`) (fuzz/crashers/register_xlsx/).
    Known {
        target: "register_xlsx",
        file: "/calamine-0.31.0/src/",
        message: "",
    },
    // automerge 0.12.0 (and hexane 1.0.0-alpha.5, its column codec) panics on malformed
    // changes and bundles inside `receive_sync_message` (fuzz/crashers/sync_message_rules/).
    Known {
        target: "sync_message_rules",
        file: "/automerge-0.12.0/src/",
        message: "",
    },
    Known {
        target: "sync_message_rules",
        file: "/hexane-1.0.0-alpha.5/src/",
        message: "",
    },
    // rules::check_order_events takes an event whose `id` is already in the order's history as
    // old, whatever key it is stored under, and checks nothing of it
    // (fuzz/crashers/sync_message_rules/).
    Known {
        target: "sync_message_rules",
        file: "src/rules.rs",
        message: "a work order event is not under its own id",
    },
    Known {
        target: "sync_message_rules",
        file: "src/rules.rs",
        message: "a new order event names another author",
    },
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

/// Whether the bytes reach calamine's bug that is no panic: `Range::from_sparse` allocates
/// one cell for every position between the first and the last cell of the sheet, so two
/// cells far apart (`r="A1"`, `r="A99999999"`) ask for gigabytes and libFuzzer stops on its
/// malloc limit (fuzz/crashers/register_xlsx/). While fuzzing, inputs that name a row past
/// 100,000 or a column past 100 (a register has a few thousand rows of 11 columns) are
/// skipped; strict runs keep them.
pub fn xlsx_far_cells(data: &[u8]) -> bool {
    if strict() {
        return false;
    }
    // Every attribute `r = "…"` (or '…'), wherever it is: cells and rows.
    let mut i = 0;
    while let Some(at) = data[i..].iter().position(|b| *b == b'r') {
        let start = i + at;
        i = start + 1;
        if start > 0 && !data[start - 1].is_ascii_whitespace() {
            continue;
        }
        let mut j = start + 1;
        while data.get(j).is_some_and(|b| b.is_ascii_whitespace()) {
            j += 1;
        }
        if data.get(j) != Some(&b'=') {
            continue;
        }
        j += 1;
        while data.get(j).is_some_and(|b| b.is_ascii_whitespace()) {
            j += 1;
        }
        let Some(quote @ (b'"' | b'\'')) = data.get(j).copied() else {
            continue;
        };
        let value = data[j + 1..]
            .split(|b| *b == quote)
            .next()
            .unwrap_or_default();
        let (mut row, mut col) = (0u64, 0u64);
        for b in value {
            match b {
                b'0'..=b'9' => row = row.saturating_mul(10).saturating_add(u64::from(b - b'0')),
                b'A'..=b'Z' | b'a'..=b'z' => col = col.saturating_mul(26).saturating_add(27),
                _ => {}
            }
        }
        if row > 100_000 || col > 100 {
            return true;
        }
    }
    false
}
