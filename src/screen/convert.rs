//! Packed pixels to three 8-bit planes (the shape the planar codec takes).

use super::frame::{Channel, PixelFormat};

#[derive(Clone, Debug)]
pub(crate) enum Converter {
    /// 8-bit channels on byte boundaries (XRGB8888, XBGR8888, RGB888): a shift each.
    Bytes { bpp: usize, shifts: [u32; 3] },
    /// Anything else (RGB565, 10-bit, ...): shift, mask, then a table to 8 bits.
    Table { bpp: usize, chans: Box<[Lut; 3]> },
}

#[derive(Clone, Debug)]
pub(crate) struct Lut {
    shift: u32,
    mask: u32,
    /// Value (after dropping bits beyond 8) to 8 bits, full scale to 255.
    to8: [u8; 256],
}

impl Lut {
    fn new(c: Channel) -> Self {
        let length = u32::from(c.length);
        // Wider than 8 bits: keep the top 8 (a 10-bit 1023 becomes 255).
        let drop = length.saturating_sub(8);
        let max = (1u32 << (length - drop)) - 1;
        let bits = length - drop;
        let mut to8 = [0u8; 256];
        for (v, out) in (0u32..).zip(to8.iter_mut()).take(max as usize + 1) {
            // Bit replication (5-bit abcde -> abcdeabc): 0 -> 0, max -> 255, like pixman.
            let (mut wide, mut n) = (0u32, 0);
            while n < 8 {
                wide = wide << bits | v;
                n += bits;
            }
            *out = (wide >> (n - 8)) as u8;
        }
        Lut {
            shift: u32::from(c.offset) + drop,
            mask: max,
            to8,
        }
    }

    #[inline]
    fn get(&self, px: u32) -> u8 {
        self.to8[((px >> self.shift) & self.mask) as usize]
    }
}

impl Converter {
    /// None when the format is not `is_supported`.
    pub(crate) fn new(f: PixelFormat) -> Option<Self> {
        if !f.is_supported() {
            return None;
        }
        let bpp = f.bytes_per_pixel();
        let chans = [f.red, f.green, f.blue];
        if chans.iter().all(|c| c.length == 8 && c.offset % 8 == 0) {
            return Some(Converter::Bytes {
                bpp,
                shifts: chans.map(|c| u32::from(c.offset)),
            });
        }
        Some(Converter::Table {
            bpp,
            chans: Box::new(chans.map(Lut::new)),
        })
    }

    /// Splits the whole pixels of `src` into `r`, `g`, `b` (as many as the shortest holds).
    pub(crate) fn row(&self, src: &[u8], r: &mut [u8], g: &mut [u8], b: &mut [u8]) {
        match self {
            // `is_supported` allows 2, 3 or 4 bytes a pixel; constant sizes let the loops unroll.
            Converter::Bytes { bpp: 2, shifts } => bytes::<2>(src, *shifts, r, g, b),
            Converter::Bytes { bpp: 3, shifts } => bytes::<3>(src, *shifts, r, g, b),
            Converter::Bytes { bpp: _, shifts } => bytes::<4>(src, *shifts, r, g, b),
            Converter::Table { bpp: 2, chans } => table::<2>(src, chans, r, g, b),
            Converter::Table { bpp: 3, chans } => table::<3>(src, chans, r, g, b),
            Converter::Table { bpp: _, chans } => table::<4>(src, chans, r, g, b),
        }
    }
}

/// The pixel value of `N` little-endian bytes.
#[inline]
fn value<const N: usize>(px: &[u8; N]) -> u32 {
    let mut v = [0u8; 4];
    v[..N].copy_from_slice(px);
    u32::from_le_bytes(v)
}

#[inline]
fn bytes<const N: usize>(
    src: &[u8],
    [rs, gs, bs]: [u32; 3],
    r: &mut [u8],
    g: &mut [u8],
    b: &mut [u8],
) {
    // Whole-pixel arrays and shifts instead of indexing: no bounds checks, and it vectorises.
    let (pixels, _) = src.as_chunks::<N>();
    for (px, (r, (g, b))) in pixels.iter().zip(r.iter_mut().zip(g.iter_mut().zip(b))) {
        let v = value(px);
        *r = (v >> rs) as u8;
        *g = (v >> gs) as u8;
        *b = (v >> bs) as u8;
    }
}

#[inline]
fn table<const N: usize>(
    src: &[u8],
    [lr, lg, lb]: &[Lut; 3],
    r: &mut [u8],
    g: &mut [u8],
    b: &mut [u8],
) {
    let (pixels, _) = src.as_chunks::<N>();
    for (px, (r, (g, b))) in pixels.iter().zip(r.iter_mut().zip(g.iter_mut().zip(b))) {
        let v = value(px);
        *r = lr.get(v);
        *g = lg.get(v);
        *b = lb.get(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(f: PixelFormat, px: &[u8]) -> [u8; 3] {
        let (mut r, mut g, mut b) = ([0u8], [0u8], [0u8]);
        Converter::new(f).unwrap().row(px, &mut r, &mut g, &mut b);
        [r[0], g[0], b[0]]
    }

    #[test]
    fn xrgb8888_picks_bytes() {
        assert!(matches!(
            Converter::new(PixelFormat::XRGB8888),
            Some(Converter::Bytes { .. })
        ));
        assert_eq!(
            one(PixelFormat::XRGB8888, &[0x33, 0x22, 0x11, 0xFF]),
            [0x11, 0x22, 0x33]
        );
    }

    #[test]
    fn rgb565_scales_to_full_range() {
        let c = |v: u16| one(PixelFormat::RGB565, &v.to_le_bytes());
        assert_eq!(c(0xF800), [255, 0, 0]);
        assert_eq!(c(0x07E0), [0, 255, 0]);
        assert_eq!(c(0x001F), [0, 0, 255]);
        assert_eq!(c(0xFFFF), [255, 255, 255]);
        assert_eq!(c(0x0000), [0, 0, 0]);
        // Mid values: 16/31 and 32/63 of full scale.
        assert_eq!(c(0x8410), [132, 130, 132]);
        // Lowest steps: 1/31 * 255 = 8.2, 1/63 * 255 = 4.05.
        assert_eq!(c(0x0821), [8, 4, 8]);
    }

    #[test]
    fn other_bitfields() {
        let bgr24 = PixelFormat {
            bits_per_pixel: 24,
            red: Channel {
                offset: 0,
                length: 8,
            },
            green: Channel {
                offset: 8,
                length: 8,
            },
            blue: Channel {
                offset: 16,
                length: 8,
            },
        };
        assert_eq!(one(bgr24, &[1, 2, 3]), [1, 2, 3]);
        let x2r10g10b10 = PixelFormat {
            bits_per_pixel: 32,
            red: Channel {
                offset: 20,
                length: 10,
            },
            green: Channel {
                offset: 10,
                length: 10,
            },
            blue: Channel {
                offset: 0,
                length: 10,
            },
        };
        let px: u32 = (1023 << 20) | (512 << 10) | 3;
        assert_eq!(one(x2r10g10b10, &px.to_le_bytes()), [255, 128, 0]);
        let rgb555 = PixelFormat {
            bits_per_pixel: 16,
            red: Channel {
                offset: 10,
                length: 5,
            },
            green: Channel {
                offset: 5,
                length: 5,
            },
            blue: Channel {
                offset: 0,
                length: 5,
            },
        };
        assert_eq!(one(rgb555, &0x7C1Fu16.to_le_bytes()), [255, 0, 255]);
        // A 1-bit channel is off or full.
        let one_bit = PixelFormat {
            red: Channel {
                offset: 15,
                length: 1,
            },
            ..rgb555
        };
        assert_eq!(one(one_bit, &0x8000u16.to_le_bytes())[0], 255);
        assert!(
            Converter::new(PixelFormat {
                bits_per_pixel: 8,
                ..rgb555
            })
            .is_none()
        );
    }

    #[test]
    fn short_outputs_take_what_fits() {
        let c = Converter::new(PixelFormat::XRGB8888).unwrap();
        let (mut r, mut g, mut b) = ([0u8; 2], [0u8; 2], [0u8; 1]);
        c.row(&[1, 2, 3, 0, 4, 5, 6, 0], &mut r, &mut g, &mut b);
        assert_eq!((r, g, b), ([3, 0], [2, 0], [1]));
    }
}
