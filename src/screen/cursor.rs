//! The pointer the local user sees on a KMS screen lives on the cursor plane, not in the
//! picture: it goes to the admin as RDP pointer updates (a 32-bpp shape with alpha, then
//! positions), which the client draws as its own pointer, as a Windows host does. A shape is
//! cut to its visible pixels and to 32x32, the size every client takes.

use std::rc::Rc;

use ironrdp_core::{Encode as _, WriteCursor};
use ironrdp_pdu::fast_path::{FastPathUpdatePdu, Fragmentation, UpdateCode};
use ironrdp_pdu::pointer::{ColorPointerAttribute, Point16, PointerAttribute};
use xxhash_rust::xxh3::xxh3_64;

use super::encode::{EncodeError, write_pdu};

/// The largest pointer a client without the Large Pointer capability takes.
pub const MAX_SIDE: u16 = 32;

/// A pointer image, ready to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CursorShape {
    pub width: u16,
    pub height: u16,
    pub hot_x: u16,
    pub hot_y: u16,
    /// B, G, R, A rows, top-down (straight alpha).
    pub bgra: Vec<u8>,
    /// Of the pixels and hot spot: a new one means a new shape.
    pub id: u64,
    /// Where the cut starts in the image it was cut from.
    pub origin: (u16, u16),
}

/// What the cursor plane shows now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cursor {
    /// The source has no cursor plane (fbdev draws its pointer into the picture).
    None,
    Hidden,
    /// `x`, `y`: where the hot spot is on the screen.
    Shown {
        x: i32,
        y: i32,
        shape: Rc<CursorShape>,
    },
}

impl CursorShape {
    /// An ARGB8888 image (`stride` bytes a row, B, G, R, A in memory) with its hot spot, cut
    /// to the pixels that are not fully transparent and to MAX_SIDE; None when none is
    /// visible. Premultiplied or not, an opaque pixel reads the same; edges may differ slightly.
    pub fn from_argb(
        pixels: &[u8],
        stride: usize,
        width: u16,
        height: u16,
        hot: (u16, u16),
    ) -> Option<CursorShape> {
        let px = |x: u16, y: u16| {
            let i = usize::from(y) * stride + usize::from(x) * 4;
            pixels.get(i..i + 4)
        };
        let visible = |x, y| px(x, y).is_some_and(|p| p[3] != 0);
        let (mut x0, mut y0, mut x1, mut y1) = (u16::MAX, u16::MAX, 0, 0);
        for y in 0..height {
            for x in 0..width {
                if visible(x, y) {
                    (x0, y0) = (x0.min(x), y0.min(y));
                    (x1, y1) = (x1.max(x + 1), y1.max(y + 1));
                }
            }
        }
        if x1 == 0 {
            return None;
        }
        // Keep the hot spot inside the cut where the image allows, and the cut on visible
        // pixels always (a hot spot far from them is then clamped to the cut's edge).
        let left = x0
            .max(hot.0.saturating_sub(MAX_SIDE - 1))
            .min(hot.0.max(x0))
            .min(x1 - 1);
        let top = y0
            .max(hot.1.saturating_sub(MAX_SIDE - 1))
            .min(hot.1.max(y0))
            .min(y1 - 1);
        // At least 1 each: left < x1, top < y1.
        let (w, h) = ((x1 - left).min(MAX_SIDE), (y1 - top).min(MAX_SIDE));
        let mut bgra = Vec::with_capacity(usize::from(w) * usize::from(h) * 4);
        for y in top..top + h {
            for x in left..left + w {
                bgra.extend_from_slice(px(x, y).unwrap_or(&[0; 4]));
            }
        }
        let (hot_x, hot_y) = (
            hot.0.saturating_sub(left).min(w - 1),
            hot.1.saturating_sub(top).min(h - 1),
        );
        let mut key = bgra.clone();
        key.extend_from_slice(&[w as u8, h as u8, hot_x as u8, hot_y as u8]);
        Some(CursorShape {
            width: w,
            height: h,
            hot_x,
            hot_y,
            id: xxh3_64(&key),
            bgra,
            origin: (left, top),
        })
    }
}

/// What the client's pointer shows, as last sent.
#[derive(Debug, Default)]
pub struct PointerState {
    shape: Option<u64>,
    hidden: bool,
    at: Option<(u16, u16)>,
}

impl PointerState {
    /// Appends the updates that make the client's pointer show `cursor`: a new shape, hidden,
    /// and the position. Nothing when nothing changed. `move_pointer` false (the admin is
    /// pointing): the position is taken as the client's own, so only a later move by the
    /// local user is sent.
    /// Returns how many updates it wrote, and the shape when it sent one.
    pub fn update(
        &mut self,
        cursor: &Cursor,
        move_pointer: bool,
        out: &mut Vec<u8>,
    ) -> Result<(usize, Option<(u16, u16)>), EncodeError> {
        match cursor {
            Cursor::None => Ok((0, None)),
            Cursor::Hidden if self.hidden => Ok((0, None)),
            Cursor::Hidden => {
                single(UpdateCode::HiddenPointer, &[], out)?;
                self.hidden = true;
                self.shape = None;
                Ok((1, None))
            }
            Cursor::Shown { x, y, shape } => {
                let mut sent = (0, None);
                if self.shape != Some(shape.id) {
                    new_pointer(shape, out)?;
                    self.shape = Some(shape.id);
                    self.hidden = false;
                    sent = (1, Some((shape.width, shape.height)));
                }
                // Off-screen parts are clipped by the client; the hot spot itself stays on it.
                let at = (clamp(*x), clamp(*y));
                if !move_pointer {
                    self.at = Some(at);
                } else if self.at != Some(at) {
                    let pos = Point16 { x: at.0, y: at.1 };
                    let mut data = [0u8; 4];
                    pos.encode(&mut WriteCursor::new(&mut data))
                        .map_err(|e| codec("pointer position", e))?;
                    single(UpdateCode::PositionPointer, &data, out)?;
                    self.at = Some(at);
                    sent.0 += 1;
                }
                Ok(sent)
            }
        }
    }
}

impl PointerState {
    /// The client's default pointer again, if it was given another; true when sent.
    pub fn to_default(&mut self, out: &mut Vec<u8>) -> Result<bool, EncodeError> {
        if self.shape.is_none() && !self.hidden && self.at.is_none() {
            return Ok(false);
        }
        single(UpdateCode::DefaultPointer, &[], out)?;
        *self = PointerState::default();
        Ok(true)
    }
}

fn clamp(v: i32) -> u16 {
    v.clamp(0, i32::from(i16::MAX)) as u16
}

fn codec(what: &'static str, e: ironrdp_core::EncodeError) -> EncodeError {
    EncodeError::Codec {
        what,
        detail: e.to_string(),
    }
}

fn single(update_code: UpdateCode, data: &[u8], out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let pdu = FastPathUpdatePdu {
        fragmentation: Fragmentation::Single,
        update_code,
        compression_flags: None,
        compression_type: None,
        data,
    };
    write_pdu(&pdu, out)
}

/// A New Pointer update: 32 bpp XOR mask (B, G, R, A, rows bottom-up), an AND mask of zeros
/// (the alpha decides), cache entry 0.
fn new_pointer(shape: &CursorShape, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let (w, h) = (usize::from(shape.width), usize::from(shape.height));
    if w == 0 || h == 0 || shape.bgra.len() != w * h * 4 {
        return Err(EncodeError::Codec {
            what: "pointer shape",
            detail: format!("{w}x{h} with {} bytes", shape.bgra.len()),
        });
    }
    let xor: Vec<u8> = shape.bgra.chunks(w * 4).rev().flatten().copied().collect();
    // One bit a pixel, each row padded to 16 bits.
    let and = vec![0u8; w.div_ceil(16) * 2 * h];
    let attribute = PointerAttribute {
        xor_bpp: 32,
        color_pointer: ColorPointerAttribute {
            cache_index: 0,
            hot_spot: Point16 {
                x: shape.hot_x,
                y: shape.hot_y,
            },
            width: shape.width,
            height: shape.height,
            xor_mask: &xor,
            and_mask: &and,
        },
    };
    let mut data = vec![0u8; attribute.size()];
    attribute
        .encode(&mut WriteCursor::new(&mut data))
        .map_err(|e| codec("pointer shape", e))?;
    single(UpdateCode::NewPointer, &data, out)
}

#[cfg(test)]
mod tests {
    use ironrdp_core::{ReadCursor, decode_cursor};
    use ironrdp_pdu::fast_path::FastPathHeader;

    use super::*;

    /// A 64x64 cursor plane image with an opaque 10x16 arrow at (3, 2), hot spot at (3, 2).
    fn plane() -> Vec<u8> {
        let mut px = vec![0u8; 64 * 64 * 4];
        for y in 2..18 {
            for x in 3..13 {
                let i = (y * 64 + x) * 4;
                px[i..i + 4].copy_from_slice(&[x as u8, y as u8, 0x80, 0xFF]);
            }
        }
        px
    }

    fn updates(out: &[u8]) -> Vec<(UpdateCode, Vec<u8>)> {
        let mut cur = ReadCursor::new(out);
        let mut all = Vec::new();
        while !cur.is_empty() {
            let _: FastPathHeader = decode_cursor(&mut cur).unwrap();
            let u: FastPathUpdatePdu<'_> = decode_cursor(&mut cur).unwrap();
            all.push((u.update_code, u.data.to_vec()));
        }
        all
    }

    #[test]
    fn a_shape_is_cut_to_its_visible_pixels() {
        let shape = CursorShape::from_argb(&plane(), 256, 64, 64, (3, 2)).unwrap();
        assert_eq!(
            (shape.width, shape.height, shape.hot_x, shape.hot_y),
            (10, 16, 0, 0)
        );
        assert_eq!(&shape.bgra[..4], &[3, 2, 0x80, 0xFF]);
        assert!(CursorShape::from_argb(&[0; 64 * 64 * 4], 256, 64, 64, (0, 0)).is_none());
        // A big image keeps its hot spot inside the 32x32 cut.
        let big = vec![0xFFu8; 64 * 64 * 4];
        let shape = CursorShape::from_argb(&big, 256, 64, 64, (50, 40)).unwrap();
        assert_eq!((shape.width, shape.height), (MAX_SIDE, MAX_SIDE));
        assert!(shape.hot_x < MAX_SIDE && shape.hot_y < MAX_SIDE);
        assert_eq!((shape.hot_x, shape.hot_y), (31, 31));
        // A hot spot far right of and below the visible pixels: the cut stays on them.
        for hot in [(41, 0), (63, 63), (40, 2), (u16::MAX, u16::MAX)] {
            let shape = CursorShape::from_argb(&plane(), 256, 64, 64, hot).unwrap();
            assert!(shape.width >= 1 && shape.height >= 1, "{hot:?}");
            assert!(
                shape.bgra.chunks(4).any(|p| p[3] != 0),
                "{hot:?}: nothing visible"
            );
            assert!(shape.hot_x < shape.width && shape.hot_y < shape.height);
            let mut out = Vec::new();
            new_pointer(&shape, &mut out).unwrap();
        }
    }

    #[test]
    fn shape_once_then_positions_and_hidden() {
        let shape = Rc::new(CursorShape::from_argb(&plane(), 256, 64, 64, (3, 2)).unwrap());
        let mut state = PointerState::default();
        let mut out = Vec::new();
        let shown = |x, y| Cursor::Shown {
            x,
            y,
            shape: shape.clone(),
        };
        state.update(&shown(100, 50), true, &mut out).unwrap();
        let got = updates(&out);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, UpdateCode::NewPointer);
        let attr: PointerAttribute<'_> = decode_cursor(&mut ReadCursor::new(&got[0].1)).unwrap();
        assert_eq!(attr.xor_bpp, 32);
        assert_eq!(
            (attr.color_pointer.width, attr.color_pointer.height),
            (10, 16)
        );
        // Bottom-up: the first XOR row is the shape's last.
        assert_eq!(&attr.color_pointer.xor_mask[..4], &[3, 17, 0x80, 0xFF]);
        assert_eq!(got[1], (UpdateCode::PositionPointer, vec![100, 0, 50, 0]));
        out.clear();
        state.update(&shown(100, 50), true, &mut out).unwrap();
        assert!(out.is_empty(), "nothing changed");
        state.update(&shown(120, 50), false, &mut out).unwrap();
        assert!(out.is_empty(), "the admin is pointing: no position");
        state.update(&shown(120, 50), true, &mut out).unwrap();
        assert!(out.is_empty(), "where the admin left it");
        state.update(&shown(7, 8), true, &mut out).unwrap();
        assert_eq!(
            updates(&out),
            vec![(UpdateCode::PositionPointer, vec![7, 0, 8, 0])]
        );
        out.clear();
        state.update(&Cursor::Hidden, true, &mut out).unwrap();
        assert_eq!(updates(&out), vec![(UpdateCode::HiddenPointer, vec![])]);
        out.clear();
        state.update(&shown(7, 8), true, &mut out).unwrap();
        assert_eq!(updates(&out)[0].0, UpdateCode::NewPointer, "shown again");
        out.clear();
        assert!(state.to_default(&mut out).unwrap());
        assert_eq!(updates(&out), vec![(UpdateCode::DefaultPointer, vec![])]);
        out.clear();
        assert!(!state.to_default(&mut out).unwrap(), "once");
        assert!(out.is_empty());
    }
}
