//! `recovery.rs`, run on the Storport flavour of the driver linked in, on the emulator's Storport
//! (`tests/common`).
#[path = "recovery.rs"]
mod suite;
