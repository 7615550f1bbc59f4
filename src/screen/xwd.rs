//! The XWD file that `Xvfb -fbdir DIR` keeps memory-mapped as DIR/Xvfb_screen0: a stand-in
//! framebuffer on hosts without /dev/fb0.
//!
//! Xvfb writes pixels into it live, so we map it too and re-check its size and header on every
//! frame (an fstat and ~100 bytes): a resized screen is followed, a truncated file is an error.

use core::fmt;
use core::num::NonZeroUsize;
use std::fs::File;

use super::frame::{Channel, Frame, PixelFormat};
use super::source::{Source, SourceError, errno_of};
use crate::sys::mmap::ReadMap;

/// XWDFileHeader: 25 big-endian CARD32 fields, then the window name up to `header_size`.
const HEADER_FIELDS: usize = 25;
const FIXED_HEADER: usize = HEADER_FIELDS * 4;
/// XWDColor: pixel (4), red/green/blue (2 each), flags, pad.
const COLOR_SIZE: u64 = 12;
const XWD_FILE_VERSION: u32 = 7;
const Z_PIXMAP: u32 = 2;
const LSB_FIRST: u32 = 0;
const MSB_FIRST: u32 = 1;

// Field indices in the fixed header.
const HEADER_SIZE: usize = 0;
const FILE_VERSION: usize = 1;
const PIXMAP_FORMAT: usize = 2;
const PIXMAP_WIDTH: usize = 4;
const PIXMAP_HEIGHT: usize = 5;
const BYTE_ORDER: usize = 7;
const BITS_PER_PIXEL: usize = 11;
const BYTES_PER_LINE: usize = 12;
const RED_MASK: usize = 14;
const GREEN_MASK: usize = 15;
const BLUE_MASK: usize = 16;
const NCOLORS: usize = 19;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XwdError {
    Truncated {
        need: u64,
        have: u64,
    },
    HeaderSize(u32),
    Version(u32),
    PixmapFormat(u32),
    ByteOrder(u32),
    Pixels {
        bits_per_pixel: u32,
        red: u32,
        green: u32,
        blue: u32,
    },
    Size {
        width: u32,
        height: u32,
        bytes_per_line: u32,
    },
}

impl fmt::Display for XwdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            XwdError::Truncated { need, have } => {
                write!(f, "truncated: needs {need} bytes, has {have}")
            }
            XwdError::HeaderSize(n) => write!(f, "header size {n} is below {FIXED_HEADER}"),
            XwdError::Version(v) => write!(f, "file version {v}, expected {XWD_FILE_VERSION}"),
            XwdError::PixmapFormat(v) => {
                write!(f, "pixmap format {v}, expected {Z_PIXMAP} (zpixmap)")
            }
            XwdError::ByteOrder(v) => write!(f, "byte order {v}, expected 0 or 1"),
            XwdError::Pixels {
                bits_per_pixel,
                red,
                green,
                blue,
            } => write!(
                f,
                "unsupported pixels: {bits_per_pixel} bits, masks red {red:#x} green {green:#x} blue {blue:#x}"
            ),
            XwdError::Size {
                width,
                height,
                bytes_per_line,
            } => {
                write!(
                    f,
                    "bad size {width}x{height} with {bytes_per_line} bytes a line"
                )
            }
        }
    }
}

/// What a valid header says about the picture that follows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct XwdHeader {
    pub width: u16,
    pub height: u16,
    pub stride: usize,
    pub format: PixelFormat,
    pub data_offset: usize,
}

/// A contiguous mask as a channel; None for zero or holey masks.
fn channel(mask: u32) -> Option<Channel> {
    let offset = mask.trailing_zeros();
    let length = mask.count_ones();
    let contiguous = mask != 0 && (mask >> offset).trailing_ones() == length;
    contiguous.then_some(Channel {
        offset: offset as u8,
        length: length as u8,
    })
}

/// Parses and bounds-checks the header at the start of `file`; never panics.
pub(crate) fn parse(file: &[u8]) -> Result<XwdHeader, XwdError> {
    let have = file.len() as u64;
    let fixed = file.get(..FIXED_HEADER).ok_or(XwdError::Truncated {
        need: FIXED_HEADER as u64,
        have,
    })?;
    let mut h = [0u32; HEADER_FIELDS];
    for (v, b) in h.iter_mut().zip(fixed.chunks_exact(4)) {
        *v = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    }
    if (h[HEADER_SIZE] as usize) < FIXED_HEADER {
        return Err(XwdError::HeaderSize(h[HEADER_SIZE]));
    }
    if h[FILE_VERSION] != XWD_FILE_VERSION {
        return Err(XwdError::Version(h[FILE_VERSION]));
    }
    if h[PIXMAP_FORMAT] != Z_PIXMAP {
        return Err(XwdError::PixmapFormat(h[PIXMAP_FORMAT]));
    }
    let bits = h[BITS_PER_PIXEL];
    let pixels_err = XwdError::Pixels {
        bits_per_pixel: bits,
        red: h[RED_MASK],
        green: h[GREEN_MASK],
        blue: h[BLUE_MASK],
    };
    if !matches!(bits, 16 | 24 | 32) {
        return Err(pixels_err);
    }
    // Masks describe the pixel value; PixelFormat reads pixels little-endian, so MSBFirst
    // pixels get their masks byte-swapped.
    let mask = |m: u32| match h[BYTE_ORDER] {
        LSB_FIRST => Ok(m),
        MSB_FIRST => Ok(m.swap_bytes() >> (32 - bits)),
        other => Err(XwdError::ByteOrder(other)),
    };
    let (red, green, blue) = (
        mask(h[RED_MASK])?,
        mask(h[GREEN_MASK])?,
        mask(h[BLUE_MASK])?,
    );
    let format = match (channel(red), channel(green), channel(blue)) {
        (Some(red), Some(green), Some(blue)) => PixelFormat {
            bits_per_pixel: bits as u8,
            red,
            green,
            blue,
        },
        _ => return Err(pixels_err),
    };
    if !format.is_supported() {
        return Err(pixels_err);
    }
    let (w, ht, bpl) = (h[PIXMAP_WIDTH], h[PIXMAP_HEIGHT], h[BYTES_PER_LINE]);
    let row = u64::from(w) * format.bytes_per_pixel() as u64;
    let size_err = XwdError::Size {
        width: w,
        height: ht,
        bytes_per_line: bpl,
    };
    let (Ok(width @ 1..), Ok(height @ 1..)) = (u16::try_from(w), u16::try_from(ht)) else {
        return Err(size_err);
    };
    if u64::from(bpl) < row {
        return Err(size_err);
    }
    // All terms are u32 or u32 * small: no u64 overflow.
    let data_offset = u64::from(h[HEADER_SIZE]) + u64::from(h[NCOLORS]) * COLOR_SIZE;
    let need = data_offset + u64::from(bpl) * u64::from(ht - 1) + row;
    if need > have {
        return Err(XwdError::Truncated { need, have });
    }
    // need <= file.len(), so both fit in usize.
    Ok(XwdHeader {
        width,
        height,
        stride: bpl as usize,
        format,
        data_offset: data_offset as usize,
    })
}

/// A live Xvfb screen file.
pub struct Xwd {
    path: String,
    file: File,
    map: ReadMap,
    header: Option<XwdHeader>,
}

impl Xwd {
    pub fn open(path: &str) -> Result<Self, SourceError> {
        let file = File::open(path).map_err(|e| SourceError::open(path, &e))?;
        let map = map_whole(path, &file)?;
        let mut xwd = Self {
            path: path.to_owned(),
            file,
            map,
            header: None,
        };
        xwd.refresh()?;
        Ok(xwd)
    }

    /// The header as the file says now (after a re-map if its size changed).
    pub(crate) fn header(&mut self) -> Result<XwdHeader, SourceError> {
        self.refresh()
    }

    /// Re-maps if the file size changed, then re-reads the header.
    fn refresh(&mut self) -> Result<XwdHeader, SourceError> {
        let len = file_len(&self.path, &self.file)?;
        if len != self.map.len() as u64 {
            self.map = map_whole(&self.path, &self.file)?;
        }
        let header = parse(self.map.bytes()).map_err(|problem| SourceError::Xwd {
            path: self.path.clone(),
            problem,
        })?;
        self.header = Some(header);
        Ok(header)
    }
}

fn file_len(path: &str, file: &File) -> Result<u64, SourceError> {
    file.metadata()
        .map(|m| m.len())
        .map_err(|e| SourceError::Query {
            path: path.to_owned(),
            call: "fstat",
            errno: errno_of(&e),
        })
}

fn map_whole(path: &str, file: &File) -> Result<ReadMap, SourceError> {
    let have = file_len(path, file)?;
    let truncated = || SourceError::Xwd {
        path: path.to_owned(),
        problem: XwdError::Truncated {
            need: FIXED_HEADER as u64,
            have,
        },
    };
    let len = usize::try_from(have)
        .ok()
        .and_then(NonZeroUsize::new)
        .ok_or_else(truncated)?;
    ReadMap::new(file, len).map_err(|errno| SourceError::Map {
        path: path.to_owned(),
        errno,
    })
}

impl Source for Xwd {
    fn frame(&mut self) -> Result<Frame<'_>, SourceError> {
        let h = self.refresh()?;
        // `parse` checked that the picture lies inside the mapping.
        let data = self.map.bytes().get(h.data_offset..).unwrap_or_default();
        Ok(Frame {
            width: h.width,
            height: h.height,
            stride: h.stride,
            format: h.format,
            data,
        })
    }

    fn describe(&self) -> String {
        match &self.header {
            Some(h) => format!("xwd:{} {}x{} {}", self.path, h.width, h.height, h.format),
            None => format!("xwd:{}", self.path),
        }
    }
}

#[cfg(test)]
#[path = "xwd_tests.rs"]
mod tests;
