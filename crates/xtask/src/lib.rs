//! The project's tasks, as a library so that the tests can run them too.
//!
//! - [`sys`]: `cargo xtask sys` — builds `rspvscsi.sys` for `x86_64-pc-windows-msvc` on a Linux
//!   host, packages it the way `cargo make` does on Windows (`.sys`, stamped `.inf`, `.pdb`,
//!   `.map`) and signs it with a local test certificate.
//! - [`pe`]: `cargo xtask check-pe` — the rules Windows and HLK apply to a storage miniport's
//!   image, checked on the binary with the `object` crate; the same check runs on the `.sys` that
//!   `cargo make` builds in the Windows workflow.
//! - [`c_reference`]: `cargo xtask sys --c-reference` — the C reference miniport
//!   (`driver/c-reference/`) built with MinGW-w64 and held to the same rules.
//! - [`mod@bench`]: `cargo xtask bench` — the miniport's and the emulator's cost per I/O (callgrind
//!   instruction counts, system calls, payload copies, IOPS against memcpy), held to issue 11's
//!   targets with `--check`.
//!
//! Nothing here installs anything into the system or the toolchain: what the build needs and the
//! machine lacks (the Rust library source for `-Z build-std`) is downloaded into `target/xtask/`.

pub mod bench;
pub mod c_reference;
pub mod debian;
pub mod inf;
pub mod map;
pub mod pe;
pub mod sign;
pub mod sys;
pub mod toolchain;

/// The Windows target every image is built for.
pub const TARGET: &str = "x86_64-pc-windows-msvc";

/// The workspace root (this crate lives at `crates/xtask`).
#[must_use]
pub fn workspace_root() -> std::path::PathBuf {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.ancestors().nth(2).unwrap_or(manifest).to_path_buf()
}

/// Whether a missing tool must fail instead of being skipped: CI sets `RSPVSCSI_CI=1`.
#[must_use]
pub fn in_ci() -> bool {
    std::env::var("RSPVSCSI_CI").is_ok_and(|v| v == "1")
}
