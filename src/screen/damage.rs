//! Which parts of the screen changed, from one 64-bit hash per tile row segment.
//!
//! No shadow copy: each 64-pixel row segment of every tile has an xxh3 hash, read straight
//! from the frame in row order (sequential memory, friendly to small ARM prefetchers). A tile
//! is dirty when a segment's hash changed, and its rectangle is cut to the rows that changed:
//! a clock or a text line costs its own rows, not 64. Memory: 8 bytes per 64 pixels, 255 KiB
//! at 1080p (a shadow copy would be 8 MiB).

use xxhash_rust::xxh3::xxh3_64;

use super::frame::{Frame, PixelFormat, Rect};

/// Tile side in pixels.
pub const TILE: u16 = 64;

/// Largest raw 32-bpp size of one reported rectangle: TS_BITMAP_DATA sizes are u16.
pub const MAX_RECT_BYTES: u32 = 65_535;

/// True when a `w`x`h` rectangle, padded to a width multiple of 4, stays within MAX_RECT_BYTES.
pub fn fits_one_bitmap(w: u32, h: u32) -> bool {
    u64::from(w.next_multiple_of(4)) * u64::from(h) * 4 <= u64::from(MAX_RECT_BYTES)
}

pub struct Damage {
    width: u16,
    height: u16,
    format: Option<PixelFormat>,
    cols: usize,
    /// One hash per row segment: row y, tile column c at `y * cols + c`.
    hashes: Vec<u64>,
    /// Tiles to report whole at the next scan: set by `invalidate` and resets; cleared once
    /// reported.
    dirty: Vec<bool>,
    /// Per tile column of the band being scanned: first and one past the last changed row.
    top: Vec<u16>,
    bottom: Vec<u16>,
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
            dirty: Vec::new(),
            top: Vec::new(),
            bottom: Vec::new(),
        };
        d.reset(width, height, None);
        d
    }

    fn reset(&mut self, width: u16, height: u16, format: Option<PixelFormat>) {
        self.width = width;
        self.height = height;
        self.format = format;
        self.cols = usize::from(width.div_ceil(TILE));
        let tiles = self.cols * usize::from(height.div_ceil(TILE));
        // Every tile starts dirty: the hashes' first values are never compared.
        self.hashes.clear();
        self.hashes.resize(self.cols * usize::from(height), 0);
        self.dirty.clear();
        self.dirty.resize(tiles, true);
        for v in [&mut self.top, &mut self.bottom] {
            v.clear();
            v.resize(self.cols, 0);
            v.shrink_to_fit();
        }
        self.hashes.shrink_to_fit();
        self.dirty.shrink_to_fit();
    }

    /// The screen size the tiles are laid over.
    pub fn size(&self) -> (u16, u16) {
        (self.width, self.height)
    }

    /// Hashes every row segment of `frame` and appends the changed (or invalidated) tiles to
    /// `out`, each cut to its changed rows and merged along tile rows into rectangles that each
    /// fit one bitmap (`fits_one_bitmap`). A new size or pixel format makes everything dirty.
    pub fn scan(&mut self, frame: &Frame, out: &mut Vec<Rect>) {
        if (frame.width, frame.height) != (self.width, self.height)
            || self.format != Some(frame.format)
        {
            self.reset(frame.width, frame.height, Some(frame.format));
        }
        // max(1): a 0-bpp format must not make `chunks` panic.
        let seg = (usize::from(TILE) * frame.format.bytes_per_pixel()).max(1);
        for (ty, y0) in (0..self.height).step_by(usize::from(TILE)).enumerate() {
            let y1 = y0.saturating_add(TILE).min(self.height);
            self.top.fill(y1);
            self.bottom.fill(y0);
            for y in y0..y1 {
                // A short (inconsistent) frame hashes what is there; never panics.
                let row = frame.row(y).unwrap_or_default();
                let base = usize::from(y) * self.cols;
                let hashes = &mut self.hashes[base..base + self.cols];
                for (c, (h, part)) in hashes.iter_mut().zip(row.chunks(seg)).enumerate() {
                    let new = xxh3_64(part);
                    if *h != new {
                        *h = new;
                        self.top[c] = self.top[c].min(y);
                        self.bottom[c] = y + 1;
                    }
                }
            }
            let base = ty * self.cols;
            for (c, dirty) in self.dirty[base..base + self.cols].iter_mut().enumerate() {
                if *dirty {
                    (self.top[c], self.bottom[c]) = (y0, y1);
                }
                *dirty = self.top[c] < self.bottom[c];
            }
            self.merge_row(ty, out);
        }
    }

    /// Appends the dirty tiles of tile row `ty` as rectangles (each spanning the changed rows
    /// of its tiles) and clears their flags.
    fn merge_row(&mut self, ty: usize, out: &mut Vec<Rect>) {
        let flags = &mut self.dirty[ty * self.cols..(ty + 1) * self.cols];
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

    /// The tiles under `area` are reported at the next scan (refresh rect).
    pub fn invalidate(&mut self, area: Rect) {
        let Some(a) = area.clip(self.width, self.height) else {
            return;
        };
        let t = usize::from(TILE);
        let (c0, c1) = (usize::from(a.x) / t, (a.right() as usize).div_ceil(t));
        let (r0, r1) = (usize::from(a.y) / t, (a.bottom() as usize).div_ceil(t));
        for r in r0..r1 {
            self.dirty[r * self.cols + c0..r * self.cols + c1].fill(true);
        }
    }

    /// Every tile is reported at the next scan.
    pub fn invalidate_all(&mut self) {
        self.dirty.fill(true);
    }
}

#[cfg(test)]
#[path = "damage_tests.rs"]
mod tests;
