//! `cargo +nightly fuzz run sync_message_rules`: see `src/rules.rs` and docs/security.md, "Fuzzing".
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        // The documents are built once, before the first input.
        doorstep_fuzz::rules::world();
        doorstep_fuzz::known::install("sync_message_rules");
    },
    |data: &[u8]| {
        doorstep_fuzz::known::run(data, || {
            let _ = doorstep_fuzz::rules::run(data);
        });
    }
);
