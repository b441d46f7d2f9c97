//! A SCSI Port emulator: runs a miniport's real code on Linux the way `scsiport.sys` would, with
//! a Driver-Verifier-style verifier.
//!
//! A miniport crate declares the `ScsiPort*` routines `extern` (through `scsiport-sys`); this crate
//! defines them with C linkage (`ffi`, and the C shim for the variadic `ScsiPortNotification` and
//! `ScsiDebugPrint`), so the miniport linked with it into one binary runs unchanged. A
//! [`Machine`] holds one or more HBAs (anything implementing [`hba::Hba`]: the PVSCSI model, a
//! test double), plays scsiport.sys towards the miniport and a class driver towards the caller,
//! and checks every rule of the contract it can (`VERIFIER.md`). The event trace is described in
//! `TRACE.md`.
//!
//! ```no_run
//! use std::sync::Arc;
//! use scsiport_sim::{Machine, Schedule, Request, mem::SimDma};
//! # fn hba(_: Arc<dyn scsiport_sim::hba::Clock>) -> Arc<dyn scsiport_sim::hba::Hba> { unimplemented!() }
//! # unsafe extern "win64" fn driver_entry(_: *mut core::ffi::c_void, _: *mut core::ffi::c_void) -> u32 { 0 }
//! let b = Machine::builder().schedule(Schedule::Deterministic { seed: 7 });
//! let dma = Arc::new(SimDma::default());
//! let h = hba(b.clock());
//! let m = b.adapter(h, dma).build();
//! m.load_driver(driver_entry).unwrap();
//! let c = m.execute(Request::inquiry(0)).unwrap();
//! assert!(c.is_success());
//! ```
#![allow(clippy::missing_panics_doc, clippy::missing_errors_doc)]

pub mod disk;
pub mod hba;
pub mod mem;
pub mod pvscsi;
#[cfg(target_os = "linux")]
pub mod uio;

mod ffi;
mod stor_ffi;
mod guard;
mod machine;
mod mmio;
pub mod pe;
mod port;
mod raw_miniport;
mod request;
mod stats;
mod state_lock;
pub mod stor_test_miniport;
pub mod test_miniport;
mod trace;
pub mod trace_chrome;
pub mod trace_diff;
pub mod verifier;

pub use ffi::scsiport_exports;
pub use stor_ffi::storport_exports;
pub use machine::{DriverEntryFn, Machine, MachineBuilder, Schedule};
pub use port::{Error, Port, PortConfig, RealClock, VirtualClock};
pub use request::{Cdb, Completion, Direction, PortBuffer, Request, Ticket};
pub use stats::{Histogram, Stats};
pub use trace::dma_digest;
pub use verifier::{BugCheck, Rule, VerifierConfig, Violation};
/// How many times this thread decoded a loaded image's register access (a miss of the decode
/// cache, `mmio.rs`).
pub use mmio::cache::decoder_runs;
