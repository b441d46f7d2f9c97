//! A safe wrapper over the SCSI Port miniport interface.
//!
//! This crate carries the unsafety of talking to `scsiport.sys`, and encodes as much of the
//! SCSI Port contract as it can in types, so that a miniport built on it reads like ordinary Rust:
//!
//! - A miniport is a type implementing [`Miniport`]; [`initialize`] builds the
//!   `HW_INITIALIZATION_DATA` from it (entry points are generic `extern "win64"` trampolines,
//!   extension sizes come from the types) and calls `ScsiPortInitialize`.
//! - Every routine gets a context type that offers only what the documentation allows there:
//!   only [`FindAdapterCtx`] can map registers or get the uncached extension (once); only
//!   [`InterruptCtx`] can request `CallEnableInterrupts`; [`EnableInterruptsCtx`] completes
//!   requests and can only be finished by requesting `CallDisableInterrupts`, which yields the
//!   [`DisableInterruptsRequested`] value that routine must return.
//! - A request is an owned [`Srb`] handle: completing it consumes it, so it cannot be completed
//!   twice or touched afterwards. Its setters cover exactly the fields a miniport may write.
//! - Hardware access goes through [`Registers`] (mapped register ranges) and [`CommonBuffer`]
//!   (the uncached extension), both bounds-checked and volatile.
//!
//! The crate is `no_std` and panic-free: a panic in kernel mode is a bug check.
//!
//! Citation keys in the documentation (`DDI:…`, `KG:…`, `REF:…`) are those of the project's
//! `scsiport-contract.md`.
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
pub use srb::{DataDirection, LuAddress, QueueAction, Srb, SrbFunction, SrbId, SrbStatus};

mod hw;
pub use hw::{CommonBuffer, MemoryWindow, PhysicalAddress, Registers, Ring, Space, Words};

mod config;
pub use config::{AccessRange, ConfigInfo};

mod context;
pub use context::{
    AdapterControlCtx, DisableInterruptsCtx, DisableInterruptsRequested, EnableInterruptsCtx, FindAdapterCtx,
    EnableInterruptsRequested, InitializeCtx, InterruptCtx, InterruptResult, Notify, PhysicalSegment,
    PhysicalSegments, Port, ResetBusCtx,
    StartIoCtx, TimerCtx,
};

mod miniport;
pub use miniport::{
    AdapterControl, ControlTypes, FindAdapterError, HwInitData, InterfaceType, Miniport, initialize,
};

/// The raw bindings, for what the wrapper does not cover.
pub use scsiport_sys as sys;

#[cfg(test)]
mod tests;

/// `ScsiDebugPrint(level, "%s %#llx\n", message, value)`: debug output through the port
/// (`DDI:nf-srb-scsidebugprint`). SCSI Port prints it only where debug output is enabled for the
/// level; a miniport that wants no debug imports at all keeps calls to this behind a feature.
pub fn debug_print(level: u32, message: &core::ffi::CStr, value: u64) {
    let format = c"%s %#llx\n";
    // SAFETY: both strings are NUL-terminated and live across the call; the format consumes
    // exactly one string and one unsigned long long, which are what follow it.
    unsafe {
        sys::ScsiDebugPrint(level, format.as_ptr().cast_mut(), message.as_ptr(), core::ffi::c_ulonglong::from(value));
    }
}
