//! KMS source (`kms`, `kms:/dev/dri/cardN[:CONNECTOR]`): what a DRM master (a compositor,
//! Qt eglfs, X modesetting) really scans out, where /dev/fb0 keeps the console.
//!
//! Each `frame()` re-reads the primary plane (GETPLANE) and its CRTC (GETCRTC): two cheap
//! ioctls, so page flips and mode changes are followed. A framebuffer is looked up (GETFB2) and
//! mapped once per FB id and kept in a small cache, as compositors flip between two or three.
//! KMS gives no damage: the tile hashes find it as with fbdev. The cursor plane is not in the
//! picture (nor in QEMU's screendump): `cursor()` reads it for RDP pointer updates.
//!
//! A picture we cannot read (tiled modifier, no handles, unknown format, CRTC off) is one log
//! line and the waiting screen at the last size, never garbage; it clears by itself.

use std::rc::Rc;

use super::cursor::{Cursor, CursorShape};
use super::fbdev::Fbdev;
use super::frame::Frame;
use super::kms_core::{self, FbLayout, FbMap, KmsDevice, KmsError, Output};
use super::placeholder::Placeholder;
use super::source::{Source, SourceError};
use crate::sys::drm::Card;
use crate::{info, warn};

/// Framebuffers kept mapped: compositors flip between 2 or 3; a 4th covers a mode change.
const CACHE: usize = 4;

struct Mapped<M> {
    fb: u32,
    layout: FbLayout,
    map: M,
}

pub(crate) struct Kms<D: KmsDevice> {
    path: String,
    dev: D,
    out: Output,
    /// Most recently used first.
    cache: Vec<Mapped<D::Map>>,
    /// A framebuffer found unreadable, not asked again until the plane shows another.
    bad: Option<(u32, KmsError)>,
    /// The problem now shown on the waiting screen (logged once when it starts).
    problem: Option<KmsError>,
    waiting: Option<Placeholder>,
    /// The cache entry whose reads `begin` opened (0: none).
    reading: u32,
    size: (u16, u16),
    format: super::frame::PixelFormat,
    /// The cursor plane's framebuffer, mapped, while it shows the same one.
    cursor_map: Option<Mapped<D::Map>>,
    /// Why the cursor is not followed (said once).
    cursor_problem: Option<String>,
    /// The last cut and what it was cut from.
    cursor_shape: Option<(CutFrom, Option<Rc<CursorShape>>)>,
}

/// A cursor image's FB id, the hash of its pixels, and its hot spot.
type CutFrom = (u32, u64, (u16, u16));

/// "/dev/dri/card0:Virtual-1" → path and connector; a right side with a '/' is part of the path.
pub(crate) fn parse_arg(arg: &str) -> (&str, Option<&str>) {
    match arg.rsplit_once(':') {
        Some((path, name)) if !name.contains('/') && !path.is_empty() => {
            (path, Some(name).filter(|n| !n.is_empty()))
        }
        _ => (arg, None),
    }
}

impl<D: KmsDevice> Kms<D> {
    /// Picks the output and reads one picture: a source that opens shows something real.
    pub(crate) fn new(path: &str, dev: D, connector: Option<&str>) -> Result<Self, KmsError> {
        let out = kms_core::select(&dev, connector)?;
        let mut kms = Kms {
            path: path.to_owned(),
            dev,
            out,
            cache: Vec::new(),
            bad: None,
            problem: None,
            waiting: None,
            reading: 0,
            size: (0, 0),
            format: super::frame::PixelFormat::XRGB8888,
            cursor_map: None,
            cursor_problem: None,
            cursor_shape: None,
        };
        let view = kms.current()?;
        kms.size = (view.width, view.height);
        kms.format = kms.cache[view.index].layout.format;
        match kms.out.cursor {
            Some(plane) => info!("screen {}: cursor plane {plane} followed", kms.describe()),
            None => {
                let planes: Vec<String> = kms
                    .dev
                    .planes()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|id| match kms.dev.plane_kind(id) {
                        Ok(kind) => format!("{id} {kind:?}"),
                        Err(e) => format!("{id} ({e})"),
                    })
                    .collect();
                info!(
                    "screen {}: no cursor plane on CRTC {} (planes: {})",
                    kms.describe(),
                    kms.out.crtc,
                    planes.join("; ")
                )
            }
        }
        Ok(kms)
    }

    pub(crate) fn connector(&self) -> &str {
        &self.out.connector
    }

    /// Where the visible picture is now.
    fn current(&mut self) -> Result<View, KmsError> {
        let plane = self.dev.plane(self.out.plane)?;
        let crtc = self.dev.crtc(self.out.crtc)?;
        if plane.fb == 0 || plane.crtc != self.out.crtc || crtc.mode.is_none() {
            return Err(KmsError::Off {
                crtc: self.out.crtc,
            });
        }
        let index = self.mapped(plane.fb)?;
        let (start, width, height) = kms_core::view(&crtc, &self.cache[index].layout)?;
        Ok(View {
            index,
            start,
            width,
            height,
        })
    }

    /// The cache index of `fb`, looked up and mapped when new (moved to the front).
    fn mapped(&mut self, fb: u32) -> Result<usize, KmsError> {
        if let Some(i) = self.cache.iter().position(|m| m.fb == fb) {
            self.cache[..=i].rotate_right(1);
            return Ok(0);
        }
        if let Some((bad, e)) = &self.bad
            && *bad == fb
        {
            return Err(e.clone());
        }
        let got = self.look_up(fb);
        let (layout, map) = got.inspect_err(|e| self.bad = Some((fb, e.clone())))?;
        self.bad = None;
        self.end_read();
        self.cache.truncate(CACHE - 1);
        self.cache.insert(0, Mapped { fb, layout, map });
        Ok(0)
    }

    /// GETFB2, checks, maps; the handles GETFB2 made are closed whatever happens (the mapping
    /// keeps the buffer alive).
    fn look_up(&self, fb: u32) -> Result<(FbLayout, D::Map), KmsError> {
        let reply = self.dev.fb2(fb)?;
        let result = kms_core::layout(&reply).and_then(|layout| {
            let map = self
                .dev
                .map(layout.handle, layout.map_len)
                .map_err(|e| match e {
                    KmsError::Query { errno, .. } => KmsError::Map { fb, errno },
                    e => e,
                })?;
            Ok((layout, map))
        });
        let mut closed = [0u32; 4];
        for (i, &h) in reply.handles.iter().enumerate() {
            if h != 0 && !closed.contains(&h) {
                self.dev.close_handle(h);
                closed[i] = h;
            }
        }
        result
    }

    /// Ends the read bracket `frame` opened on the last picture, if any.
    fn end_read(&mut self) {
        if self.reading != 0 {
            if let Some(m) = self.cache.iter().find(|m| m.fb == self.reading) {
                m.map.end();
            }
            self.reading = 0;
        }
    }

    /// Logs a problem once when it starts (a different one logs again), and when it ends.
    fn note(&mut self, problem: Option<KmsError>) {
        if problem == self.problem {
            return;
        }
        match &problem {
            Some(e) => warn!(
                "screen {}: {e}; the admin sees a waiting screen",
                self.describe()
            ),
            None => info!("screen {}: readable again", self.describe()),
        }
        self.problem = problem;
    }
}

struct View {
    index: usize,
    start: usize,
    width: u16,
    height: u16,
}

impl<D: KmsDevice> Source for Kms<D> {
    fn frame(&mut self) -> Result<Frame<'_>, SourceError> {
        self.end_read();
        match self.current() {
            Ok(v) => {
                self.note(None);
                self.waiting = None;
                self.size = (v.width, v.height);
                let m = &self.cache[v.index];
                self.format = m.layout.format;
                m.map.begin();
                self.reading = m.fb;
                Ok(Frame {
                    width: v.width,
                    height: v.height,
                    stride: m.layout.pitch,
                    format: m.layout.format,
                    // `view` keeps the picture inside map_len, the mapping's length.
                    data: m.map.bytes().get(v.start..).unwrap_or_default(),
                })
            }
            Err(e) => {
                let lines = e.lines();
                self.note(Some(e));
                let (w, h) = self.size;
                let waiting = self.waiting.get_or_insert_with(|| Placeholder::new(w, h));
                let text: Vec<&str> = lines.iter().map(String::as_str).collect();
                waiting.set_text(&text);
                waiting.frame()
            }
        }
    }

    fn cursor(&mut self) -> Cursor {
        match self.read_cursor() {
            Ok(cursor) => cursor,
            Err(why) => {
                if self.cursor_problem.as_ref() != Some(&why) {
                    warn!(
                        "screen {}: the pointer is not followed: {why}",
                        self.describe()
                    );
                    self.cursor_problem = Some(why);
                }
                Cursor::None
            }
        }
    }

    fn describe(&self) -> String {
        format!(
            "kms:{}:{} {}x{} {}",
            self.path, self.out.connector, self.size.0, self.size.1, self.format
        )
    }
}

fn clamp_side(v: i32) -> u16 {
    v.clamp(0, 511) as u16
}

/// DRM_FORMAT_ARGB8888, what cursor planes take.
const ARGB8888: u32 = u32::from_le_bytes(*b"AR24");

impl<D: KmsDevice> Kms<D> {
    /// The cursor plane now: hidden when it shows nothing, else its pixels and position.
    fn read_cursor(&mut self) -> Result<Cursor, String> {
        let Some(id) = self.out.cursor else {
            return Ok(Cursor::None);
        };
        let plane = self.dev.plane(id).map_err(|e| e.to_string())?;
        if plane.fb == 0 || plane.crtc != self.out.crtc {
            self.cursor_map = None;
            return Ok(Cursor::Hidden);
        }
        let at = self.dev.plane_position(id).map_err(|e| {
            format!("no cursor position ({e}; the driver has no atomic modesetting)")
        })?;
        let (x, y) = (at.x, at.y);
        // Without the hot-spot properties: the image's top left.
        let hot = at.hot.unwrap_or((0, 0));
        let hot = (clamp_side(hot.0), clamp_side(hot.1));
        if self.cursor_map.as_ref().is_none_or(|m| m.fb != plane.fb) {
            self.cursor_map = None;
            let (layout, map) = self.look_up(plane.fb).map_err(|e| e.to_string())?;
            self.cursor_map = Some(Mapped {
                fb: plane.fb,
                layout,
                map,
            });
        }
        let Some(m) = self.cursor_map.as_ref() else {
            return Ok(Cursor::Hidden);
        };
        if m.layout.fourcc != ARGB8888 {
            return Err(format!(
                "the cursor plane's format is {:#x}, not ARGB8888",
                m.layout.fourcc
            ));
        }
        m.map.begin();
        let bytes = m.map.bytes().get(m.layout.offset..).unwrap_or_default();
        // Cursor planes are at most 256x256 (the kernel's limit for any driver we know).
        let side = |v: u32| u16::try_from(v.min(512)).unwrap_or(512);
        let (w, h) = (side(m.layout.width), side(m.layout.height));
        let image = bytes
            .get(..m.layout.pitch * usize::from(h))
            .unwrap_or(bytes);
        // The same image as last scan (the common case): no new cut.
        let key = (plane.fb, xxhash_rust::xxh3::xxh3_64(image), hot);
        let shape = match &self.cursor_shape {
            Some((last, shape)) if *last == key => shape.clone(),
            _ => {
                let shape = CursorShape::from_argb(bytes, m.layout.pitch, w, h, hot).map(Rc::new);
                self.cursor_shape = Some((key, shape.clone()));
                shape
            }
        };
        m.map.end();
        Ok(match shape {
            None => Cursor::Hidden,
            Some(shape) => Cursor::Shown {
                x: x.saturating_add(i32::from(shape.origin.0 + shape.hot_x)),
                y: y.saturating_add(i32::from(shape.origin.1 + shape.hot_y)),
                shape,
            },
        })
    }
}

impl<D: KmsDevice> Drop for Kms<D> {
    fn drop(&mut self) {
        self.end_read();
    }
}

/// Where `kms` and `auto` look: the cards, in name order.
fn cards() -> Vec<String> {
    let mut cards: Vec<String> = std::fs::read_dir("/dev/dri")
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.starts_with("card"))
                .map(|n| format!("/dev/dri/{n}"))
                .collect()
        })
        .unwrap_or_default();
    cards.sort();
    cards
}

fn open_card(path: &str, connector: Option<&str>) -> Result<Kms<Card>, SourceError> {
    let card = Card::open(path).map_err(|e| SourceError::open(path, &e))?;
    Kms::new(path, card, connector).map_err(|problem| SourceError::Kms {
        path: path.to_owned(),
        problem,
    })
}

/// `kms:ARG`: a card (and connector), or with no path the first card that shows a picture.
pub(crate) fn open(arg: &str) -> Result<Kms<Card>, SourceError> {
    let (path, connector) = parse_arg(arg);
    if !path.is_empty() {
        return open_card(path, connector);
    }
    let mut last = SourceError::Kms {
        path: "/dev/dri".to_owned(),
        problem: KmsError::NoDevice,
    };
    for card in cards() {
        match open_card(&card, connector) {
            Ok(kms) => return Ok(kms),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// `auto`: the choice below, made again by `reselect` when a session's screen starts, so a
/// compositor started after the agent is still found.
pub(crate) struct Auto {
    current: Box<dyn Source>,
}

impl Auto {
    pub(crate) fn open() -> Result<Auto, SourceError> {
        let (current, why) = choose()?;
        info!("screen auto: {why}");
        Ok(Auto { current })
    }
}

impl Source for Auto {
    fn frame(&mut self) -> Result<Frame<'_>, SourceError> {
        self.current.frame()
    }

    fn describe(&self) -> String {
        self.current.describe()
    }

    fn cursor(&mut self) -> Cursor {
        self.current.cursor()
    }

    fn reselect(&mut self) -> bool {
        match choose() {
            Ok((next, why)) => {
                let changed = next.describe() != self.current.describe();
                if changed {
                    info!("screen auto: now {why}");
                }
                self.current = next;
                changed
            }
            Err(e) => {
                warn!("screen auto: keeping {}: {e}", self.current.describe());
                false
            }
        }
    }
}

/// KMS when a card's active CRTC shows a framebuffer we can read, else /dev/fb0; with the
/// reason for the log.
fn choose() -> Result<(Box<dyn Source>, String), SourceError> {
    match open("") {
        Ok(mut kms) => {
            // fbdev emulation on the CRTC: the console or a linuxfb UI owns the screen, and
            // /dev/fb0 is the same picture -- where the built-in prompt can draw.
            if let Ok(mut fb) = Fbdev::open("/dev/fb0")
                && same_picture(&mut kms, &mut fb)
            {
                let why = format!(
                    "fbdev:/dev/fb0 (kms:{} shows the same picture: no DRM master but the \
                     console's)",
                    kms.path
                );
                return Ok((Box::new(fb), why));
            }
            let why = format!(
                "kms:{}:{} (a DRM master shows a framebuffer we can read)",
                kms.path,
                kms.connector()
            );
            Ok((Box::new(kms), why))
        }
        Err(e) => {
            let why = format!("fbdev:/dev/fb0 (no KMS picture to read: {e})");
            Ok((Box::new(Fbdev::open("/dev/fb0")?), why))
        }
    }
}

/// Both sources show the same pixels now (same size, format and rows).
fn same_picture(a: &mut dyn Source, b: &mut dyn Source) -> bool {
    let (Ok(fa), Ok(fb)) = (a.frame(), b.frame()) else {
        return false;
    };
    if (fa.width, fa.height, fa.format) != (fb.width, fb.height, fb.format) {
        return false;
    }
    (0..fa.height).all(|y| matches!((fa.row(y), fb.row(y)), (Some(ra), Some(rb)) if ra == rb))
}

#[cfg(test)]
#[path = "kms_tests.rs"]
mod tests;
