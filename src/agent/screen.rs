//! The session's screen pipeline inside the loop: scan when due, encode within a budget,
//! notice a size change. The pixels work lives in `crate::screen`; this decides when.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::net::Transport;
use crate::screen::{BitmapEncoder, Damage, Rect, Source};
use crate::warn;

/// Screen output encoded per loop turn before input and control get their turn again:
/// whichever of bytes or time runs out first (a full 1024x768 frame takes tens of ms on ARM).
const ENCODE_BUDGET: usize = 256 * 1024;
const ENCODE_TIME_BUDGET: Duration = Duration::from_millis(8);

/// Screen state of the one session.
pub(super) struct Screen {
    pub(super) source: Box<dyn Source>,
    pub(super) size: (u16, u16),
    pub(super) damage: Option<Damage>,
    pub(super) encoder: BitmapEncoder,
    pub(super) queue: VecDeque<Rect>,
    pub(super) next_scan: Option<Instant>,
    pub(super) suppressed: bool,
    pub(super) source_failing: bool,
}

pub(super) enum Produced {
    Output,
    Resized(u16, u16),
}

impl Screen {
    pub(super) fn new(source: Box<dyn Source>, size: (u16, u16)) -> Self {
        Screen {
            source,
            size,
            damage: None,
            encoder: BitmapEncoder::new(),
            queue: VecDeque::new(),
            next_scan: None,
            suppressed: false,
            source_failing: false,
        }
    }

    pub(super) fn start(&mut self, width: u16, height: u16, max_request_size: u32) {
        self.size = (width, height);
        self.damage = Some(Damage::new(width, height));
        self.queue.clear();
        self.next_scan = Some(Instant::now());
        self.suppressed = false;
        // The encoder splits rectangles so no update is over what the client reassembles.
        self.encoder.set_max_update_len(max_request_size as usize);
    }

    pub(super) fn stop(&mut self) {
        self.damage = None;
        self.queue.clear();
        self.next_scan = None;
    }

    /// Scans when due (and the last scan's rectangles are all sent), then encodes while
    /// the socket keeps up and the turn's budget lasts.
    pub(super) fn produce(
        &mut self,
        now: Instant,
        interval: Duration,
        transport: &Transport,
        out: &mut Vec<u8>,
    ) -> Result<Produced, crate::screen::SourceError> {
        let Some(damage) = self.damage.as_mut() else {
            return Ok(Produced::Output);
        };
        let scan_due = self.queue.is_empty() && self.next_scan.is_some_and(|at| now >= at);
        if !scan_due && (self.queue.is_empty() || transport.has_pending_output()) {
            return Ok(Produced::Output);
        }
        let frame = self.source.frame()?;
        self.source_failing = false;
        if (frame.width, frame.height) != self.size {
            let size = (frame.width, frame.height);
            self.size = size;
            // Damage restarts when the reactivated session is accepted.
            self.damage = None;
            self.queue.clear();
            return Ok(Produced::Resized(size.0, size.1));
        }
        if scan_due {
            let mut rects = Vec::new();
            damage.scan(&frame, &mut rects);
            self.queue.extend(rects);
            self.next_scan = Some(now + interval);
        }
        if transport.has_pending_output() {
            return Ok(Produced::Output);
        }
        let started = Instant::now();
        while out.len() < ENCODE_BUDGET && started.elapsed() < ENCODE_TIME_BUDGET {
            let Some(rect) = self.queue.pop_front() else {
                break;
            };
            let start = out.len();
            if let Err(e) = self.encoder.encode(&frame, rect, out) {
                warn!("encoding {rect:?} failed: {e}");
                out.truncate(start);
                continue;
            }
        }
        Ok(Produced::Output)
    }
}
