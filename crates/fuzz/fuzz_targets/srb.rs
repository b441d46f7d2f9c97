//! The `srb` target: its property is documented in crates/fuzz-harness/src/srb.rs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(failure) = fuzz_harness::srb::run(data) {
        panic!("{failure}");
    }
});
