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
//! - callback pointer types are `Option<unsafe extern "system" fn(..)>`, so a NULL entry point is
//!   `None`.
//!
//! On Windows the functions link against `scsiport.lib`. Elsewhere the same symbols are expected
//! from the SCSI Port emulator (`scsiport-sim`). On x64 the `ScsiPortRead/Write{Port,Register}*`
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
