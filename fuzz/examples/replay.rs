//! Replays inputs through a harness outside libFuzzer, printing how each ends:
//! `cargo run --manifest-path fuzz/Cargo.toml --example replay -- <target> <file or hex>...`
//!
//! `… --example replay -- message <file> <out>` writes the sync message a `sync_message_rules`
//! input sends (as the server receives it) to `<out>`, for the server's tests.

use std::panic;

fn main() {
    let mut args = std::env::args().skip(1);
    let target = args.next().expect("a target name");
    if target == "message" {
        let input = args.next().expect("an input file");
        let out = args.next().expect("an output file");
        let data = std::fs::read(&input).expect("the input file");
        let case = doorstep_fuzz::rules::case(&data);
        std::fs::write(&out, &case.message).expect("the output file");
        println!(
            "{out}: {} bytes for {} by {}",
            case.message.len(),
            case.held.id,
            case.writer.account
        );
        return;
    }
    let run: fn(&[u8]) = match target.as_str() {
        "sync_envelope" => doorstep_fuzz::envelope::run,
        "register_csv" => doorstep_fuzz::register::run,
        "register_xlsx" => doorstep_fuzz::xlsx::run,
        "sync_message_rules" => |data| println!("{:?}", doorstep_fuzz::rules::run(data)),
        other => panic!("no target {other}"),
    };
    for arg in args {
        let data = std::fs::read(&arg).unwrap_or_else(|_| {
            (0..arg.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&arg[i..i + 2], 16).expect("hex"))
                .collect()
        });
        let ended = panic::catch_unwind(|| run(&data));
        println!("{arg}: {}", if ended.is_ok() { "ok" } else { "PANIC" });
    }
}
