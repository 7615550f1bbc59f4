//! The device module: the only code in the crate allowed `unsafe`, kept to what talks to
//! the kernel directly. Every `unsafe` block says why it is sound; the callers (the fbdev and
//! xwd sources, the uinput keyboard) see safe functions only.
//!
//! - `mmap`: a read-only shared mapping (fbdev memory, the Xvfb screen file)
//! - `drm`: the KMS source's card (ioctls through the drm crate), DMA_BUF_IOCTL_SYNC
//! - `fb`: FBIOGET_VSCREENINFO / FBIOGET_FSCREENINFO
//! - `ifaddrs`: getifaddrs(3), the addresses `creds` publishes
//! - `sockopt`: SO_PEERGROUPS (the control socket's peer groups; nix has no wrapper)
//! - `uinput`: UI_SET_EVBIT / KEYBIT / LEDBIT, UI_DEV_SETUP, UI_DEV_CREATE

pub(crate) mod drm;
pub(crate) mod fb;
pub(crate) mod ifaddrs;
pub(crate) mod mmap;
pub(crate) mod sockopt;
pub(crate) mod uinput;
