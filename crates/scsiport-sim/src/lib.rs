//! A SCSI Port emulator: runs a miniport's real code on Linux the way `scsiport.sys` would.
#![allow(clippy::missing_panics_doc, clippy::missing_errors_doc)]

pub mod disk;
pub mod hba;
pub mod mem;
