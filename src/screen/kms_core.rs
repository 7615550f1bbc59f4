//! The KMS source's decisions, sans-IO: which connector, CRTC and primary plane to read, and
//! what a framebuffer's GETFB2 reply means as pixels. Fed plain replies (recorded in tests,
//! from `crate::sys::drm` on a device).

use core::fmt;

use nix::errno::Errno;

use super::frame::{Channel, PixelFormat};

/// DRM_FORMAT_MOD_LINEAR; the other modifiers we meet are tiled or compressed layouts.
pub(crate) const MOD_LINEAR: u64 = 0;
/// DRM_FORMAT_MOD_INVALID: "implicit", what a framebuffer made without modifiers reports.
pub(crate) const MOD_INVALID: u64 = 0x00ff_ffff_ffff_ffff;

/// The `type` property of a plane (DRM_PLANE_TYPE_*).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PlaneKind {
    Overlay,
    Primary,
    Cursor,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ConnectorReply {
    pub id: u32,
    /// As the kernel names it: "Virtual-1", "HDMI-A-1".
    pub name: String,
    pub connected: bool,
    /// 0: no encoder attached.
    pub encoder: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CrtcReply {
    pub id: u32,
    /// 0: nothing on it (for a primary plane's CRTC: what GETCRTC says it scans out).
    pub fb: u32,
    /// Top left of the visible part inside the framebuffer.
    pub x: u32,
    pub y: u32,
    /// The mode's visible size; None when the CRTC is off.
    pub mode: Option<(u16, u16)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PlaneReply {
    pub id: u32,
    /// 0: not on a CRTC.
    pub crtc: u32,
    pub fb: u32,
    /// Bit n: may show on the n-th CRTC of the resources.
    pub possible_crtcs: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fb2Reply {
    pub id: u32,
    pub width: u32,
    pub height: u32,
    pub fourcc: u32,
    /// None: made without modifiers (implicit layout).
    pub modifier: Option<u64>,
    pub handles: [u32; 4],
    pub pitches: [u32; 4],
    pub offsets: [u32; 4],
}

/// The device seam: the ioctl replies the source reads. `Map` is a read-only mapping.
pub(crate) trait KmsDevice {
    type Map: FbMap;
    /// The CRTC ids in resource order (a plane's `possible_crtcs` bits index this list).
    fn crtcs(&self) -> Result<Vec<u32>, KmsError>;
    fn connectors(&self) -> Result<Vec<u32>, KmsError>;
    fn connector(&self, id: u32) -> Result<ConnectorReply, KmsError>;
    /// The CRTC an encoder drives (0: none).
    fn encoder_crtc(&self, id: u32) -> Result<u32, KmsError>;
    fn crtc(&self, id: u32) -> Result<CrtcReply, KmsError>;
    /// Every plane, cursor and overlay planes included (the universal planes cap is on).
    fn planes(&self) -> Result<Vec<u32>, KmsError>;
    fn plane(&self, id: u32) -> Result<PlaneReply, KmsError>;
    fn plane_kind(&self, id: u32) -> Result<PlaneKind, KmsError>;
    /// A plane's CRTC_X, CRTC_Y (atomic properties: where its top left is on the CRTC), and a
    /// cursor plane's HOTSPOT_X, HOTSPOT_Y where the driver has them.
    fn plane_position(&self, id: u32) -> Result<PlanePosition, KmsError>;
    /// GETFB2; every nonzero handle in the reply is ours to close.
    fn fb2(&self, id: u32) -> Result<Fb2Reply, KmsError>;
    fn close_handle(&self, handle: u32);
    /// Maps `len` bytes of the buffer behind `handle` read-only.
    fn map(&self, handle: u32, len: usize) -> Result<Self::Map, KmsError>;
}

/// A mapped framebuffer; `begin`/`end` bracket reads (DMA_BUF_IOCTL_SYNC on a dma-buf).
pub(crate) trait FbMap {
    fn bytes(&self) -> &[u8];
    fn begin(&self) {}
    fn end(&self) {}
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KmsError {
    Query {
        call: &'static str,
        errno: Errno,
    },
    NoDevice,
    NoConnector {
        wanted: String,
        have: Vec<String>,
    },
    NoActiveCrtc {
        have: Vec<String>,
    },
    NoPrimaryPlane {
        crtc: u32,
    },
    /// The CRTC shows nothing now (mode off or no framebuffer).
    Off {
        crtc: u32,
    },
    NoHandles {
        fb: u32,
    },
    Modifier {
        fb: u32,
        modifier: u64,
    },
    Fourcc {
        fb: u32,
        fourcc: u32,
    },
    Geometry {
        fb: u32,
        width: u32,
        height: u32,
        pitch: u32,
    },
    Map {
        fb: u32,
        errno: Errno,
    },
}

impl KmsError {
    /// Short lines for the waiting screen (about 48 characters fit).
    pub(crate) fn lines(&self) -> Vec<String> {
        let why = match self {
            KmsError::Off { .. } => "The display is off.".to_owned(),
            KmsError::NoHandles { .. } => "The agent lacks CAP_SYS_ADMIN.".to_owned(),
            KmsError::Modifier { modifier, .. } => {
                format!("Tiled buffer (modifier {modifier:#x}).")
            }
            KmsError::Fourcc { fourcc, .. } => {
                format!("Pixel format {} unsupported.", Fourcc(*fourcc))
            }
            _ => "The display cannot be read now.".to_owned(),
        };
        vec!["The screen cannot be shown".to_owned(), why]
    }
}

/// A fourcc shown as its four letters ("XR24"), or hex when not printable.
pub(crate) struct Fourcc(pub u32);

impl fmt::Display for Fourcc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0.to_le_bytes();
        if b.iter().all(|c| c.is_ascii_graphic() || *c == b' ') {
            write!(f, "{}", String::from_utf8_lossy(&b).trim_end())
        } else {
            write!(f, "{:#010x}", self.0)
        }
    }
}

impl fmt::Display for KmsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KmsError::Query { call, errno } => write!(f, "{call} failed: {}", errno.desc()),
            KmsError::NoDevice => {
                f.write_str("no /dev/dri/card* shows a picture on an active CRTC")
            }
            KmsError::NoConnector { wanted, have } => {
                write!(
                    f,
                    "no connector named {wanted} (there are: {})",
                    have.join(", ")
                )
            }
            KmsError::NoActiveCrtc { have } => write!(
                f,
                "no connected connector has an active CRTC ({})",
                if have.is_empty() {
                    "no connectors".to_owned()
                } else {
                    have.join(", ")
                }
            ),
            KmsError::NoPrimaryPlane { crtc } => write!(f, "CRTC {crtc} has no primary plane"),
            KmsError::Off { crtc } => {
                write!(f, "CRTC {crtc} shows nothing (off or no framebuffer)")
            }
            KmsError::NoHandles { fb } => write!(
                f,
                "framebuffer {fb} came back without buffer handles: reading another program's \
                 framebuffer needs CAP_SYS_ADMIN (run the agent as root)"
            ),
            KmsError::Modifier { fb, modifier } => write!(
                f,
                "framebuffer {fb} has modifier {modifier:#x} (tiled or compressed): only linear \
                 buffers can be read, detiling is not supported"
            ),
            KmsError::Fourcc { fb, fourcc } => write!(
                f,
                "framebuffer {fb} has pixel format {}: supported are XRGB8888, ARGB8888, \
                 XBGR8888, ABGR8888, RGBX/BGRX8888, RGB888, BGR888, RGB565, BGR565, XRGB2101010",
                Fourcc(*fourcc)
            ),
            KmsError::Geometry {
                fb,
                width,
                height,
                pitch,
            } => write!(
                f,
                "framebuffer {fb} ({width}x{height}, pitch {pitch}) does not hold the CRTC's picture"
            ),
            KmsError::Map { fb, errno } => write!(
                f,
                "cannot map framebuffer {fb} (dumb map and PRIME both failed): {}",
                errno.desc()
            ),
        }
    }
}

impl std::error::Error for KmsError {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PlanePosition {
    pub x: i32,
    pub y: i32,
    /// Within the plane's image.
    pub hot: Option<(i32, i32)>,
}

/// What to read: the connector, its CRTC and the CRTC's primary plane.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Output {
    pub connector: String,
    pub crtc: u32,
    pub plane: u32,
    /// The CRTC's cursor plane, if it has one.
    pub cursor: Option<u32>,
}

/// The named connector, else the first connected one whose encoder drives an active CRTC;
/// then that CRTC's primary plane (the one on it now, else one that may be).
pub(crate) fn select<D: KmsDevice>(dev: &D, wanted: Option<&str>) -> Result<Output, KmsError> {
    let crtcs = dev.crtcs()?;
    let mut have = Vec::new();
    let mut chosen = None;
    for id in dev.connectors()? {
        let c = dev.connector(id)?;
        let crtc = match c.encoder {
            0 => 0,
            e => dev.encoder_crtc(e)?,
        };
        let active = crtc != 0 && dev.crtc(crtc)?.mode.is_some();
        let state = match (c.connected, active) {
            (false, _) => "disconnected",
            (true, false) => "no active CRTC",
            (true, true) => "active",
        };
        have.push(format!("{} {state}", c.name));
        let named = wanted.is_none_or(|w| w.eq_ignore_ascii_case(&c.name));
        if chosen.is_none() && named && (wanted.is_some() || (c.connected && active)) {
            chosen = Some((c.name, crtc, active));
        }
    }
    let (connector, crtc, active) = match (chosen, wanted) {
        (Some(c), _) => c,
        (None, Some(w)) => {
            let have = have
                .iter()
                .filter_map(|h| h.split(' ').next())
                .map(str::to_owned);
            return Err(KmsError::NoConnector {
                wanted: w.to_owned(),
                have: have.collect(),
            });
        }
        (None, None) => return Err(KmsError::NoActiveCrtc { have }),
    };
    if !active {
        return Err(KmsError::NoActiveCrtc { have });
    }
    let index = crtcs.iter().position(|&c| c == crtc);
    let (mut on, mut fallback, mut cursor) = (None, None, None);
    for id in dev.planes()? {
        let p = dev.plane(id)?;
        let may = index.is_some_and(|i| i < 32 && p.possible_crtcs & (1 << i) != 0);
        if !(p.crtc == crtc || may) {
            continue;
        }
        // A plane we cannot ask about is one we do not use (an overlay, say); no primary
        // plane at all is still an error below.
        let Ok(kind) = dev.plane_kind(id) else {
            continue;
        };
        match kind {
            PlaneKind::Primary if p.crtc == crtc => on = on.or(Some(id)),
            PlaneKind::Primary => fallback = fallback.or(Some(id)),
            // One that may show on this CRTC only: a cursor plane serves one CRTC.
            PlaneKind::Cursor if p.crtc == crtc || cursor.is_none() => cursor = Some(id),
            _ => {}
        }
    }
    match on.or(fallback) {
        Some(plane) => Ok(Output {
            connector,
            crtc,
            plane,
            cursor,
        }),
        None => Err(KmsError::NoPrimaryPlane { crtc }),
    }
}

/// A single-plane linear framebuffer as the pipeline reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FbLayout {
    pub width: u32,
    pub height: u32,
    pub pitch: usize,
    pub offset: usize,
    pub format: PixelFormat,
    /// The DRM fourcc (ARGB8888 and XRGB8888 read the same as a picture; a cursor needs alpha).
    pub fourcc: u32,
    pub handle: u32,
    /// Bytes to map: through the last pixel of the last row.
    pub map_len: usize,
}

const fn fourcc(code: &[u8; 4]) -> u32 {
    u32::from_le_bytes(*code)
}

const fn ch(offset: u8, length: u8) -> Channel {
    Channel { offset, length }
}

const fn fmt(bits_per_pixel: u8, red: Channel, green: Channel, blue: Channel) -> PixelFormat {
    PixelFormat {
        bits_per_pixel,
        red,
        green,
        blue,
    }
}

/// DRM fourccs (little-endian pixel values, as drm_fourcc.h says) as bitfields; alpha is
/// dropped, the screen is opaque.
pub(crate) fn format_of(code: u32) -> Option<PixelFormat> {
    let f = |c: &[u8; 4]| code == fourcc(c);
    Some(if f(b"XR24") || f(b"AR24") {
        PixelFormat::XRGB8888
    } else if f(b"XB24") || f(b"AB24") {
        fmt(32, ch(0, 8), ch(8, 8), ch(16, 8))
    } else if f(b"RX24") || f(b"RA24") {
        fmt(32, ch(24, 8), ch(16, 8), ch(8, 8))
    } else if f(b"BX24") || f(b"BA24") {
        fmt(32, ch(8, 8), ch(16, 8), ch(24, 8))
    } else if f(b"RG24") {
        fmt(24, ch(16, 8), ch(8, 8), ch(0, 8))
    } else if f(b"BG24") {
        fmt(24, ch(0, 8), ch(8, 8), ch(16, 8))
    } else if f(b"RG16") {
        PixelFormat::RGB565
    } else if f(b"BG16") {
        fmt(16, ch(0, 5), ch(5, 6), ch(11, 5))
    } else if f(b"XR30") || f(b"AR30") {
        fmt(32, ch(20, 10), ch(10, 10), ch(0, 10))
    } else if f(b"XB30") || f(b"AB30") {
        fmt(32, ch(0, 10), ch(10, 10), ch(20, 10))
    } else {
        return None;
    })
}

/// Checks a GETFB2 reply: linear, one plane, a format we convert, handles given, rows fit.
pub(crate) fn layout(fb: &Fb2Reply) -> Result<FbLayout, KmsError> {
    let id = fb.id;
    if let Some(m) = fb.modifier.filter(|&m| m != MOD_LINEAR && m != MOD_INVALID) {
        return Err(KmsError::Modifier {
            fb: id,
            modifier: m,
        });
    }
    let format = format_of(fb.fourcc).ok_or(KmsError::Fourcc {
        fb: id,
        fourcc: fb.fourcc,
    })?;
    if fb.handles[0] == 0 {
        return Err(KmsError::NoHandles { fb: id });
    }
    let geometry = || KmsError::Geometry {
        fb: id,
        width: fb.width,
        height: fb.height,
        pitch: fb.pitches[0],
    };
    let row = u64::from(fb.width) * format.bytes_per_pixel() as u64;
    let pitch = u64::from(fb.pitches[0]);
    if fb.width == 0 || fb.height == 0 || pitch < row {
        return Err(geometry());
    }
    let end = u64::from(fb.offsets[0]) + pitch * u64::from(fb.height - 1) + row;
    let size = |v: u64| usize::try_from(v).map_err(|_| geometry());
    Ok(FbLayout {
        width: fb.width,
        height: fb.height,
        pitch: size(pitch)?,
        offset: size(fb.offsets[0].into())?,
        format,
        fourcc: fb.fourcc,
        handle: fb.handles[0],
        map_len: size(end)?,
    })
}

/// The visible rectangle: the CRTC's mode at its position, cut to the framebuffer.
/// Returns (byte offset of the top left pixel in the mapping, width, height).
pub(crate) fn view(crtc: &CrtcReply, fb: &FbLayout) -> Result<(usize, u16, u16), KmsError> {
    let (mw, mh) = crtc.mode.ok_or(KmsError::Off { crtc: crtc.id })?;
    let geometry = KmsError::Geometry {
        fb: crtc.fb,
        width: fb.width,
        height: fb.height,
        pitch: fb.pitch as u32,
    };
    if crtc.x >= fb.width || crtc.y >= fb.height {
        return Err(geometry);
    }
    let w = u32::from(mw).min(fb.width - crtc.x);
    let h = u32::from(mh).min(fb.height - crtc.y);
    let (Ok(w), Ok(h)) = (u16::try_from(w), u16::try_from(h)) else {
        return Err(geometry);
    };
    let start =
        fb.offset + crtc.y as usize * fb.pitch + crtc.x as usize * fb.format.bytes_per_pixel();
    Ok((start, w, h))
}
