//! Which parts of the screen changed, from one 64-bit hash per 64x64 tile.
//!
//! No shadow copy: a tile's hash folds the xxh3 of each of its row segments, read straight from
//! the frame in row order (sequential memory, friendly to small ARM prefetchers). Memory is
//! O(tiles): 1080p has 510 tiles, about 9 KiB of state.

use xxhash_rust::xxh3::xxh3_64;

use super::frame::{Frame, PixelFormat, Rect};

/// Tile side in pixels.
pub const TILE: u16 = 64;

/// Largest raw 32-bpp size of one reported rectangle: TS_BITMAP_DATA sizes are u16.
pub const MAX_RECT_BYTES: u32 = 65_535;

/// Starting value of every tile's fold (a new tile is reported through `dirty`, not this).
const SEED: u64 = 0x9E37_79B9_7F4A_7C15;

/// Folds a row-segment hash into a tile hash: a bijection in both arguments, so one changed
/// segment always changes the tile's value.
#[inline]
fn fold(acc: u64, h: u64) -> u64 {
    (acc ^ h)
        .wrapping_mul(0xFF51_AFD7_ED55_8CCD)
        .rotate_left(29)
}

/// True when a `w`x`h` rectangle, padded to a width multiple of 4, stays within MAX_RECT_BYTES.
pub fn fits_one_bitmap(w: u32, h: u32) -> bool {
    u64::from(w.next_multiple_of(4)) * u64::from(h) * 4 <= u64::from(MAX_RECT_BYTES)
}

pub struct Damage {
    width: u16,
    height: u16,
    format: Option<PixelFormat>,
    cols: usize,
    hashes: Vec<u64>,
    /// Tiles to report at the next scan: set by `invalidate` and resets, and by a changed hash
    /// during the scan; cleared once reported.
    dirty: Vec<bool>,
    /// Per-column accumulators for the tile row being scanned.
    acc: Vec<u64>,
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
            acc: Vec::new(),
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
        self.hashes.clear();
        self.hashes.resize(tiles, SEED);
        self.dirty.clear();
        self.dirty.resize(tiles, true);
        self.acc.clear();
        self.acc.resize(self.cols, SEED);
        self.hashes.shrink_to_fit();
        self.dirty.shrink_to_fit();
        self.acc.shrink_to_fit();
    }

    /// The screen size the tiles are laid over.
    pub fn size(&self) -> (u16, u16) {
        (self.width, self.height)
    }

    /// Hashes every tile of `frame` and appends the changed (or invalidated) ones to `out`,
    /// merged along tile rows into rectangles that each fit one bitmap (`fits_one_bitmap`).
    /// A new size or pixel format makes everything dirty.
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
            self.acc.fill(SEED);
            for y in y0..y1 {
                // A short (inconsistent) frame hashes what is there; never panics.
                let row = frame.row(y).unwrap_or_default();
                for (acc, part) in self.acc.iter_mut().zip(row.chunks(seg)) {
                    *acc = fold(*acc, xxh3_64(part));
                }
            }
            let base = ty * self.cols;
            let hashes = &mut self.hashes[base..base + self.cols];
            let dirty = &mut self.dirty[base..base + self.cols];
            for ((h, f), acc) in hashes.iter_mut().zip(dirty.iter_mut()).zip(&self.acc) {
                *f |= *h != *acc;
                *h = *acc;
            }
            self.merge_row(ty, y0, y1 - y0, out);
        }
    }

    /// Appends the dirty tiles of tile row `ty` as rectangles and clears their flags.
    fn merge_row(&mut self, ty: usize, y: u16, h: u16, out: &mut Vec<Rect>) {
        let flags = &mut self.dirty[ty * self.cols..(ty + 1) * self.cols];
        let tile_x = |i: usize| (i as u32 * u32::from(TILE)).min(u32::from(self.width));
        let mut i = 0;
        while i < flags.len() {
            if !flags[i] {
                i += 1;
                continue;
            }
            let start = i;
            flags[i] = false;
            i += 1;
            while i < flags.len()
                && flags[i]
                && fits_one_bitmap(tile_x(i + 1) - tile_x(start), u32::from(h))
            {
                flags[i] = false;
                i += 1;
            }
            let (x0, x1) = (tile_x(start), tile_x(i));
            // Both are within the u16 screen width.
            out.push(Rect::new(x0 as u16, y, (x1 - x0) as u16, h));
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
