//! Build script of the `rspvscsi` driver package: the link of `rspvscsi.sys`.
//!
//! For a Windows target it gives the linker what a WDM kernel driver needs. With the `wdk-build`
//! feature on a Windows host (the default, which `cargo make` uses) windows-drivers-rs's
//! `wdk_build::configure_wdk_binary_build()` does that from the installed WDK. wdk-build cannot
//! build on another host, so `cargo xtask sys` on Linux turns the feature off and this script
//! emits the same WDM arguments itself: [`WDM_LINK_ARGS`] is what wdk-build 0.6.0 emits for a
//! WDM driver (`Config::configure_binary_build`, taken from the WDK's
//! `WindowsDriver.KernelMode.props`, `WindowsDriver.KernelMode.WDM.props` and
//! `Microsoft.Link.Common.props`).
//!
//! Both ways then add [`COMMON_LINK_ARGS`], where link.exe and rust-lld (lld-link) differ in
//! what they do by themselves, so that both images come out the same.
//!
//! For any other target (the Linux build that the SCSI Port emulator links and runs) there is
//! nothing to do.

/// wdk-build 0.6.0's linker arguments for a WDM driver, in its order. No library search path:
/// every import is `raw-dylib` (`scsiport-sys`), so no import library is needed.
#[cfg(not(all(windows, feature = "wdk-build")))]
const WDM_LINK_ARGS: &[&str] = &[
    "/DRIVER",
    "/NODEFAULTLIB",
    "/SUBSYSTEM:NATIVE",
    "/KERNEL",
    "/ENTRY:DriverEntry",
    "/IGNORE:4257",
    "/IGNORE:4216",
    "/NXCOMPAT",
    "/DYNAMICBASE",
    "/MAP",
    "/MAPINFO:EXPORTS",
    "/OPT:REF,ICF",
    "/INTEGRITYCHECK",
    "/MANIFEST:NO",
];

/// What link.exe does for `/DRIVER /SUBSYSTEM:NATIVE` and lld-link does not, spelled out so that
/// either linker produces the same image:
/// - `/RELEASE`: the image checksum, which the kernel loader verifies for a driver; link.exe
///   implies it for a native image, lld-link does not (windows-image-facts.md).
/// - `/SECTION:…,P`: `IMAGE_SCN_MEM_NOT_PAGED` on every section the driver's code and data
///   live in, as link.exe `/DRIVER` marks them (a miniport's routines run at DIRQL and must never
///   fault; lld-link's `/KERNEL` does not mark them, windows-drivers-rs issue 182). The
///   attribute letters are link.exe's: E execute, R read, W write, P not paged.
const COMMON_LINK_ARGS: &[&str] =
    &["/RELEASE", "/SECTION:.text,ERP", "/SECTION:.rdata,RP", "/SECTION:.pdata,RP", "/SECTION:.data,RWP"];

#[allow(clippy::unnecessary_wraps)] // only the Windows-host path returns an error (from wdk-build)
fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo::rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("windows") {
        return Ok(());
    }

    #[cfg(all(windows, feature = "wdk-build"))]
    wdk_build::configure_wdk_binary_build()?;

    #[cfg(not(all(windows, feature = "wdk-build")))]
    for arg in WDM_LINK_ARGS {
        println!("cargo::rustc-cdylib-link-arg={arg}");
    }

    for arg in COMMON_LINK_ARGS {
        println!("cargo::rustc-cdylib-link-arg={arg}");
    }
    Ok(())
}
