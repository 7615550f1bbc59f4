//! Shared helpers for the integration tests.
//!
//! Every test crate under `tests/` that says `mod common;` compiles this module on its own and uses
//! only part of it, hence the `dead_code` allowance.
#![allow(dead_code)]

pub mod agent;
pub mod client;
pub mod faults;
pub mod scripts;
