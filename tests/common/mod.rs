//! Shared helpers for the integration tests; each test crate uses part of them.
#![allow(dead_code)]

pub mod agent;
