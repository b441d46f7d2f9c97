//! The `hostile` target: its property is documented in crates/fuzz-harness/src/hostile.rs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(failure) = fuzz_harness::hostile::run(data) {
        panic!("{failure}");
    }
});
