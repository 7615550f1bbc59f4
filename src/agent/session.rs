//! The one admin session: made at login together with its access policy and screen
//! pipeline, ended when its connection is dropped. No connection reaches the screen or
//! input without being it.

use std::time::Instant;

use super::core::ConnId;
use super::screen::Pipeline;
use crate::policy::AccessPolicy;

pub(super) struct Session {
    /// The connection that logged in and owns this session.
    pub id: ConnId,
    pub policy: AccessPolicy,
    /// When its client reached the active phase (None while it finishes the handshake).
    pub active_since: Option<Instant>,
    /// Admin input reaches the sink (for releasing everything when that stops).
    pub input_open: bool,
    /// Its screen output: damage, what its client holds, compression history, counts.
    pub pipeline: Pipeline,
}

impl Session {
    pub fn new(id: ConnId, policy: AccessPolicy) -> Self {
        Session {
            id,
            policy,
            active_since: None,
            input_open: false,
            pipeline: Pipeline::new(),
        }
    }

    /// Admin input from `id` may reach the thin client now.
    pub fn admits_input_from(&self, id: ConnId) -> bool {
        self.id == id && self.policy.input_allowed()
    }
}

/// What a login finds: the session slot free, or held by someone else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum LoginVerdict {
    /// This login becomes the session.
    Session,
    /// Another admin holds the session (waiting for consent or running): refused.
    Busy,
}

/// The one-session rule, decided at login and nowhere else. A session whose policy ended
/// still holds the slot until its connection is gone (at most the linger time).
pub(super) fn login_verdict(current: Option<&Session>, id: ConnId) -> LoginVerdict {
    match current {
        None => LoginVerdict::Session,
        Some(session) if session.id == id => LoginVerdict::Session,
        Some(_) => LoginVerdict::Busy,
    }
}
