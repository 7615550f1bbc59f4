//! When to write the state after small changes (failed-login counts): at once after a
//! quiet spell, then at most once per interval, so a flood of failures cannot wear out
//! the board's flash with one fsync each.

use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct SaveThrottle {
    interval: Duration,
    /// When the oldest unsaved change happened.
    pending_since: Option<Instant>,
    last_attempt: Option<Instant>,
}

impl SaveThrottle {
    pub fn new(interval: Duration) -> SaveThrottle {
        SaveThrottle {
            interval,
            pending_since: None,
            last_attempt: None,
        }
    }

    /// Something worth saving changed at `now`.
    pub fn mark(&mut self, now: Instant) {
        self.pending_since.get_or_insert(now);
    }

    pub fn is_pending(&self) -> bool {
        self.pending_since.is_some()
    }

    pub fn due(&self, now: Instant) -> bool {
        self.next_deadline().is_some_and(|at| now >= at)
    }

    /// When the pending change should be written; `None` when nothing is pending.
    pub fn next_deadline(&self) -> Option<Instant> {
        let since = self.pending_since?;
        Some(match self.last_attempt {
            Some(last) => since.max(last + self.interval),
            None => since,
        })
    }

    /// A save was attempted at `now`; a failed one stays pending and is retried after
    /// the interval.
    pub fn saved(&mut self, now: Instant, ok: bool) {
        self.last_attempt = Some(now);
        if ok {
            self.pending_since = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn first_change_is_due_at_once_then_spaced() {
        let t0 = Instant::now();
        let mut throttle = SaveThrottle::new(5 * S);
        assert_eq!(throttle.next_deadline(), None);
        throttle.mark(t0);
        assert!(throttle.due(t0));
        throttle.saved(t0, true);
        assert!(!throttle.is_pending());
        throttle.mark(t0 + S);
        throttle.mark(t0 + 2 * S);
        assert_eq!(throttle.next_deadline(), Some(t0 + 5 * S));
        assert!(!throttle.due(t0 + 4 * S));
        throttle.saved(t0 + 5 * S, true);
        // Quiet long enough: the next change goes out at once.
        throttle.mark(t0 + 60 * S);
        assert_eq!(throttle.next_deadline(), Some(t0 + 60 * S));
    }

    #[test]
    fn a_failed_save_is_retried_after_the_interval() {
        let t0 = Instant::now();
        let mut throttle = SaveThrottle::new(5 * S);
        throttle.mark(t0);
        throttle.saved(t0, false);
        assert!(throttle.is_pending());
        assert_eq!(throttle.next_deadline(), Some(t0 + 5 * S));
    }
}
