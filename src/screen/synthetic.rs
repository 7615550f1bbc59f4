//! A test-pattern source: colour bars, ramps, a moving block and a binary phase counter.
//!
//! Consecutive phases differ only where the block moved and in a few counter cells, so damage
//! sees a few tiles, like a real desktop. `synthetic_pixel` is the whole pattern, so tests can
//! compute any expected pixel; the source re-renders only what changed between phases.

use std::sync::{Arc, Mutex, PoisonError};

use super::cursor::{Cursor, CursorShape};
use super::frame::{Frame, Rect};
use super::source::{MAX_SYNTHETIC_SIDE, Source, SourceError};

/// 75% colour bars, left to right.
const BARS: [u32; 8] = [
    0xC0C0C0, 0xC0C000, 0x00C0C0, 0x00C000, 0xC000C0, 0xC00000, 0x0000C0, 0x101010,
];
/// Pixels the block moves per phase.
const STEP: u32 = 8;
/// Bits shown by the counter.
const COUNTER_BITS: u32 = 16;

/// Where the moving parts are for a given screen size.
struct Parts {
    w: u32,
    h: u32,
    block: u32,
    cell: u32,
}

impl Parts {
    fn new(width: u16, height: u16) -> Self {
        let (w, h) = (u32::from(width).max(1), u32::from(height).max(1));
        Self {
            w,
            h,
            block: (w.min(h) / 8).max(8),
            cell: (w.min(h) / 48).max(2),
        }
    }

    fn block_at(&self, phase: u32) -> Rect {
        let travel = self.w.saturating_sub(self.block) + 1;
        let x = (u64::from(phase) * u64::from(STEP) % u64::from(travel)) as u32;
        let y = (self.h / 2).saturating_sub(self.block / 2);
        rect(x, y, self.block, self.block)
    }

    fn counter(&self) -> Rect {
        rect(self.cell, self.cell, self.cell * COUNTER_BITS, self.cell)
    }
}

fn rect(x: u32, y: u32, w: u32, h: u32) -> Rect {
    let c = |v: u32| v.min(u32::from(u16::MAX)) as u16;
    Rect::new(c(x), c(y), c(w), c(h))
}

fn inside(r: Rect, x: u32, y: u32) -> bool {
    x >= u32::from(r.x) && x < r.right() && y >= u32::from(r.y) && y < r.bottom()
}

fn rgb(r: u32, g: u32, b: u32) -> u32 {
    ((r & 0xFF) << 16) | ((g & 0xFF) << 8) | (b & 0xFF)
}

/// The pattern itself, so a test can compute the expected pixel: 0x00RRGGBB.
pub fn synthetic_pixel(width: u16, height: u16, phase: u32, x: u16, y: u16) -> u32 {
    let p = Parts::new(width, height);
    let (x, y) = (u32::from(x), u32::from(y));
    let counter = p.counter();
    if inside(counter, x, y) {
        let bit = (x - u32::from(counter.x)) / p.cell;
        let edge = (x - u32::from(counter.x)) % p.cell == 0;
        return match (edge, phase >> bit & 1) {
            (true, _) => 0x404040,
            (false, 1) => 0xF0F0F0,
            _ => 0x202020,
        };
    }
    let block = p.block_at(phase);
    if inside(block, x, y) {
        // A checkerboard, so the block is not flat either.
        let check = ((x - u32::from(block.x)) / 4 + (y - u32::from(block.y)) / 4) % 2;
        return if check == 0 { 0xFF8000 } else { 0x0040FF };
    }
    let (w, h) = (p.w, p.h);
    if y * 5 < h * 2 {
        BARS[(x * 8 / w).min(7) as usize]
    } else if y * 5 < h * 3 {
        let v = x * 255 / (w - 1).max(1);
        rgb(v, v, v)
    } else {
        // Colour ramps with fine texture and a 32-pixel grid.
        let grid = if x % 32 == 0 || y % 32 == 0 { 0x30 } else { 0 };
        rgb(x * 255 / w, y * 255 / h, ((x ^ y) & 0x3F) + grid)
    }
}

struct State {
    phase: u32,
    animating: bool,
    width: u16,
    height: u16,
    /// A cursor plane, as on KMS: None, none; Some(None), hidden; else where and what.
    cursor: Option<Option<(i32, i32, CursorShape)>>,
}

type Shared = Arc<Mutex<State>>;

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, State> {
    // The state stays valid whatever a panicking holder did: plain values only.
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

fn clamp_side(v: u16) -> u16 {
    v.clamp(1, MAX_SYNTHETIC_SIDE)
}

/// The test pattern source (XRGB8888). It animates until frozen.
pub struct Synthetic {
    shared: Shared,
    width: u16,
    height: u16,
    shown: Option<u32>,
    pixels: Vec<u8>,
}

/// Controls a `Synthetic` from anywhere (another thread in a test).
#[derive(Clone)]
pub struct SyntheticHandle {
    shared: Shared,
}

impl Synthetic {
    /// Sides are clamped to 1..=MAX_SYNTHETIC_SIDE.
    pub fn new(width: u16, height: u16) -> (Synthetic, SyntheticHandle) {
        let state = State {
            phase: 0,
            animating: true,
            width: clamp_side(width),
            height: clamp_side(height),
            cursor: None,
        };
        let shared = Arc::new(Mutex::new(state));
        let source = Synthetic {
            shared: shared.clone(),
            width: 0,
            height: 0,
            shown: None,
            pixels: Vec::new(),
        };
        (source, SyntheticHandle { shared })
    }

    fn paint(&mut self, area: Rect, phase: u32) {
        let Some(area) = area.clip(self.width, self.height) else {
            return;
        };
        let stride = usize::from(self.width) * 4;
        for y in area.y..area.y + area.h {
            let start = usize::from(y) * stride + usize::from(area.x) * 4;
            let row = &mut self.pixels[start..start + usize::from(area.w) * 4];
            for (x, px) in (area.x..).zip(row.chunks_exact_mut(4)) {
                px.copy_from_slice(
                    &synthetic_pixel(self.width, self.height, phase, x, y).to_le_bytes(),
                );
            }
        }
    }
}

impl SyntheticHandle {
    /// Stop animating, show this phase.
    pub fn freeze(&self, phase: u32) {
        let mut s = lock(&self.shared);
        s.animating = false;
        s.phase = phase;
    }

    /// Phase advances by one per `frame()` call, starting from the one shown now.
    pub fn animate(&self) {
        lock(&self.shared).animating = true;
    }

    /// A cursor plane showing `shape` with its hot spot at (`x`, `y`), or hiding it (None).
    pub fn set_cursor(&self, cursor: Option<(i32, i32, CursorShape)>) {
        lock(&self.shared).cursor = Some(cursor);
    }

    /// The next `frame()` has the new size (sides clamped to 1..=MAX_SYNTHETIC_SIDE).
    pub fn resize(&self, width: u16, height: u16) {
        let mut s = lock(&self.shared);
        s.width = clamp_side(width);
        s.height = clamp_side(height);
    }
}

impl Source for Synthetic {
    fn cursor(&mut self) -> Cursor {
        match lock(&self.shared).cursor.clone() {
            None => Cursor::None,
            Some(None) => Cursor::Hidden,
            Some(Some((x, y, shape))) => Cursor::Shown {
                x,
                y,
                shape: std::rc::Rc::new(shape),
            },
        }
    }

    fn frame(&mut self) -> Result<Frame<'_>, SourceError> {
        let (phase, width, height) = {
            let mut s = lock(&self.shared);
            let phase = s.phase;
            if s.animating {
                s.phase = s.phase.wrapping_add(1);
            }
            (phase, s.width, s.height)
        };
        if (width, height) != (self.width, self.height) {
            self.width = width;
            self.height = height;
            self.pixels.clear();
            self.pixels
                .resize(usize::from(width) * usize::from(height) * 4, 0);
            self.paint(Rect::new(0, 0, width, height), phase);
        } else if let Some(old) = self.shown.filter(|&old| old != phase) {
            let parts = Parts::new(width, height);
            // Each pixel comes from the whole pattern, so the order of these does not matter.
            self.paint(parts.block_at(old), phase);
            self.paint(parts.block_at(phase), phase);
            self.paint(parts.counter(), phase);
        }
        self.shown = Some(phase);
        Ok(Frame::xrgb8888(width, height, &self.pixels))
    }

    fn describe(&self) -> String {
        let s = lock(&self.shared);
        format!("synthetic:{}x{} XRGB8888", s.width, s.height)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pixel_at(f: &Frame, x: u16, y: u16) -> u32 {
        let row = f.row(y).unwrap();
        let i = usize::from(x) * 4;
        u32::from_le_bytes([row[i], row[i + 1], row[i + 2], row[i + 3]])
    }

    fn assert_matches_pattern(f: &Frame, phase: u32) {
        for y in 0..f.height {
            for x in 0..f.width {
                let want = synthetic_pixel(f.width, f.height, phase, x, y);
                assert_eq!(pixel_at(f, x, y), want, "phase {phase} at {x},{y}");
            }
        }
    }

    #[test]
    fn incremental_render_equals_the_pattern() {
        let (mut s, h) = Synthetic::new(200, 120);
        for phase in 0..12 {
            let f = s.frame().unwrap();
            assert_matches_pattern(&f, phase);
        }
        h.freeze(1000);
        assert_matches_pattern(&s.frame().unwrap(), 1000);
        assert_matches_pattern(&s.frame().unwrap(), 1000);
        h.animate();
        assert_matches_pattern(&s.frame().unwrap(), 1000);
        assert_matches_pattern(&s.frame().unwrap(), 1001);
    }

    #[test]
    fn pattern_is_varied_and_phases_differ_locally() {
        let (w, h) = (640u16, 480u16);
        let at = |phase, x, y| synthetic_pixel(w, h, phase, x, y);
        let mut colours = std::collections::HashSet::new();
        for y in (0..h).step_by(7) {
            for x in (0..w).step_by(5) {
                colours.insert(at(0, x, y));
            }
        }
        assert!(colours.len() > 200, "{} colours", colours.len());
        // Phase 1 vs 2: the block moved 8 px and counter bits 0 and 1 flipped; little else.
        let changed: Vec<(u16, u16)> = (0..h)
            .flat_map(|y| (0..w).map(move |x| (x, y)))
            .filter(|&(x, y)| at(1, x, y) != at(2, x, y))
            .collect();
        assert!(!changed.is_empty());
        assert!(
            changed.len() < 640 * 480 / 50,
            "{} pixels changed",
            changed.len()
        );
        let tiles: std::collections::HashSet<_> =
            changed.iter().map(|(x, y)| (x / 64, y / 64)).collect();
        assert!(tiles.len() <= 6, "{tiles:?}");
    }

    #[test]
    fn resize_is_followed_and_clamped() {
        let (mut s, h) = Synthetic::new(64, 48);
        h.freeze(3);
        assert_eq!(s.frame().unwrap().width, 64);
        h.resize(100, 30);
        let f = s.frame().unwrap();
        assert_eq!(
            (f.width, f.height, f.stride, f.data.len()),
            (100, 30, 400, 100 * 30 * 4)
        );
        assert_matches_pattern(&f, 3);
        h.resize(0, 9000);
        assert_eq!(s.describe(), "synthetic:1x8192 XRGB8888");
        h.resize(1, 1);
        assert_matches_pattern(&s.frame().unwrap(), 3);
    }

    #[test]
    fn handle_is_send_and_sync() {
        // Compile-time: a test thread may hold the handle while the agent owns the source.
        fn send_sync<T: Send + Sync + Clone>() {}
        fn send<T: Send>() {}
        send_sync::<SyntheticHandle>();
        send::<Synthetic>();
    }

    #[test]
    fn handle_works_from_another_thread() {
        let (mut s, h) = Synthetic::new(32, 32);
        std::thread::spawn(move || h.freeze(77)).join().unwrap();
        assert_matches_pattern(&s.frame().unwrap(), 77);
        assert_matches_pattern(&s.frame().unwrap(), 77);
    }

    #[test]
    fn tiny_and_odd_sizes_do_not_panic() {
        for (w, h) in [(1, 1), (2, 1), (1, 9), (7, 3), (9, 100)] {
            for phase in [0, 1, u32::MAX] {
                for y in 0..h {
                    for x in 0..w {
                        let _ = synthetic_pixel(w, h, phase, x, y);
                    }
                }
                let _ = synthetic_pixel(w, h, phase, u16::MAX, u16::MAX);
            }
        }
    }
}
