//! **rspvscsi**: a Windows storage miniport for the VMware paravirtual SCSI HBA (PVSCSI,
//! PCI 15AD:07C0), as VMware and QEMU (`-device pvscsi`) present it, on SCSI Port and on
//! Storport from one codebase.
//!
//! The device logic (rings, request slots and contexts, the request descriptor, completions,
//! messages, reset and abort) is one codebase, `device`, generic over the port wrapper through
//! the traits of `port`. The port flavours are thin glue over their wrappers, their routines
//! named as Microsoft's documentation names them (`hw_find_adapter` is `HwScsiFindAdapter` or
//! `HwStorFindAdapter`, and so on):
//!
//! - [`scsi_port`] (`rspvscsi.sys`) with the deferred interrupt path Microsoft documents for SCSI
//!   Port: `HwScsiInterrupt` claims and masks, `HwScsiEnableInterruptsCallback` completes,
//!   `HwScsiDisableInterruptsCallback` unmasks;
//! - [`stor_port`] (`rspvscsi_storport.sys`, the `storport` feature) full duplex:
//!   `HwStorBuildIo` builds the request descriptor with no lock, `HwStorStartIo` posts it under
//!   the `StartIo` lock, `HwStorInterrupt` claims and issues a DPC, which completes.
//!
//! A Windows image holds one flavour and exports its `DriverEntry`; the Linux library the
//! emulator links holds both ([`scsi_port::driver_entry`], [`stor_port::driver_entry`]), and its
//! `DriverEntry` is the one the features select. All unsafety is in the wrapper crates; this
//! crate has no `unsafe` except `DriverEntry`'s hand-over of its arguments and the `Zeroable`
//! promises of its device extensions.
//!
//! On Windows this builds as the kernel driver (`no_std`, linked by `wdk-build`). Elsewhere it
//! builds as an ordinary library that the port emulator (`scsiport-sim`) links and runs.
#![cfg_attr(target_os = "windows", no_std)]
// The driver's internals are what a porting engineer reads, so its documentation is built with
// `--document-private-items` (README, "Test it"), where links from the flavours to `device` and
// to their private routines resolve.
#![allow(rustdoc::private_intra_doc_links)]
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
#[cfg(any(not(target_os = "windows"), not(feature = "storport")))]
pub mod scsi_port;
mod status;
#[cfg(any(not(target_os = "windows"), feature = "storport"))]
pub mod stor_port;

#[cfg(any(not(target_os = "windows"), not(feature = "storport")))]
pub use scsi_port::Adapter;

/// `DriverEntry`: registers the miniport with its port driver and returns what
/// `ScsiPortInitialize` (`KG:driverentry-of-scsi-miniport-driver`) or `StorPortInitialize`
/// (`DDI-storport:nf-storport-storportinitialize`) returned; the `storport` feature selects
/// Storport. In SCSI Port's crash-dump mode both arguments are NULL; they are passed on
/// unchanged either way.
///
/// # Safety
/// Called by the system (or the emulator) as a driver's entry point, with the two arguments it
/// gives a SCSI or Storport miniport.
#[cfg_attr(not(test), unsafe(no_mangle))]
#[allow(non_snake_case)] // the name Windows looks for
pub unsafe extern "win64" fn DriverEntry(argument1: *mut core::ffi::c_void, argument2: *mut core::ffi::c_void) -> u32 {
    // SAFETY: this is DriverEntry, and the arguments are its own, unchanged.
    #[cfg(not(feature = "storport"))]
    return unsafe { scsi_port::driver_entry(argument1, argument2) };
    // SAFETY: as above.
    #[cfg(feature = "storport")]
    return unsafe { stor_port::driver_entry(argument1, argument2) };
}
