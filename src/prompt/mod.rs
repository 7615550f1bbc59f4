//! The built-in local prompt for bare images (`serve --local-prompt fb`): a small box on the
//! framebuffer asks the local user about an admin's request and, during a session, says that
//! an admin is connected and how to end it; keys from the local keyboard answer.
//!
//! Sans-IO core, tested without devices:
//! - [`View`]: what to show, given the access policy and `now` (and when the text changes
//!   by itself: the countdown's next second).
//! - [`compose`]: the box's pixels and where it goes.
//! - [`Overlay`] / [`Drawer`]: draws over someone else's pixels and gives them back, over
//!   any [`Panel`] (the framebuffer, or memory in tests).
//! - [`Keys`]: key events and `now` → answers; keys held before a box appeared, and any in
//!   its first second ([`GUARD`]), answer nothing.
//!
//! I/O: [`keyboards`] (evdev devices, never our own uinput ones) and `screen::FbPanel`.

mod compose;
mod draw;
pub mod keyboards;
mod keys;
mod overlay;

pub use compose::{BORDER, Composed, Style, compose};
pub use draw::{Drawer, Panel, Saved};
pub use keys::{Answer, GUARD, Keys};
pub use overlay::Overlay;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::policy::{AccessPolicy, Outcome, Question};

/// The chord that ends a session from the local keyboard, as the prompt prints it.
pub const END_CHORD: &str = "Ctrl+Alt+End";

/// What the local prompt shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum View {
    Hidden,
    /// A question for the local user; `left` is whole seconds, rounded up.
    Ask {
        question: Question,
        admin: IpAddr,
        left: Option<u64>,
    },
    /// A session runs (or waits for screen access without a question open).
    Connected {
        admin: IpAddr,
    },
}

impl View {
    /// What to show for `policy` (the session the local user's answers act on) at `now`.
    /// Nothing before the admin logged in: a stranger never disturbs the user.
    pub fn of(policy: Option<&AccessPolicy>, now: Instant) -> View {
        let Some(policy) = policy else {
            return View::Hidden;
        };
        let admin = crate::policy::canonical(policy.admin().ip());
        if let Some((question, deadline)) = policy.pending() {
            return View::Ask {
                question,
                admin,
                left: deadline.map(|d| seconds_left(d, now)),
            };
        }
        match policy.outcome() {
            Outcome::Started => View::Connected { admin },
            Outcome::Pending | Outcome::Ended(_) => View::Hidden,
        }
    }

    /// When the view changes by itself: the countdown's next whole second.
    pub fn next_change(policy: Option<&AccessPolicy>, now: Instant) -> Option<Instant> {
        let (_, deadline) = policy?.pending()?;
        let deadline = deadline?;
        let left = seconds_left(deadline, now);
        // "n s left" shows while the time left is in (n-1, n]: it turns n-1 at deadline - (n-1).
        Some(deadline - Duration::from_secs(left.saturating_sub(1))).filter(|at| *at > now)
    }

    /// The same box for the local user: the same kind, question and admin (the countdown
    /// may differ). A different one starts its key guard afresh (`Keys::shown`).
    pub fn same_box(&self, other: &View) -> bool {
        match (self, other) {
            (
                View::Ask {
                    question: q1,
                    admin: a1,
                    ..
                },
                View::Ask {
                    question: q2,
                    admin: a2,
                    ..
                },
            ) => q1 == q2 && a1 == a2,
            (a, b) => a == b,
        }
    }

    pub fn style(&self) -> Option<Style> {
        match self {
            View::Hidden => None,
            View::Ask { .. } => Some(Style::Question),
            View::Connected { .. } => Some(Style::Indicator),
        }
    }

    /// The box's text, one entry a line.
    pub fn lines(&self) -> Vec<String> {
        match self {
            View::Hidden => Vec::new(),
            View::Ask {
                question: Question::Consent,
                admin,
                left,
            } => {
                let mut keys = "Enter: accept    Esc: reject".to_owned();
                if let Some(left) = left {
                    keys.push_str(&format!("    {left} s left"));
                }
                vec![format!("Remote administration request from {admin}"), keys]
            }
            View::Ask {
                question: Question::ScreenAccess,
                admin,
                ..
            } => vec![
                format!("Remote administrator {admin} asks to see your remote session"),
                format!("Enter: allow    Esc: refuse    {END_CHORD}: end the session"),
            ],
            View::Connected { admin } => vec![format!(
                "Remote administrator {admin} connected - {END_CHORD} ends the session"
            )],
        }
    }
}

/// Whole seconds until `deadline`, rounded up so it never shows 0 while time is left.
fn seconds_left(deadline: Instant, now: Instant) -> u64 {
    let ms = deadline.saturating_duration_since(now).as_millis();
    u64::try_from(ms.div_ceil(1000)).unwrap_or(u64::MAX)
}

#[cfg(test)]
#[path = "view_tests.rs"]
mod tests;
