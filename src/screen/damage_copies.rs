//! Copies found by the damage scan: scrolled and moved runs of rows (`scroll`, `moves`)
//! become screen-to-screen copies, so those rows are not encoded again.

use std::ops::Range;

use xxhash_rust::xxh3::xxh3_64;

use super::{CopyRect, Damage, TILE};
use crate::screen::frame::{Frame, Rect};
use crate::screen::{moves, scroll};

/// Tile columns tried for a sideways move per scan: each costs a few hundred hashes.
const MAX_SIDEWAYS_COLUMNS: usize = 16;
/// Scans a column skips the sideways search after it found nothing there.
const SIDEWAYS_BACKOFF: u8 = 8;

fn overlap(a: Rect, b: Rect) -> bool {
    u32::from(a.x) < b.right()
        && u32::from(b.x) < a.right()
        && u32::from(a.y) < b.bottom()
        && u32::from(b.y) < a.bottom()
}

impl Damage {
    /// Per tile column, the longest run of changed rows found shifted in the previous scan:
    /// vertically (scrolling), else sideways too (a moved window); adjacent columns with the
    /// same shift become one copy. Copies never read what another one writes.
    pub(super) fn find_copies(&mut self, frame: &Frame, copies: &mut Vec<CopyRect>) {
        let (cols, tile, width) = (self.cols, usize::from(TILE), usize::from(self.width));
        let shifted = moves::Shifted::new(frame);
        {
            let prev = scroll::Grid {
                hashes: &self.prev,
                cols,
            };
            let new = scroll::Grid {
                hashes: &self.hashes,
                cols,
            };
            let mut sideways_left = MAX_SIDEWAYS_COLUMNS;
            for b in &mut self.sideways_backoff {
                *b = b.saturating_sub(1);
            }
            // Rows change only within the bands this scan hashed: a still screen costs no
            // search. (Bands between the first and last hashed compare equal, and cheaply.)
            let hashed = &self.band_hashed;
            let first = hashed.iter().position(|&h| h).unwrap_or(hashed.len());
            let last = hashed.iter().rposition(|&h| h).map_or(first, |b| b + 1);
            let rows = first * tile..(last * tile).min(usize::from(self.height));
            for c in 0..cols {
                let changed = |y: &usize| prev.hashes[y * cols + c] != new.hashes[y * cols + c];
                let Some(lo) = rows.clone().find(changed) else {
                    self.runs[c] = None;
                    continue;
                };
                let hi = rows.clone().rev().find(changed).map_or(lo, |y| y + 1);
                let backoff = &mut self.sideways_backoff[c];
                self.runs[c] = scroll::column_run(prev, new, c, lo, hi).or_else(|| {
                    let whole = (c + 1) * tile <= width;
                    // After a reset or an invalidation nothing is known to copy from.
                    let known = scroll::known(prev.at((lo + hi) / 2, c));
                    if !whole || !known || hi - lo < scroll::MIN_RUN || sideways_left == 0 {
                        return None;
                    }
                    if *backoff > 0 {
                        return None;
                    }
                    sideways_left -= 1;
                    let found = moves::column_move(prev, new, &shifted, c, lo, hi);
                    *backoff = if found.is_some() { 0 } else { SIDEWAYS_BACKOFF };
                    found
                });
            }
        }
        let mut taken: Vec<(Rect, Rect)> = Vec::new();
        let mut fixes: Vec<(usize, u64)> = Vec::new();
        for (c0, c1, run) in scroll::merge(&self.runs) {
            let x = c0 * tile;
            let w = (c1 * tile).min(width) - x;
            let to_x = x as isize + run.dx;
            if to_x < 0 || to_x as usize + w > width {
                continue;
            }
            let to_x = to_x as usize;
            // Columns, rows and the source rows all lie on the u16 screen.
            let h = (run.y1 - run.y0) as u16;
            let src = Rect::new(x as u16, (run.y0 as isize + run.dy) as u16, w as u16, h);
            let dst = Rect::new(to_x as u16, run.y0 as u16, w as u16, h);
            if taken
                .iter()
                .any(|(s, d)| overlap(dst, *d) || overlap(dst, *s) || overlap(src, *d))
            {
                continue;
            }
            // The tile columns the copy fills whole.
            let cover = to_x.div_ceil(tile)..if to_x + w == width {
                cols
            } else {
                (to_x + w) / tile
            };
            let rows = (run.y0 as u16, run.y1 as u16);
            if cover.is_empty() || !self.copied[cover.clone()].iter().all(|c| c[1] == (0, 0)) {
                continue;
            }
            fixes.clear();
            if run.dx != 0
                && !self.confirm_sideways(&shifted, run, c0..c1, cover.clone(), &mut fixes)
            {
                continue;
            }
            for &(i, hash) in &fixes {
                self.hashes[i] = hash;
            }
            if run.dx != 0 {
                // The copy also writes into the tiles at its two edges, from a read that may
                // be newer than the scan's: those are sent in this scan, as the encoder reads
                // them, whether the scan saw them change or not.
                let edges = [to_x / tile, (to_x + w - 1) / tile];
                for y in run.y0..run.y1 {
                    for c in edges.into_iter().filter(|c| !cover.contains(c)) {
                        self.prev[y * cols + c] = scroll::UNKNOWN;
                    }
                }
            }
            for slots in &mut self.copied[cover] {
                let free = usize::from(slots[0] != (0, 0));
                slots[free] = rows;
            }
            copies.push(CopyRect {
                dst,
                src_x: src.x,
                src_y: src.y,
            });
            taken.push((src, dst));
        }
    }

    /// Reads the rows a sideways copy writes once more, checks them against its source and
    /// notes in `fixes` the hash of each tile segment it fills whole, from that same read: what
    /// the client will hold even if the screen changed since the scan.
    fn confirm_sideways(
        &self,
        frame: &moves::Shifted,
        run: scroll::Run,
        sources: Range<usize>,
        cover: Range<usize>,
        fixes: &mut Vec<(usize, u64)>,
    ) -> bool {
        let tile = usize::from(TILE);
        let to_x = sources.start * tile;
        let to_x = (to_x as isize + run.dx) as usize;
        let mut row = Vec::new();
        for y in run.y0..run.y1 {
            row.clear();
            for c in sources.clone() {
                let Some(part) = frame.bytes(y, (c * tile) as isize + run.dx) else {
                    return false;
                };
                // Copied first, then hashed: the bytes checked are the bytes noted.
                let start = row.len();
                row.extend_from_slice(part);
                let src = (y as isize + run.dy) as usize * self.cols + c;
                if self.prev.get(src) != Some(&xxh3_64(&row[start..])) {
                    return false;
                }
            }
            let bpp = frame.bytes_per_pixel();
            for c in cover.clone() {
                let from = (c * tile - to_x) * bpp;
                let to = (from + tile * bpp).min(row.len());
                fixes.push((y * self.cols + c, xxh3_64(&row[from..to])));
            }
        }
        true
    }
}
