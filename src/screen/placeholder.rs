//! A generated waiting screen, shown to the admin instead of the real one while access is
//! withheld: a calm background, a panel, and centred lines of text in a built-in 5x7 font.
//!
//! It re-renders only what `set_text` changed, line by line, so damage finds only the
//! tiles under a changed line (a countdown costs a tile or two per second). Always
//! XRGB8888; the agent keeps its size equal to the real screen's, so switching between the
//! two never needs a reactivation.

use super::font::{CELL_H, CELL_W, Canvas, GLYPH_H};
use super::frame::{Frame, Rect};
use super::source::{MAX_SYNTHETIC_SIDE, Source, SourceError};

const BACKGROUND: u32 = 0x1B2631;
const PANEL: u32 = 0x27384A;
const BORDER: u32 = 0x4A6580;
const TEXT: u32 = 0xE6EDF3;

/// Lines shown at most; more are ignored.
pub const MAX_LINES: usize = 8;

pub struct Placeholder {
    width: u16,
    height: u16,
    pixels: Vec<u8>,
    lines: Vec<String>,
}

/// Where things go for one size and line count.
struct Layout {
    scale: u16,
    panel: Rect,
    /// Top of the first line's band.
    top: u16,
    band_h: u16,
    /// Characters that fit on one line.
    columns: usize,
}

impl Layout {
    fn new(width: u16, height: u16, lines: usize) -> Layout {
        // About 48 characters across, at 1x to 4x; smaller if the lines do not fit.
        let rows = lines.max(1) as u32;
        let mut scale = (u32::from(width) / (u32::from(CELL_W) * 48)).clamp(1, 4);
        while scale > 1 && rows * u32::from(CELL_H) * scale + 8 * scale > u32::from(height) {
            scale -= 1;
        }
        let scale = scale as u16;
        let band_h = CELL_H * scale;
        let block = (rows as u16).saturating_mul(band_h);
        let pad = 2 * band_h / 3;
        let panel_w = width - width / 8 * 2;
        let panel_h = block.saturating_add(2 * pad).min(height);
        let panel = Rect::new(width / 8, (height - panel_h) / 2, panel_w, panel_h);
        Layout {
            scale,
            panel,
            top: panel.y.saturating_add(pad),
            band_h,
            columns: usize::from(panel_w.saturating_sub(2 * scale) / (CELL_W * scale)),
        }
    }

    fn band(&self, line: usize) -> Rect {
        let y = u32::from(self.top) + line as u32 * u32::from(self.band_h);
        let y = y.min(u32::from(u16::MAX)) as u16;
        Rect::new(
            self.panel.x + 1,
            y,
            self.panel.w.saturating_sub(2),
            self.band_h,
        )
    }
}

impl Placeholder {
    /// Sides are clamped to 1..=MAX_SYNTHETIC_SIDE.
    pub fn new(width: u16, height: u16) -> Placeholder {
        let mut p = Placeholder {
            width: 0,
            height: 0,
            pixels: Vec::new(),
            lines: Vec::new(),
        };
        p.set_size(width, height);
        p
    }

    /// Follows the real screen's size (a full redraw when it changes).
    pub fn set_size(&mut self, width: u16, height: u16) {
        let (width, height) = (
            width.clamp(1, MAX_SYNTHETIC_SIDE),
            height.clamp(1, MAX_SYNTHETIC_SIDE),
        );
        if (width, height) == (self.width, self.height) {
            return;
        }
        self.width = width;
        self.height = height;
        self.pixels = vec![0; usize::from(width) * usize::from(height) * 4];
        self.redraw();
    }

    /// The lines to show (at most MAX_LINES). Only lines that differ are drawn again,
    /// unless the count changed and the block moved.
    pub fn set_text(&mut self, lines: &[&str]) {
        let lines = &lines[..lines.len().min(MAX_LINES)];
        if lines.len() != self.lines.len() {
            self.lines = lines.iter().map(|l| (*l).to_owned()).collect();
            self.redraw();
            return;
        }
        let layout = Layout::new(self.width, self.height, self.lines.len());
        for (i, line) in lines.iter().enumerate() {
            if self.lines[i] != *line {
                self.lines[i] = (*line).to_owned();
                self.draw_line(&layout, i);
            }
        }
    }

    pub fn text(&self) -> &[String] {
        &self.lines
    }

    fn redraw(&mut self) {
        let layout = Layout::new(self.width, self.height, self.lines.len());
        self.fill(Rect::new(0, 0, self.width, self.height), BACKGROUND);
        let p = layout.panel;
        self.fill(p, BORDER);
        self.fill(
            Rect::new(
                p.x + 1,
                p.y.saturating_add(1),
                p.w.saturating_sub(2),
                p.h.saturating_sub(2),
            ),
            PANEL,
        );
        for i in 0..self.lines.len() {
            self.draw_line(&layout, i);
        }
    }

    fn draw_line(&mut self, layout: &Layout, index: usize) {
        let band = layout.band(index);
        // Keep the panel's border: the band stops inside it.
        let inside = Rect::new(
            band.x,
            band.y,
            band.w,
            band.h
                .min((layout.panel.bottom().saturating_sub(1) as u16).saturating_sub(band.y)),
        );
        self.fill(inside, PANEL);
        let text: String = self.lines[index].chars().take(layout.columns).collect();
        let s = layout.scale;
        let text_w = (text.chars().count() as u16).saturating_mul(CELL_W * s);
        let x = band.x + band.w.saturating_sub(text_w) / 2;
        let y = band.y + (CELL_H - GLYPH_H) / 2 * s;
        self.canvas().text(x, y, s, &text, TEXT);
    }

    fn canvas(&mut self) -> Canvas<'_> {
        Canvas::new(self.width, self.height, &mut self.pixels)
    }

    fn fill(&mut self, area: Rect, colour: u32) {
        self.canvas().fill(area, colour);
    }
}

impl Source for Placeholder {
    fn frame(&mut self) -> Result<Frame<'_>, SourceError> {
        Ok(Frame::xrgb8888(self.width, self.height, &self.pixels))
    }

    fn describe(&self) -> String {
        format!("placeholder {}x{} XRGB8888", self.width, self.height)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::screen::Damage;
    use crate::screen::font::{FONT, glyph};

    fn pixel(p: &mut Placeholder, x: u16, y: u16) -> u32 {
        let f = p.frame().unwrap();
        let row = f.row(y).unwrap();
        let i = usize::from(x) * 4;
        u32::from_le_bytes([row[i], row[i + 1], row[i + 2], row[i + 3]])
    }

    #[test]
    fn a_known_glyph_is_drawn_where_the_layout_says() {
        let mut p = Placeholder::new(640, 480);
        p.set_text(&["A"]);
        let layout = Layout::new(640, 480, 1);
        let s = layout.scale;
        assert_eq!(s, 2);
        let band = layout.band(0);
        let x0 = band.x + (band.w - CELL_W * s) / 2;
        let y0 = band.y + (CELL_H - GLYPH_H) / 2 * s;
        let a = ".###. #...# #...# ##### #...# #...# #...#";
        for (gy, row) in a.split(' ').enumerate() {
            for (gx, cell) in row.chars().enumerate() {
                let want = if cell == '#' { TEXT } else { PANEL };
                for (dx, dy) in [(0, 0), (s - 1, s - 1)] {
                    let (x, y) = (x0 + gx as u16 * s + dx, y0 + gy as u16 * s + dy);
                    assert_eq!(pixel(&mut p, x, y), want, "glyph pixel {gx},{gy}");
                }
            }
        }
        assert_eq!(pixel(&mut p, 0, 0), BACKGROUND);
        assert_eq!(pixel(&mut p, layout.panel.x, layout.panel.y), BORDER);
    }

    #[test]
    fn changing_one_line_changes_only_tiles_around_it() {
        let mut p = Placeholder::new(1024, 768);
        let text = [
            "Remote administration",
            "Waiting for the local user to accept",
            "Seconds left: 23",
        ];
        p.set_text(&text);
        let mut damage = Damage::new(1024, 768);
        let mut rects = Vec::new();
        damage.scan(&p.frame().unwrap(), &mut rects);
        assert!(!rects.is_empty());
        rects.clear();
        damage.scan(&p.frame().unwrap(), &mut rects);
        assert!(rects.is_empty(), "nothing changed");
        p.set_text(&[text[0], text[1], "Seconds left: 22"]);
        damage.scan(&p.frame().unwrap(), &mut rects);
        let band = Layout::new(1024, 768, 3).band(2);
        assert!(!rects.is_empty());
        for r in &rects {
            assert!(
                u32::from(r.y) < band.bottom() && r.bottom() > u32::from(band.y),
                "{r} is outside line 3's band {band}"
            );
        }
        let area: u32 = rects.iter().map(|r| u32::from(r.w) * u32::from(r.h)).sum();
        assert!(area <= 2 * 64 * 64 * 2, "{rects:?}");
        // The same text again renders nothing new.
        rects.clear();
        p.set_text(&[text[0], text[1], "Seconds left: 22"]);
        damage.scan(&p.frame().unwrap(), &mut rects);
        assert!(rects.is_empty());
    }

    #[test]
    fn odd_sizes_long_lines_and_odd_characters_do_not_panic() {
        let long = "x".repeat(500);
        for (w, h) in [(1, 1), (7, 3), (40, 9), (300, 20), (1920, 1080), (0, 0)] {
            let mut p = Placeholder::new(w, h);
            p.set_text(&[
                "é ü \u{7f} \t",
                &long,
                "",
                "a",
                "b",
                "c",
                "d",
                "e",
                "f",
                "g",
            ]);
            p.set_text(&["short"]);
            let f = p.frame().unwrap();
            assert!(f.is_consistent());
            assert_eq!(p.text(), ["short"]);
        }
        assert_eq!(glyph('é'), glyph('?'));
        assert_eq!(glyph('A'), &FONT[0x21]);
    }

    #[test]
    fn resize_redraws_at_the_new_size() {
        let mut p = Placeholder::new(640, 480);
        p.set_text(&["Waiting"]);
        p.set_size(800, 600);
        let f = p.frame().unwrap();
        assert_eq!((f.width, f.height, f.data.len()), (800, 600, 800 * 600 * 4));
        assert_eq!(p.describe(), "placeholder 800x600 XRGB8888");
    }
}
