use super::*;

/// An owned picture to poke pixels into; `pad` extra bytes per row.
struct Pic {
    w: u16,
    h: u16,
    stride: usize,
    format: PixelFormat,
    data: Vec<u8>,
}

impl Pic {
    fn new(w: u16, h: u16, pad: usize, format: PixelFormat) -> Self {
        let stride = usize::from(w) * format.bytes_per_pixel() + pad;
        // Varied contents, so equal tiles are not the reason nothing is reported.
        let mut s = 0x2545_F491_4F6C_DD1Du64;
        let data = (0..stride * usize::from(h))
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                s as u8
            })
            .collect();
        Pic {
            w,
            h,
            stride,
            format,
            data,
        }
    }

    fn frame(&self) -> Frame<'_> {
        Frame {
            width: self.w,
            height: self.h,
            stride: self.stride,
            format: self.format,
            data: &self.data,
        }
    }

    fn poke(&mut self, x: u16, y: u16) {
        let i = usize::from(y) * self.stride + usize::from(x) * self.format.bytes_per_pixel();
        self.data[i] ^= 0x01;
    }

    fn scan(&self, d: &mut Damage) -> Vec<Rect> {
        let mut out = Vec::new();
        d.scan(&self.frame(), &mut out);
        out
    }
}

fn r(x: u16, y: u16, w: u16, h: u16) -> Rect {
    Rect::new(x, y, w, h)
}

/// The rectangles tile the screen exactly once and each fits one bitmap.
fn assert_exact_cover(rects: &[Rect], w: u16, h: u16) {
    let mut seen = vec![0u8; usize::from(w) * usize::from(h)];
    for rc in rects {
        assert!(fits_one_bitmap(u32::from(rc.w), u32::from(rc.h)), "{rc:?}");
        assert!(rc.w % 4 == 0 || rc.right() == u32::from(w), "{rc:?}");
        for y in rc.y..rc.y + rc.h {
            for x in rc.x..rc.x + rc.w {
                seen[usize::from(y) * usize::from(w) + usize::from(x)] += 1;
            }
        }
    }
    assert!(seen.iter().all(|&n| n == 1));
}

#[test]
fn first_scan_reports_everything_then_nothing() {
    let pic = Pic::new(1000, 300, 0, PixelFormat::XRGB8888);
    let mut d = Damage::new(1000, 300);
    let first = pic.scan(&mut d);
    assert_exact_cover(&first, 1000, 300);
    // 64-row bands: 3 tiles (192 px) a rectangle. The clipped 44-row band takes 5 (320 px),
    // and its last run 5 too, as the edge tile is only 40 px wide (360 * 44 * 4 = 63,360).
    assert_eq!(first[0], r(0, 0, 192, 64));
    assert_eq!(
        first[first.len() - 2..],
        [r(320, 256, 320, 44), r(640, 256, 360, 44)]
    );
    assert_eq!(pic.scan(&mut d), vec![]);
}

#[test]
fn finds_exactly_the_changed_tiles() {
    let mut pic = Pic::new(1024, 768, 0, PixelFormat::XRGB8888);
    let mut d = Damage::new(1024, 768);
    pic.scan(&mut d);
    pic.poke(0, 0);
    pic.poke(130, 64);
    pic.poke(1023, 767);
    // Each tile is cut to the rows that changed.
    assert_eq!(
        pic.scan(&mut d),
        vec![r(0, 0, 64, 1), r(128, 64, 64, 1), r(960, 767, 64, 1)]
    );
    assert_eq!(pic.scan(&mut d), vec![]);
    // Every pixel of a tile counts: the corners of tile (5, 3).
    for (x, y) in [(320, 192), (383, 192), (320, 255), (383, 255)] {
        pic.poke(x, y);
        assert_eq!(pic.scan(&mut d), vec![r(320, y, 64, 1)], "{x},{y}");
    }
}

#[test]
fn merged_tiles_span_the_union_of_their_changed_rows() {
    let mut pic = Pic::new(640, 480, 0, PixelFormat::XRGB8888);
    let mut d = Damage::new(640, 480);
    pic.scan(&mut d);
    for (x, y) in [(5, 70), (9, 72), (70, 100), (300, 200), (300, 210)] {
        pic.poke(x, y);
    }
    assert_eq!(
        pic.scan(&mut d),
        vec![r(0, 70, 128, 31), r(256, 200, 64, 11)]
    );
}

#[test]
fn merges_runs_up_to_one_bitmap() {
    let mut pic = Pic::new(1024, 768, 0, PixelFormat::XRGB8888);
    let mut d = Damage::new(1024, 768);
    pic.scan(&mut d);
    // First and last row of each tile: the whole tile height.
    for tx in [0, 1, 2, 3, 5, 6] {
        pic.poke(tx * 64 + 10, 64);
        pic.poke(tx * 64 + 10, 127);
    }
    assert_eq!(
        pic.scan(&mut d),
        vec![r(0, 64, 192, 64), r(192, 64, 64, 64), r(320, 64, 128, 64)]
    );
}

#[test]
fn short_bottom_band_merges_wider() {
    // 1080 = 16 * 64 + 56: a 56-row band fits 4 tiles (256 * 56 * 4 = 57,344 bytes).
    let mut pic = Pic::new(1920, 1080, 0, PixelFormat::XRGB8888);
    let mut d = Damage::new(1920, 1080);
    pic.scan(&mut d);
    for tx in 0..5 {
        pic.poke(tx * 64, 1024);
        pic.poke(tx * 64, 1079);
    }
    assert_eq!(
        pic.scan(&mut d),
        vec![r(0, 1024, 256, 56), r(256, 1024, 64, 56)]
    );
}

#[test]
fn right_edge_is_clipped() {
    let mut pic = Pic::new(1000, 200, 0, PixelFormat::XRGB8888);
    let mut d = Damage::new(1000, 200);
    pic.scan(&mut d);
    pic.poke(999, 199);
    pic.poke(900, 199);
    assert_eq!(pic.scan(&mut d), vec![r(896, 199, 104, 1)]);
}

#[test]
fn invalidate_reports_unchanged_tiles_once() {
    let pic = Pic::new(640, 480, 0, PixelFormat::XRGB8888);
    let mut d = Damage::new(640, 480);
    pic.scan(&mut d);
    d.invalidate(r(100, 100, 1, 1));
    assert_eq!(pic.scan(&mut d), vec![r(64, 64, 64, 64)]);
    assert_eq!(pic.scan(&mut d), vec![]);
    // Spanning tile borders, and partly off screen.
    d.invalidate(r(60, 470, 10, 100));
    assert_eq!(pic.scan(&mut d), vec![r(0, 448, 128, 32)]);
    d.invalidate(r(640, 0, 10, 10));
    d.invalidate(r(0, 0, 0, 10));
    assert_eq!(pic.scan(&mut d), vec![]);
    d.invalidate_all();
    assert_exact_cover(&pic.scan(&mut d), 640, 480);
    assert_eq!(pic.scan(&mut d), vec![]);
}

#[test]
fn size_or_format_change_resets() {
    let mut d = Damage::new(640, 480);
    let a = Pic::new(640, 480, 0, PixelFormat::XRGB8888);
    a.scan(&mut d);
    let b = Pic::new(800, 600, 0, PixelFormat::XRGB8888);
    assert_exact_cover(&b.scan(&mut d), 800, 600);
    assert_eq!(d.size(), (800, 600));
    assert_eq!(b.scan(&mut d), vec![]);
    // The same bytes as another format are other colours: all dirty again.
    let bgr = PixelFormat {
        red: PixelFormat::XRGB8888.blue,
        blue: PixelFormat::XRGB8888.red,
        ..PixelFormat::XRGB8888
    };
    let c = Pic {
        format: bgr,
        ..Pic::new(800, 600, 0, PixelFormat::XRGB8888)
    };
    assert_eq!(c.data, b.data);
    assert_exact_cover(&c.scan(&mut d), 800, 600);
}

#[test]
fn stride_padding_is_ignored() {
    let mut pic = Pic::new(100, 70, 12, PixelFormat::XRGB8888);
    let mut d = Damage::new(100, 70);
    pic.scan(&mut d);
    pic.data[400..412].fill(0xAB); // the padding of row 0
    assert_eq!(pic.scan(&mut d), vec![]);
    pic.poke(99, 0);
    assert_eq!(pic.scan(&mut d), vec![r(64, 0, 36, 1)]);
}

#[test]
fn rgb565_tiles() {
    let mut pic = Pic::new(300, 100, 0, PixelFormat::RGB565);
    let mut d = Damage::new(300, 100);
    pic.scan(&mut d);
    pic.poke(128, 99);
    pic.poke(299, 0);
    assert_eq!(pic.scan(&mut d), vec![r(256, 0, 44, 1), r(128, 99, 64, 1)]);
}

#[test]
fn inconsistent_frames_do_not_panic() {
    let mut d = Damage::new(0, 0);
    let empty = Frame {
        width: 0,
        height: 0,
        stride: 0,
        format: PixelFormat::XRGB8888,
        data: &[],
    };
    let mut out = Vec::new();
    d.scan(&empty, &mut out);
    assert_eq!(out, vec![]);
    let short = Frame {
        width: 200,
        height: 100,
        stride: 800,
        format: PixelFormat::XRGB8888,
        data: &[1; 1000],
    };
    d.scan(&short, &mut out);
    assert_exact_cover(&out, 200, 100);
    out.clear();
    d.scan(&short, &mut out);
    assert_eq!(out, vec![]);
    let weird = Frame {
        stride: 0,
        format: PixelFormat {
            bits_per_pixel: 0,
            ..PixelFormat::RGB565
        },
        ..short
    };
    d.scan(&weird, &mut out);
}

/// Scans until something is reported; how many scans it took and what was reported.
fn scans_until_reported(pic: &Pic, d: &mut Damage, limit: usize) -> (usize, Vec<Rect>) {
    for n in 1..=limit {
        let rects = pic.scan(d);
        if !rects.is_empty() {
            return (n, rects);
        }
    }
    (limit + 1, Vec::new())
}

fn sampled(pic: &Pic) -> Damage {
    let mut d = Damage::new(pic.w, pic.h);
    d.set_sampling(true);
    let first = pic.scan(&mut d);
    assert_exact_cover(&first, pic.w, pic.h);
    d
}

#[test]
fn a_sampled_scan_finds_a_one_row_change_within_a_stride_exactly() {
    let mut pic = Pic::new(640, 480, 0, PixelFormat::XRGB8888);
    for y in [0, 5, 63, 64, 200, 479] {
        let mut d = sampled(&pic);
        // A still screen: nothing, scan after scan.
        for _ in 0..2 * usize::from(SAMPLE_STRIDE) {
            assert_eq!(pic.scan(&mut d), vec![]);
        }
        pic.poke(300, y);
        let (took, rects) = scans_until_reported(&pic, &mut d, usize::from(SAMPLE_STRIDE));
        assert!(took <= usize::from(SAMPLE_STRIDE), "row {y}: not seen");
        assert_eq!(rects, vec![r(256, y, 64, 1)], "row {y}");
        assert_eq!(pic.scan(&mut d), vec![], "row {y}: reported twice");
    }
}

#[test]
fn a_sampled_scan_finds_a_text_line_within_three_scans() {
    let mut pic = Pic::new(640, 480, 0, PixelFormat::XRGB8888);
    let mut d = sampled(&pic);
    // A 6-row change at every offset against the sampling pattern, at every phase of it.
    for (n, top) in (100..100 + 3 * SAMPLE_STRIDE).step_by(3).enumerate() {
        for y in top..top + 6 {
            pic.poke(10, y);
        }
        let (took, rects) = scans_until_reported(&pic, &mut d, usize::from(SAMPLE_STRIDE));
        assert!(took <= 3, "change {n}, rows {top}..+6, took {took} scans");
        // Exactly the six rows (two rectangles where they cross a tile edge).
        let rows: Vec<u16> = rects.iter().flat_map(|rc| rc.y..rc.y + rc.h).collect();
        assert_eq!(rows, (top..top + 6).collect::<Vec<_>>(), "{rects:?}");
        assert!(rects.iter().all(|rc| (rc.x, rc.w) == (0, 64)), "{rects:?}");
        assert_eq!(pic.scan(&mut d), vec![]);
    }
}

#[test]
fn a_sampled_scan_looks_closer_at_the_neighbours_of_a_changed_tile() {
    let mut pic = Pic::new(640, 480, 0, PixelFormat::XRGB8888);
    let mut d = sampled(&pic);
    let phase = SAMPLE_ORDER[d.scans % SAMPLE_ORDER.len()];
    let near_row = (phase + NEIGHBOUR_STRIDE / 2) % NEIGHBOUR_STRIDE + NEIGHBOUR_STRIDE;
    // One change on this scan's sample row in tile (2, 2); in the tile below, one on a row
    // its neighbours get (never the sample row: another residue mod 4), found at once.
    pic.poke(150, 128 + phase);
    pic.poke(150, 192 + near_row);
    let rects = pic.scan(&mut d);
    assert_eq!(
        rects,
        vec![r(128, 128 + phase, 64, 1), r(128, 192 + near_row, 64, 1)]
    );
    // Off those rows (and off the sample row), a neighbour's change waits for the sample rows.
    let phase = SAMPLE_ORDER[d.scans % SAMPLE_ORDER.len()];
    let off_row = (phase + NEIGHBOUR_STRIDE / 2 + 1) % NEIGHBOUR_STRIDE + 2 * NEIGHBOUR_STRIDE;
    pic.poke(150, 128 + phase);
    pic.poke(150, 192 + off_row);
    assert_eq!(pic.scan(&mut d), vec![r(128, 128 + phase, 64, 1)]);
    let (took, rects) = scans_until_reported(&pic, &mut d, usize::from(SAMPLE_STRIDE));
    assert!(took < usize::from(SAMPLE_STRIDE), "took {took}");
    assert_eq!(rects, vec![r(128, 192 + off_row, 64, 1)]);
    // Invalidated tiles come back at the next scan whatever the sample row.
    d.invalidate(r(0, 0, 64, 64));
    assert_eq!(pic.scan(&mut d), vec![r(0, 0, 64, 64)]);
}
