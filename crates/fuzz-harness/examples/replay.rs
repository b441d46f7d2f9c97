//! Replays one input of a fuzz target on stable Rust, without the sanitizer, and says what it
//! is and how it ends: `cargo run -p fuzz-harness --example replay -- <target> <file>`. With
//! `RSPVSCSI_FUZZ_TRACE=<file>` the emulator's trace (crates/scsiport-sim/TRACE.md) of the run
//! is written there.

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [target, file] = args.as_slice() else {
        eprintln!("usage: replay <srb|hostile|pe_load|cli> <file>");
        return std::process::ExitCode::from(2);
    };
    let data = match std::fs::read(file) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{file}: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    if let Some(input) = fuzz_harness::describe(target, &data) {
        println!("{input}");
    }
    match fuzz_harness::replay(target, &data) {
        Some(Ok(summary)) => {
            println!("{summary}");
            println!("the property holds");
            std::process::ExitCode::SUCCESS
        }
        Some(Err(failure)) => {
            println!("the property is broken: {failure}");
            std::process::ExitCode::FAILURE
        }
        None => {
            eprintln!("no target {target}");
            std::process::ExitCode::from(2)
        }
    }
}
