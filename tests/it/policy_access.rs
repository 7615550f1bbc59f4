//! Table tests of `AccessPolicy`: every management mode x answer x remote session x
//! remote-screen mode, terminate at each stage, Deny mid-session, view-only, input gating.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use thinshadow::policy::{
    AccessPolicy, AccessSettings, AnswerError, Answerer, Ask, AuditEvent, By, EndCause, Grant,
    Mode, Modes, Outcome, Question, Screen, TimeoutAction, WaitReason,
};
use thinshadow::rdp::EndReason;

const USER: By = By::Peer { uid: 1000, pid: 42 };
const T: Duration = Duration::from_secs(30);

fn admin() -> SocketAddr {
    "192.0.2.7:50123".parse().unwrap()
}

fn policy(management: Mode, remote_screen: Mode, in_remote: bool) -> AccessPolicy {
    let modes = Modes {
        management,
        remote_screen,
    };
    AccessPolicy::new(AccessSettings::default(), modes, in_remote, admin())
}

fn events(p: &mut AccessPolicy) -> Vec<AuditEvent> {
    std::iter::from_fn(|| p.poll_event())
        .map(|a| {
            assert_eq!(a.admin, admin());
            a.event
        })
        .collect()
}

#[derive(Clone, Copy, Debug)]
enum Answer {
    Accept,
    Reject,
    None,
}

/// What the admin should see once the session runs.
fn expected_screen(in_remote: bool, remote_screen: Mode) -> Screen {
    let waiting = |reason| Screen::Waiting {
        reason,
        deadline: None,
    };
    match (in_remote, remote_screen) {
        (false, _) | (true, Mode::AllowAuto) => Screen::Real,
        (true, Mode::AllowByRequest) => waiting(WaitReason::ScreenAccess),
        (true, Mode::Deny) => waiting(WaitReason::RemoteSessionEnd),
    }
}

#[test]
fn every_mode_answer_and_remote_state() {
    let t0 = Instant::now();
    for management in Mode::ALL {
        for answer in [Answer::Accept, Answer::Reject, Answer::None] {
            for in_remote in [false, true] {
                for remote_screen in Mode::ALL {
                    let case =
                        format!("{management} {answer:?} remote={in_remote} {remote_screen}");
                    let mut p = policy(management, remote_screen, in_remote);
                    // Before the login: nothing asked, nothing flows.
                    assert_eq!(p.outcome(), Outcome::Pending, "{case}");
                    assert!(!p.input_allowed(), "{case}");
                    assert_eq!(p.pending(), None, "{case}");
                    assert!(events(&mut p).is_empty(), "{case}");

                    p.authenticated(t0, admin());
                    if management == Mode::Deny {
                        assert_eq!(p.outcome(), Outcome::Ended(EndCause::Deny), "{case}");
                        assert_eq!(p.end_reason(), Some(EndReason::Denied), "{case}");
                        assert!(!p.input_allowed(), "{case}");
                        assert_eq!(p.next_deadline(), None, "{case}");
                        let ev = events(&mut p);
                        assert!(
                            !ev.iter()
                                .any(|e| matches!(e, AuditEvent::ConsentAsked { .. })),
                            "{case}: deny never asks"
                        );
                        assert!(matches!(
                            ev.last(),
                            Some(AuditEvent::Ended {
                                cause: EndCause::Deny,
                                active: None,
                                ..
                            })
                        ));
                        assert_eq!(
                            p.user_accepts(t0, USER, None),
                            Err(AnswerError::Ended),
                            "{case}"
                        );
                        continue;
                    }
                    // Consent pending: the waiting screen with its deadline, no input.
                    let deadline = t0 + T;
                    assert_eq!(p.outcome(), Outcome::Pending, "{case}");
                    assert_eq!(
                        p.screen(),
                        Screen::Waiting {
                            reason: WaitReason::Consent,
                            deadline: Some(deadline)
                        },
                        "{case}"
                    );
                    assert_eq!(p.pending(), Some((Question::Consent, Some(deadline))));
                    assert_eq!(p.next_deadline(), Some(deadline), "{case}");
                    assert!(!p.input_allowed(), "{case}");
                    assert_eq!(
                        events(&mut p),
                        [
                            AuditEvent::Authenticated,
                            AuditEvent::ConsentAsked {
                                mode: management,
                                timeout: T
                            }
                        ],
                        "{case}"
                    );

                    let at = t0 + Duration::from_secs(5);
                    let started = match answer {
                        Answer::None => deadline,
                        _ => at,
                    };
                    let starts = match answer {
                        Answer::Accept => {
                            p.user_accepts(at, USER, Some(Question::Consent)).unwrap();
                            true
                        }
                        Answer::Reject => {
                            p.user_rejects(at, USER, None).unwrap();
                            false
                        }
                        Answer::None => {
                            p.tick(deadline - Duration::from_millis(1));
                            assert_eq!(p.outcome(), Outcome::Pending, "{case}: early tick");
                            p.tick(deadline);
                            management == Mode::AllowAuto
                        }
                    };
                    let ev = events(&mut p);
                    let answered_by = match answer {
                        Answer::None => Answerer::Timeout,
                        _ => Answerer::User(USER),
                    };
                    assert!(
                        matches!(
                            ev.first(),
                            Some(AuditEvent::ConsentAnswered { accepted, by, .. })
                                if *accepted == starts && *by == answered_by
                        ),
                        "{case}: {ev:?}"
                    );
                    assert_eq!(p.next_deadline(), None, "{case}");
                    if !starts {
                        let cause = match answer {
                            Answer::Reject => EndCause::Rejected(USER),
                            _ => EndCause::NoAnswer,
                        };
                        assert_eq!(p.outcome(), Outcome::Ended(cause), "{case}");
                        assert_eq!(p.end_reason(), Some(EndReason::Denied), "{case}");
                        assert!(!p.input_allowed(), "{case}");
                        continue;
                    }
                    assert_eq!(p.outcome(), Outcome::Started, "{case}");
                    let want = expected_screen(in_remote, remote_screen);
                    assert_eq!(p.screen(), want, "{case}");
                    assert_eq!(p.input_allowed(), want == Screen::Real, "{case}");
                    assert!(
                        matches!(ev.get(1), Some(AuditEvent::SessionStarted { .. })),
                        "{case}: {ev:?}"
                    );
                    if want == Screen::Real {
                        assert!(matches!(
                            ev.get(2),
                            Some(AuditEvent::ScreenAccessGranted {
                                how: Grant::Policy,
                                ..
                            })
                        ));
                        continue;
                    }
                    // Withheld: by-request opens on accept, deny only when the remote session ends.
                    let later = started + Duration::from_secs(7);
                    if remote_screen == Mode::AllowByRequest {
                        assert_eq!(p.pending(), Some((Question::ScreenAccess, None)));
                        p.user_accepts(later, USER, Some(Question::ScreenAccess))
                            .unwrap();
                        assert_eq!(
                            events(&mut p).last(),
                            Some(&AuditEvent::ScreenAccessGranted {
                                how: Grant::User(USER),
                                waited: Duration::from_secs(7)
                            })
                        );
                    } else {
                        assert_eq!(p.pending(), None, "{case}");
                        assert_eq!(
                            p.user_accepts(later, USER, None),
                            Err(AnswerError::NothingPending)
                        );
                        assert!(!p.input_allowed(), "{case}");
                        p.remote_session_ended(later);
                        assert_eq!(
                            events(&mut p).last(),
                            Some(&AuditEvent::ScreenAccessGranted {
                                how: Grant::RemoteSessionEnded,
                                waited: Duration::from_secs(7)
                            })
                        );
                    }
                    assert_eq!(p.screen(), Screen::Real, "{case}");
                    assert!(p.input_allowed(), "{case}");
                }
            }
        }
    }
}

#[test]
fn by_request_screen_opens_when_the_remote_session_ends() {
    let t0 = Instant::now();
    let mut p = policy(Mode::AllowAuto, Mode::AllowByRequest, true);
    p.authenticated(t0, admin());
    p.user_accepts(t0, USER, None).unwrap();
    assert!(!p.input_allowed());
    p.remote_session_ended(t0 + Duration::from_secs(3));
    assert_eq!(p.screen(), Screen::Real);
    assert!(p.input_allowed());
}

#[test]
fn rejected_screen_access_waits_for_the_remote_session_end() {
    let t0 = Instant::now();
    let mut p = policy(Mode::AllowAuto, Mode::AllowByRequest, true);
    p.authenticated(t0, admin());
    p.user_accepts(t0, USER, None).unwrap();
    events(&mut p);
    p.user_rejects(t0, USER, Some(Question::ScreenAccess))
        .unwrap();
    assert_eq!(p.outcome(), Outcome::Started, "a screen no is not the end");
    assert_eq!(
        p.screen(),
        Screen::Waiting {
            reason: WaitReason::RemoteSessionEnd,
            deadline: None
        }
    );
    assert_eq!(
        events(&mut p),
        [
            AuditEvent::ScreenAccessRejected { by: USER },
            AuditEvent::ScreenWithheld {
                reason: WaitReason::RemoteSessionEnd
            }
        ]
    );
    assert_eq!(
        p.user_accepts(t0, USER, None),
        Err(AnswerError::NothingPending)
    );
    p.remote_session_ended(t0);
    assert!(p.input_allowed());
}

#[test]
fn a_new_remote_session_withholds_again() {
    let t0 = Instant::now();
    let mut p = policy(Mode::AllowAuto, Mode::AllowByRequest, false);
    p.authenticated(t0, admin());
    p.user_accepts(t0, USER, None).unwrap();
    assert!(p.input_allowed());
    p.remote_session_started(t0);
    assert!(!p.input_allowed());
    p.user_accepts(t0, USER, None).unwrap();
    assert!(p.input_allowed());
    p.remote_session_ended(t0);
    p.remote_session_started(t0);
    assert_eq!(p.pending(), Some((Question::ScreenAccess, None)));
    assert!(!p.input_allowed(), "one yes covers one remote session");
    // During consent the remote state is only remembered.
    let mut q = policy(Mode::AllowAuto, Mode::Deny, false);
    q.authenticated(t0, admin());
    q.remote_session_started(t0);
    q.tick(t0 + T);
    assert_eq!(q.outcome(), Outcome::Started);
    assert_eq!(
        q.screen(),
        Screen::Waiting {
            reason: WaitReason::RemoteSessionEnd,
            deadline: None
        }
    );
}

#[test]
fn stale_answers_do_not_answer_the_next_question() {
    let t0 = Instant::now();
    let mut p = policy(Mode::AllowByRequest, Mode::AllowByRequest, true);
    assert_eq!(
        p.user_accepts(t0, USER, None),
        Err(AnswerError::NothingPending),
        "before the login nobody was asked"
    );
    p.authenticated(t0, admin());
    assert_eq!(
        p.user_accepts(t0, USER, Some(Question::ScreenAccess)),
        Err(AnswerError::NotThatQuestion {
            pending: Question::Consent
        })
    );
    p.user_accepts(t0, USER, Some(Question::Consent)).unwrap();
    assert_eq!(
        p.user_rejects(t0, USER, Some(Question::Consent)),
        Err(AnswerError::NotThatQuestion {
            pending: Question::ScreenAccess
        })
    );
    assert_eq!(p.outcome(), Outcome::Started);
}

/// Builds a policy at each stage of its life.
fn at_stage(stage: &str, t0: Instant) -> AccessPolicy {
    let mut p = policy(Mode::AllowByRequest, Mode::Deny, stage == "withheld");
    if stage == "new" {
        return p;
    }
    p.authenticated(t0, admin());
    if stage == "asking" {
        return p;
    }
    p.user_accepts(t0, USER, None).unwrap();
    if stage == "view-only" {
        p.set_view_only(true, t0, USER).unwrap();
    }
    p
}

const STAGES: [&str; 5] = ["new", "asking", "withheld", "running", "view-only"];

#[test]
fn terminate_ends_every_stage_by_user() {
    let t0 = Instant::now();
    for stage in STAGES {
        let mut p = at_stage(stage, t0);
        events(&mut p);
        let end = t0 + Duration::from_secs(60);
        p.user_terminates(end, USER).unwrap();
        let cause = EndCause::Terminated(USER);
        assert_eq!(p.outcome(), Outcome::Ended(cause), "{stage}");
        assert_eq!(p.end_reason(), Some(EndReason::ByUser), "{stage}");
        assert!(!p.input_allowed(), "{stage}");
        assert_eq!(p.next_deadline(), None, "{stage}");
        let active = matches!(stage, "withheld" | "running" | "view-only")
            .then_some(Duration::from_secs(60));
        let duration = if stage == "new" {
            Duration::ZERO
        } else {
            Duration::from_secs(60)
        };
        assert_eq!(
            events(&mut p),
            [AuditEvent::Ended {
                cause,
                duration,
                active
            }],
            "{stage}"
        );
        // Once ended, everything else is refused or ignored, and nothing more is reported.
        assert_eq!(p.user_terminates(end, USER), Err(AnswerError::Ended));
        assert_eq!(p.user_accepts(end, USER, None), Err(AnswerError::Ended));
        assert_eq!(p.set_view_only(false, end, USER), Err(AnswerError::Ended));
        p.admin_disconnected(end);
        p.tick(end + T);
        p.remote_session_ended(end);
        p.authenticated(end, admin());
        assert_eq!(p.outcome(), Outcome::Ended(cause), "{stage}");
        assert!(events(&mut p).is_empty(), "{stage}");
    }
}

#[test]
fn deny_set_mid_session_ends_it() {
    let t0 = Instant::now();
    let deny = Modes {
        management: Mode::Deny,
        remote_screen: Mode::AllowAuto,
    };
    for stage in STAGES {
        let mut p = at_stage(stage, t0);
        p.set_modes(deny, t0);
        if stage == "new" {
            // Not asked yet: the login finds Deny and refuses.
            assert_eq!(p.outcome(), Outcome::Pending);
            p.authenticated(t0, admin());
        }
        assert_eq!(p.outcome(), Outcome::Ended(EndCause::Deny), "{stage}");
        assert_eq!(p.end_reason(), Some(EndReason::Denied), "{stage}");
    }
}

#[test]
fn other_management_changes_wait_for_the_next_request() {
    let t0 = Instant::now();
    let mut p = policy(Mode::AllowAuto, Mode::AllowAuto, false);
    p.authenticated(t0, admin());
    p.set_modes(
        Modes {
            management: Mode::AllowByRequest,
            remote_screen: Mode::AllowAuto,
        },
        t0,
    );
    p.tick(t0 + T);
    assert_eq!(p.outcome(), Outcome::Started, "asked under allow-auto");
}

#[test]
fn remote_screen_changes_apply_at_once() {
    let t0 = Instant::now();
    let mut p = policy(Mode::AllowAuto, Mode::AllowAuto, true);
    p.authenticated(t0, admin());
    p.user_accepts(t0, USER, None).unwrap();
    assert!(p.input_allowed());
    let with = |remote_screen| Modes {
        management: Mode::AllowAuto,
        remote_screen,
    };
    p.set_modes(with(Mode::AllowByRequest), t0);
    assert_eq!(p.pending(), Some((Question::ScreenAccess, None)));
    p.user_accepts(t0, USER, None).unwrap();
    assert!(p.input_allowed());
    events(&mut p);
    p.set_modes(with(Mode::Deny), t0);
    assert!(!p.input_allowed(), "deny overrides the earlier yes");
    assert_eq!(
        events(&mut p),
        [AuditEvent::ScreenWithheld {
            reason: WaitReason::RemoteSessionEnd
        }]
    );
    p.set_modes(with(Mode::AllowByRequest), t0);
    assert_eq!(
        events(&mut p),
        [AuditEvent::ScreenWithheld {
            reason: WaitReason::ScreenAccess
        }],
        "the new reason is reported"
    );
    p.set_modes(with(Mode::AllowAuto), t0 + Duration::from_secs(2));
    assert_eq!(
        events(&mut p),
        [AuditEvent::ScreenAccessGranted {
            how: Grant::Policy,
            waited: Duration::from_secs(2)
        }]
    );
}

#[test]
fn view_only_toggles_gate_input_at_every_stage() {
    let t0 = Instant::now();
    for stage in STAGES {
        let mut p = at_stage(stage, t0);
        let opens = stage == "running" || stage == "view-only";
        events(&mut p);
        p.set_view_only(true, t0, USER).unwrap();
        assert!(!p.input_allowed(), "{stage}");
        assert!(p.view_only());
        p.set_view_only(true, t0, USER).unwrap();
        p.set_view_only(false, t0, By::LocalPrompt).unwrap();
        assert_eq!(p.input_allowed(), opens, "{stage}");
        let ev = events(&mut p);
        let expected: &[AuditEvent] = if stage == "view-only" {
            // Already on: only the switch off is news.
            &[AuditEvent::ViewOnlyChanged {
                on: false,
                by: By::LocalPrompt,
            }]
        } else {
            &[
                AuditEvent::ViewOnlyChanged { on: true, by: USER },
                AuditEvent::ViewOnlyChanged {
                    on: false,
                    by: By::LocalPrompt,
                },
            ]
        };
        assert_eq!(ev, expected, "{stage}");
        // The screen is unaffected: view-only still sees.
        assert_eq!(p.screen() == Screen::Real, opens, "{stage}");
    }
    // Accepted in view-only: sees the screen, sends nothing.
    let mut p = policy(Mode::AllowByRequest, Mode::AllowAuto, false);
    p.authenticated(t0, admin());
    p.set_view_only(true, t0, USER).unwrap();
    p.user_accepts(t0, USER, None).unwrap();
    assert_eq!(p.screen(), Screen::Real);
    assert!(!p.input_allowed());
}

#[test]
fn admin_leaving_and_shutdown_end_without_blame() {
    let t0 = Instant::now();
    let mut p = at_stage("asking", t0);
    p.admin_disconnected(t0);
    assert_eq!(p.outcome(), Outcome::Ended(EndCause::AdminLeft));
    assert_eq!(p.end_reason(), None, "nobody to tell");
    let mut q = at_stage("running", t0);
    q.shutdown(t0);
    assert_eq!(q.end_reason(), Some(EndReason::Shutdown));
}

#[test]
fn timeout_and_its_action_are_configurable_per_mode() {
    let t0 = Instant::now();
    let short = Duration::from_secs(5);
    let settings = AccessSettings {
        allow_auto: Ask {
            timeout: short,
            on_timeout: TimeoutAction::Refuse,
        },
        allow_by_request: Ask {
            timeout: Duration::from_secs(2),
            on_timeout: TimeoutAction::Start,
        },
    };
    let modes = |management| Modes {
        management,
        remote_screen: Mode::AllowAuto,
    };
    let mut p = AccessPolicy::new(settings, modes(Mode::AllowAuto), false, admin());
    p.authenticated(t0, admin());
    assert_eq!(p.next_deadline(), Some(t0 + short));
    p.tick(t0 + short);
    assert_eq!(p.outcome(), Outcome::Ended(EndCause::NoAnswer));
    let mut q = AccessPolicy::new(settings, modes(Mode::AllowByRequest), false, admin());
    q.authenticated(t0, admin());
    q.tick(t0 + Duration::from_secs(2));
    assert_eq!(q.outcome(), Outcome::Started);
    assert!(q.input_allowed());
}

#[test]
fn a_full_session_reads_as_an_audit_trail() {
    let t0 = Instant::now();
    let s = Duration::from_secs;
    let mut p = policy(Mode::AllowByRequest, Mode::AllowByRequest, true);
    p.authenticated(t0, admin());
    p.user_accepts(t0 + s(4), USER, None).unwrap();
    p.user_accepts(t0 + s(10), By::LocalPrompt, None).unwrap();
    p.set_view_only(true, t0 + s(20), USER).unwrap();
    p.user_terminates(t0 + s(64), USER).unwrap();
    assert_eq!(
        events(&mut p),
        [
            AuditEvent::Authenticated,
            AuditEvent::ConsentAsked {
                mode: Mode::AllowByRequest,
                timeout: T
            },
            AuditEvent::ConsentAnswered {
                accepted: true,
                by: Answerer::User(USER),
                after: s(4)
            },
            AuditEvent::SessionStarted { waited: s(4) },
            AuditEvent::ScreenWithheld {
                reason: WaitReason::ScreenAccess
            },
            AuditEvent::ScreenAccessGranted {
                how: Grant::User(By::LocalPrompt),
                waited: s(6)
            },
            AuditEvent::ViewOnlyChanged { on: true, by: USER },
            AuditEvent::Ended {
                cause: EndCause::Terminated(USER),
                duration: s(64),
                active: Some(s(60))
            },
        ]
    );
}

#[test]
fn waiting_screen_text_counts_down() {
    let t0 = Instant::now();
    let mut p = policy(Mode::AllowAuto, Mode::AllowAuto, false);
    p.authenticated(t0, admin());
    let at = |ms| p.screen().lines(t0 + Duration::from_millis(ms));
    assert_eq!(
        at(6_500),
        [
            "Remote administration",
            "Waiting for the local user to accept",
            "Seconds left: 24"
        ]
    );
    assert_eq!(at(29_999)[2], "Seconds left: 1");
    assert_eq!(at(30_000)[2], "Seconds left: 0");
    assert!(Screen::Real.lines(t0).is_empty());
}
