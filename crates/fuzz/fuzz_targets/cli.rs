//! The `cli` target: its property is documented in crates/fuzz-harness/src/cli.rs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(failure) = fuzz_harness::cli::run(data) {
        panic!("{failure}");
    }
});
