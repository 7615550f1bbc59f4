//! One RDP connection as a sans-IO state machine: plaintext bytes in, bytes and events out.
//!
//! The transport (TCP, then TLS once [`Event::UpgradeToTls`] is seen) lives in `net`; the
//! screen output is written by the caller while [`Connection::is_active`]. Every byte a
//! client sends passes through [`Connection::receive`], which never panics on bad input:
//! it returns an error, and whatever it appended to `out` (a negotiation failure, a CredSSP
//! error) is still sent before the caller closes.

use core::mem;

use ironrdp_acceptor::{Acceptor, AcceptorResult, AcceptorState, DesktopSize};
use ironrdp_connector::Sequence as _;
use ironrdp_core::{WriteBuf, decode};
use ironrdp_pdu::input::fast_path::{
    FastPathInput, FastPathInputEvent, KeyboardFlags as FpKeyboardFlags,
};
use ironrdp_pdu::input::mouse::PointerFlags;
use ironrdp_pdu::input::mouse_x::PointerXFlags;
use ironrdp_pdu::input::{InputEvent as PduInputEvent, InputEventPdu};
use ironrdp_pdu::mcs::{DisconnectReason, McsMessage, SendDataRequest};
use ironrdp_pdu::nego::SecurityProtocol;
use ironrdp_pdu::rdp::ClientInfoPdu;
use ironrdp_pdu::rdp::client_info::{ClientInfoFlags, CompressionType};
use ironrdp_pdu::rdp::headers::{ShareControlHeader, ShareControlPdu, ShareDataPdu};
use ironrdp_pdu::x224::X224;
use ironrdp_pdu::{Action, find_size};
use ironrdp_svc::StaticChannelSet;

use super::caps::{ClientLimits, server_capabilities};
use super::credssp::{Credssp, CredsspError, Step, early_user_auth_result};
use super::lenient;
use super::pdu::{self, Channels, EndReason};
use crate::input::{InputEvent, MouseButton};

/// Largest frame we buffer: a TPKT is at most 64 KiB, a fast-path PDU 32 KiB, and a
/// CredSSP TsRequest from a real client a few KiB.
pub const MAX_FRAME: usize = 64 * 1024;
/// What a client may send before its session is active (a real one sends a few KB: MCS
/// connect, Client Info, Confirm Active, the finalization PDUs).
pub const MAX_HANDSHAKE_BYTES: usize = 1024 * 1024;

/// The account and keys a connection is checked against.
#[derive(Clone)]
pub struct Settings {
    pub user: String,
    pub password: String,
    /// SubjectPublicKeyInfo key bits of our TLS certificate (CredSSP binds to it).
    pub server_public_key: Vec<u8>,
    pub width: u16,
    pub height: u16,
}

/// The active phase a connection reached (first time or after a reactivation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Activation {
    pub width: u16,
    pub height: u16,
    pub reactivation: bool,
    /// The largest update the client reassembles.
    pub max_request_size: u32,
    /// The client does screen-to-screen copies (ScrBlt orders).
    pub scr_blt: bool,
    /// The client reads planar bitmaps without an alpha plane.
    pub skip_alpha: bool,
    /// The client's Revision 2 bitmap caches, when it also draws MemBlt.
    pub bitmap_cache: Option<super::caps::CacheCells>,
    /// The client takes compressed bitmaps without their TS_CD_HEADER.
    pub no_compression_header: bool,
    /// The client's pointer cache takes New Pointer updates.
    pub new_pointers: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Send what is in `out` in the clear, then start TLS; [`Connection::take_leftover`]
    /// holds any bytes that already belong to the TLS stream.
    UpgradeToTls,
    Authenticated {
        user: String,
    },
    /// The session is live; graphics may flow.
    Accepted(Activation),
    Input(InputEvent),
    /// `true`: the client is minimised and wants no graphics.
    SuppressOutput(bool),
    /// The client asks for this area again (inclusive bounds).
    Refresh {
        left: u16,
        top: u16,
        right: u16,
        bottom: u16,
    },
    /// The client ended the session (disconnect ultimatum).
    ClientClosed,
}

#[derive(Debug)]
pub enum ConnError {
    Protocol(String),
    AuthFailed(String),
    Oversized(usize),
    Closed,
}

impl std::fmt::Display for ConnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnError::Protocol(reason) => write!(f, "protocol error: {reason}"),
            ConnError::AuthFailed(reason) => write!(f, "authentication failed: {reason}"),
            ConnError::Oversized(len) => {
                write!(f, "frame of {len} bytes is over the {MAX_FRAME}-byte limit")
            }
            ConnError::Closed => write!(f, "connection already closed"),
        }
    }
}

enum Phase {
    Accepting(Box<Acceptor>),
    Credssp {
        acceptor: Box<Acceptor>,
        credssp: Box<Credssp>,
        hybrid_ex: bool,
    },
    Active(Box<Acceptor>),
    Closed,
}

pub struct Connection {
    phase: Phase,
    settings: Settings,
    inbuf: Vec<u8>,
    scratch: WriteBuf,
    channels: Option<Channels>,
    /// Set once the account was checked (NLA: after CredSSP; TLS: after Client Info).
    authenticated: bool,
    client_name: String,
    /// The bulk compression the client accepts (its Client Info PDU), None: none.
    compression: Option<CompressionType>,
    /// Finalization answers sent as the client's PDUs came (Windows' order).
    early: lenient::EarlyAnswers,
    /// Bytes taken since the connection (or its last activation) started; the acceptor keeps
    /// every non-Font-List frame of the finalization, and with TLS security the password is
    /// checked only once it is over, so this bounds what an unauthenticated client can park.
    handshake_bytes: usize,
}

impl Connection {
    pub fn new(settings: Settings) -> Self {
        let security =
            SecurityProtocol::SSL | SecurityProtocol::HYBRID | SecurityProtocol::HYBRID_EX;
        let size = DesktopSize {
            width: settings.width,
            height: settings.height,
        };
        // No credentials in the acceptor: NLA runs through our own CredSSP driver, and for
        // TLS we compare Client Info ourselves (case-insensitive user, constant-time password).
        let acceptor = Acceptor::new(
            security,
            size,
            server_capabilities(size.width, size.height),
            None,
        );
        Connection {
            phase: Phase::Accepting(Box::new(acceptor)),
            settings,
            inbuf: Vec::new(),
            scratch: WriteBuf::new(),
            channels: None,
            authenticated: false,
            client_name: String::new(),
            compression: None,
            early: lenient::EarlyAnswers::default(),
            handshake_bytes: 0,
        }
    }

    /// An active session with its channels joined, without a handshake: what the fuzz
    /// target for the active phase starts from. The acceptor inside is a fresh one, so a
    /// `resize` on this connection is not meaningful.
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub fn active_for_fuzzing(settings: Settings) -> Self {
        let mut conn = Connection::new(settings);
        let Phase::Accepting(acceptor) = mem::replace(&mut conn.phase, Phase::Closed) else {
            unreachable!("a new connection is accepting");
        };
        conn.phase = Phase::Active(acceptor);
        conn.channels = Some(Channels {
            io: 1003,
            user: 1002,
        });
        conn.authenticated = true;
        conn
    }

    /// Bytes held for a frame not yet complete (at most one frame's worth after `receive`).
    pub fn buffered(&self) -> usize {
        self.inbuf.len()
    }

    /// The highest bulk compression the client decompresses (from its Client Info PDU), or
    /// None when it asked for none. Known once the session was accepted.
    pub fn compression(&self) -> Option<CompressionType> {
        self.compression
    }

    pub fn is_active(&self) -> bool {
        matches!(self.phase, Phase::Active(_))
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    pub fn is_authenticated(&self) -> bool {
        self.authenticated
    }

    /// Bytes received after the point of the TLS upgrade: they are TLS records.
    pub fn take_leftover(&mut self) -> Vec<u8> {
        mem::take(&mut self.inbuf)
    }

    /// Feeds plaintext from the client. Appends replies to `out` and what happened to `events`.
    pub fn receive(
        &mut self,
        data: &[u8],
        out: &mut Vec<u8>,
        events: &mut Vec<Event>,
    ) -> Result<(), ConnError> {
        if self.is_closed() {
            return Err(ConnError::Closed);
        }
        // Bounded by the transport's read budget; after processing at most one partial
        // frame (under MAX_FRAME, checked by the framing) is left.
        self.inbuf.extend_from_slice(data);
        match self.process(out, events) {
            Ok(()) => Ok(()),
            Err(e) => self.fail(e),
        }
    }

    fn fail(&mut self, error: ConnError) -> Result<(), ConnError> {
        self.phase = Phase::Closed;
        self.inbuf = Vec::new();
        Err(error)
    }

    /// Ends the session on purpose, telling the client why (when the MCS layer is up).
    pub fn end(&mut self, reason: EndReason, out: &mut Vec<u8>) {
        if let Some(channels) = self.channels {
            pdu::set_error_info(channels, reason, out);
            pdu::disconnect_ultimatum(out);
        }
        self.phase = Phase::Closed;
    }

    /// Tells the client the thin client's lock LEDs (only while the session is active).
    pub fn keyboard_indicators(&self, leds: crate::input::LockState, out: &mut Vec<u8>) {
        if let (Some(channels), true) = (self.channels, self.is_active()) {
            pdu::set_keyboard_indicators(
                channels,
                leds.scroll,
                leds.num,
                leds.caps,
                leds.kana,
                out,
            );
        }
    }

    /// Follows a new screen size with a deactivation-reactivation sequence.
    pub fn resize(&mut self, width: u16, height: u16, out: &mut Vec<u8>) -> Result<(), ConnError> {
        self.settings.width = width;
        self.settings.height = height;
        let Phase::Active(acceptor) = mem::replace(&mut self.phase, Phase::Closed) else {
            return Err(ConnError::Protocol(
                "resize outside an active session".into(),
            ));
        };
        let Some(channels) = self.channels else {
            return Err(ConnError::Protocol(
                "resize before channels were joined".into(),
            ));
        };
        pdu::deactivate_all(channels, out);
        let size = DesktopSize { width, height };
        let acceptor =
            Acceptor::new_deactivation_reactivation(*acceptor, StaticChannelSet::new(), size)
                .map_err(|e| ConnError::Protocol(format!("reactivation: {e}")))?;
        self.phase = Phase::Accepting(Box::new(acceptor));
        let mut events = Vec::new();
        self.process(out, &mut events)
    }

    fn process(&mut self, out: &mut Vec<u8>, events: &mut Vec<Event>) -> Result<(), ConnError> {
        loop {
            let progressed = match mem::replace(&mut self.phase, Phase::Closed) {
                Phase::Accepting(acceptor) => self.accepting(acceptor, out, events)?,
                Phase::Credssp {
                    acceptor,
                    credssp,
                    hybrid_ex,
                } => self.credssp(acceptor, credssp, hybrid_ex, out, events)?,
                Phase::Active(acceptor) => self.active(acceptor, out, events)?,
                Phase::Closed => false,
            };
            if !progressed || events.contains(&Event::UpgradeToTls) {
                return Ok(());
            }
        }
    }

    /// One acceptor step; `false` when it waits for more bytes.
    fn accepting(
        &mut self,
        mut acceptor: Box<Acceptor>,
        out: &mut Vec<u8>,
        events: &mut Vec<Event>,
    ) -> Result<bool, ConnError> {
        if acceptor.reached_security_upgrade().is_some() {
            acceptor.mark_security_upgrade_as_done();
            events.push(Event::UpgradeToTls);
            self.phase = if acceptor.should_perform_credssp() {
                self.start_credssp(acceptor)?
            } else {
                Phase::Accepting(acceptor)
            };
            return Ok(true);
        }

        self.scratch.clear();
        let mut unsent = false;
        let mut confirm_active = None;
        let mut before = None;
        let mut demand_active = false;
        let step = match acceptor.next_pdu_hint() {
            None => {
                // Windows' order: this answer went out when the client's PDU came.
                unsent = self.early.already_sent(&acceptor);
                demand_active = lenient::sends_demand_active(&acceptor);
                acceptor.step_no_input(&mut self.scratch)
            }
            Some(_) => {
                let Some((action, len)) = next_frame(&self.inbuf)? else {
                    self.phase = Phase::Accepting(acceptor);
                    return Ok(false);
                };
                if action == Action::X224 {
                    let joined = lenient::join_left_channels(&mut acceptor, &self.inbuf[..len])
                        .map_err(|e| ConnError::Protocol(format!("handshake: {e}")))?;
                    if !joined.is_empty() {
                        crate::debug!(
                            "client sent data before joining channels {joined:?}: joined for it"
                        );
                        // The frame is read again once the acceptor is past the joins.
                        self.phase = Phase::Accepting(acceptor);
                        return Ok(true);
                    }
                }
                self.handshake_bytes += len;
                if self.handshake_bytes > MAX_HANDSHAKE_BYTES {
                    return Err(ConnError::Protocol(format!(
                        "handshake: over {MAX_HANDSHAKE_BYTES} bytes before the session is active"
                    )));
                }
                let mut frame: Vec<u8> = self.inbuf.drain(..len).collect();
                if action == Action::FastPath {
                    // Input sent while a reactivation is under way: the acceptor only takes X.224.
                    self.phase = Phase::Accepting(acceptor);
                    return Ok(true);
                }
                if lenient::awaits_confirm_or_finalization(&acceptor) {
                    frame = with_real_share_length(frame);
                }
                if lenient::awaits_confirm_active(&acceptor) {
                    if lenient::is_share_data(&frame) {
                        // Slow-path input sent while a reactivation's Demand Active was on its
                        // way: Windows drops it; the acceptor would end the session.
                        crate::debug!("dropping a data pdu that came before the confirm active");
                        self.phase = Phase::Accepting(acceptor);
                        return Ok(true);
                    }
                    confirm_active = Some(frame.clone());
                }
                if awaits_client_info(&acceptor) {
                    self.compression = client_compression(&frame);
                }
                before = lenient::finalization_stage(&acceptor);
                acceptor.step(&frame, None, &mut self.scratch)
            }
        };
        // On error the acceptor may still have written a negotiation failure or access denied.
        if demand_active && step.is_ok() {
            let start = out.len();
            out.extend_from_slice(self.scratch.filled());
            if !lenient::with_share_id(&mut out[start..]) {
                crate::warn!("demand active not found where it was written: share id left at 0");
            }
        } else if !unsent {
            out.extend_from_slice(self.scratch.filled());
        }
        step.map_err(|e| ConnError::Protocol(format!("handshake: {e}")))?;
        if let Some(frame) = confirm_active.filter(|_| !lenient::awaits_confirm_active(&acceptor)) {
            self.early.confirm_active(&frame, out);
        }
        self.early.took(before, &acceptor, out);

        if let Some(result) = acceptor.get_result() {
            self.accepted(acceptor, result, out, events)?;
        } else {
            self.phase = Phase::Accepting(acceptor);
        }
        Ok(true)
    }

    fn start_credssp(&mut self, acceptor: Box<Acceptor>) -> Result<Phase, ConnError> {
        // HYBRID_EX is chosen whenever the client offers it (acceptor order).
        let hybrid_ex = acceptor_protocol_is_hybrid_ex(&acceptor);
        let credssp = Credssp::new(
            &self.settings.user,
            &self.settings.password,
            self.settings.server_public_key.clone(),
            self.client_name.clone(),
        )
        .map_err(|e| ConnError::Protocol(e.to_string()))?;
        Ok(Phase::Credssp {
            acceptor,
            credssp: Box::new(credssp),
            hybrid_ex,
        })
    }

    fn credssp(
        &mut self,
        mut acceptor: Box<Acceptor>,
        mut credssp: Box<Credssp>,
        hybrid_ex: bool,
        out: &mut Vec<u8>,
        events: &mut Vec<Event>,
    ) -> Result<bool, ConnError> {
        let len = match Credssp::frame_len(&self.inbuf) {
            Ok(Some(len)) if len > MAX_FRAME => return Err(ConnError::Oversized(len)),
            Ok(Some(len)) if len <= self.inbuf.len() => len,
            Ok(_) => {
                self.phase = Phase::Credssp {
                    acceptor,
                    credssp,
                    hybrid_ex,
                };
                return Ok(false);
            }
            Err(e) => return Err(ConnError::Protocol(e.to_string())),
        };
        let frame: Vec<u8> = self.inbuf.drain(..len).collect();
        match credssp.step(&frame, out) {
            Ok(Step::Continue) => {
                self.phase = Phase::Credssp {
                    acceptor,
                    credssp,
                    hybrid_ex,
                };
            }
            Ok(Step::Done) => {
                if hybrid_ex {
                    early_user_auth_result(true, out);
                }
                acceptor.mark_credssp_as_done();
                self.authenticated = true;
                events.push(Event::Authenticated {
                    user: self.settings.user.clone(),
                });
                self.phase = Phase::Accepting(acceptor);
            }
            Err(CredsspError::LogonFailed) => {
                if hybrid_ex {
                    early_user_auth_result(false, out);
                }
                let reason = credssp.failure_reason().unwrap_or("login failed");
                return Err(ConnError::AuthFailed(format!(
                    "wrong user name or password (nla: {reason})"
                )));
            }
            Err(e) => return Err(ConnError::Protocol(e.to_string())),
        }
        Ok(true)
    }

    fn accepted(
        &mut self,
        acceptor: Box<Acceptor>,
        result: AcceptorResult,
        out: &mut Vec<u8>,
        events: &mut Vec<Event>,
    ) -> Result<(), ConnError> {
        let channels = Channels {
            io: result.io_channel_id,
            user: result.user_channel_id,
        };
        self.channels = Some(channels);
        self.handshake_bytes = 0;
        if !self.authenticated {
            // TLS security: the password came in the Client Info PDU.
            let ok = result.credentials.as_ref().is_some_and(|c| {
                c.username.eq_ignore_ascii_case(&self.settings.user)
                    && constant_time_eq(c.password.as_bytes(), self.settings.password.as_bytes())
            });
            if !ok {
                pdu::set_error_info(channels, EndReason::BadCredentials, out);
                pdu::disconnect_ultimatum(out);
                return Err(ConnError::AuthFailed(
                    "wrong user name or password (tls)".into(),
                ));
            }
            self.authenticated = true;
            events.push(Event::Authenticated {
                user: self.settings.user.clone(),
            });
        }
        let limits = ClientLimits::from_capabilities(&result.capabilities);
        events.push(Event::Accepted(Activation {
            width: self.settings.width,
            height: self.settings.height,
            reactivation: result.reactivation,
            max_request_size: limits.max_request_size,
            scr_blt: limits.scr_blt,
            skip_alpha: limits.skip_alpha,
            bitmap_cache: limits.bitmap_cache,
            no_compression_header: limits.no_compression_header,
            new_pointers: limits.new_pointers,
        }));
        for raw in &result.input_events {
            self.input_frame(raw, out, events)?;
        }
        self.phase = Phase::Active(acceptor);
        Ok(())
    }

    fn active(
        &mut self,
        acceptor: Box<Acceptor>,
        out: &mut Vec<u8>,
        events: &mut Vec<Event>,
    ) -> Result<bool, ConnError> {
        self.phase = Phase::Active(acceptor);
        let Some((_, len)) = next_frame(&self.inbuf)? else {
            return Ok(false);
        };
        let frame: Vec<u8> = self.inbuf.drain(..len).collect();
        self.input_frame(&frame, out, events)?;
        Ok(!self.is_closed())
    }

    /// A whole frame of the active phase: fast-path input or an X.224 PDU.
    fn input_frame(
        &mut self,
        frame: &[u8],
        out: &mut Vec<u8>,
        events: &mut Vec<Event>,
    ) -> Result<(), ConnError> {
        let Some((action, _)) = next_frame(frame)? else {
            return Err(ConnError::Protocol("truncated frame".into()));
        };
        let fixed = (action == Action::X224).then(|| with_real_share_length(frame.to_vec()));
        let frame = fixed.as_deref().unwrap_or(frame);
        match action {
            Action::FastPath => {
                let input: FastPathInput = decode(frame)
                    .map_err(|e| ConnError::Protocol(format!("fast-path input: {e}")))?;
                for event in input.input_events() {
                    fast_path_event(event, events);
                }
            }
            Action::X224 => {
                let message = decode::<X224<McsMessage<'_>>>(frame)
                    .map_err(|e| ConnError::Protocol(format!("mcs: {e}")))?;
                match message.0 {
                    McsMessage::SendDataRequest(data) => {
                        let io = self.channels.map(|c| c.io);
                        if Some(data.channel_id) == io {
                            self.io_channel_pdu(&data.user_data, out, events)?;
                        } else {
                            crate::debug!("ignoring data on channel {}", data.channel_id);
                        }
                    }
                    McsMessage::DisconnectProviderUltimatum(ultimatum) => {
                        if ultimatum.reason == DisconnectReason::UserRequested {
                            crate::debug!("client sent a disconnect ultimatum");
                        }
                        events.push(Event::ClientClosed);
                        self.phase = Phase::Closed;
                    }
                    _ => crate::debug!("ignoring an mcs message in the active phase"),
                }
            }
        }
        Ok(())
    }

    fn io_channel_pdu(
        &mut self,
        data: &[u8],
        out: &mut Vec<u8>,
        events: &mut Vec<Event>,
    ) -> Result<(), ConnError> {
        let header: ShareControlHeader =
            decode(data).map_err(|e| ConnError::Protocol(format!("share control: {e}")))?;
        let ShareControlPdu::Data(data) = header.share_control_pdu else {
            crate::debug!("ignoring a share control pdu in the active phase");
            return Ok(());
        };
        match data.share_data_pdu {
            ShareDataPdu::Input(InputEventPdu(list)) => {
                for event in &list {
                    slow_path_event(event, events);
                }
            }
            ShareDataPdu::ShutdownRequest => {
                // The client then sends its disconnect ultimatum (MS-RDPBCGR 1.3.1.4.1).
                if let Some(channels) = self.channels {
                    pdu::shutdown_denied(channels, out);
                }
            }
            ShareDataPdu::SuppressOutput(pdu) => {
                events.push(Event::SuppressOutput(pdu.desktop_rect.is_none()))
            }
            ShareDataPdu::RefreshRectangle(pdu) => {
                for area in pdu.areas_to_refresh {
                    events.push(Event::Refresh {
                        left: area.left,
                        top: area.top,
                        right: area.right,
                        bottom: area.bottom,
                    });
                }
            }
            other => crate::debug!("ignoring share data pdu {}", ironrdp_core::name(&other)),
        }
        Ok(())
    }
}

fn acceptor_protocol_is_hybrid_ex(acceptor: &Acceptor) -> bool {
    let state = acceptor.state().as_any().downcast_ref::<AcceptorState>();
    matches!(state, Some(AcceptorState::Credssp { protocol, .. }) if protocol.contains(SecurityProtocol::HYBRID_EX))
}

/// A Data PDU's share control totalLength set to its real size (see `lenient`).
fn with_real_share_length(frame: Vec<u8>) -> Vec<u8> {
    match lenient::share_data_length(&frame) {
        Some((fixed, declared, real)) => {
            crate::debug!("share data totalLength {declared} read as the real {real}");
            fixed
        }
        None => frame,
    }
}

impl Connection {
    /// Where the handshake is, for a log line ("ConnectionFinalization", "credssp", ...).
    pub fn stage(&self) -> &'static str {
        match &self.phase {
            Phase::Accepting(acceptor) | Phase::Active(acceptor) => acceptor.state().name(),
            Phase::Credssp { .. } => "credssp",
            Phase::Closed => "closed",
        }
    }
}

fn awaits_client_info(acceptor: &Acceptor) -> bool {
    let state = acceptor.state().as_any().downcast_ref::<AcceptorState>();
    matches!(state, Some(AcceptorState::SecureSettingsExchange { .. }))
}

/// The compression a Client Info PDU offers; the acceptor reads the rest of it (and reports
/// a malformed one), so a frame that does not parse here just means no compression.
fn client_compression(frame: &[u8]) -> Option<CompressionType> {
    let data: X224<SendDataRequest<'_>> = decode(frame).ok()?;
    let info: ClientInfoPdu = decode(data.0.user_data.as_ref()).ok()?;
    let info = info.client_info;
    info.flags
        .contains(ClientInfoFlags::COMPRESSION)
        .then_some(info.compression_type)
}

/// Size and kind of the next whole frame in `buf`, if it is all there.
pub(crate) fn next_frame(buf: &[u8]) -> Result<Option<(Action, usize)>, ConnError> {
    match find_size(buf) {
        Ok(Some(info)) if info.length > MAX_FRAME => Err(ConnError::Oversized(info.length)),
        Ok(Some(info)) if info.length == 0 => Err(ConnError::Protocol("zero-length frame".into())),
        Ok(Some(info)) if info.length <= buf.len() => Ok(Some((info.action, info.length))),
        Ok(_) => Ok(None),
        Err(e) => Err(ConnError::Protocol(format!("framing: {e}"))),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn fast_path_event(event: &FastPathInputEvent, events: &mut Vec<Event>) {
    let converted = match *event {
        FastPathInputEvent::KeyboardEvent(flags, scancode) => Some(InputEvent::Key {
            scancode,
            extended: flags.contains(FpKeyboardFlags::EXTENDED),
            extended1: flags.contains(FpKeyboardFlags::EXTENDED1),
            pressed: !flags.contains(FpKeyboardFlags::RELEASE),
        }),
        FastPathInputEvent::UnicodeKeyboardEvent(flags, code) => Some(InputEvent::Unicode {
            code,
            pressed: !flags.contains(FpKeyboardFlags::RELEASE),
        }),
        FastPathInputEvent::SyncEvent(flags) => {
            use ironrdp_pdu::input::fast_path::SynchronizeFlags as F;
            Some(InputEvent::Sync {
                scroll: flags.contains(F::SCROLL_LOCK),
                num: flags.contains(F::NUM_LOCK),
                caps: flags.contains(F::CAPS_LOCK),
                kana: flags.contains(F::KANA_LOCK),
            })
        }
        FastPathInputEvent::MouseEvent(ref mouse) => {
            mouse_events(
                mouse.flags,
                mouse.number_of_wheel_rotation_units,
                mouse.x_position,
                mouse.y_position,
                events,
            );
            None
        }
        FastPathInputEvent::MouseEventEx(ref mouse) => {
            mouse_x_event(mouse.flags, mouse.x_position, mouse.y_position, events);
            None
        }
        FastPathInputEvent::MouseEventRel(_) | FastPathInputEvent::QoeEvent(_) => None,
    };
    events.extend(converted.map(Event::Input));
}

fn slow_path_event(event: &PduInputEvent, events: &mut Vec<Event>) {
    use ironrdp_pdu::input::scan_code::KeyboardFlags as K;
    use ironrdp_pdu::input::sync::SyncToggleFlags as S;
    let converted = match event {
        PduInputEvent::ScanCode(key) => Some(InputEvent::Key {
            // Set-1 scancodes fit in a byte; the PDU field is 16 bits wide.
            scancode: (key.key_code & 0xff) as u8,
            extended: key.flags.contains(K::EXTENDED),
            extended1: key.flags.contains(K::EXTENDED_1),
            pressed: !key.flags.contains(K::RELEASE),
        }),
        PduInputEvent::Unicode(key) => Some(InputEvent::Unicode {
            code: key.unicode_code,
            pressed: !key
                .flags
                .contains(ironrdp_pdu::input::unicode::KeyboardFlags::RELEASE),
        }),
        PduInputEvent::Sync(sync) => Some(InputEvent::Sync {
            scroll: sync.flags.contains(S::SCROLL_LOCK),
            num: sync.flags.contains(S::NUM_LOCK),
            caps: sync.flags.contains(S::CAPS_LOCK),
            kana: sync.flags.contains(S::KANA_LOCK),
        }),
        PduInputEvent::Mouse(mouse) => {
            mouse_events(
                mouse.flags,
                mouse.number_of_wheel_rotation_units,
                mouse.x_position,
                mouse.y_position,
                events,
            );
            None
        }
        PduInputEvent::MouseX(mouse) => {
            mouse_x_event(mouse.flags, mouse.x_position, mouse.y_position, events);
            None
        }
        PduInputEvent::MouseRel(_) | PduInputEvent::Unused(_) => None,
    };
    events.extend(converted.map(Event::Input));
}

fn mouse_events(flags: PointerFlags, wheel: i16, x: u16, y: u16, events: &mut Vec<Event>) {
    let mut push = |event| events.push(Event::Input(event));
    if flags.contains(PointerFlags::VERTICAL_WHEEL)
        || flags.contains(PointerFlags::HORIZONTAL_WHEEL)
    {
        // The PDU decoder already applied the 9-bit two's complement sign.
        push(InputEvent::Wheel {
            vertical: flags.contains(PointerFlags::VERTICAL_WHEEL),
            delta: wheel,
        });
        return;
    }
    if flags.contains(PointerFlags::MOVE) {
        push(InputEvent::MouseMove { x, y });
    }
    let pressed = flags.contains(PointerFlags::DOWN);
    for (flag, button) in [
        (PointerFlags::LEFT_BUTTON, MouseButton::Left),
        (PointerFlags::RIGHT_BUTTON, MouseButton::Right),
        (PointerFlags::MIDDLE_BUTTON_OR_WHEEL, MouseButton::Middle),
    ] {
        if flags.contains(flag) {
            push(InputEvent::MouseButton {
                button,
                pressed,
                x,
                y,
            });
        }
    }
}

fn mouse_x_event(flags: PointerXFlags, x: u16, y: u16, events: &mut Vec<Event>) {
    let pressed = flags.contains(PointerXFlags::DOWN);
    for (flag, button) in [
        (PointerXFlags::BUTTON1, MouseButton::Extra1),
        (PointerXFlags::BUTTON2, MouseButton::Extra2),
    ] {
        if flags.contains(flag) {
            events.push(Event::Input(InputEvent::MouseButton {
                button,
                pressed,
                x,
                y,
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            user: "admin".into(),
            password: "secret".into(),
            server_public_key: vec![4; 65],
            width: 640,
            height: 480,
        }
    }

    /// X.224 Connection Request asking for TLS and NLA (RDP_NEG_REQ with SSL | HYBRID).
    const CONNECTION_REQUEST: [u8; 19] =
        [3, 0, 0, 19, 14, 0xe0, 0, 0, 0, 0, 0, 1, 0, 8, 0, 3, 0, 0, 0];

    #[test]
    fn negotiation_confirms_nla_and_asks_for_tls() {
        let mut conn = Connection::new(settings());
        let (mut out, mut events) = (Vec::new(), Vec::new());
        conn.receive(&CONNECTION_REQUEST, &mut out, &mut events)
            .unwrap();
        assert_eq!(events, vec![Event::UpgradeToTls]);
        // TPKT + X.224 Connection Confirm + RDP_NEG_RSP (type 2) selecting HYBRID (2).
        assert_eq!(out.len(), 19);
        assert_eq!((out[11], out[15]), (2, 2));
        assert!(conn.take_leftover().is_empty());
    }

    #[test]
    fn bytes_split_anywhere_give_the_same_answer() {
        for split in 1..CONNECTION_REQUEST.len() {
            let mut conn = Connection::new(settings());
            let (mut out, mut events) = (Vec::new(), Vec::new());
            conn.receive(&CONNECTION_REQUEST[..split], &mut out, &mut events)
                .unwrap();
            assert!(
                out.is_empty() && events.is_empty(),
                "answered a partial request at {split}"
            );
            conn.receive(&CONNECTION_REQUEST[split..], &mut out, &mut events)
                .unwrap();
            assert_eq!(events, vec![Event::UpgradeToTls], "split at {split}");
        }
    }

    #[test]
    fn a_zero_length_frame_closes_the_connection_for_good() {
        let mut conn = Connection::new(settings());
        let (mut out, mut events) = (Vec::new(), Vec::new());
        // The largest TPKT just waits for its bytes; a zero length is an error.
        assert!(matches!(next_frame(&[0x03, 0, 0xff, 0xff]), Ok(None)));
        let err = conn
            .receive(&[0x03, 0, 0, 0], &mut out, &mut events)
            .unwrap_err();
        assert!(matches!(err, ConnError::Protocol(_)), "{err}");
        assert!(conn.is_closed());
        assert!(matches!(
            conn.receive(b"more", &mut out, &mut events),
            Err(ConnError::Closed)
        ));
    }

    #[test]
    fn random_bytes_never_panic() {
        // A small xorshift so the inputs are the same on every run.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..3000 {
            let mut conn = Connection::new(settings());
            let (mut out, mut events) = (Vec::new(), Vec::new());
            let len = (next() % 300) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if round % 2 == 0 && bytes.len() > 4 {
                // Look like a TPKT so the acceptor, not just the framing, sees the bytes.
                bytes[0] = 3;
                bytes[1] = 0;
                bytes[2] = 0;
                bytes[3] = bytes.len() as u8;
            }
            let _ = conn.receive(&bytes, &mut out, &mut events);
        }
    }

    #[test]
    fn constant_time_eq_compares_whole_strings() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
