//! `errors.rs`, run on `rspvscsi_storport.sys` loaded by the emulator's PE loader on its Storport
//! (`tests/common`).
#[path = "errors.rs"]
mod suite;
