//! Copies and bitmaps replayed on a model of the client's screen: whatever the source does
//! between a scan and the encoding of its rectangles, the client ends up with the source.

use super::*;
use crate::screen::BitmapEncoder;

const W: u16 = 512;
const H: u16 = 384;
const STRIDE: usize = W as usize * 4;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn frame(data: &[u8]) -> Frame<'_> {
    Frame {
        width: W,
        height: H,
        stride: STRIDE,
        format: PixelFormat::XRGB8888,
        data,
    }
}

/// Text-like rows: most rows differ, some are blank (equal), like a scrolling text view.
fn picture(rng: &mut Rng) -> Vec<u8> {
    let mut data = vec![0xff; STRIDE * usize::from(H)];
    for row in data.chunks_mut(STRIDE) {
        if rng.below(4) != 0 {
            row.iter_mut().for_each(|b| *b = rng.next() as u8);
        }
    }
    data
}

/// The source scrolls the rows `y0..y1` of columns `x0..x1` by `dy` (up when positive); the
/// uncovered rows get new content.
fn scroll(
    data: &mut [u8],
    rng: &mut Rng,
    (x0, x1): (usize, usize),
    (y0, y1): (usize, usize),
    dy: isize,
) {
    let old = data.to_vec();
    for y in y0..y1 {
        let src = y as isize + dy;
        let dst = &mut data[y * STRIDE + x0 * 4..y * STRIDE + x1 * 4];
        if (y0 as isize..y1 as isize).contains(&src) {
            let s = src as usize * STRIDE;
            dst.copy_from_slice(&old[s + x0 * 4..s + x1 * 4]);
        } else {
            dst.iter_mut().for_each(|b| *b = rng.next() as u8);
        }
    }
}

/// A window of `w`x`h` at (`x`, `y`) dragged by (`mx`, `my`) over a background of noise.
fn drag(
    data: &mut [u8],
    rng: &mut Rng,
    (x, y, w, h): (usize, usize, usize, usize),
    (mx, my): (isize, isize),
) {
    let block: Vec<Vec<u8>> = (y..y + h)
        .map(|r| data[r * STRIDE + x * 4..r * STRIDE + (x + w) * 4].to_vec())
        .collect();
    for r in y..y + h {
        data[r * STRIDE + x * 4..r * STRIDE + (x + w) * 4]
            .iter_mut()
            .for_each(|b| *b = rng.next() as u8);
    }
    let (nx, ny) = ((x as isize + mx) as usize, (y as isize + my) as usize);
    for (i, row) in block.iter().enumerate() {
        let o = (ny + i) * STRIDE + nx * 4;
        data[o..o + w * 4].copy_from_slice(row);
    }
}

/// What the client does with a copy: rows in order so an overlapping copy reads old rows.
fn apply_copy(client: &mut [u8], c: &CopyRect) {
    let (x0, x1) = (usize::from(c.dst.x) * 4, c.dst.right() as usize * 4);
    let sx = usize::from(c.src_x) * 4;
    let rows: Vec<Vec<u8>> = (0..usize::from(c.dst.h))
        .map(|i| {
            let s = (usize::from(c.src_y) + i) * STRIDE + sx;
            client[s..s + x1 - x0].to_vec()
        })
        .collect();
    for (i, row) in rows.iter().enumerate() {
        let d = (usize::from(c.dst.y) + i) * STRIDE;
        client[d + x0..d + x1].copy_from_slice(row);
    }
}

/// One scan, its copies applied to `client`; the rectangles to encode are returned.
fn scan(d: &mut Damage, source: &[u8], client: &mut [u8]) -> (Vec<Rect>, Vec<CopyRect>) {
    let (mut rects, mut copies) = (Vec::new(), Vec::new());
    d.scan_with_copies(&frame(source), &mut rects, &mut copies);
    for c in &copies {
        assert!(
            c.dst.right() <= u32::from(W) && c.dst.bottom() <= u32::from(H),
            "{c:?}"
        );
        assert!(
            u32::from(c.src_y) + u32::from(c.dst.h) <= u32::from(H),
            "{c:?}"
        );
        apply_copy(client, c);
    }
    (rects, copies)
}

/// The encoder sends `rect` of `source` (what it read, not what was scanned).
fn send(d: &mut Damage, enc: &mut BitmapEncoder, source: &[u8], client: &mut [u8], rect: Rect) {
    enc.encode(&frame(source), rect, &mut Vec::new()).unwrap();
    for y in rect.y..rect.y + rect.h {
        let o = usize::from(y) * STRIDE;
        let (x0, x1) = (o + usize::from(rect.x) * 4, o + rect.right() as usize * 4);
        client[x0..x1].copy_from_slice(&source[x0..x1]);
    }
    for &(y, col, hash) in enc.sent_segments() {
        d.sent(y, col, hash);
    }
}

/// A source, the model of its client, and the damage and encoder between them.
struct Synced {
    rng: Rng,
    source: Vec<u8>,
    client: Vec<u8>,
    d: Damage,
    enc: BitmapEncoder,
}

impl Synced {
    fn new(seed: u64) -> Self {
        let mut rng = Rng(seed);
        let source = picture(&mut rng);
        let client = vec![0; source.len()];
        let mut enc = BitmapEncoder::new();
        enc.set_track_sent(true);
        Synced {
            rng,
            source,
            client,
            d: Damage::new(W, H),
            enc,
        }
    }

    /// One scan, its copies applied and its rectangles sent; the scan's output.
    fn sync(&mut self) -> (Vec<Rect>, Vec<CopyRect>) {
        let (rects, copies) = scan(&mut self.d, &self.source, &mut self.client);
        for &r in &rects {
            send(
                &mut self.d,
                &mut self.enc,
                &self.source,
                &mut self.client,
                r,
            );
        }
        (rects, copies)
    }
}

/// Rows 40..340 of columns 64..448 scrolled up by 6: one copy; the scan's rectangles returned.
fn scroll_is_copied(s: &mut Synced) -> Vec<Rect> {
    scroll(&mut s.source, &mut s.rng, (64, 448), (40, 340), 6);
    let (rects, copies) = s.sync();
    assert_eq!(
        copies,
        vec![CopyRect {
            dst: Rect::new(64, 40, 384, 294),
            src_x: 64,
            src_y: 46
        }]
    );
    rects
}

#[test]
fn a_scrolled_region_is_copied_and_only_new_rows_are_encoded() {
    let mut s = Synced::new(7);
    let (_, copies) = s.sync();
    assert!(copies.is_empty());
    assert!(s.client == s.source);

    let rects = scroll_is_copied(&mut s);
    let encoded: u32 = rects.iter().map(|r| u32::from(r.w) * u32::from(r.h)).sum();
    assert_eq!(encoded, 384 * 6, "only the 6 uncovered rows: {rects:?}");
    assert!(s.client == s.source);
}

#[test]
fn the_client_follows_scrolls_and_changes_made_between_scan_and_encode() {
    let mut rng = Rng(0x5eed);
    let mut source = picture(&mut rng);
    let mut client = vec![0; source.len()];
    let mut d = Damage::new(W, H);
    let mut enc = BitmapEncoder::new();
    enc.set_track_sent(true);
    let (mut copied, mut sideways) = (0, 0);
    for step in 0..300 {
        let (rects, copies) = scan(&mut d, &source, &mut client);
        copied += copies.len();
        sideways += copies.iter().filter(|c| c.src_x != c.dst.x).count();
        // Between the scan and the encoding the source may scroll again (a torn frame): the
        // client then gets newer rows than the scan hashed.
        let change = |source: &mut Vec<u8>, rng: &mut Rng| {
            if rng.below(2) == 0 {
                let (w, h) = (64 + rng.below(256) as usize, 32 + rng.below(200) as usize);
                let x = 40 + rng.below(W as u64 - 80 - w as u64) as usize;
                let y = 20 + rng.below(H as u64 - 40 - h as u64) as usize;
                let mx = rng.below(41) as isize - 20;
                let my = rng.below(41) as isize - 20;
                return drag(source, rng, (x, y, w, h), (mx, my));
            }
            let x0 = rng.below(4) as usize * 64;
            let x1 = (x0 + 64 * (1 + rng.below(4) as usize)).min(usize::from(W));
            let y0 = rng.below(200) as usize;
            let y1 = (y0 + 32 + rng.below(200) as usize).min(usize::from(H));
            let dy = rng.below(41) as isize - 20;
            scroll(source, rng, (x0, x1), (y0, y1), dy);
        };
        if rng.below(3) == 0 {
            change(&mut source, &mut rng);
        }
        for r in rects {
            send(&mut d, &mut enc, &source, &mut client, r);
            if rng.below(8) == 0 {
                change(&mut source, &mut rng);
            }
        }
        // Settle: nothing changes until the client has everything.
        for _ in 0..2 {
            let (rects, _) = scan(&mut d, &source, &mut client);
            for r in rects {
                send(&mut d, &mut enc, &source, &mut client, r);
            }
        }
        assert!(
            client == source,
            "step {step}: the client differs from the source"
        );
        change(&mut source, &mut rng);
    }
    assert!(
        copied > 50 && sideways > 20,
        "copies: {copied}, sideways {sideways}"
    );
}

#[test]
fn sampled_scans_find_the_same_copies_and_none_on_a_still_screen() {
    // The agent's scans are sampled: the copy search looks only where they hashed.
    let mut s = Synced::new(7);
    s.d.set_sampling(true);
    s.sync();
    for _ in 0..20 {
        assert_eq!(s.sync(), (vec![], vec![]));
    }
    scroll_is_copied(&mut s);
    // A sample row may miss the rows a copy left; within a stride of scans all is sent.
    for _ in 0..SAMPLE_STRIDE {
        s.sync();
    }
    assert!(s.client == s.source);
    let mut s = Synced::new(11);
    s.d.set_sampling(true);
    drag_is_copied(&mut s);
    for _ in 0..SAMPLE_STRIDE {
        s.sync();
    }
    assert!(s.client == s.source);
}

/// A window dragged by (6, 3) after one scan: its whole source columns become one sideways
/// copy; the rectangles of that scan are returned.
fn drag_is_copied(s: &mut Synced) -> Vec<Rect> {
    s.sync();
    drag(&mut s.source, &mut s.rng, (100, 50, 300, 200), (6, 3));
    let (rects, copies) = s.sync();
    // Source columns 2..6 (128..384) lie inside the window: they land at 134..390.
    assert_eq!(
        copies,
        vec![CopyRect {
            dst: Rect::new(134, 53, 256, 200),
            src_x: 128,
            src_y: 50
        }]
    );
    rects
}

#[test]
fn a_dragged_window_is_copied_sideways() {
    let mut s = Synced::new(11);
    let rects = drag_is_copied(&mut s);
    let encoded: u32 = rects.iter().map(|r| u32::from(r.w) * u32::from(r.h)).sum();
    assert!(encoded < 512 * 384 / 2, "{rects:?}");
    assert!(s.client == s.source);
}

#[test]
fn invalidated_areas_are_never_a_copy_source() {
    let mut s = Synced::new(99);
    s.sync();
    // Output lost (say, dropped when the placeholder came): nothing there is known.
    s.d.invalidate_all();
    scroll(&mut s.source, &mut s.rng, (0, 512), (0, 384), 10);
    let (_, copies) = s.sync();
    assert_eq!(copies, vec![]);
}

#[test]
fn odd_sizes_and_16_bpp_never_copy_wrong_or_out_of_bounds() {
    let mut rng = Rng(0x0dd);
    let (mut copied, mut sideways) = (0, 0);
    for (w, h, format) in [
        (70u16, 33u16, PixelFormat::XRGB8888),
        (130, 200, PixelFormat::RGB565),
        (200, 150, PixelFormat::XRGB8888),
        (63, 90, PixelFormat::RGB565),
    ] {
        let bpp = format.bytes_per_pixel();
        let stride = usize::from(w) * bpp;
        let mut source: Vec<u8> = (0..stride * usize::from(h))
            .map(|_| rng.next() as u8)
            .collect();
        let mut client = vec![0u8; source.len()];
        let mut d = Damage::new(w, h);
        for step in 0..40 {
            let (mut rects, mut copies) = (Vec::new(), Vec::new());
            let frame = Frame {
                width: w,
                height: h,
                stride,
                format,
                data: &source,
            };
            d.scan_with_copies(&frame, &mut rects, &mut copies);
            copied += copies.len();
            sideways += copies.iter().filter(|c| c.src_x != c.dst.x).count();
            for c in &copies {
                assert!(c.dst.right() <= u32::from(w) && c.dst.bottom() <= u32::from(h));
                assert!(u32::from(c.src_x) + u32::from(c.dst.w) <= u32::from(w));
                assert!(u32::from(c.src_y) + u32::from(c.dst.h) <= u32::from(h));
                let len = usize::from(c.dst.w) * bpp;
                let rows: Vec<Vec<u8>> = (0..usize::from(c.dst.h))
                    .map(|i| {
                        let s = (usize::from(c.src_y) + i) * stride + usize::from(c.src_x) * bpp;
                        client[s..s + len].to_vec()
                    })
                    .collect();
                for (i, row) in rows.iter().enumerate() {
                    let o = (usize::from(c.dst.y) + i) * stride + usize::from(c.dst.x) * bpp;
                    client[o..o + len].copy_from_slice(row);
                }
            }
            for r in rects {
                for y in r.y..r.y + r.h {
                    let o = usize::from(y) * stride;
                    let (a, b) = (o + usize::from(r.x) * bpp, o + r.right() as usize * bpp);
                    client[a..b].copy_from_slice(&source[a..b]);
                }
            }
            assert!(client == source, "{w}x{h} {format:?} step {step}");
            // Next: the whole screen scrolls up, or its rows shift sideways, by a few pixels.
            let n = 1 + rng.below(6) as usize;
            if step % 2 == 0 {
                let by = (n * stride).min(source.len());
                source.rotate_left(by);
            } else {
                for row in source.chunks_mut(stride) {
                    row.rotate_right((n * bpp).min(row.len()));
                }
            }
        }
    }
    assert!(
        copied > 20 && sideways > 5,
        "copies {copied}, sideways {sideways}"
    );
}
