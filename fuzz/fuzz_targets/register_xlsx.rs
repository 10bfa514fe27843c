//! `cargo +nightly fuzz run register_xlsx`: see `src/xlsx.rs` and docs/security.md, "Fuzzing".
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        doorstep_fuzz::known::install("register_xlsx");
    },
    |data: &[u8]| {
        doorstep_fuzz::known::run(data, || {
            doorstep_fuzz::xlsx::run(data);
        });
    }
);
