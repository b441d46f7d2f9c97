//! `req_call_threshold.rs`, run on `rspvscsi_storport.sys` loaded by the emulator's PE loader on its
//! Storport (`tests/common`).
#[path = "req_call_threshold.rs"]
mod suite;
