//! The code of `rspvscsi-sim` (the binary in `main.rs` is only its entry point): runs the
//! rspvscsi SCSI Port miniport (or the emulator's test miniport) in the SCSI Port emulator, on the
//! PVSCSI device model or on a real PVSCSI function through uio, with workloads, data checks,
//! error scenarios and the emulator's verifier. `--help` has the usage; `pattern.rs` documents the
//! on-disk pattern `check-image` verifies.
//!
//! It is a library so that the fuzz targets (`crates/fuzz`, `crates/fuzz-harness`) can reach its
//! parsers: the command line ([`cli`]), probe answers ([`probe`], [`probe_diff`]), the allowlist,
//! raw images ([`check_image`], [`pattern`]), the soak's fault list ([`soak`]) and the `cdb`
//! command's hex and status arguments ([`cdb`]).
//!
//! The emulator is a Linux program; on other hosts there is nothing here.

// The summary's `json!` object is large.
#![recursion_limit = "256"]

#[cfg(target_os = "linux")]
mod app;
#[cfg(target_os = "linux")]
pub mod cdb;
#[cfg(target_os = "linux")]
pub mod check_image;
#[cfg(target_os = "linux")]
mod checks;
#[cfg(target_os = "linux")]
pub mod cli;
#[cfg(target_os = "linux")]
mod debug_exit;
#[cfg(target_os = "linux")]
mod engine;
#[cfg(target_os = "linux")]
pub mod extents;
#[cfg(target_os = "linux")]
pub mod pattern;
#[cfg(target_os = "linux")]
pub mod probe;
#[cfg(target_os = "linux")]
pub mod probe_diff;
#[cfg(target_os = "linux")]
mod progress;
#[cfg(target_os = "linux")]
mod report;
#[cfg(target_os = "linux")]
mod rig;
#[cfg(target_os = "linux")]
mod scenario;
#[cfg(target_os = "linux")]
pub mod soak;
#[cfg(target_os = "linux")]
mod trace_cmd;

/// The program: parses the command line, runs what it asks, and returns the exit status
/// (0 pass, 1 fail, 2 usage error).
#[cfg(target_os = "linux")]
#[must_use]
pub fn main() -> std::process::ExitCode {
    app::main()
}
