//! The KMS source against recorded ioctl replies: selection, flips, mode changes, refusals.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use super::*;
use crate::screen::convert::Converter;
use crate::screen::frame::PixelFormat;
use crate::screen::kms_core::{
    ConnectorReply, CrtcReply, Fb2Reply, PlaneKind, PlanePosition, PlaneReply, format_of, layout,
    select,
};

const XR24: u32 = u32::from_le_bytes(*b"XR24");
const RG16: u32 = u32::from_le_bytes(*b"RG16");
const NV12: u32 = u32::from_le_bytes(*b"NV12");
/// I915_FORMAT_MOD_X_TILED.
const X_TILED: u64 = 0x0100_0000_0000_0001;

/// What a card said, shared with the test so it can flip and modeset under the source.
#[derive(Default)]
struct State {
    crtcs: Vec<u32>,
    connectors: Vec<ConnectorReply>,
    encoders: HashMap<u32, u32>,
    crtc: HashMap<u32, CrtcReply>,
    planes: Vec<(PlaneReply, PlaneKind)>,
    fbs: HashMap<u32, (Fb2Reply, Vec<u8>)>,
    /// "fb2 N", "close H", "map H", "begin", "end", in order.
    log: Vec<String>,
    next_handle: u32,
    /// CRTC_X, CRTC_Y of every plane; None: no atomic properties.
    position: Option<(i32, i32)>,
    /// HOTSPOT_X, HOTSPOT_Y; None: the driver has none.
    hot: Option<(i32, i32)>,
}

#[derive(Clone, Default)]
struct Rec(Rc<RefCell<State>>);

struct RecMap {
    bytes: Vec<u8>,
    rec: Rec,
}

impl FbMap for RecMap {
    fn bytes(&self) -> &[u8] {
        &self.bytes
    }
    fn begin(&self) {
        self.rec.0.borrow_mut().log.push("begin".into());
    }
    fn end(&self) {
        self.rec.0.borrow_mut().log.push("end".into());
    }
}

fn missing(call: &'static str) -> KmsError {
    KmsError::Query {
        call,
        errno: nix::errno::Errno::ENOENT,
    }
}

impl KmsDevice for Rec {
    type Map = RecMap;
    fn crtcs(&self) -> Result<Vec<u32>, KmsError> {
        Ok(self.0.borrow().crtcs.clone())
    }
    fn connectors(&self) -> Result<Vec<u32>, KmsError> {
        Ok(self.0.borrow().connectors.iter().map(|c| c.id).collect())
    }
    fn connector(&self, id: u32) -> Result<ConnectorReply, KmsError> {
        let s = self.0.borrow();
        s.connectors
            .iter()
            .find(|c| c.id == id)
            .cloned()
            .ok_or(missing("GETCONNECTOR"))
    }
    fn encoder_crtc(&self, id: u32) -> Result<u32, KmsError> {
        self.0
            .borrow()
            .encoders
            .get(&id)
            .copied()
            .ok_or(missing("GETENCODER"))
    }
    fn crtc(&self, id: u32) -> Result<CrtcReply, KmsError> {
        self.0
            .borrow()
            .crtc
            .get(&id)
            .copied()
            .ok_or(missing("GETCRTC"))
    }
    fn planes(&self) -> Result<Vec<u32>, KmsError> {
        Ok(self.0.borrow().planes.iter().map(|p| p.0.id).collect())
    }
    fn plane(&self, id: u32) -> Result<PlaneReply, KmsError> {
        let s = self.0.borrow();
        s.planes
            .iter()
            .find(|p| p.0.id == id)
            .map(|p| p.0)
            .ok_or(missing("GETPLANE"))
    }
    fn plane_kind(&self, id: u32) -> Result<PlaneKind, KmsError> {
        let s = self.0.borrow();
        s.planes
            .iter()
            .find(|p| p.0.id == id)
            .map(|p| p.1)
            .ok_or(missing("GETPLANE"))
    }
    fn plane_position(&self, _id: u32) -> Result<PlanePosition, KmsError> {
        let s = self.0.borrow();
        let (x, y) = s.position.ok_or(missing("OBJ_GETPROPERTIES"))?;
        Ok(PlanePosition { x, y, hot: s.hot })
    }
    fn fb2(&self, id: u32) -> Result<Fb2Reply, KmsError> {
        let mut s = self.0.borrow_mut();
        s.log.push(format!("fb2 {id}"));
        let mut reply = s.fbs.get(&id).map(|f| f.0).ok_or(missing("GETFB2"))?;
        // Like the kernel: a fresh handle for every GETFB2 (none without CAP_SYS_ADMIN).
        if reply.handles[0] != 0 {
            s.next_handle += 1;
            reply.handles[0] = s.next_handle;
        }
        Ok(reply)
    }
    fn close_handle(&self, handle: u32) {
        self.0.borrow_mut().log.push(format!("close {handle}"));
    }
    fn map(&self, handle: u32, len: usize) -> Result<RecMap, KmsError> {
        let mut s = self.0.borrow_mut();
        s.log.push(format!("map {handle}"));
        // The handle numbers are fresh; the newest GETFB2 is the one being mapped.
        let fb = s
            .log
            .iter()
            .rev()
            .find_map(|l| l.strip_prefix("fb2 "))
            .unwrap_or("0");
        let fb: u32 = fb.parse().unwrap_or(0);
        let bytes = s.fbs.get(&fb).map(|f| f.1.clone()).unwrap_or_default();
        assert!(
            bytes.len() >= len,
            "map of {len} bytes past a {}-byte buffer",
            bytes.len()
        );
        Ok(RecMap {
            bytes,
            rec: self.clone(),
        })
    }
}

impl Rec {
    fn with(f: impl FnOnce(&mut State)) -> Rec {
        let rec = Rec::default();
        f(&mut rec.0.borrow_mut());
        rec
    }
    fn set(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.0.borrow_mut());
    }
    fn take_log(&self) -> Vec<String> {
        std::mem::take(&mut self.0.borrow_mut().log)
    }
}

fn connector(id: u32, name: &str, connected: bool, encoder: u32) -> ConnectorReply {
    ConnectorReply {
        id,
        name: name.into(),
        connected,
        encoder,
    }
}

fn xrgb_fb(id: u32, w: u32, h: u32, colour: u32) -> (Fb2Reply, Vec<u8>) {
    let reply = Fb2Reply {
        id,
        width: w,
        height: h,
        fourcc: XR24,
        modifier: Some(0),
        handles: [1, 0, 0, 0],
        pitches: [w * 4, 0, 0, 0],
        offsets: [0; 4],
    };
    let bytes = colour.to_le_bytes().repeat((w * h) as usize);
    (reply, bytes)
}

/// What virtio-gpu shows with one DRM master: Virtual-1 on CRTC 40 (the first), primary
/// plane 31 scanning out fb 10; a cursor plane 32 on the same CRTC.
fn board(w: u16, h: u16) -> Rec {
    Rec::with(|s| {
        s.crtcs = vec![40, 41];
        s.connectors = vec![
            connector(50, "Virtual-1", true, 60),
            connector(51, "Virtual-2", false, 0),
        ];
        s.encoders.insert(60, 40);
        s.crtc.insert(
            40,
            CrtcReply {
                id: 40,
                fb: 10,
                x: 0,
                y: 0,
                mode: Some((w, h)),
            },
        );
        s.crtc.insert(
            41,
            CrtcReply {
                id: 41,
                fb: 0,
                x: 0,
                y: 0,
                mode: None,
            },
        );
        let plane = |id, crtc, fb, possible| PlaneReply {
            id,
            crtc,
            fb,
            possible_crtcs: possible,
        };
        s.planes = vec![
            (plane(32, 40, 0, 1), PlaneKind::Cursor),
            (plane(31, 40, 10, 1), PlaneKind::Primary),
            (plane(33, 0, 0, 2), PlaneKind::Primary),
        ];
        s.fbs
            .insert(10, xrgb_fb(10, w.into(), h.into(), 0x00FF_0000));
        s.fbs
            .insert(11, xrgb_fb(11, w.into(), h.into(), 0x0000_00FF));
    })
}

fn flip(rec: &Rec, fb: u32) {
    rec.set(|s| {
        for p in &mut s.planes {
            if p.0.id == 31 {
                p.0.fb = fb;
            }
        }
        s.crtc.get_mut(&40).unwrap().fb = fb;
    });
}

/// The first pixel's (r, g, b) and the frame's size.
fn shown(kms: &mut Kms<Rec>) -> ((u16, u16), [u8; 3]) {
    let f = kms.frame().unwrap();
    assert!(f.is_consistent());
    let (mut r, mut g, mut b) = ([0u8], [0u8], [0u8]);
    Converter::new(f.format)
        .unwrap()
        .row(f.row(0).unwrap(), &mut r, &mut g, &mut b);
    ((f.width, f.height), [r[0], g[0], b[0]])
}

#[test]
fn picks_the_connected_connector_and_its_crtcs_primary_plane() {
    let rec = board(1024, 768);
    let out = select(&rec, None).unwrap();
    assert_eq!(
        (out.connector.as_str(), out.crtc, out.plane),
        ("Virtual-1", 40, 31)
    );
}

#[test]
fn a_named_connector_or_a_list_of_the_real_names() {
    let rec = board(64, 64);
    assert_eq!(select(&rec, Some("virtual-1")).unwrap().plane, 31);
    let e = select(&rec, Some("HDMI-A-1")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "no connector named HDMI-A-1 (there are: Virtual-1, Virtual-2)"
    );
    // Named but dark: said as such, not silently another one.
    let e = select(&rec, Some("Virtual-2")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "no connected connector has an active CRTC (Virtual-1 active, Virtual-2 disconnected)"
    );
}

#[test]
fn the_console_off_or_no_master_is_no_active_crtc() {
    let rec = board(64, 64);
    rec.set(|s| s.crtc.get_mut(&40).unwrap().mode = None);
    let e = select(&rec, None).unwrap_err();
    assert_eq!(
        e,
        KmsError::NoActiveCrtc {
            have: vec![
                "Virtual-1 no active CRTC".into(),
                "Virtual-2 disconnected".into()
            ]
        }
    );
}

#[test]
fn a_primary_plane_not_on_the_crtc_yet_is_taken_from_possible_crtcs() {
    let rec = board(64, 64);
    rec.set(|s| {
        s.connectors[0].encoder = 61;
        s.encoders.insert(61, 41);
        s.crtc.get_mut(&41).unwrap().mode = Some((64, 64));
    });
    // CRTC 41 is the second: plane 33's possible_crtcs bit 1.
    assert_eq!(select(&rec, None).unwrap().plane, 33);
    rec.set(|s| s.planes.retain(|p| p.0.id != 33));
    assert_eq!(
        select(&rec, None).unwrap_err(),
        KmsError::NoPrimaryPlane { crtc: 41 }
    );
}

#[test]
fn drm_fourccs_convert_to_true_colour() {
    let px = |fourcc: &[u8; 4], bytes: &[u8]| {
        let f = format_of(u32::from_le_bytes(*fourcc)).unwrap();
        let (mut r, mut g, mut b) = ([0u8], [0u8], [0u8]);
        Converter::new(f)
            .unwrap()
            .row(bytes, &mut r, &mut g, &mut b);
        [r[0], g[0], b[0]]
    };
    // Memory order is the little-endian pixel value's bytes.
    assert_eq!(px(b"XR24", &[0x30, 0x20, 0x10, 0x00]), [0x10, 0x20, 0x30]);
    assert_eq!(px(b"AR24", &[0x30, 0x20, 0x10, 0x80]), [0x10, 0x20, 0x30]);
    assert_eq!(px(b"XB24", &[0x10, 0x20, 0x30, 0x00]), [0x10, 0x20, 0x30]);
    assert_eq!(px(b"AB24", &[0x10, 0x20, 0x30, 0xFF]), [0x10, 0x20, 0x30]);
    assert_eq!(px(b"RX24", &[0x00, 0x30, 0x20, 0x10]), [0x10, 0x20, 0x30]);
    assert_eq!(px(b"BX24", &[0x00, 0x10, 0x20, 0x30]), [0x10, 0x20, 0x30]);
    assert_eq!(px(b"RG24", &[0x30, 0x20, 0x10]), [0x10, 0x20, 0x30]);
    assert_eq!(px(b"BG24", &[0x10, 0x20, 0x30]), [0x10, 0x20, 0x30]);
    assert_eq!(px(b"RG16", &0xF800u16.to_le_bytes()), [255, 0, 0]);
    assert_eq!(px(b"RG16", &0x001Fu16.to_le_bytes()), [0, 0, 255]);
    assert_eq!(px(b"BG16", &0xF800u16.to_le_bytes()), [0, 0, 255]);
    assert_eq!(
        px(b"XR30", &((1023u32 << 20) | 3).to_le_bytes()),
        [255, 0, 0]
    );
    assert_eq!(format_of(RG16), Some(PixelFormat::RGB565));
    assert_eq!(format_of(NV12), None);
}

#[test]
fn unreadable_framebuffers_are_refused_with_the_reason() {
    let (ok, _) = xrgb_fb(7, 100, 10, 0);
    assert_eq!(layout(&ok).unwrap().map_len, 4000);
    let e = layout(&Fb2Reply {
        modifier: Some(X_TILED),
        ..ok
    })
    .unwrap_err();
    assert_eq!(
        e,
        KmsError::Modifier {
            fb: 7,
            modifier: X_TILED
        }
    );
    assert!(
        e.to_string().contains("only linear buffers can be read"),
        "{e}"
    );
    // Implicit (no modifiers flag) and MOD_INVALID are read as linear.
    assert!(
        layout(&Fb2Reply {
            modifier: None,
            ..ok
        })
        .is_ok()
    );
    let e = layout(&Fb2Reply {
        handles: [0; 4],
        ..ok
    })
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("needs CAP_SYS_ADMIN (run the agent as root)"),
        "{e}"
    );
    let e = layout(&Fb2Reply { fourcc: NV12, ..ok }).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("framebuffer 7 has pixel format NV12: supported are"),
        "{e}"
    );
    let e = layout(&Fb2Reply {
        pitches: [399, 0, 0, 0],
        ..ok
    })
    .unwrap_err();
    assert!(matches!(e, KmsError::Geometry { pitch: 399, .. }), "{e}");
    // RGB565 with a padded pitch and an offset: mapped through the last pixel only.
    let l = layout(&Fb2Reply {
        fourcc: RG16,
        pitches: [256, 0, 0, 0],
        offsets: [64, 0, 0, 0],
        ..ok
    })
    .unwrap();
    assert_eq!(
        (l.pitch, l.offset, l.map_len),
        (256, 64, 64 + 256 * 9 + 200)
    );
}

#[test]
fn page_flips_are_followed_and_mappings_kept_per_fb() {
    let rec = board(64, 48);
    let mut kms = Kms::new("/dev/dri/card0", rec.clone(), None).unwrap();
    assert_eq!(shown(&mut kms), ((64, 48), [255, 0, 0]));
    flip(&rec, 11);
    assert_eq!(shown(&mut kms), ((64, 48), [0, 0, 255]));
    flip(&rec, 10);
    assert_eq!(shown(&mut kms), ((64, 48), [255, 0, 0]));
    flip(&rec, 11);
    assert_eq!(shown(&mut kms), ((64, 48), [0, 0, 255]));
    let log = rec.take_log();
    let asked: Vec<&String> = log.iter().filter(|l| l.starts_with("fb2")).collect();
    assert_eq!(
        asked,
        ["fb2 10", "fb2 11"],
        "one GETFB2 per framebuffer: {log:?}"
    );
    // Every handle GETFB2 made is closed once the buffer is mapped.
    assert!(
        log.contains(&"close 1".to_owned()) && log.contains(&"close 2".to_owned()),
        "{log:?}"
    );
    assert_eq!(
        kms.describe(),
        "kms:/dev/dri/card0:Virtual-1 64x48 XRGB8888"
    );
}

#[test]
fn reads_are_bracketed_between_frames() {
    let rec = board(8, 8);
    let mut kms = Kms::new("/dev/dri/card0", rec.clone(), None).unwrap();
    rec.take_log();
    kms.frame().unwrap();
    kms.frame().unwrap();
    drop(kms);
    assert_eq!(rec.take_log(), ["begin", "end", "begin", "end"]);
}

#[test]
fn a_mode_change_is_a_new_size_and_panning_moves_the_view() {
    let rec = board(64, 48);
    let mut kms = Kms::new("/dev/dri/card0", rec.clone(), None).unwrap();
    rec.set(|s| {
        let mut fb = xrgb_fb(12, 32, 24, 0x0000_FF00);
        // A second colour from row 4, column 2 on: where the CRTC will look.
        for y in 4..24 {
            for x in 2..32 {
                let at = (y * 32 + x) * 4;
                fb.1[at..at + 4].copy_from_slice(&0x0012_3456u32.to_le_bytes());
            }
        }
        s.fbs.insert(12, fb);
        s.crtc.get_mut(&40).unwrap().mode = Some((16, 12));
    });
    flip(&rec, 12);
    assert_eq!(shown(&mut kms), ((16, 12), [0, 255, 0]));
    rec.set(|s| {
        let c = s.crtc.get_mut(&40).unwrap();
        (c.x, c.y) = (2, 4);
    });
    assert_eq!(shown(&mut kms), ((16, 12), [0x12, 0x34, 0x56]));
    // A mode larger than what is left of the buffer is cut to the buffer.
    rec.set(|s| {
        let c = s.crtc.get_mut(&40).unwrap();
        (c.x, c.y, c.mode) = (20, 20, Some((64, 48)));
    });
    assert_eq!(shown(&mut kms).0, (12, 4));
}

#[test]
fn a_tiled_buffer_or_a_dark_crtc_shows_the_waiting_screen_and_recovers() {
    let rec = board(64, 48);
    let mut kms = Kms::new("/dev/dri/card0", rec.clone(), None).unwrap();
    rec.set(|s| {
        let mut fb = xrgb_fb(13, 64, 48, 0x00FF_FFFF);
        fb.0.modifier = Some(X_TILED);
        s.fbs.insert(13, fb);
    });
    flip(&rec, 13);
    rec.take_log();
    for _ in 0..3 {
        let f = kms.frame().unwrap();
        // The waiting screen at the size the session has: no reactivation, no garbage.
        assert_eq!(
            (f.width, f.height, f.format),
            (64, 48, PixelFormat::XRGB8888)
        );
        assert_ne!(f.row(0).unwrap()[..3], [0xFF, 0xFF, 0xFF]);
    }
    assert_eq!(
        kms.problem,
        Some(KmsError::Modifier {
            fb: 13,
            modifier: X_TILED
        })
    );
    let log = rec.take_log();
    assert_eq!(
        log.iter().filter(|l| l.starts_with("fb2")).count(),
        1,
        "asked once: {log:?}"
    );
    assert_eq!(
        kms.waiting.as_ref().unwrap().text()[1],
        "Tiled buffer (modifier 0x100000000000001)."
    );
    flip(&rec, 10);
    assert_eq!(shown(&mut kms), ((64, 48), [255, 0, 0]));
    assert_eq!(kms.problem, None);
    rec.set(|s| s.crtc.get_mut(&40).unwrap().mode = None);
    assert_eq!(shown(&mut kms).0, (64, 48));
    assert_eq!(kms.problem, Some(KmsError::Off { crtc: 40 }));
}

#[test]
fn opening_without_cap_sys_admin_says_so() {
    let rec = board(64, 48);
    rec.set(|s| s.fbs.get_mut(&10).unwrap().0.handles = [0; 4]);
    let e = Kms::new("/dev/dri/card0", rec, None).err().unwrap();
    assert_eq!(e, KmsError::NoHandles { fb: 10 });
}

#[test]
fn card_and_connector_specs() {
    assert_eq!(parse_arg("/dev/dri/card0"), ("/dev/dri/card0", None));
    assert_eq!(
        parse_arg("/dev/dri/card1:HDMI-A-1"),
        ("/dev/dri/card1", Some("HDMI-A-1"))
    );
    assert_eq!(parse_arg("/dev/dri/card0:"), ("/dev/dri/card0", None));
    assert_eq!(parse_arg(""), ("", None));
    assert_eq!(parse_arg(":Virtual-1"), (":Virtual-1", None));
}

/// A 64x64 ARGB cursor image: an opaque 8x12 block at (2, 1).
fn cursor_fb(id: u32) -> (Fb2Reply, Vec<u8>) {
    let reply = Fb2Reply {
        id,
        width: 64,
        height: 64,
        fourcc: u32::from_le_bytes(*b"AR24"),
        modifier: Some(0),
        handles: [1, 0, 0, 0],
        pitches: [256, 0, 0, 0],
        offsets: [0; 4],
    };
    let mut bytes = vec![0u8; 64 * 64 * 4];
    for y in 1..13 {
        for x in 2..10 {
            let i = (y * 64 + x) * 4;
            bytes[i..i + 4].copy_from_slice(&[0x10, 0x20, 0x30, 0xFF]);
        }
    }
    (reply, bytes)
}

fn show_cursor(rec: &Rec, fb: u32) {
    rec.set(|s| {
        for p in &mut s.planes {
            if p.0.id == 32 {
                p.0.fb = fb;
            }
        }
    });
}

#[test]
fn the_cursor_plane_is_followed_shape_and_position() {
    let rec = board(1024, 768);
    rec.set(|s| {
        s.fbs.insert(12, cursor_fb(12));
        s.position = Some((300, 200));
    });
    let mut kms = Kms::new("/dev/dri/card0", rec.clone(), None).unwrap();
    assert_eq!(kms.out.cursor, Some(32));
    assert_eq!(
        kms.cursor(),
        Cursor::Hidden,
        "no framebuffer on the cursor plane"
    );
    show_cursor(&rec, 12);
    let Cursor::Shown { x, y, shape } = kms.cursor() else {
        panic!("not shown");
    };
    // The block's top left, as the image's hot spot is not known.
    assert_eq!((x, y), (302, 201));
    assert_eq!((shape.width, shape.height), (8, 12));
    assert_eq!(&shape.bgra[..4], &[0x10, 0x20, 0x30, 0xFF]);
    // Mapped once while the plane shows the same framebuffer.
    rec.take_log();
    rec.set(|s| s.position = Some((10, -5)));
    let Cursor::Shown { x, y, .. } = kms.cursor() else {
        panic!("not shown");
    };
    assert_eq!((x, y), (12, -4));
    assert!(!rec.take_log().iter().any(|l| l.starts_with("map")));
    show_cursor(&rec, 0);
    assert_eq!(kms.cursor(), Cursor::Hidden);
    // With the hot spot known (virtual GPUs): the position is the hot spot's.
    rec.set(|s| s.hot = Some((4, 5)));
    show_cursor(&rec, 12);
    let Cursor::Shown { x, y, shape } = kms.cursor() else {
        panic!("not shown");
    };
    assert_eq!((x, y), (14, 0));
    assert_eq!((shape.hot_x, shape.hot_y), (2, 4));
}

#[test]
fn a_cursor_we_cannot_place_or_read_is_not_followed() {
    let rec = board(1024, 768);
    rec.set(|s| {
        s.fbs.insert(12, cursor_fb(12));
    });
    let mut kms = Kms::new("/dev/dri/card0", rec.clone(), None).unwrap();
    show_cursor(&rec, 12);
    // No atomic properties: no position, so nothing is sent.
    assert_eq!(kms.cursor(), Cursor::None);
    rec.set(|s| s.position = Some((0, 0)));
    // An XRGB image has no alpha to cut a pointer from.
    show_cursor(&rec, 11);
    assert_eq!(kms.cursor(), Cursor::None);
    show_cursor(&rec, 12);
    assert!(matches!(kms.cursor(), Cursor::Shown { .. }));
}
