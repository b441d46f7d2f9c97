//! Misuse of the Storport contract that must not compile.
//!
//! Each file under `compile_fail/` is a miniport that breaks one rule; trybuild checks that the
//! compiler rejects it with the expected error. `compile_pass/ok.rs` is the same template used
//! correctly, so a failure can only come from the misuse.

#[test]
fn misuse_does_not_compile() {
    let t = trybuild::TestCases::new();
    t.pass("tests/compile_pass/ok.rs");
    t.compile_fail("tests/compile_fail/*.rs");
}
