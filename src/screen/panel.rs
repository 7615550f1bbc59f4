//! Somewhere to draw, not just to read: the local prompt puts its box on the framebuffer.
//!
//! [`FbPanel`] reads and writes /dev/fbN with pread/pwrite at the visible picture's offsets
//! (no writable mapping, no unsafe beyond the fbdev ioctls); the kernel's fb_write also
//! flushes the deferred-I/O shadow of DRM framebuffers, as `dd of=/dev/fb0` does.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt as _;

use super::fbdev::{FbVarScreeninfo, Layout, layout, read_fix, read_var};
use super::frame::{PixelFormat, Rect};
use super::source::SourceError;

/// A picture that can be read and drawn on. Rectangles are inside the size `geometry` last
/// returned; bytes are the rectangle's rows packed, in its pixel format.
pub trait Panel {
    /// Size and pixel format now (a mode may change at any time).
    fn geometry(&mut self) -> io::Result<(u16, u16, PixelFormat)>;
    fn read(&mut self, rect: Rect) -> io::Result<Vec<u8>>;
    fn write(&mut self, rect: Rect, bytes: &[u8]) -> io::Result<()>;
}

pub struct FbPanel {
    path: String,
    file: File,
    var: FbVarScreeninfo,
    layout: Layout,
}

impl FbPanel {
    pub fn open(path: &str) -> Result<FbPanel, SourceError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| SourceError::open(path, &e))?;
        let var = read_var(path, &file)?;
        let fix = read_fix(path, &file)?;
        let layout = layout(path, &var, &fix)?;
        Ok(FbPanel {
            path: path.to_owned(),
            file,
            var,
            layout,
        })
    }

    pub fn describe(&self) -> String {
        let l = &self.layout;
        format!("{} {}x{} {}", self.path, l.width, l.height, l.format)
    }

    /// Byte offset and length of each of `rect`'s rows.
    fn rows(&self, rect: Rect) -> io::Result<impl Iterator<Item = (u64, usize)> + use<>> {
        let l = self.layout;
        if rect.right() > u32::from(l.width) || rect.bottom() > u32::from(l.height) {
            return Err(io::Error::other(format!(
                "{rect} is outside the {}x{} screen",
                l.width, l.height
            )));
        }
        let bpp = l.format.bytes_per_pixel();
        let len = usize::from(rect.w) * bpp;
        let first = l.offset + usize::from(rect.x) * bpp;
        Ok((rect.y..rect.y + rect.h)
            .map(move |y| ((first + usize::from(y) * l.stride) as u64, len)))
    }
}

impl Panel for FbPanel {
    fn geometry(&mut self) -> io::Result<(u16, u16, PixelFormat)> {
        let var = read_var(&self.path, &self.file).map_err(io::Error::other)?;
        if var != self.var {
            let fix = read_fix(&self.path, &self.file).map_err(io::Error::other)?;
            self.layout = layout(&self.path, &var, &fix).map_err(io::Error::other)?;
            self.var = var;
        }
        let l = &self.layout;
        Ok((l.width, l.height, l.format))
    }

    fn read(&mut self, rect: Rect) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        for (offset, len) in self.rows(rect)? {
            let start = out.len();
            out.resize(start + len, 0);
            self.file.read_exact_at(&mut out[start..], offset)?;
        }
        Ok(out)
    }

    fn write(&mut self, rect: Rect, bytes: &[u8]) -> io::Result<()> {
        let mut rest = bytes;
        for (offset, len) in self.rows(rect)? {
            let Some((row, tail)) = rest.split_at_checked(len) else {
                return Err(io::Error::other("short picture for the rectangle"));
            };
            self.file.write_all_at(row, offset)?;
            rest = tail;
        }
        Ok(())
    }
}
