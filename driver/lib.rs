//! **rspvscsi**: a Windows SCSI Port miniport for the VMware paravirtual SCSI HBA (PVSCSI,
//! PCI 15AD:07C0), as VMware and QEMU (`-device pvscsi`) present it.
//!
//! The device logic (rings, request slots and contexts, the request descriptor, completions,
//! messages, reset and abort) is one codebase, `device`, generic over the port wrapper through
//! the traits of `port`. The port flavours are thin glue over their wrappers: [`scsi_port`] is
//! the SCSI Port miniport, its routines named as Microsoft's documentation names them
//! (`hw_find_adapter` is `HwScsiFindAdapter`, and so on), with the deferred interrupt path
//! Microsoft documents: `HwScsiInterrupt` claims and masks, `HwScsiEnableInterruptsCallback`
//! completes, `HwScsiDisableInterruptsCallback` unmasks. All unsafety is in the wrapper crates;
//! this crate has no `unsafe` except `DriverEntry`'s hand-over of its arguments and the
//! `Zeroable` promises of its device extensions.
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

pub mod cdb;
mod device;
mod hw;
mod layout;
mod port;
pub mod pvscsi;
pub mod scsi_port;
mod status;

pub use scsi_port::Adapter;

/// `DriverEntry`: registers the miniport with its port driver and returns what
/// `ScsiPortInitialize` returned (`KG:driverentry-of-scsi-miniport-driver`). In crash-dump mode
/// both arguments are NULL; they are passed on unchanged either way.
///
/// # Safety
/// Called by the system (or the emulator) as a driver's entry point, with the two arguments it
/// gives a SCSI miniport.
#[cfg_attr(not(test), unsafe(no_mangle))]
#[allow(non_snake_case)] // the name Windows looks for
pub unsafe extern "win64" fn DriverEntry(argument1: *mut core::ffi::c_void, argument2: *mut core::ffi::c_void) -> u32 {
    // SAFETY: this is DriverEntry, and the arguments are its own, unchanged.
    unsafe { scsi_port::driver_entry(argument1, argument2) }
}
