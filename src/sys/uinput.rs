//! The uinput ioctls the keyboard needs (<linux/uinput.h>), behind safe wrappers.

use std::os::fd::{AsRawFd, BorrowedFd};

use nix::libc;
use nix::sys::ioctl::ioctl_param_type;

const UINPUT_IOCTL_BASE: u8 = b'U';
nix::ioctl_none!(ui_dev_create, UINPUT_IOCTL_BASE, 1);
nix::ioctl_write_ptr!(ui_dev_setup, UINPUT_IOCTL_BASE, 3, libc::uinput_setup);
nix::ioctl_write_int!(ui_set_evbit, UINPUT_IOCTL_BASE, 100);
nix::ioctl_write_int!(ui_set_keybit, UINPUT_IOCTL_BASE, 101);
nix::ioctl_write_int!(ui_set_ledbit, UINPUT_IOCTL_BASE, 105);

pub(crate) fn set_evbit(fd: BorrowedFd<'_>, kind: u16) -> nix::Result<()> {
    // SAFETY: `fd` is open for the call; the ioctl takes a plain integer.
    unsafe { ui_set_evbit(fd.as_raw_fd(), ioctl_param_type::from(kind)) }.map(drop)
}

pub(crate) fn set_keybit(fd: BorrowedFd<'_>, key: u16) -> nix::Result<()> {
    // SAFETY: as above.
    unsafe { ui_set_keybit(fd.as_raw_fd(), ioctl_param_type::from(key)) }.map(drop)
}

pub(crate) fn set_ledbit(fd: BorrowedFd<'_>, led: u16) -> nix::Result<()> {
    // SAFETY: as above.
    unsafe { ui_set_ledbit(fd.as_raw_fd(), ioctl_param_type::from(led)) }.map(drop)
}

/// Names the device, gives it our id and registers it with the input core.
pub(crate) fn create(
    fd: BorrowedFd<'_>,
    name: &str,
    (bustype, vendor, product, version): (u16, u16, u16, u16),
) -> nix::Result<()> {
    let mut setup = libc::uinput_setup {
        id: libc::input_id {
            bustype,
            vendor,
            product,
            version,
        },
        name: [0; libc::UINPUT_MAX_NAME_SIZE],
        ff_effects_max: 0,
    };
    // The last byte stays 0: the kernel wants a terminated string.
    let room = libc::UINPUT_MAX_NAME_SIZE - 1;
    for (slot, byte) in setup.name.iter_mut().zip(name.bytes().take(room)) {
        *slot = libc::c_char::from_ne_bytes([byte]);
    }
    // SAFETY: `setup` is a live, fully initialised uinput_setup (libc's layout of the
    // kernel struct) for the whole call; the kernel only reads it.
    unsafe { ui_dev_setup(fd.as_raw_fd(), &setup) }?;
    // SAFETY: no argument; `fd` is open.
    unsafe { ui_dev_create(fd.as_raw_fd()) }.map(drop)
}
