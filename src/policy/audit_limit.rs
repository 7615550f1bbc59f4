//! Rate limit for the audit lines of connections that never logged in.
//!
//! Anyone who can reach the port can make a `connected` and a `disconnected` line; without a
//! limit they could push a real session's record out of the rotated audit files. Each address
//! gets a few such lines per window, everyone together a few more; what is left out is
//! counted and reported in one summary line per address when its window ends. An address
//! that goes on flooding gets one line per window after that, so however long a flood
//! lasts it adds about two lines a window.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuditLimits {
    pub window: Duration,
    pub per_address: u32,
    pub total: u32,
    /// Addresses tracked at once; beyond that new ones share the total only.
    pub addresses: usize,
}

impl Default for AuditLimits {
    fn default() -> Self {
        AuditLimits {
            window: Duration::from_secs(60),
            per_address: 10,
            total: 60,
            addresses: 1024,
        }
    }
}

struct Window {
    start: Instant,
    shown: u32,
    left_out: u32,
    /// Its last window left lines out: one line per window now.
    flooding: bool,
}

/// Summary lines per window at most (the rest of the addresses share the last one).
const MAX_SUMMARIES: usize = 8;

pub struct AuditLimiter {
    limits: AuditLimits,
    by_address: HashMap<IpAddr, Window>,
    total: Window,
    /// Left out from addresses that found no room in `by_address`.
    untracked_left_out: u32,
}

impl AuditLimiter {
    pub fn new(limits: AuditLimits, now: Instant) -> Self {
        AuditLimiter {
            limits,
            by_address: HashMap::new(),
            total: Window {
                start: now,
                shown: 0,
                left_out: 0,
                flooding: false,
            },
            untracked_left_out: 0,
        }
    }

    /// May one more unauthenticated line about `ip` be written now?
    pub fn allow(&mut self, ip: IpAddr, now: Instant) -> bool {
        let ip = super::canonical(ip);
        let window = self.limits.window;
        if now.saturating_duration_since(self.total.start) >= window {
            self.total = Window {
                start: now,
                shown: 0,
                left_out: 0,
                flooding: false,
            };
        }
        let room = self.by_address.len() < self.limits.addresses;
        let entry = match self.by_address.get_mut(&ip) {
            Some(entry) => Some(entry),
            None if room => Some(self.by_address.entry(ip).or_insert(Window {
                start: now,
                shown: 0,
                left_out: 0,
                flooding: false,
            })),
            None => None,
        };
        let Some(entry) = entry else {
            if self.total.shown < self.limits.total {
                self.total.shown += 1;
                return true;
            }
            self.untracked_left_out = self.untracked_left_out.saturating_add(1);
            return false;
        };
        let allowance = if entry.flooding {
            1
        } else {
            self.limits.per_address
        };
        if entry.shown < allowance && self.total.shown < self.limits.total {
            entry.shown += 1;
            self.total.shown += 1;
            true
        } else {
            entry.left_out = entry.left_out.saturating_add(1);
            self.total.left_out = self.total.left_out.saturating_add(1);
            false
        }
    }

    /// Windows that ended: (address, lines left out) for those that left any out; the
    /// untracked addresses together as the unspecified address.
    pub fn expired(&mut self, now: Instant) -> Vec<(IpAddr, u32)> {
        let window = self.limits.window;
        let mut summaries = Vec::new();
        self.by_address.retain(|ip, entry| {
            if now.saturating_duration_since(entry.start) < window {
                return true;
            }
            if entry.left_out == 0 {
                return false;
            }
            summaries.push((*ip, entry.left_out));
            *entry = Window {
                start: now,
                shown: 0,
                left_out: 0,
                flooding: true,
            };
            true
        });
        if self.untracked_left_out > 0 && now.saturating_duration_since(self.total.start) >= window
        {
            summaries.push((IpAddr::from([0, 0, 0, 0]), self.untracked_left_out));
            self.untracked_left_out = 0;
        }
        // Many flooding addresses: one line each for the worst, one for all the others.
        summaries.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        if summaries.len() > MAX_SUMMARIES {
            let rest: u32 = summaries
                .drain(MAX_SUMMARIES - 1..)
                .fold(0u32, |sum, (_, n)| sum.saturating_add(n));
            summaries.push((IpAddr::from([0, 0, 0, 0]), rest));
        }
        summaries
    }

    /// When the next window with lines left out ends (None: nothing to report).
    pub fn next_deadline(&self) -> Option<Instant> {
        let untracked = (self.untracked_left_out > 0).then_some(&self.total);
        self.by_address
            .values()
            .filter(|w| w.left_out > 0)
            .chain(untracked)
            .map(|w| w.start + self.limits.window)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_from_one_address_is_summarised() {
        let t = Instant::now();
        let mut limiter = AuditLimiter::new(AuditLimits::default(), t);
        let flooder = IpAddr::from([192, 0, 2, 1]);
        let shown = (0..10_000).filter(|_| limiter.allow(flooder, t)).count();
        assert_eq!(shown, 10);
        // Another address still gets its lines.
        assert!(limiter.allow(IpAddr::from([192, 0, 2, 2]), t));
        assert_eq!(limiter.expired(t + Duration::from_secs(59)), vec![]);
        assert_eq!(limiter.next_deadline(), Some(t + Duration::from_secs(60)));
        assert_eq!(
            limiter.expired(t + Duration::from_secs(60)),
            vec![(flooder, 9_990)]
        );
        assert_eq!(limiter.next_deadline(), None);
        // Still flooding: one line a window from now on, and one summary.
        let later = t + Duration::from_secs(61);
        assert_eq!(
            (0..1000).filter(|_| limiter.allow(flooder, later)).count(),
            1
        );
        assert_eq!(
            limiter.expired(t + Duration::from_secs(121)),
            vec![(flooder, 999)]
        );
        // A quiet window ends the flood's penalty.
        assert_eq!(limiter.expired(t + Duration::from_secs(181)), vec![]);
        let quiet = t + Duration::from_secs(182);
        assert_eq!(
            (0..20).filter(|_| limiter.allow(flooder, quiet)).count(),
            10
        );
    }

    #[test]
    fn many_addresses_share_a_total() {
        let t = Instant::now();
        let limits = AuditLimits {
            addresses: 4,
            total: 6,
            ..AuditLimits::default()
        };
        let mut limiter = AuditLimiter::new(limits, t);
        let shown = (0..100u8)
            .filter(|&i| limiter.allow(IpAddr::from([198, 51, 100, i]), t))
            .count();
        assert_eq!(shown, 6);
        let summary = limiter.expired(t + Duration::from_secs(60));
        let left_out: u32 = summary.iter().map(|(_, n)| n).sum();
        assert_eq!(left_out, 94);
        assert!(summary.len() <= MAX_SUMMARIES, "{summary:?}");
    }

    #[test]
    fn a_flood_from_a_thousand_addresses_writes_a_bounded_number_of_lines() {
        let t = Instant::now();
        let mut limiter = AuditLimiter::new(AuditLimits::default(), t);
        let mut lines = 0;
        for minute in 0..10u64 {
            let now = t + Duration::from_secs(60 * minute);
            lines += limiter.expired(now).len();
            for a in 0..1024u32 {
                let ip = IpAddr::from((0x0A00_0000 + a).to_be_bytes());
                lines += usize::from(limiter.allow(ip, now));
                lines += usize::from(limiter.allow(ip, now));
            }
        }
        // At most the total plus the summaries a window, however many addresses.
        assert!(lines <= 10 * (60 + MAX_SUMMARIES), "{lines} lines");
    }
}
