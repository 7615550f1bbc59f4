//! The state files across interrupted writes: at every step of a save (both copies), and
//! with a real writer process killed (SIGKILL) at random moments, the next load sees the
//! old state or the new one, never defaults and never garbage, even with `state.bin`
//! damaged as well. A mode change that could not be saved is refused. Damaged files are
//! set aside.

use crate::common;
use crate::common::faults::Rng;

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use thinshadow::policy::{Mode, Modes};
use thinshadow::state::{self, LoadOutcome, State, Step, stress_state};

fn temp_dir(name: &str) -> PathBuf {
    common::temp_dir(module_path!(), name)
}

fn loaded(dir: &Path) -> State {
    match state::load(dir) {
        LoadOutcome::Loaded(s) => s,
        other => panic!("expected a whole state, got {other:?}"),
    }
}

/// Stops the write at its `at`th step (0-based) over both copies, as a power cut would.
fn cut_at(at: usize) -> impl FnMut(Step) -> io::Result<()> {
    let mut seen = 0;
    move |_| {
        seen += 1;
        if seen > at {
            Err(io::Error::other("power cut"))
        } else {
            Ok(())
        }
    }
}

/// The steps of one save: four for `state.bin`, four for its second copy.
const SAVE_STEPS: usize = 2 * Step::ALL.len();

fn with_modes(n: u64, management: Mode, remote_screen: Mode) -> State {
    State {
        modes: Modes {
            management,
            remote_screen,
        },
        ..stress_state(n)
    }
}

/// Neither the old modes nor the new: what a fall back to defaults would show.
const DEFAULTS: Modes = Modes {
    management: Mode::AllowAuto,
    remote_screen: Mode::AllowAuto,
};

#[test]
fn a_power_cut_at_every_step_of_a_mode_change_leaves_the_old_or_the_new_mode() {
    let old = with_modes(1, Mode::AllowByRequest, Mode::AllowByRequest);
    let new = with_modes(2, Mode::Deny, Mode::Deny);
    let mut counted = 0;
    for at in 0..SAVE_STEPS {
        let dir = temp_dir(&format!("step-{at}"));
        state::save(&dir, &old).unwrap();
        assert!(state::save_steps(&dir, &new, &mut cut_at(at)).is_err());
        // Until state.bin is renamed into place the old state is the one on disk.
        let expected = if at < 2 { &old } else { &new };
        let (got, note) = state::load(&dir).resolve(DEFAULTS);
        assert_eq!(&got, expected, "cut after step {at}");
        assert_eq!(note, None, "cut after step {at}: nothing to recover");
        // And if state.bin is damaged too, the second copy still holds old or new.
        let bytes = std::fs::read(state::state_path(&dir)).unwrap();
        std::fs::write(state::state_path(&dir), &bytes[..bytes.len() / 2]).unwrap();
        let (got, note) = state::load(&dir).resolve(DEFAULTS);
        assert!(
            got == old || got == new,
            "cut after step {at}: {:?}",
            got.modes
        );
        assert_ne!(got.modes, DEFAULTS);
        assert!(
            matches!(note, Some(state::Recovery::Previous { .. })),
            "{note:?}"
        );
        // The next write goes through over whatever the cut left.
        state::save(&dir, &stress_state(3)).unwrap();
        assert_eq!(loaded(&dir), stress_state(3));
        std::fs::remove_dir_all(&dir).unwrap();
        counted += 1;
    }
    assert_eq!(counted, 8);
    // A save that is not cut calls each step of both copies once.
    let dir = temp_dir("steps");
    let mut calls = 0;
    state::save_steps(&dir, &new, &mut |_| {
        calls += 1;
        Ok(())
    })
    .unwrap();
    assert_eq!(calls, SAVE_STEPS);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The keeper's mode change at every cut: an error each time, the modes in force
/// unchanged, and on disk the old or the new modes.
#[test]
fn a_mode_change_the_keeper_could_not_save_is_refused_and_undone() {
    use std::sync::{Arc, Mutex};
    use std::time::Instant;
    for at in 0..SAVE_STEPS {
        let dir = temp_dir(&format!("keeper-{at}"));
        let config = state::KeeperConfig {
            state_dir: dir.clone(),
            user: "admin".into(),
            port: 3389,
            cert_sha256: "ab:cd".into(),
            rotation: Default::default(),
            hook: None,
            lockout: Default::default(),
            allow: thinshadow::policy::Allowlist::all(),
        };
        let (now, unix) = (Instant::now(), 1_795_737_600);
        let start = with_modes(0, Mode::AllowByRequest, Mode::AllowByRequest);
        let mut keeper = state::Keeper::start(config, &start, now, unix).unwrap();
        keeper.commit(now, unix).unwrap();
        let cut = Arc::new(Mutex::new(Some(cut_at(at))));
        let faults = cut.clone();
        let mut keeper = keeper.with_save_faults(Box::new(move |step| {
            match faults.lock().unwrap().as_mut() {
                Some(cut) => cut(step),
                None => Ok(()),
            }
        }));
        let deny = Modes {
            management: Mode::Deny,
            remote_screen: Mode::AllowByRequest,
        };
        assert!(
            keeper.save_modes(deny, now, unix).is_err(),
            "cut after step {at}"
        );
        assert_eq!(
            keeper.modes(),
            start.modes,
            "cut after step {at}: the modes in force"
        );
        let on_disk = state::read(&dir).unwrap().modes;
        assert!(on_disk == start.modes || on_disk == deny, "{on_disk:?}");
        // The disk heals: the queued save brings it back to the modes in force.
        *cut.lock().unwrap() = None;
        keeper.poll(now + std::time::Duration::from_secs(11), unix + 11);
        assert_eq!(state::read(&dir).unwrap().modes, start.modes);
        assert!(keeper.save_modes(deny, now, unix).is_ok());
        assert_eq!(keeper.modes(), deny);
        assert_eq!(loaded(&dir).modes, deny);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn a_torn_temp_file_is_never_read() {
    let dir = temp_dir("torn");
    let old = stress_state(1);
    state::save(&dir, &old).unwrap();
    let path = state::state_path(&dir);
    // The page cache lost part of the unsynced temp file, then the power went.
    let result = state::save_steps(&dir, &stress_state(2), &mut |step| {
        if step == Step::TempWritten {
            let tmp = std::fs::read_dir(&dir)?
                .flatten()
                .find(|e| state::is_temp_of(&path, &e.file_name().to_string_lossy()))
                .expect("the temp file")
                .path();
            let len = std::fs::metadata(&tmp)?.len();
            std::fs::OpenOptions::new()
                .write(true)
                .open(&tmp)?
                .set_len(len / 2)?;
            return Err(io::Error::other("power cut"));
        }
        Ok(())
    });
    assert!(result.is_err());
    assert_eq!(loaded(&dir), old);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_first_write_cut_short_is_missing_not_corrupt() {
    for at in 0..2 {
        let dir = temp_dir(&format!("first-{at}"));
        assert!(state::save_steps(&dir, &stress_state(1), &mut cut_at(at)).is_err());
        assert!(matches!(state::load(&dir), LoadOutcome::Missing));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// A real writer process, killed with SIGKILL at random moments, many times.
#[test]
fn a_writer_killed_mid_write_leaves_old_or_new() {
    let dir = temp_dir("sigkill");
    state::save(&dir, &stress_state(0)).unwrap();
    let mut rng = Rng::new(0x5EED_CAFE_F00D_0001);
    let mut last = 0u64;
    let mut advanced = 0;
    let mut rounds = 0;
    let until = Instant::now() + Duration::from_secs(4);
    while rounds < 150 && Instant::now() < until {
        rounds += 1;
        let mut child = Command::new(env!("CARGO_BIN_EXE_thinshadow"))
            .arg("__state-writer")
            .arg(&dir)
            .arg((last + 1).to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("writer starts");
        std::thread::sleep(Duration::from_micros(rng.below(20_000)));
        child.kill().expect("SIGKILL");
        child.wait().unwrap();
        let state = loaded(&dir);
        let n = state.password_issued_at;
        assert_eq!(
            state,
            stress_state(n),
            "round {rounds}: a mix of two states"
        );
        assert!(n >= last, "round {rounds}: went back from {last} to {n}");
        if n > last {
            advanced += 1;
        }
        last = n;
        assert!(!dir.join("state.bin.bad").exists(), "round {rounds}");
    }
    eprintln!("{rounds} rounds, {advanced} with progress, last state {last}");
    assert!(rounds >= 20, "only {rounds} rounds in time");
    assert!(
        advanced >= 5,
        "the writer got to write in only {advanced} of {rounds} rounds"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn every_truncation_is_set_aside_and_defaults_are_used() {
    let blob = state::encode(&stress_state(7));
    let dir = temp_dir("truncate");
    let path = state::state_path(&dir);
    for cut in 0..blob.len() {
        std::fs::write(&path, &blob[..cut]).unwrap();
        match state::load(&dir) {
            LoadOutcome::Corrupt { kept_as, .. } => {
                assert_eq!(std::fs::read(&kept_as).unwrap(), &blob[..cut], "cut {cut}");
            }
            other => panic!("cut at {cut}: {other:?}"),
        }
        assert!(!path.exists());
    }
    std::fs::write(&path, &blob[..10]).unwrap();
    assert_eq!(state::load(&dir).into_state(), State::default());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn random_bytes_and_flips_never_panic_nor_pass() {
    let mut rng = Rng::new(0xD1CE_0000_0000_0042);
    let blob = state::encode(&stress_state(9));
    for _ in 0..2_000 {
        let mut bad = blob.clone();
        let at = rng.below(bad.len() as u64) as usize;
        bad[at] ^= 1 << rng.below(8);
        assert!(state::decode(&bad).is_err(), "flip at {at} accepted");
    }
    for round in 0..5_000 {
        let len = rng.below(300) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let _ = state::decode(&bytes);
        // A valid frame around random bytes reaches postcard and the checks after it.
        let framed = frame(if round % 2 == 0 { 1 } else { 2 }, &bytes);
        let _ = state::decode(&framed);
    }
    let dir = temp_dir("random");
    std::fs::write(state::state_path(&dir), frame(2, &[0xff; 40])).unwrap();
    assert!(matches!(state::load(&dir), LoadOutcome::Corrupt { .. }));
    assert!(dir.join("state.bin.bad").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The blob frame (see `state::blob`) around any payload.
fn frame(version: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = b"TSHD".to_vec();
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&state::crc32(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// A power cut right after `at`: that step happened, nothing after it.
fn cut_before(at: Step) -> impl FnMut(Step) -> io::Result<()> {
    move |step| {
        if step == at {
            Err(io::Error::other("power cut"))
        } else {
            Ok(())
        }
    }
}

/// The page cache lost half of the unsynced temp file in `dir`, then the power went.
fn tear_temp_in(dir: &Path) -> impl FnMut(Step) -> io::Result<()> + '_ {
    move |step| {
        if step == Step::TempWritten {
            for entry in std::fs::read_dir(dir)? {
                let path = entry?.path();
                if path.extension().is_some_and(|e| e == "tmp") {
                    let len = std::fs::metadata(&path)?.len();
                    std::fs::OpenOptions::new()
                        .write(true)
                        .open(&path)?
                        .set_len(len / 2)?;
                }
            }
            return Err(io::Error::other("power cut"));
        }
        Ok(())
    }
}

/// The TLS identity: a cut at every step of its one-file write, on a first start and while
/// taking over a two-file pair of older versions, leaves an identity that loads, matches its
/// key and is the one published; the taken-over pair keeps its fingerprint.
#[test]
fn a_tls_identity_write_cut_at_any_step_leaves_a_whole_pair() {
    use rustls::pki_types::pem::PemObject;
    use thinshadow::net::tls_store::{self, CERT_FILE, IDENTITY_FILE, Source};
    use thinshadow::net::{Identity, KeyType};
    let source = Source::Made(KeyType::Ecdsa);
    for step in Step::ALL {
        // First start: the new identity is there whole, or not at all and made again.
        let dir = temp_dir(&format!("tls-first-{step:?}"));
        assert!(tls_store::load_or_create_steps(&dir, &source, &mut cut_before(step)).is_err());
        let written = dir.join(IDENTITY_FILE).exists();
        assert_eq!(
            written,
            matches!(step, Step::Renamed | Step::DirSynced),
            "{step:?}"
        );
        let next = tls_store::load_or_create(&dir, &source).unwrap();
        next.server_config().unwrap();
        assert_eq!(std::fs::read(dir.join(CERT_FILE)).unwrap(), next.cert_der());
        std::fs::remove_dir_all(&dir).unwrap();

        // A two-file pair being taken over: whatever the cut, the old fingerprint stays.
        let dir = temp_dir(&format!("tls-old-{step:?}"));
        let old = Identity::generate(KeyType::Ecdsa).unwrap();
        let pem = old.to_pem();
        let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(pem.as_bytes()).unwrap();
        std::fs::write(dir.join("tls-key.der"), key.secret_der()).unwrap();
        std::fs::write(dir.join(CERT_FILE), old.cert_der()).unwrap();
        let _ = tls_store::load_or_create_steps(&dir, &source, &mut cut_before(step));
        let next = tls_store::load_or_create(&dir, &source).unwrap();
        assert_eq!(next.fingerprint(), old.fingerprint(), "cut after {step:?}");
        next.server_config().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// A torn identity temp file (the page cache lost half of it) is never read.
#[test]
fn a_torn_tls_identity_temp_file_is_never_read() {
    use thinshadow::net::KeyType;
    use thinshadow::net::tls_store::{self, IDENTITY_FILE, Source};
    let dir = temp_dir("tls-torn");
    let source = Source::Made(KeyType::Ecdsa);
    let result = tls_store::load_or_create_steps(&dir, &source, &mut tear_temp_in(&dir));
    assert!(!dir.join(IDENTITY_FILE).exists());
    assert!(result.is_err());
    let next = tls_store::load_or_create(&dir, &source).unwrap();
    next.server_config().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
