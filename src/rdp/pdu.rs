//! Server-to-client PDUs the agent writes outside the acceptor: error info, disconnect,
//! deactivate-all, shutdown denied.

use std::borrow::Cow;

use ironrdp_core::encode_vec;
use ironrdp_pdu::mcs::{DisconnectProviderUltimatum, DisconnectReason, SendDataIndication};
use ironrdp_pdu::rdp::client_info::CompressionType;
use ironrdp_pdu::rdp::headers::{
    CompressionFlags, ServerDeactivateAll, ShareControlHeader, ShareControlPdu, ShareDataHeader,
    ShareDataPdu, StreamPriority,
};
use ironrdp_pdu::rdp::server_error_info::{
    ErrorInfo, ProtocolIndependentCode, ServerSetErrorInfoPdu,
};
use ironrdp_pdu::x224::X224;

/// Why the server ends a session; each maps to the MS-RDPBCGR error-info code that makes
/// the client say why (and not auto-reconnect).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    /// Another admin is connected, or access was refused.
    Denied,
    /// Wrong user name or password (TLS security, where the check happens after the handshake).
    BadCredentials,
    /// The local user (or the agent's operator) ended the session.
    ByUser,
    /// The agent is stopping.
    Shutdown,
}

impl EndReason {
    fn code(self) -> ProtocolIndependentCode {
        match self {
            EndReason::Denied => ProtocolIndependentCode::ServerDeniedConnection,
            EndReason::BadCredentials => ProtocolIndependentCode::ServerInsufficientPrivileges,
            EndReason::ByUser => ProtocolIndependentCode::RpcInitiatedDisconnectByuser,
            EndReason::Shutdown => ProtocolIndependentCode::RpcInitiatedDisconnect,
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Channels {
    pub io: u16,
    pub user: u16,
}

fn send_data<T: ironrdp_core::Encode>(channels: Channels, pdu: &T, out: &mut Vec<u8>) {
    // Encoding our own well-formed PDUs into memory cannot fail; a failure would be a bug
    // we log rather than a reason to take the agent down.
    let result = encode_vec(pdu).and_then(|user_data| {
        encode_vec(&X224(SendDataIndication {
            initiator_id: channels.user,
            channel_id: channels.io,
            user_data: Cow::Owned(user_data),
        }))
    });
    match result {
        Ok(bytes) => out.extend_from_slice(&bytes),
        Err(e) => crate::error!("encoding a server pdu failed: {e}"),
    }
}

fn share_data(channels: Channels, pdu: ShareDataPdu, out: &mut Vec<u8>) {
    let header = ShareControlHeader {
        share_id: 0,
        pdu_source: channels.user,
        share_control_pdu: ShareControlPdu::Data(ShareDataHeader {
            share_data_pdu: pdu,
            stream_priority: StreamPriority::Medium,
            compression_flags: CompressionFlags::empty(),
            compression_type: CompressionType::K8,
        }),
    };
    send_data(channels, &header, out);
}

pub fn set_error_info(channels: Channels, reason: EndReason, out: &mut Vec<u8>) {
    let pdu = ServerSetErrorInfoPdu(ErrorInfo::ProtocolIndependentCode(reason.code()));
    share_data(channels, ShareDataPdu::ServerSetErrorInfo(pdu), out);
}

pub fn shutdown_denied(channels: Channels, out: &mut Vec<u8>) {
    share_data(channels, ShareDataPdu::ShutdownDenied, out);
}

pub fn disconnect_ultimatum(out: &mut Vec<u8>) {
    let pdu = X224(DisconnectProviderUltimatum::from_reason(
        DisconnectReason::ProviderInitiated,
    ));
    match encode_vec(&pdu) {
        Ok(bytes) => out.extend_from_slice(&bytes),
        Err(e) => crate::error!("encoding the disconnect ultimatum failed: {e}"),
    }
}

pub fn deactivate_all(channels: Channels, out: &mut Vec<u8>) {
    let header = ShareControlHeader {
        share_id: 0,
        pdu_source: channels.io,
        share_control_pdu: ShareControlPdu::ServerDeactivateAll(ServerDeactivateAll),
    };
    send_data(channels, &header, out);
}

/// TS_SET_KEYBOARD_INDICATORS_PDU: the thin client's lock LEDs, so the client's keyboard agrees.
pub fn set_keyboard_indicators(
    channels: Channels,
    scroll: bool,
    num: bool,
    caps: bool,
    kana: bool,
    out: &mut Vec<u8>,
) {
    let flags =
        u16::from(scroll) | u16::from(num) << 1 | u16::from(caps) << 2 | u16::from(kana) << 3;
    let mut body = Vec::with_capacity(4);
    body.extend_from_slice(&0u16.to_le_bytes()); // unitId
    body.extend_from_slice(&flags.to_le_bytes());
    share_data(channels, ShareDataPdu::SetKeyboardIndicators(body), out);
}
