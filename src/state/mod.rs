//! Persistent state: one small postcard blob in the state directory, written atomically.
//!
//! A missing file means defaults; a corrupt one is kept aside as `state.bin.bad` and
//! defaults are used, with a log line. The password never reaches a log.

mod blob;
mod fsio;
pub mod password;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use blob::{BlobError, crc32};
pub use fsio::{ensure_dir, write_atomic};

pub const STATE_FILE: &str = "state.bin";
const FORMAT_VERSION: u16 = 1;

/// What survives a restart.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// The remote connection password, and when it was issued (Unix seconds).
    pub password: String,
    pub password_issued_at: u64,
    /// What `thinshadow creds` publishes besides the password: the serving user and port.
    pub user: String,
    pub port: u16,
}

#[derive(Debug)]
pub enum LoadOutcome {
    Loaded(State),
    Missing,
    /// The file was unreadable as state; it was moved to this path.
    Corrupt {
        reason: String,
        kept_as: PathBuf,
    },
}

pub fn state_path(dir: &Path) -> PathBuf {
    dir.join(STATE_FILE)
}

pub fn encode(state: &State) -> Vec<u8> {
    // postcard into a Vec cannot fail for these plain fields.
    let payload = postcard::to_allocvec(state).unwrap_or_default();
    blob::wrap(FORMAT_VERSION, &payload)
}

pub fn decode(bytes: &[u8]) -> Result<State, String> {
    let payload = blob::unwrap(FORMAT_VERSION, bytes).map_err(|e| e.to_string())?;
    postcard::from_bytes(payload).map_err(|e| format!("payload: {e}"))
}

/// Reads the state; never fails: a bad file is set aside and reported in the outcome.
pub fn load(dir: &Path) -> LoadOutcome {
    let path = state_path(dir);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return LoadOutcome::Missing,
        Err(e) => return set_aside(&path, format!("unreadable: {e}")),
    };
    match decode(&bytes) {
        Ok(state) => LoadOutcome::Loaded(state),
        Err(reason) => set_aside(&path, reason),
    }
}

/// Reads the state without touching the file (for `creds`, which may run as another user).
pub fn read(dir: &Path) -> Result<State, String> {
    let path = state_path(dir);
    let bytes = std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    decode(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

fn set_aside(path: &Path, reason: String) -> LoadOutcome {
    let kept_as = path.with_extension("bin.bad");
    if let Err(e) = std::fs::rename(path, &kept_as) {
        crate::warn!(
            "could not keep the bad state file as {}: {e}",
            kept_as.display()
        );
    }
    LoadOutcome::Corrupt { reason, kept_as }
}

pub fn save(dir: &Path, state: &State) -> std::io::Result<()> {
    write_atomic(&state_path(dir), &encode(state), 0o600)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("thinshadow-state-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        ensure_dir(&dir).unwrap();
        dir
    }

    #[test]
    fn save_then_load() {
        let dir = temp_dir("roundtrip");
        let state = State {
            password: "abc".into(),
            password_issued_at: 42,
            user: "admin".into(),
            port: 3389,
        };
        save(&dir, &state).unwrap();
        assert!(matches!(load(&dir), LoadOutcome::Loaded(s) if s == state));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn corrupt_file_is_set_aside() {
        let dir = temp_dir("corrupt");
        std::fs::write(state_path(&dir), b"garbage that is long enough").unwrap();
        match load(&dir) {
            LoadOutcome::Corrupt { kept_as, .. } => assert!(kept_as.exists()),
            other => panic!("expected corrupt, got {other:?}"),
        }
        assert!(matches!(load(&dir), LoadOutcome::Missing));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
