//! Puts the prompt box on a panel and takes it away: compose, encode to the panel's format,
//! draw over the pixels there (saved in an [`Overlay`]), give them back.

use std::io;

use super::compose::{Style, compose, encode};
use super::overlay::Overlay;
pub use crate::screen::Panel;
use crate::screen::{PixelFormat, Rect};

#[derive(Default)]
pub struct Drawer {
    overlay: Option<Overlay>,
    geometry: Option<(u16, u16, PixelFormat)>,
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
            self.geometry = Some(geometry);
        }
        let composed = content.and_then(|(style, lines)| compose(style, lines, width, height));
        if let Some(old) = self
            .overlay
            .take_if(|o| composed.as_ref().map(|c| c.rect) != Some(o.rect()))
        {
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
                if overlay.redraw(&current, new) {
                    panel.write(rect, overlay.drawn())?;
                }
            }
            None => {
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
}

#[cfg(test)]
#[path = "draw_tests.rs"]
mod tests;
