//! Puts the prompt box on a panel and takes it away: compose, encode to the panel's format,
//! draw over the pixels there (saved in an [`Overlay`]), give them back.

use std::io;

use super::compose::{Style, compose, encode};
use super::overlay::Overlay;
pub use crate::screen::Panel;
use crate::screen::{PixelFormat, Rect};

/// A box on the screen, as a later agent needs it to take the box away if this one dies with
/// it shown (kill -9, a crash): where, on which mode, what was under it and what it drew.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Saved {
    /// Width, height and pixel format of the screen it was drawn on.
    pub mode: (u16, u16, String),
    /// x, y, w, h.
    pub rect: (u16, u16, u16, u16),
    pub bytes_per_pixel: usize,
    pub under: Vec<u8>,
    pub drawn: Vec<u8>,
}

#[derive(Default)]
pub struct Drawer {
    overlay: Option<Overlay>,
    geometry: Option<(u16, u16, PixelFormat)>,
    /// Changes whenever what `saved` would return changes (a cheap way to tell).
    revision: u64,
}

impl Drawer {
    /// Shows `content`, or no box with None; called again with the same content, it repairs
    /// the box if the UI painted over it. Returns where the box is now.
    pub fn show(
        &mut self,
        panel: &mut dyn Panel,
        content: Option<(Style, &[String])>,
    ) -> io::Result<Option<Rect>> {
        let geometry = panel.geometry()?;
        let (width, height, format) = geometry;
        if self.geometry != Some(geometry) {
            // A new mode: the saved bytes mean something else now; the UI redraws anyway.
            self.overlay = None;
            self.revision += 1;
            self.geometry = Some(geometry);
        }
        let composed = content.and_then(|(style, lines)| compose(style, lines, width, height));
        if let Some(old) = self
            .overlay
            .take_if(|o| composed.as_ref().map(|c| c.rect) != Some(o.rect()))
        {
            self.revision += 1;
            let current = panel.read(old.rect())?;
            panel.write(old.rect(), &old.restore(&current))?;
        }
        let Some(composed) = composed else {
            return Ok(None);
        };
        let rect = composed.rect;
        let new = encode(&composed.pixels, format);
        let current = panel.read(rect)?;
        match self.overlay.as_mut() {
            Some(overlay) => {
                // Painted over (the saved pixels under it change) or new text.
                if overlay.drawn() != current.as_slice() || overlay.drawn() != new.as_slice() {
                    self.revision += 1;
                }
                if overlay.redraw(&current, new) {
                    panel.write(rect, overlay.drawn())?;
                }
            }
            None => {
                self.revision += 1;
                panel.write(rect, &new)?;
                self.overlay = Some(Overlay::new(rect, format.bytes_per_pixel(), current, new));
            }
        }
        Ok(Some(rect))
    }

    /// Takes the box away (same as showing nothing).
    pub fn hide(&mut self, panel: &mut dyn Panel) -> io::Result<()> {
        if self.overlay.is_none() {
            return Ok(());
        }
        self.show(panel, None).map(|_| ())
    }

    pub fn is_shown(&self) -> bool {
        self.overlay.is_some()
    }

    /// Moves on whenever the box, or what it saved from under it, changes.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// The box now shown, for `take_back` by a later agent; None when none is.
    pub fn saved(&self) -> Option<Saved> {
        let (overlay, (w, h, format)) = (self.overlay.as_ref()?, self.geometry?);
        let r = overlay.rect();
        Some(Saved {
            mode: (w, h, format.to_string()),
            rect: (r.x, r.y, r.w, r.h),
            bytes_per_pixel: overlay.bytes_per_pixel(),
            under: overlay.under().to_vec(),
            drawn: overlay.drawn().to_vec(),
        })
    }

    /// Takes away a box an earlier agent left on `panel` (where it still shows); false when
    /// the mode changed since (the UI has redrawn anyway) or the record does not fit it.
    pub fn take_back(panel: &mut dyn Panel, saved: Saved) -> io::Result<bool> {
        let (w, h, format) = panel.geometry()?;
        let (x, y, rw, rh) = saved.rect;
        let rect = Rect::new(x, y, rw, rh);
        let fits = saved.mode == (w, h, format.to_string())
            && saved.bytes_per_pixel == format.bytes_per_pixel()
            && u32::from(x) + u32::from(rw) <= u32::from(w)
            && u32::from(y) + u32::from(rh) <= u32::from(h);
        // Only once bytes_per_pixel is known to be the panel's (at most 4): no overflow.
        let fits = fits && {
            let len = usize::from(rw) * usize::from(rh) * saved.bytes_per_pixel;
            saved.under.len() == len && saved.drawn.len() == len
        };
        if !fits {
            return Ok(false);
        }
        let current = panel.read(rect)?;
        let overlay = Overlay::new(rect, saved.bytes_per_pixel, saved.under, saved.drawn);
        panel.write(rect, &overlay.restore(&current))?;
        Ok(true)
    }
}

#[cfg(test)]
#[path = "draw_tests.rs"]
mod tests;
