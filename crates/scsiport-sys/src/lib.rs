//! Raw bindings to the Windows SCSI Port miniport interface.
//!
//! The ScsiPort side (`srb.h`, `miniport.h`, `scsi.h`) lives at the crate root under the
//! headers' own names and with their x64 layouts; the Storport side (`storport.h`) lives in
//! [`storport`], because the two headers define conflicting versions of the same types.
//!
//! Conventions, as bindgen would emit them:
//! - exact-width integers: `ULONG` is `u32` (never `c_ulong`, which is 64-bit on Linux),
//!   `BOOLEAN` is `u8`;
//! - C enums are `i32` type aliases with one plain constant per enumerator
//!   (`CallEnableInterrupts`, `ScsiStopAdapter`);
//! - callback pointer types are `Option<unsafe extern "win64" fn(..)>`, so a NULL entry point is
//!   `None`;
//! - every routine, imported or called by the port, uses the Windows x64 calling convention,
//!   spelled `extern "win64"`: on Windows x64 it is the same as `"system"` and `"C"`, and on
//!   Linux `x86_64` it makes the emulator call a miniport (and a miniport call the emulator) the way
//!   Windows does. PVSCSI exists only as x86-64 virtual hardware, so the crate is `x86_64` only.
//!
//! On Windows the functions are `raw-dylib` imports of `scsiport.sys`. Elsewhere the same
//! symbols are expected from the SCSI Port emulator (`scsiport-sim`). On x64 the `ScsiPortRead/Write{Port,Register}*`
//! routines are macros in the WDK's `srb.h` (volatile accesses and `in`/`out` instructions, not
//! imports); see [`ScsiPortReadRegisterUlong`] and its siblings.
#![no_std]
#![allow(non_camel_case_types, non_snake_case, non_upper_case_globals)]
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

mod bitfield;

mod types;
pub use types::*;

mod srb;
pub use srb::*;

mod functions;
pub use functions::*;

mod registers;
pub use registers::*;

mod pci;
pub use pci::*;

mod scsi;
pub use scsi::*;

pub mod storport;

#[cfg(not(target_arch = "x86_64"))]
compile_error!("scsiport-sys binds the x64 SCSI Port and Storport interfaces (extern \"win64\"); build for x86_64");
