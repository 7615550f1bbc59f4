//! The local keyboards, read through evdev while the prompt shows: every /dev/input/event*
//! that has Enter and Esc, except thinshadow's own uinput devices, so admin input can never
//! answer the prompt. Opened read-only and non-blocking, registered in the loop; not grabbed,
//! so the UI still sees every key. A device that goes away is dropped with a log line.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::AsRawFd as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use evdev::raw_stream::RawDevice;
use evdev::{AttributeSetRef, EventType, InputId, KeyCode};
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

use super::keys::{Answer, Keys};
use crate::input::uinput::is_own_device;
use crate::{debug, info, warn};

/// Keyboards watched at once; more are ignored (with a log line).
pub const MAX_KEYBOARDS: usize = 16;
/// Reads per readiness event: keyboards are slow; a device that floods is cut short.
const MAX_READS: usize = 64;

/// True for a device whose keys can answer the prompt: it has Enter and Esc, and it is not
/// one of the agent's own uinput devices (those carry the admin's input).
pub fn is_local_keyboard(id: &InputId, keys: Option<&AttributeSetRef<KeyCode>>) -> bool {
    !is_own_device(id)
        && keys.is_some_and(|k| k.contains(KeyCode::KEY_ENTER) && k.contains(KeyCode::KEY_ESC))
}

struct Keyboard {
    path: PathBuf,
    name: String,
    device: RawDevice,
}

pub struct Keyboards {
    dir: PathBuf,
    base: Token,
    slots: Vec<Option<Keyboard>>,
}

impl Keyboards {
    /// Keyboards under `dir` (normally /dev/input), at tokens `base .. base + MAX_KEYBOARDS`.
    pub fn new(dir: &Path, base: Token) -> Keyboards {
        Keyboards {
            dir: dir.to_owned(),
            base,
            slots: (0..MAX_KEYBOARDS).map(|_| None).collect(),
        }
    }

    pub fn owns(&self, token: Token) -> bool {
        (self.base.0..self.base.0 + MAX_KEYBOARDS).contains(&token.0)
    }

    pub fn count(&self) -> usize {
        self.slots.iter().flatten().count()
    }

    /// Opens and registers the local keyboards not open yet (hot-plugged ones included).
    pub fn scan(&mut self, registry: &Registry) {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) => {
                warn!("local prompt: {}: {e}", self.dir.display());
                return;
            }
        };
        let mut paths: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("event"))
            })
            .collect();
        paths.sort();
        for path in paths {
            if self.slots.iter().flatten().any(|k| k.path == path) {
                continue;
            }
            match open(&path) {
                Ok(Some(device)) => self.add(registry, path, device),
                Ok(None) => {}
                Err(e) => debug!("local prompt: {}: {e}", path.display()),
            }
        }
    }

    fn add(&mut self, registry: &Registry, path: PathBuf, device: RawDevice) {
        let Some(slot) = self.slots.iter().position(Option::is_none) else {
            warn!(
                "local prompt: {} ignored: {MAX_KEYBOARDS} keyboards already",
                path.display()
            );
            return;
        };
        let token = Token(self.base.0 + slot);
        let fd = device.as_raw_fd();
        if let Err(e) = registry.register(&mut SourceFd(&fd), token, Interest::READABLE) {
            warn!("local prompt: {}: cannot watch it: {e}", path.display());
            return;
        }
        let name = device.name().unwrap_or("unnamed").to_owned();
        info!(
            "local prompt: reading keys from {} ({name})",
            path.display()
        );
        self.slots[slot] = Some(Keyboard { path, name, device });
    }

    /// The keys held down now on the open keyboards, as the kernel keeps them: a box that
    /// just appeared ignores them until they are released.
    pub fn held_keys(&self) -> Vec<u16> {
        let mut held = Vec::new();
        for keyboard in self.slots.iter().flatten() {
            match keyboard.device.get_key_state() {
                Ok(state) => held.extend(state.iter().map(|k| k.code())),
                Err(e) => debug!(
                    "local prompt: {}: no key state: {e}",
                    keyboard.path.display()
                ),
            }
        }
        held
    }

    /// Reads what the keyboard at `token` has and returns the answers it typed at `now`.
    pub fn read(
        &mut self,
        registry: &Registry,
        token: Token,
        keys: &mut Keys,
        now: Instant,
    ) -> Vec<Answer> {
        let mut answers = Vec::new();
        let Some(slot) = token.0.checked_sub(self.base.0) else {
            return answers;
        };
        let Some(Some(keyboard)) = self.slots.get_mut(slot) else {
            return answers;
        };
        let mut gone = false;
        for _ in 0..MAX_READS {
            match keyboard.device.fetch_events() {
                Ok(events) => {
                    for event in events {
                        if event.event_type() == EventType::KEY
                            && let Some(answer) = keys.key(event.code(), event.value(), now)
                        {
                            answers.push(answer);
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return answers,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    info!(
                        "local prompt: {} ({}) is gone: {e}",
                        keyboard.path.display(),
                        keyboard.name
                    );
                    gone = true;
                    break;
                }
            }
        }
        if gone {
            keys.reset();
            self.remove(registry, slot);
        } else {
            debug!(
                "local prompt: {} keeps sending; reading it later",
                keyboard.path.display()
            );
        }
        answers
    }

    fn remove(&mut self, registry: &Registry, slot: usize) {
        if let Some(keyboard) = self.slots[slot].take() {
            let _ = registry.deregister(&mut SourceFd(&keyboard.device.as_raw_fd()));
        }
    }

    /// Stops reading keys (nothing to answer any more).
    pub fn close_all(&mut self, registry: &Registry) {
        for slot in 0..self.slots.len() {
            self.remove(registry, slot);
        }
    }
}

/// Opens `path` read-only and non-blocking; None when it is not a local keyboard.
fn open(path: &Path) -> io::Result<Option<RawDevice>> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path)?;
    let device = RawDevice::from_fd(file.into())?;
    if !is_local_keyboard(&device.input_id(), device.supported_keys()) {
        return Ok(None);
    }
    Ok(Some(device))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::uinput::{BUS, KEYBOARD_PRODUCT, POINTER_PRODUCT, VENDOR, VERSION};
    use evdev::{AttributeSet, BusType};

    #[test]
    fn only_foreign_devices_with_enter_and_esc_are_keyboards() {
        let mut full = AttributeSet::<KeyCode>::new();
        full.insert(KeyCode::KEY_ENTER);
        full.insert(KeyCode::KEY_ESC);
        full.insert(KeyCode::KEY_A);
        let mut buttons = AttributeSet::<KeyCode>::new();
        buttons.insert(KeyCode::BTN_LEFT);
        let virtio = InputId::new(BusType::BUS_VIRTUAL, 0x0627, 0x0001, 1);
        let usb = InputId::new(BusType::BUS_USB, 0x046D, 0xC31C, 0x0110);
        assert!(is_local_keyboard(&virtio, Some(&full)));
        assert!(is_local_keyboard(&usb, Some(&full)));
        assert!(!is_local_keyboard(&usb, Some(&buttons)), "a mouse");
        assert!(!is_local_keyboard(&usb, None), "no keys at all");
        // Ours, even though the keyboard has every key.
        let ours = InputId::new(BUS, VENDOR, KEYBOARD_PRODUCT, VERSION);
        assert!(!is_local_keyboard(&ours, Some(&full)));
        let ours = InputId::new(BUS, VENDOR, POINTER_PRODUCT, VERSION);
        assert!(!is_local_keyboard(&ours, Some(&full)));
    }

    #[test]
    fn a_missing_directory_or_non_devices_open_nothing() {
        let registry_owner = mio::Poll::new().unwrap();
        let mut k = Keyboards::new(Path::new("/nonexistent/input"), Token(100));
        k.scan(registry_owner.registry());
        assert_eq!(k.count(), 0);
        // Regular files named like devices are not evdev devices.
        let dir = std::env::temp_dir().join(format!("thinshadow-input-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("event0"), b"not a device").unwrap();
        let mut k = Keyboards::new(&dir, Token(100));
        k.scan(registry_owner.registry());
        assert_eq!(k.count(), 0);
        assert!(k.owns(Token(100)) && k.owns(Token(115)) && !k.owns(Token(116)));
        assert!(
            k.read(
                registry_owner.registry(),
                Token(100),
                &mut Keys::default(),
                Instant::now()
            )
            .is_empty()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
