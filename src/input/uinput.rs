//! The uinput sink: two virtual devices the thin client's software sees as a keyboard and a mouse.
//!
//! - "thinshadow keyboard": every key [`keymap`] can produce, plus the Num, Caps,
//!   Scroll and Kana LEDs so the kernel tells us the lock state (it writes LED changes back to our
//!   uinput fd). evdev 0.13's builder cannot declare LEDs, so this device is set up with the
//!   uinput ioctls directly (safe wrappers in `crate::sys::uinput`).
//! - "thinshadow pointer": an absolute pointer that udev and libinput treat as a mouse (ABS_X/ABS_Y,
//!   five buttons, wheels; no BTN_TOUCH, no BTN_TOOL_*, no properties). One axis unit is one
//!   desktop pixel; a new desktop size rebuilds the device, since a live device's range is fixed.
//!
//! All decisions live in [`Translator`]; this file opens, writes and reads. A failed write is
//! logged once and the devices are closed, which makes the kernel release anything they held.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;

use evdev::uinput::VirtualDevice;
use evdev::{
    AbsInfo, AbsoluteAxisCode, AttributeSet, BusType, InputId, KeyCode, LedCode, RelativeAxisCode,
    UinputAbsSetup,
};
use nix::libc;

use super::translate::{EV_KEY, EV_LED, Output, RawEvent, Translator};
use super::{InputEvent, InputSink, LockState, keymap};

const UINPUT_PATH: &str = "/dev/uinput";

/// Our devices' ids (bus, vendor, product), so the local-keyboard watcher can skip them. Nobody
/// assigns vendor ids on the virtual bus; 0x7473 is "ts".
pub const BUS: BusType = BusType::BUS_VIRTUAL;
pub const VENDOR: u16 = 0x7473;
pub const KEYBOARD_PRODUCT: u16 = 0x0001;
pub const POINTER_PRODUCT: u16 = 0x0002;
pub const VERSION: u16 = 1;
pub const KEYBOARD_NAME: &str = "thinshadow keyboard";
pub const POINTER_NAME: &str = "thinshadow pointer";

/// The pointer's range until the first session says the desktop size (the board's virtio-gpu).
pub const DEFAULT_SCREEN: (u16, u16) = (1024, 768);

/// True for the devices this module creates, by their input id.
pub fn is_own_device(id: &InputId) -> bool {
    id.bus_type() == BUS
        && id.vendor() == VENDOR
        && (id.product() == KEYBOARD_PRODUCT || id.product() == POINTER_PRODUCT)
}

#[derive(Debug)]
pub enum InputError {
    /// No /dev/uinput, or no driver behind it.
    Missing(io::Error),
    /// /dev/uinput exists but this process may not open it.
    Permission(io::Error),
    /// Declaring or creating one of the devices failed.
    Device {
        device: &'static str,
        error: io::Error,
    },
}

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InputError::Missing(e) => write!(
                f,
                "no {UINPUT_PATH} ({e}); load the uinput module or build the kernel with CONFIG_INPUT_UINPUT"
            ),
            InputError::Permission(e) => write!(
                f,
                "no permission to open {UINPUT_PATH} ({e}); run as root or give this user write access to it"
            ),
            InputError::Device { device, error } => {
                write!(f, "cannot create the uinput {device}: {error}")
            }
        }
    }
}

impl std::error::Error for InputError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            InputError::Missing(e) | InputError::Permission(e) => Some(e),
            InputError::Device { error, .. } => Some(error),
        }
    }
}

impl InputError {
    fn from_open(device: &'static str, error: io::Error) -> Self {
        let missing = error.kind() == io::ErrorKind::NotFound
            || matches!(error.raw_os_error(), Some(libc::ENODEV | libc::ENXIO));
        if missing {
            InputError::Missing(error)
        } else if error.kind() == io::ErrorKind::PermissionDenied {
            InputError::Permission(error)
        } else {
            InputError::Device { device, error }
        }
    }

    fn setup(device: &'static str) -> impl Fn(nix::Error) -> Self {
        move |errno| InputError::Device {
            device,
            error: errno.into(),
        }
    }
}

/// Creates both devices with the pointer sized for [`DEFAULT_SCREEN`].
pub fn open() -> Result<UinputSink, InputError> {
    open_with_size(DEFAULT_SCREEN.0, DEFAULT_SCREEN.1)
}

/// Creates both devices with the pointer sized for this desktop.
pub fn open_with_size(width: u16, height: u16) -> Result<UinputSink, InputError> {
    let keyboard = create_keyboard()?;
    let (max_x, max_y) = Translator::axis_for(width, height);
    let pointer = create_pointer(max_x, max_y)?;
    Ok(UinputSink(Sink::new(
        UinputDevices { keyboard, pointer },
        width,
        height,
    )))
}

/// The admin's keyboard and mouse on the thin client. Releases everything when dropped.
pub struct UinputSink(Sink<UinputDevices>);

impl UinputSink {
    /// The keyboard's fd, readable when the kernel reports LED changes (for a poll loop).
    pub fn feedback_fd(&self) -> Option<BorrowedFd<'_>> {
        self.0.devices.as_ref().map(|d| d.keyboard.as_fd())
    }

    /// False once a write failed and the devices were closed.
    pub fn is_active(&self) -> bool {
        self.0.devices.is_some()
    }
}

impl InputSink for UinputSink {
    fn handle(&mut self, event: InputEvent) {
        self.0.handle(event);
    }

    fn release_all(&mut self) {
        self.0.release_all();
    }

    fn set_screen_size(&mut self, width: u16, height: u16) {
        self.0.set_screen_size(width, height);
    }

    fn set_keyboard_layout(&mut self, layout: crate::input::layout::Layout) {
        self.0.translator.set_layout(layout);
    }

    fn take_indicators(&mut self) -> Option<LockState> {
        self.0.take_indicators()
    }
}

/// What the sink needs from its two devices; /dev/uinput in the agent, a fake in tests.
trait Devices {
    fn write_keyboard(&mut self, bytes: &[u8]) -> io::Result<()>;
    fn write_pointer(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// What the kernel wrote back to the keyboard; `WouldBlock` when nothing waits.
    fn read_keyboard(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    /// Swaps in a pointer with this range; on an error the old one stays.
    fn replace_pointer(&mut self, max_x: i32, max_y: i32) -> Result<(), InputError>;
}

struct UinputDevices {
    keyboard: OwnedFd,
    pointer: VirtualDevice,
}

impl Devices for UinputDevices {
    fn write_keyboard(&mut self, bytes: &[u8]) -> io::Result<()> {
        write_all(self.keyboard.as_fd(), bytes)
    }

    fn write_pointer(&mut self, bytes: &[u8]) -> io::Result<()> {
        write_all(self.pointer.as_fd(), bytes)
    }

    fn read_keyboard(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Ok(nix::unistd::read(self.keyboard.as_fd(), buf)?)
    }

    fn replace_pointer(&mut self, max_x: i32, max_y: i32) -> Result<(), InputError> {
        // The old device goes when the new one is in place; its buttons are already up.
        self.pointer = create_pointer(max_x, max_y)?;
        Ok(())
    }
}

/// The device-independent part of the sink: translate, write, go quiet on a write error.
struct Sink<D: Devices> {
    devices: Option<D>,
    translator: Translator,
    out: Output,
    bytes: Vec<u8>,
}

impl<D: Devices> Sink<D> {
    fn new(devices: D, width: u16, height: u16) -> Self {
        Sink {
            devices: Some(devices),
            translator: Translator::new(width, height),
            out: Output::default(),
            bytes: Vec::new(),
        }
    }

    fn handle(&mut self, event: InputEvent) {
        if self.devices.is_none() {
            return;
        }
        self.read_feedback();
        self.translator.handle(event, &mut self.out);
        self.flush();
    }

    fn release_all(&mut self) {
        self.translator.release_all(&mut self.out);
        self.flush();
    }

    fn set_screen_size(&mut self, width: u16, height: u16) {
        if !self.translator.set_screen_size(width, height) || self.devices.is_none() {
            return;
        }
        self.translator.release_pointer(&mut self.out);
        self.flush();
        let (max_x, max_y) = Translator::axis_for(width, height);
        let Some(devices) = self.devices.as_mut() else {
            return;
        };
        match devices.replace_pointer(max_x, max_y) {
            Ok(()) => self.translator.pointer_replaced((max_x, max_y)),
            Err(e) => {
                let (old_x, old_y) = self.translator.axis_max();
                crate::warn!(
                    "input: pointer keeps its {}x{} range, positions are scaled: {e}",
                    old_x + 1,
                    old_y + 1
                );
            }
        }
    }

    fn take_indicators(&mut self) -> Option<LockState> {
        self.read_feedback();
        self.translator.take_indicators()
    }

    /// Takes in the LED changes the kernel wrote back; never waits.
    fn read_feedback(&mut self) {
        let Some(devices) = self.devices.as_mut() else {
            return;
        };
        // uinput keeps at most 16 events; a few reads drain it.
        let mut buf = [0u8; EVENT_SIZE * 16];
        for _ in 0..4 {
            match devices.read_keyboard(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    for event in decode(&buf[..n]) {
                        if event.kind == EV_LED {
                            self.translator.led_feedback(event.code, event.value != 0);
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    crate::debug!("input: reading the keyboard's LED state: {e}");
                    break;
                }
            }
        }
    }

    fn flush(&mut self) {
        let Some(devices) = self.devices.as_mut() else {
            self.out.clear();
            return;
        };
        let mut result = Ok(());
        if !self.out.keyboard.is_empty() {
            encode(&self.out.keyboard, &mut self.bytes);
            result = devices.write_keyboard(&self.bytes);
        }
        if result.is_ok() && !self.out.pointer.is_empty() {
            encode(&self.out.pointer, &mut self.bytes);
            result = devices.write_pointer(&self.bytes);
        }
        self.out.clear();
        if let Err(e) = result {
            crate::error!(
                "input: writing to {UINPUT_PATH} failed, admin input is off from now on: {e}"
            );
            // Closing the devices makes the kernel release every key and button they held.
            self.devices = None;
        }
    }
}

impl<D: Devices> Drop for Sink<D> {
    fn drop(&mut self) {
        self.release_all();
    }
}

/// Bytes of one `struct input_event`: a zero timestamp (the kernel stamps events), then
/// type, code and value.
const EVENT_SIZE: usize = std::mem::size_of::<libc::input_event>();
const TIME_SIZE: usize = EVENT_SIZE - 8;
const _: () = assert!(EVENT_SIZE == 16 || EVENT_SIZE == 24);

fn encode(events: &[RawEvent], bytes: &mut Vec<u8>) {
    bytes.clear();
    for event in events {
        bytes.extend_from_slice(&[0; TIME_SIZE]);
        bytes.extend_from_slice(&event.kind.to_ne_bytes());
        bytes.extend_from_slice(&event.code.to_ne_bytes());
        bytes.extend_from_slice(&event.value.to_ne_bytes());
    }
}

fn decode(bytes: &[u8]) -> impl Iterator<Item = RawEvent> + '_ {
    bytes.chunks_exact(EVENT_SIZE).map(|chunk| {
        let field = &chunk[TIME_SIZE..];
        RawEvent {
            kind: u16::from_ne_bytes([field[0], field[1]]),
            code: u16::from_ne_bytes([field[2], field[3]]),
            value: i32::from_ne_bytes([field[4], field[5], field[6], field[7]]),
        }
    })
}

fn write_all(fd: BorrowedFd<'_>, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        match nix::unistd::write(fd, bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n.min(bytes.len())..],
            Err(nix::Error::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn create_keyboard() -> Result<OwnedFd, InputError> {
    const DEVICE: &str = "keyboard";
    // Non-blocking so reading the LED feedback never waits.
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(UINPUT_PATH)
        .map_err(|e| InputError::from_open(DEVICE, e))?;
    let fd = OwnedFd::from(file);
    let setup = InputError::setup(DEVICE);
    crate::sys::uinput::set_evbit(fd.as_fd(), EV_KEY).map_err(&setup)?;
    for key in keymap::producible_keys() {
        crate::sys::uinput::set_keybit(fd.as_fd(), key.code()).map_err(&setup)?;
    }
    crate::sys::uinput::set_evbit(fd.as_fd(), EV_LED).map_err(&setup)?;
    for led in [
        LedCode::LED_NUML,
        LedCode::LED_CAPSL,
        LedCode::LED_SCROLLL,
        LedCode::LED_KANA,
    ] {
        crate::sys::uinput::set_ledbit(fd.as_fd(), led.0).map_err(&setup)?;
    }
    crate::sys::uinput::create(
        fd.as_fd(),
        KEYBOARD_NAME,
        (BUS.0, VENDOR, KEYBOARD_PRODUCT, VERSION),
    )
    .map_err(&setup)?;
    Ok(fd)
}

fn create_pointer(max_x: i32, max_y: i32) -> Result<VirtualDevice, InputError> {
    const DEVICE: &str = "pointer";
    let device_error = |error| InputError::Device {
        device: DEVICE,
        error,
    };
    let mut buttons = AttributeSet::<KeyCode>::new();
    for button in [
        KeyCode::BTN_LEFT,
        KeyCode::BTN_RIGHT,
        KeyCode::BTN_MIDDLE,
        KeyCode::BTN_SIDE,
        KeyCode::BTN_EXTRA,
    ] {
        buttons.insert(button);
    }
    let mut wheels = AttributeSet::<RelativeAxisCode>::new();
    for axis in [
        RelativeAxisCode::REL_WHEEL,
        RelativeAxisCode::REL_HWHEEL,
        RelativeAxisCode::REL_WHEEL_HI_RES,
        RelativeAxisCode::REL_HWHEEL_HI_RES,
    ] {
        wheels.insert(axis);
    }
    // No resolution on either axis (both or neither, says libinput).
    let x = UinputAbsSetup::new(AbsoluteAxisCode::ABS_X, AbsInfo::new(0, 0, max_x, 0, 0, 0));
    let y = UinputAbsSetup::new(AbsoluteAxisCode::ABS_Y, AbsInfo::new(0, 0, max_y, 0, 0, 0));
    let device = VirtualDevice::builder()
        .map_err(|e| InputError::from_open(DEVICE, e))?
        .name(POINTER_NAME)
        .input_id(InputId::new(BUS, VENDOR, POINTER_PRODUCT, VERSION))
        .with_keys(&buttons)
        .and_then(|b| b.with_absolute_axis(&x))
        .and_then(|b| b.with_absolute_axis(&y))
        .and_then(|b| b.with_relative_axes(&wheels))
        .and_then(|b| b.build())
        .map_err(device_error)?;
    // The crate opens blocking; nothing reads this fd, but no write of ours may ever wait.
    let flags = nix::fcntl::OFlag::O_NONBLOCK;
    nix::fcntl::fcntl(device.as_fd(), nix::fcntl::FcntlArg::F_SETFL(flags))
        .map_err(InputError::setup(DEVICE))?;
    Ok(device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::MouseButton;
    use std::cell::RefCell;
    use std::collections::VecDeque;
    use std::rc::Rc;

    /// What the fake devices saw, shared with the test.
    #[derive(Default)]
    struct Log {
        keyboard: Vec<RawEvent>,
        pointer: Vec<RawEvent>,
        feedback: VecDeque<Vec<u8>>,
        fail_writes: bool,
        fail_replace: bool,
        replaced: Vec<(i32, i32)>,
        writes: usize,
    }

    #[derive(Clone, Default)]
    struct Fake(Rc<RefCell<Log>>);

    impl Devices for Fake {
        fn write_keyboard(&mut self, bytes: &[u8]) -> io::Result<()> {
            let mut log = self.0.borrow_mut();
            log.writes += 1;
            if log.fail_writes {
                return Err(io::Error::from_raw_os_error(libc::ENODEV));
            }
            log.keyboard.extend(decode(bytes));
            Ok(())
        }

        fn write_pointer(&mut self, bytes: &[u8]) -> io::Result<()> {
            let mut log = self.0.borrow_mut();
            log.writes += 1;
            if log.fail_writes {
                return Err(io::Error::from_raw_os_error(libc::ENODEV));
            }
            log.pointer.extend(decode(bytes));
            Ok(())
        }

        fn read_keyboard(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let Some(bytes) = self.0.borrow_mut().feedback.pop_front() else {
                return Err(io::ErrorKind::WouldBlock.into());
            };
            buf[..bytes.len()].copy_from_slice(&bytes);
            Ok(bytes.len())
        }

        fn replace_pointer(&mut self, max_x: i32, max_y: i32) -> Result<(), InputError> {
            let mut log = self.0.borrow_mut();
            if log.fail_replace {
                return Err(InputError::Device {
                    device: "pointer",
                    error: io::ErrorKind::Other.into(),
                });
            }
            log.replaced.push((max_x, max_y));
            Ok(())
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

    fn led(code: LedCode, on: bool) -> Vec<u8> {
        let mut bytes = Vec::new();
        encode(
            &[
                RawEvent {
                    kind: EV_LED,
                    code: code.0,
                    value: i32::from(on),
                },
                RawEvent::SYN,
            ],
            &mut bytes,
        );
        bytes
    }

    #[test]
    fn encode_matches_the_kernel_layout() {
        let event = RawEvent::key(KeyCode::KEY_A, 1);
        let mut bytes = Vec::new();
        encode(&[event, RawEvent::SYN], &mut bytes);
        assert_eq!(bytes.len(), 2 * EVENT_SIZE);
        assert!(bytes[..TIME_SIZE].iter().all(|&b| b == 0));
        assert_eq!(&bytes[TIME_SIZE..TIME_SIZE + 2], &1u16.to_ne_bytes());
        assert_eq!(&bytes[TIME_SIZE + 2..TIME_SIZE + 4], &30u16.to_ne_bytes());
        assert_eq!(&bytes[TIME_SIZE + 4..EVENT_SIZE], &1i32.to_ne_bytes());
        assert_eq!(decode(&bytes).collect::<Vec<_>>(), [event, RawEvent::SYN]);
        // A torn read decodes only whole events.
        assert_eq!(decode(&bytes[..EVENT_SIZE + 3]).count(), 1);
    }

    #[test]
    fn sink_writes_each_device_its_events() {
        let fake = Fake::default();
        let mut sink = Sink::new(fake.clone(), 800, 600);
        sink.handle(key(0x1e, true));
        sink.handle(InputEvent::MouseMove { x: 3, y: 4 });
        let log = fake.0.borrow();
        assert_eq!(
            log.keyboard,
            [RawEvent::key(KeyCode::KEY_A, 1), RawEvent::SYN]
        );
        assert_eq!(log.pointer.len(), 3);
    }

    #[test]
    fn drop_releases_what_is_held() {
        let fake = Fake::default();
        let mut sink = Sink::new(fake.clone(), 800, 600);
        sink.handle(key(0x38, true));
        drop(sink);
        let log = fake.0.borrow();
        assert_eq!(
            log.keyboard[2..],
            [RawEvent::key(KeyCode::KEY_LEFTALT, 0), RawEvent::SYN]
        );
    }

    #[test]
    fn a_write_error_closes_the_devices_once() {
        let fake = Fake::default();
        let mut sink = Sink::new(fake.clone(), 800, 600);
        fake.0.borrow_mut().fail_writes = true;
        sink.handle(key(0x1e, true));
        assert!(sink.devices.is_none());
        let writes = fake.0.borrow().writes;
        sink.handle(key(0x30, true));
        sink.release_all();
        sink.set_screen_size(1920, 1080);
        assert_eq!(fake.0.borrow().writes, writes);
        assert!(fake.0.borrow().replaced.is_empty());
    }

    #[test]
    fn led_feedback_drives_the_next_sync() {
        let fake = Fake::default();
        let mut sink = Sink::new(fake.clone(), 800, 600);
        fake.0
            .borrow_mut()
            .feedback
            .push_back(led(LedCode::LED_CAPSL, true));
        // The client also has Caps Lock on: nothing to tap.
        sink.handle(InputEvent::Sync {
            scroll: false,
            num: false,
            caps: true,
            kana: false,
        });
        assert!(fake.0.borrow().keyboard.is_empty());
        assert_eq!(
            sink.take_indicators(),
            Some(LockState {
                caps: true,
                ..LockState::default()
            })
        );
        // The local user turns it off; the client is told, and its next sync taps it on again.
        fake.0
            .borrow_mut()
            .feedback
            .push_back(led(LedCode::LED_CAPSL, false));
        assert_eq!(sink.take_indicators(), Some(LockState::default()));
        sink.handle(InputEvent::Sync {
            scroll: false,
            num: false,
            caps: true,
            kana: false,
        });
        assert_eq!(
            fake.0.borrow().keyboard,
            [
                RawEvent::key(KeyCode::KEY_CAPSLOCK, 1),
                RawEvent::SYN,
                RawEvent::key(KeyCode::KEY_CAPSLOCK, 0),
                RawEvent::SYN
            ]
        );
    }

    #[test]
    fn resize_lifts_buttons_then_rebuilds_the_pointer() {
        let fake = Fake::default();
        let mut sink = Sink::new(fake.clone(), 800, 600);
        sink.set_screen_size(800, 600);
        assert!(fake.0.borrow().replaced.is_empty());
        sink.handle(InputEvent::MouseButton {
            button: MouseButton::Left,
            pressed: true,
            x: 10,
            y: 10,
        });
        sink.set_screen_size(1920, 1080);
        {
            let log = fake.0.borrow();
            assert_eq!(log.replaced, [(1919, 1079)]);
            assert_eq!(
                log.pointer[log.pointer.len() - 2..],
                [RawEvent::key(KeyCode::BTN_LEFT, 0), RawEvent::SYN]
            );
        }
        assert_eq!(sink.translator.axis_max(), (1919, 1079));

        // The next rebuild fails: the old range stays and positions are scaled into it.
        fake.0.borrow_mut().fail_replace = true;
        sink.set_screen_size(3840, 2160);
        assert_eq!(sink.translator.axis_max(), (1919, 1079));
        fake.0.borrow_mut().pointer.clear();
        sink.handle(InputEvent::MouseMove { x: 3839, y: 2159 });
        let log = fake.0.borrow();
        assert_eq!(log.pointer[0].value, 1919);
        assert_eq!(log.pointer[1].value, 1079);
    }

    #[test]
    fn own_devices_are_recognised() {
        assert!(is_own_device(&InputId::new(
            BusType::BUS_VIRTUAL,
            VENDOR,
            KEYBOARD_PRODUCT,
            VERSION
        )));
        assert!(is_own_device(&InputId::new(
            BusType::BUS_VIRTUAL,
            VENDOR,
            POINTER_PRODUCT,
            7
        )));
        assert!(!is_own_device(&InputId::new(
            BusType::BUS_USB,
            VENDOR,
            KEYBOARD_PRODUCT,
            VERSION
        )));
        assert!(!is_own_device(&InputId::new(
            BusType::BUS_VIRTUAL,
            0x1234,
            KEYBOARD_PRODUCT,
            VERSION
        )));
    }

    #[test]
    fn open_errors_say_what_to_do() {
        let missing = InputError::from_open("keyboard", io::ErrorKind::NotFound.into());
        assert!(matches!(missing, InputError::Missing(_)));
        assert!(missing.to_string().contains("uinput module"));
        let nodev = InputError::from_open("keyboard", io::Error::from_raw_os_error(libc::ENODEV));
        assert!(matches!(nodev, InputError::Missing(_)));
        let denied = InputError::from_open("keyboard", io::Error::from_raw_os_error(libc::EACCES));
        assert!(matches!(denied, InputError::Permission(_)));
        assert!(denied.to_string().contains("permission"));
        let other = InputError::from_open("pointer", io::Error::from_raw_os_error(libc::EINVAL));
        assert!(
            other
                .to_string()
                .starts_with("cannot create the uinput pointer")
        );
    }

    #[test]
    fn names_fit_uinput() {
        assert!(KEYBOARD_NAME.len() < libc::UINPUT_MAX_NAME_SIZE);
        assert!(POINTER_NAME.len() < libc::UINPUT_MAX_NAME_SIZE);
    }
}
