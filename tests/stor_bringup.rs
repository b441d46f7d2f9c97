//! `bringup.rs`, run on the Storport flavour of the driver linked in, on the emulator's Storport
//! (`tests/common`).
#[path = "bringup.rs"]
mod suite;
