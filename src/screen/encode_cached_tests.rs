//! The tile path against a model client that reads our PDUs as FreeRDP does
//! (libfreerdp/core/orders.c): bitmap updates, Cache Bitmap Rev2 and MemBlt orders, with a
//! cache that only holds what was sent into it. Every MemBlt must name a filled slot, and the
//! client's screen must equal the frame after every step.

use std::collections::HashMap;

use ironrdp_core::{Encode as _, ReadCursor, decode_cursor};
use ironrdp_graphics::rdp6::BitmapStreamDecoder;
use ironrdp_pdu::bitmap::BitmapUpdateData;
use ironrdp_pdu::fast_path::{FastPathHeader, FastPathUpdatePdu, Fragmentation, UpdateCode};

use super::*;
use crate::rdp::caps::CacheCells;
use crate::screen::MAX_FRAGMENT_PAYLOAD;
use crate::screen::synthetic::synthetic_pixel;

/// A cached bitmap: its width and its rows, top-down.
type Cached = (usize, Vec<[u8; 3]>);

struct Client {
    w: usize,
    rgb: Vec<[u8; 3]>,
    /// (cache id, index) -> what it holds.
    cache: HashMap<(u8, u16), Cached>,
    cells: CacheCells,
    mem_blts: usize,
    cached: usize,
}

/// 32-bpp bitmap data, rows bottom-up, to RGB rows top-down.
fn pixels(data: &[u8], compressed: bool, w: usize, h: usize) -> Vec<[u8; 3]> {
    let bottom_up: Vec<[u8; 3]> = if compressed {
        let mut rgb = Vec::new();
        BitmapStreamDecoder::default()
            .decode_bitmap_stream_to_rgb24(data, &mut rgb, w, h)
            .unwrap();
        rgb.chunks(3).map(|c| [c[0], c[1], c[2]]).collect()
    } else {
        assert_eq!(data.len(), w * h * 4);
        data.chunks(4).map(|c| [c[2], c[1], c[0]]).collect()
    };
    bottom_up.chunks(w).rev().flatten().copied().collect()
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn u8(&mut self) -> u8 {
        let v = self.0[0];
        self.0 = &self.0[1..];
        v
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn two_byte(&mut self) -> u16 {
        let b = self.u8();
        if b & 0x80 == 0 {
            u16::from(b)
        } else {
            (u16::from(b & 0x7F) << 8) | u16::from(self.u8())
        }
    }
    fn four_byte(&mut self) -> u32 {
        let b = self.u8();
        (0..b >> 6).fold(u32::from(b & 0x3F), |v, _| (v << 8) | u32::from(self.u8()))
    }
    fn take(&mut self, n: usize) -> &'a [u8] {
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a
    }
}

impl Client {
    fn new(w: u16, h: u16, cells: CacheCells) -> Self {
        Client {
            w: usize::from(w),
            rgb: vec![[0; 3]; usize::from(w) * usize::from(h)],
            cache: HashMap::new(),
            cells,
            mem_blts: 0,
            cached: 0,
        }
    }

    fn apply(&mut self, mut bytes: &[u8]) {
        let mut partial: Vec<u8> = Vec::new();
        while !bytes.is_empty() {
            let header: FastPathHeader = decode_cursor(&mut ReadCursor::new(bytes)).unwrap();
            let (pdu, rest) = bytes.split_at(header.size() + header.data_length);
            bytes = rest;
            let mut cursor = ReadCursor::new(pdu);
            let _: FastPathHeader = decode_cursor(&mut cursor).unwrap();
            let update: FastPathUpdatePdu<'_> = decode_cursor(&mut cursor).unwrap();
            assert!(update.compression_flags.is_none());
            partial.extend_from_slice(update.data);
            if matches!(
                update.fragmentation,
                Fragmentation::First | Fragmentation::Next
            ) {
                continue;
            }
            let data = std::mem::take(&mut partial);
            match update.update_code {
                UpdateCode::Bitmap => self.bitmap(&data),
                UpdateCode::Orders => self.orders(&data),
                other => panic!("{other:?}"),
            }
        }
        assert!(partial.is_empty());
    }

    fn bitmap(&mut self, data: &[u8]) {
        let decoded: BitmapUpdateData<'_> = decode_cursor(&mut ReadCursor::new(data)).unwrap();
        for bmp in &decoded.rectangles {
            let (bw, bh) = (usize::from(bmp.width), usize::from(bmp.height));
            let rows = pixels(
                bmp.bitmap_data,
                bmp.compressed_data_header.is_some(),
                bw,
                bh,
            );
            let r = &bmp.rectangle;
            for y in r.top..=r.bottom {
                for x in r.left..=r.right {
                    let src = usize::from(y - r.top) * bw + usize::from(x - r.left);
                    self.rgb[usize::from(y) * self.w + usize::from(x)] = rows[src];
                }
            }
        }
    }

    fn orders(&mut self, data: &[u8]) {
        let mut r = Reader(data);
        let count = r.u16();
        for _ in 0..count {
            match r.u8() {
                0x03 => {
                    let len = r.u16() as i16;
                    let extra = r.u16();
                    let kind = r.u8();
                    let body = r.take(usize::try_from(len).unwrap() + 7);
                    self.cache_bitmap(extra, kind, body);
                }
                0x09 => {
                    assert_eq!(r.u8(), 0x0D, "MemBlt");
                    assert_eq!(r.u16(), 0x01FF);
                    let id = r.u16();
                    let [x, y, w, h] = [0; 4].map(|_| r.u16() as usize);
                    assert_eq!(r.u8(), 0xCC);
                    assert_eq!((r.u16(), r.u16()), (0, 0));
                    let index = r.u16();
                    let (bw, rows) = self
                        .cache
                        .get(&((id & 0xFF) as u8, index))
                        .unwrap_or_else(|| panic!("MemBlt of empty slot {id}:{index}"));
                    for dy in 0..h {
                        for dx in 0..w {
                            self.rgb[(y + dy) * self.w + x + dx] = rows[dy * bw + dx];
                        }
                    }
                    self.mem_blts += 1;
                }
                other => panic!("order control flags {other:#x}"),
            }
        }
        assert!(r.0.is_empty(), "bytes after the orders");
    }

    fn cache_bitmap(&mut self, extra: u16, kind: u8, body: &[u8]) {
        let mut r = Reader(body);
        let id = (extra & 0x7) as u8;
        assert_eq!((extra >> 3) & 0xF, 6, "32 bpp");
        let flags = extra >> 7;
        let (_, entries, persistent) = self.cells.iter().nth(usize::from(id)).unwrap();
        assert_eq!(
            flags & 0x02 != 0,
            persistent,
            "keys exactly for persistent caches"
        );
        if persistent {
            r.take(8);
        }
        let w = r.two_byte();
        let h = if flags & 0x01 != 0 { w } else { r.two_byte() };
        let len = r.four_byte() as usize;
        let index = r.two_byte();
        assert!(u32::from(index) < entries, "index {index} of {entries}");
        let compressed = kind == 0x05;
        let mut stream_len = len;
        if compressed && flags & 0x08 == 0 {
            let hdr = r.take(8);
            stream_len = usize::from(u16::from_le_bytes([hdr[2], hdr[3]]));
            assert_eq!(len, stream_len + 8);
        }
        let data = r.take(stream_len);
        assert!(r.0.is_empty(), "bytes after the bitmap");
        let (w, h) = (usize::from(w), usize::from(h));
        self.cache
            .insert((id, index), (w, pixels(data, compressed, w, h)));
        self.cached += 1;
    }

    fn shows(&self, frame: &[u8]) -> bool {
        frame
            .chunks(4)
            .zip(&self.rgb)
            .all(|(px, rgb)| [px[2], px[1], px[0]] == *rgb)
    }
}

fn cells(list: &[(u32, bool)]) -> CacheCells {
    CacheCells::of(list)
}

/// A test card (`step` even) or noise that does not compress (odd), different each step.
fn picture(w: u16, h: u16, step: u32) -> Vec<u8> {
    (0..h)
        .flat_map(|y| (0..w).map(move |x| (x, y)))
        .flat_map(|(x, y)| {
            if step.is_multiple_of(2) {
                return synthetic_pixel(w, h, step, x, y).to_le_bytes();
            }
            let mut v = (u64::from(x) << 32 | u64::from(y) << 8 | u64::from(step)) + 1;
            for _ in 0..3 {
                v ^= v << 13;
                v ^= v >> 7;
                v ^= v << 17;
            }
            ((v >> 20) as u32 & 0xFF_FFFF).to_le_bytes()
        })
        .collect()
}

/// Two pictures, flipped: the second showing of each is MemBlts only, and far smaller.
fn flips(cells: CacheCells, skip_alpha: bool, no_header: bool) -> Vec<usize> {
    let (w, h) = (330, 200);
    let mut enc = BitmapEncoder::new();
    enc.set_skip_alpha(skip_alpha);
    enc.set_max_update_len(65_535);
    enc.set_bitmap_cache(Some(&cells), no_header);
    assert!(enc.bitmap_cache_slots().is_some());
    let mut client = Client::new(w, h, cells);
    let mut sizes = Vec::new();
    for step in [1, 2, 1, 2, 1] {
        let data = picture(w, h, step);
        let frame = Frame::xrgb8888(w, h, &data);
        let mut out = Vec::new();
        enc.encode(&frame, Rect::new(0, 0, w, h), &mut out).unwrap();
        client.apply(&out);
        assert!(client.shows(&data), "step {step}");
        sizes.push(out.len());
    }
    // 5x3 whole tiles each time.
    assert_eq!(client.mem_blts, 5 * 15);
    sizes
}

#[test]
fn flipped_pictures_come_from_the_cache() {
    for (skip_alpha, no_header) in [(true, true), (true, false), (false, true), (false, false)] {
        let sizes = flips(
            cells(&[(600, false), (600, false), (100, false)]),
            skip_alpha,
            no_header,
        );
        assert!(
            sizes[2] * 5 < sizes[0] && sizes[3] * 5 < sizes[1],
            "{skip_alpha} {no_header}: {sizes:?}"
        );
    }
}

#[test]
fn persistent_caches_get_keys() {
    flips(cells(&[(0, false), (0, false), (100, true)]), true, true);
}

/// A cache smaller than one picture: slots are reused all the time, and the client still
/// shows every frame exactly (every MemBlt names what the slot holds now).
#[test]
fn a_small_cache_evicts_but_never_misdraws() {
    let sizes = flips(
        cells(&[(0, false), (0, false), (4, false), (3, false)]),
        true,
        true,
    );
    assert!(sizes.iter().all(|&s| s > 1000), "{sizes:?}");
}

#[test]
fn partial_tiles_and_odd_areas_go_as_bitmaps() {
    let (w, h) = (300, 170);
    let cells = cells(&[(0, false), (0, false), (64, false)]);
    let mut enc = BitmapEncoder::new();
    enc.set_max_update_len(65_535);
    enc.set_bitmap_cache(Some(&cells), true);
    let mut client = Client::new(w, h, cells);
    let data = picture(w, h, 3);
    let frame = Frame::xrgb8888(w, h, &data);
    let mut out = Vec::new();
    enc.encode(&frame, Rect::new(0, 0, w, h), &mut out).unwrap();
    client.apply(&out);
    assert!(client.shows(&data));
    // An area with no whole tile, one across tile borders, one inside the screen's edge.
    for (i, area) in [
        Rect::new(10, 10, 50, 30),
        Rect::new(40, 20, 150, 130),
        Rect::new(250, 100, 50, 70),
    ]
    .into_iter()
    .enumerate()
    {
        let data = picture(w, h, 4 + i as u32);
        let frame = Frame::xrgb8888(w, h, &data);
        let mut out = Vec::new();
        enc.encode(&frame, area, &mut out).unwrap();
        client.apply(&out);
        for y in area.y..area.y + area.h {
            for x in area.x..area.x + area.w {
                let i = usize::from(y) * usize::from(w) + usize::from(x);
                let px = &data[i * 4..i * 4 + 4];
                assert_eq!(client.rgb[i], [px[2], px[1], px[0]], "{x},{y}");
            }
        }
    }
    // Only 64..128 x 64..128 is a whole tile of those areas (besides the first frame's 4x2).
    assert_eq!(client.mem_blts, 8 + 1);
}

#[test]
fn no_cache_for_clients_with_small_updates_or_no_tile_caches() {
    let mut enc = BitmapEncoder::new();
    enc.set_bitmap_cache(Some(&cells(&[(600, false), (600, false)])), true);
    assert_eq!(
        enc.bitmap_cache_slots(),
        None,
        "caches 0 and 1 are too small for tiles"
    );
    enc.set_bitmap_cache(Some(&cells(&[(0, false), (0, false), (9, false)])), true);
    enc.set_max_update_len(MAX_FRAGMENT_PAYLOAD);
    assert_eq!(
        enc.bitmap_cache_slots(),
        Some(9),
        "a tile's orders fit one fragment"
    );
    enc.set_max_update_len(8000);
    assert_eq!(
        enc.bitmap_cache_slots(),
        None,
        "one tile does not fit one update"
    );
    enc.set_max_update_len(65_535);
    assert_eq!(enc.bitmap_cache_slots(), Some(9));
}
