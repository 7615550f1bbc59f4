//! Frame areas to ready-to-send fast-path bitmap updates, lossless RDP6 planar at 32 bpp.
//!
//! Each update carries one TS_BITMAP_DATA (clients mis-draw multi-rectangle updates) of at most
//! 65,535 raw bytes, width a multiple of 4, rows bottom-up, no alpha plane. A larger area is cut
//! into several updates. Scratch buffers are sized for one such bitmap and reused.

use core::fmt;

use ironrdp_core::{Encode as _, WriteCursor};
use ironrdp_pdu::bitmap::rdp6::{BitmapStreamHeader, ColorPlaneDefinition};
use ironrdp_pdu::bitmap::{BitmapData, BitmapUpdateData, CompressedDataHeader, Compression};
use ironrdp_pdu::fast_path::{
    EncryptionFlags, FastPathHeader, FastPathUpdatePdu, Fragmentation, UpdateCode,
};
use ironrdp_pdu::geometry::InclusiveRectangle;
use ironrdp_pdu::rdp::client_info::CompressionType;
use ironrdp_pdu::rdp::headers::CompressionFlags;

use xxhash_rust::xxh3::xxh3_64;

use super::convert::Converter;
use super::damage::TILE;
use super::frame::{Frame, PixelFormat, Rect};
use super::mppc::Mppc64;
use super::planar_rle::encode_plane;
use super::rle_guess::rle_pays;

/// Most update bytes one fast-path PDU carries (its headers come on top).
pub const MAX_FRAGMENT_PAYLOAD: usize = 16_374;

/// TS_UPDATE_BITMAP_DATA (4) + TS_BITMAP_DATA fixed part (18) + TS_CD_HEADER (8).
const BITMAP_OVERHEAD: usize = 30;
/// Planar stream bytes around the planes: format header, and the pad after raw planes.
const STREAM_OVERHEAD: usize = 2;
/// Pixels in one bitmap: 32-bpp raw size within a u16.
const MAX_PIXELS: usize = 65_535 / 4;
/// Rows a piece is cut to when the area is too wide for one bitmap (the damage tile height).
const BAND: usize = 64;

/// Largest reassembled update (sum of one update's fragment payloads) with default settings;
/// the client's MultifragmentUpdate MaxRequestSize must be at least this.
pub const DEFAULT_MAX_UPDATE_LEN: usize = update_len(MAX_PIXELS);

/// Worst-case update size for a bitmap of `pixels` (planes stored raw when RLE does not pay).
const fn update_len(pixels: usize) -> usize {
    update_len_at(3, pixels)
}

/// The same with `per_pixel` bytes at worst: 3 for raw colour planes, 4 for a client that
/// needs the alpha plane (it then gets an uncompressed bitmap when RLE does not pay).
const fn update_len_at(per_pixel: usize, pixels: usize) -> usize {
    BITMAP_OVERHEAD + STREAM_OVERHEAD + per_pixel * pixels
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncodeError {
    /// The frame's pixel format cannot be converted.
    Format(PixelFormat),
    /// The frame's rows do not fit its data (a source bug).
    Frame {
        width: u16,
        height: u16,
        stride: usize,
        len: usize,
    },
    /// IronRDP refused to encode something; sizes are checked first, so this is a bug.
    Codec { what: &'static str, detail: String },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::Format(format) => write!(f, "cannot encode pixel format {format}"),
            EncodeError::Frame {
                width,
                height,
                stride,
                len,
            } => write!(
                f,
                "inconsistent frame: {width}x{height} with {stride} bytes a line does not fit {len} bytes"
            ),
            EncodeError::Codec { what, detail } => write!(f, "cannot encode {what}: {detail}"),
        }
    }
}

impl std::error::Error for EncodeError {}

fn codec(what: &'static str) -> impl Fn(ironrdp_core::EncodeError) -> EncodeError {
    move |e| EncodeError::Codec {
        what,
        detail: e.to_string(),
    }
}

pub struct BitmapEncoder {
    max_pixels: usize,
    converter: Option<(PixelFormat, Converter)>,
    /// R, G and B planes of one piece, rows bottom-up.
    planes: Vec<u8>,
    /// The planar stream of one piece.
    stream: Vec<u8>,
    /// One scanline's deltas to the one above, for RLE.
    delta: Vec<u8>,
    /// One TS_UPDATE_BITMAP_DATA, before it is cut into fragments.
    update: Vec<u8>,
    /// RDP bulk compression of each fragment; its history spans the connection.
    bulk: Option<Bulk>,
    /// One source row as read, so what is encoded and what is hashed are the same bytes.
    row: Vec<u8>,
    /// With `track_sent`: (row, tile column, hash) of each whole segment the last `encode`
    /// sent, for `Damage::sent`.
    sent: Vec<(u16, u16, u64)>,
    track_sent: bool,
    /// The client did not set DRAW_ALLOW_SKIP_ALPHA: every planar stream carries an alpha
    /// plane (rdesktop reads no other), else an uncompressed bitmap is sent.
    alpha_plane: bool,
    /// The opaque alpha plane of the largest piece.
    alpha: Vec<u8>,
    /// What `set_max_update_len` was last given.
    max_update_len: usize,
    /// Whole tiles through the client's bitmap cache (`encode_cached.rs`), when it has one.
    pub(super) cache: Option<super::encode_cached::TileCache>,
}

/// The bulk compressor of a connection (RDP 5: MPPC with a 64 KB history, `mppc.rs`).
pub(crate) struct Bulk {
    mppc: Box<Mppc64>,
}

impl Bulk {
    /// The compressor for a client that names `kind` in its Client Info PDU, if it gets one.
    /// Every type from RDP 5 on includes it (a client names the highest it takes, MS-RDPBCGR
    /// 3.1.8). RDP 4's 8 KB history is smaller than one fragment: such a client gets plain
    /// updates. RDP 6 (NCRUSH, what FreeRDP's shadow server sends) would save a third of the
    /// bytes on the bench's workload but cost more CPU than everything else the agent does
    /// (ironrdp-bulk's port: 0.27 s of 0.83 s; with ours 0.08 s, see mppc.rs).
    pub(crate) fn for_client(kind: CompressionType) -> Option<Bulk> {
        match kind {
            CompressionType::K8 => None,
            _ => Some(Bulk {
                mppc: Box::default(),
            }),
        }
    }
}

impl Default for BitmapEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl BitmapEncoder {
    pub fn new() -> Self {
        let mut e = BitmapEncoder {
            max_pixels: MAX_PIXELS,
            converter: None,
            planes: Vec::new(),
            stream: Vec::new(),
            delta: Vec::new(),
            update: Vec::new(),
            bulk: None,
            row: Vec::new(),
            sent: Vec::new(),
            track_sent: false,
            alpha_plane: false,
            alpha: Vec::new(),
            max_update_len: DEFAULT_MAX_UPDATE_LEN,
            cache: None,
        };
        e.set_max_update_len(DEFAULT_MAX_UPDATE_LEN);
        e
    }

    /// Bounds every reassembled update to `len` bytes: pass the client's MultifragmentUpdate
    /// MaxRequestSize, or MAX_FRAGMENT_PAYLOAD for a client without it (one fragment each).
    /// Values above DEFAULT_MAX_UPDATE_LEN change nothing; below 44 they act as 44 (one 4x1 bitmap).
    pub fn set_max_update_len(&mut self, len: usize) {
        self.max_update_len = len;
        let per_pixel = self.worst_per_pixel();
        let pixels = len.saturating_sub(update_len(0)) / per_pixel;
        self.max_pixels = pixels.clamp(4, MAX_PIXELS);
        // Reserve once; `encode` never grows them past this.
        let planes = 3 * self.max_pixels;
        for buf in [&mut self.planes, &mut self.stream, &mut self.update] {
            buf.clear();
            buf.shrink_to(0);
        }
        self.planes.reserve_exact(planes);
        self.stream
            .reserve_exact(per_pixel * self.max_pixels + STREAM_OVERHEAD);
        self.update
            .reserve_exact(update_len_at(per_pixel, self.max_pixels));
        self.alpha = if self.alpha_plane {
            vec![0xFF; self.max_pixels]
        } else {
            Vec::new()
        };
    }

    /// Whether the client may be sent planar streams without an alpha plane: its Bitmap
    /// capability's DRAW_ALLOW_SKIP_ALPHA (MS-RDPBCGR 2.2.7.1.2). Call before
    /// `set_max_update_len`'s final call, or it is applied again here.
    pub fn set_skip_alpha(&mut self, allowed: bool) {
        if self.alpha_plane == allowed {
            self.alpha_plane = !allowed;
            self.set_max_update_len(self.max_update_len);
        }
    }

    fn worst_per_pixel(&self) -> usize {
        if self.alpha_plane { 4 } else { 3 }
    }

    /// The largest stream `planar` makes for `pixels` (width a multiple of 4).
    pub(super) fn worst_stream(&self, pixels: usize) -> usize {
        update_len_at(self.worst_per_pixel(), pixels) - BITMAP_OVERHEAD
    }

    /// Pixels in the largest piece one update may carry.
    pub(super) fn max_pixels_of_one(&self) -> usize {
        self.max_pixels
    }

    /// What the last `planar` made.
    pub(super) fn stream(&self) -> &[u8] {
        &self.stream
    }

    pub(super) fn bulk_mut(&mut self) -> Option<&mut Bulk> {
        self.bulk.as_mut()
    }

    /// Whether `sent_segments` is kept.
    pub(super) fn tracks_sent(&self) -> bool {
        self.track_sent
    }

    /// Notes row `y` of `piece` (as read) in `sent_segments`.
    pub(super) fn record_row(&mut self, row: &[u8], piece: Rect, y: u16, width: u16, bpp: usize) {
        record_segments(row, piece, y, width, bpp, &mut self.sent);
    }

    /// Compresses every fragment from now on with RDP bulk compression of `kind` (the type the
    /// client's Client Info PDU names, see `Bulk::for_client`), or none. The client keeps one
    /// decompression history per connection: call this once per connection, before its first
    /// update, and not again on a reactivation.
    pub fn set_compression(&mut self, kind: Option<CompressionType>) {
        self.bulk = kind.and_then(Bulk::for_client);
    }

    /// Whether `encode` records the hash of each whole tile-row segment it sends
    /// (`sent_segments`): what the client holds, even if the screen changed after the scan.
    pub fn set_track_sent(&mut self, on: bool) {
        self.track_sent = on;
        self.sent.clear();
        self.sent.shrink_to_fit();
    }

    /// (row, tile column, hash) of each whole tile-row segment the last `encode` sent.
    pub fn sent_segments(&self) -> &[(u16, u16, u64)] {
        &self.sent
    }

    /// The largest reassembled update `encode` produces now.
    pub fn max_update_len(&self) -> usize {
        update_len_at(self.worst_per_pixel(), self.max_pixels)
    }

    /// Appends to `out` fast-path bitmap updates for `rect` of `frame` (clipped to the frame; an
    /// area outside adds nothing) and returns the bytes appended. On error `out` is unchanged.
    pub fn encode(
        &mut self,
        frame: &Frame,
        rect: Rect,
        out: &mut Vec<u8>,
    ) -> Result<usize, EncodeError> {
        let start = out.len();
        self.sent.clear();
        let result = self.encode_inner(frame, rect, out);
        match result {
            Ok(()) => Ok(out.len() - start),
            Err(e) => {
                // Dropped fragments may have entered the compression history: the client's
                // would no longer match, so send the rest uncompressed (that needs no history).
                if self.bulk.take().is_some() {
                    crate::warn!("bulk compression off for this connection after: {e}");
                }
                self.forget_cached();
                out.truncate(start);
                Err(e)
            }
        }
    }

    fn encode_inner(
        &mut self,
        frame: &Frame,
        rect: Rect,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        if !frame.is_consistent() {
            let (width, height, stride, len) =
                (frame.width, frame.height, frame.stride, frame.data.len());
            return Err(EncodeError::Frame {
                width,
                height,
                stride,
                len,
            });
        }
        let converter = match self.converter.take() {
            Some((format, c)) if format == frame.format => c,
            _ => Converter::new(frame.format).ok_or(EncodeError::Format(frame.format))?,
        };
        let result = match rect.clip(frame.width, frame.height) {
            Some(area) => self.area(frame, &converter, area, out),
            None => Ok(()),
        };
        self.converter = Some((frame.format, converter));
        result
    }

    /// One piece (fits one bitmap) to one update, cut into fragments.
    pub(super) fn piece(
        &mut self,
        frame: &Frame,
        conv: &Converter,
        p: Rect,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        let (len, compressed) = self.planar(frame, conv, p, self.track_sent)?;
        let w4 = usize::from(p.w).next_multiple_of(4);
        let n = w4 * usize::from(p.h);
        // n <= MAX_PIXELS, so these sizes fit u16 (checked by `pieces`).
        let data = BitmapData {
            rectangle: InclusiveRectangle {
                left: p.x,
                top: p.y,
                right: p.x + p.w - 1,
                bottom: p.y + p.h - 1,
            },
            width: w4 as u16,
            height: p.h,
            bits_per_pixel: 32,
            compression_flags: if compressed {
                Compression::BITMAP_COMPRESSION
            } else {
                Compression::empty()
            },
            compressed_data_header: compressed.then_some(CompressedDataHeader {
                main_body_size: len as u16,
                scan_width: w4 as u16,
                uncompressed_size: (n * 4) as u16,
            }),
            bitmap_data: &self.stream[..len],
        };
        self.update.resize(4 + data.size(), 0);
        let mut cursor = WriteCursor::new(&mut self.update);
        BitmapUpdateData::encode_header(1, &mut cursor).map_err(codec("bitmap update"))?;
        data.encode(&mut cursor).map_err(codec("bitmap data"))?;
        fragment(&self.update, self.bulk.as_mut(), UpdateCode::Bitmap, out)
    }

    /// Piece `p` of `frame` as a 32-bpp bitmap stream in `self.stream`, rows bottom-up, width
    /// padded to a multiple of 4: (its length, whether it is compressed). `record`: note each
    /// whole tile-row segment read in `sent` (at `p`'s place in `frame`).
    pub(super) fn planar(
        &mut self,
        frame: &Frame,
        conv: &Converter,
        p: Rect,
        record: bool,
    ) -> Result<(usize, bool), EncodeError> {
        let (w, h) = (usize::from(p.w), usize::from(p.h));
        let w4 = w.next_multiple_of(4);
        let n = w4 * h;
        // Only grown, never cleared: every byte of the 3n used is written below.
        if self.planes.len() < 3 * n {
            self.planes.resize(3 * n, 0);
        }
        let (r, gb) = self.planes[..3 * n].split_at_mut(n);
        let (g, b) = gb.split_at_mut(n);
        let bpp = frame.format.bytes_per_pixel();
        let (x0, x1) = (usize::from(p.x) * bpp, usize::from(p.x) * bpp + w * bpp);
        for i in 0..h {
            // Bottom-up: plane row i is frame row bottom - i. The frame is consistent and p lies
            // inside it, so the row and its slice exist.
            let y = p.y + (h - 1 - i) as u16;
            let src = frame
                .row(y)
                .and_then(|row| row.get(x0..x1))
                .unwrap_or_default();
            // Read once: a live framebuffer may change between two reads. Black where a row
            // were missing: the planes are reused, and must not show an older piece.
            self.row.clear();
            self.row.extend_from_slice(src);
            self.row.resize(x1 - x0, 0);
            let o = i * w4;
            conv.row(
                &self.row,
                &mut r[o..o + w],
                &mut g[o..o + w],
                &mut b[o..o + w],
            );
            if record {
                record_segments(&self.row, p, y, frame.width, bpp, &mut self.sent);
            }
            // Pad to the multiple of 4 with the edge pixel: cheap runs for RLE, never drawn.
            for plane in [&mut *r, &mut *g, &mut *b] {
                let edge = plane[o + w - 1];
                plane[o + w..o + w4].fill(edge);
            }
        }
        self.stream.clear();
        if self.alpha_plane {
            self.with_alpha_plane(n, w4, h)
        } else {
            // RLE gets at most the raw size: if it does not fit, raw planes are smaller anyway.
            let raw_len = 3 * n + STREAM_OVERHEAD;
            let (r, gb) = self.planes[..3 * n].split_at(n);
            let (g, b) = gb.split_at(n);
            let rle = rle_pays([r, g, b], w4, h) && {
                rle_header(false, &mut self.stream)?;
                [r, g, b].into_iter().all(|plane| {
                    encode_plane(plane, w4, h, &mut self.delta, &mut self.stream, raw_len)
                })
            };
            if rle {
                Ok((self.stream.len(), true))
            } else {
                self.stream.resize(raw_len, 0);
                Ok((raw_planes([r, g, b], &mut self.stream)?, true))
            }
        }
    }
}

impl BitmapEncoder {
    /// The planes of one piece as an RLE stream with an opaque alpha plane first, or, when
    /// that would be larger, as an uncompressed 32-bpp bitmap (B, G, R, X; rows bottom-up).
    /// Returns the stream's length and whether it is compressed.
    fn with_alpha_plane(
        &mut self,
        n: usize,
        w4: usize,
        h: usize,
    ) -> Result<(usize, bool), EncodeError> {
        let raw_len = 4 * n;
        let (r, gb) = self.planes[..3 * n].split_at(n);
        let (g, b) = gb.split_at(n);
        rle_header(true, &mut self.stream)?;
        let alpha = &self.alpha[..n];
        let rle = [alpha, r, g, b]
            .into_iter()
            .all(|plane| encode_plane(plane, w4, h, &mut self.delta, &mut self.stream, raw_len));
        if rle {
            return Ok((self.stream.len(), true));
        }
        self.stream.clear();
        for i in 0..n {
            self.stream.extend_from_slice(&[b[i], g[i], r[i], 0xFF]);
        }
        Ok((raw_len, false))
    }
}

/// Starts an empty `stream` with the header of an RLE planar stream, with or without the
/// alpha plane.
fn rle_header(use_alpha: bool, stream: &mut Vec<u8>) -> Result<(), EncodeError> {
    let header = BitmapStreamHeader {
        enable_rle_compression: true,
        use_alpha,
        color_plane_definition: ColorPlaneDefinition::Argb,
    };
    stream.resize(header.size(), 0);
    ironrdp_core::encode_cursor(&header, &mut WriteCursor::new(stream))
        .map_err(codec("planar header"))
}

/// The hash of each whole tile-row segment of `row` (row `y` of `piece`, as read), as
/// `Damage` computes it.
fn record_segments(
    row: &[u8],
    piece: Rect,
    y: u16,
    width: u16,
    bpp: usize,
    sent: &mut Vec<(u16, u16, u64)>,
) {
    let tile = u32::from(TILE);
    let (x0, x1) = (u32::from(piece.x), piece.right());
    for col in x0.div_ceil(tile)..x1.div_ceil(tile) {
        let (s0, s1) = (col * tile, ((col + 1) * tile).min(u32::from(width)));
        if s1 > x1 {
            break;
        }
        let bytes = ((s0 - x0) as usize * bpp)..((s1 - x0) as usize * bpp);
        if let Some(part) = row.get(bytes) {
            // col < width / TILE fits u16.
            sent.push((y, col as u16, xxh3_64(part)));
        }
    }
}

/// A planar stream with the planes stored as they are: a copy, where the RLE encoder's raw mode
/// goes byte by byte.
fn raw_planes(planes: [&[u8]; 3], dst: &mut [u8]) -> Result<usize, EncodeError> {
    let header = BitmapStreamHeader {
        enable_rle_compression: false,
        use_alpha: false,
        color_plane_definition: ColorPlaneDefinition::Argb,
    };
    let mut cursor = WriteCursor::new(dst);
    // `size()` counts the trailing pad byte too: with the planes, exactly the stream.
    let need = planes.iter().map(|p| p.len()).sum::<usize>() + header.size();
    if need > cursor.len() {
        let detail = format!("needs {need} bytes, has {}", cursor.len());
        return Err(EncodeError::Codec {
            what: "planar stream",
            detail,
        });
    }
    ironrdp_core::encode_cursor(&header, &mut cursor).map_err(codec("planar header"))?;
    for plane in planes {
        cursor.write_slice(plane);
    }
    cursor.write_u8(0);
    Ok(cursor.pos())
}

/// Cuts `area` into pieces of at most `max_pixels` once padded to a width multiple of 4:
/// full-width bands when they fit 64 rows, else 64-row bands split into equal columns.
pub(crate) fn pieces(area: Rect, max_pixels: usize) -> impl Iterator<Item = Rect> {
    let (w, h) = (usize::from(area.w), usize::from(area.h));
    let w4 = w.next_multiple_of(4);
    let (band, col) = if w4 * h.min(BAND) <= max_pixels {
        (h.min(max_pixels / w4), w)
    } else {
        let band = h.min(BAND).min(max_pixels / 4).max(1);
        let cap = (max_pixels / band) / 4 * 4;
        let cols = w.div_ceil(cap);
        (band, w.div_ceil(cols).next_multiple_of(4))
    };
    // band, col >= 1 and both within the area, so the u16 casts are exact.
    (0..h).step_by(band).flat_map(move |dy| {
        (0..w).step_by(col).map(move |dx| {
            let pw = col.min(w - dx);
            let ph = band.min(h - dy);
            Rect::new(area.x + dx as u16, area.y + dy as u16, pw as u16, ph as u16)
        })
    })
}

/// Appends `update` as fast-path PDUs of at most MAX_FRAGMENT_PAYLOAD update bytes each,
/// each fragment bulk-compressed when `bulk` is there and that makes it smaller.
/// On error `out` may hold part of the update and `bulk` must not be used again.
pub(crate) fn fragment(
    update: &[u8],
    mut bulk: Option<&mut Bulk>,
    update_code: UpdateCode,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let last = update
        .len()
        .div_ceil(MAX_FRAGMENT_PAYLOAD)
        .saturating_sub(1);
    for (i, data) in update.chunks(MAX_FRAGMENT_PAYLOAD).enumerate() {
        let fragmentation = match (i, last) {
            (_, 0) => Fragmentation::Single,
            (0, _) => Fragmentation::First,
            (i, last) if i == last => Fragmentation::Last,
            _ => Fragmentation::Next,
        };
        let (flags, data) = match bulk.as_deref_mut() {
            Some(bulk) => compress(bulk, data),
            None => (None, data),
        };
        let pdu = FastPathUpdatePdu {
            fragmentation,
            update_code,
            compression_flags: flags,
            compression_type: flags.map(|_| CompressionType::K64),
            data,
        };
        write_pdu(&pdu, out)?;
    }
    Ok(())
}

/// Appends one fast-path update PDU with its header.
pub(crate) fn write_pdu(pdu: &FastPathUpdatePdu<'_>, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let header = FastPathHeader::new(EncryptionFlags::empty(), pdu.size());
    let start = out.len();
    out.resize(start + header.size() + pdu.size(), 0);
    let mut cursor = WriteCursor::new(&mut out[start..]);
    header
        .encode(&mut cursor)
        .map_err(codec("fast-path header"))?;
    pdu.encode(&mut cursor).map_err(codec("fast-path update"))
}

/// One fragment through the bulk compressor: its flags for the fast-path header (None: sent
/// as it is, no compression header) and the bytes to send, never more than `data`.
fn compress<'a>(bulk: &'a mut Bulk, data: &'a [u8]) -> (Option<CompressionFlags>, &'a [u8]) {
    match bulk.mppc.compress(data) {
        Some(flags) => (
            Some(CompressionFlags::from_bits_retain(flags)),
            bulk.mppc.output(),
        ),
        None => (None, data),
    }
}

#[cfg(test)]
#[path = "encode_tests.rs"]
mod tests;
