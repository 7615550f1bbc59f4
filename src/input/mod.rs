//! Admin input: the events the RDP session decodes, and the sinks they are handed to.
//!
//! Rules of this layer:
//! - Nothing stays pressed: every sink that presses keys tracks them, and `release_all` (session
//!   end, gate closed, exit, drop) lifts them all.
//! - Bad or unknown input is dropped, never a panic; a device error turns input off, with one
//!   log line.
//! - [`translate::Translator`] decides everything without I/O; [`uinput`] only writes what it
//!   returns.
//!
//! Sinks: [`UinputSink`] (the thin client's uinput devices), [`CountingSink`] (view-only: counts
//! and drops), [`RecordingSink`] (tests). The access policy's gate is the session's
//! (`agent::session`): input reaches a sink only from the session that owns the policy.

use std::sync::{Arc, Mutex};

pub mod keymap;
pub mod layout;
pub mod translate;
pub mod uinput;

pub use uinput::{InputError, UinputSink};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MouseButton {
    Left,
    Right,
    Middle,
    /// Back (MS-RDPBCGR "button 1" of the extended mouse event).
    Extra1,
    /// Forward ("button 2").
    Extra2,
}

/// One input event from the admin's client, positions in desktop pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputEvent {
    /// A set-1 scancode; `extended` is the E0 prefix, `extended1` the E1 prefix (Pause).
    Key {
        scancode: u8,
        extended: bool,
        extended1: bool,
        pressed: bool,
    },
    /// A UTF-16 code unit typed by clients that send characters instead of scancodes.
    Unicode {
        code: u16,
        pressed: bool,
    },
    /// Lock-key state of the client keyboard.
    Sync {
        scroll: bool,
        num: bool,
        caps: bool,
        kana: bool,
    },
    MouseMove {
        x: u16,
        y: u16,
    },
    MouseButton {
        button: MouseButton,
        pressed: bool,
        x: u16,
        y: u16,
    },
    /// Wheel rotation in RDP units (120 per notch); positive is up (away from the user) / right,
    /// as Windows' WM_MOUSEWHEEL / WM_MOUSEHWHEEL and FreeRDP's and xrdp's code read it.
    Wheel {
        vertical: bool,
        delta: i16,
    },
}

/// Where admin input goes. Implementations never block the event loop.
pub trait InputSink {
    fn handle(&mut self, event: InputEvent);
    /// Releases every key and button still pressed (session ended, gate closed, exit).
    fn release_all(&mut self);
    /// Follows the screen size, for absolute pointer ranges.
    fn set_screen_size(&mut self, _width: u16, _height: u16) {}
    /// The thin client's keyboard layout, for characters the client types as Unicode.
    fn set_keyboard_layout(&mut self, _layout: layout::Layout) {}
    /// The thin client's lock-key LEDs, when they changed since the last call, for the client's
    /// Set Keyboard Indicators PDU.
    fn take_indicators(&mut self) -> Option<LockState> {
        None
    }
}

/// Lock-key state, as RDP's Synchronize event and Set Keyboard Indicators PDU carry it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LockState {
    pub scroll: bool,
    pub num: bool,
    pub caps: bool,
    pub kana: bool,
}

/// Counts events and logs a summary: the view-only sink, when there is no uinput.
#[derive(Debug, Default)]
pub struct CountingSink {
    pub events: u64,
}

impl InputSink for CountingSink {
    fn handle(&mut self, event: InputEvent) {
        self.events += 1;
        crate::debug!("input: {event:?}");
    }

    fn release_all(&mut self) {
        if self.events > 0 {
            crate::info!(
                "input: {} events dropped this session (view-only)",
                self.events
            );
        }
        self.events = 0;
    }
}

/// Keeps every event in a shared list, so a test on another thread can read them.
#[derive(Clone, Debug, Default)]
pub struct RecordingSink {
    pub events: Arc<Mutex<Vec<InputEvent>>>,
    pub releases: Arc<Mutex<u32>>,
    /// LEDs to report back once, as a kernel does after a Sync turns a lock on.
    leds: Option<LockState>,
}

impl InputSink for RecordingSink {
    fn take_indicators(&mut self) -> Option<LockState> {
        self.leds.take()
    }

    fn handle(&mut self, event: InputEvent) {
        if let InputEvent::Sync {
            scroll,
            num,
            caps,
            kana,
        } = event
        {
            self.leds = Some(LockState {
                scroll,
                num,
                caps,
                kana,
            });
        }
        if let Ok(mut events) = self.events.lock() {
            // Bounded: a test never needs more, and a flood must not grow memory.
            if events.len() < 100_000 {
                events.push(event);
            }
        }
    }

    fn release_all(&mut self) {
        if let Ok(mut releases) = self.releases.lock() {
            *releases += 1;
        }
    }
}
