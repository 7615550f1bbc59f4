//! Plain picture types shared by sources, damage and encode.

use core::fmt;

/// An area of the screen in pixels; `right`/`bottom` are exclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rect {
    pub x: u16,
    pub y: u16,
    pub w: u16,
    pub h: u16,
}

impl Rect {
    pub const fn new(x: u16, y: u16, w: u16, h: u16) -> Self {
        Self { x, y, w, h }
    }

    /// One past the last column (u32: `x + w` may pass u16::MAX).
    pub const fn right(&self) -> u32 {
        self.x as u32 + self.w as u32
    }

    /// One past the last row.
    pub const fn bottom(&self) -> u32 {
        self.y as u32 + self.h as u32
    }

    pub const fn is_empty(&self) -> bool {
        self.w == 0 || self.h == 0
    }

    /// The part of `self` inside a `width`x`height` screen, or None when nothing is left.
    pub fn clip(&self, width: u16, height: u16) -> Option<Rect> {
        let right = self.right().min(u32::from(width));
        let bottom = self.bottom().min(u32::from(height));
        if right <= u32::from(self.x) || bottom <= u32::from(self.y) {
            return None;
        }
        // Both differences are below the u16 screen size.
        Some(Rect {
            x: self.x,
            y: self.y,
            w: (right - u32::from(self.x)) as u16,
            h: (bottom - u32::from(self.y)) as u16,
        })
    }
}

impl fmt::Display for Rect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}+{}+{}", self.w, self.h, self.x, self.y)
    }
}

/// Where one colour sits in a pixel value (like the kernel's fb_bitfield).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Channel {
    pub offset: u8,
    pub length: u8,
}

/// A packed pixel layout; the pixel value is read little-endian from `bits_per_pixel / 8` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PixelFormat {
    pub bits_per_pixel: u8,
    pub red: Channel,
    pub green: Channel,
    pub blue: Channel,
}

impl PixelFormat {
    pub const XRGB8888: Self = Self {
        bits_per_pixel: 32,
        red: Channel {
            offset: 16,
            length: 8,
        },
        green: Channel {
            offset: 8,
            length: 8,
        },
        blue: Channel {
            offset: 0,
            length: 8,
        },
    };

    pub const RGB565: Self = Self {
        bits_per_pixel: 16,
        red: Channel {
            offset: 11,
            length: 5,
        },
        green: Channel {
            offset: 5,
            length: 6,
        },
        blue: Channel {
            offset: 0,
            length: 5,
        },
    };

    /// Bytes a pixel takes in memory (rounded up, so never 0 for a sane format).
    pub const fn bytes_per_pixel(&self) -> usize {
        (self.bits_per_pixel as usize).div_ceil(8)
    }

    /// True when we can convert it: 16, 24 or 32 bits, each channel 1..=16 bits inside the pixel.
    pub fn is_supported(&self) -> bool {
        matches!(self.bits_per_pixel, 16 | 24 | 32)
            && [self.red, self.green, self.blue].iter().all(|c| {
                (1..=16).contains(&c.length)
                    && u32::from(c.offset) + u32::from(c.length) <= u32::from(self.bits_per_pixel)
            })
    }
}

impl fmt::Display for PixelFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == Self::XRGB8888 {
            return f.write_str("XRGB8888");
        }
        if *self == Self::RGB565 {
            return f.write_str("RGB565");
        }
        let c = |c: Channel| format!("{}:{}", c.offset, c.length);
        write!(
            f,
            "{}bpp r{} g{} b{}",
            self.bits_per_pixel,
            c(self.red),
            c(self.green),
            c(self.blue)
        )
    }
}

/// A borrowed picture: row `y` starts at `y * stride` in `data`.
#[derive(Clone, Copy)]
pub struct Frame<'a> {
    pub width: u16,
    pub height: u16,
    pub stride: usize,
    pub format: PixelFormat,
    pub data: &'a [u8],
}

impl Frame<'_> {
    /// A packed XRGB8888 picture (stride = 4 × width), as synthetic sources and tests make.
    pub fn xrgb8888(width: u16, height: u16, data: &[u8]) -> Frame<'_> {
        Frame {
            width,
            height,
            stride: usize::from(width) * 4,
            format: PixelFormat::XRGB8888,
            data,
        }
    }

    /// Bytes of visible pixels in one row.
    pub fn row_len(&self) -> usize {
        usize::from(self.width) * self.format.bytes_per_pixel()
    }

    /// The visible pixels of row `y`, or None if `y` is outside or `data` is too short.
    pub fn row(&self, y: u16) -> Option<&[u8]> {
        let start = usize::from(y).checked_mul(self.stride)?;
        if y >= self.height {
            return None;
        }
        self.data.get(start..start.checked_add(self.row_len())?)
    }

    /// True when every row lies inside `data` (a source's contract; checked, not trusted).
    pub fn is_consistent(&self) -> bool {
        if self.width == 0 || self.height == 0 {
            return true;
        }
        if self.stride < self.row_len() {
            return false;
        }
        let last = usize::from(self.height - 1).checked_mul(self.stride);
        match last.and_then(|l| l.checked_add(self.row_len())) {
            Some(end) => end <= self.data.len(),
            None => false,
        }
    }
}

impl fmt::Debug for Frame<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frame")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("stride", &self.stride)
            .field("format", &self.format)
            .field("data.len()", &self.data.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_keeps_the_inside_part() {
        let r = Rect::new(1000, 700, 100, 100);
        assert_eq!(r.clip(1024, 768), Some(Rect::new(1000, 700, 24, 68)));
        assert_eq!(Rect::new(1024, 0, 10, 10).clip(1024, 768), None);
        assert_eq!(Rect::new(0, 0, 0, 10).clip(1024, 768), None);
        assert_eq!(
            Rect::new(u16::MAX, u16::MAX, u16::MAX, u16::MAX).clip(u16::MAX, u16::MAX),
            None
        );
        assert_eq!(Rect::new(u16::MAX - 1, 0, u16::MAX, 1).right(), 131_069);
    }

    #[test]
    fn format_names_and_support() {
        assert_eq!(PixelFormat::XRGB8888.to_string(), "XRGB8888");
        assert_eq!(PixelFormat::RGB565.to_string(), "RGB565");
        let bgr = PixelFormat {
            red: Channel {
                offset: 0,
                length: 8,
            },
            blue: Channel {
                offset: 16,
                length: 8,
            },
            ..PixelFormat::XRGB8888
        };
        assert_eq!(bgr.to_string(), "32bpp r0:8 g8:8 b16:8");
        assert!(bgr.is_supported());
        let pal8 = PixelFormat {
            bits_per_pixel: 8,
            ..PixelFormat::RGB565
        };
        assert!(!pal8.is_supported());
        let outside = PixelFormat {
            red: Channel {
                offset: 12,
                length: 5,
            },
            ..PixelFormat::RGB565
        };
        assert!(!outside.is_supported());
    }

    #[test]
    fn rows_are_bounded_by_data() {
        let data = [0u8; 40];
        let f = Frame {
            width: 2,
            height: 3,
            stride: 16,
            format: PixelFormat::XRGB8888,
            data: &data,
        };
        assert!(f.is_consistent());
        assert_eq!(f.row(2).map(<[u8]>::len), Some(8));
        assert_eq!(f.row(3), None);
        let short = Frame {
            data: &data[..39],
            ..f
        };
        assert!(!short.is_consistent());
        assert_eq!(short.row(2), None);
        let narrow = Frame { stride: 4, ..f };
        assert!(!narrow.is_consistent());
    }
}
