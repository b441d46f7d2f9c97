//! The `pe_load` target: its property is documented in crates/fuzz-harness/src/pe_load.rs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(failure) = fuzz_harness::pe_load::run(data) {
        panic!("{failure}");
    }
});
