//! `recovery.rs`, run on `rspvscsi.sys` loaded by the emulator's PE loader (`tests/common`).
#[path = "recovery.rs"]
mod suite;
