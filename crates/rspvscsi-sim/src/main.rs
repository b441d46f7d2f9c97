//! `rspvscsi-sim`: runs the rspvscsi SCSI Port miniport (or the emulator's test miniport) in the
//! SCSI Port emulator. The code is the library of this package (`lib.rs`); `--help` has the
//! usage.
//!
//! The emulator is a Linux program; on other hosts this binary only says so.

#[cfg(target_os = "linux")]
fn main() -> std::process::ExitCode {
    rspvscsi_sim::main()
}

#[cfg(not(target_os = "linux"))]
fn main() -> std::process::ExitCode {
    eprintln!("rspvscsi-sim: the SCSI Port emulator runs on Linux only");
    std::process::ExitCode::FAILURE
}
