//! **rspvscsi**: a Windows SCSI Port miniport for the VMware paravirtual SCSI HBA (PVSCSI,
//! PCI 15AD:07C0), as VMware and QEMU (`-device pvscsi`) present it.
//!
//! The routines are in [`adapter`], named as Microsoft's documentation names them
//! (`hw_find_adapter` is `HwScsiFindAdapter`, and so on). The interrupt path is the deferred
//! one Microsoft documents: `HwScsiInterrupt` claims and masks, `HwScsiEnableInterruptsCallback`
//! completes, `HwScsiDisableInterruptsCallback` unmasks. All unsafety is in the `scsiport`
//! crate; this crate has no `unsafe` except `DriverEntry`'s hand-over of its arguments.
//!
//! On Windows this builds as the kernel driver (`no_std`, linked by `wdk-build`). Elsewhere it
//! builds as an ordinary library that the SCSI Port emulator (`scsiport-sim`) links and runs.
#![cfg_attr(target_os = "windows", no_std)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic,
        clippy::arithmetic_side_effects
    )
)]

#[cfg(all(target_os = "windows", not(test)))]
mod panic;

/// Debug output with a value, through `ScsiDebugPrint`; compiled only with the `debug-print`
/// feature, so the shipping driver has no debug output and no import for it.
macro_rules! debug_print {
    ($message:literal, $value:expr) => {{
        #[cfg(feature = "debug-print")]
        scsiport::debug_print(1, $message, u64::from($value));
        #[cfg(not(feature = "debug-print"))]
        let _ = || $value;
    }};
}

pub mod adapter;
pub mod cdb;
mod hw;
mod layout;
pub mod pvscsi;
mod status;

pub use adapter::Adapter;

/// `DriverEntry`: registers the miniport with SCSI Port and returns what `ScsiPortInitialize`
/// returned (`KG:driverentry-of-scsi-miniport-driver`). In crash-dump mode both arguments are
/// NULL; they are passed on unchanged either way.
///
/// # Safety
/// Called by the system (or the emulator) as a driver's entry point, with the two arguments it
/// gives a SCSI miniport.
#[cfg_attr(not(test), unsafe(no_mangle))]
#[allow(non_snake_case)] // the name Windows looks for
pub unsafe extern "win64" fn DriverEntry(argument1: *mut core::ffi::c_void, argument2: *mut core::ffi::c_void) -> u32 {
    // SAFETY: this is DriverEntry, and the arguments are its own, unchanged.
    unsafe { scsiport::initialize::<Adapter>(argument1, argument2) }
}
