//! Local key events → the user's answer. Enter or Y accepts, Esc or N rejects (without
//! Ctrl or Alt, so shortcuts of the UI do not answer by accident), Ctrl+Alt+End ends the
//! session. Only presses answer; repeats and releases never do.

use evdev::KeyCode;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    Accept,
    Reject,
    Terminate,
}

/// Modifier state across every local keyboard.
#[derive(Clone, Copy, Debug, Default)]
pub struct Keys {
    ctrl: u8,
    alt: u8,
}

/// evdev key values.
const RELEASE: i32 = 0;
const PRESS: i32 = 1;

impl Keys {
    /// One EV_KEY event (`code`, `value`: 0 release, 1 press, 2 repeat).
    pub fn key(&mut self, code: u16, value: i32) -> Option<Answer> {
        let key = KeyCode::new(code);
        let bit = |left| if left { 1 } else { 2 };
        let modifier = match key {
            KeyCode::KEY_LEFTCTRL | KeyCode::KEY_RIGHTCTRL => {
                Some((&mut self.ctrl, bit(key == KeyCode::KEY_LEFTCTRL)))
            }
            KeyCode::KEY_LEFTALT | KeyCode::KEY_RIGHTALT => {
                Some((&mut self.alt, bit(key == KeyCode::KEY_LEFTALT)))
            }
            _ => None,
        };
        if let Some((held, bit)) = modifier {
            match value {
                PRESS => *held |= bit,
                RELEASE => *held &= !bit,
                _ => {}
            }
            return None;
        }
        if value != PRESS {
            return None;
        }
        let (ctrl, alt) = (self.ctrl != 0, self.alt != 0);
        match key {
            KeyCode::KEY_END | KeyCode::KEY_KP1 if ctrl && alt => Some(Answer::Terminate),
            _ if ctrl || alt => None,
            KeyCode::KEY_ENTER | KeyCode::KEY_KPENTER | KeyCode::KEY_Y => Some(Answer::Accept),
            KeyCode::KEY_ESC | KeyCode::KEY_N => Some(Answer::Reject),
            _ => None,
        }
    }

    /// Forgets held modifiers (a keyboard went away, or the keyboards were closed).
    pub fn reset(&mut self) {
        *self = Keys::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(k: KeyCode) -> u16 {
        k.code()
    }

    #[test]
    fn plain_keys_answer_on_press_only() {
        let mut keys = Keys::default();
        for (k, answer) in [
            (KeyCode::KEY_ENTER, Answer::Accept),
            (KeyCode::KEY_KPENTER, Answer::Accept),
            (KeyCode::KEY_Y, Answer::Accept),
            (KeyCode::KEY_ESC, Answer::Reject),
            (KeyCode::KEY_N, Answer::Reject),
        ] {
            assert_eq!(keys.key(code(k), 1), Some(answer), "{k:?}");
            assert_eq!(keys.key(code(k), 2), None, "repeat of {k:?}");
            assert_eq!(keys.key(code(k), 0), None, "release of {k:?}");
        }
        for k in [KeyCode::KEY_A, KeyCode::KEY_END, KeyCode::KEY_SPACE] {
            assert_eq!(keys.key(code(k), 1), None, "{k:?}");
        }
        assert_eq!(keys.key(0xFFFF, 1), None);
    }

    #[test]
    fn ctrl_alt_end_terminates_with_either_side_and_modifiers_block_answers() {
        let mut keys = Keys::default();
        keys.key(code(KeyCode::KEY_LEFTCTRL), 1);
        assert_eq!(keys.key(code(KeyCode::KEY_ENTER), 1), None, "Ctrl+Enter");
        assert_eq!(keys.key(code(KeyCode::KEY_END), 1), None, "Ctrl+End");
        keys.key(code(KeyCode::KEY_RIGHTALT), 1);
        assert_eq!(keys.key(code(KeyCode::KEY_END), 1), Some(Answer::Terminate));
        // Numpad End (KP1 with NumLock off) too.
        assert_eq!(keys.key(code(KeyCode::KEY_KP1), 1), Some(Answer::Terminate));
        // Both Ctrl keys down, one released: still held.
        keys.key(code(KeyCode::KEY_RIGHTCTRL), 1);
        keys.key(code(KeyCode::KEY_LEFTCTRL), 0);
        assert_eq!(keys.key(code(KeyCode::KEY_END), 1), Some(Answer::Terminate));
        keys.key(code(KeyCode::KEY_RIGHTCTRL), 0);
        keys.key(code(KeyCode::KEY_RIGHTALT), 0);
        assert_eq!(keys.key(code(KeyCode::KEY_END), 1), None);
        assert_eq!(keys.key(code(KeyCode::KEY_ESC), 1), Some(Answer::Reject));
        keys.key(code(KeyCode::KEY_LEFTALT), 1);
        keys.reset();
        assert_eq!(keys.key(code(KeyCode::KEY_Y), 1), Some(Answer::Accept));
    }
}
