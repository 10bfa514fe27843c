//! `cargo +nightly fuzz run sync_envelope`: see `src/envelope.rs` and docs/security.md, "Fuzzing".
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        doorstep_fuzz::known::install("sync_envelope");
    },
    |data: &[u8]| {
        doorstep_fuzz::known::run(data, || {
            doorstep_fuzz::envelope::run(data);
        });
    }
);
