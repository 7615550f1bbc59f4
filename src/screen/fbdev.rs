//! Linux framebuffer (/dev/fbN) source: two ioctls and a read-only mmap, no copy.
//!
//! Every `frame()` re-reads FBIOGET_VSCREENINFO (one cheap ioctl) so mode changes and panning are
//! followed; the fixed info is re-read and the device re-mapped only when the mode changed.

use core::num::NonZeroUsize;
use std::fs::File;
use std::os::fd::AsFd as _;

use nix::errno::Errno;

use super::frame::{Channel, Frame, PixelFormat};
use super::source::{Source, SourceError};
pub(crate) use crate::sys::fb::{FbBitfield, FbFixScreeninfo, FbVarScreeninfo};
use crate::sys::mmap::ReadMap;

const FB_TYPE_PACKED_PIXELS: u32 = 0;
const FB_VISUAL_TRUECOLOR: u32 = 2;
const FB_VISUAL_DIRECTCOLOR: u32 = 4;

/// Where the visible picture lies in the device memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    pub width: u16,
    pub height: u16,
    pub stride: usize,
    pub offset: usize,
    pub format: PixelFormat,
    pub map_len: usize,
}

fn channel(b: FbBitfield) -> Option<Channel> {
    Some(Channel {
        offset: u8::try_from(b.offset).ok()?,
        length: u8::try_from(b.length).ok()?,
    })
}

/// The pixel layout the kernel reports, if we can convert it.
pub(crate) fn format_of(path: &str, var: &FbVarScreeninfo) -> Result<PixelFormat, SourceError> {
    let shown = PixelFormat {
        bits_per_pixel: u8::try_from(var.bits_per_pixel).unwrap_or(u8::MAX),
        red: channel(var.red).unwrap_or(Channel {
            offset: 0,
            length: 0,
        }),
        green: channel(var.green).unwrap_or(Channel {
            offset: 0,
            length: 0,
        }),
        blue: channel(var.blue).unwrap_or(Channel {
            offset: 0,
            length: 0,
        }),
    };
    let exact =
        channel(var.red).is_some() && channel(var.green).is_some() && channel(var.blue).is_some();
    // grayscale > 1 is a FOURCC code; msb_right bitfields are mirrored: neither is RGB we can read.
    let plain = var.grayscale == 0
        && [var.red, var.green, var.blue]
            .iter()
            .all(|b| b.msb_right == 0);
    if exact && plain && shown.is_supported() {
        Ok(shown)
    } else {
        Err(SourceError::Format {
            path: path.to_owned(),
            format: shown,
        })
    }
}

/// Checks the mode against the memory behind it and says where the visible picture is.
pub(crate) fn layout(
    path: &str,
    var: &FbVarScreeninfo,
    fix: &FbFixScreeninfo,
) -> Result<Layout, SourceError> {
    if fix.type_ != FB_TYPE_PACKED_PIXELS
        || !matches!(fix.visual, FB_VISUAL_TRUECOLOR | FB_VISUAL_DIRECTCOLOR)
    {
        return Err(SourceError::Visual {
            path: path.to_owned(),
            visual: fix.visual,
        });
    }
    let format = format_of(path, var)?;
    let bpp = format.bytes_per_pixel() as u64;
    // u32 inputs times small factors: saturating u64 maths cannot wrap into a false "fits".
    let stride = match fix.line_length {
        0 => u64::from(var.xres_virtual) * bpp,
        n => u64::from(n),
    };
    let have = match fix.smem_len {
        0 => stride.saturating_mul(u64::from(var.yres_virtual.max(var.yres))),
        n => u64::from(n),
    };
    let offset = (u64::from(var.yoffset).saturating_mul(stride))
        .saturating_add(u64::from(var.xoffset) * bpp);
    let row = u64::from(var.xres) * bpp;
    let need = offset
        .saturating_add(stride.saturating_mul(u64::from(var.yres.saturating_sub(1))))
        .saturating_add(row);
    let geometry = || SourceError::Geometry {
        path: path.to_owned(),
        width: var.xres,
        height: var.yres,
        stride,
        need,
        have,
    };
    let (Ok(width), Ok(height)) = (u16::try_from(var.xres), u16::try_from(var.yres)) else {
        return Err(geometry());
    };
    if width == 0 || height == 0 || stride < row || need > have {
        return Err(geometry());
    }
    let size = |v: u64| usize::try_from(v).map_err(|_| geometry());
    Ok(Layout {
        width,
        height,
        stride: size(stride)?,
        offset: size(offset)?,
        format,
        map_len: size(have)?,
    })
}

/// A mapped framebuffer device.
pub struct Fbdev {
    path: String,
    file: File,
    var: FbVarScreeninfo,
    layout: Layout,
    map: ReadMap,
}

impl Fbdev {
    pub fn open(path: &str) -> Result<Self, SourceError> {
        let file = File::open(path).map_err(|e| SourceError::open(path, &e))?;
        let var = read_var(path, &file)?;
        let fix = read_fix(path, &file)?;
        let layout = layout(path, &var, &fix)?;
        let map = map(path, &file, layout.map_len)?;
        Ok(Self {
            path: path.to_owned(),
            file,
            var,
            layout,
            map,
        })
    }

    /// Follows a mode change or pan; re-maps only when the memory size changed.
    fn refresh(&mut self) -> Result<(), SourceError> {
        let var = read_var(&self.path, &self.file)?;
        if var == self.var {
            return Ok(());
        }
        let fix = read_fix(&self.path, &self.file)?;
        let layout = layout(&self.path, &var, &fix)?;
        if layout.map_len != self.map.len() {
            self.map = map(&self.path, &self.file, layout.map_len)?;
        }
        self.var = var;
        self.layout = layout;
        Ok(())
    }
}

pub(super) fn read_var(path: &str, file: &File) -> Result<FbVarScreeninfo, SourceError> {
    crate::sys::fb::var_screeninfo(file.as_fd()).map_err(|errno| SourceError::Query {
        path: path.to_owned(),
        call: "FBIOGET_VSCREENINFO",
        errno,
    })
}

pub(super) fn read_fix(path: &str, file: &File) -> Result<FbFixScreeninfo, SourceError> {
    crate::sys::fb::fix_screeninfo(file.as_fd()).map_err(|errno| SourceError::Query {
        path: path.to_owned(),
        call: "FBIOGET_FSCREENINFO",
        errno,
    })
}

fn map(path: &str, file: &File, len: usize) -> Result<ReadMap, SourceError> {
    let len = NonZeroUsize::new(len).ok_or(SourceError::Map {
        path: path.to_owned(),
        errno: Errno::EINVAL,
    })?;
    ReadMap::new(file, len).map_err(|errno| SourceError::Map {
        path: path.to_owned(),
        errno,
    })
}

impl Source for Fbdev {
    fn frame(&mut self) -> Result<Frame<'_>, SourceError> {
        self.refresh()?;
        let l = self.layout;
        // `layout` checked offset + picture <= map_len == map.len(), so this never falls short.
        let data = self.map.bytes().get(l.offset..).unwrap_or_default();
        Ok(Frame {
            width: l.width,
            height: l.height,
            stride: l.stride,
            format: l.format,
            data,
        })
    }

    fn describe(&self) -> String {
        let l = &self.layout;
        format!("fbdev:{} {}x{} {}", self.path, l.width, l.height, l.format)
    }
}

#[cfg(test)]
#[path = "fbdev_tests.rs"]
mod tests;
