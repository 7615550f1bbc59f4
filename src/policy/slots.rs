//! Handshake slots: how many connections may be in the handshake at once, per source address
//! and in all, and whom to drop when they are full.
//!
//! Idle sockets must not lock admins out: one address holds at most `per_address` slots, and
//! when all slots are taken the oldest handshake that has sent nothing for `idle_after` gives
//! its slot to the newcomer. Only when every slot is busy is the newcomer refused.

use std::net::IpAddr;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotLimits {
    pub global: usize,
    pub per_address: usize,
    pub idle_after: Duration,
}

impl Default for SlotLimits {
    fn default() -> Self {
        SlotLimits {
            global: 8,
            per_address: 3,
            idle_after: Duration::from_secs(3),
        }
    }
}

/// One connection still in its handshake, as the slot rule sees it.
#[derive(Clone, Copy, Debug)]
pub struct Pending<K> {
    pub key: K,
    pub ip: IpAddr,
    /// When it last sent anything (its connect time until then).
    pub last_input: Instant,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admit<K> {
    Accept,
    /// Accept, and close this idle handshake to make room.
    AcceptEvicting(K),
    /// This address already holds its share of the slots.
    AddressFull,
    /// Every slot is held by a handshake that is making progress.
    Full,
}

/// Decides for a newcomer from `ip`, given the handshakes in progress. When every slot is
/// taken, the newcomer gets one if that is fair: from the address holding the most slots, if
/// it holds more than the newcomer's would (so trickling a byte a second from a few addresses
/// cannot keep an admin out), else from a handshake idle for `idle_after`; oldest first.
pub fn admit<K: Copy>(
    limits: SlotLimits,
    pending: &[Pending<K>],
    ip: IpAddr,
    now: Instant,
) -> Admit<K> {
    let ip = super::canonical(ip);
    let held_by = |addr: IpAddr| {
        pending
            .iter()
            .filter(|p| super::canonical(p.ip) == super::canonical(addr))
            .count()
    };
    let same = held_by(ip);
    if same >= limits.per_address {
        return Admit::AddressFull;
    }
    if pending.len() < limits.global {
        return Admit::Accept;
    }
    let idle = |p: &Pending<K>| now.saturating_duration_since(p.last_input) >= limits.idle_after;
    let crowded = pending
        .iter()
        .map(|p| (held_by(p.ip), p))
        .filter(|(held, _)| *held > same + 1)
        .max_by(|(a, pa), (b, pb)| a.cmp(b).then(pb.last_input.cmp(&pa.last_input)))
        .map(|(_, p)| p);
    let victim = crowded.or_else(|| {
        pending
            .iter()
            .filter(|p| idle(p))
            .min_by_key(|p| p.last_input)
    });
    victim.map_or(Admit::Full, |p| Admit::AcceptEvicting(p.key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    fn pending(base: Instant, spec: &[(u8, u64)]) -> Vec<Pending<usize>> {
        spec.iter()
            .enumerate()
            .map(|(key, &(last, at))| Pending {
                key,
                ip: ip(last),
                last_input: base + Duration::from_secs(at),
            })
            .collect()
    }

    #[test]
    fn one_address_gets_only_its_share() {
        let t = Instant::now();
        let limits = SlotLimits::default();
        let held = pending(t, &[(1, 0), (1, 0), (1, 0)]);
        assert_eq!(admit(limits, &held, ip(1), t), Admit::AddressFull);
        assert_eq!(admit(limits, &held, ip(2), t), Admit::Accept);
        // The same host through a dual-stack socket is the same address.
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(admit(limits, &held, mapped, t), Admit::AddressFull);
    }

    #[test]
    fn the_oldest_idle_handshake_makes_room() {
        let t = Instant::now();
        let limits = SlotLimits {
            global: 4,
            per_address: 4,
            idle_after: Duration::from_secs(3),
        };
        let held = pending(t, &[(1, 2), (2, 1), (3, 5), (4, 6)]);
        // At t+6 the handshakes last heard at t+1 and t+2 are idle; t+1 is the oldest.
        let now = t + Duration::from_secs(6);
        assert_eq!(admit(limits, &held, ip(9), now), Admit::AcceptEvicting(1));
        // Nobody idle yet: the newcomer waits outside.
        assert_eq!(
            admit(limits, &held, ip(9), t + Duration::from_secs(3)),
            Admit::Full
        );
    }

    #[test]
    fn trickling_from_a_few_addresses_cannot_hold_every_slot() {
        let t = Instant::now();
        let limits = SlotLimits::default();
        // Three addresses keep 3 + 3 + 2 slots busy with a byte a second (never idle).
        let held = pending(
            t,
            &[
                (1, 4),
                (1, 6),
                (1, 7),
                (2, 5),
                (2, 6),
                (2, 7),
                (3, 5),
                (3, 6),
            ],
        );
        let now = t + Duration::from_secs(7);
        // A fourth address gets the oldest slot of a crowded one.
        assert_eq!(admit(limits, &held, ip(9), now), Admit::AcceptEvicting(0));
        // An address already holding two does not take from one holding three.
        let spread = pending(
            t,
            &[
                (1, 5),
                (1, 6),
                (1, 7),
                (9, 5),
                (9, 6),
                (2, 7),
                (3, 5),
                (4, 6),
            ],
        );
        assert_eq!(admit(limits, &spread, ip(9), now), Admit::Full);
    }
}
