//! `rspvscsi-sim`: runs the rspvscsi SCSI Port miniport (or the emulator's test miniport) in the
//! SCSI Port emulator, on the PVSCSI device model or on a real PVSCSI function through uio, with
//! workloads, data checks, error scenarios and the emulator's verifier. `--help` has the usage;
//! `pattern.rs` documents the on-disk pattern `check-image` verifies.
//!
//! The emulator is a Linux program; on other hosts this binary only says so.

// The summary's `json!` object is large.
#![recursion_limit = "256"]

#[cfg(target_os = "linux")]
mod app;
#[cfg(target_os = "linux")]
mod cdb;
#[cfg(target_os = "linux")]
mod check_image;
#[cfg(target_os = "linux")]
mod checks;
#[cfg(target_os = "linux")]
mod cli;
#[cfg(target_os = "linux")]
mod debug_exit;
#[cfg(target_os = "linux")]
mod engine;
#[cfg(target_os = "linux")]
mod extents;
#[cfg(target_os = "linux")]
mod pattern;
#[cfg(target_os = "linux")]
mod probe;
#[cfg(target_os = "linux")]
mod probe_diff;
#[cfg(target_os = "linux")]
mod progress;
#[cfg(target_os = "linux")]
mod report;
#[cfg(target_os = "linux")]
mod rig;
#[cfg(target_os = "linux")]
mod scenario;
#[cfg(target_os = "linux")]
mod soak;

#[cfg(target_os = "linux")]
fn main() -> std::process::ExitCode {
    app::main()
}

#[cfg(not(target_os = "linux"))]
fn main() -> std::process::ExitCode {
    eprintln!("rspvscsi-sim: the SCSI Port emulator runs on Linux only");
    std::process::ExitCode::FAILURE
}
