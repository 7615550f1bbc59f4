//! The sans-IO core of the uinput sink: [`InputEvent`]s in, Linux input events out.
//!
//! The translator owns every piece of input state: which keys and buttons it pressed (so it can
//! always release them), the lock-key LEDs as the kernel last reported them, the Pause prefix, the
//! Hangul/Hanja auto-release, the pointer's axis range and the wheel remainders. Each frame it
//! writes ends with `SYN_REPORT`. The device code only copies [`Output`] to the two devices.

use evdev::{AbsoluteAxisCode, EventType, KeyCode, LedCode, RelativeAxisCode, SynchronizationCode};

use super::layout::Layout;
use super::{InputEvent, LockState, MouseButton, keymap};

pub const EV_SYN: u16 = EventType::SYNCHRONIZATION.0;
pub const EV_KEY: u16 = EventType::KEY.0;
pub const EV_REL: u16 = EventType::RELATIVE.0;
pub const EV_ABS: u16 = EventType::ABSOLUTE.0;
pub const EV_LED: u16 = EventType::LED.0;

/// Key values in `EV_KEY` events.
pub const RELEASED: i32 = 0;
pub const PRESSED: i32 = 1;
/// A press of a key that is already down: clients repeat keys themselves (typematic), and the
/// kernel ignores a second "pressed" for a key it holds, so a repeat must say so.
pub const REPEATED: i32 = 2;

/// Windows and Linux both count 120 wheel units per notch.
const UNITS_PER_NOTCH: i32 = 120;

/// One Linux input event as `(type, code, value)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawEvent {
    pub kind: u16,
    pub code: u16,
    pub value: i32,
}

impl RawEvent {
    pub const SYN: RawEvent = RawEvent {
        kind: EV_SYN,
        code: SynchronizationCode::SYN_REPORT.0,
        value: 0,
    };

    pub fn key(key: KeyCode, value: i32) -> Self {
        RawEvent {
            kind: EV_KEY,
            code: key.code(),
            value,
        }
    }
}

/// Events for each device, frames closed by [`RawEvent::SYN`]; cleared by the writer.
#[derive(Debug, Default)]
pub struct Output {
    pub keyboard: Vec<RawEvent>,
    pub pointer: Vec<RawEvent>,
}

impl Output {
    pub fn clear(&mut self) {
        self.keyboard.clear();
        self.pointer.clear();
    }

    pub fn is_empty(&self) -> bool {
        self.keyboard.is_empty() && self.pointer.is_empty()
    }
}

/// Where the E1 Pause sequence (Ctrl with E1, then Num Lock) stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pause {
    Idle,
    /// E1 1D came; a plain 45 press now means Pause.
    Armed,
    /// KEY_PAUSE is down until the plain 45 release.
    Down,
}

#[derive(Debug)]
pub struct Translator {
    screen: (u16, u16),
    axis_max: (i32, i32),
    /// Keys we pressed, oldest first; released newest first.
    keys: Vec<KeyCode>,
    buttons: Vec<KeyCode>,
    /// One-shot keys tapped on a press whose release is still to come (and be ignored).
    one_shot_pending: Vec<KeyCode>,
    pause: Pause,
    leds: LockState,
    leds_changed: bool,
    last_x: Option<i32>,
    last_y: Option<i32>,
    /// Hi-res units not yet worth a whole notch: vertical, horizontal.
    wheel_rest: [i32; 2],
    unicode_dropped: bool,
    /// The thin client's layout, for characters typed as Unicode.
    layout: Layout,
}

impl Translator {
    /// A translator for a pointer whose axis range matches this screen.
    pub fn new(width: u16, height: u16) -> Self {
        Translator {
            screen: (width.max(2), height.max(2)),
            axis_max: Self::axis_for(width, height),
            keys: Vec::new(),
            buttons: Vec::new(),
            one_shot_pending: Vec::new(),
            pause: Pause::Idle,
            leds: LockState::default(),
            leds_changed: false,
            last_x: None,
            last_y: None,
            wheel_rest: [0; 2],
            unicode_dropped: false,
            layout: Layout::us(),
        }
    }

    /// Characters typed as Unicode are typed with this layout's keys from now on.
    pub fn set_layout(&mut self, layout: Layout) {
        self.layout = layout;
    }

    /// The axis maxima (minimum 0) that make one axis unit one pixel of this screen.
    pub fn axis_for(width: u16, height: u16) -> (i32, i32) {
        // min < max must hold, so a screen is at least 2 pixels each way.
        (i32::from(width.max(2)) - 1, i32::from(height.max(2)) - 1)
    }

    pub fn screen_size(&self) -> (u16, u16) {
        self.screen
    }

    pub fn axis_max(&self) -> (i32, i32) {
        self.axis_max
    }

    pub fn pressed_keys(&self) -> &[KeyCode] {
        &self.keys
    }

    pub fn pressed_buttons(&self) -> &[KeyCode] {
        &self.buttons
    }

    pub fn lock_state(&self) -> LockState {
        self.leds
    }

    /// Records the desktop size; true when the pointer's axis range should follow it.
    pub fn set_screen_size(&mut self, width: u16, height: u16) -> bool {
        if width == 0 || height == 0 {
            return false;
        }
        self.screen = (width.max(2), height.max(2));
        Self::axis_for(width, height) != self.axis_max
    }

    /// Lifts every pointer button, before the pointer device goes away.
    pub fn release_pointer(&mut self, out: &mut Output) {
        if self.buttons.is_empty() {
            return;
        }
        for button in self.buttons.drain(..).rev() {
            out.pointer.push(RawEvent::key(button, RELEASED));
        }
        out.pointer.push(RawEvent::SYN);
    }

    /// A new pointer device with this range replaced the old one: nothing pressed, position unknown.
    pub fn pointer_replaced(&mut self, axis_max: (i32, i32)) {
        self.axis_max = axis_max;
        self.buttons.clear();
        self.last_x = None;
        self.last_y = None;
        self.wheel_rest = [0; 2];
    }

    /// An `EV_LED` event the kernel wrote back to the keyboard device.
    pub fn led_feedback(&mut self, code: u16, on: bool) {
        let mut leds = self.leds;
        match LedCode(code) {
            LedCode::LED_CAPSL => leds.caps = on,
            LedCode::LED_NUML => leds.num = on,
            LedCode::LED_SCROLLL => leds.scroll = on,
            LedCode::LED_KANA => leds.kana = on,
            _ => return,
        }
        if leds != self.leds {
            self.leds = leds;
            self.leds_changed = true;
        }
    }

    /// The LEDs, if the kernel changed them since the last call (not counting our own syncs).
    pub fn take_indicators(&mut self) -> Option<LockState> {
        std::mem::take(&mut self.leds_changed).then_some(self.leds)
    }

    pub fn handle(&mut self, event: InputEvent, out: &mut Output) {
        match event {
            InputEvent::Key {
                scancode,
                extended,
                extended1,
                pressed,
            } => self.key(scancode, extended, extended1, pressed, out),
            InputEvent::Unicode { code, pressed } => self.unicode(code, pressed, out),
            InputEvent::Sync {
                scroll,
                num,
                caps,
                kana: _,
            } => {
                // Kana has an LED but no Linux key that toggles it: nothing to tap.
                self.sync(KeyCode::KEY_CAPSLOCK, caps, |l| &mut l.caps, out);
                self.sync(KeyCode::KEY_NUMLOCK, num, |l| &mut l.num, out);
                self.sync(KeyCode::KEY_SCROLLLOCK, scroll, |l| &mut l.scroll, out);
            }
            InputEvent::MouseMove { x, y } => {
                self.position(x, y, &mut out.pointer);
                close_frame(&mut out.pointer);
            }
            InputEvent::MouseButton {
                button,
                pressed,
                x,
                y,
            } => {
                self.position(x, y, &mut out.pointer);
                self.button(button_key(button), pressed, &mut out.pointer);
                close_frame(&mut out.pointer);
            }
            InputEvent::Wheel { vertical, delta } => self.wheel(vertical, delta, &mut out.pointer),
        }
    }

    /// Releases every key and button still down and forgets half-finished sequences.
    pub fn release_all(&mut self, out: &mut Output) {
        if !self.keys.is_empty() {
            for key in self.keys.drain(..).rev() {
                out.keyboard.push(RawEvent::key(key, RELEASED));
            }
            out.keyboard.push(RawEvent::SYN);
        }
        self.release_pointer(out);
        self.pause = Pause::Idle;
        self.one_shot_pending.clear();
        self.wheel_rest = [0; 2];
        // A new session may log the dropped characters again.
        self.unicode_dropped = false;
    }

    fn key(
        &mut self,
        scancode: u8,
        extended: bool,
        extended1: bool,
        pressed: bool,
        out: &mut Output,
    ) {
        if extended1 {
            // E1 only ever prefixes Pause: its Ctrl half arms, the Num Lock half fires.
            if scancode == 0x1d && pressed && self.pause == Pause::Idle {
                self.pause = Pause::Armed;
            }
            return;
        }
        if scancode == 0x45 && !extended {
            match (self.pause, pressed) {
                (Pause::Armed | Pause::Down, true) => {
                    self.pause = Pause::Down;
                    self.press(KeyCode::KEY_PAUSE, out);
                    return;
                }
                (Pause::Down, false) => {
                    self.pause = Pause::Idle;
                    self.release(KeyCode::KEY_PAUSE, out);
                    return;
                }
                _ => {}
            }
        }
        if self.pause == Pause::Armed {
            self.pause = Pause::Idle;
        }
        if keymap::is_fake_shift(scancode, extended) {
            return;
        }
        let Some(key) = keymap::lookup(scancode, extended) else {
            crate::debug!("input: unmapped scancode {scancode:#04x} extended {extended}");
            return;
        };
        if keymap::is_one_shot(key) {
            // These keys send no release (or one some clients add): tap on the first half seen.
            let pending = self.one_shot_pending.iter().position(|&k| k == key);
            match (pressed, pending) {
                (true, _) => {
                    self.tap(key, out);
                    if pending.is_none() {
                        self.one_shot_pending.push(key);
                    }
                }
                (false, Some(index)) => {
                    self.one_shot_pending.remove(index);
                }
                (false, None) => self.tap(key, out),
            }
            return;
        }
        if pressed {
            self.press(key, out);
        } else {
            self.release(key, out);
        }
    }

    fn press(&mut self, key: KeyCode, out: &mut Output) {
        let value = if self.keys.contains(&key) {
            REPEATED
        } else {
            self.keys.push(key);
            PRESSED
        };
        out.keyboard.push(RawEvent::key(key, value));
        out.keyboard.push(RawEvent::SYN);
    }

    /// A release of a key we never pressed (pressed before the gate opened, or lost) is dropped.
    fn release(&mut self, key: KeyCode, out: &mut Output) {
        if let Some(index) = self.keys.iter().position(|&k| k == key) {
            self.keys.remove(index);
            out.keyboard.push(RawEvent::key(key, RELEASED));
            out.keyboard.push(RawEvent::SYN);
        }
    }

    /// Press and release, in two frames; a key the admin holds gets a repeat instead.
    fn tap(&mut self, key: KeyCode, out: &mut Output) {
        if self.keys.contains(&key) {
            out.keyboard.push(RawEvent::key(key, REPEATED));
            out.keyboard.push(RawEvent::SYN);
            return;
        }
        for value in [PRESSED, RELEASED] {
            out.keyboard.push(RawEvent::key(key, value));
            out.keyboard.push(RawEvent::SYN);
        }
    }

    fn unicode(&mut self, code: u16, pressed: bool, out: &mut Output) {
        // Typed whole on the press, so the release has nothing left to do and nothing sticks.
        if !pressed {
            return;
        }
        let typed = char::from_u32(u32::from(code)).and_then(|ch| self.layout.key_for(ch));
        let Some((key, mods)) = typed else {
            if !std::mem::replace(&mut self.unicode_dropped, true) {
                crate::warn!(
                    "input: the client types characters the {} layout has no key for (first U+{code:04X}); they are dropped this session",
                    self.layout.name()
                );
            }
            return;
        };
        let mut shift = mods.shift;
        if self.leds.caps && self.layout.caps_affects(key) {
            shift = !shift;
        }
        if self.keys.contains(&key) {
            self.tap(key, out);
            return;
        }
        let held: Vec<KeyCode> = self
            .keys
            .iter()
            .copied()
            .filter(|&k| k == KeyCode::KEY_LEFTSHIFT || k == KeyCode::KEY_RIGHTSHIFT)
            .collect();
        // Put Shift the way the character needs it, type, then put it back.
        let (before, after) = match (shift, held.is_empty()) {
            (true, true) => (
                vec![(KeyCode::KEY_LEFTSHIFT, PRESSED)],
                vec![(KeyCode::KEY_LEFTSHIFT, RELEASED)],
            ),
            (false, false) => (
                held.iter().map(|&k| (k, RELEASED)).collect(),
                held.iter().map(|&k| (k, PRESSED)).collect(),
            ),
            _ => (Vec::new(), Vec::new()),
        };
        // AltGr for the third and fourth levels, unless the admin holds it already.
        let altgr = mods.altgr && !self.keys.contains(&KeyCode::KEY_RIGHTALT);
        let (mut before, mut after) = (before, after);
        if altgr {
            before.push((KeyCode::KEY_RIGHTALT, PRESSED));
            after.insert(0, (KeyCode::KEY_RIGHTALT, RELEASED));
        }
        for frame in [before, vec![(key, PRESSED)], vec![(key, RELEASED)], after] {
            if frame.is_empty() {
                continue;
            }
            for (k, value) in frame {
                out.keyboard.push(RawEvent::key(k, value));
            }
            out.keyboard.push(RawEvent::SYN);
        }
    }

    fn sync(
        &mut self,
        lock_key: KeyCode,
        wanted: bool,
        led: impl Fn(&mut LockState) -> &mut bool,
        out: &mut Output,
    ) {
        let current = led(&mut self.leds);
        if *current == wanted {
            return;
        }
        // Assume the tap works; the kernel's LED report corrects us if it did not.
        *current = wanted;
        self.tap(lock_key, out);
    }

    fn position(&mut self, x: u16, y: u16, frame: &mut Vec<RawEvent>) {
        let x = scale(x, self.screen.0, self.axis_max.0);
        let y = scale(y, self.screen.1, self.axis_max.1);
        for (last, value, axis) in [
            (&mut self.last_x, x, AbsoluteAxisCode::ABS_X),
            (&mut self.last_y, y, AbsoluteAxisCode::ABS_Y),
        ] {
            if *last != Some(value) {
                *last = Some(value);
                frame.push(RawEvent {
                    kind: EV_ABS,
                    code: axis.0,
                    value,
                });
            }
        }
    }

    fn button(&mut self, button: KeyCode, pressed: bool, frame: &mut Vec<RawEvent>) {
        let index = self.buttons.iter().position(|&b| b == button);
        match (pressed, index) {
            (true, None) => {
                self.buttons.push(button);
                frame.push(RawEvent::key(button, PRESSED));
            }
            (false, Some(index)) => {
                self.buttons.remove(index);
                frame.push(RawEvent::key(button, RELEASED));
            }
            // A second press or a stray release changes nothing.
            _ => {}
        }
    }

    /// Hi-res units as they come, legacy notches once 120 units add up, in one frame.
    fn wheel(&mut self, vertical: bool, delta: i16, frame: &mut Vec<RawEvent>) {
        if delta == 0 {
            return;
        }
        let (slot, hi_res, notch) = if vertical {
            (
                0,
                RelativeAxisCode::REL_WHEEL_HI_RES,
                RelativeAxisCode::REL_WHEEL,
            )
        } else {
            (
                1,
                RelativeAxisCode::REL_HWHEEL_HI_RES,
                RelativeAxisCode::REL_HWHEEL,
            )
        };
        let delta = i32::from(delta);
        let rest = &mut self.wheel_rest[slot];
        // A turn the other way starts a new notch, as the kernel's HID driver does.
        if (*rest > 0 && delta < 0) || (*rest < 0 && delta > 0) {
            *rest = 0;
        }
        *rest += delta;
        let notches = *rest / UNITS_PER_NOTCH;
        *rest -= notches * UNITS_PER_NOTCH;
        frame.push(RawEvent {
            kind: EV_REL,
            code: hi_res.0,
            value: delta,
        });
        if notches != 0 {
            frame.push(RawEvent {
                kind: EV_REL,
                code: notch.0,
                value: notches,
            });
        }
        frame.push(RawEvent::SYN);
    }
}

/// Desktop pixel → axis value; positions past the edge land on the edge.
fn scale(position: u16, screen_len: u16, axis_max: i32) -> i32 {
    let screen_max = i64::from(screen_len.max(2) - 1);
    let axis_max = i64::from(axis_max.max(1));
    let position = i64::from(position).min(screen_max);
    let value = (position * axis_max + screen_max / 2) / screen_max;
    i32::try_from(value).unwrap_or(i32::MAX)
}

fn button_key(button: MouseButton) -> KeyCode {
    match button {
        MouseButton::Left => KeyCode::BTN_LEFT,
        MouseButton::Right => KeyCode::BTN_RIGHT,
        MouseButton::Middle => KeyCode::BTN_MIDDLE,
        // Linux calls the back button "side" and the forward button "extra".
        MouseButton::Extra1 => KeyCode::BTN_SIDE,
        MouseButton::Extra2 => KeyCode::BTN_EXTRA,
    }
}

/// Ends a pointer frame if anything went into it since the last `SYN_REPORT`.
fn close_frame(frame: &mut Vec<RawEvent>) {
    if frame.last().is_some_and(|event| *event != RawEvent::SYN) {
        frame.push(RawEvent::SYN);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SYN: RawEvent = RawEvent::SYN;

    fn key(key: KeyCode, value: i32) -> RawEvent {
        RawEvent::key(key, value)
    }

    fn abs(axis: AbsoluteAxisCode, value: i32) -> RawEvent {
        RawEvent {
            kind: EV_ABS,
            code: axis.0,
            value,
        }
    }

    fn rel(axis: RelativeAxisCode, value: i32) -> RawEvent {
        RawEvent {
            kind: EV_REL,
            code: axis.0,
            value,
        }
    }

    fn scancode(scancode: u8, extended: bool, pressed: bool) -> InputEvent {
        InputEvent::Key {
            scancode,
            extended,
            extended1: false,
            pressed,
        }
    }

    fn e1(scancode: u8, pressed: bool) -> InputEvent {
        InputEvent::Key {
            scancode,
            extended: false,
            extended1: true,
            pressed,
        }
    }

    fn sync(caps: bool, num: bool, scroll: bool) -> InputEvent {
        InputEvent::Sync {
            scroll,
            num,
            caps,
            kana: false,
        }
    }

    /// Runs events through a fresh 1024x768 translator; returns (keyboard, pointer).
    fn run(t: &mut Translator, events: &[InputEvent]) -> (Vec<RawEvent>, Vec<RawEvent>) {
        let mut out = Output::default();
        for &event in events {
            t.handle(event, &mut out);
        }
        (out.keyboard, out.pointer)
    }

    fn keyboard(events: &[InputEvent]) -> Vec<RawEvent> {
        run(&mut Translator::new(1024, 768), events).0
    }

    fn pointer(events: &[InputEvent]) -> Vec<RawEvent> {
        run(&mut Translator::new(1024, 768), events).1
    }

    #[test]
    fn plain_key_press_and_release() {
        let got = keyboard(&[scancode(0x1e, false, true), scancode(0x1e, false, false)]);
        assert_eq!(
            got,
            [key(KeyCode::KEY_A, 1), SYN, key(KeyCode::KEY_A, 0), SYN]
        );
    }

    #[test]
    fn extended_keys_are_other_keys() {
        let got = keyboard(&[
            scancode(0x1d, true, true),
            scancode(0x1d, false, true),
            scancode(0x47, true, true),
            scancode(0x47, false, true),
        ]);
        assert_eq!(
            got,
            [
                key(KeyCode::KEY_RIGHTCTRL, 1),
                SYN,
                key(KeyCode::KEY_LEFTCTRL, 1),
                SYN,
                key(KeyCode::KEY_HOME, 1),
                SYN,
                key(KeyCode::KEY_KP7, 1),
                SYN,
            ]
        );
    }

    #[test]
    fn held_key_repeats_and_stray_release_is_dropped() {
        let got = keyboard(&[
            scancode(0x1e, false, true),
            scancode(0x1e, false, true),
            scancode(0x1e, false, false),
            scancode(0x1e, false, false),
            scancode(0x30, false, false),
        ]);
        assert_eq!(
            got,
            [
                key(KeyCode::KEY_A, 1),
                SYN,
                key(KeyCode::KEY_A, 2),
                SYN,
                key(KeyCode::KEY_A, 0),
                SYN,
            ]
        );
    }

    #[test]
    fn unmapped_scancodes_are_dropped() {
        assert!(keyboard(&[scancode(0x55, false, true), scancode(0x01, true, true)]).is_empty());
    }

    #[test]
    fn print_screen_is_sysrq() {
        let got = keyboard(&[scancode(0x37, true, true), scancode(0x37, true, false)]);
        assert_eq!(
            got,
            [
                key(KeyCode::KEY_SYSRQ, 1),
                SYN,
                key(KeyCode::KEY_SYSRQ, 0),
                SYN
            ]
        );
    }

    #[test]
    fn pause_is_pause_and_never_num_lock_or_ctrl() {
        // mstsc's order: Ctrl(E1) down, 45 down, Ctrl(E1) up, 45 up.
        let mut t = Translator::new(1024, 768);
        let got = run(
            &mut t,
            &[
                e1(0x1d, true),
                scancode(0x45, false, true),
                e1(0x1d, false),
                scancode(0x45, false, false),
            ],
        )
        .0;
        assert_eq!(
            got,
            [
                key(KeyCode::KEY_PAUSE, 1),
                SYN,
                key(KeyCode::KEY_PAUSE, 0),
                SYN
            ]
        );
        assert!(t.pressed_keys().is_empty());
        assert_eq!(t.lock_state(), LockState::default());
        // Afterwards a plain 45 is Num Lock again.
        let got = run(
            &mut t,
            &[scancode(0x45, false, true), scancode(0x45, false, false)],
        )
        .0;
        assert_eq!(
            got,
            [
                key(KeyCode::KEY_NUMLOCK, 1),
                SYN,
                key(KeyCode::KEY_NUMLOCK, 0),
                SYN
            ]
        );
    }

    #[test]
    fn pause_in_the_other_order_and_ctrl_break() {
        let got = keyboard(&[
            e1(0x1d, true),
            e1(0x1d, false),
            scancode(0x45, false, true),
            scancode(0x45, false, false),
            scancode(0x46, true, true),
            scancode(0x46, true, false),
        ]);
        assert_eq!(
            got,
            [
                key(KeyCode::KEY_PAUSE, 1),
                SYN,
                key(KeyCode::KEY_PAUSE, 0),
                SYN,
                key(KeyCode::KEY_PAUSE, 1),
                SYN,
                key(KeyCode::KEY_PAUSE, 0),
                SYN,
            ]
        );
    }

    #[test]
    fn a_lone_e1_prefix_does_not_swallow_a_later_num_lock() {
        let got = keyboard(&[
            e1(0x1d, true),
            scancode(0x1e, false, true),
            scancode(0x45, false, true),
        ]);
        assert_eq!(
            got,
            [
                key(KeyCode::KEY_A, 1),
                SYN,
                key(KeyCode::KEY_NUMLOCK, 1),
                SYN
            ]
        );
    }

    #[test]
    fn pause_released_by_release_all() {
        let mut t = Translator::new(1024, 768);
        run(&mut t, &[e1(0x1d, true), scancode(0x45, false, true)]);
        let mut out = Output::default();
        t.release_all(&mut out);
        assert_eq!(out.keyboard, [key(KeyCode::KEY_PAUSE, 0), SYN]);
        // The late 45 release then finds nothing to release.
        assert!(run(&mut t, &[scancode(0x45, false, false)]).0.is_empty());
    }

    #[test]
    fn fake_shifts_are_ignored() {
        let got = keyboard(&[
            scancode(0x2a, true, true),
            scancode(0x47, true, true),
            scancode(0x47, true, false),
            scancode(0x2a, true, false),
            scancode(0x36, true, true),
            scancode(0x36, true, false),
        ]);
        assert_eq!(
            got,
            [
                key(KeyCode::KEY_HOME, 1),
                SYN,
                key(KeyCode::KEY_HOME, 0),
                SYN
            ]
        );
    }

    #[test]
    fn real_shifts_still_work() {
        let got = keyboard(&[scancode(0x2a, false, true), scancode(0x36, false, true)]);
        assert_eq!(
            got,
            [
                key(KeyCode::KEY_LEFTSHIFT, 1),
                SYN,
                key(KeyCode::KEY_RIGHTSHIFT, 1),
                SYN
            ]
        );
    }

    #[test]
    fn hangul_and_hanja_release_themselves() {
        let tap = |k| [key(k, 1), SYN, key(k, 0), SYN];
        // Press only (the keyboard's 0xF2), press + release (some clients), release only.
        let mut t = Translator::new(1024, 768);
        assert_eq!(
            run(&mut t, &[scancode(0xf2, false, true)]).0,
            tap(KeyCode::KEY_HANGEUL)
        );
        assert_eq!(run(&mut t, &[scancode(0xf2, false, false)]).0, []);
        assert_eq!(
            run(
                &mut t,
                &[scancode(0x71, false, true), scancode(0x71, false, false)]
            )
            .0,
            tap(KeyCode::KEY_HANJA)
        );
        assert_eq!(
            run(&mut t, &[scancode(0x72, false, false)]).0,
            tap(KeyCode::KEY_HANGEUL)
        );
        assert!(t.pressed_keys().is_empty());
        // Two presses in a row are two taps.
        let twice = run(
            &mut t,
            &[scancode(0xf1, false, true), scancode(0xf1, false, true)],
        )
        .0;
        assert_eq!(twice.len(), 8);
        assert!(t.pressed_keys().is_empty());
    }

    #[test]
    fn unicode_letters_digits_and_shift() {
        let unicode = |ch: char| InputEvent::Unicode {
            code: ch as u16,
            pressed: true,
        };
        let release = InputEvent::Unicode {
            code: 'a' as u16,
            pressed: false,
        };
        let got = keyboard(&[unicode('a'), release, unicode('A'), unicode('!')]);
        assert_eq!(
            got,
            [
                key(KeyCode::KEY_A, 1),
                SYN,
                key(KeyCode::KEY_A, 0),
                SYN,
                key(KeyCode::KEY_LEFTSHIFT, 1),
                SYN,
                key(KeyCode::KEY_A, 1),
                SYN,
                key(KeyCode::KEY_A, 0),
                SYN,
                key(KeyCode::KEY_LEFTSHIFT, 0),
                SYN,
                key(KeyCode::KEY_LEFTSHIFT, 1),
                SYN,
                key(KeyCode::KEY_1, 1),
                SYN,
                key(KeyCode::KEY_1, 0),
                SYN,
                key(KeyCode::KEY_LEFTSHIFT, 0),
                SYN,
            ]
        );
    }

    #[test]
    fn unicode_types_with_the_thin_clients_layout() {
        let mut t = Translator::new(1024, 768);
        t.set_layout(crate::input::layout::Layout::by_name("de").unwrap());
        let unicode = |ch: char| InputEvent::Unicode {
            code: ch as u16,
            pressed: true,
        };
        // 'z' is the Y key on QWERTZ; '@' is AltGr+Q; 'Ü' Shift+[; '^' (a dead key) is dropped.
        let got = run(
            &mut t,
            &[unicode('z'), unicode('@'), unicode('Ü'), unicode('^')],
        )
        .0;
        assert_eq!(
            got,
            [
                key(KeyCode::KEY_Y, 1),
                SYN,
                key(KeyCode::KEY_Y, 0),
                SYN,
                key(KeyCode::KEY_RIGHTALT, 1),
                SYN,
                key(KeyCode::KEY_Q, 1),
                SYN,
                key(KeyCode::KEY_Q, 0),
                SYN,
                key(KeyCode::KEY_RIGHTALT, 0),
                SYN,
                key(KeyCode::KEY_LEFTSHIFT, 1),
                SYN,
                key(KeyCode::KEY_LEFTBRACE, 1),
                SYN,
                key(KeyCode::KEY_LEFTBRACE, 0),
                SYN,
                key(KeyCode::KEY_LEFTSHIFT, 0),
                SYN,
            ]
        );
    }

    #[test]
    fn unicode_respects_a_held_shift_and_caps_lock() {
        let mut t = Translator::new(1024, 768);
        run(&mut t, &[scancode(0x2a, false, true)]);
        // Shift held, lower case wanted: lift it around the key, then hold it again.
        let got = run(
            &mut t,
            &[InputEvent::Unicode {
                code: 'b' as u16,
                pressed: true,
            }],
        )
        .0;
        assert_eq!(
            got,
            [
                key(KeyCode::KEY_LEFTSHIFT, 0),
                SYN,
                key(KeyCode::KEY_B, 1),
                SYN,
                key(KeyCode::KEY_B, 0),
                SYN,
                key(KeyCode::KEY_LEFTSHIFT, 1),
                SYN,
            ]
        );
        assert_eq!(t.pressed_keys(), [KeyCode::KEY_LEFTSHIFT]);

        // Caps Lock on (as the kernel reports it): upper case needs no Shift.
        let mut t = Translator::new(1024, 768);
        t.led_feedback(LedCode::LED_CAPSL.0, true);
        let got = run(
            &mut t,
            &[InputEvent::Unicode {
                code: 'C' as u16,
                pressed: true,
            }],
        )
        .0;
        assert_eq!(
            got,
            [key(KeyCode::KEY_C, 1), SYN, key(KeyCode::KEY_C, 0), SYN]
        );
    }

    #[test]
    fn untypable_unicode_is_dropped_and_flagged_once() {
        let mut t = Translator::new(1024, 768);
        let euro = InputEvent::Unicode {
            code: 0x20ac,
            pressed: true,
        };
        assert!(run(&mut t, &[euro, euro]).0.is_empty());
        assert!(t.unicode_dropped);
        t.release_all(&mut Output::default());
        assert!(!t.unicode_dropped);
    }

    #[test]
    fn sync_taps_only_the_locks_that_differ() {
        let mut t = Translator::new(1024, 768);
        let tap = |k| [key(k, 1), SYN, key(k, 0), SYN];
        assert_eq!(
            run(&mut t, &[sync(true, false, false)]).0,
            tap(KeyCode::KEY_CAPSLOCK)
        );
        // We assume the tap worked: the same sync again changes nothing.
        assert!(run(&mut t, &[sync(true, false, false)]).0.is_empty());
        // The kernel says Num Lock is on (local keyboard): the client wants it off.
        t.led_feedback(LedCode::LED_NUML.0, true);
        assert_eq!(
            run(&mut t, &[sync(true, false, false)]).0,
            tap(KeyCode::KEY_NUMLOCK)
        );
        let got = run(&mut t, &[sync(false, true, true)]).0;
        let mut want = Vec::new();
        for k in [
            KeyCode::KEY_CAPSLOCK,
            KeyCode::KEY_NUMLOCK,
            KeyCode::KEY_SCROLLLOCK,
        ] {
            want.extend(tap(k));
        }
        assert_eq!(got, want);
        assert_eq!(
            t.lock_state(),
            LockState {
                scroll: true,
                num: true,
                caps: false,
                kana: false
            }
        );
        assert!(t.pressed_keys().is_empty());
    }

    #[test]
    fn indicators_report_kernel_changes_once() {
        let mut t = Translator::new(1024, 768);
        assert_eq!(t.take_indicators(), None);
        t.led_feedback(LedCode::LED_CAPSL.0, true);
        t.led_feedback(LedCode::LED_KANA.0, true);
        t.led_feedback(0x08, true); // LED_MUTE: not ours to track
        let want = LockState {
            caps: true,
            kana: true,
            ..LockState::default()
        };
        assert_eq!(t.take_indicators(), Some(want));
        assert_eq!(t.take_indicators(), None);
        // An echo of what we already know is no change.
        t.led_feedback(LedCode::LED_CAPSL.0, true);
        assert_eq!(t.take_indicators(), None);
        // Our own sync is not reported back to the client.
        run(&mut t, &[sync(false, false, false)]);
        t.led_feedback(LedCode::LED_CAPSL.0, false);
        assert_eq!(t.take_indicators(), None);
    }

    #[test]
    fn mouse_moves_follow_the_screen_and_clamp() {
        let got = pointer(&[
            InputEvent::MouseMove { x: 10, y: 20 },
            InputEvent::MouseMove { x: 10, y: 20 },
            InputEvent::MouseMove { x: 11, y: 20 },
            InputEvent::MouseMove {
                x: 5000,
                y: u16::MAX,
            },
        ]);
        assert_eq!(
            got,
            [
                abs(AbsoluteAxisCode::ABS_X, 10),
                abs(AbsoluteAxisCode::ABS_Y, 20),
                SYN,
                abs(AbsoluteAxisCode::ABS_X, 11),
                SYN,
                abs(AbsoluteAxisCode::ABS_X, 1023),
                abs(AbsoluteAxisCode::ABS_Y, 767),
                SYN,
            ]
        );
    }

    #[test]
    fn mouse_moves_scale_when_the_range_differs() {
        let mut t = Translator::new(1024, 768);
        // The device could not follow a resize to 2048x1536: scale into the old range.
        assert!(t.set_screen_size(2048, 1536));
        let got = run(
            &mut t,
            &[
                InputEvent::MouseMove { x: 2047, y: 1535 },
                InputEvent::MouseMove { x: 1024, y: 0 },
            ],
        )
        .1;
        assert_eq!(
            got,
            [
                abs(AbsoluteAxisCode::ABS_X, 1023),
                abs(AbsoluteAxisCode::ABS_Y, 767),
                SYN,
                abs(AbsoluteAxisCode::ABS_X, 512),
                abs(AbsoluteAxisCode::ABS_Y, 0),
                SYN,
            ]
        );
        // After the pointer is replaced, a pixel is a unit again and the position is resent.
        t.pointer_replaced(Translator::axis_for(2048, 1536));
        let got = run(&mut t, &[InputEvent::MouseMove { x: 1024, y: 0 }]).1;
        assert_eq!(
            got,
            [
                abs(AbsoluteAxisCode::ABS_X, 1024),
                abs(AbsoluteAxisCode::ABS_Y, 0),
                SYN
            ]
        );
        // Same size again: nothing to rebuild; a zero size is ignored.
        assert!(!t.set_screen_size(2048, 1536));
        assert!(!t.set_screen_size(0, 0));
        assert_eq!(t.screen_size(), (2048, 1536));
    }

    #[test]
    fn buttons_with_position() {
        let button = |button, pressed| InputEvent::MouseButton {
            button,
            pressed,
            x: 100,
            y: 50,
        };
        let got = pointer(&[
            button(MouseButton::Left, true),
            button(MouseButton::Left, true),
            button(MouseButton::Left, false),
            button(MouseButton::Right, false),
            button(MouseButton::Extra1, true),
            button(MouseButton::Extra2, true),
            button(MouseButton::Middle, true),
        ]);
        assert_eq!(
            got,
            [
                abs(AbsoluteAxisCode::ABS_X, 100),
                abs(AbsoluteAxisCode::ABS_Y, 50),
                key(KeyCode::BTN_LEFT, 1),
                SYN,
                key(KeyCode::BTN_LEFT, 0),
                SYN,
                key(KeyCode::BTN_SIDE, 1),
                SYN,
                key(KeyCode::BTN_EXTRA, 1),
                SYN,
                key(KeyCode::BTN_MIDDLE, 1),
                SYN,
            ]
        );
    }

    #[test]
    fn wheel_hi_res_and_notches() {
        let wheel = |vertical, delta| InputEvent::Wheel { vertical, delta };
        let got = pointer(&[
            wheel(true, 120),
            wheel(true, -240),
            wheel(true, 0),
            wheel(false, 120),
            wheel(false, -120),
        ]);
        assert_eq!(
            got,
            [
                rel(RelativeAxisCode::REL_WHEEL_HI_RES, 120),
                rel(RelativeAxisCode::REL_WHEEL, 1),
                SYN,
                rel(RelativeAxisCode::REL_WHEEL_HI_RES, -240),
                rel(RelativeAxisCode::REL_WHEEL, -2),
                SYN,
                // Positive horizontal rotation is to the right, as REL_HWHEEL counts it.
                rel(RelativeAxisCode::REL_HWHEEL_HI_RES, 120),
                rel(RelativeAxisCode::REL_HWHEEL, 1),
                SYN,
                rel(RelativeAxisCode::REL_HWHEEL_HI_RES, -120),
                rel(RelativeAxisCode::REL_HWHEEL, -1),
                SYN,
            ]
        );
    }

    #[test]
    fn smooth_wheel_adds_up_to_notches() {
        let wheel = |delta| InputEvent::Wheel {
            vertical: true,
            delta,
        };
        let got = pointer(&[wheel(60), wheel(60), wheel(30), wheel(-30), wheel(-136)]);
        assert_eq!(
            got,
            [
                rel(RelativeAxisCode::REL_WHEEL_HI_RES, 60),
                SYN,
                rel(RelativeAxisCode::REL_WHEEL_HI_RES, 60),
                rel(RelativeAxisCode::REL_WHEEL, 1),
                SYN,
                rel(RelativeAxisCode::REL_WHEEL_HI_RES, 30),
                SYN,
                // The other way: the 30 left over is forgotten.
                rel(RelativeAxisCode::REL_WHEEL_HI_RES, -30),
                SYN,
                // Old FreeRDP sends -136 for one notch down.
                rel(RelativeAxisCode::REL_WHEEL_HI_RES, -136),
                rel(RelativeAxisCode::REL_WHEEL, -1),
                SYN,
            ]
        );
    }

    #[test]
    fn release_all_after_a_disconnect_mid_keypress() {
        let mut t = Translator::new(1024, 768);
        run(
            &mut t,
            &[
                scancode(0x1d, false, true),
                scancode(0x2a, false, true),
                scancode(0x14, false, true),
                InputEvent::MouseButton {
                    button: MouseButton::Left,
                    pressed: true,
                    x: 1,
                    y: 1,
                },
            ],
        );
        let mut out = Output::default();
        t.release_all(&mut out);
        assert_eq!(
            out.keyboard,
            [
                key(KeyCode::KEY_T, 0),
                key(KeyCode::KEY_LEFTSHIFT, 0),
                key(KeyCode::KEY_LEFTCTRL, 0),
                SYN,
            ]
        );
        assert_eq!(out.pointer, [key(KeyCode::BTN_LEFT, 0), SYN]);
        assert!(t.pressed_keys().is_empty() && t.pressed_buttons().is_empty());
        // Twice is harmless, and the late releases from the old session do nothing.
        let mut out = Output::default();
        t.release_all(&mut out);
        assert!(out.is_empty());
        assert!(run(&mut t, &[scancode(0x14, false, false)]).0.is_empty());
    }

    #[test]
    fn release_pointer_before_a_resize() {
        let mut t = Translator::new(1024, 768);
        run(
            &mut t,
            &[InputEvent::MouseButton {
                button: MouseButton::Right,
                pressed: true,
                x: 1,
                y: 1,
            }],
        );
        let mut out = Output::default();
        t.release_pointer(&mut out);
        assert_eq!(out.pointer, [key(KeyCode::BTN_RIGHT, 0), SYN]);
        assert!(out.keyboard.is_empty());
    }

    #[test]
    fn scale_edges() {
        assert_eq!(scale(0, 1024, 1023), 0);
        assert_eq!(scale(1023, 1024, 1023), 1023);
        assert_eq!(scale(u16::MAX, 1024, 1023), 1023);
        assert_eq!(scale(1, 2, 32767), 32767);
        assert_eq!(scale(5, 0, 0), 1);
        assert_eq!(Translator::axis_for(0, 1), (1, 1));
    }
}
