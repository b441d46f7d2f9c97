//! `req_call_threshold.rs`, run on `rspvscsi.sys` loaded by the emulator's PE loader (`tests/common`).
#[path = "req_call_threshold.rs"]
mod suite;
