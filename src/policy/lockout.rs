//! Brute-force defence per source address: each failed login makes that address wait
//! longer before its next try (1 s, 2 s, 4 s, … capped), and `after` failures lock it out
//! for `window`. A failure counts until `window` has passed since the address's latest
//! failure; a success clears it. No address's failures touch another's.
//!
//! The table is bounded (the oldest entry goes first) and can be exported to the state
//! and imported at start, so a restart does not reset an attacker's count.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::canonical;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Failures that start a lockout.
    pub after: u32,
    /// How long a lockout lasts, and how long a failure is remembered.
    pub window: Duration,
    /// Wait after the first failure; doubles with each further one up to `max_delay`.
    pub first_delay: Duration,
    pub max_delay: Duration,
    /// Addresses remembered at once.
    pub capacity: usize,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        LockoutPolicy {
            after: 5,
            window: Duration::from_secs(5 * 60),
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
            capacity: MAX_RECORDS,
        }
    }
}

/// The most addresses ever remembered (and persisted).
pub const MAX_RECORDS: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Too soon after this address's last failure.
    Wait(Duration),
    /// Locked out for this much longer.
    LockedOut(Duration),
}

/// A lockout has just started: worth one log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockoutEvent {
    pub ip: IpAddr,
    pub failures: u32,
    pub duration: Duration,
}

impl fmt::Display for LockoutEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: locked out for {} s after {} failed logins",
            self.ip,
            self.duration.as_secs(),
            self.failures
        )
    }
}

/// One address's count as the state keeps it; time in Unix seconds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockoutRecord {
    pub ip: IpAddr,
    pub failures: u32,
    pub last_failure: u64,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    failures: u32,
    last: Instant,
}

#[derive(Debug)]
pub struct Lockout {
    policy: LockoutPolicy,
    entries: HashMap<IpAddr, Entry>,
}

impl Lockout {
    pub fn new(policy: LockoutPolicy) -> Lockout {
        Lockout {
            policy,
            entries: HashMap::new(),
        }
    }

    pub fn policy(&self) -> &LockoutPolicy {
        &self.policy
    }

    /// May this address try to log in now?
    pub fn check(&self, ip: IpAddr, now: Instant) -> Verdict {
        let Some(entry) = self.live(canonical(ip), now) else {
            return Verdict::Allow;
        };
        if entry.failures >= self.policy.after {
            let until = entry.last + self.policy.window;
            return Verdict::LockedOut(until.saturating_duration_since(now));
        }
        let until = entry.last + self.delay(entry.failures);
        if now < until {
            Verdict::Wait(until - now)
        } else {
            Verdict::Allow
        }
    }

    /// Counts a failed login; returns the event when this failure starts a lockout.
    pub fn failed(&mut self, ip: IpAddr, now: Instant) -> Option<LockoutEvent> {
        let ip = canonical(ip);
        let failures = match self.live(ip, now) {
            Some(entry) => entry.failures.saturating_add(1),
            None => {
                self.make_room(now);
                1
            }
        };
        self.entries.insert(
            ip,
            Entry {
                failures,
                last: now,
            },
        );
        (failures == self.policy.after).then_some(LockoutEvent {
            ip,
            failures,
            duration: self.policy.window,
        })
    }

    /// Clears the address; says whether it had a count (worth saving).
    pub fn succeeded(&mut self, ip: IpAddr) -> bool {
        self.entries.remove(&canonical(ip)).is_some()
    }

    /// Addresses with a failure still counted (some may have expired since the last call).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The counts still in force, oldest first, with `now` given on both clocks.
    pub fn export(&self, now: Instant, now_unix: u64) -> Vec<LockoutRecord> {
        let mut records: Vec<(Instant, LockoutRecord)> = self
            .entries
            .iter()
            .filter(|(_, entry)| !self.expired(entry, now))
            .map(|(ip, entry)| {
                let age = now.saturating_duration_since(entry.last).as_secs();
                let record = LockoutRecord {
                    ip: *ip,
                    failures: entry.failures,
                    last_failure: now_unix.saturating_sub(age),
                };
                (entry.last, record)
            })
            .collect();
        records.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.ip.cmp(&b.1.ip)));
        records.into_iter().map(|(_, record)| record).collect()
    }

    /// Takes over counts from the state. A failure dated in the future (the clock went
    /// back) or before this boot's monotonic clock begins counts as just now: when in
    /// doubt the wait is longer, never shorter.
    pub fn import(&mut self, records: &[LockoutRecord], now: Instant, now_unix: u64) {
        let newest_first = records.iter().rev().take(self.policy.capacity);
        for record in newest_first {
            let age = Duration::from_secs(now_unix.saturating_sub(record.last_failure));
            if record.failures == 0 || age >= self.policy.window {
                continue;
            }
            let last = now.checked_sub(age).unwrap_or(now);
            let ip = canonical(record.ip);
            if !self.entries.contains_key(&ip) {
                self.make_room(now);
            }
            self.entries.insert(
                ip,
                Entry {
                    failures: record.failures,
                    last,
                },
            );
        }
    }

    fn live(&self, ip: IpAddr, now: Instant) -> Option<&Entry> {
        self.entries
            .get(&ip)
            .filter(|entry| !self.expired(entry, now))
    }

    fn expired(&self, entry: &Entry, now: Instant) -> bool {
        now.saturating_duration_since(entry.last) >= self.policy.window
    }

    fn delay(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        self.policy
            .first_delay
            .saturating_mul(1 << doublings)
            .min(self.policy.max_delay)
    }

    /// Forgets expired entries when full, then the oldest if still full.
    fn make_room(&mut self, now: Instant) {
        if self.entries.len() < self.policy.capacity {
            return;
        }
        let window = self.policy.window;
        self.entries
            .retain(|_, entry| now.saturating_duration_since(entry.last) < window);
        while self.entries.len() >= self.policy.capacity.max(1) {
            let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, entry)| entry.last)
                .map(|(ip, _)| *ip)
            else {
                break;
            };
            self.entries.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn delays_grow_then_a_lockout_starts() {
        let mut lockout = Lockout::new(LockoutPolicy::default());
        let t0 = Instant::now();
        let a = ip("192.0.2.1");
        assert_eq!(lockout.check(a, t0), Verdict::Allow);
        let mut now = t0;
        for (n, wait) in [1u32, 2, 4, 8].into_iter().enumerate() {
            assert_eq!(lockout.failed(a, now), None, "failure {}", n + 1);
            assert_eq!(lockout.check(a, now), Verdict::Wait(S * wait));
            let half = S * wait / 2;
            assert_eq!(lockout.check(a, now + half), Verdict::Wait(S * wait - half));
            now += S * wait;
            assert_eq!(lockout.check(a, now), Verdict::Allow);
        }
        let event = lockout.failed(a, now).expect("fifth failure locks");
        assert_eq!(event.failures, 5);
        assert_eq!(event.duration, 300 * S);
        assert_eq!(
            event.to_string(),
            "192.0.2.1: locked out for 300 s after 5 failed logins"
        );
        assert_eq!(lockout.check(a, now), Verdict::LockedOut(300 * S));
        assert_eq!(lockout.check(a, now + 299 * S), Verdict::LockedOut(S));
        // After the window the address starts afresh.
        assert_eq!(lockout.check(a, now + 300 * S), Verdict::Allow);
        assert_eq!(lockout.failed(a, now + 300 * S), None);
        assert_eq!(lockout.check(a, now + 300 * S), Verdict::Wait(S));
    }

    #[test]
    fn delay_is_capped() {
        let policy = LockoutPolicy {
            after: 100,
            window: Duration::from_secs(3600),
            ..LockoutPolicy::default()
        };
        let mut lockout = Lockout::new(policy);
        let a = ip("192.0.2.1");
        let now = Instant::now();
        for _ in 0..60 {
            lockout.failed(a, now);
        }
        assert_eq!(lockout.check(a, now), Verdict::Wait(30 * S));
    }

    #[test]
    fn another_address_is_never_affected() {
        let mut lockout = Lockout::new(LockoutPolicy::default());
        let now = Instant::now();
        let bad = ip("192.0.2.1");
        for _ in 0..5 {
            lockout.failed(bad, now);
        }
        assert!(matches!(lockout.check(bad, now), Verdict::LockedOut(_)));
        for other in ["192.0.2.2", "2001:db8::1", "::ffff:192.0.2.2"] {
            assert_eq!(lockout.check(ip(other), now), Verdict::Allow, "{other}");
        }
        // The same host over a dual-stack socket is the same address.
        assert!(matches!(
            lockout.check(ip("::ffff:192.0.2.1"), now),
            Verdict::LockedOut(_)
        ));
    }

    #[test]
    fn success_clears() {
        let mut lockout = Lockout::new(LockoutPolicy::default());
        let now = Instant::now();
        let a = ip("192.0.2.1");
        for _ in 0..4 {
            lockout.failed(a, now);
        }
        lockout.succeeded(a);
        assert_eq!(lockout.check(a, now), Verdict::Allow);
        assert!(lockout.is_empty());
        // The next failure is a first one again.
        lockout.failed(a, now);
        assert_eq!(lockout.check(a, now), Verdict::Wait(S));
    }

    #[test]
    fn old_failures_are_forgotten() {
        let mut lockout = Lockout::new(LockoutPolicy::default());
        let t0 = Instant::now();
        let a = ip("192.0.2.1");
        for _ in 0..4 {
            lockout.failed(a, t0);
        }
        let later = t0 + 300 * S;
        assert_eq!(lockout.check(a, later), Verdict::Allow);
        assert_eq!(lockout.failed(a, later), None, "count restarted");
        assert_eq!(lockout.check(a, later), Verdict::Wait(S));
    }

    #[test]
    fn table_is_bounded_and_evicts_the_oldest() {
        let policy = LockoutPolicy {
            capacity: 3,
            ..LockoutPolicy::default()
        };
        let mut lockout = Lockout::new(policy);
        let t0 = Instant::now();
        for (i, addr) in ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"]
            .iter()
            .enumerate()
        {
            lockout.failed(ip(addr), t0 + i as u32 * S);
        }
        assert_eq!(lockout.len(), 3);
        let now = t0 + 3 * S;
        assert_eq!(lockout.check(ip("192.0.2.1"), now), Verdict::Allow);
        assert_ne!(lockout.check(ip("192.0.2.4"), now), Verdict::Allow);
        // Failing again for a known address takes no room.
        lockout.failed(ip("192.0.2.2"), now);
        assert_eq!(lockout.len(), 3);
    }

    #[test]
    fn a_full_table_forgets_expired_entries_before_live_ones() {
        let policy = LockoutPolicy {
            capacity: 2,
            ..LockoutPolicy::default()
        };
        let mut lockout = Lockout::new(policy);
        let t0 = Instant::now();
        lockout.failed(ip("192.0.2.1"), t0);
        lockout.failed(ip("192.0.2.2"), t0 + 200 * S);
        lockout.failed(ip("192.0.2.3"), t0 + 301 * S);
        let kept: Vec<IpAddr> = lockout
            .export(t0 + 301 * S, 10_000)
            .into_iter()
            .map(|r| r.ip)
            .collect();
        assert_eq!(kept, [ip("192.0.2.2"), ip("192.0.2.3")]);
    }

    #[test]
    fn export_then_import_keeps_the_count() {
        let mut before = Lockout::new(LockoutPolicy::default());
        let t0 = Instant::now();
        let unix0 = 1_800_000_000;
        let a = ip("192.0.2.1");
        let b = ip("2001:db8::7");
        for _ in 0..5 {
            before.failed(a, t0);
        }
        before.failed(b, t0 + 10 * S);
        let records = before.export(t0 + 20 * S, unix0 + 20);
        assert_eq!(
            records,
            vec![
                LockoutRecord {
                    ip: a,
                    failures: 5,
                    last_failure: unix0
                },
                LockoutRecord {
                    ip: b,
                    failures: 1,
                    last_failure: unix0 + 10
                },
            ]
        );

        // A restart 60 s later, on a fresh monotonic clock.
        let t1 = Instant::now() + 1000 * S;
        let mut after = Lockout::new(LockoutPolicy::default());
        after.import(&records, t1, unix0 + 60);
        assert_eq!(after.check(a, t1), Verdict::LockedOut(240 * S));
        assert_eq!(after.check(b, t1), Verdict::Allow);
        // b's next failure is its second.
        after.failed(b, t1);
        assert_eq!(after.check(b, t1), Verdict::Wait(2 * S));
    }

    #[test]
    fn import_skips_expired_and_distrusts_a_clock_that_went_back() {
        let mut lockout = Lockout::new(LockoutPolicy::default());
        let now = Instant::now() + 1000 * S;
        let records = [
            LockoutRecord {
                ip: ip("192.0.2.1"),
                failures: 5,
                last_failure: 1_000,
            },
            LockoutRecord {
                ip: ip("192.0.2.2"),
                failures: 5,
                last_failure: 99_000,
            },
            LockoutRecord {
                ip: ip("192.0.2.3"),
                failures: 0,
                last_failure: 10_000,
            },
        ];
        lockout.import(&records, now, 10_000);
        assert_eq!(lockout.check(ip("192.0.2.1"), now), Verdict::Allow);
        assert_eq!(
            lockout.check(ip("192.0.2.2"), now),
            Verdict::LockedOut(300 * S)
        );
        assert_eq!(lockout.len(), 1);
        assert!(lockout.export(now, 10_000).len() == 1);
    }

    #[test]
    fn import_is_bounded() {
        let policy = LockoutPolicy {
            capacity: 4,
            ..LockoutPolicy::default()
        };
        let mut lockout = Lockout::new(policy);
        let records: Vec<LockoutRecord> = (0..100u32)
            .map(|i| LockoutRecord {
                ip: IpAddr::V4((0xc000_0200 + i).into()),
                failures: 1,
                last_failure: 10_000,
            })
            .collect();
        let now = Instant::now();
        lockout.import(&records, now, 10_000);
        assert_eq!(lockout.len(), 4);
    }
}
