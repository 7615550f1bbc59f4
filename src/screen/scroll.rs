//! Vertical scroll detection from the damage scan's row-segment hashes: no pixels kept.
//!
//! A column of 64-pixel segments scrolled by `dy` rows when its new hash at row y equals its
//! previous hash at row y + dy over a run of rows. The client still shows the previous frame
//! there, so that run is one screen-to-screen copy instead of re-encoded pixels. Only hash
//! equality is used: a wrongly guessed shift still copies exactly what the new frame holds.

use std::ops::Range;

/// Hash of a segment whose contents the client may not have (never equals a real hash in
/// practice): it never serves as a copy source and always counts as changed.
pub const UNKNOWN: u64 = 0x9e37_79b9_7f4a_7c15;
/// Hash of a segment the scan could not read (a frame shorter than its size says).
pub const UNREAD: u64 = 0x7f4a_7c15_9e37_79b9;

pub(super) fn known(h: u64) -> bool {
    h != UNKNOWN && h != UNREAD
}

/// Rows searched up and down for a sample row's old position.
const MAX_SHIFT: usize = 256;
/// Shorter runs are cheaper to re-encode than to copy and merge.
pub const MIN_RUN: usize = 16;
const SAMPLES: usize = 4;
const MAX_CANDIDATES: usize = 8;
/// Steps taken from a sample position to find a row unlike the one above it.
const SAMPLE_STEPS: usize = 16;

/// Rows `y0..y1` of a column (or of adjacent columns), moved `dx` pixels sideways, equal the
/// previous frame's rows `y0 + dy..y1 + dy` of that column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    pub y0: usize,
    pub y1: usize,
    pub dy: isize,
    pub dx: isize,
}

impl Run {
    fn len(&self) -> usize {
        self.y1 - self.y0
    }
}

/// Row-segment hashes laid out row by row, `cols` per row.
#[derive(Clone, Copy)]
pub struct Grid<'a> {
    pub hashes: &'a [u64],
    pub cols: usize,
}

impl Grid<'_> {
    pub(super) fn at(&self, y: usize, c: usize) -> u64 {
        self.hashes[y * self.cols + c]
    }

    pub(super) fn rows(&self) -> usize {
        self.hashes.len().checked_div(self.cols).unwrap_or(0)
    }
}

/// The longest run of column `c` within the changed rows `lo..hi` that the previous frame
/// holds shifted, if it is at least MIN_RUN rows.
pub fn column_run(prev: Grid, new: Grid, c: usize, lo: usize, hi: usize) -> Option<Run> {
    let rows = new.rows().min(prev.rows());
    let hi = hi.min(rows);
    if hi.saturating_sub(lo) < MIN_RUN {
        return None;
    }
    let mut candidates = [0isize; MAX_CANDIDATES];
    let mut n = 0;
    for k in 1..=SAMPLES {
        let Some(y) = sample_row(prev, new, c, lo + (hi - lo) * k / (SAMPLES + 1), hi) else {
            continue;
        };
        let want = new.at(y, c);
        // Nearest first, at most two a sample: a line repeated further away must not crowd
        // out the real shift.
        let shifts = (1..=MAX_SHIFT as isize).flat_map(|d| [d, -d]);
        let found = shifts
            .filter(|&dy| {
                let src = y as isize + dy;
                (0..rows as isize).contains(&src) && prev.at(src as usize, c) == want
            })
            .take(2);
        for dy in found {
            if n < MAX_CANDIDATES && !candidates[..n].contains(&dy) {
                candidates[n] = dy;
                n += 1;
            }
        }
    }
    candidates[..n]
        .iter()
        .filter_map(|&dy| longest_run(prev, new, c, lo, hi, dy))
        .max_by_key(Run::len)
        .filter(|r| r.len() >= MIN_RUN)
}

/// A changed row at or after `y` (before `hi`) unlike the row above it, so that its hash
/// does not also stand for a run of blank rows.
fn sample_row(prev: Grid, new: Grid, c: usize, y: usize, hi: usize) -> Option<usize> {
    (y..hi).take(SAMPLE_STEPS).find(|&y| {
        let h = new.at(y, c);
        h != prev.at(y, c) && known(h) && (y == 0 || new.at(y - 1, c) != h)
    })
}

fn longest_run(prev: Grid, new: Grid, c: usize, lo: usize, hi: usize, dy: isize) -> Option<Run> {
    let rows = prev.rows() as isize;
    let matches = |y: usize| {
        let src = y as isize + dy;
        (0..rows).contains(&src) && {
            let old = prev.at(src as usize, c);
            known(old) && old == new.at(y, c)
        }
    };
    best_run(lo..hi, matches, |_| 1).map(|(r, _)| Run {
        y0: r.start,
        y1: r.end,
        dy,
        dx: 0,
    })
}

/// Of the runs of consecutive rows in `rows` where `matches` holds, the first with the highest
/// sum of `score` over its rows, and that sum.
pub(super) fn best_run(
    rows: Range<usize>,
    mut matches: impl FnMut(usize) -> bool,
    mut score: impl FnMut(usize) -> usize,
) -> Option<(Range<usize>, usize)> {
    let mut best: Option<(Range<usize>, usize)> = None;
    let (mut start, mut sum) = (None, 0);
    for y in rows.start..=rows.end {
        if y < rows.end && matches(y) {
            start.get_or_insert(y);
            sum += score(y);
        } else if let Some(y0) = start.take() {
            if best.as_ref().is_none_or(|&(_, s)| sum > s) {
                best = Some((y0..y, sum));
            }
            sum = 0;
        }
    }
    best
}

/// Adjacent columns with the same shift, as (first column, one past the last, shared rows):
/// the rows all of them hold, while that stays at least MIN_RUN rows.
pub fn merge(runs: &[Option<Run>]) -> Vec<(usize, usize, Run)> {
    let mut out: Vec<(usize, usize, Run)> = Vec::new();
    for (c, run) in runs.iter().enumerate() {
        let Some(run) = *run else { continue };
        if let Some((_, end, shared)) = out.last_mut()
            && *end == c
            && (shared.dy, shared.dx) == (run.dy, run.dx)
        {
            let (y0, y1) = (shared.y0.max(run.y0), shared.y1.min(run.y1));
            if y1 >= y0 + MIN_RUN {
                *shared = Run { y0, y1, ..run };
                *end = c + 1;
                continue;
            }
        }
        out.push((c, c + 1, run));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One column: `rows` hashes.
    fn grid(v: &[u64]) -> Grid<'_> {
        Grid { hashes: v, cols: 1 }
    }

    fn distinct(n: usize, base: u64) -> Vec<u64> {
        (0..n as u64).map(|i| base + i * 7919).collect()
    }

    #[test]
    fn a_column_scrolled_up_is_one_run() {
        let prev = distinct(100, 1);
        // Rows 10..90 scrolled up by 3: new[y] = prev[y + 3]; new text enters at 87..90.
        let mut new = prev.clone();
        new[10..87].copy_from_slice(&prev[13..90]);
        for (i, h) in new[87..90].iter_mut().enumerate() {
            *h = 1_000_000 + i as u64;
        }
        let run = column_run(grid(&prev), grid(&new), 0, 10, 90).unwrap();
        assert_eq!(
            run,
            Run {
                y0: 10,
                y1: 87,
                dy: 3,
                dx: 0
            }
        );
    }

    #[test]
    fn a_column_scrolled_down_is_one_run() {
        let prev = distinct(300, 5);
        let mut new = prev.clone();
        new[40..200].copy_from_slice(&prev[15..175]);
        let run = column_run(grid(&prev), grid(&new), 0, 40, 200).unwrap();
        assert_eq!(
            run,
            Run {
                y0: 40,
                y1: 200,
                dy: -25,
                dx: 0
            }
        );
    }

    #[test]
    fn new_content_is_no_run() {
        let prev = distinct(100, 1);
        let new = distinct(100, 500_000);
        assert_eq!(column_run(grid(&prev), grid(&new), 0, 0, 100), None);
    }

    #[test]
    fn unknown_rows_are_never_copied() {
        let mut prev = distinct(100, 1);
        let mut new = prev.clone();
        new[..90].copy_from_slice(&prev[10..]);
        prev[10..100].fill(UNKNOWN);
        new[90..].fill(UNKNOWN);
        assert_eq!(column_run(grid(&prev), grid(&new), 0, 0, 100), None);
    }

    #[test]
    fn blank_rows_do_not_fake_a_shift() {
        // Text lines (distinct) between blank lines (all equal); scrolled by 4.
        let prev: Vec<u64> = (0..200u64)
            .map(|y| if y % 9 < 3 { 42 } else { 100 + y })
            .collect();
        let mut new = prev.clone();
        new[..196].copy_from_slice(&prev[4..]);
        let run = column_run(grid(&prev), grid(&new), 0, 0, 200).unwrap();
        assert_eq!(run.dy, 4);
        assert_eq!((run.y0, run.y1), (0, 196));
    }

    #[test]
    fn short_changes_are_left_to_the_encoder() {
        let prev = distinct(100, 1);
        let mut new = prev.clone();
        new[50..50 + MIN_RUN - 1].copy_from_slice(&prev[51..50 + MIN_RUN]);
        assert_eq!(
            column_run(grid(&prev), grid(&new), 0, 50, 50 + MIN_RUN - 1),
            None
        );
    }

    #[test]
    fn merge_keeps_the_shared_rows_of_equal_shifts() {
        let r = |y0, y1, dy| Some(Run { y0, y1, dy, dx: 0 });
        let runs = [
            None,
            r(10, 100, 2),
            r(12, 100, 2),
            r(10, 100, 5),
            r(10, 20, 5),
            None,
        ];
        assert_eq!(
            merge(&runs),
            vec![
                (
                    1,
                    3,
                    Run {
                        y0: 12,
                        y1: 100,
                        dy: 2,
                        dx: 0
                    }
                ),
                (
                    3,
                    4,
                    Run {
                        y0: 10,
                        y1: 100,
                        dy: 5,
                        dx: 0
                    }
                ),
                (
                    4,
                    5,
                    Run {
                        y0: 10,
                        y1: 20,
                        dy: 5,
                        dx: 0
                    }
                ),
            ]
        );
    }
}
