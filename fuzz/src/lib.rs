//! The harnesses of doorstep's fuzz targets: one module per target, each a plain function of
//! the input bytes that panics on a crash. The targets in `fuzz_targets/` call them; so do
//! `core/tests/fuzz_crashers.rs` (which includes these files with `#[path]` to replay the
//! crashers and seeds in a normal `cargo test`) and `examples/make_seeds.rs`.

pub mod envelope;
pub mod known;
pub mod register;
pub mod rules;
pub mod xlsx;
