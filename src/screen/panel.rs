//! Somewhere to draw, not just to read: the local prompt puts its box on the screen the
//! agent mirrors.
//!
//! [`FbPanel`] reads and writes /dev/fbN with pread/pwrite at the visible picture's offsets
//! (no writable mapping, no unsafe beyond the fbdev ioctls); the kernel's fb_write also
//! flushes the deferred-I/O shadow of DRM framebuffers, as `dd of=/dev/fb0` does.
//! [`XwdPanel`] does the same on an Xvfb screen file, the development host's stand-in.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt as _;

use super::fbdev::{FbVarScreeninfo, Layout, layout, read_fix, read_var};
use super::frame::{PixelFormat, Rect};
use super::source::{Source as _, SourceError};
use super::xwd::Xwd;

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
        read_rows(&self.file, &Rows::of(&self.layout), rect)
    }

    fn write(&mut self, rect: Rect, bytes: &[u8]) -> io::Result<()> {
        write_rows(&self.file, &Rows::of(&self.layout), rect, bytes)
    }
}

/// Draws on an Xvfb screen file (`Xvfb -fbdir DIR`: `DIR/Xvfb_screen0`).
pub struct XwdPanel {
    source: Xwd,
    file: File,
}

impl XwdPanel {
    pub fn open(path: &str) -> Result<XwdPanel, SourceError> {
        let source = Xwd::open(path)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| SourceError::open(path, &e))?;
        Ok(XwdPanel { source, file })
    }

    pub fn describe(&self) -> String {
        self.source.describe()
    }

    fn rows(&mut self) -> io::Result<Rows> {
        let h = self.source.header().map_err(io::Error::other)?;
        Ok(Rows {
            width: h.width,
            height: h.height,
            stride: h.stride,
            offset: h.data_offset,
            format: h.format,
        })
    }
}

impl Panel for XwdPanel {
    fn geometry(&mut self) -> io::Result<(u16, u16, PixelFormat)> {
        let r = self.rows()?;
        Ok((r.width, r.height, r.format))
    }

    fn read(&mut self, rect: Rect) -> io::Result<Vec<u8>> {
        let rows = self.rows()?;
        read_rows(&self.file, &rows, rect)
    }

    fn write(&mut self, rect: Rect, bytes: &[u8]) -> io::Result<()> {
        let rows = self.rows()?;
        write_rows(&self.file, &rows, rect, bytes)
    }
}

/// A panel for `spec`, as `--screen` spells it: `fbdev:PATH` or `xwd:PATH`.
pub fn open_panel(spec: &str) -> Result<Box<dyn Panel>, SourceError> {
    match spec.split_once(':') {
        Some(("fbdev", path)) if !path.is_empty() => Ok(Box::new(FbPanel::open(path)?)),
        Some(("xwd", path)) if !path.is_empty() => Ok(Box::new(XwdPanel::open(path)?)),
        _ => Err(SourceError::Spec(spec.to_owned())),
    }
}

/// Where the visible picture's rows are in a file.
struct Rows {
    width: u16,
    height: u16,
    stride: usize,
    offset: usize,
    format: PixelFormat,
}

impl Rows {
    fn of(l: &Layout) -> Rows {
        Rows {
            width: l.width,
            height: l.height,
            stride: l.stride,
            offset: l.offset,
            format: l.format,
        }
    }

    /// Byte offset and length of each of `rect`'s rows.
    fn each(&self, rect: Rect) -> io::Result<impl Iterator<Item = (u64, usize)> + use<>> {
        if rect.right() > u32::from(self.width) || rect.bottom() > u32::from(self.height) {
            return Err(io::Error::other(format!(
                "{rect} is outside the {}x{} screen",
                self.width, self.height
            )));
        }
        let bpp = self.format.bytes_per_pixel();
        let len = usize::from(rect.w) * bpp;
        let first = self.offset + usize::from(rect.x) * bpp;
        let stride = self.stride;
        Ok((rect.y..rect.y + rect.h).map(move |y| ((first + usize::from(y) * stride) as u64, len)))
    }
}

fn read_rows(file: &File, rows: &Rows, rect: Rect) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    for (offset, len) in rows.each(rect)? {
        let start = out.len();
        out.resize(start + len, 0);
        file.read_exact_at(&mut out[start..], offset)?;
    }
    Ok(out)
}

fn write_rows(file: &File, rows: &Rows, rect: Rect, bytes: &[u8]) -> io::Result<()> {
    let mut rest = bytes;
    for (offset, len) in rows.each(rect)? {
        let Some((row, tail)) = rest.split_at_checked(len) else {
            return Err(io::Error::other("short picture for the rectangle"));
        };
        file.write_all_at(row, offset)?;
        rest = tail;
    }
    Ok(())
}
