//! `interrupt_path.rs`, run on `rspvscsi.sys` loaded by the emulator's PE loader (`tests/common`).
#[path = "interrupt_path.rs"]
mod suite;
