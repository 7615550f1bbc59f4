//! The framebuffer ioctls (<linux/fb.h>): the kernel structs and two safe wrappers.

use std::os::fd::{AsRawFd, BorrowedFd};

/// `struct fb_bitfield` from <linux/fb.h>.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct FbBitfield {
    pub offset: u32,
    pub length: u32,
    pub msb_right: u32,
}

/// `struct fb_var_screeninfo` from <linux/fb.h> (160 bytes on every ABI).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct FbVarScreeninfo {
    pub xres: u32,
    pub yres: u32,
    pub xres_virtual: u32,
    pub yres_virtual: u32,
    pub xoffset: u32,
    pub yoffset: u32,
    pub bits_per_pixel: u32,
    pub grayscale: u32,
    pub red: FbBitfield,
    pub green: FbBitfield,
    pub blue: FbBitfield,
    pub transp: FbBitfield,
    pub nonstd: u32,
    pub activate: u32,
    pub height: u32,
    pub width: u32,
    pub accel_flags: u32,
    pub pixclock: u32,
    pub left_margin: u32,
    pub right_margin: u32,
    pub upper_margin: u32,
    pub lower_margin: u32,
    pub hsync_len: u32,
    pub vsync_len: u32,
    pub sync: u32,
    pub vmode: u32,
    pub rotate: u32,
    pub colorspace: u32,
    pub reserved: [u32; 4],
}

/// `struct fb_fix_screeninfo` from <linux/fb.h> (`unsigned long` fields follow the ABI).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct FbFixScreeninfo {
    pub id: [u8; 16],
    pub smem_start: nix::libc::c_ulong,
    pub smem_len: u32,
    pub type_: u32,
    pub type_aux: u32,
    pub visual: u32,
    pub xpanstep: u16,
    pub ypanstep: u16,
    pub ywrapstep: u16,
    pub line_length: u32,
    pub mmio_start: nix::libc::c_ulong,
    pub mmio_len: u32,
    pub accel: u32,
    pub capabilities: u16,
    pub reserved: [u16; 2],
}

// The fb ioctls predate the _IOR encoding, hence the "bad" variants with the raw numbers.
nix::ioctl_read_bad!(fbioget_vscreeninfo, 0x4600, FbVarScreeninfo);
nix::ioctl_read_bad!(fbioget_fscreeninfo, 0x4602, FbFixScreeninfo);

/// Reads FBIOGET_VSCREENINFO: the visible mode, virtual size and pan offsets.
pub(crate) fn var_screeninfo(fd: BorrowedFd<'_>) -> nix::Result<FbVarScreeninfo> {
    let mut var = FbVarScreeninfo::default();
    // SAFETY: the fd is open for the call (borrowed) and `var` is a writable repr(C)
    // fb_var_screeninfo, the exact type and size this ioctl fills.
    unsafe { fbioget_vscreeninfo(fd.as_raw_fd(), &mut var) }?;
    Ok(var)
}

/// Reads FBIOGET_FSCREENINFO: memory length, line length, visual.
pub(crate) fn fix_screeninfo(fd: BorrowedFd<'_>) -> nix::Result<FbFixScreeninfo> {
    let mut fix = FbFixScreeninfo::default();
    // SAFETY: as above, for the repr(C) fb_fix_screeninfo (`unsigned long` fields as c_ulong).
    unsafe { fbioget_fscreeninfo(fd.as_raw_fd(), &mut fix) }?;
    Ok(fix)
}
