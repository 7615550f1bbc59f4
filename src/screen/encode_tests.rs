use ironrdp_bulk::BulkCompressor;
use ironrdp_core::{ReadCursor, decode_cursor};
use ironrdp_graphics::rdp6::BitmapStreamDecoder;
use ironrdp_pdu::bitmap::rdp6::BitmapStream;

use super::*;
use crate::screen::frame::Channel;
use crate::screen::synthetic::synthetic_pixel;

/// Splits `bytes` into fast-path PDUs, decompresses them with `bulk` (the client's side of the
/// history), checks fragment order and sizes, and returns each reassembled update.
fn reassemble(bytes: &[u8], bulk: &mut Option<BulkCompressor>) -> Vec<Vec<u8>> {
    let mut cursor = ReadCursor::new(bytes);
    let mut updates = Vec::new();
    let mut partial: Option<Vec<u8>> = None;
    while !cursor.is_empty() {
        let before = cursor.pos();
        let header: FastPathHeader = decode_cursor(&mut cursor).unwrap();
        let pdu: FastPathUpdatePdu<'_> = decode_cursor(&mut cursor).unwrap();
        // The header's length covers exactly this PDU.
        assert_eq!(cursor.pos() - before, header.data_length + header.size());
        assert_eq!(pdu.update_code, UpdateCode::Bitmap);
        let data = match pdu.compression_flags {
            None => pdu.data.to_vec(),
            Some(flags) => {
                let kind = pdu.compression_type.expect("compression type").as_u8();
                let flags = u32::from(flags.bits() | kind);
                let bulk = bulk
                    .as_mut()
                    .expect("compressed, but the client asked for none");
                bulk.decompress(pdu.data, flags).unwrap().to_vec()
            }
        };
        assert!(!data.is_empty() && data.len() <= MAX_FRAGMENT_PAYLOAD);
        match (pdu.fragmentation, partial.take()) {
            (Fragmentation::Single, None) => updates.push(data),
            (Fragmentation::First, None) => partial = Some(data),
            (Fragmentation::Next, Some(mut p)) => {
                assert_eq!(p.len() % MAX_FRAGMENT_PAYLOAD, 0);
                p.extend_from_slice(&data);
                partial = Some(p);
            }
            (Fragmentation::Last, Some(mut p)) => {
                assert_eq!(p.len() % MAX_FRAGMENT_PAYLOAD, 0);
                p.extend_from_slice(&data);
                updates.push(p);
            }
            (f, p) => panic!("{f:?} after {:?} bytes", p.map(|p| p.len())),
        }
    }
    assert!(partial.is_none(), "unfinished update");
    updates
}

/// An RGB24 canvas the decoded bitmaps are drawn on, counting how often each pixel is drawn.
struct Canvas {
    w: usize,
    rgb: Vec<[u8; 3]>,
    drawn: Vec<u8>,
    /// The client's bulk decompressor, when the encoder compresses.
    bulk: Option<BulkCompressor>,
}

impl Canvas {
    fn new(w: u16, h: u16) -> Self {
        let n = usize::from(w) * usize::from(h);
        Canvas {
            w: usize::from(w),
            rgb: vec![[0; 3]; n],
            drawn: vec![0; n],
            bulk: None,
        }
    }

    /// Decodes every update like a client would and draws it; returns the bitmaps seen.
    fn draw(&mut self, bytes: &[u8]) -> Vec<(Rect, u16, bool)> {
        let mut seen = Vec::new();
        for update in reassemble(bytes, &mut self.bulk) {
            let decoded: BitmapUpdateData<'_> =
                decode_cursor(&mut ReadCursor::new(&update)).unwrap();
            assert_eq!(decoded.rectangles.len(), 1);
            let bmp = &decoded.rectangles[0];
            let r = bmp.rectangle.clone();
            let dest = Rect::new(r.left, r.top, r.right - r.left + 1, r.bottom - r.top + 1);
            assert_eq!(bmp.bits_per_pixel, 32);
            assert_eq!(bmp.width % 4, 0);
            assert!(bmp.width >= dest.w && bmp.width - dest.w < 4);
            assert_eq!(bmp.height, dest.h);
            assert!(usize::from(bmp.width) * usize::from(bmp.height) * 4 <= 65_535);
            let hdr = bmp.compressed_data_header.as_ref().unwrap();
            assert_eq!(usize::from(hdr.main_body_size), bmp.bitmap_data.len());
            assert_eq!(hdr.scan_width, bmp.width);
            assert_eq!(
                usize::from(hdr.uncompressed_size),
                usize::from(bmp.width) * usize::from(bmp.height) * 4
            );
            let stream: BitmapStream<'_> =
                decode_cursor(&mut ReadCursor::new(bmp.bitmap_data)).unwrap();
            assert!(!stream.header.use_alpha);
            let (bw, bh) = (usize::from(bmp.width), usize::from(bmp.height));
            let mut rgb = Vec::new();
            BitmapStreamDecoder::default()
                .decode_bitmap_stream_to_rgb24(bmp.bitmap_data, &mut rgb, bw, bh)
                .unwrap();
            assert_eq!(rgb.len(), bw * bh * 3);
            for row in 0..bh {
                // Stream rows are bottom-up.
                let y = usize::from(dest.y) + bh - 1 - row;
                for col in 0..bw {
                    let px = [0, 1, 2].map(|c| rgb[(row * bw + col) * 3 + c]);
                    if col < usize::from(dest.w) {
                        let i = y * self.w + usize::from(dest.x) + col;
                        self.rgb[i] = px;
                        self.drawn[i] += 1;
                    } else {
                        // Padding repeats the row's edge pixel.
                        assert_eq!(
                            px,
                            [0, 1, 2].map(|c| rgb[(row * bw + usize::from(dest.w) - 1) * 3 + c])
                        );
                    }
                }
            }
            seen.push((dest, bmp.width, stream.header.enable_rle_compression));
        }
        seen
    }

    fn at(&self, x: u16, y: u16) -> [u8; 3] {
        self.rgb[usize::from(y) * self.w + usize::from(x)]
    }

    fn drawn(&self, x: u16, y: u16) -> u8 {
        self.drawn[usize::from(y) * self.w + usize::from(x)]
    }
}

fn xrgb_frame(w: u16, h: u16, pixel: impl Fn(u16, u16) -> u32) -> Vec<u8> {
    (0..h)
        .flat_map(|y| (0..w).map(move |x| (x, y)))
        .flat_map(|(x, y)| pixel(x, y).to_le_bytes())
        .collect()
}

fn rgb_of(v: u32) -> [u8; 3] {
    [(v >> 16) as u8, (v >> 8) as u8, v as u8]
}

fn noise(seed: u64) -> impl FnMut() -> u32 {
    let mut s = seed;
    move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 16) as u32
    }
}

/// Encodes `rect`, draws it, and checks: pixels equal `expect`, drawn exactly once inside the
/// clipped rect and never outside, and the returned count is what was appended.
fn check_area(
    frame: &Frame,
    rect: Rect,
    expect: impl Fn(u16, u16) -> [u8; 3],
) -> Vec<(Rect, u16, bool)> {
    let mut enc = BitmapEncoder::new();
    let mut out = vec![0xAA; 3];
    let n = enc.encode(frame, rect, &mut out).unwrap();
    assert_eq!(n, out.len() - 3);
    assert_eq!(out[..3], [0xAA; 3]);
    let mut canvas = Canvas::new(frame.width, frame.height);
    let seen = canvas.draw(&out[3..]);
    let clip = rect.clip(frame.width, frame.height);
    for y in 0..frame.height {
        for x in 0..frame.width {
            let inside = clip.is_some_and(|c| {
                x >= c.x && u32::from(x) < c.right() && y >= c.y && u32::from(y) < c.bottom()
            });
            assert_eq!(canvas.drawn(x, y), u8::from(inside), "{x},{y}");
            if inside {
                assert_eq!(canvas.at(x, y), expect(x, y), "{x},{y}");
            }
        }
    }
    seen
}

#[test]
fn synthetic_picture_round_trips() {
    let (w, h) = (300, 200);
    let data = xrgb_frame(w, h, |x, y| synthetic_pixel(w, h, 5, x, y));
    let frame = Frame::xrgb8888(w, h, &data);
    let expect = |x, y| rgb_of(synthetic_pixel(w, h, 5, x, y));
    // A damage-sized tile, an odd rect, one at the corner, and the whole frame.
    let seen = check_area(&frame, Rect::new(64, 64, 192, 64), expect);
    assert_eq!(seen, vec![(Rect::new(64, 64, 192, 64), 192, true)]);
    check_area(&frame, Rect::new(13, 7, 151, 101), expect);
    let seen = check_area(&frame, Rect::new(290, 190, 50, 50), expect);
    assert_eq!(
        (seen.len(), seen[0].0, seen[0].1),
        (1, Rect::new(290, 190, 10, 10), 12)
    );
    let seen = check_area(&frame, Rect::new(0, 0, w, h), expect);
    assert!(seen.len() > 1);
}

#[test]
fn noise_falls_back_to_raw_planes_and_fragments() {
    let (w, h) = (256, 130);
    let mut rnd = noise(7);
    let pixels: Vec<u32> = (0..usize::from(w) * usize::from(h))
        .map(|_| rnd())
        .collect();
    let data: Vec<u8> = pixels.iter().flat_map(|p| p.to_le_bytes()).collect();
    let frame = Frame::xrgb8888(w, h, &data);
    let expect = |x: u16, y: u16| rgb_of(pixels[usize::from(y) * usize::from(w) + usize::from(x)]);
    let seen = check_area(&frame, Rect::new(0, 0, w, h), expect);
    assert!(seen.iter().all(|&(_, _, rle)| !rle), "{seen:?}");
    // 252x64 raw planes are ~48 KB: three fragments, so First, Next and Last all occur.
    let mut out = Vec::new();
    BitmapEncoder::new()
        .encode(&frame, Rect::new(0, 0, 252, 64), &mut out)
        .unwrap();
    let first = reassemble(&out, &mut None);
    assert_eq!(first.len(), 1);
    assert!(first[0].len() > 2 * MAX_FRAGMENT_PAYLOAD && first[0].len() <= DEFAULT_MAX_UPDATE_LEN);
}

#[test]
fn one_fragment_per_update_when_the_client_has_no_multifragment() {
    let (w, h) = (200, 100);
    let mut rnd = noise(11);
    let pixels: Vec<u32> = (0..usize::from(w) * usize::from(h))
        .map(|_| rnd())
        .collect();
    let data: Vec<u8> = pixels.iter().flat_map(|p| p.to_le_bytes()).collect();
    let frame = Frame::xrgb8888(w, h, &data);
    let mut enc = BitmapEncoder::new();
    enc.set_max_update_len(MAX_FRAGMENT_PAYLOAD);
    assert!(enc.max_update_len() <= MAX_FRAGMENT_PAYLOAD);
    let mut out = Vec::new();
    enc.encode(&frame, Rect::new(0, 0, w, h), &mut out).unwrap();
    let mut cursor = ReadCursor::new(&out);
    let mut count = 0;
    while !cursor.is_empty() {
        let _: FastPathHeader = decode_cursor(&mut cursor).unwrap();
        let pdu: FastPathUpdatePdu<'_> = decode_cursor(&mut cursor).unwrap();
        assert_eq!(pdu.fragmentation, Fragmentation::Single);
        count += 1;
    }
    assert!(count > 3);
    let mut canvas = Canvas::new(w, h);
    canvas.draw(&out);
    assert_eq!(canvas.at(199, 99), rgb_of(pixels[200 * 100 - 1]));
}

#[test]
fn rgb565_is_converted_while_encoding() {
    let (w, h) = (70, 33);
    let mut rnd = noise(3);
    let px: Vec<u16> = (0..usize::from(w) * usize::from(h))
        .map(|_| rnd() as u16)
        .collect();
    // Stride with padding bytes that must not leak into the picture.
    let stride = usize::from(w) * 2 + 6;
    let mut data = vec![0xEE; stride * usize::from(h)];
    for (i, p) in px.iter().enumerate() {
        let (x, y) = (i % usize::from(w), i / usize::from(w));
        data[y * stride + x * 2..][..2].copy_from_slice(&p.to_le_bytes());
    }
    let frame = Frame {
        width: w,
        height: h,
        stride,
        format: PixelFormat::RGB565,
        data: &data,
    };
    let expect = |x: u16, y: u16| {
        let p = u32::from(px[usize::from(y) * usize::from(w) + usize::from(x)]);
        // Bit replication, the usual 5/6 -> 8 bit expansion.
        let (r, g, b) = (p >> 11, (p >> 5) & 63, p & 31);
        [
            (r << 3 | r >> 2) as u8,
            (g << 2 | g >> 4) as u8,
            (b << 3 | b >> 2) as u8,
        ]
    };
    check_area(&frame, Rect::new(0, 0, w, h), expect);
}

#[test]
fn bgr_bitfields_are_honoured() {
    let bgr = PixelFormat {
        bits_per_pixel: 32,
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
    let data = xrgb_frame(8, 4, |x, y| u32::from(x) << 16 | u32::from(y) << 8 | 0x77);
    let frame = Frame {
        width: 8,
        height: 4,
        stride: 32,
        format: bgr,
        data: &data,
    };
    check_area(&frame, Rect::new(0, 0, 8, 4), |x, y| {
        [0x77, y as u8, x as u8]
    });
}

#[test]
fn pieces_fit_one_bitmap_and_cover_the_area() {
    for (rect, max) in [
        (Rect::new(0, 0, 1920, 1080), MAX_PIXELS),
        (Rect::new(3, 5, 1021, 767), MAX_PIXELS),
        (Rect::new(0, 0, 64, 1000), MAX_PIXELS),
        (Rect::new(7, 0, 9, 3), MAX_PIXELS),
        (Rect::new(0, 0, 8000, 1), MAX_PIXELS),
        (Rect::new(0, 0, 300, 300), 4),
        (Rect::new(0, 0, 300, 300), 5447),
        (Rect::new(0, 0, 65_535, 2), MAX_PIXELS),
    ] {
        let ps: Vec<Rect> = pieces(rect, max).collect();
        let area: u64 = ps.iter().map(|p| u64::from(p.w) * u64::from(p.h)).sum();
        assert_eq!(area, u64::from(rect.w) * u64::from(rect.h), "{rect:?}");
        for p in &ps {
            assert!(!p.is_empty());
            assert!(
                usize::from(p.w).next_multiple_of(4) * usize::from(p.h) <= max,
                "{p:?} max {max}"
            );
            assert!(
                p.x >= rect.x
                    && p.right() <= rect.right()
                    && p.y >= rect.y
                    && p.bottom() <= rect.bottom()
            );
        }
    }
    // Even columns for a full 1080p frame: 8 x 240 wide, 64 rows.
    let first: Vec<Rect> = pieces(Rect::new(0, 0, 1920, 1080), MAX_PIXELS)
        .take(9)
        .collect();
    assert_eq!(first[0], Rect::new(0, 0, 240, 64));
    assert_eq!(first[8], Rect::new(0, 64, 240, 64));
    // A damage rectangle is one piece.
    assert_eq!(pieces(Rect::new(64, 0, 192, 64), MAX_PIXELS).count(), 1);
    assert_eq!(pieces(Rect::new(0, 1024, 256, 56), MAX_PIXELS).count(), 1);
}

#[test]
fn errors_leave_out_unchanged() {
    let data = vec![0u8; 64];
    let mut enc = BitmapEncoder::new();
    let mut out = vec![1, 2, 3];
    let pal8 = PixelFormat {
        bits_per_pixel: 8,
        ..PixelFormat::RGB565
    };
    let frame = Frame {
        width: 8,
        height: 8,
        stride: 8,
        format: pal8,
        data: &data,
    };
    assert_eq!(
        enc.encode(&frame, Rect::new(0, 0, 8, 8), &mut out),
        Err(EncodeError::Format(pal8))
    );
    let short = Frame {
        width: 8,
        height: 8,
        stride: 32,
        format: PixelFormat::XRGB8888,
        data: &data,
    };
    let e = enc
        .encode(&short, Rect::new(0, 0, 8, 8), &mut out)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "inconsistent frame: 8x8 with 32 bytes a line does not fit 64 bytes"
    );
    let ok = Frame {
        width: 4,
        height: 4,
        stride: 16,
        format: PixelFormat::XRGB8888,
        data: &data,
    };
    assert_eq!(enc.encode(&ok, Rect::new(4, 0, 10, 10), &mut out), Ok(0));
    assert_eq!(enc.encode(&ok, Rect::new(0, 0, 0, 4), &mut out), Ok(0));
    assert_eq!(out, vec![1, 2, 3]);
    assert!(enc.encode(&ok, Rect::new(0, 0, 4, 4), &mut out).unwrap() > 0);
}

#[test]
fn scratch_stays_within_one_bitmap() {
    let (w, h) = (1920, 1080);
    let mut rnd = noise(5);
    let data: Vec<u8> = (0..usize::from(w) * usize::from(h))
        .flat_map(|_| rnd().to_le_bytes())
        .collect();
    let frame = Frame::xrgb8888(w, h, &data);
    let mut enc = BitmapEncoder::new();
    let caps = |e: &BitmapEncoder| {
        [
            e.planes.capacity(),
            e.stream.capacity(),
            e.update.capacity(),
        ]
    };
    let before = caps(&enc);
    let mut out = Vec::new();
    enc.encode(&frame, Rect::new(0, 0, w, h), &mut out).unwrap();
    assert_eq!(caps(&enc), before);
    assert!(before.iter().all(|&c| c <= 64 * 1024), "{before:?}");
}

const ALL_COMPRESSION: [CompressionType; 4] = [
    CompressionType::K8,
    CompressionType::K64,
    CompressionType::Rdp6,
    CompressionType::Rdp61,
];

fn decompressor(kind: CompressionType) -> BulkCompressor {
    BulkCompressor::new(ironrdp_bulk::CompressionType::from_flags(u32::from(kind.as_u8())).unwrap())
}

/// Every bulk compression type a client may ask for: changing frames (repeats, and noise that
/// does not compress) through one history decode pixel-exact, and the repeats cost less.
#[test]
fn bulk_compressed_updates_round_trip_over_one_history() {
    let (w, h) = (256, 130);
    let mut rnd = noise(3);
    let noisy: Vec<u32> = (0..usize::from(w) * usize::from(h))
        .map(|_| rnd())
        .collect();
    let picture = |step: u32, x: u16, y: u16| match step {
        2 => noisy[usize::from(y) * usize::from(w) + usize::from(x)] & 0xFF_FFFF,
        _ => synthetic_pixel(w, h, step % 2, x, y),
    };
    for kind in ALL_COMPRESSION {
        let mut enc = BitmapEncoder::new();
        enc.set_compression(Some(kind));
        if kind == CompressionType::K8 {
            // Plain updates (see set_compression): the decompressor is never asked.
            assert!(enc.bulk.is_none());
            continue;
        }
        let mut canvas = Canvas::new(w, h);
        canvas.bulk = Some(decompressor(kind));
        let (mut plain, mut sent) = (0, 0);
        for step in 0..6 {
            let data = xrgb_frame(w, h, |x, y| picture(step, x, y));
            let frame = Frame::xrgb8888(w, h, &data);
            let mut out = Vec::new();
            enc.encode(&frame, Rect::new(0, 0, w, h), &mut out).unwrap();
            canvas.draw(&out);
            for (x, y) in (0..h).flat_map(|y| (0..w).map(move |x| (x, y))) {
                assert_eq!(
                    canvas.at(x, y),
                    rgb_of(picture(step, x, y)),
                    "{kind:?} {step}"
                );
            }
            let mut uncompressed = Vec::new();
            let area = Rect::new(0, 0, w, h);
            BitmapEncoder::new()
                .encode(&frame, area, &mut uncompressed)
                .unwrap();
            if step >= 3 {
                (plain, sent) = (plain + uncompressed.len(), sent + out.len());
            }
        }
        // Steps 3..6 repeat pictures already in the history.
        assert!(sent * 2 < plain, "{kind:?}: {sent} vs {plain} bytes");
    }
}

/// IronRDP's own client-side processor (a dev-dependency) draws our PDUs: what an RDP client
/// built on it would show, plain and with each bulk compression.
#[test]
fn ironrdp_session_client_draws_what_we_encode() {
    for kind in [None].into_iter().chain(ALL_COMPRESSION.map(Some)) {
        client_draws_what_we_encode(kind);
    }
}

fn client_draws_what_we_encode(kind: Option<CompressionType>) {
    use ironrdp_core::WriteBuf;
    use ironrdp_graphics::image_processing::PixelFormat as ClientFormat;
    use ironrdp_session::fast_path::ProcessorBuilder;
    use ironrdp_session::image::DecodedImage;

    let (w, h) = (333, 201);
    let data = xrgb_frame(w, h, |x, y| synthetic_pixel(w, h, 9, x, y));
    let frame = Frame::xrgb8888(w, h, &data);
    let mut out = Vec::new();
    let mut enc = BitmapEncoder::new();
    enc.set_compression(kind);
    enc.encode(&frame, Rect::new(0, 0, w, h), &mut out).unwrap();
    let mut bulk = kind.map(decompressor);
    let mut image = DecodedImage::new(ClientFormat::RgbA32, w, h);
    let mut processor = ProcessorBuilder {
        io_channel_id: 1003,
        user_channel_id: 1002,
        share_id: 0x1_03EA,
        enable_server_pointer: false,
        pointer_software_rendering: true,
    }
    .build();
    let mut rest = out.as_slice();
    let mut pdus = 0;
    while !rest.is_empty() {
        let header: FastPathHeader = decode_cursor(&mut ReadCursor::new(rest)).unwrap();
        let (pdu, tail) = rest.split_at(header.size() + header.data_length);
        processor
            .process(&mut image, pdu, &mut WriteBuf::new(), &mut bulk)
            .unwrap();
        rest = tail;
        pdus += 1;
    }
    assert!(pdus > 1);
    for y in 0..h {
        for x in 0..w {
            let i = (usize::from(y) * usize::from(w) + usize::from(x)) * 4;
            let want = rgb_of(synthetic_pixel(w, h, 9, x, y));
            assert_eq!(image.data()[i..i + 3], want, "{x},{y}");
        }
    }
}

/// rdesktop's reading of a 32-bpp bitmap: planar only as RLE with an alpha plane (format
/// header exactly 0x10), else uncompressed B, G, R, X rows bottom-up. Returns RGB rows
/// bottom-up, `width` pixels each.
fn rdesktop_reads(bmp: &ironrdp_pdu::bitmap::BitmapData<'_>) -> Vec<[u8; 3]> {
    let (bw, bh) = (usize::from(bmp.width), usize::from(bmp.height));
    match &bmp.compressed_data_header {
        Some(hdr) => {
            assert_eq!(bmp.bitmap_data[0], 0x10, "RLE with an alpha plane");
            assert_eq!(usize::from(hdr.main_body_size), bmp.bitmap_data.len());
            let mut rgb = Vec::new();
            BitmapStreamDecoder::default()
                .decode_bitmap_stream_to_rgb24(bmp.bitmap_data, &mut rgb, bw, bh)
                .unwrap();
            rgb.chunks(3).map(|c| [c[0], c[1], c[2]]).collect()
        }
        None => {
            assert_eq!(bmp.bitmap_data.len(), bw * bh * 4);
            bmp.bitmap_data
                .chunks(4)
                .map(|c| [c[2], c[1], c[0]])
                .collect()
        }
    }
}

#[test]
fn clients_without_skip_alpha_get_an_alpha_plane_or_plain_pixels() {
    let (w, h) = (256, 130);
    let mut rnd = noise(11);
    // Left half flat colours, right half noise (RLE pays nothing).
    let pixels: Vec<u32> = (0..usize::from(w) * usize::from(h))
        .map(|i| {
            let v = rnd();
            if i % usize::from(w) < 128 {
                0x00_30_60_90 + (i / 2000) as u32
            } else {
                v
            }
        })
        .collect();
    let data: Vec<u8> = pixels.iter().flat_map(|p| p.to_le_bytes()).collect();
    let frame = Frame::xrgb8888(w, h, &data);
    let mut enc = BitmapEncoder::new();
    enc.set_skip_alpha(false);
    enc.set_max_update_len(DEFAULT_MAX_UPDATE_LEN);
    let (mut compressed, mut plain) = (0, 0);
    // A 4-pixel-wide strip of noise: RLE plus alpha comes out over the raw size there.
    for area in [
        Rect::new(0, 0, 128, h),
        Rect::new(128, 0, 128, h),
        Rect::new(200, 0, 4, h),
    ] {
        let mut out = Vec::new();
        enc.encode(&frame, area, &mut out).unwrap();
        for update in reassemble(&out, &mut None) {
            assert!(update.len() <= enc.max_update_len());
            let decoded: BitmapUpdateData<'_> =
                decode_cursor(&mut ReadCursor::new(&update)).unwrap();
            let bmp = &decoded.rectangles[0];
            if bmp.compressed_data_header.is_some() {
                compressed += 1;
            } else {
                plain += 1;
            }
            let rows = rdesktop_reads(bmp);
            let r = &bmp.rectangle;
            let bw = usize::from(bmp.width);
            for y in r.top..=r.bottom {
                let row = usize::from(r.bottom - y);
                for x in r.left..=r.right {
                    let got = rows[row * bw + usize::from(x - r.left)];
                    let want = rgb_of(pixels[usize::from(y) * usize::from(w) + usize::from(x)]);
                    assert_eq!(got, want, "{x},{y}");
                }
            }
        }
    }
    assert!(
        compressed >= 4 && plain >= 1,
        "{compressed} RLE, {plain} plain"
    );
}
