//! `req_call_threshold.rs`, run on the Storport flavour of the driver linked in, on the emulator's
//! Storport (`tests/common`).
#[path = "req_call_threshold.rs"]
mod suite;
