//! The prompt box: where it goes on a screen of a given size, and its pixels.

use crate::screen::font::{CELL_H, CELL_W, Canvas, GLYPH_H, text_width};
use crate::screen::{PixelFormat, Rect};

/// The two kinds of box: a question in the middle, a one-line indicator at the top.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    Question,
    Indicator,
}

/// Amber: seen on dark and light screens alike.
pub const BORDER: u32 = 0xF2C230;
pub const QUESTION_BACKGROUND: u32 = 0x14202C;
pub const INDICATOR_BACKGROUND: u32 = 0x6B1A1A;
pub const TEXT: u32 = 0xFFFFFF;

/// A box ready to draw: its place and its XRGB8888 pixels (`rect.w * rect.h * 4` bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Composed {
    pub rect: Rect,
    pub pixels: Vec<u8>,
}

/// The box for `lines` on a `width` x `height` screen; None when the screen is too small
/// for anything. Lines too long for the screen are cut.
pub fn compose(style: Style, lines: &[String], width: u16, height: u16) -> Option<Composed> {
    let longest = lines.iter().map(|l| l.chars().count()).max()?;
    let rows = lines.len() as u32;
    // About 80 characters across at most; bigger on bigger screens.
    let mut scale = (u32::from(width) / (u32::from(CELL_W) * 80)).clamp(1, 3);
    let outer = |scale: u32, chars: usize| text_width(chars, scale as u16) + 2 * pad_x(scale);
    while scale > 1 && outer(scale, longest) + 2 * margin(scale) > u32::from(width) {
        scale -= 1;
    }
    let room = u32::from(width).saturating_sub(2 * margin(scale) + 2 * pad_x(scale));
    let columns = (room / (u32::from(CELL_W) * scale)) as usize;
    let chars = longest.min(columns);
    if chars == 0 {
        return None;
    }
    let line_h = u32::from(CELL_H) * scale;
    let w = outer(scale, chars);
    let h = rows * line_h + 2 * pad_y(scale);
    let x = (u32::from(width).saturating_sub(w)) / 2;
    let y = match style {
        Style::Question => u32::from(height).saturating_sub(h) / 2,
        Style::Indicator => margin(scale),
    };
    let (Ok(w16), Ok(h16)) = (u16::try_from(w), u16::try_from(h)) else {
        return None;
    };
    let rect = Rect::new(x as u16, y as u16, w16, h16).clip(width, height)?;

    let mut pixels = vec![0u8; usize::from(rect.w) * usize::from(rect.h) * 4];
    let mut canvas = Canvas::new(rect.w, rect.h, &mut pixels);
    let background = match style {
        Style::Question => QUESTION_BACKGROUND,
        Style::Indicator => INDICATOR_BACKGROUND,
    };
    let b = scale as u16;
    canvas.fill(Rect::new(0, 0, rect.w, rect.h), BORDER);
    canvas.fill(
        Rect::new(b, b, w16.saturating_sub(2 * b), h16.saturating_sub(2 * b)),
        background,
    );
    for (i, line) in lines.iter().enumerate() {
        let text: String = line.chars().take(chars).collect();
        let tw = text_width(text.chars().count(), b);
        let tx = (w - tw) / 2;
        let ty = pad_y(scale) + i as u32 * line_h + u32::from((CELL_H - GLYPH_H) / 2) * scale;
        canvas.text(tx as u16, ty as u16, b, &text, TEXT);
    }
    Some(Composed { rect, pixels })
}

fn margin(scale: u32) -> u32 {
    8 * scale
}

fn pad_x(scale: u32) -> u32 {
    2 * u32::from(CELL_W) * scale
}

fn pad_y(scale: u32) -> u32 {
    u32::from(CELL_H) * scale / 2
}

/// XRGB8888 pixels in the panel's own layout (little-endian values, as fbdev keeps them).
pub fn encode(xrgb: &[u8], format: PixelFormat) -> Vec<u8> {
    let bpp = format.bytes_per_pixel();
    let mut out = Vec::with_capacity(xrgb.len() / 4 * bpp);
    for px in xrgb.chunks_exact(4) {
        let value =
            channel(px[2], format.red) | channel(px[1], format.green) | channel(px[0], format.blue);
        out.extend_from_slice(&value.to_le_bytes()[..bpp.min(4)]);
    }
    out
}

/// An 8-bit colour component, scaled to the channel's width, at its place.
fn channel(value: u8, c: crate::screen::Channel) -> u32 {
    let v = u32::from(value);
    let scaled = match c.length {
        0 => 0,
        n @ 1..=8 => v >> (8 - n),
        n => (v << (n - 8)) | (v >> (16 - n.min(16))),
    };
    scaled.checked_shl(u32::from(c.offset)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pixel(c: &Composed, x: u16, y: u16) -> u32 {
        let i = (usize::from(y) * usize::from(c.rect.w) + usize::from(x)) * 4;
        u32::from_le_bytes(c.pixels[i..i + 4].try_into().unwrap())
    }

    fn lines(l: &[&str]) -> Vec<String> {
        l.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn a_question_sits_in_the_middle_with_a_border_and_text() {
        let text = lines(&[
            "Remote administration request from 10.0.2.2",
            "Enter: accept    Esc: reject    27 s left",
        ]);
        let c = compose(Style::Question, &text, 1024, 768).unwrap();
        // Scale 2 at 1024 wide: 43 characters of 12 px, 24 px padding each side.
        assert_eq!((c.rect.w, c.rect.h), (43 * 12 + 48, 2 * 20 + 20));
        assert_eq!(c.rect.x, (1024 - c.rect.w) / 2);
        assert_eq!(c.rect.y, (768 - c.rect.h) / 2);
        assert_eq!(
            c.pixels.len(),
            usize::from(c.rect.w) * usize::from(c.rect.h) * 4
        );
        assert_eq!(pixel(&c, 0, 0), BORDER);
        assert_eq!(pixel(&c, c.rect.w - 1, c.rect.h - 1), BORDER);
        assert_eq!(pixel(&c, 2, 2), QUESTION_BACKGROUND);
        // The first line's 'R' starts at the padding: its top-left font pixel is set.
        assert_eq!(pixel(&c, 24, 10 + 2), TEXT);
        let white = c
            .pixels
            .chunks_exact(4)
            .filter(|p| p[..3] == [0xFF; 3])
            .count();
        assert!(white > 500, "{white} text pixels");
    }

    #[test]
    fn the_indicator_is_one_line_at_the_top() {
        let text = lines(&["Remote administrator 10.0.2.2 connected"]);
        let c = compose(Style::Indicator, &text, 1920, 1080).unwrap();
        assert_eq!(c.rect.y, 8 * 3, "scale 3 at 1920 wide");
        assert_eq!(c.rect.h, 30 + 30);
        assert_eq!(pixel(&c, 4, 4), INDICATOR_BACKGROUND);
    }

    #[test]
    fn long_lines_are_cut_and_tiny_screens_give_nothing_or_a_clipped_box() {
        let long = lines(&[&"x".repeat(500)]);
        let c = compose(Style::Question, &long, 640, 480).unwrap();
        assert!(c.rect.right() <= 640 - 8, "{}", c.rect);
        assert_eq!(compose(Style::Question, &long, 20, 20), None);
        assert_eq!(compose(Style::Question, &[], 640, 480), None);
        let c = compose(Style::Question, &lines(&["a", "b", "c"]), 100, 30).unwrap();
        assert!(c.rect.bottom() <= 30);
        assert_eq!(
            c.pixels.len(),
            usize::from(c.rect.w) * usize::from(c.rect.h) * 4
        );
        for (w, h) in [(1, 1), (0, 0), (65535, 65535)] {
            let _ = compose(Style::Indicator, &lines(&["é\t"]), w, h);
        }
    }

    #[test]
    fn encodes_to_rgb565_and_xrgb() {
        let px = [0x12, 0xC2, 0xF2, 0x00]; // F2C212
        assert_eq!(encode(&px, PixelFormat::XRGB8888), px);
        let v = u16::from_le_bytes(encode(&px, PixelFormat::RGB565).try_into().unwrap());
        assert_eq!(v, (0xF2 >> 3) << 11 | (0xC2 >> 2) << 5 | (0x12 >> 3));
    }
}
