//! An in-process RDP client for integration tests.
//!
//! Built on IronRDP: `ironrdp_connector::ClientConnector` for the connection sequence (X.224
//! negotiation through `ironrdp_blocking::connect_begin`, TLS with rustls, CredSSP/NTLM for NLA),
//! then `ironrdp_session::ActiveStage` decoding graphics into a `DecodedImage`. The connection
//! sequence after the TLS upgrade is driven here step by step instead of by
//! `ironrdp_blocking::connect_finalize`, so that every server PDU can be looked at first: that is
//! how the client learns the Set Error Info code and the CredSSP `errorCode`, which IronRDP reduces
//! to text.
//!
//! Everything is blocking and bounded: TCP connect, the whole handshake and every `run_until` have
//! deadlines; nothing waits forever.
//!
//! The client advertises 32 bpp, no bitmap codecs (so no surface commands, RemoteFX or GFX), no
//! bulk compression unless `ClientConfig::compression` asks for it, and no server pointer: the server must answer with plain Bitmap Updates
//! (RDP6 planar, interleaved RLE or raw), which is what thinshadow sends and what FreeRDP's shadow
//! server falls back to.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::AsRawFd as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ironrdp_blocking::Framed;
use ironrdp_connector::connection_activation::{
    ConnectionActivationFactory, ConnectionActivationState,
};
use ironrdp_connector::credssp::CredsspSequence;
use ironrdp_connector::sspi;
use ironrdp_connector::sspi::generator::GeneratorState;
use ironrdp_connector::{
    BitmapConfig, ClientConnector, ClientConnectorState, ConnectionOutcome, ConnectorError,
    ConnectorErrorKind, Credentials, DesktopSize, Sequence, ServerName,
};
use ironrdp_core::WriteBuf;
use ironrdp_graphics::image_processing::PixelFormat;
use ironrdp_pdu::geometry::InclusiveRectangle;
use ironrdp_pdu::input::fast_path::{FastPathInputEvent, KeyboardFlags, SynchronizeFlags};
use ironrdp_pdu::input::mouse::PointerFlags;
use ironrdp_pdu::input::mouse_x::PointerXFlags;
use ironrdp_pdu::input::sync::SyncToggleFlags;
use ironrdp_pdu::input::{
    InputEvent, InputEventPdu, MousePdu, MouseXPdu, ScanCodePdu, SyncPdu, UnicodePdu,
};
use ironrdp_pdu::mcs::{DisconnectProviderUltimatum, DisconnectReason, McsMessage};
use ironrdp_pdu::rdp::capability_sets::{InputFlags, MajorPlatformType, RailSupportLevel};
use ironrdp_pdu::rdp::client_info::{PerformanceFlags, TimezoneInfo};
use ironrdp_pdu::rdp::headers::ShareDataPdu;
use ironrdp_pdu::x224::X224;
use ironrdp_pdu::{Action, PduHint, gcc};
use ironrdp_session::image::DecodedImage;
use ironrdp_session::{ActiveStage, ActiveStageBuilder, ActiveStageOutput};

use super::faults::{FaultyStream, StreamFaults, is_injected};

/// TCP connect timeout.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Deadline for the whole connection sequence after TCP connect (X.224, TLS, CredSSP, MCS,
/// licensing, capabilities, finalization).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(20);
/// Write timeout on the socket (a server that stops reading must not hang a test).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `disconnect` waits for the server's Shutdown Denied before closing anyway.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(3);

/// Set Error Info codes that mean "your credentials were not accepted".
///
/// 0x9 ERRINFO_SERVER_INSUFFICIENT_PRIVILEGES is what `ironrdp_acceptor::Acceptor::encode_access_denied`
/// sends for a TLS-mode credential rejection; 0xA ERRINFO_SERVER_FRESH_CREDENTIALS_REQUIRED is the other
/// credential-related code in MS-RDPBCGR 2.2.5.1.1.
pub const AUTH_ERROR_INFO_CODES: [u32; 2] = [0x9, 0xA];

/// NTSTATUS STATUS_LOGON_FAILURE, the CredSSP `errorCode` for a wrong user name or password.
pub const STATUS_LOGON_FAILURE: u32 = 0xC000_006D;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// TLS only (PROTOCOL_SSL): credentials travel in the Client Info PDU.
    Tls,
    /// TLS + CredSSP with NTLM (PROTOCOL_HYBRID | PROTOCOL_HYBRID_EX).
    Nla,
}

#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub addr: SocketAddr,
    pub user: String,
    pub password: String,
    pub security: Security,
    pub width: u16,
    pub height: u16,
    /// Short reads and writes, `WouldBlock` and a cut on the client's socket.
    pub faults: Option<StreamFaults>,
    /// Connect from this local address (another loopback address: another "source").
    pub source: Option<std::net::Ipv4Addr>,
    /// Bulk compression the client offers (None: the default, plain updates only).
    pub compression: Option<ironrdp_pdu::rdp::client_info::CompressionType>,
    /// Stops right after the NLA login until the test lets it go on: the client waits on
    /// this barrier twice (once to say it logged in, once to be released).
    pub pause_after_login: Option<std::sync::Arc<std::sync::Barrier>>,
}

impl ClientConfig {
    pub fn new(addr: SocketAddr, user: &str, password: &str, security: Security) -> Self {
        Self {
            addr,
            user: user.to_owned(),
            password: password.to_owned(),
            security,
            width: 1024,
            height: 768,
            faults: None,
            source: None,
            compression: None,
            pause_after_login: None,
        }
    }
}

/// Why `TestClient::connect` failed.
#[derive(Debug)]
pub enum ConnectError {
    /// Transport failure: TCP refused or unreachable, connection reset or closed by the server
    /// without an error info, a timeout (kind `TimedOut`/`WouldBlock`), or a TLS failure.
    Io(io::Error),
    /// The server rejected the credentials: a CredSSP `errorCode` (e.g. STATUS_LOGON_FAILURE), an
    /// Early User Authorization Result of ACCESS_DENIED, a hang-up right after the NTLM
    /// AUTHENTICATE message (FreeRDP 2 does that; `ntstatus` is then `None`), or a Set Error Info
    /// code from [`AUTH_ERROR_INFO_CODES`].
    AuthFailed {
        reason: String,
        /// The Set Error Info code, if the server sent one.
        error_info: Option<u32>,
        /// The NTSTATUS from a CredSSP TSRequest `errorCode`, if the server sent one.
        ntstatus: Option<u32>,
    },
    /// The server ended the connection sequence on purpose: an X.224 negotiation failure
    /// (e.g. HYBRID_REQUIRED_BY_SERVER), a Set Error Info code (e.g. 0x7
    /// SERVER_DENIED_CONNECTION), or a Disconnect Provider Ultimatum.
    Refused {
        reason: String,
        error_info: Option<u32>,
    },
    /// Anything else: a protocol error, an undecodable PDU, a redirection.
    Other(String),
}

impl ConnectError {
    /// The Set Error Info code the server sent before giving up, if any.
    pub fn error_info(&self) -> Option<u32> {
        match self {
            Self::AuthFailed { error_info, .. } | Self::Refused { error_info, .. } => *error_info,
            Self::Io(_) | Self::Other(_) => None,
        }
    }

    pub fn is_auth_failure(&self) -> bool {
        matches!(self, Self::AuthFailed { .. })
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "I/O error ({:?}): {e}", e.kind()),
            Self::AuthFailed {
                reason,
                error_info,
                ntstatus,
            } => write!(
                f,
                "authentication failed: {reason} (error info {error_info:#x?}, NTSTATUS {ntstatus:#x?})"
            ),
            Self::Refused { reason, error_info } => {
                write!(
                    f,
                    "refused by the server: {reason} (error info {error_info:#x?})"
                )
            }
            Self::Other(s) => write!(f, "connection failed: {s}"),
        }
    }
}

impl std::error::Error for ConnectError {}

/// Why `TestClient::run_until` returned without its condition becoming true.
#[derive(Debug, Clone)]
pub enum RunError {
    /// The deadline passed (the session is still usable).
    Timeout,
    /// The server ended the session: Set Error Info, Disconnect Provider Ultimatum, or the answer to
    /// our shutdown request.
    Terminated {
        reason: String,
        error_info: Option<u32>,
    },
    /// The connection broke (reset, closed without a disconnect PDU, write failure).
    Io {
        kind: io::ErrorKind,
        message: String,
    },
    /// IronRDP could not process a server PDU.
    Protocol(String),
}

impl RunError {
    fn io(e: &io::Error) -> Self {
        Self::Io {
            kind: e.kind(),
            message: e.to_string(),
        }
    }
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout => write!(f, "timed out"),
            Self::Terminated { reason, error_info } => {
                write!(
                    f,
                    "session terminated by the server: {reason} (error info {error_info:#x?})"
                )
            }
            Self::Io { kind, message } => write!(f, "I/O error ({kind:?}): {message}"),
            Self::Protocol(s) => write!(f, "protocol error: {s}"),
        }
    }
}

impl std::error::Error for RunError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MouseButton {
    Left,
    Right,
    Middle,
    /// Extended button 1 ("back"), sent as a TS_POINTERX_EVENT.
    X1,
    /// Extended button 2 ("forward"), sent as a TS_POINTERX_EVENT.
    X2,
}

/// A snapshot of the session's desktop as the client decoded it.
#[derive(Clone, PartialEq, Eq)]
pub struct Image {
    width: u16,
    height: u16,
    /// RGBA, 4 bytes per pixel, rows top-down, stride = 4 * width.
    rgba: Vec<u8>,
}

impl fmt::Debug for Image {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Image {}x{}", self.width, self.height)
    }
}

impl Image {
    fn black(width: u16, height: u16) -> Self {
        Self {
            width,
            height,
            rgba: vec![0; usize::from(width) * usize::from(height) * 4],
        }
    }

    pub fn width(&self) -> u16 {
        self.width
    }

    pub fn height(&self) -> u16 {
        self.height
    }

    /// The pixel at (x, y) as 0x00RRGGBB.
    ///
    /// # Panics
    /// If (x, y) is outside the image.
    pub fn pixel(&self, x: u16, y: u16) -> u32 {
        assert!(
            x < self.width && y < self.height,
            "pixel ({x}, {y}) outside {}x{}",
            self.width,
            self.height
        );
        let i = (usize::from(y) * usize::from(self.width) + usize::from(x)) * 4;
        (u32::from(self.rgba[i]) << 16)
            | (u32::from(self.rgba[i + 1]) << 8)
            | u32::from(self.rgba[i + 2])
    }

    /// All pixels as 0x00RRGGBB, row by row.
    pub fn pixels(&self) -> impl Iterator<Item = u32> + '_ {
        self.rgba
            .chunks_exact(4)
            .map(|p| (u32::from(p[0]) << 16) | (u32::from(p[1]) << 8) | u32::from(p[2]))
    }

    /// How many pixels have exactly this 0x00RRGGBB colour.
    pub fn count(&self, rgb: u32) -> usize {
        self.pixels().filter(|&p| p == rgb).count()
    }

    /// Writes the image as a binary PPM (P6), for looking at a failure (`convert x.ppm x.png`).
    pub fn save_ppm(&self, path: impl AsRef<Path>) -> io::Result<()> {
        let mut out = format!("P6\n{} {}\n255\n", self.width, self.height).into_bytes();
        out.reserve(self.rgba.len() / 4 * 3);
        for p in self.rgba.chunks_exact(4) {
            out.extend_from_slice(&p[..3]);
        }
        std::fs::write(path, out)
    }

    /// Copies a changed region from the decoder's buffer (same size, RGBA).
    fn copy_region(&mut self, src: &DecodedImage, rect: &InclusiveRectangle) {
        let width = usize::from(self.width);
        let height = usize::from(self.height);
        if usize::from(src.width()) != width
            || usize::from(src.height()) != height
            || width == 0
            || height == 0
        {
            return;
        }
        let left = usize::from(rect.left).min(width - 1);
        let right = usize::from(rect.right).min(width - 1);
        let top = usize::from(rect.top).min(height - 1);
        let bottom = usize::from(rect.bottom).min(height - 1);
        if left > right || top > bottom {
            return;
        }
        let data = src.data();
        for y in top..=bottom {
            let start = (y * width + left) * 4;
            let end = (y * width + right + 1) * 4;
            self.rgba[start..end].copy_from_slice(&data[start..end]);
        }
    }
}

/// What the server sent in the active stage, for checking how a server encodes.
///
/// Fast-path updates are reassembled from their fragments before their Bitmap Update is looked at.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct UpdateStats {
    pub fast_path_frames: usize,
    /// X.224 (slow-path) frames in the active stage.
    pub slow_path_frames: usize,
    /// Complete fast-path Bitmap Updates.
    pub bitmap_updates: usize,
    /// TS_BITMAP_DATA rectangles in them.
    pub bitmap_rects: usize,
    pub max_rects_per_update: usize,
    /// Compressed at 32 bpp: RDP 6.0 planar.
    pub planar_rects: usize,
    /// Compressed below 32 bpp: interleaved RLE.
    pub interleaved_rects: usize,
    /// Uncompressed.
    pub raw_rects: usize,
    /// The bits per pixel seen in bitmap rectangles (sorted, distinct).
    pub bits_per_pixel: Vec<u16>,
    /// Rectangles whose width is not a multiple of 4.
    pub rects_width_not_multiple_of_4: usize,
    /// Complete fast-path updates that came in more than one fragment.
    pub fragmented_updates: usize,
    pub largest_update_bytes: usize,
    pub surface_commands: usize,
    /// Orders, palette and synchronize updates.
    pub other_updates: usize,
    /// New Pointer updates: width, height, hot spot, and the XOR mask's first pixel (its
    /// bottom-left, B, G, R, A).
    pub pointer_shapes: Vec<(u16, u16, u16, u16, [u8; 4])>,
    /// Pointer Position updates.
    pub pointer_positions: Vec<(u16, u16)>,
    pub pointers_hidden: usize,
    /// Bulk-compressed fast-path updates (not looked into).
    pub compressed_updates: usize,
    /// Fast-path frames or updates that did not decode.
    pub undecodable: usize,
    /// Bitmaps IronRDP discarded as malformed (it only logs those and asks for a redraw).
    pub malformed_bitmaps: usize,
}

#[derive(Default)]
struct FastPathWatch {
    stats: UpdateStats,
    /// A fragmented update being reassembled: (update code, data so far, fragments).
    partial: Option<(u8, Vec<u8>, usize)>,
}

impl FastPathWatch {
    fn observe(&mut self, frame: &[u8]) {
        use ironrdp_pdu::fast_path::{FastPathHeader, FastPathUpdatePdu, Fragmentation};
        self.stats.fast_path_frames += 1;
        let mut cursor = ironrdp_core::ReadCursor::new(frame);
        if ironrdp_core::decode_cursor::<FastPathHeader>(&mut cursor).is_err() {
            self.stats.undecodable += 1;
            return;
        }
        while !cursor.is_empty() {
            let Ok(update) = ironrdp_core::decode_cursor::<FastPathUpdatePdu<'_>>(&mut cursor)
            else {
                self.stats.undecodable += 1;
                return;
            };
            if update.compression_flags.is_some() {
                self.stats.compressed_updates += 1;
                continue;
            }
            let code = update.update_code.as_u8();
            match update.fragmentation {
                Fragmentation::Single => self.complete(code, update.data, 1),
                Fragmentation::First => self.partial = Some((code, update.data.to_vec(), 1)),
                Fragmentation::Next | Fragmentation::Last => match self.partial.take() {
                    Some((c, mut data, n)) if c == code => {
                        data.extend_from_slice(update.data);
                        if update.fragmentation == Fragmentation::Last {
                            self.complete(code, &data, n + 1);
                        } else {
                            self.partial = Some((c, data, n + 1));
                        }
                    }
                    _ => self.stats.undecodable += 1,
                },
            }
        }
    }

    fn complete(&mut self, code: u8, data: &[u8], fragments: usize) {
        use ironrdp_pdu::bitmap::{BitmapUpdateData, Compression};
        use ironrdp_pdu::fast_path::UpdateCode;
        let st = &mut self.stats;
        if fragments > 1 {
            st.fragmented_updates += 1;
        }
        st.largest_update_bytes = st.largest_update_bytes.max(data.len());
        if code == UpdateCode::SurfaceCommands.as_u8() {
            st.surface_commands += 1;
            return;
        }
        if code == UpdateCode::NewPointer.as_u8() {
            use ironrdp_pdu::pointer::PointerAttribute;
            match ironrdp_core::decode::<PointerAttribute<'_>>(data) {
                Ok(p) if p.xor_bpp == 32 && p.color_pointer.xor_mask.len() >= 4 => {
                    let c = &p.color_pointer;
                    let first = [0, 1, 2, 3].map(|i| c.xor_mask[i]);
                    st.pointer_shapes
                        .push((c.width, c.height, c.hot_spot.x, c.hot_spot.y, first));
                }
                _ => st.undecodable += 1,
            }
            return;
        }
        if code == UpdateCode::PositionPointer.as_u8() {
            match ironrdp_core::decode::<ironrdp_pdu::pointer::Point16>(data) {
                Ok(p) => st.pointer_positions.push((p.x, p.y)),
                Err(_) => st.undecodable += 1,
            }
            return;
        }
        if code == UpdateCode::HiddenPointer.as_u8() {
            st.pointers_hidden += 1;
            return;
        }
        if code != UpdateCode::Bitmap.as_u8() {
            st.other_updates += 1;
            return;
        }
        let Ok(update) = ironrdp_core::decode::<BitmapUpdateData<'_>>(data) else {
            st.undecodable += 1;
            return;
        };
        st.bitmap_updates += 1;
        st.bitmap_rects += update.rectangles.len();
        st.max_rects_per_update = st.max_rects_per_update.max(update.rectangles.len());
        for rect in &update.rectangles {
            match (
                rect.compression_flags
                    .contains(Compression::BITMAP_COMPRESSION),
                rect.bits_per_pixel,
            ) {
                (true, 32) => st.planar_rects += 1,
                (true, _) => st.interleaved_rects += 1,
                (false, _) => st.raw_rects += 1,
            }
            if let Err(i) = st.bits_per_pixel.binary_search(&rect.bits_per_pixel) {
                st.bits_per_pixel.insert(i, rect.bits_per_pixel);
            }
            if rect.width % 4 != 0 {
                st.rects_width_not_multiple_of_4 += 1;
            }
        }
    }
}

/// How the server answered `TestClient::disconnect`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShutdownReply {
    /// Shutdown Denied (the polite answer, MS-RDPBCGR 1.3.1.4.1); the client then sent the
    /// Disconnect Provider Ultimatum.
    Denied,
    /// The server ended the session instead (FreeRDP 2 answers with a Disconnect Provider
    /// Ultimatum).
    Ended {
        reason: String,
        error_info: Option<u32>,
    },
    /// No answer within [`SHUTDOWN_TIMEOUT`], or the connection broke; the client sent the
    /// ultimatum itself.
    NoAnswer(String),
    /// The session had already ended before `disconnect`.
    AlreadyEnded,
}

/// The TCP socket (through a fault wrapper, a plain pass-through unless the config asks
/// for faults) with an optional read deadline: each read gets the time that is left.
struct Sock {
    tcp: FaultyStream<TcpStream>,
    deadline: Option<Instant>,
}

/// A TCP connection from a chosen local IPv4 address (loopback only needs no setup).
pub fn connect_from(source: std::net::Ipv4Addr, to: SocketAddr) -> io::Result<TcpStream> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrIn, bind, connect, socket};
    let SocketAddr::V4(to) = to else {
        return Err(io::Error::other("connect_from: IPv4 only"));
    };
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    bind(
        fd.as_raw_fd(),
        &SockaddrIn::from(std::net::SocketAddrV4::new(source, 0)),
    )?;
    connect(fd.as_raw_fd(), &SockaddrIn::from(to))?;
    Ok(TcpStream::from(fd))
}

/// Retries an injected `WouldBlock` the way a non-blocking client would after its next poll.
fn retry_injected<T>(mut op: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match op() {
            Err(e) if is_injected(&e) => std::thread::sleep(Duration::from_millis(1)),
            other => return other,
        }
    }
}

impl Read for Sock {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(deadline) = self.deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "deadline passed"));
            }
            self.tcp.get_ref().set_read_timeout(Some(left))?;
        }
        retry_injected(|| self.tcp.read(buf))
    }
}

impl Write for Sock {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        retry_injected(|| self.tcp.write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tcp.flush()
    }
}

type TlsStream = rustls::StreamOwned<rustls::ClientConnection, Sock>;

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    )
}

/// What the client saw of the server's intent to end the connection.
#[derive(Debug, Default, Clone, Copy)]
struct Watch {
    /// Last nonzero Set Error Info code.
    error_info: Option<u32>,
    /// A Disconnect Provider Ultimatum arrived.
    ultimatum: bool,
    /// Fast-path frames the connector dropped because they came before the connection was finalized.
    early_fast_path_frames: usize,
}

impl Watch {
    /// Looks at one server frame for a Set Error Info PDU or a Disconnect Provider Ultimatum.
    fn observe(&mut self, action: Action, frame: &[u8]) {
        if action != Action::X224 {
            return;
        }
        if let Some(code) = set_error_info_code(frame) {
            if code != 0 {
                self.error_info = Some(code);
            }
        } else if let Ok(X224(McsMessage::DisconnectProviderUltimatum(_))) =
            ironrdp_core::decode::<X224<McsMessage<'_>>>(frame)
        {
            self.ultimatum = true;
        }
    }
}

/// The errorInfo of a Set Error Info PDU (MS-RDPBCGR 2.2.5.1.1), parsed by hand so that codes
/// IronRDP does not know are still seen. `None` for any other frame.
pub fn set_error_info_code(frame: &[u8]) -> Option<u32> {
    let ctx = ironrdp_pdu::mcs::decode_send_data_indication(frame).ok()?;
    let d = ctx.user_data;
    // Share Control Header: totalLength u16, pduType u16 (low 4 bits: 7 = PDUTYPE_DATAPDU), pduSource u16;
    // Share Data Header: shareId u32, pad u8, streamId u8, uncompressedLength u16, pduType2 u8,
    // compressedType u8, compressedLength u16; then errorInfo u32.
    if d.len() < 22 || u16::from_le_bytes([d[2], d[3]]) & 0xF != 7 {
        return None;
    }
    const PDUTYPE2_SET_ERROR_INFO_PDU: u8 = 0x2F;
    const PACKET_COMPRESSED: u8 = 0x20;
    if d[14] != PDUTYPE2_SET_ERROR_INFO_PDU || d[15] & PACKET_COMPRESSED != 0 {
        return None;
    }
    Some(u32::from_le_bytes([d[18], d[19], d[20], d[21]]))
}

/// A failure during the connection sequence, before classification.
enum Failure {
    Io(io::Error),
    Connector(ConnectorError),
    CredsspErrorCode(u32),
    /// The server closed the connection after our NTLM AUTHENTICATE message, without a CredSSP
    /// errorCode: how FreeRDP 2 (and CredSSP servers before errorCode existed) reject a password.
    CredsspClosed(io::Error),
    Other(String),
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

impl From<ConnectorError> for Failure {
    fn from(e: ConnectorError) -> Self {
        Self::Connector(e)
    }
}

/// An I/O error somewhere in the error's source chain, copied.
fn io_error_in(e: &(dyn std::error::Error + 'static)) -> Option<io::Error> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<io::Error>() {
            return Some(io::Error::new(io.kind(), io.to_string()));
        }
        cur = err.source();
    }
    None
}

fn classify(failure: Failure, watch: &Watch) -> ConnectError {
    let by_error_info = |reason: String| -> Option<ConnectError> {
        let code = watch.error_info?;
        Some(if AUTH_ERROR_INFO_CODES.contains(&code) {
            ConnectError::AuthFailed {
                reason,
                error_info: Some(code),
                ntstatus: None,
            }
        } else {
            ConnectError::Refused {
                reason,
                error_info: Some(code),
            }
        })
    };
    match failure {
        Failure::CredsspClosed(e) => ConnectError::AuthFailed {
            reason: format!(
                "the server closed the connection after the NTLM AUTHENTICATE message, without an errorCode ({e})"
            ),
            error_info: watch.error_info,
            ntstatus: None,
        },
        Failure::CredsspErrorCode(ntstatus) => ConnectError::AuthFailed {
            reason: format!("CredSSP errorCode {ntstatus:#010x} from the server"),
            error_info: watch.error_info,
            ntstatus: Some(ntstatus),
        },
        Failure::Connector(e) => {
            if let Some(io) = io_error_in(&e) {
                return classify(Failure::Io(io), watch);
            }
            let reason = e.report().to_string();
            match e.kind() {
                ConnectorErrorKind::AccessDenied => ConnectError::AuthFailed {
                    reason,
                    error_info: watch.error_info,
                    ntstatus: None,
                },
                ConnectorErrorKind::Credssp(sspi_error)
                    if matches!(
                        sspi_error.error_type,
                        sspi::ErrorKind::LogonDenied | sspi::ErrorKind::NoCredentials
                    ) =>
                {
                    ConnectError::AuthFailed {
                        reason,
                        error_info: watch.error_info,
                        ntstatus: None,
                    }
                }
                ConnectorErrorKind::Negotiation(_) => ConnectError::Refused {
                    reason,
                    error_info: watch.error_info,
                },
                _ => by_error_info(reason.clone()).unwrap_or_else(|| {
                    if watch.ultimatum {
                        ConnectError::Refused {
                            reason: format!(
                                "Disconnect Provider Ultimatum from the server ({reason})"
                            ),
                            error_info: None,
                        }
                    } else {
                        ConnectError::Other(reason)
                    }
                }),
            }
        }
        Failure::Io(e) => by_error_info(format!("connection closed after Set Error Info ({e})"))
            .unwrap_or_else(|| {
                if watch.ultimatum {
                    ConnectError::Refused {
                        reason: format!("Disconnect Provider Ultimatum from the server ({e})"),
                        error_info: None,
                    }
                } else {
                    ConnectError::Io(e)
                }
            }),
        Failure::Other(s) => by_error_info(s.clone()).unwrap_or(ConnectError::Other(s)),
    }
}

mod danger {
    use rustls::DigitallySignedStruct;
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

    /// Accepts any server certificate (test servers use self-signed ones).
    #[derive(Debug)]
    pub(super) struct AcceptAnyCertificate(pub(super) Vec<rustls::SignatureScheme>);

    impl ServerCertVerifier for AcceptAnyCertificate {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            Ok(HandshakeSignatureValid::assertion())
        }

        fn verify_tls13_signature(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            Ok(HandshakeSignatureValid::assertion())
        }

        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.0.clone()
        }
    }
}

pub fn tls_config() -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let schemes = provider
        .signature_verification_algorithms
        .supported_schemes();
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(danger::AcceptAnyCertificate(schemes)))
        .with_no_client_auth();
    // MS-CSSP: TLS session resumption is not supported.
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(config))
}

/// Upgrades the socket to TLS and returns the stream and the server's public key (the
/// subjectPublicKey BIT STRING of its certificate, which CredSSP binds to).
fn tls_upgrade(sock: Sock, addr: SocketAddr) -> Result<(TlsStream, Vec<u8>), Failure> {
    let config = tls_config().map_err(|e| Failure::Other(format!("TLS config: {e}")))?;
    let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
    let conn = rustls::ClientConnection::new(config, name)
        .map_err(|e| Failure::Other(format!("TLS: {e}")))?;
    let mut tls = rustls::StreamOwned::new(conn, sock);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    let cert = tls
        .conn
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or_else(|| Failure::Other("the server sent no TLS certificate".into()))?;
    let key = subject_public_key(cert.as_ref())
        .ok_or_else(|| Failure::Other("cannot parse the server certificate's public key".into()))?;
    Ok((tls, key))
}

/// One DER element: (tag, contents, rest).
fn der_element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7F);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// Certificate → tbsCertificate → subjectPublicKeyInfo → subjectPublicKey (without the
/// unused-bits octet).
fn subject_public_key(cert_der: &[u8]) -> Option<Vec<u8>> {
    const SEQUENCE: u8 = 0x30;
    let (SEQUENCE, cert, _) = der_element(cert_der)? else {
        return None;
    };
    let (SEQUENCE, tbs, _) = der_element(cert)? else {
        return None;
    };
    let mut rest = tbs;
    let (tag, _, after) = der_element(rest)?;
    if tag == 0xA0 {
        rest = after; // [0] version
    }
    // serialNumber, signature, issuer, validity, subject
    for _ in 0..5 {
        rest = der_element(rest)?.2;
    }
    let (SEQUENCE, spki, _) = der_element(rest)? else {
        return None;
    };
    let (SEQUENCE, _, rest) = der_element(spki)? else {
        return None;
    };
    let (0x03, bits, _) = der_element(rest)? else {
        return None;
    };
    let (&0, key) = bits.split_first()? else {
        return None;
    };
    Some(key.to_vec())
}

pub fn connector_config(cfg: &ClientConfig) -> ironrdp_connector::Config {
    ironrdp_connector::Config {
        desktop_size: DesktopSize {
            width: cfg.width,
            height: cfg.height,
        },
        monitor_layout: None,
        desktop_scale_factor: 0,
        desktop_physical_size: None,
        desktop_orientation: None,
        device_scale_factor: None,
        monitor_extended_layout: None,
        relative_mouse_input: false,
        enable_tls: cfg.security == Security::Tls,
        enable_credssp: cfg.security == Security::Nla,
        enable_standard_rdp_security: false,
        credentials: Credentials::UsernamePassword {
            username: cfg.user.clone(),
            password: cfg.password.clone(),
        },
        domain: None,
        client_build: 0,
        client_name: "thinshadow-test".to_owned(),
        keyboard_type: gcc::KeyboardType::IBM_ENHANCED,
        keyboard_subtype: 0,
        keyboard_functional_keys_count: 12,
        keyboard_layout: 0x409,
        connection_type: gcc::ConnectionType::Lan,
        ime_file_name: String::new(),
        // 32 bpp and no codecs: no Surface Commands, Bitmap Codecs or Frame Acknowledge capability
        // sets, so servers use plain Bitmap Updates.
        bitmap: Some(BitmapConfig {
            lossy_compression: false,
            color_depth: 32,
            codecs: ironrdp_pdu::rdp::capability_sets::BitmapCodecs(Vec::new()),
        }),
        dig_product_id: String::new(),
        client_dir: "C:\\Windows\\System32\\mstscax.dll".to_owned(),
        alternate_shell: String::new(),
        work_dir: String::new(),
        remote_application_mode: false,
        rail_support_level: RailSupportLevel::empty(),
        platform: MajorPlatformType::UNIX,
        hardware_id: None,
        request_data: None,
        autologon: false,
        enable_audio_playback: false,
        enable_audio_capture: false,
        performance_flags: PerformanceFlags::default(),
        license_cache: None,
        timezone_info: TimezoneInfo::default(),
        compression_type: cfg.compression,
        // The pointer is not drawn into the image, so pixel checks see the screen only.
        enable_server_pointer: false,
        pointer_software_rendering: false,
        multitransport_flags: None,
        support_dyn_vc_gfx_protocol: false,
    }
}

/// Reads the next frame the sequence wants, looking at every frame on the way. Frames that do not
/// match the hint (fast-path output before the connection is finalized) are counted and dropped,
/// as `ironrdp_blocking` does.
fn read_for_hint<S: Read>(
    framed: &mut Framed<S>,
    hint: &dyn PduHint,
    watch: &mut Watch,
) -> Result<Vec<u8>, Failure> {
    loop {
        let (action, frame) = framed.read_pdu()?;
        watch.observe(action, &frame);
        match hint.find_size(&frame) {
            Ok(Some((true, _))) => return Ok(frame.to_vec()),
            Ok(_) => watch.early_fast_path_frames += 1,
            Err(e) => return Err(Failure::Other(format!("undecodable frame: {e}"))),
        }
    }
}

/// One step of an IronRDP connector sequence, reading input if it wants some.
fn sequence_step<S: Read + Write>(
    framed: &mut Framed<S>,
    sequence: &mut dyn Sequence,
    buf: &mut WriteBuf,
    watch: &mut Watch,
) -> Result<(), Failure> {
    buf.clear();
    let written = if let Some(hint) = sequence.next_pdu_hint() {
        let frame = read_for_hint(framed, hint, watch)?;
        sequence.step(&frame, framed.last_read_at(), buf)?
    } else {
        sequence.step_no_input(buf)?
    };
    if let Some(len) = written.size() {
        framed.write_all(&buf[..len])?;
    }
    Ok(())
}

/// One connector step over any stream, for tests that drive the agent's core in memory:
/// `Err` carries what failed, with the Set Error Info code the server sent on the way.
pub fn step_over<S: Read + Write>(
    framed: &mut Framed<S>,
    sequence: &mut dyn Sequence,
    buf: &mut WriteBuf,
) -> Result<(), ConnectError> {
    let mut watch = Watch::default();
    sequence_step(framed, sequence, buf, &mut watch).map_err(|f| classify(f, &watch))
}

/// CredSSP (NTLM only; the network client sspi would use for Kerberos is never needed, so a
/// suspended generator is resumed with an error).
fn perform_credssp<S: Read + Write>(
    framed: &mut Framed<S>,
    connector: &mut ClientConnector,
    server_name: ServerName,
    server_public_key: Vec<u8>,
) -> Result<(), Failure> {
    let ClientConnectorState::Credssp { selected_protocol } = connector.state else {
        return Err(Failure::Other(format!(
            "unexpected connector state for CredSSP: {:?}",
            connector.state
        )));
    };
    let (mut sequence, mut ts_request) = CredsspSequence::init(
        connector.config.credentials.clone(),
        connector.config.domain.as_deref(),
        selected_protocol,
        server_name,
        server_public_key,
        None,
    )?;
    let mut buf = WriteBuf::new();
    let mut sent = 0;
    loop {
        let client_state = {
            let mut generator = sequence.process_ts_request(ts_request);
            let mut state = generator.start();
            loop {
                match state {
                    GeneratorState::Suspended(_request) => {
                        state = generator.resume(Err(sspi::Error::new(
                            sspi::ErrorKind::NoAuthenticatingAuthority,
                            "the test client has no network client (Kerberos is not used)",
                        )));
                    }
                    GeneratorState::Completed(result) => {
                        break result.map_err(|e| {
                            ConnectorError::new("CredSSP", ConnectorErrorKind::Credssp(e))
                        })?;
                    }
                }
            }
        };
        buf.clear();
        let written = sequence.handle_process_result(client_state, &mut buf)?;
        if let Some(len) = written.size() {
            framed.write_all(&buf[..len])?;
            sent += 1;
        }
        let Some(hint) = sequence.next_pdu_hint() else {
            break;
        };
        let pdu = match framed.read_by_hint(hint) {
            Ok(pdu) => pdu,
            // NEGOTIATE, then AUTHENTICATE with pubKeyAuth: a hang-up after that is a rejection.
            Err(e)
                if sent >= 2
                    && matches!(
                        e.kind(),
                        io::ErrorKind::UnexpectedEof
                            | io::ErrorKind::ConnectionReset
                            | io::ErrorKind::ConnectionAborted
                    ) =>
            {
                return Err(Failure::CredsspClosed(e));
            }
            Err(e) => return Err(e.into()),
        };
        match sequence.decode_server_message(&pdu)? {
            Some(request) => {
                if let Some(code) = request.error_code
                    && code.0 != 0
                {
                    return Err(Failure::CredsspErrorCode(code.0));
                }
                ts_request = request;
            }
            None => break,
        }
    }
    connector.mark_credssp_as_done();
    Ok(())
}

pub struct TestClient {
    framed: Framed<TlsStream>,
    stage: ActiveStage,
    activation_factory: ConnectionActivationFactory,
    decoded: DecodedImage,
    image: Image,
    fast_path_input: bool,
    mouse: (u16, u16),
    watch: Watch,
    /// Set once the server ended the session.
    ended: Option<RunError>,
    reactivations: usize,
    fast_path: FastPathWatch,
}

impl TestClient {
    /// Connects and runs the whole connection sequence (bounded by [`CONNECT_TIMEOUT`] and
    /// [`HANDSHAKE_TIMEOUT`]).
    pub fn connect(cfg: &ClientConfig) -> Result<TestClient, ConnectError> {
        let mut watch = Watch::default();
        Self::connect_inner(cfg, &mut watch).map_err(|f| classify(f, &watch))
    }

    fn connect_inner(cfg: &ClientConfig, watch: &mut Watch) -> Result<TestClient, Failure> {
        let tcp = match cfg.source {
            Some(source) => connect_from(source, cfg.addr)?,
            None => TcpStream::connect_timeout(&cfg.addr, CONNECT_TIMEOUT)?,
        };
        tcp.set_nodelay(true)?;
        tcp.set_write_timeout(Some(WRITE_TIMEOUT))?;
        let client_addr = tcp.local_addr()?;
        let sock = Sock {
            tcp: FaultyStream::new(tcp, cfg.faults.clone()),
            deadline: Some(Instant::now() + HANDSHAKE_TIMEOUT),
        };

        let mut connector = ClientConnector::new(connector_config(cfg), client_addr);
        let mut framed = Framed::new(sock);
        // What `ironrdp_blocking::connect_begin` does, with frames looked at and I/O errors kept.
        let mut buf = WriteBuf::new();
        while !connector.should_perform_security_upgrade() {
            sequence_step(&mut framed, &mut connector, &mut buf, watch)?;
        }
        let should_upgrade = ironrdp_blocking::skip_connect_begin(&mut connector);
        let (sock, leftover) = framed.into_inner();
        if !leftover.is_empty() {
            return Err(Failure::Other(format!(
                "{} unexpected bytes from the server before the TLS handshake",
                leftover.len()
            )));
        }
        let (tls, server_public_key) = tls_upgrade(sock, cfg.addr)?;
        let _upgraded = ironrdp_blocking::mark_as_upgraded(should_upgrade, &mut connector);
        let mut framed = Framed::new(tls);

        if connector.should_perform_credssp() {
            perform_credssp(
                &mut framed,
                &mut connector,
                ServerName::new(cfg.addr.ip().to_string()),
                server_public_key,
            )?;
            if let Some(barrier) = &cfg.pause_after_login {
                barrier.wait();
                barrier.wait();
                framed.get_inner_mut().0.sock.deadline = Some(Instant::now() + HANDSHAKE_TIMEOUT);
            }
        }

        let outcome = loop {
            if connector.should_perform_multitransport() {
                buf.clear();
                let written = connector.skip_multitransport(&mut buf)?;
                if let Some(len) = written.size() {
                    framed.write_all(&buf[..len])?;
                }
                continue;
            }
            sequence_step(&mut framed, &mut connector, &mut buf, watch)?;
            if let Some(outcome) = connector.state.take_outcome() {
                break outcome;
            }
        };
        let result = match outcome {
            ConnectionOutcome::Connected(result) => result,
            ConnectionOutcome::Redirected(r) => {
                return Err(Failure::Other(format!(
                    "the server redirected the client (session {})",
                    r.session_id
                )));
            }
        };

        framed.get_inner_mut().0.sock.deadline = None;
        let fast_path_input = result
            .input_flags
            .intersects(InputFlags::FASTPATH_INPUT | InputFlags::FASTPATH_INPUT_2);
        let size = result.desktop_size;
        let stage = ActiveStageBuilder {
            static_channels: result.static_channels,
            user_channel_id: result.user_channel_id,
            io_channel_id: result.io_channel_id,
            message_channel_id: result.message_channel_id,
            share_id: result.share_id,
            compression_type: result.compression_type,
            enable_server_pointer: result.enable_server_pointer,
            pointer_software_rendering: result.pointer_software_rendering,
        }
        .build();
        Ok(TestClient {
            framed,
            stage,
            activation_factory: result.activation_factory,
            decoded: DecodedImage::new(PixelFormat::RgbA32, size.width, size.height),
            image: Image::black(size.width, size.height),
            fast_path_input,
            mouse: (0, 0),
            watch: *watch,
            ended: None,
            reactivations: 0,
            fast_path: FastPathWatch::default(),
        })
    }

    /// The desktop size of the current activation (changes after a deactivation-reactivation).
    pub fn desktop_size(&self) -> (u16, u16) {
        (self.image.width, self.image.height)
    }

    /// A copy of the desktop as decoded so far (black where nothing was drawn yet).
    pub fn image(&self) -> Image {
        self.image.clone()
    }

    /// Why the server ended the session, if it did: the last nonzero Set Error Info code seen.
    pub fn last_error_info(&self) -> Option<u32> {
        self.watch.error_info
    }

    /// How many deactivation-reactivation sequences (resizes) the client has followed.
    pub fn reactivations(&self) -> usize {
        self.reactivations
    }

    /// Fast-path frames the server sent before the connection was finalized; the connector drops
    /// them, so a server that does this loses those updates with IronRDP.
    pub fn early_fast_path_frames(&self) -> usize {
        self.watch.early_fast_path_frames
    }

    /// What kinds of updates the server sent so far in the active stage.
    pub fn stats(&self) -> &UpdateStats {
        &self.fast_path.stats
    }

    /// Whether input goes out as fast-path (the server advertised INPUT_FLAG_FASTPATH_INPUT[2]) or
    /// as slow-path Input PDUs.
    pub fn uses_fast_path_input(&self) -> bool {
        self.fast_path_input
    }

    /// Pumps server PDUs, decoding graphics into the image and following
    /// deactivation-reactivation (resize), until `done(image)` is true or `timeout` passes.
    ///
    /// `done` is called once at the start and after every PDU that changed the image.
    pub fn run_until(
        &mut self,
        timeout: Duration,
        mut done: impl FnMut(&Image) -> bool,
    ) -> Result<(), RunError> {
        if let Some(ended) = &self.ended {
            return Err(ended.clone());
        }
        if done(&self.image) {
            return Ok(());
        }
        let deadline = Instant::now() + timeout;
        loop {
            if self.pump_one(deadline)? && done(&self.image) {
                return Ok(());
            }
        }
    }

    /// Pumps server PDUs until `done` holds for the update counts, or `timeout`.
    pub fn run_until_stats(
        &mut self,
        timeout: Duration,
        mut done: impl FnMut(&UpdateStats) -> bool,
    ) -> Result<(), RunError> {
        if let Some(ended) = &self.ended {
            return Err(ended.clone());
        }
        let deadline = Instant::now() + timeout;
        while !done(self.stats()) {
            self.pump_one(deadline)?;
        }
        Ok(())
    }

    /// Pumps server PDUs for `duration` (for example to let input take effect); an error only if
    /// the session ended or broke.
    pub fn pump_for(&mut self, duration: Duration) -> Result<(), RunError> {
        match self.run_until(duration, |_| false) {
            Err(RunError::Timeout) => Ok(()),
            other => other,
        }
    }

    /// Reads and processes one server frame. Returns whether the image changed.
    fn pump_one(&mut self, deadline: Instant) -> Result<bool, RunError> {
        self.framed.get_inner_mut().0.sock.deadline = Some(deadline);
        let read = self.framed.read_pdu();
        self.framed.get_inner_mut().0.sock.deadline = None;
        let (action, frame) = match read {
            Ok(x) => x,
            Err(e) if is_timeout(&e) => return Err(RunError::Timeout),
            Err(e) => return Err(self.end(RunError::io(&e))),
        };
        self.watch.observe(action, &frame);
        match action {
            Action::FastPath => self.fast_path.observe(&frame),
            Action::X224 => self.fast_path.stats.slow_path_frames += 1,
        }
        let outputs = match self.stage.process(
            &mut self.decoded,
            action,
            &frame,
            self.framed.last_read_at(),
        ) {
            Ok(outputs) => outputs,
            // IronRDP cannot decode a Set Error Info code it does not know; it still ends the session.
            Err(e) => {
                let err = match set_error_info_code(&frame) {
                    Some(code) if code != 0 => RunError::Terminated {
                        reason: format!("Set Error Info {code:#x} ({})", e.report()),
                        error_info: Some(code),
                    },
                    _ => RunError::Protocol(e.report().to_string()),
                };
                return Err(self.end(err));
            }
        };
        if self.stage.take_bitmap_recovery_request() {
            self.fast_path.stats.malformed_bitmaps += 1;
        }
        let mut changed = false;
        for output in outputs {
            match output {
                ActiveStageOutput::ResponseFrame(bytes) if !bytes.is_empty() => {
                    self.write(&bytes)?
                }
                ActiveStageOutput::GraphicsUpdate(rect) => {
                    self.image.copy_region(&self.decoded, &rect);
                    changed = true;
                }
                ActiveStageOutput::DeactivateAll => {
                    self.reactivate(deadline)?;
                    changed = true;
                }
                ActiveStageOutput::Terminate(reason) => {
                    let error_info = self.watch.error_info;
                    return Err(self.end(RunError::Terminated {
                        reason: reason.description(),
                        error_info,
                    }));
                }
                _ => {}
            }
        }
        Ok(changed)
    }

    /// Deactivation-Reactivation Sequence (MS-RDPBCGR 1.3.1.3): capabilities exchange and
    /// finalization again, then a new image of the new size.
    fn reactivate(&mut self, deadline: Instant) -> Result<(), RunError> {
        let mut sequence = self.activation_factory.create();
        let mut buf = WriteBuf::new();
        self.framed.get_inner_mut().0.sock.deadline = Some(deadline);
        let result = loop {
            if let ConnectionActivationState::Finalized { .. }
            | ConnectionActivationState::Redirected { .. } =
                sequence.connection_activation_state()
            {
                break Ok(());
            }
            if let Err(f) =
                sequence_step(&mut self.framed, &mut sequence, &mut buf, &mut self.watch)
            {
                break Err(f);
            }
        };
        self.framed.get_inner_mut().0.sock.deadline = None;
        if let Err(f) = result {
            let err = match f {
                Failure::Io(e) if is_timeout(&e) => {
                    RunError::Protocol("timed out during reactivation".into())
                }
                Failure::Io(e) => RunError::io(&e),
                Failure::Connector(e) => {
                    RunError::Protocol(format!("reactivation: {}", e.report()))
                }
                Failure::CredsspErrorCode(_) | Failure::CredsspClosed(_) => {
                    unreachable!("no CredSSP in reactivation")
                }
                Failure::Other(s) => RunError::Protocol(format!("reactivation: {s}")),
            };
            let err = match (self.watch.error_info, &err) {
                (Some(code), RunError::Protocol(_) | RunError::Io { .. }) => RunError::Terminated {
                    reason: format!("during reactivation: {err}"),
                    error_info: Some(code),
                },
                _ => err,
            };
            return Err(self.end(err));
        }
        match sequence.connection_activation_state() {
            ConnectionActivationState::Finalized {
                desktop_size,
                share_id,
                input_flags,
                static_channel_chunk_size,
                enable_server_pointer,
                pointer_software_rendering,
                ..
            } => {
                if !self.stage.reactivate(
                    sequence.io_channel_id(),
                    sequence.user_channel_id(),
                    share_id,
                    enable_server_pointer,
                    pointer_software_rendering,
                    static_channel_chunk_size,
                ) {
                    return Err(self.end(RunError::Protocol(
                        "reactivation: invalid static channel chunk size".into(),
                    )));
                }
                self.fast_path_input = input_flags
                    .intersects(InputFlags::FASTPATH_INPUT | InputFlags::FASTPATH_INPUT_2);
                self.decoded =
                    DecodedImage::new(PixelFormat::RgbA32, desktop_size.width, desktop_size.height);
                self.image = Image::black(desktop_size.width, desktop_size.height);
                self.reactivations += 1;
                Ok(())
            }
            other => Err(self.end(RunError::Protocol(format!(
                "reactivation ended in state {other:?}"
            )))),
        }
    }

    fn end(&mut self, err: RunError) -> RunError {
        if self.ended.is_none() {
            self.ended = Some(err.clone());
        }
        err
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), RunError> {
        self.framed.write_all(bytes).map_err(|e| RunError::io(&e))
    }

    fn send_input(&mut self, fast: FastPathInputEvent, slow: InputEvent) -> io::Result<()> {
        let frames: Vec<Vec<u8>> = if self.fast_path_input {
            self.stage
                .process_fastpath_input(&mut self.decoded, &[fast])
                .map_err(|e| io::Error::other(e.report().to_string()))?
                .into_iter()
                .filter_map(|o| match o {
                    ActiveStageOutput::ResponseFrame(bytes) if !bytes.is_empty() => Some(bytes),
                    _ => None,
                })
                .collect()
        } else {
            let mut buf = WriteBuf::new();
            self.stage
                .encode_static(&mut buf, ShareDataPdu::Input(InputEventPdu(vec![slow])))
                .map_err(|e| io::Error::other(e.report().to_string()))?;
            vec![buf.into_inner()]
        };
        for frame in frames {
            self.framed.write_all(&frame)?;
        }
        Ok(())
    }

    /// A keyboard event with a set-1 scancode (e.g. 0x1E = A); `extended` for E0 keys.
    pub fn send_key(&mut self, scancode: u8, extended: bool, pressed: bool) -> io::Result<()> {
        let mut fast = KeyboardFlags::empty();
        let mut slow = ironrdp_pdu::input::scan_code::KeyboardFlags::empty();
        if !pressed {
            fast |= KeyboardFlags::RELEASE;
            slow |= ironrdp_pdu::input::scan_code::KeyboardFlags::RELEASE;
        }
        if extended {
            fast |= KeyboardFlags::EXTENDED;
            slow |= ironrdp_pdu::input::scan_code::KeyboardFlags::EXTENDED;
        }
        self.send_input(
            FastPathInputEvent::KeyboardEvent(fast, scancode),
            InputEvent::ScanCode(ScanCodePdu {
                flags: slow,
                key_code: u16::from(scancode),
            }),
        )
    }

    /// A Unicode keyboard event (one UTF-16 code unit).
    pub fn send_unicode(&mut self, ch: u16, pressed: bool) -> io::Result<()> {
        let (fast, slow) = if pressed {
            (
                KeyboardFlags::empty(),
                ironrdp_pdu::input::unicode::KeyboardFlags::empty(),
            )
        } else {
            (
                KeyboardFlags::RELEASE,
                ironrdp_pdu::input::unicode::KeyboardFlags::RELEASE,
            )
        };
        self.send_input(
            FastPathInputEvent::UnicodeKeyboardEvent(fast, ch),
            InputEvent::Unicode(UnicodePdu {
                flags: slow,
                unicode_code: ch,
            }),
        )
    }

    fn send_mouse(&mut self, pdu: MousePdu) -> io::Result<()> {
        self.stage.update_mouse_pos(pdu.x_position, pdu.y_position);
        self.send_input(FastPathInputEvent::MouseEvent(pdu), InputEvent::Mouse(pdu))
    }

    pub fn send_mouse_move(&mut self, x: u16, y: u16) -> io::Result<()> {
        self.mouse = (x, y);
        self.send_mouse(MousePdu {
            flags: PointerFlags::MOVE,
            number_of_wheel_rotation_units: 0,
            x_position: x,
            y_position: y,
        })
    }

    pub fn send_mouse_button(
        &mut self,
        button: MouseButton,
        pressed: bool,
        x: u16,
        y: u16,
    ) -> io::Result<()> {
        self.mouse = (x, y);
        let flag = match button {
            MouseButton::Left => PointerFlags::LEFT_BUTTON,
            MouseButton::Right => PointerFlags::RIGHT_BUTTON,
            MouseButton::Middle => PointerFlags::MIDDLE_BUTTON_OR_WHEEL,
            MouseButton::X1 | MouseButton::X2 => {
                let mut flags = if button == MouseButton::X1 {
                    PointerXFlags::BUTTON1
                } else {
                    PointerXFlags::BUTTON2
                };
                if pressed {
                    flags |= PointerXFlags::DOWN;
                }
                let pdu = MouseXPdu {
                    flags,
                    x_position: x,
                    y_position: y,
                };
                return self.send_input(
                    FastPathInputEvent::MouseEventEx(pdu),
                    InputEvent::MouseX(pdu),
                );
            }
        };
        self.send_mouse(MousePdu {
            flags: if pressed {
                flag | PointerFlags::DOWN
            } else {
                flag
            },
            number_of_wheel_rotation_units: 0,
            x_position: x,
            y_position: y,
        })
    }

    /// A wheel rotation at the last mouse position; `delta` in RDP units (120 per notch, positive =
    /// away from the user / right), clamped to the 9-bit range -256..=255.
    pub fn send_wheel(&mut self, vertical: bool, delta: i16) -> io::Result<()> {
        let (x, y) = self.mouse;
        self.send_mouse(MousePdu {
            flags: if vertical {
                PointerFlags::VERTICAL_WHEEL
            } else {
                PointerFlags::HORIZONTAL_WHEEL
            },
            number_of_wheel_rotation_units: delta.clamp(-256, 255),
            x_position: x,
            y_position: y,
        })
    }

    /// A Synchronize event with the client's lock-key state.
    pub fn send_sync(&mut self, caps: bool, num: bool, scroll: bool) -> io::Result<()> {
        let mut fast = SynchronizeFlags::empty();
        let mut slow = SyncToggleFlags::empty();
        if caps {
            fast |= SynchronizeFlags::CAPS_LOCK;
            slow |= SyncToggleFlags::CAPS_LOCK;
        }
        if num {
            fast |= SynchronizeFlags::NUM_LOCK;
            slow |= SyncToggleFlags::NUM_LOCK;
        }
        if scroll {
            fast |= SynchronizeFlags::SCROLL_LOCK;
            slow |= SyncToggleFlags::SCROLL_LOCK;
        }
        self.send_input(
            FastPathInputEvent::SyncEvent(fast),
            InputEvent::Sync(SyncPdu { flags: slow }),
        )
    }

    /// Client-side graceful shutdown: Shutdown Request, wait (up to [`SHUTDOWN_TIMEOUT`]) for the
    /// server's answer, Disconnect Provider Ultimatum (user requested) unless the server ended the
    /// session, TLS close_notify, TCP shutdown. Returns how the server answered.
    pub fn disconnect(mut self) -> ShutdownReply {
        let reply = if self.ended.is_some() {
            ShutdownReply::AlreadyEnded
        } else {
            self.request_shutdown()
        };
        if let ShutdownReply::NoAnswer(_) = reply {
            let ultimatum = X224(McsMessage::DisconnectProviderUltimatum(
                DisconnectProviderUltimatum::from_reason(DisconnectReason::UserRequested),
            ));
            if let Ok(bytes) = ironrdp_core::encode_vec(&ultimatum) {
                let _ = self.framed.write_all(&bytes);
            }
        }
        let (tls, _) = self.framed.get_inner_mut();
        tls.conn.send_close_notify();
        let _ = tls.flush();
        let _ = tls.sock.tcp.get_ref().shutdown(Shutdown::Both);
        reply
    }

    /// Sends `count` Shutdown Requests and reads nothing, as a client that floods the server
    /// with requests whose answers it never takes. Returns how many were written before the
    /// server closed the connection (or all of them).
    pub fn flood_shutdown_requests(&mut self, count: usize) -> usize {
        let Ok(outputs) = self.stage.graceful_shutdown() else {
            return 0;
        };
        let Some(frame) = outputs.into_iter().find_map(|output| match output {
            ActiveStageOutput::ResponseFrame(bytes) => Some(bytes),
            _ => None,
        }) else {
            return 0;
        };
        for sent in 0..count {
            if self.framed.write_all(&frame).is_err() {
                return sent;
            }
        }
        count
    }

    fn request_shutdown(&mut self) -> ShutdownReply {
        let outputs = match self.stage.graceful_shutdown() {
            Ok(outputs) => outputs,
            Err(e) => return ShutdownReply::NoAnswer(e.report().to_string()),
        };
        for output in outputs {
            if let ActiveStageOutput::ResponseFrame(bytes) = output
                && let Err(e) = self.write(&bytes)
            {
                return ShutdownReply::NoAnswer(e.to_string());
            }
        }
        let deadline = Instant::now() + SHUTDOWN_TIMEOUT;
        let before = self.watch;
        loop {
            match self.pump_one(deadline) {
                Ok(_) => {}
                // IronRDP answers Shutdown Denied with the ultimatum and reports a user-initiated
                // end; anything the server sent to end the session shows in the watch.
                Err(RunError::Terminated { reason, error_info }) => {
                    let server_ended = self.watch.ultimatum != before.ultimatum
                        || self.watch.error_info != before.error_info;
                    return if server_ended {
                        ShutdownReply::Ended { reason, error_info }
                    } else {
                        ShutdownReply::Denied
                    };
                }
                Err(e) => return ShutdownReply::NoAnswer(e.to_string()),
            }
        }
    }
}
