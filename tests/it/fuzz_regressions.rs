//! Replays every input the fuzzers ever broke on (tests/fuzz_regressions/<target>/*)
//! through the same entry point as the fuzz target, on stable, in CI.

use std::fs;
use std::path::Path;

type Target = fn(&[u8]);

const TARGETS: [(&str, Target); 9] = [
    ("rdp_handshake", thinshadow::fuzzing::rdp_handshake),
    ("rdp_active", thinshadow::fuzzing::rdp_active),
    ("pdu_framing", thinshadow::fuzzing::pdu_framing),
    ("control", thinshadow::fuzzing::control),
    ("state_blob", thinshadow::fuzzing::state_blob),
    ("config", thinshadow::fuzzing::config),
    ("input", thinshadow::fuzzing::input),
    ("bulk", thinshadow::fuzzing::bulk),
    ("credssp", |data| {
        thinshadow::fuzzing::credssp(data);
    }),
];

#[test]
fn every_saved_crash_input_now_passes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions");
    let mut replayed = 0;
    for dir in fs::read_dir(&root).expect("regression directory") {
        let dir = dir.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let target = TARGETS
            .iter()
            .find(|(t, _)| *t == name)
            .unwrap_or_else(|| panic!("{name}: no fuzz target of that name"))
            .1;
        for file in fs::read_dir(&dir).unwrap() {
            let path = file.unwrap().path();
            let bytes = fs::read(&path).unwrap();
            eprintln!("replaying {}", path.display());
            target(&bytes);
            replayed += 1;
        }
    }
    eprintln!("{replayed} inputs replayed");
    assert!(
        replayed > 0,
        "no regression input was replayed: the folder lost its files"
    );
}

/// Issue #13 finding 1: an AUTHENTICATE without a MIC and a pubKeyAuth (or authInfo) under
/// 16 bytes panicked inside sspi and took the agent down. Each kept input is now a failed
/// login (so it is audited, delayed and counted for the lockout), never a panic.
#[test]
fn finding_1_inputs_are_failed_logins() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions/credssp");
    let mut seen = 0;
    for file in fs::read_dir(&dir).expect("credssp regression inputs") {
        let path = file.unwrap().path();
        let outcome = thinshadow::fuzzing::credssp(&fs::read(&path).unwrap());
        assert_eq!(
            outcome,
            thinshadow::fuzzing::CredsspRun::LoginFailed,
            "{}",
            path.display()
        );
        seen += 1;
    }
    assert!(seen >= 4, "only {seen} finding-1 inputs kept");
    // The same exchange untouched logs in, so the inputs fail for what they break.
    assert_eq!(
        thinshadow::fuzzing::credssp(&[0, 4, 0, 0, 0]),
        thinshadow::fuzzing::CredsspRun::LoggedIn
    );
}

/// The entry points themselves hold on simple inputs (so a replay that passes means something).
#[test]
fn entry_points_accept_empty_and_small_inputs() {
    for (_, target) in TARGETS {
        target(&[]);
        target(&[0]);
        target(&[1, 3, 0, 0, 7, 0, 0, 0]);
    }
}

/// Bulk compression on both levels the agent uses, far past the 64 KB history (it flushes and
/// starts over many times), with updates of every size class: all must round-trip.
#[test]
fn bulk_round_trips_past_history_wraps() {
    let mut seed = 7u32;
    let body: Vec<u8> = (0..4000u32)
        .map(|i| {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            // Runs and gradients like planar rows, with noise every fifth row.
            if (i / 90) % 5 == 0 {
                (seed >> 16) as u8
            } else {
                (i % 90 / 7 * 13 + i / 90) as u8
            }
        })
        .collect();
    let lengths: Vec<u8> = [49_186u16, 16_373, 99, 2_999, 40, 16_374]
        .iter()
        .flat_map(|l| l.to_le_bytes())
        .collect();
    for pick in [0, 1, 2] {
        let mut input = vec![pick, 63, 6];
        input.extend_from_slice(&lengths);
        input.extend_from_slice(&body);
        thinshadow::fuzzing::bulk(&input);
    }
}
