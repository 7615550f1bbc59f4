//! The state on disk: two copies of one blob, `state.bin` and `state.bin.prev`.
//!
//! A save writes `state.bin` atomically, then the same bytes to `state.bin.prev`; only
//! when both are on disk is it done. At every moment one of the two holds a whole
//! generation, the newest or the one before, so a power cut, a torn write or a file
//! damaged at rest falls back to the last good state, never to weaker defaults. Only
//! when neither reads do the configured default modes apply, with a log line and an
//! audit event (`Recovery`). A bad file is kept aside as `NAME.bad` for a look.

use std::io;
use std::path::{Path, PathBuf};

use super::fsio::{Step, ensure_dir, remove_stale_temps, write_atomic_steps};
use super::{FORMAT_VERSION, State, decode_versioned, encode, lock};
use crate::policy::Modes;

pub const STATE_FILE: &str = "state.bin";
/// The second copy: the previous generation while a save runs, the same one after it.
pub const PREVIOUS_FILE: &str = "state.bin.prev";

pub fn state_path(dir: &Path) -> PathBuf {
    dir.join(STATE_FILE)
}

pub fn previous_path(dir: &Path) -> PathBuf {
    dir.join(PREVIOUS_FILE)
}

#[derive(Debug)]
pub enum LoadOutcome {
    Loaded(State),
    /// An older format, converted; the next save writes the current one.
    Migrated {
        from: u16,
        state: State,
    },
    /// `state.bin` was missing or bad (`reason`; a bad one is kept as `state.bin.bad`):
    /// the second copy was read.
    Previous {
        reason: String,
        state: State,
    },
    Missing,
    /// Neither copy was readable as state; the bad ones were moved aside (`kept_as`).
    Corrupt {
        reason: String,
        kept_as: PathBuf,
    },
}

/// What the agent must tell the audit log about where its state came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recovery {
    /// `state.bin` was unusable; the second copy (the last good state) was used.
    Previous { reason: String },
    /// Nothing readable: the configured default modes apply.
    Defaults { reason: String, modes: Modes },
}

impl LoadOutcome {
    /// The state to run with; the built-in default modes if nothing was readable.
    pub fn into_state(self) -> State {
        self.resolve(Modes::default()).0
    }

    /// The state to run with, `defaults` for the modes when there is none (first start, or
    /// nothing readable). Logs what happened; says what the audit log must hear.
    pub fn resolve(self, defaults: Modes) -> (State, Option<Recovery>) {
        let fresh = State {
            modes: defaults,
            ..State::default()
        };
        match self {
            LoadOutcome::Loaded(state) => (state, None),
            LoadOutcome::Migrated { from, state } => {
                crate::info!("state file was format {from}; migrated to {FORMAT_VERSION}");
                (state, None)
            }
            LoadOutcome::Previous { reason, state } => {
                crate::warn!(
                    "{STATE_FILE} {reason}; using the last good state from {PREVIOUS_FILE}"
                );
                (state, Some(Recovery::Previous { reason }))
            }
            LoadOutcome::Missing => (fresh, None),
            LoadOutcome::Corrupt { reason, kept_as } => {
                crate::warn!(
                    "state unreadable ({reason}); kept as {}; default modes apply: \
                     management {}, remote-screen {}",
                    kept_as.display(),
                    defaults.management,
                    defaults.remote_screen
                );
                (
                    fresh,
                    Some(Recovery::Defaults {
                        reason,
                        modes: defaults,
                    }),
                )
            }
        }
    }
}

/// One copy: Ok(None) when it does not exist, Err(why) when it is not state.
fn read_one(path: &Path) -> Result<Option<(State, u16)>, String> {
    match std::fs::read(path) {
        Ok(bytes) => decode_versioned(&bytes)
            .map(Some)
            .map_err(|e| format!("is bad ({e})")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("is unreadable ({e})")),
    }
}

/// Reads the state (at the agent's start, under the directory's lock); never fails: bad
/// copies are set aside and the outcome says what was used. Removes temp files a crash
/// left.
pub fn load(dir: &Path) -> LoadOutcome {
    let (path, previous) = (state_path(dir), previous_path(dir));
    for file in [&path, &previous] {
        let stale = remove_stale_temps(file);
        if stale > 0 {
            crate::info!(
                "removed {stale} unfinished temp file(s) of {}",
                file.display()
            );
        }
    }
    let reason = match read_one(&path) {
        Ok(Some((state, FORMAT_VERSION))) => return LoadOutcome::Loaded(state),
        Ok(Some((state, from))) => return LoadOutcome::Migrated { from, state },
        Ok(None) => None,
        Err(reason) => Some(reason),
    };
    let kept = reason.as_ref().map(|_| set_aside(&path));
    match (read_one(&previous), reason) {
        (Ok(Some((state, _))), reason) => LoadOutcome::Previous {
            reason: reason.unwrap_or_else(|| "is missing".into()),
            state,
        },
        (Ok(None), None) => LoadOutcome::Missing,
        (Ok(None), Some(reason)) => LoadOutcome::Corrupt {
            reason: format!("{STATE_FILE} {reason}, no {PREVIOUS_FILE}"),
            kept_as: kept.unwrap_or_default(),
        },
        (Err(second), first) => {
            let kept_prev = set_aside(&previous);
            LoadOutcome::Corrupt {
                reason: format!(
                    "{STATE_FILE} {}, {PREVIOUS_FILE} {second}",
                    first.as_deref().unwrap_or("is missing")
                ),
                kept_as: kept.unwrap_or(kept_prev),
            }
        }
    }
}

/// Reads the state without touching the files (for `creds`, which may run as another
/// user): `state.bin`, else the second copy.
pub fn read(dir: &Path) -> Result<State, String> {
    let (path, previous) = (state_path(dir), previous_path(dir));
    let first = match read_one(&path) {
        Ok(Some((state, _))) => return Ok(state),
        Ok(None) => "is missing".to_owned(),
        Err(reason) => reason,
    };
    match read_one(&previous) {
        Ok(Some((state, _))) => Ok(state),
        Ok(None) => Err(format!("{} {first}", path.display())),
        Err(second) => Err(format!(
            "{} {first}; {} {second}",
            path.display(),
            previous.display()
        )),
    }
}

/// Changes the modes in the state with no agent running (`thinshadow mode` when no agent
/// answers): under the directory's lock, read, edit, save. A bad `state.bin` is left alone
/// (the agent sets it aside at its start); a missing one is read from the second copy, and
/// with neither the edit starts from defaults, which the agent's first start completes.
pub fn edit_modes(dir: &Path, edit: impl FnOnce(&mut Modes)) -> Result<Modes, String> {
    ensure_dir(dir).map_err(|e| format!("state directory {}: {e}", dir.display()))?;
    let _lock = lock::try_lock(dir)
        .map_err(|e| format!("state directory {}: {e}", dir.display()))?
        .ok_or_else(|| {
            format!(
                "an agent is running on {} but not answering at the control socket; \
                 give its --control PATH",
                dir.display()
            )
        })?;
    let leave_alone = |path: &Path, reason: String| {
        format!(
            "{} {reason}; not changing it (the agent sets a bad file aside at its start)",
            path.display()
        )
    };
    let (path, previous) = (state_path(dir), previous_path(dir));
    let mut state = match read_one(&path).map_err(|r| leave_alone(&path, r))? {
        Some((state, _)) => state,
        None => read_one(&previous)
            .map_err(|r| leave_alone(&previous, r))?
            .map(|(state, _)| state)
            .unwrap_or_default(),
    };
    edit(&mut state.modes);
    save(dir, &state).map_err(|e| format!("cannot save {}: {e}", path.display()))?;
    Ok(state.modes)
}

/// Moves a bad copy to `NAME.bad`; returns that path.
fn set_aside(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".bad");
    let kept_as = PathBuf::from(name);
    if let Err(e) = std::fs::rename(path, &kept_as) {
        crate::warn!(
            "could not keep the bad state file as {}: {e}",
            kept_as.display()
        );
    }
    kept_as
}

/// Writes both copies; Ok only once both are on disk.
pub fn save(dir: &Path, state: &State) -> io::Result<()> {
    save_steps(dir, state, &mut |_| Ok(()))
}

/// `save` with a call after each step of both atomic writes (`state.bin`'s four steps,
/// then the second copy's; see `write_atomic_steps`).
pub fn save_steps(
    dir: &Path,
    state: &State,
    after: &mut dyn FnMut(Step) -> io::Result<()>,
) -> io::Result<()> {
    let bytes = encode(state);
    write_atomic_steps(&state_path(dir), &bytes, 0o600, after)?;
    write_atomic_steps(&previous_path(dir), &bytes, 0o600, after)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Mode;

    const DENY: Modes = Modes {
        management: Mode::Deny,
        remote_screen: Mode::Deny,
    };
    const OPEN: Modes = Modes {
        management: Mode::AllowAuto,
        remote_screen: Mode::AllowAuto,
    };

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("thinshadow-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        ensure_dir(&dir).unwrap();
        dir
    }

    fn with_modes(modes: Modes) -> State {
        State {
            password: "pw".into(),
            port: 3389,
            modes,
            ..State::default()
        }
    }

    fn flip_a_byte(path: &Path) {
        let mut bytes = std::fs::read(path).unwrap();
        let at = bytes.len() / 2;
        bytes[at] ^= 0x40;
        std::fs::write(path, bytes).unwrap();
    }

    #[test]
    fn a_corrupt_state_with_deny_saved_stays_deny() {
        let dir = temp_dir("deny");
        save(&dir, &with_modes(DENY)).unwrap();
        flip_a_byte(&state_path(&dir));
        let (state, note) = load(&dir).resolve(OPEN);
        assert_eq!(state, with_modes(DENY));
        assert!(
            matches!(&note, Some(Recovery::Previous { reason }) if reason.starts_with("is bad")),
            "{note:?}"
        );
        assert!(dir.join("state.bin.bad").exists(), "kept for a look");
        // The next save makes both copies whole again.
        save(&dir, &state).unwrap();
        assert!(matches!(load(&dir), LoadOutcome::Loaded(s) if s.modes == DENY));
        // A state file that cannot even be read (here: a directory) is no missing one.
        std::fs::remove_file(state_path(&dir)).unwrap();
        std::fs::create_dir(state_path(&dir)).unwrap();
        let (state, note) = load(&dir).resolve(OPEN);
        assert_eq!(state.modes, DENY);
        assert!(matches!(note, Some(Recovery::Previous { .. })), "{note:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn with_neither_copy_readable_the_configured_defaults_apply_and_say_so() {
        let dir = temp_dir("neither");
        save(&dir, &with_modes(OPEN)).unwrap();
        flip_a_byte(&state_path(&dir));
        flip_a_byte(&previous_path(&dir));
        let (state, note) = load(&dir).resolve(DENY);
        assert_eq!(
            state.modes, DENY,
            "an image that defaults to deny stays deny"
        );
        assert_eq!(state.password, "", "nothing else survives either");
        let Some(Recovery::Defaults { reason, modes }) = note else {
            panic!("no recovery note: {note:?}");
        };
        assert_eq!(modes, DENY);
        assert!(reason.contains("state.bin is bad") && reason.contains("state.bin.prev is bad"));
        assert!(dir.join("state.bin.bad").exists() && dir.join("state.bin.prev.bad").exists());
        // state.bin gone, the second copy bad: still defaults, not "missing".
        std::fs::write(previous_path(&dir), b"garbage that is long enough").unwrap();
        let (state, note) = load(&dir).resolve(DENY);
        assert_eq!(state.modes, DENY);
        assert!(matches!(note, Some(Recovery::Defaults { .. })), "{note:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_first_start_takes_the_configured_defaults_quietly() {
        let dir = temp_dir("first");
        let (state, note) = load(&dir).resolve(DENY);
        assert_eq!((state.modes, note), (DENY, None));
        assert_eq!(load(&dir).into_state().modes, Modes::default());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_state_file_is_read_from_the_second_copy() {
        let dir = temp_dir("missing");
        save(&dir, &with_modes(DENY)).unwrap();
        std::fs::remove_file(state_path(&dir)).unwrap();
        assert_eq!(read(&dir).unwrap(), with_modes(DENY), "creds still works");
        let modes = edit_modes(&dir, |m| m.remote_screen = Mode::AllowAuto).unwrap();
        assert_eq!(modes.management, Mode::Deny, "edited from the second copy");
        assert!(matches!(load(&dir), LoadOutcome::Loaded(s) if s.modes == modes));
        std::fs::remove_file(state_path(&dir)).unwrap();
        let LoadOutcome::Previous { reason, state } = load(&dir) else {
            panic!("the second copy was not used");
        };
        assert_eq!((reason.as_str(), state.modes), ("is missing", modes));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn both_copies_are_whole_after_a_save_and_crash_leftovers_go_at_load() {
        let dir = temp_dir("copies");
        save(&dir, &with_modes(DENY)).unwrap();
        assert_eq!(
            std::fs::read(state_path(&dir)).unwrap(),
            std::fs::read(previous_path(&dir)).unwrap()
        );
        std::fs::write(dir.join(".state.bin.tmp"), b"half").unwrap();
        std::fs::write(dir.join(".state.bin.prev.7-0-0badf00d.tmp"), b"half").unwrap();
        assert!(matches!(load(&dir), LoadOutcome::Loaded(_)));
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["state.bin", "state.bin.prev"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
