//! Compiles the C shim that defines the variadic `ScsiPortNotification`, `ScsiDebugPrint`,
//! `StorPortNotification` and `StorPortDebugPrint`.
//!
//! The library is linked with `+whole-archive`: the miniport that calls these symbols does not
//! depend on this crate, so its rlib may come after ours on the linker command line, and an
//! ordinary archive member would then not be pulled in.

fn main() {
    println!("cargo:rerun-if-changed=csrc/notify.c");
    cc::Build::new()
        .file("csrc/notify.c")
        .warnings(true)
        .cargo_metadata(false)
        .compile("scsiport_sim_shim");
    let out = std::env::var("OUT_DIR").unwrap_or_default();
    println!("cargo:rustc-link-search=native={out}");
    println!("cargo:rustc-link-lib=static:+whole-archive=scsiport_sim_shim");
}
