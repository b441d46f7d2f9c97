//! `hostile.rs`, run on `rspvscsi.sys` loaded by the emulator's PE loader (`tests/common`).
#[path = "hostile.rs"]
mod suite;
