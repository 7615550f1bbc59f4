//! A DRM card for the KMS source: Smithay's `drm` / `drm-ffi` ioctls turned into the plain
//! replies of `screen::kms_core`, the framebuffer mapping (dumb map on the card, else a PRIME
//! dma-buf) and DMA_BUF_IOCTL_SYNC, the one ioctl those crates lack.

use core::num::NonZeroUsize;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use drm::control::Device as _;
use nix::errno::Errno;

use super::mmap::ReadMap;
use crate::screen::kms_core::{
    ConnectorReply, CrtcReply, Fb2Reply, FbMap, KmsDevice, KmsError, PlaneKind, PlanePosition,
    PlaneReply,
};

pub(crate) struct Card {
    file: File,
    /// Property names by id, asked once (a cursor's position is read every scan).
    prop_names: std::cell::RefCell<std::collections::HashMap<u32, Vec<u8>>>,
}

impl AsFd for Card {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

impl drm::Device for Card {}
impl drm::control::Device for Card {}

fn errno(e: &io::Error) -> Errno {
    e.raw_os_error()
        .map_or(Errno::UnknownErrno, Errno::from_raw)
}

fn query(call: &'static str) -> impl Fn(io::Error) -> KmsError {
    move |e| KmsError::Query {
        call,
        errno: errno(&e),
    }
}

impl Card {
    /// Opens the card and asks for universal planes (without it primary and cursor planes
    /// are hidden). Reading needs no DRM master: we never modeset.
    pub(crate) fn open(path: &str) -> io::Result<Card> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let card = Card {
            file,
            prop_names: Default::default(),
        };
        // The first opener of a card with no master becomes master, and a compositor started
        // later could not take the display: give it back at once (fails when we are not).
        let _ = drm::Device::release_master_lock(&card);
        drm::Device::set_client_capability(&card, drm::ClientCapability::UniversalPlanes, true)?;
        // Only for the planes' CRTC_X/CRTC_Y (where the cursor is); a driver without atomic
        // modesetting refuses it, and the cursor is then not followed. Virtual GPUs
        // (virtio-gpu, vmwgfx, qxl) hide their cursor plane from atomic clients that do not
        // take its hot spot too (Linux 6.8 and later); older kernels refuse the cap.
        if drm::Device::set_client_capability(&card, drm::ClientCapability::Atomic, true).is_ok() {
            let hotspot = drm::ClientCapability::CursorPlaneHotspot;
            let _ = drm::Device::set_client_capability(&card, hotspot, true);
        }
        Ok(card)
    }
}

/// DRM_PLANE_TYPE_* values of the "type" property.
fn kind_of(value: u64) -> PlaneKind {
    match value {
        1 => PlaneKind::Primary,
        2 => PlaneKind::Cursor,
        _ => PlaneKind::Overlay,
    }
}

impl Card {
    /// A plane's properties by name (one OBJ_GETPROPERTIES; names are asked once each).
    fn plane_properties(&self, id: u32) -> Result<Vec<(Vec<u8>, u64)>, KmsError> {
        let handle: drm::control::plane::Handle =
            drm::control::from_u32(id).ok_or(KmsError::Query {
                call: "GETPLANE",
                errno: Errno::EINVAL,
            })?;
        let props = self
            .get_properties(handle)
            .map_err(query("OBJ_GETPROPERTIES"))?;
        let mut named = Vec::new();
        for (prop, value) in props.iter() {
            let id: u32 = (*prop).into();
            let known = self.prop_names.borrow().get(&id).cloned();
            let name = match known {
                Some(name) => name,
                None => {
                    let info = self.get_property(*prop).map_err(query("GETPROPERTY"))?;
                    let name = info.name().to_bytes().to_vec();
                    self.prop_names.borrow_mut().insert(id, name.clone());
                    name
                }
            };
            named.push((name, *value));
        }
        Ok(named)
    }

    /// The value of a plane's property by name; None when the plane has no such property.
    fn plane_property(&self, id: u32, name: &[u8]) -> Result<Option<u64>, KmsError> {
        let props = self.plane_properties(id)?;
        Ok(props.into_iter().find(|(n, _)| n == name).map(|(_, v)| v))
    }
}

impl KmsDevice for Card {
    type Map = CardMap;

    fn crtcs(&self) -> Result<Vec<u32>, KmsError> {
        let mut crtcs = Vec::new();
        drm_ffi::mode::get_resources(self.as_fd(), None, Some(&mut crtcs), None, None)
            .map_err(query("GETRESOURCES"))?;
        Ok(crtcs)
    }

    fn connectors(&self) -> Result<Vec<u32>, KmsError> {
        let mut connectors = Vec::new();
        drm_ffi::mode::get_resources(self.as_fd(), None, None, Some(&mut connectors), None)
            .map_err(query("GETRESOURCES"))?;
        Ok(connectors)
    }

    fn connector(&self, id: u32) -> Result<ConnectorReply, KmsError> {
        // No mode list and no forced probe: a probe blocks and may flicker the display.
        let c = drm_ffi::mode::get_connector(self.as_fd(), id, None, None, None, None, false)
            .map_err(query("GETCONNECTOR"))?;
        let interface = drm::control::connector::Interface::from(c.connector_type);
        Ok(ConnectorReply {
            id,
            name: format!("{}-{}", interface.as_str(), c.connector_type_id),
            // DRM_MODE_CONNECTED is 1.
            connected: c.connection == 1,
            encoder: c.encoder_id,
        })
    }

    fn encoder_crtc(&self, id: u32) -> Result<u32, KmsError> {
        let e = drm_ffi::mode::get_encoder(self.as_fd(), id).map_err(query("GETENCODER"))?;
        Ok(e.crtc_id)
    }

    fn crtc(&self, id: u32) -> Result<CrtcReply, KmsError> {
        let c = drm_ffi::mode::get_crtc(self.as_fd(), id).map_err(query("GETCRTC"))?;
        Ok(CrtcReply {
            id,
            fb: c.fb_id,
            x: c.x,
            y: c.y,
            mode: (c.mode_valid != 0).then_some((c.mode.hdisplay, c.mode.vdisplay)),
        })
    }

    fn planes(&self) -> Result<Vec<u32>, KmsError> {
        let mut planes = Vec::new();
        drm_ffi::mode::get_plane_resources(self.as_fd(), Some(&mut planes))
            .map_err(query("GETPLANERESOURCES"))?;
        Ok(planes)
    }

    fn plane(&self, id: u32) -> Result<PlaneReply, KmsError> {
        let p = drm_ffi::mode::get_plane(self.as_fd(), id, None).map_err(query("GETPLANE"))?;
        Ok(PlaneReply {
            id,
            crtc: p.crtc_id,
            fb: p.fb_id,
            possible_crtcs: p.possible_crtcs,
        })
    }

    fn plane_kind(&self, id: u32) -> Result<PlaneKind, KmsError> {
        // Without the property (an old kernel): not one we can call primary.
        Ok(self
            .plane_property(id, b"type")?
            .map_or(PlaneKind::Overlay, kind_of))
    }

    fn plane_position(&self, id: u32) -> Result<PlanePosition, KmsError> {
        let missing = KmsError::Query {
            call: "OBJ_GETPROPERTIES",
            errno: Errno::EOPNOTSUPP,
        };
        // Signed 32-bit range properties, handed over as u64.
        let signed = |v: u64| v as i64 as i32;
        let props = self.plane_properties(id)?;
        let get = |name: &[u8]| props.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
        let x = get(b"CRTC_X").ok_or(missing.clone())?;
        let y = get(b"CRTC_Y").ok_or(missing)?;
        let (hot_x, hot_y) = (get(b"HOTSPOT_X"), get(b"HOTSPOT_Y"));
        Ok(PlanePosition {
            x: signed(x),
            y: signed(y),
            hot: hot_x.zip(hot_y).map(|(hx, hy)| (signed(hx), signed(hy))),
        })
    }

    fn fb2(&self, id: u32) -> Result<Fb2Reply, KmsError> {
        let f = drm_ffi::mode::get_framebuffer2(self.as_fd(), id).map_err(query("GETFB2"))?;
        // DRM_MODE_FB_MODIFIERS is 2.
        let modifier = (f.flags & 2 != 0).then_some(f.modifier[0]);
        Ok(Fb2Reply {
            id,
            width: f.width,
            height: f.height,
            fourcc: f.pixel_format,
            modifier,
            handles: f.handles,
            pitches: f.pitches,
            offsets: f.offsets,
        })
    }

    fn close_handle(&self, handle: u32) {
        // A failure leaves a handle to a buffer that is gone anyway; nothing better to do.
        let _ = drm_ffi::gem::close(self.as_fd(), handle);
    }

    fn map(&self, handle: u32, len: usize) -> Result<CardMap, KmsError> {
        let len = NonZeroUsize::new(len).ok_or(KmsError::Query {
            call: "mmap",
            errno: Errno::EINVAL,
        })?;
        // Dumb buffers (what simple masters and our demo draw into): an offset on the card.
        let dumb = drm_ffi::mode::dumbbuffer::map(self.as_fd(), handle, 0, 0)
            .map_err(|e| errno(&e))
            .and_then(|m| {
                let offset = i64::try_from(m.offset).map_err(|_| Errno::EOVERFLOW)?;
                ReadMap::at(&self.file, len, offset)
            });
        if let Ok(map) = dumb {
            return Ok(CardMap { map, dma_buf: None });
        }
        // Anything else: export it as a dma-buf and map that, reads bracketed with SYNC.
        let flags = drm::CLOEXEC;
        let buffer: drm::buffer::Handle =
            drm::control::from_u32(handle).ok_or(KmsError::Query {
                call: "PRIME_HANDLE_TO_FD",
                errno: Errno::EINVAL,
            })?;
        let fd = self
            .buffer_to_prime_fd(buffer, flags)
            .map_err(query("PRIME_HANDLE_TO_FD"))?;
        let map = ReadMap::at(&fd, len, 0).map_err(|errno| KmsError::Query {
            call: "mmap",
            errno,
        })?;
        Ok(CardMap {
            map,
            dma_buf: Some(fd),
        })
    }
}

/// A mapped framebuffer; `dma_buf` is set when it came through PRIME.
pub(crate) struct CardMap {
    map: ReadMap,
    dma_buf: Option<OwnedFd>,
}

impl FbMap for CardMap {
    fn bytes(&self) -> &[u8] {
        self.map.bytes()
    }

    fn begin(&self) {
        if let Some(fd) = &self.dma_buf {
            let _ = dma_buf_sync(fd.as_fd(), DMA_BUF_SYNC_START);
        }
    }

    fn end(&self) {
        if let Some(fd) = &self.dma_buf {
            let _ = dma_buf_sync(fd.as_fd(), DMA_BUF_SYNC_END);
        }
    }
}

/// `struct dma_buf_sync` from <linux/dma-buf.h>.
#[repr(C)]
struct DmaBufSync {
    flags: u64,
}

const DMA_BUF_SYNC_READ: u64 = 1;
const DMA_BUF_SYNC_START: u64 = 0;
const DMA_BUF_SYNC_END: u64 = 4;

nix::ioctl_write_ptr!(dma_buf_ioctl_sync, b'b', 0, DmaBufSync);

/// Tells the exporter a CPU read starts or ends (caches are made coherent around it).
fn dma_buf_sync(fd: BorrowedFd<'_>, phase: u64) -> nix::Result<()> {
    let sync = DmaBufSync {
        flags: DMA_BUF_SYNC_READ | phase,
    };
    // SAFETY: `fd` is open for the call and `sync` is a live repr(C) dma_buf_sync, the type
    // and size DMA_BUF_IOCTL_SYNC reads.
    unsafe { dma_buf_ioctl_sync(fd.as_raw_fd(), &sync) }.map(drop)
}
