//! Rate limit for the audit lines of connections that never logged in.
//!
//! Anyone who can reach the port can make a `connected` and a `disconnected` line; without a
//! limit they could push a real session's record out of the rotated audit files. Each address
//! gets a few such lines per window, everyone together a few more; what is left out is
//! counted and reported in one summary line per address when its window ends.

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
}

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
            };
        }
        let room = self.by_address.len() < self.limits.addresses;
        let entry = match self.by_address.get_mut(&ip) {
            Some(entry) => Some(entry),
            None if room => Some(self.by_address.entry(ip).or_insert(Window {
                start: now,
                shown: 0,
                left_out: 0,
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
        if entry.shown < self.limits.per_address && self.total.shown < self.limits.total {
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
            if entry.left_out > 0 {
                summaries.push((*ip, entry.left_out));
            }
            false
        });
        if self.untracked_left_out > 0 && now.saturating_duration_since(self.total.start) >= window
        {
            summaries.push((IpAddr::from([0, 0, 0, 0]), self.untracked_left_out));
            self.untracked_left_out = 0;
        }
        summaries.sort();
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
        assert!(limiter.allow(flooder, t + Duration::from_secs(61)));
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
    }
}
