//! Which parts of the screen changed, from one 64-bit hash per tile row segment.
//!
//! No shadow copy: each 64-pixel row segment of every tile has an xxh3 hash, read straight
//! from the frame in row order (sequential memory, friendly to small ARM prefetchers). A tile
//! is dirty when a segment's hash changed, and its rectangle is cut to the rows that changed:
//! a clock or a text line costs its own rows, not 64. Rows found again a few rows higher or
//! lower in the same tile column (scrolling) can be sent as copies the client does itself
//! (`scroll`). Memory: 2 x 8 bytes per 64 pixels (this scan's and the last one's hashes),
//! 510 KiB at 1080p (a shadow copy would be 8 MiB).
//!
//! Sampled scans (`set_sampling`, what the agent uses): a still screen should cost almost
//! nothing. Each scan hashes one row in `SAMPLE_STRIDE`, a different one each time (x11vnc's
//! scan-line idea), and only the tiles where a sampled row changed are hashed in full; their
//! neighbours get one row in `NEIGHBOUR_STRIDE` first, and the full hash if one of those
//! changed. Every row is looked at once per `SAMPLE_STRIDE` scans; a change of 6 or more rows
//! (a text line, a cursor) is seen within 3 scans, one of 16 rows at the next.

use xxhash_rust::xxh3::xxh3_64;

use super::frame::{Frame, PixelFormat, Rect};
use super::scroll;

/// Tile side in pixels.
pub const TILE: u16 = 64;

/// A sampled scan looks at one row in this many.
pub const SAMPLE_STRIDE: u16 = 16;
/// The sampled row of each scan (row 5·n mod 16): a change of 6 or more adjacent rows is seen
/// within 3 scans from any start, 5 rows within 4, 4 within 7, one row within 16 (the spread
/// of this order beats bit-reversal and 3·n for runs of 5 rows and more: text lines).
const SAMPLE_ORDER: [u16; SAMPLE_STRIDE as usize] =
    [0, 5, 10, 15, 4, 9, 14, 3, 8, 13, 2, 7, 12, 1, 6, 11];

/// The neighbours of a changed tile are first looked at in one row in this many.
const NEIGHBOUR_STRIDE: u16 = 4;

/// Largest raw 32-bpp size of one reported rectangle: TS_BITMAP_DATA sizes are u16.
pub const MAX_RECT_BYTES: u32 = 65_535;

/// True when a `w`x`h` rectangle, padded to a width multiple of 4, stays within MAX_RECT_BYTES.
pub fn fits_one_bitmap(w: u32, h: u32) -> bool {
    u64::from(w.next_multiple_of(4)) * u64::from(h) * 4 <= u64::from(MAX_RECT_BYTES)
}

/// A screen-to-screen copy the client can do itself: `dst` gets the client's pixels that are
/// at (`src_x`, `src_y`) before the copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CopyRect {
    pub dst: Rect,
    pub src_x: u16,
    pub src_y: u16,
}

pub struct Damage {
    width: u16,
    height: u16,
    format: Option<PixelFormat>,
    cols: usize,
    /// One hash per row segment: row y, tile column c at `y * cols + c`. After a scan, what
    /// the client will hold once the scan's output is sent (the encoder confirms what it
    /// actually read; `scroll::UNKNOWN` where the client's pixels are not known).
    hashes: Vec<u64>,
    /// The hashes before the running scan (kept between scans only as a spare buffer).
    prev: Vec<u64>,
    /// Per tile column of the band being scanned: first and one past the last changed row,
    /// and whether the column is reported.
    top: Vec<u16>,
    bottom: Vec<u16>,
    dirty: Vec<bool>,
    /// Per tile column: the rows a copy covers in this scan.
    copied: Vec<[(u16, u16); 2]>,
    runs: Vec<Option<scroll::Run>>,
    /// Per tile column: scans until a sideways move is looked for again after a miss, so an
    /// animation does not pay for the search at every scan.
    sideways_backoff: Vec<u8>,
    /// Sampled scans (else every row, every scan).
    sampling: bool,
    scans: usize,
    /// Per tile (band * cols + column): hashed in full this scan.
    rehash: Vec<bool>,
    /// Per band of 64 rows: some tile of it was hashed in full this scan.
    band_hashed: Vec<bool>,
    /// Per tile: a neighbour of a changed tile (scratch of `hash_sampled`).
    near: Vec<bool>,
}

impl Damage {
    /// Everything is dirty at first.
    pub fn new(width: u16, height: u16) -> Self {
        let mut d = Damage {
            width: 0,
            height: 0,
            format: None,
            cols: 0,
            hashes: Vec::new(),
            prev: Vec::new(),
            top: Vec::new(),
            bottom: Vec::new(),
            dirty: Vec::new(),
            copied: Vec::new(),
            runs: Vec::new(),
            sideways_backoff: Vec::new(),
            sampling: false,
            scans: 0,
            rehash: Vec::new(),
            band_hashed: Vec::new(),
            near: Vec::new(),
        };
        d.reset(width, height, None);
        d
    }

    fn reset(&mut self, width: u16, height: u16, format: Option<PixelFormat>) {
        self.width = width;
        self.height = height;
        self.format = format;
        self.cols = usize::from(width.div_ceil(TILE));
        let segments = self.cols * usize::from(height);
        // Nothing is known of the client's screen: everything is reported, nothing copied.
        for v in [&mut self.hashes, &mut self.prev] {
            v.clear();
            v.resize(segments, scroll::UNKNOWN);
            v.shrink_to_fit();
        }
        for v in [&mut self.top, &mut self.bottom] {
            v.clear();
            v.resize(self.cols, 0);
            v.shrink_to_fit();
        }
        self.dirty.clear();
        self.dirty.resize(self.cols, false);
        self.dirty.shrink_to_fit();
        self.copied.clear();
        self.copied.resize(self.cols, [(0, 0); 2]);
        self.copied.shrink_to_fit();
        self.runs.clear();
        self.runs.resize(self.cols, None);
        self.runs.shrink_to_fit();
        self.sideways_backoff.clear();
        self.sideways_backoff.resize(self.cols, 0);
        self.sideways_backoff.shrink_to_fit();
        let bands = usize::from(height.div_ceil(TILE));
        self.rehash.clear();
        self.rehash.resize(bands * self.cols, false);
        self.rehash.shrink_to_fit();
        self.band_hashed.clear();
        self.band_hashed.resize(bands, false);
        self.band_hashed.shrink_to_fit();
    }

    /// Sampled scans from now on (see the module docs); `false`: every row, every scan.
    pub fn set_sampling(&mut self, on: bool) {
        self.sampling = on;
    }

    /// The screen size the tiles are laid over.
    pub fn size(&self) -> (u16, u16) {
        (self.width, self.height)
    }

    /// Hashes every row segment of `frame` and appends the changed (or invalidated) tiles to
    /// `out`, each cut to its changed rows and merged along tile rows into rectangles that each
    /// fit one bitmap (`fits_one_bitmap`). A new size or pixel format makes everything dirty.
    pub fn scan(&mut self, frame: &Frame, out: &mut Vec<Rect>) {
        self.scan_inner(frame, out, None);
    }

    /// `scan`, and rows that moved vertically (scrolled) within their tile columns become
    /// `copies` instead of rectangles. The copies must reach the client before the rectangles.
    pub fn scan_with_copies(
        &mut self,
        frame: &Frame,
        out: &mut Vec<Rect>,
        copies: &mut Vec<CopyRect>,
    ) {
        self.scan_inner(frame, out, Some(copies));
    }

    fn scan_inner(
        &mut self,
        frame: &Frame,
        out: &mut Vec<Rect>,
        copies: Option<&mut Vec<CopyRect>>,
    ) {
        if (frame.width, frame.height) != (self.width, self.height)
            || self.format != Some(frame.format)
        {
            self.reset(frame.width, frame.height, Some(frame.format));
        }
        // What the client holds before this scan; tiles not hashed again keep it.
        self.prev.copy_from_slice(&self.hashes);
        if self.sampling {
            self.hash_sampled(frame);
        } else {
            self.rehash.fill(true);
            self.band_hashed.fill(true);
            self.hash_rows(frame, 0..self.height);
        }
        self.copied.fill([(0, 0); 2]);
        if let Some(copies) = copies {
            self.find_copies(frame, copies);
        }
        for (band, y0) in (0..self.height).step_by(usize::from(TILE)).enumerate() {
            // A band hashed nowhere this scan holds the client's hashes: nothing to report.
            if !self.band_hashed[band] {
                continue;
            }
            let y1 = y0.saturating_add(TILE).min(self.height);
            self.top.fill(y1);
            self.bottom.fill(y0);
            for y in y0..y1 {
                let base = usize::from(y) * self.cols;
                let (new, old) = (
                    &self.hashes[base..base + self.cols],
                    &self.prev[base..base + self.cols],
                );
                for (c, (n, o)) in new.iter().zip(old).enumerate() {
                    let copied = self.copied[c].iter().any(|&(c0, c1)| (c0..c1).contains(&y));
                    if n != o && !copied {
                        self.top[c] = self.top[c].min(y);
                        self.bottom[c] = y + 1;
                    }
                }
            }
            for (c, dirty) in self.dirty.iter_mut().enumerate() {
                *dirty = self.top[c] < self.bottom[c];
            }
            self.merge_row(out);
        }
    }

    /// Hashes every row segment of `rows`.
    fn hash_rows(&mut self, frame: &Frame, rows: std::ops::Range<u16>) {
        for y in rows {
            hash_row(&mut self.hashes, self.cols, frame, y, |_| {});
        }
    }

    /// Hashes this scan's sample row in every band; tiles where it changed are hashed in full.
    /// Their neighbours (moving content crosses tile edges) first get one row in
    /// `NEIGHBOUR_STRIDE`, and in full only when one of those changed: most are still (85 % on
    /// the bench's workload), and a change of that many rows is still seen in this scan.
    fn hash_sampled(&mut self, frame: &Frame) {
        let phase = SAMPLE_ORDER[self.scans % SAMPLE_ORDER.len()];
        self.scans = self.scans.wrapping_add(1);
        let (cols, tile) = (self.cols, usize::from(TILE));
        let bands = self.band_hashed.len();
        // First pass: `rehash` marks the tiles whose sample row changed.
        self.rehash.fill(false);
        for y in (phase..self.height).step_by(usize::from(SAMPLE_STRIDE)) {
            let band = usize::from(y) / tile;
            let changed = &mut self.rehash[band * cols..(band + 1) * cols];
            hash_row(&mut self.hashes, cols, frame, y, |c| {
                changed[c] = true;
            });
        }
        // The neighbours of each changed tile, not changed themselves.
        let mut near = std::mem::take(&mut self.near);
        near.clear();
        near.resize(self.rehash.len(), false);
        for (i, _) in self.rehash.iter().enumerate().filter(|(_, c)| **c) {
            let (band, c) = (i / cols, i % cols);
            if band > 0 {
                near[i - cols] = true;
            }
            if band + 1 < bands {
                near[i + cols] = true;
            }
            if c > 0 {
                near[i - 1] = true;
            }
            if c + 1 < cols {
                near[i + 1] = true;
            }
        }
        for (n, c) in near.iter_mut().zip(&self.rehash) {
            *n &= !c;
        }
        // Their rows in NEIGHBOUR_STRIDE, away from this scan's sample row.
        let offset = (phase + NEIGHBOUR_STRIDE / 2) % NEIGHBOUR_STRIDE;
        for band in 0..bands {
            let take = &near[band * cols..(band + 1) * cols];
            if !take.contains(&true) {
                continue;
            }
            let y0 = (band * tile) as u16;
            let y1 = y0.saturating_add(TILE).min(self.height);
            let changed = &mut self.rehash[band * cols..(band + 1) * cols];
            for y in (y0 + offset..y1).step_by(usize::from(NEIGHBOUR_STRIDE)) {
                hash_row_where(&mut self.hashes, cols, frame, y, take, |c| {
                    changed[c] = true;
                });
            }
        }
        for band in 0..bands {
            let take = &self.rehash[band * cols..(band + 1) * cols];
            self.band_hashed[band] = take.contains(&true);
            if !self.band_hashed[band] {
                continue;
            }
            let y0 = (band * tile) as u16;
            let y1 = y0.saturating_add(TILE).min(self.height);
            for y in y0..y1 {
                hash_row_where(&mut self.hashes, cols, frame, y, take, |_| {});
            }
        }
        self.near = near;
    }

    /// The encoder read these bytes of row `y`, tile column `col`, and sent them: the client
    /// holds them now, whatever the scan saw.
    pub fn sent(&mut self, y: u16, col: u16, hash: u64) {
        let (y, col) = (usize::from(y), usize::from(col));
        if col < self.cols
            && let Some(h) = self.hashes.get_mut(y * self.cols + col)
        {
            *h = hash;
        }
    }

    /// Appends the dirty tiles of the band as rectangles (each spanning the changed rows of
    /// its tiles) and clears their flags.
    fn merge_row(&mut self, out: &mut Vec<Rect>) {
        let flags = &mut self.dirty[..];
        let (top, bottom) = (&self.top, &self.bottom);
        let tile_x = |i: usize| (i as u32 * u32::from(TILE)).min(u32::from(self.width));
        let mut i = 0;
        while i < flags.len() {
            if !flags[i] {
                i += 1;
                continue;
            }
            let start = i;
            let (mut y0, mut y1) = (top[i], bottom[i]);
            flags[i] = false;
            i += 1;
            while i < flags.len() && flags[i] {
                let (t, b) = (y0.min(top[i]), y1.max(bottom[i]));
                if !fits_one_bitmap(tile_x(i + 1) - tile_x(start), u32::from(b - t)) {
                    break;
                }
                (y0, y1) = (t, b);
                flags[i] = false;
                i += 1;
            }
            let (x0, x1) = (tile_x(start), tile_x(i));
            // Both are within the u16 screen width.
            out.push(Rect::new(x0 as u16, y0, (x1 - x0) as u16, y1 - y0));
        }
    }

    /// The tiles under `area` are reported at the next scan (a refresh rect, or output that
    /// never reached the client) and are no copy source until then.
    pub fn invalidate(&mut self, area: Rect) {
        let Some(a) = area.clip(self.width, self.height) else {
            return;
        };
        let t = usize::from(TILE);
        let (c0, c1) = (usize::from(a.x) / t, (a.right() as usize).div_ceil(t));
        let y0 = usize::from(a.y) / t * t;
        let y1 = (a.bottom() as usize).div_ceil(t) * t;
        for y in y0..y1.min(usize::from(self.height)) {
            self.hashes[y * self.cols + c0..y * self.cols + c1].fill(scroll::UNKNOWN);
        }
    }

    /// Every tile is reported at the next scan.
    pub fn invalidate_all(&mut self) {
        self.hashes.fill(scroll::UNKNOWN);
    }
}

/// Hashes row `y`'s segments into `hashes`; `changed(c)` is called for each that changed.
fn hash_row(
    hashes: &mut [u64],
    cols: usize,
    frame: &Frame,
    y: u16,
    mut changed: impl FnMut(usize),
) {
    // max(1): a 0-bpp format must not make `chunks` panic.
    let seg = (usize::from(TILE) * frame.format.bytes_per_pixel()).max(1);
    let base = usize::from(y) * cols;
    let row = frame.row(y).unwrap_or_default();
    let mut parts = row.chunks(seg);
    for (c, slot) in hashes[base..base + cols].iter_mut().enumerate() {
        // A short (inconsistent) frame: what is not there is reported once.
        let hash = parts.next().map_or(scroll::UNREAD, xxh3_64);
        if *slot != hash {
            *slot = hash;
            changed(c);
        }
    }
}

/// `hash_row` for the tile columns `take` marks.
fn hash_row_where(
    hashes: &mut [u64],
    cols: usize,
    frame: &Frame,
    y: u16,
    take: &[bool],
    mut changed: impl FnMut(usize),
) {
    let seg = (usize::from(TILE) * frame.format.bytes_per_pixel()).max(1);
    let base = usize::from(y) * cols;
    let row = frame.row(y).unwrap_or_default();
    let mut parts = row.chunks(seg);
    for (c, slot) in hashes[base..base + cols].iter_mut().enumerate() {
        let part = parts.next();
        if take[c] {
            let hash = part.map_or(scroll::UNREAD, xxh3_64);
            if *slot != hash {
                *slot = hash;
                changed(c);
            }
        }
    }
}

#[path = "damage_copies.rs"]
mod copies;

#[cfg(test)]
#[path = "damage_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "damage_copy_tests.rs"]
mod copy_tests;
