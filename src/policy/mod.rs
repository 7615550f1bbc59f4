//! Who may connect and how: access modes, source allowlist, brute-force lockout.
//!
//! Everything here is sans-IO: addresses and `now` in, verdicts and events out. The agent
//! asks before it spends a TLS handshake on a peer and reports each login's result.

pub mod allowlist;
pub mod lockout;
mod mode;

pub use allowlist::{AllowError, Allowlist, Cidr};
pub use lockout::{Lockout, LockoutEvent, LockoutPolicy, LockoutRecord, Verdict};
pub use mode::{Mode, Modes};

use std::net::IpAddr;

/// IPv4-mapped IPv6 (`::ffff:a.b.c.d`, what a dual-stack socket reports) as plain IPv4, so
/// one host is one key and one rule whichever socket it came in on.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}
