//! Build script of the `rspvscsi` driver package.
//!
//! On a Windows host it lets `wdk-build` emit what a WDM kernel driver binary needs (the WDK's
//! library paths, `/DRIVER`, `/ENTRY:DriverEntry`, `/SUBSYSTEM:NATIVE`, ...). `wdk-build` refuses to
//! compile anywhere else, so on other hosts this script does nothing and the package builds as an
//! ordinary library that the SCSI Port emulator links against.

#[cfg(windows)]
fn main() -> Result<(), wdk_build::ConfigError> {
    wdk_build::configure_wdk_binary_build()
}

#[cfg(not(windows))]
fn main() {}
