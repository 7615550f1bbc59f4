//! The input gate: admin input reaches the sink only while policy allows it.

use super::{InputEvent, InputSink, LockState};

/// Passes input to `inner` while open. Closing releases everything pressed; input that arrives
/// while closed is dropped, never queued, so nothing replays when it opens again.
#[derive(Debug)]
pub struct Gated<S: InputSink> {
    inner: S,
    open: bool,
    dropped: u64,
}

impl<S: InputSink> Gated<S> {
    pub fn new(inner: S, open: bool) -> Self {
        Gated {
            inner,
            open,
            dropped: 0,
        }
    }

    pub fn set_open(&mut self, open: bool) {
        if self.open == open {
            return;
        }
        self.open = open;
        if open {
            if self.dropped > 0 {
                crate::debug!("input: gate open; {} events were dropped", self.dropped);
            }
            self.dropped = 0;
        } else {
            self.inner.release_all();
        }
    }

    pub fn is_open(&self) -> bool {
        self.open
    }

    /// Events dropped since the gate last closed.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    pub fn inner(&self) -> &S {
        &self.inner
    }

    pub fn inner_mut(&mut self) -> &mut S {
        &mut self.inner
    }
}

impl<S: InputSink> InputSink for Gated<S> {
    fn handle(&mut self, event: InputEvent) {
        if self.open {
            self.inner.handle(event);
        } else {
            self.dropped = self.dropped.saturating_add(1);
        }
    }

    fn release_all(&mut self) {
        self.inner.release_all();
    }

    /// Geometry, not input: the pointer range stays right while the gate is closed.
    fn set_screen_size(&mut self, width: u16, height: u16) {
        self.inner.set_screen_size(width, height);
    }

    fn take_indicators(&mut self) -> Option<LockState> {
        self.inner.take_indicators()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::translate::{Output, RawEvent, Translator};
    use crate::input::{MouseButton, RecordingSink};
    use evdev::KeyCode;

    /// The translator behind a sink, keeping what it would write.
    struct Translating {
        translator: Translator,
        out: Output,
        screen: Option<(u16, u16)>,
    }

    impl InputSink for Translating {
        fn handle(&mut self, event: InputEvent) {
            self.translator.handle(event, &mut self.out);
        }
        fn release_all(&mut self) {
            self.translator.release_all(&mut self.out);
        }
        fn set_screen_size(&mut self, width: u16, height: u16) {
            self.screen = Some((width, height));
        }
    }

    fn key(scancode: u8, pressed: bool) -> InputEvent {
        InputEvent::Key {
            scancode,
            extended: false,
            extended1: false,
            pressed,
        }
    }

    #[test]
    fn closed_gate_drops_and_open_gate_passes() {
        let sink = RecordingSink::default();
        let mut gate = Gated::new(sink.clone(), false);
        gate.handle(key(0x1e, true));
        assert_eq!(gate.dropped(), 1);
        gate.set_open(true);
        assert_eq!(gate.dropped(), 0);
        gate.handle(key(0x30, true));
        let events = sink.events.lock().map(|e| e.clone()).unwrap_or_default();
        assert_eq!(events, [key(0x30, true)]);
        // Closing releases; closing again does not release twice.
        gate.set_open(false);
        gate.set_open(false);
        let releases = sink.releases.lock().map(|r| *r).unwrap_or_default();
        assert_eq!(releases, 1);
        assert!(!gate.is_open());
    }

    #[test]
    fn closing_releases_what_is_held_and_nothing_replays() {
        let mut gate = Gated::new(
            Translating {
                translator: Translator::new(800, 600),
                out: Output::default(),
                screen: None,
            },
            true,
        );
        gate.handle(key(0x1d, true));
        gate.handle(InputEvent::MouseButton {
            button: MouseButton::Left,
            pressed: true,
            x: 5,
            y: 5,
        });
        gate.inner_mut().out.clear();
        gate.set_open(false);
        let out = &gate.inner().out;
        assert_eq!(
            out.keyboard,
            [RawEvent::key(KeyCode::KEY_LEFTCTRL, 0), RawEvent::SYN]
        );
        assert_eq!(
            out.pointer,
            [RawEvent::key(KeyCode::BTN_LEFT, 0), RawEvent::SYN]
        );
        gate.inner_mut().out.clear();

        // While closed: a press is dropped, the screen size still passes.
        gate.handle(key(0x1e, true));
        gate.set_screen_size(1024, 768);
        assert!(gate.inner().out.is_empty());
        assert_eq!(gate.inner().screen, Some((1024, 768)));

        // Reopened: the releases of keys held across the gate find nothing to release.
        gate.set_open(true);
        gate.handle(key(0x1e, false));
        gate.handle(key(0x1d, false));
        assert!(gate.inner().out.is_empty());
        gate.handle(key(0x1e, true));
        assert_eq!(
            gate.inner().out.keyboard,
            [RawEvent::key(KeyCode::KEY_A, 1), RawEvent::SYN]
        );
    }
}
