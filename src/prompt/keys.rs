//! Local key events → the user's answer. Enter or Y accepts, Esc or N rejects (without
//! Ctrl or Alt, so shortcuts of the UI do not answer by accident), Ctrl+Alt+End ends the
//! session. Only presses answer; repeats and releases never do.
//!
//! No accidental consent: a box answers nothing until [`Keys::shown`] says it appeared,
//! and then
//! - a key that was already down (held, or auto-repeating) answers nothing until it is
//!   released and pressed again;
//! - Accept and Reject wait [`GUARD`] after the box appeared: a user typing Enter or Y
//!   anyway does not answer a box they have not read. Ctrl+Alt+End is not held back:
//!   ending a session is always the safe way.
//!
//! Sans-IO: `now` comes in with every event.

use std::time::{Duration, Instant};

use evdev::KeyCode;

/// How long a new box ignores Accept and Reject.
pub const GUARD: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    Accept,
    Reject,
    Terminate,
}

/// Key codes evdev has (KEY_MAX + 1); higher codes are never tracked.
const CODES: usize = 0x300;

/// A fixed set of key codes: bounded whatever a device sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct KeySet([u64; CODES / 64]);

impl Default for KeySet {
    fn default() -> Self {
        KeySet([0; CODES / 64])
    }
}

impl KeySet {
    fn set(&mut self, code: u16, on: bool) {
        let code = usize::from(code);
        if code < CODES {
            let bit = 1u64 << (code % 64);
            if on {
                self.0[code / 64] |= bit;
            } else {
                self.0[code / 64] &= !bit;
            }
        }
    }

    fn has(&self, code: u16) -> bool {
        let code = usize::from(code);
        code < CODES && self.0[code / 64] & (1 << (code % 64)) != 0
    }

    fn has_any(&self, keys: [KeyCode; 2]) -> bool {
        keys.iter().any(|k| self.has(k.code()))
    }
}

/// Key state across every local keyboard, and the box it answers.
#[derive(Clone, Copy, Debug, Default)]
pub struct Keys {
    /// Keys down now, as the events (and the kernel at `shown`) said.
    down: KeySet,
    /// Keys that were down when the box appeared: nothing until released.
    stale: KeySet,
    /// When the box now showing appeared; None while none shows.
    shown_at: Option<Instant>,
}

/// evdev key values.
const RELEASE: i32 = 0;
const PRESS: i32 = 1;

impl Keys {
    /// A new box (or a new question in it) appeared at `now`; `held` are the keys the
    /// kernel says are down on the keyboards just opened.
    pub fn shown(&mut self, now: Instant, held: impl IntoIterator<Item = u16>) {
        for code in held {
            self.down.set(code, true);
        }
        self.stale = self.down;
        self.shown_at = Some(now);
    }

    /// The box went away: nothing answers until the next one.
    pub fn hidden(&mut self) {
        *self = Keys::default();
    }

    /// One EV_KEY event (`code`, `value`: 0 release, 1 press, 2 repeat) at `now`.
    pub fn key(&mut self, code: u16, value: i32, now: Instant) -> Option<Answer> {
        match value {
            PRESS => self.down.set(code, true),
            RELEASE => {
                self.down.set(code, false);
                self.stale.set(code, false);
                return None;
            }
            _ => return None,
        }
        // A press we saw no release for: still the old hold.
        if self.stale.has(code) {
            return None;
        }
        let shown_at = self.shown_at?;
        let ctrl = self
            .down
            .has_any([KeyCode::KEY_LEFTCTRL, KeyCode::KEY_RIGHTCTRL]);
        let alt = self
            .down
            .has_any([KeyCode::KEY_LEFTALT, KeyCode::KEY_RIGHTALT]);
        let answer = match KeyCode::new(code) {
            KeyCode::KEY_END | KeyCode::KEY_KP1 if ctrl && alt => return Some(Answer::Terminate),
            _ if ctrl || alt => return None,
            KeyCode::KEY_ENTER | KeyCode::KEY_KPENTER | KeyCode::KEY_Y => Answer::Accept,
            KeyCode::KEY_ESC | KeyCode::KEY_N => Answer::Reject,
            _ => return None,
        };
        (now >= shown_at + GUARD).then_some(answer)
    }

    /// Forgets the keys (a keyboard went away): its held keys never send their release.
    /// The box's guard stays as it was.
    pub fn reset(&mut self) {
        self.down = KeySet::default();
        self.stale = KeySet::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(k: KeyCode) -> u16 {
        k.code()
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A box shown at `t0` with nothing held, and a time past its guard.
    fn shown() -> (Keys, Instant) {
        let t0 = Instant::now();
        let mut keys = Keys::default();
        keys.shown(t0, []);
        (keys, t0 + GUARD)
    }

    #[test]
    fn plain_keys_answer_on_press_only() {
        let (mut keys, at) = shown();
        for (k, answer) in [
            (KeyCode::KEY_ENTER, Answer::Accept),
            (KeyCode::KEY_KPENTER, Answer::Accept),
            (KeyCode::KEY_Y, Answer::Accept),
            (KeyCode::KEY_ESC, Answer::Reject),
            (KeyCode::KEY_N, Answer::Reject),
        ] {
            assert_eq!(keys.key(code(k), 1, at), Some(answer), "{k:?}");
            assert_eq!(keys.key(code(k), 2, at), None, "repeat of {k:?}");
            assert_eq!(keys.key(code(k), 0, at), None, "release of {k:?}");
        }
        for k in [KeyCode::KEY_A, KeyCode::KEY_END, KeyCode::KEY_SPACE] {
            assert_eq!(keys.key(code(k), 1, at), None, "{k:?}");
        }
        assert_eq!(keys.key(0xFFFF, 1, at), None);
    }

    #[test]
    fn keys_of_the_first_second_and_keys_held_before_the_box_answer_nothing() {
        let t0 = Instant::now();
        let mut keys = Keys::default();
        let enter = code(KeyCode::KEY_ENTER);
        let y = code(KeyCode::KEY_Y);
        // No box yet: nothing answers, and Enter goes down while the user types.
        assert_eq!(keys.key(enter, 1, t0), None);
        // The box appears with Enter still down, and the kernel says Y is down too.
        keys.shown(t0, [y]);
        assert_eq!(
            keys.key(enter, 2, t0 + ms(1500)),
            None,
            "auto-repeat of a held key"
        );
        assert_eq!(
            keys.key(y, 1, t0 + ms(1500)),
            None,
            "a held key, its release unseen"
        );
        assert_eq!(keys.key(enter, 0, t0 + ms(100)), None);
        // Fresh presses in the first second.
        assert_eq!(keys.key(enter, 1, t0), None, "Enter at +0 ms");
        assert_eq!(keys.key(enter, 0, t0 + ms(50)), None);
        assert_eq!(keys.key(code(KeyCode::KEY_N), 1, t0 + ms(300)), None);
        assert_eq!(keys.key(y, 0, t0 + ms(400)), None);
        assert_eq!(keys.key(y, 1, t0 + ms(500)), None, "Y at +500 ms");
        assert_eq!(keys.key(enter, 1, t0 + ms(999)), None, "Enter at +999 ms");
        // Held across the second: its repeats still answer nothing.
        assert_eq!(keys.key(enter, 2, t0 + ms(1100)), None);
        assert_eq!(keys.key(enter, 0, t0 + ms(1150)), None);
        // A fresh press after the second answers.
        assert_eq!(keys.key(enter, 1, t0 + ms(1200)), Some(Answer::Accept));
        // A new question starts a new second, with what is held now stale again.
        keys.shown(t0 + ms(1300), []);
        assert_eq!(keys.key(y, 0, t0 + ms(1310)), None);
        assert_eq!(
            keys.key(enter, 1, t0 + ms(2500)),
            None,
            "held since the last box"
        );
        assert_eq!(keys.key(enter, 0, t0 + ms(2600)), None);
        assert_eq!(keys.key(y, 1, t0 + ms(2000)), None, "within the new second");
        assert_eq!(keys.key(y, 0, t0 + ms(2100)), None);
        assert_eq!(keys.key(enter, 1, t0 + ms(2700)), Some(Answer::Accept));
        // Gone: nothing answers until the next box.
        keys.hidden();
        assert_eq!(keys.key(enter, 0, t0 + ms(2800)), None);
        assert_eq!(keys.key(enter, 1, t0 + ms(9000)), None);
    }

    #[test]
    fn ctrl_alt_end_terminates_at_once_with_either_side_and_modifiers_block_answers() {
        let t0 = Instant::now();
        let mut keys = Keys::default();
        keys.shown(t0, [code(KeyCode::KEY_LEFTCTRL)]);
        assert_eq!(
            keys.key(code(KeyCode::KEY_ENTER), 1, t0 + GUARD),
            None,
            "Ctrl+Enter"
        );
        assert_eq!(keys.key(code(KeyCode::KEY_END), 1, t0), None, "Ctrl+End");
        keys.key(code(KeyCode::KEY_RIGHTALT), 1, t0);
        // Ending the session is never held back by the guard.
        assert_eq!(
            keys.key(code(KeyCode::KEY_END), 1, t0),
            Some(Answer::Terminate)
        );
        // Numpad End (KP1 with NumLock off) too.
        assert_eq!(
            keys.key(code(KeyCode::KEY_KP1), 1, t0),
            Some(Answer::Terminate)
        );
        // Both Ctrl keys down, one released: still held.
        keys.key(code(KeyCode::KEY_RIGHTCTRL), 1, t0);
        keys.key(code(KeyCode::KEY_LEFTCTRL), 0, t0);
        keys.key(code(KeyCode::KEY_END), 0, t0);
        assert_eq!(
            keys.key(code(KeyCode::KEY_END), 1, t0),
            Some(Answer::Terminate)
        );
        keys.key(code(KeyCode::KEY_RIGHTCTRL), 0, t0);
        keys.key(code(KeyCode::KEY_RIGHTALT), 0, t0);
        keys.key(code(KeyCode::KEY_END), 0, t0);
        assert_eq!(keys.key(code(KeyCode::KEY_END), 1, t0), None);
        let later = t0 + GUARD;
        assert_eq!(
            keys.key(code(KeyCode::KEY_ESC), 1, later),
            Some(Answer::Reject)
        );
        // A keyboard that went away takes its held Alt with it; the guard stays passed.
        keys.key(code(KeyCode::KEY_LEFTALT), 1, later);
        keys.reset();
        assert_eq!(
            keys.key(code(KeyCode::KEY_Y), 1, later),
            Some(Answer::Accept)
        );
    }
}
