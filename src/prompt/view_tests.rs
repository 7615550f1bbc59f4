use std::net::SocketAddr;

use super::*;
use crate::policy::{AccessSettings, By, Mode, Modes};

fn admin() -> SocketAddr {
    "10.0.2.2:51234".parse().unwrap()
}

fn policy(in_remote_session: bool, now: Instant) -> AccessPolicy {
    let modes = Modes {
        management: Mode::AllowByRequest,
        remote_screen: Mode::AllowByRequest,
    };
    let mut p = AccessPolicy::new(AccessSettings::default(), modes, in_remote_session, admin());
    p.authenticated(now, admin());
    p
}

#[test]
fn nothing_shows_without_a_logged_in_admin() {
    let now = Instant::now();
    assert_eq!(View::of(None, now), View::Hidden);
    let p = AccessPolicy::new(AccessSettings::default(), Modes::default(), false, admin());
    assert_eq!(View::of(Some(&p), now), View::Hidden);
    assert_eq!(View::next_change(Some(&p), now), None);
    assert!(View::Hidden.lines().is_empty());
    assert_eq!(View::Hidden.style(), None);
}

#[test]
fn a_consent_request_counts_down_by_whole_seconds() {
    let t0 = Instant::now();
    let p = policy(false, t0);
    let ip: IpAddr = "10.0.2.2".parse().unwrap();
    let at = |ms| View::of(Some(&p), t0 + Duration::from_millis(ms));
    assert_eq!(
        at(0),
        View::Ask {
            question: Question::Consent,
            admin: ip,
            left: Some(30)
        }
    );
    assert_eq!(
        at(0).lines(),
        [
            "Remote administration request from 10.0.2.2",
            "Enter: accept    Esc: reject    30 s left"
        ]
    );
    assert_eq!(at(0).style(), Some(Style::Question));
    for (ms, left) in [(999, 30), (1000, 29), (1001, 29), (28_500, 2), (29_999, 1)] {
        assert!(
            matches!(at(ms), View::Ask { left: Some(l), .. } if l == left),
            "{ms} ms: {:?}",
            at(ms)
        );
    }
    // The next redraw is exactly when the shown number changes, never in the past.
    let next = |ms| View::next_change(Some(&p), t0 + Duration::from_millis(ms));
    assert_eq!(next(0), Some(t0 + Duration::from_secs(1)));
    assert_eq!(next(1000), Some(t0 + Duration::from_secs(2)));
    assert_eq!(next(1500), Some(t0 + Duration::from_secs(2)));
    assert_eq!(next(29_500), Some(t0 + Duration::from_secs(30)));
    assert_eq!(next(30_000), None, "the policy decides at its deadline");
}

#[test]
fn answers_turn_the_question_into_the_indicator_or_nothing() {
    let t0 = Instant::now();
    let mut p = policy(false, t0);
    p.user_accepts(t0, By::LocalPrompt, None).unwrap();
    let v = View::of(Some(&p), t0);
    assert_eq!(
        v,
        View::Connected {
            admin: "10.0.2.2".parse().unwrap()
        }
    );
    assert_eq!(
        v.lines(),
        ["Remote administrator 10.0.2.2 connected - Ctrl+Alt+End ends the session"]
    );
    assert_eq!(View::next_change(Some(&p), t0), None, "no periodic redraw");
    p.user_terminates(t0, By::LocalPrompt).unwrap();
    assert_eq!(View::of(Some(&p), t0), View::Hidden);

    let mut p = policy(false, t0);
    p.user_rejects(t0, By::LocalPrompt, None).unwrap();
    assert_eq!(View::of(Some(&p), t0), View::Hidden);
}

#[test]
fn screen_access_is_asked_without_a_countdown() {
    let t0 = Instant::now();
    let mut p = policy(true, t0);
    p.user_accepts(t0, By::LocalPrompt, None).unwrap();
    let v = View::of(Some(&p), t0);
    assert!(matches!(
        v,
        View::Ask {
            question: Question::ScreenAccess,
            left: None,
            ..
        }
    ));
    assert!(v.lines()[1].contains("Ctrl+Alt+End"), "{:?}", v.lines());
    assert_eq!(View::next_change(Some(&p), t0), None);
    p.user_rejects(t0, By::LocalPrompt, None).unwrap();
    // Waiting for the remote session to end: no question, but the admin is connected.
    assert!(matches!(View::of(Some(&p), t0), View::Connected { .. }));
}

#[test]
fn mapped_ipv6_addresses_show_as_ipv4() {
    let t0 = Instant::now();
    let mapped: SocketAddr = "[::ffff:10.0.2.2]:4000".parse().unwrap();
    let mut p = AccessPolicy::new(AccessSettings::default(), Modes::default(), false, mapped);
    p.authenticated(t0, mapped);
    assert!(View::of(Some(&p), t0).lines()[0].ends_with("from 10.0.2.2"));
}

#[test]
fn a_countdown_is_the_same_box_a_new_question_or_admin_is_not() {
    let t0 = Instant::now();
    let p = policy(false, t0);
    let first = View::of(Some(&p), t0);
    let later = View::of(Some(&p), t0 + Duration::from_secs(3));
    assert_ne!(first, later, "the countdown moved");
    assert!(first.same_box(&later), "a countdown keeps the key guard");
    let other: IpAddr = "10.0.2.3".parse().unwrap();
    let screen = View::Ask {
        question: Question::ScreenAccess,
        admin: "10.0.2.2".parse().unwrap(),
        left: None,
    };
    let from_other = match &first {
        View::Ask { question, left, .. } => View::Ask {
            question: *question,
            admin: other,
            left: *left,
        },
        _ => unreachable!(),
    };
    assert!(!first.same_box(&screen), "another question");
    assert!(!first.same_box(&from_other), "another admin");
    assert!(!first.same_box(&View::Hidden));
    let connected = View::Connected { admin: other };
    assert!(connected.same_box(&connected.clone()));
    assert!(!connected.same_box(&first));
}
