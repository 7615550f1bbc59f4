//! A box drawn over pixels that belong to someone else (the thin client's UI), and how to
//! give them back.
//!
//! The UI may repaint under or over the box at any time. So the overlay remembers both what
//! was under it and what it drew: a pixel that no longer shows what we drew was painted by
//! the UI since, and that new pixel is what belongs there. Restoring writes the saved pixel
//! only where ours still shows; nothing the UI painted meanwhile is overwritten with stale
//! bytes. All buffers are the box's rows packed, in the panel's pixel format.

use crate::screen::Rect;

pub struct Overlay {
    rect: Rect,
    bytes_per_pixel: usize,
    under: Vec<u8>,
    drawn: Vec<u8>,
}

impl Overlay {
    /// Draws `new` over `current` (what the panel shows in `rect` now); returns what to write.
    pub fn new(rect: Rect, bytes_per_pixel: usize, current: Vec<u8>, new: Vec<u8>) -> Overlay {
        Overlay {
            rect,
            bytes_per_pixel: bytes_per_pixel.max(1),
            under: current,
            drawn: new,
        }
    }

    pub fn rect(&self) -> Rect {
        self.rect
    }

    /// What was under the box (as far as we know).
    pub fn under(&self) -> &[u8] {
        &self.under
    }

    pub fn bytes_per_pixel(&self) -> usize {
        self.bytes_per_pixel
    }

    /// What we last drew (what the panel should show in `rect`).
    pub fn drawn(&self) -> &[u8] {
        &self.drawn
    }

    /// Draws `new` in the same place. Pixels of `current` that differ from what we drew were
    /// painted by someone else since: they become what is under the box. Returns true when
    /// the panel needs writing (it does not show `new` already).
    pub fn redraw(&mut self, current: &[u8], new: Vec<u8>) -> bool {
        let n = self.bytes_per_pixel;
        for ((under, drawn), now) in self
            .under
            .chunks_exact_mut(n)
            .zip(self.drawn.chunks_exact(n))
            .zip(current.chunks_exact(n))
        {
            if drawn != now {
                under.copy_from_slice(now);
            }
        }
        self.drawn = new;
        current != self.drawn.as_slice()
    }

    /// What to write to take the box away, given what the panel shows now: the saved pixels
    /// where the box still shows, what someone else painted everywhere else.
    pub fn restore(&self, current: &[u8]) -> Vec<u8> {
        let n = self.bytes_per_pixel;
        let mut out = current.to_vec();
        for (((out, under), drawn), now) in out
            .chunks_exact_mut(n)
            .zip(self.under.chunks_exact(n))
            .zip(self.drawn.chunks_exact(n))
            .zip(current.chunks_exact(n))
        {
            if drawn == now {
                out.copy_from_slice(under);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rect() -> Rect {
        Rect::new(1, 1, 2, 2)
    }

    #[test]
    fn restoring_an_untouched_box_gives_back_the_original_bytes() {
        let original = vec![1, 2, 3, 4, 5, 6, 7, 8];
        let boxed = vec![9; 8];
        let o = Overlay::new(rect(), 2, original.clone(), boxed.clone());
        assert_eq!(o.drawn(), boxed);
        assert_eq!(o.restore(&boxed), original);
    }

    #[test]
    fn pixels_the_ui_painted_meanwhile_are_kept() {
        let original = vec![1, 1, 2, 2, 3, 3, 4, 4];
        let mut o = Overlay::new(rect(), 2, original, vec![9; 8]);
        // The UI repaints pixel 1 under/over the box.
        let now = vec![9, 9, 7, 7, 9, 9, 9, 9];
        assert_eq!(o.restore(&now), [1, 1, 7, 7, 3, 3, 4, 4]);
        // Drawn again (a countdown): pixel 1 is the new "under", the box covers it again.
        assert!(o.redraw(&now, vec![8; 8]));
        assert_eq!(o.restore(&[8; 8]), [1, 1, 7, 7, 3, 3, 4, 4]);
        // The same picture again needs no write.
        assert!(!o.redraw(&[8; 8], vec![8; 8]));
    }

    #[test]
    fn odd_lengths_do_not_panic() {
        let o = Overlay::new(rect(), 0, vec![1, 2, 3], vec![4]);
        assert_eq!(o.restore(&[4, 5]), [1, 5]);
        assert_eq!(o.rect(), rect());
    }
}
