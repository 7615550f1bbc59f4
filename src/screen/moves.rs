//! Blocks that moved sideways (a dragged window), from the previous scan's row-segment hashes
//! and the new frame hashed at shifted places: source column c moved by (dx, dy) when the new
//! frame's 64 pixels of row y from x = 64c + dx hash like the previous scan's segment
//! (row y + dy, column c). No pixels are kept; a wrong guess still copies only what the new
//! frame holds there.

use std::cmp::Reverse;
use std::ops::Range;

use xxhash_rust::xxh3::xxh3_64;

use super::damage::TILE;
use super::frame::Frame;
use super::scroll::{Grid, MIN_RUN, Run, best_run, known};

/// Sideways shifts searched each way, in pixels.
const MAX_DX: isize = 96;
/// Rows searched up and down with a sideways shift.
const MAX_DY: usize = 96;
const SAMPLES: usize = 3;
const MAX_VOTES: usize = 64;
const MAX_CANDIDATES: usize = 3;

/// The frame's bytes hashed in 64-pixel runs at any x.
pub struct Shifted<'a> {
    frame: &'a Frame<'a>,
    bpp: usize,
}

impl<'a> Shifted<'a> {
    pub fn new(frame: &'a Frame<'a>) -> Self {
        Shifted {
            frame,
            bpp: frame.format.bytes_per_pixel(),
        }
    }

    /// The 64 pixels of row `y` from `x`, if they lie inside the frame.
    pub fn bytes(&self, y: usize, x: isize) -> Option<&'a [u8]> {
        let x = usize::try_from(x).ok()?;
        let row = self.frame.row(u16::try_from(y).ok()?)?;
        row.get(x * self.bpp..(x + usize::from(TILE)) * self.bpp)
    }

    pub fn bytes_per_pixel(&self) -> usize {
        self.bpp
    }

    fn hash(&self, y: usize, x: isize) -> Option<u64> {
        self.bytes(y, x).map(xxh3_64)
    }
}

/// The longest run of rows (within the changed rows `lo..hi`) over which source column `c`
/// (a whole segment) shows up shifted sideways, if it is at least MIN_RUN rows.
pub fn column_move(
    prev: Grid,
    new: Grid,
    frame: &Shifted,
    c: usize,
    lo: usize,
    hi: usize,
) -> Option<Run> {
    let rows = prev.rows().min(new.rows());
    let hi = hi.min(rows);
    if hi.saturating_sub(lo) < MIN_RUN {
        return None;
    }
    let x0 = (c * usize::from(TILE)) as isize;
    let mut votes: Vec<((isize, isize), u32)> = Vec::new();
    let mut window: Vec<(u64, usize)> = Vec::with_capacity(2 * MAX_DY + 1);
    let mut shifted: Vec<Option<u64>> = Vec::with_capacity(2 * MAX_DX as usize + 3);
    for k in 1..=SAMPLES {
        // No evidence at the first sample: most changed columns (animations, new content)
        // did not move, and should cost only this one row of hashes.
        if k == 2 && votes.is_empty() {
            return None;
        }
        let y = lo + (hi - lo) * k / (SAMPLES + 1);
        window.clear();
        let (from, to) = (y.saturating_sub(MAX_DY), (y + MAX_DY + 1).min(rows));
        window.extend(
            (from..to)
                .map(|r| (prev.at(r, c), r))
                .filter(|&(h, _)| known(h)),
        );
        window.sort_unstable();
        shifted.clear();
        shifted.extend((-MAX_DX - 1..=MAX_DX + 1).map(|dx| frame.hash(y, x0 + dx)));
        for (i, w) in shifted.windows(3).enumerate() {
            let dx = i as isize - MAX_DX;
            // Sideways-uniform pixels (a flat fill) match at every shift: no evidence.
            let (Some(h), true) = (w[1], w[0] != w[1] && w[1] != w[2]) else {
                continue;
            };
            if dx == 0 {
                continue;
            }
            let at = window.partition_point(|&(v, _)| v < h);
            for &(_, src) in window[at..].iter().take_while(|&&(v, _)| v == h).take(4) {
                let key = (dx, src as isize - y as isize);
                if let Some((_, n)) = votes.iter_mut().find(|(k, _)| *k == key) {
                    *n += 1;
                } else if votes.len() < MAX_VOTES {
                    votes.push((key, 1));
                }
            }
        }
    }
    votes.sort_unstable_by_key(|&(_, n)| Reverse(n));
    votes
        .iter()
        .take(MAX_CANDIDATES)
        .filter_map(|&(shift, _)| longest_run(prev, new, frame, c, lo..hi, shift))
        .max_by_key(|&(_, changed)| changed)
        .filter(|&(_, changed)| changed >= MIN_RUN)
        .map(|(run, _)| run)
}

/// The run of rows (and how many of them changed in column c) that holds the most changed
/// rows: copying over rows that did not change gains nothing.
fn longest_run(
    prev: Grid,
    new: Grid,
    frame: &Shifted,
    c: usize,
    rows_changed: Range<usize>,
    (dx, dy): (isize, isize),
) -> Option<(Run, usize)> {
    let rows = prev.rows() as isize;
    let x = (c * usize::from(TILE)) as isize + dx;
    let matches = |y: usize| {
        let src = y as isize + dy;
        (0..rows).contains(&src) && {
            let old = prev.at(src as usize, c);
            known(old) && frame.hash(y, x) == Some(old)
        }
    };
    let changed = |y: usize| usize::from(new.at(y, c) != prev.at(y, c));
    best_run(rows_changed, matches, changed).map(|(r, n)| {
        let run = Run {
            y0: r.start,
            y1: r.end,
            dy,
            dx,
        };
        (run, n)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::screen::PixelFormat;

    const W: usize = 512;
    const H: usize = 200;

    fn noise(seed: u64, n: usize) -> Vec<u8> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                s as u8
            })
            .collect()
    }

    fn frame(data: &[u8]) -> Frame<'_> {
        Frame {
            width: W as u16,
            height: H as u16,
            stride: W * 4,
            format: PixelFormat::XRGB8888,
            data,
        }
    }

    fn grid(hashes: &[u64]) -> Grid<'_> {
        Grid {
            hashes,
            cols: W / 64,
        }
    }

    fn grid_hashes(data: &[u8]) -> Vec<u64> {
        data.chunks(W * 4)
            .flat_map(|row| row.chunks(256).map(xxh3_64))
            .collect()
    }

    #[test]
    fn a_window_dragged_right_and_down_is_found() {
        let old = noise(3, W * H * 4);
        // A 192x100 block at (128, 40) moves by (+10, +4): new(x + 10, y + 4) = old(x, y).
        let mut new = noise(4, W * H * 4);
        for y in 40..140 {
            for x in 128..320 {
                let (s, d) = ((y * W + x) * 4, ((y + 4) * W + x + 10) * 4);
                new[d..d + 4].copy_from_slice(&old[s..s + 4]);
            }
        }
        let (ph, nh) = (grid_hashes(&old), grid_hashes(&new));
        let (prev, grid) = (grid(&ph), grid(&nh));
        let f = frame(&new);
        let shifted = Shifted::new(&f);
        // Source columns 2, 3 and 4 lie inside the block; new rows 44..144 hold them.
        for c in 2..5 {
            let run = column_move(prev, grid, &shifted, c, 0, H).unwrap();
            assert_eq!(
                run,
                Run {
                    y0: 44,
                    y1: 144,
                    dy: -4,
                    dx: 10
                },
                "column {c}"
            );
        }
        // Column 1 is only partly inside: no whole segment moved.
        assert_eq!(column_move(prev, grid, &shifted, 1, 0, H), None);
    }

    #[test]
    fn flat_fills_are_no_evidence() {
        let old = vec![0x80; W * H * 4];
        let new = vec![0x80; W * H * 4];
        let (ph, nh) = (grid_hashes(&old), grid_hashes(&new));
        let f = frame(&new);
        let shifted = Shifted::new(&f);
        assert_eq!(column_move(grid(&ph), grid(&nh), &shifted, 2, 0, H), None);
    }
}
