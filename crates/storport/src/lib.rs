//! A safe wrapper over the Storport miniport interface.
//!
//! This crate carries the unsafety of talking to `storport.sys`, and puts as much of the
//! Storport contract as it can into types, so that a miniport built on it reads like ordinary
//! Rust. Its central difference from the `scsiport` crate is concurrency. SCSI Port serialises
//! nearly every miniport routine under one lock, so that crate can hand the whole device
//! extension to every routine as `&mut self`. Storport in full-duplex mode does not:
//! `HwStorBuildIo` runs with no lock, on several processors at once; `HwStorStartIo` holds only
//! the StartIo lock while `HwStorInterrupt` runs under the interrupt lock on another processor;
//! the DPC holds no lock unless it takes one (`DDI-storport:nf-storport-storportacquirespinlock`,
//! `KG:full-duplex-mode`). So the device extension is split by the lock that owns each part:
//!
//! - the [`Miniport`] type itself: configuration written in `HwStorFindAdapter`, read by every
//!   routine (`&self`, hence `Sync`), the only part `HwStorBuildIo` sees besides the request;
//! - [`Miniport::StartIoState`], owned by the StartIo lock; [`Miniport::InterruptState`], owned
//!   by the interrupt lock; [`Miniport::DpcState`], owned by the DPC;
//! - per-request state in the SRB extension ([`Miniport::SrbExtension`]).
//!
//! Each routine receives the state its held lock owns and a context type ([`StartIoCtx`],
//! [`DpcCtx`], ...) offering only the services allowed there; the others it reaches by taking
//! the lock through its context ([`Synchronize::synchronize`], [`DpcCtx::with_start_io_lock`]),
//! in the documented order. Hardware handles ([`Registers`], [`CommonBuffer`]) are not `Sync`,
//! so they can only live in lock-owned state, out of `HwStorBuildIo`'s reach. A request is an
//! owned [`Srb`]: completing it consumes it. See `README.md` for the routine-by-routine map.
//!
//! [`initialize`] builds the `HW_INITIALIZATION_DATA` from the type and calls
//! `StorPortInitialize`; every entry point is a generic `extern "win64"` trampoline, and every
//! import is a `StorPort*` function of `scsiport_sys::storport`, so the emulator can stand in for
//! `storport.sys` on Linux. The crate is `no_std` and panic-free: a panic in kernel mode is a bug
//! check.
//!
//! Citation keys (`DDI-storport:…`, `KG:…`, `DT:…`) are those of the project's
//! `scsiport-contract.md`: pages of `MicrosoftDocs/windows-driver-docs-ddi` and
//! `MicrosoftDocs/windows-driver-docs`.
#![no_std]
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

#[cfg(test)]
extern crate std;

mod zeroable;
pub use zeroable::{AnyBitPattern, Zeroable};

mod extension;

mod srb;
pub use srb::{
    DataDirection, LuAddress, PhysicalSegment, QueueAction, ScatterGatherList, Srb, SrbFunction, SrbId, SrbStatus,
};

mod hw;
pub use hw::{CommonBuffer, PhysicalAddress, Registers, Ring, Space, Words};

mod config;
pub use config::{AccessRange, ConfigInfo};

mod context;
pub use context::{
    AdapterControlCtx, BuildIo, BuildIoCtx, DpcCtx, FindAdapterCtx, InitializeCtx, InterruptCtx, Notify,
    PassiveInitializeCtx, Port, QueueControl, RequestCompleted, ResetBusCtx, Stall, StartIoCtx, StartIoLockedCtx,
    Synchronize, SynchronizedCtx, TimerCtx, TransferLimits,
};

mod miniport;
pub use miniport::{
    AdapterControl, FindAdapterError, HwInitData, InterfaceType, MapBuffers, Miniport, States, initialize,
};

/// The raw bindings, for what the wrapper does not cover.
pub use scsiport_sys as sys;

#[cfg(test)]
mod tests;

/// `StorPortDebugPrint(level, "%s %#llx\n", message, value)`: debug output through the port
/// (`DDI-storport:nf-storport-storportdebugprint`). A shipping image that wants no debug imports
/// keeps calls to this behind a feature.
pub fn debug_print(level: u32, message: &core::ffi::CStr, value: u64) {
    let format = c"%s %#llx\n";
    // SAFETY: both strings are NUL-terminated and live across the call; the format consumes
    // exactly one string and one unsigned long long, which are what follow it.
    unsafe {
        sys::storport::StorPortDebugPrint(level, format.as_ptr().cast_mut(), message.as_ptr(), core::ffi::c_ulonglong::from(value));
    }
}
