//! `interrupt_path.rs`, run on the Storport flavour of the driver linked in, on the emulator's Storport
//! (`tests/common`).
#[path = "interrupt_path.rs"]
mod suite;
