//! Who may connect and how: access modes, source allowlist, brute-force lockout, and the
//! access policy of one admin session (consent, screen access, view-only, terminate, audit).
//!
//! Everything here is sans-IO: addresses and `now` in, verdicts and events out. The agent
//! asks before it spends a TLS handshake on a peer and reports each login's result; after
//! the login, an [`AccessPolicy`] decides what the session may do.

mod access;
pub mod allowlist;
mod audit_limit;
pub mod lockout;
mod mode;
mod remote_env;
mod session;
mod slots;

pub use access::{
    AccessSettings, AnswerError, Answerer, Ask, Audit, AuditEvent, By, DEFAULT_CONSENT_TIMEOUT,
    EndCause, Grant, Question, TimeoutAction, WaitReason,
};

pub use allowlist::{AllowError, Allowlist, Cidr};
pub use audit_limit::{AuditLimiter, AuditLimits};
pub use lockout::{Lockout, LockoutEvent, LockoutPolicy, LockoutRecord, Verdict};
pub use mode::{Mode, Modes};
pub use remote_env::{COMM_LEN, POLL_INTERVAL, ProcessNames, ProcessPoll, RemoteEnv};
pub use session::{AccessPolicy, Outcome, Screen};
pub use slots::{Admit, Pending, SlotLimits, admit};

use std::net::IpAddr;

/// IPv4-mapped IPv6 (`::ffff:a.b.c.d`, what a dual-stack socket reports) as plain IPv4, so
/// one host is one key and one rule whichever socket it came in on.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}
