//! `bringup.rs`, run on `rspvscsi.sys` loaded by the emulator's PE loader (`tests/common`).
#[path = "bringup.rs"]
mod suite;
