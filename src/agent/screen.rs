//! The session's screen pipeline inside the loop: scan when due, encode within a budget,
//! notice a size change. The pixels work lives in `crate::screen`; this decides when.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::net::Wire;
use crate::screen::{
    BitmapEncoder, CopyRect, Cursor, Damage, Placeholder, PointerState, Rect, Source, encode_copies,
};
use crate::{info, warn};

/// Screen output encoded per loop turn before input and control get their turn again:
/// whichever of bytes or time runs out first (a full 1024x768 frame takes tens of ms on ARM).
const ENCODE_BUDGET: usize = 256 * 1024;
const ENCODE_TIME_BUDGET: Duration = Duration::from_millis(8);
/// Scans that found nothing before the scan rate halves: a second at the default rate.
const STILL_SCANS: u32 = 30;
/// The slowed interval stays at or below this (or at the configured one, if slower): a text
/// line is seen within 3 sampled scans, so it reaches the client within 250 ms.
const STILL_INTERVAL_CAP: Duration = Duration::from_millis(75);
/// After the admin pointed, the local cursor's position is not sent for this long: the
/// admin's own pointer is there, and a position from before would pull it back.
const ADMIN_POINTING: Duration = Duration::from_millis(500);

/// What a session's screen cost, for its end line.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Stats {
    /// Scans that found something to send.
    pub(super) frames: u64,
    pub(super) rects: u64,
    pub(super) copies: u64,
    /// Copies that also moved sideways (a dragged window rather than a scroll).
    pub(super) sideways: u64,
    pub(super) bytes: u64,
    /// Pointer shape, position and hide updates (a KMS cursor plane).
    pub(super) pointer_updates: u64,
    /// Tiles drawn from the client's bitmap cache, and tiles sent into it.
    pub(super) cache_hits: u64,
    pub(super) cache_misses: u64,
}

/// What a turn of `Pipeline::produce` gave.
pub(super) enum Produced {
    Output,
    /// The source's size changed: the session must reactivate at this size.
    Resized(u16, u16),
}

/// The screen the agent mirrors, for the agent's whole life.
pub(super) struct Screen {
    pub(super) source: Box<dyn Source>,
    /// The source's size as last seen: what a new connection is offered.
    pub(super) size: (u16, u16),
    /// The source failed or gave a short frame (said once until it recovers).
    pub(super) failing: bool,
    /// Times the encoding against ENCODE_TIME_BUDGET (see `Core::new`).
    stopwatch: fn() -> Instant,
}

impl Screen {
    pub(super) fn new(
        source: Box<dyn Source>,
        size: (u16, u16),
        stopwatch: fn() -> Instant,
    ) -> Self {
        Screen {
            source,
            size,
            failing: false,
            stopwatch,
        }
    }

    /// Before a session's screen starts: lets `--screen auto` choose again (a compositor
    /// may own the display now), and takes the new source's size. True when it changed.
    pub(super) fn reselect(&mut self) -> bool {
        if !self.source.reselect() {
            return false;
        }
        match self.source.frame() {
            Ok(frame) => self.size = (frame.width, frame.height),
            Err(e) => warn!("screen {}: {e}", self.source.describe()),
        }
        true
    }
}

/// The wait before the next scan: `interval`, doubled (up to STILL_INTERVAL_CAP) once the
/// screen has been still for STILL_SCANS scans. The first change found restores `interval`.
fn scan_interval(interval: Duration, still_scans: u32) -> Duration {
    if still_scans < STILL_SCANS {
        return interval;
    }
    (interval * 2).min(STILL_INTERVAL_CAP.max(interval))
}

/// The client's pointer following the cursor plane.
#[derive(Default)]
struct Pointer {
    /// What the client's pointer shows, as last sent.
    sent: PointerState,
    /// When the admin last moved or clicked.
    admin_pointed: Option<Instant>,
    /// The last scan was within the admin's pointing: the next only notes the position.
    was_pointing: bool,
    /// The client takes New Pointer updates (its Pointer capability has a cache).
    shapes: bool,
    /// A shape was sent this session (its first is logged).
    shown: bool,
}

impl Pointer {
    /// With a scan: the client's pointer follows `cursor`, or goes back to its default on the
    /// waiting screen. Returns the updates written.
    fn turn(&mut self, cursor: &Cursor, waiting: bool, now: Instant, out: &mut Vec<u8>) -> u64 {
        let pointing = self
            .admin_pointed
            .is_some_and(|at| now.saturating_duration_since(at) < ADMIN_POINTING);
        // The first scan after the admin's pointing notes where the plane is, as scans may
        // have been held back (a busy queue) through the whole window.
        let move_pointer = !pointing && !self.was_pointing;
        self.was_pointing = pointing;
        let before = out.len();
        let result = if waiting {
            // The client's pointer must not keep the user's.
            self.sent
                .to_default(out)
                .map(|sent| (usize::from(sent), None))
        } else {
            self.sent.update(cursor, move_pointer, out)
        };
        match result {
            Ok((sent, shape)) => {
                if let Some((w, h)) = shape
                    && !self.shown
                {
                    info!("pointer: the cursor plane's {w}x{h} image is the client's pointer");
                    self.shown = true;
                }
                sent as u64
            }
            Err(e) => {
                warn!("pointer update failed: {e}");
                out.truncate(before);
                0
            }
        }
    }
}

/// One session's screen output: made with the session at login, dropped with it, so
/// nothing of one admin's screen state (damage, what the client holds, the compression
/// history, the counts) outlives it.
pub(super) struct Pipeline {
    /// The session's desktop size (its last activation's).
    size: (u16, u16),
    /// None until the client is active, and while a reactivation is pending.
    pub(super) damage: Option<Damage>,
    pub(super) encoder: BitmapEncoder,
    pub(super) queue: VecDeque<Rect>,
    /// The client gets scrolled rows as copies (ScrBlt).
    copies: bool,
    pub(super) stats: Stats,
    pub(super) next_scan: Option<Instant>,
    /// Scans in a row that found no change (the rate halves after STILL_SCANS).
    still_scans: u32,
    pointer: Pointer,
    pub(super) suppressed: bool,
    /// While the access policy withholds the screen: what is served instead of the source,
    /// so no real pixel leaves before access is granted.
    placeholder: Option<Placeholder>,
}

impl Pipeline {
    pub(super) fn new() -> Self {
        Pipeline {
            size: (0, 0),
            damage: None,
            encoder: BitmapEncoder::new(),
            queue: VecDeque::new(),
            copies: false,
            stats: Stats::default(),
            next_scan: None,
            still_scans: 0,
            pointer: Pointer::default(),
            suppressed: false,
            placeholder: None,
        }
    }

    /// The client's bitmap caches for tiles (None: bitmaps only), for this activation: the
    /// counts of the last one are kept.
    pub(super) fn set_bitmap_cache(
        &mut self,
        cells: Option<&crate::rdp::caps::CacheCells>,
        no_compression_header: bool,
    ) {
        self.stats = self.stats();
        self.encoder.set_bitmap_cache(cells, no_compression_header);
    }

    /// The session's counts so far.
    pub(super) fn stats(&self) -> Stats {
        let (hits, misses) = self.encoder.bitmap_cache_counts();
        Stats {
            cache_hits: self.stats.cache_hits + hits,
            cache_misses: self.stats.cache_misses + misses,
            ..self.stats
        }
    }

    /// The client reached the active phase (first time or after a reactivation).
    pub(super) fn start(
        &mut self,
        width: u16,
        height: u16,
        max_request_size: u32,
        copies: bool,
        now: Instant,
    ) {
        self.size = (width, height);
        let mut damage = Damage::new(width, height);
        // A still screen costs a sixteenth of a full scan; changes show within a few scans.
        damage.set_sampling(true);
        self.damage = Some(damage);
        self.copies = copies;
        // Copies need to know what the client holds: the bytes each bitmap was made of.
        self.encoder.set_track_sent(copies);
        self.queue.clear();
        self.next_scan = Some(now);
        self.still_scans = 0;
        // A reactivated client may show its default pointer again.
        self.pointer.sent = PointerState::default();
        self.suppressed = false;
        // The encoder splits rectangles so no update is over what the client reassembles.
        self.encoder.set_max_update_len(max_request_size as usize);
    }

    /// Whether the client's pointer may be given the cursor plane's shapes.
    pub(super) fn set_pointer_shapes(&mut self, on: bool) {
        self.pointer.shapes = on;
    }

    /// The admin's pointer input reached the screen.
    pub(super) fn admin_pointed(&mut self, now: Instant) {
        self.pointer.admin_pointed = Some(now);
    }

    /// Serves the waiting screen with `lines` (Some) or the real source (None). A switch
    /// drops what was queued from the other one, repaints everything and scans now.
    pub(super) fn show(&mut self, lines: Option<&[String]>, now: Instant) {
        let switched = lines.is_some() != self.placeholder.is_some();
        match lines {
            Some(lines) => {
                let (w, h) = self.size;
                let placeholder = self
                    .placeholder
                    .get_or_insert_with(|| Placeholder::new(w, h));
                placeholder.set_size(w, h);
                let text: Vec<&str> = lines.iter().map(String::as_str).collect();
                placeholder.set_text(&text);
            }
            None => self.placeholder = None,
        }
        if switched {
            self.queue.clear();
            if let Some(damage) = self.damage.as_mut() {
                damage.invalidate_all();
            }
            if self.damage.is_some() {
                self.next_scan = Some(now);
                self.still_scans = 0;
            }
        }
    }

    /// Scans when due (and the last scan's rectangles are all sent), then encodes while
    /// the socket keeps up and the turn's budget lasts.
    pub(super) fn produce(
        &mut self,
        screen: &mut Screen,
        now: Instant,
        interval: Duration,
        wire: &Wire,
        out: &mut Vec<u8>,
    ) -> Result<Produced, crate::screen::SourceError> {
        let Some(damage) = self.damage.as_mut() else {
            return Ok(Produced::Output);
        };
        let scan_due = self.queue.is_empty() && self.next_scan.is_some_and(|at| now >= at);
        if !scan_due && (self.queue.is_empty() || wire.has_pending_output()) {
            return Ok(Produced::Output);
        }
        let waiting = self.placeholder.is_some();
        // Not while waiting: the pointer's shape and place are the user's screen too.
        let cursor = if scan_due && !waiting && self.pointer.shapes {
            screen.source.cursor()
        } else {
            Cursor::None
        };
        let frame = match self.placeholder.as_mut() {
            Some(placeholder) => placeholder.frame()?,
            None => screen.source.frame()?,
        };
        if !waiting {
            if !frame.is_consistent() {
                // Nothing of it can be encoded: leave the damage state as it is until a
                // whole frame comes, and say so once.
                if !screen.failing {
                    warn!(
                        "the screen source gave a frame shorter than its size; waiting for a whole one"
                    );
                }
                screen.failing = true;
                return Ok(Produced::Output);
            }
            screen.failing = false;
        }
        if (frame.width, frame.height) != self.size {
            if waiting {
                // The placeholder is clamped to what it can draw: never send it at a size
                // the session does not have.
                return Ok(Produced::Output);
            }
            let size = (frame.width, frame.height);
            self.size = size;
            screen.size = size;
            // Damage restarts when the reactivated session is accepted.
            self.damage = None;
            self.queue.clear();
            return Ok(Produced::Resized(size.0, size.1));
        }
        let out_start = out.len();
        if scan_due {
            let mut rects = Vec::new();
            if self.copies {
                let mut copies: Vec<CopyRect> = Vec::new();
                damage.scan_with_copies(&frame, &mut rects, &mut copies);
                // Before any bitmap of this scan: they may cover the copies' sources.
                match encode_copies(&copies, out) {
                    Ok(()) => {
                        self.stats.copies += copies.len() as u64;
                        let sideways = copies.iter().filter(|c| c.src_x != c.dst.x).count();
                        self.stats.sideways += sideways as u64;
                    }
                    Err(e) => {
                        warn!("encoding {} screen copies failed: {e}", copies.len());
                        out.truncate(out_start);
                        for copy in &copies {
                            damage.invalidate(copy.dst);
                        }
                    }
                }
            } else {
                damage.scan(&frame, &mut rects);
            }
            let sent = self.pointer.turn(&cursor, waiting, now, out);
            self.stats.pointer_updates += sent;
            if !rects.is_empty() || out.len() > out_start {
                self.stats.frames += 1;
                self.still_scans = 0;
            } else {
                self.still_scans = self.still_scans.saturating_add(1);
            }
            self.stats.rects += rects.len() as u64;
            self.queue.extend(rects);
            self.next_scan = Some(now + scan_interval(interval, self.still_scans));
        }
        self.stats.bytes += (out.len() - out_start) as u64;
        if wire.has_pending_output() {
            return Ok(Produced::Output);
        }
        let started = (screen.stopwatch)();
        while out.len() < ENCODE_BUDGET
            && (screen.stopwatch)().saturating_duration_since(started) < ENCODE_TIME_BUDGET
        {
            let Some(rect) = self.queue.pop_front() else {
                break;
            };
            let start = out.len();
            if let Err(e) = self.encoder.encode(&frame, rect, out) {
                warn!("encoding {rect:?} failed: {e}");
                out.truncate(start);
                // The client keeps its old pixels there: resend, and copy nothing from them.
                damage.invalidate(rect);
                continue;
            }
            self.stats.bytes += (out.len() - start) as u64;
            for &(y, col, hash) in self.encoder.sent_segments() {
                damage.sent(y, col, hash);
            }
        }
        Ok(Produced::Output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_still_screen_is_scanned_at_half_rate_within_the_latency_bound() {
        let ms = Duration::from_millis;
        assert_eq!(scan_interval(ms(33), 0), ms(33));
        assert_eq!(scan_interval(ms(33), STILL_SCANS - 1), ms(33));
        assert_eq!(scan_interval(ms(33), STILL_SCANS), ms(66));
        assert_eq!(scan_interval(ms(50), u32::MAX), ms(75), "capped");
        assert_eq!(
            scan_interval(ms(200), u32::MAX),
            ms(200),
            "never faster than asked"
        );
        // Three sampled scans see a text line: within 250 ms with the encode to spare.
        assert!(scan_interval(ms(33), u32::MAX) * 3 <= ms(225));
    }
}
