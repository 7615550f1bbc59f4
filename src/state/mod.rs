//! Persistent state: one small postcard blob in the state directory, kept in two copies
//! written atomically one after the other (`store.rs`), so a bad file falls back to the
//! last good state. A missing state means the configured default modes; so does one
//! that no copy can give, with a log line and an audit event. A format-1 file (before
//! access modes and login counters) is migrated: its fields are kept, the new ones take
//! their defaults.
//! The password never reaches a log.

pub(crate) mod blob;
pub(crate) mod fsio;
pub mod keeper;
pub mod lock;
pub mod password;
pub mod publish;
pub mod published;
pub mod rotation;
mod store;
mod throttle;

use std::fmt;
#[cfg(feature = "test-hooks")]
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::policy::lockout::MAX_RECORDS;
use crate::policy::{LockoutRecord, Modes};

pub use blob::{BlobError, crc32};
pub use fsio::{
    Step, create_temp, ensure_dir, is_temp_of, remove_stale_temps, sync_dir, write_atomic,
    write_atomic_steps,
};
pub use keeper::{Admission, Keeper, KeeperConfig, Refusal};
pub use store::{
    LoadOutcome, PREVIOUS_FILE, Recovery, STATE_FILE, edit_modes, load, previous_path, read, save,
    save_steps, state_path,
};
pub use throttle::SaveThrottle;

pub const FORMAT_VERSION: u16 = 2;
/// Versions `decode` reads: the current one and the one it migrates from.
pub(crate) const READABLE: [u16; 2] = [1, FORMAT_VERSION];
/// Generous bounds: a state the agent wrote must never fail them.
const MAX_PASSWORD_LEN: usize = 1024;
const MAX_USER_LEN: usize = 1024;

/// What survives a restart. `Debug` hides the password.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// The remote connection password, and when it was issued (Unix seconds).
    pub password: String,
    pub password_issued_at: u64,
    /// What `thinshadow creds` publishes besides the password: the serving user and port.
    pub user: String,
    pub port: u16,
    /// Access modes, as last set by the local user or the integrator.
    pub modes: Modes,
    /// Failed-login counts per source address, so a restart does not reset them.
    pub failed_logins: Vec<LockoutRecord>,
    /// When the periodic rotation will replace the password (Unix seconds), for `creds`.
    pub password_rotates_at: u64,
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("State")
            .field("password", &"<hidden>")
            .field("password_issued_at", &self.password_issued_at)
            .field("user", &self.user)
            .field("port", &self.port)
            .field("modes", &self.modes)
            .field("failed_logins", &self.failed_logins.len())
            .field("password_rotates_at", &self.password_rotates_at)
            .finish()
    }
}

/// Format 1, read only to migrate.
#[derive(Deserialize)]
struct StateV1 {
    password: String,
    password_issued_at: u64,
    user: String,
    port: u16,
}

impl From<StateV1> for State {
    fn from(old: StateV1) -> State {
        State {
            password: old.password,
            password_issued_at: old.password_issued_at,
            user: old.user,
            port: old.port,
            ..State::default()
        }
    }
}

#[derive(Debug)]
pub enum DecodeError {
    Frame(BlobError),
    Payload(postcard::Error),
    /// Decoded, but outside what the agent ever writes.
    Invalid(&'static str),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Frame(e) => e.fmt(f),
            DecodeError::Payload(e) => write!(f, "payload: {e}"),
            DecodeError::Invalid(what) => write!(f, "payload: {what}"),
        }
    }
}

impl std::error::Error for DecodeError {}

pub fn encode(state: &State) -> Vec<u8> {
    // postcard into a Vec cannot fail for these plain fields.
    let payload = postcard::to_allocvec(state).unwrap_or_default();
    blob::wrap(FORMAT_VERSION, &payload)
}

/// Decodes a blob of any readable version; returns the state and the version it had.
pub fn decode_versioned(bytes: &[u8]) -> Result<(State, u16), DecodeError> {
    let (version, payload) = blob::unwrap(&READABLE, bytes).map_err(DecodeError::Frame)?;
    let state = if version == 1 {
        postcard::from_bytes::<StateV1>(payload).map(State::from)
    } else {
        postcard::from_bytes::<State>(payload)
    }
    .map_err(DecodeError::Payload)?;
    validate(&state)?;
    Ok((state, version))
}

pub fn decode(bytes: &[u8]) -> Result<State, DecodeError> {
    decode_versioned(bytes).map(|(state, _)| state)
}

fn validate(state: &State) -> Result<(), DecodeError> {
    if state.password.len() > MAX_PASSWORD_LEN {
        return Err(DecodeError::Invalid("password too long"));
    }
    if state.user.len() > MAX_USER_LEN {
        return Err(DecodeError::Invalid("user name too long"));
    }
    if state.failed_logins.len() > MAX_RECORDS {
        return Err(DecodeError::Invalid("too many failed-login records"));
    }
    Ok(())
}

/// The state `stress_writer` writes as its `n`th: every field derived from `n`, so a
/// reader can tell a whole state from a mix of two.
#[doc(hidden)]
pub fn stress_state(n: u64) -> State {
    let records = (0..200u32)
        .map(|i| LockoutRecord {
            ip: std::net::IpAddr::V4((0x0a00_0000 + i).into()),
            failures: (n % 5) as u32 + 1,
            last_failure: n,
        })
        .collect();
    State {
        password: format!("pw-{n}"),
        password_issued_at: n,
        user: format!("user-{n}"),
        port: (n % 60_000) as u16,
        modes: Modes::default(),
        failed_logins: records,
        password_rotates_at: n + 86_400,
    }
}

/// `thinshadow __state-writer DIR START`: saves `stress_state(START)`, `START + 1`, … until
/// killed, or until `limit` passes so a lost child never runs on. For the power-cut test.
#[cfg(feature = "test-hooks")]
#[doc(hidden)]
pub fn stress_writer(dir: &Path, start: u64, limit: std::time::Duration) -> std::io::Result<()> {
    let until = std::time::Instant::now() + limit;
    let mut n = start;
    while std::time::Instant::now() < until {
        save(dir, &stress_state(n))?;
        n += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Mode;
    use std::path::PathBuf;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("thinshadow-state-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        ensure_dir(&dir).unwrap();
        dir
    }

    fn sample() -> State {
        State {
            password: "abc".into(),
            password_issued_at: 42,
            password_rotates_at: 86_442,
            user: "admin".into(),
            port: 3389,
            modes: Modes {
                management: Mode::Deny,
                remote_screen: Mode::AllowAuto,
            },
            failed_logins: vec![LockoutRecord {
                ip: "2001:db8::1".parse().unwrap(),
                failures: 3,
                last_failure: 41,
            }],
        }
    }

    #[test]
    fn save_then_load() {
        let dir = temp_dir("roundtrip");
        save(&dir, &sample()).unwrap();
        assert!(matches!(load(&dir), LoadOutcome::Loaded(s) if s == sample()));
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

    /// The bytes format 1 wrote: four fields, postcard, framed as version 1.
    fn v1_blob() -> Vec<u8> {
        #[derive(Serialize)]
        struct V1<'a>(&'a str, u64, &'a str, u16);
        let payload = postcard::to_allocvec(&V1("oldpass", 1_700_000_000, "admin", 3390)).unwrap();
        blob::wrap(1, &payload)
    }

    #[test]
    fn format_1_is_migrated_with_default_modes_and_no_counts() {
        let dir = temp_dir("migrate");
        std::fs::write(state_path(&dir), v1_blob()).unwrap();
        let LoadOutcome::Migrated { from: 1, state } = load(&dir) else {
            panic!("expected a migration");
        };
        assert_eq!(state.password, "oldpass");
        assert_eq!(state.password_issued_at, 1_700_000_000);
        assert_eq!((state.user.as_str(), state.port), ("admin", 3390));
        assert_eq!(state.modes, Modes::default());
        assert!(state.failed_logins.is_empty());
        // Saved again, it is the current format.
        save(&dir, &state).unwrap();
        assert!(matches!(load(&dir), LoadOutcome::Loaded(s) if s == state));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_future_format_is_set_aside() {
        let payload = postcard::to_allocvec(&sample()).unwrap();
        let err = decode(&blob::wrap(FORMAT_VERSION + 1, &payload)).unwrap_err();
        assert_eq!(err.to_string(), "unknown format version 3");
    }

    #[test]
    fn out_of_bounds_values_are_not_state() {
        let mut state = sample();
        state.failed_logins = vec![state.failed_logins[0].clone(); MAX_RECORDS + 1];
        let payload = postcard::to_allocvec(&state).unwrap();
        let err = decode(&blob::wrap(FORMAT_VERSION, &payload)).unwrap_err();
        assert!(err.to_string().contains("too many"), "{err}");
    }

    #[test]
    fn modes_are_edited_in_place_and_nothing_else_changes() {
        let dir = temp_dir("edit");
        save(&dir, &sample()).unwrap();
        let modes = edit_modes(&dir, |m| m.management = Mode::AllowByRequest).unwrap();
        let want = Modes {
            management: Mode::AllowByRequest,
            remote_screen: Mode::AllowAuto,
        };
        assert_eq!(modes, want);
        let mut expected = sample();
        expected.modes = want;
        assert_eq!(read(&dir).unwrap(), expected);
        // Held by an agent: refused, untouched.
        let held = lock::try_lock(&dir).unwrap().unwrap();
        let err = edit_modes(&dir, |m| m.management = Mode::Deny).unwrap_err();
        assert!(err.contains("an agent is running"), "{err}");
        drop(held);
        assert_eq!(read(&dir).unwrap(), expected);
        // A bad file is not overwritten.
        std::fs::write(state_path(&dir), b"garbage that is long enough").unwrap();
        assert!(edit_modes(&dir, |m| m.management = Mode::Deny).is_err());
        assert_eq!(
            std::fs::read(state_path(&dir)).unwrap(),
            b"garbage that is long enough"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn debug_never_shows_the_password() {
        let shown = format!("{:?}", sample());
        assert!(!shown.contains("abc"), "{shown}");
        assert!(shown.contains("<hidden>"));
    }

    #[test]
    fn a_full_table_fits_the_frame() {
        let mut state = sample();
        state.failed_logins = (0..MAX_RECORDS)
            .map(|i| LockoutRecord {
                ip: std::net::IpAddr::V6((u128::MAX - i as u128).into()),
                failures: u32::MAX,
                last_failure: u64::MAX,
            })
            .collect();
        state.password = "x".repeat(MAX_PASSWORD_LEN);
        state.user = "u".repeat(MAX_USER_LEN);
        assert_eq!(decode(&encode(&state)).unwrap(), state);
    }
}
