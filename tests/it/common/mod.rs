//! Shared helpers for the integration tests (one set for the one test binary; the soak
//! example borrows `client` and `faults` too, hence the `dead_code` allowance).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

pub mod agent;
pub mod client;
pub mod faults;
pub mod scripts;

/// A fresh private directory for one test: `{module}-{name}-{pid}` under the build's scratch
/// space, so tests of different modules running at once in this process never share one.
pub fn temp_dir(module: &str, name: &str) -> PathBuf {
    let module = module.rsplit("::").next().unwrap_or(module);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("{module}-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    thinshadow::state::ensure_dir(&dir).unwrap();
    dir
}
