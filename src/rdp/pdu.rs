//! Server-to-client PDUs the agent writes outside the acceptor: error info, disconnect,
//! deactivate-all, shutdown denied.

use std::borrow::Cow;

use ironrdp_core::encode_vec;
use ironrdp_pdu::mcs::{DisconnectProviderUltimatum, DisconnectReason, SendDataIndication};
use ironrdp_pdu::rdp::client_info::CompressionType;
use ironrdp_pdu::rdp::finalization_messages::{ControlAction, ControlPdu};
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

/// The share's ID, as Windows numbers it (0x10000 + the server channel 0x3EA). IronRDP's
/// acceptor says 0, which rdesktop reads as "no Demand Active yet": it never leaves its
/// connect loop, and every error info after that is lost to it.
pub const SHARE_ID: u32 = 0x1_03EA;

fn share_data(channels: Channels, pdu: ShareDataPdu, out: &mut Vec<u8>) {
    let header = ShareControlHeader {
        share_id: SHARE_ID,
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

/// Server Synchronize PDU (MS-RDPBCGR 2.2.1.19).
pub fn synchronize(channels: Channels, out: &mut Vec<u8>) {
    let pdu = ironrdp_pdu::rdp::finalization_messages::SynchronizePdu {
        target_user_id: channels.user,
    };
    share_data(channels, ShareDataPdu::Synchronize(pdu), out);
}

/// The server's Control Cooperate (MS-RDPBCGR 2.2.1.15).
pub fn cooperate(channels: Channels, out: &mut Vec<u8>) {
    let pdu = ControlPdu {
        action: ControlAction::Cooperate,
        grant_id: 0,
        control_id: 0,
    };
    share_data(channels, ShareDataPdu::Control(pdu), out);
}

/// The server's Granted Control (MS-RDPBCGR 2.2.1.16): granted to the client's user channel.
pub fn granted_control(channels: Channels, out: &mut Vec<u8>) {
    let pdu = ControlPdu {
        action: ControlAction::GrantedControl,
        grant_id: channels.user,
        control_id: u32::from(ironrdp_pdu::rdp::capability_sets::SERVER_CHANNEL_ID),
    };
    share_data(channels, ShareDataPdu::Control(pdu), out);
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
        share_id: SHARE_ID,
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
    let mut body = [0u8; 4]; // unitId 0, then ledFlags
    body[2..].copy_from_slice(&flags.to_le_bytes());
    let pdu = RawShareData {
        pdu_source: channels.user,
        pdu_type2: SET_KEYBOARD_INDICATORS,
        body: &body,
    };
    send_data(channels, &pdu, out);
}

const SET_KEYBOARD_INDICATORS: u8 = 0x29;

/// A share data PDU with a body we write ourselves: ironrdp-pdu 0.11 decodes the raw-body
/// variants (Set Keyboard Indicators among them) but refuses to encode them.
struct RawShareData<'a> {
    pdu_source: u16,
    pdu_type2: u8,
    body: &'a [u8],
}

impl RawShareData<'_> {
    /// Share control header (6) + shareId (4) + share data header (8).
    const HEADERS: usize = 18;
    const PDUTYPE_DATAPDU_V1: u16 = 0x17;
    const STREAM_MED: u8 = 2;
}

impl ironrdp_core::Encode for RawShareData<'_> {
    fn encode(&self, dst: &mut ironrdp_core::WriteCursor<'_>) -> ironrdp_core::EncodeResult<()> {
        ironrdp_core::ensure_size!(in: dst, size: self.size());
        let total = u16::try_from(self.size())
            .map_err(|_| ironrdp_core::other_err!("RawShareData", "body too long"))?;
        dst.write_u16(total);
        dst.write_u16(Self::PDUTYPE_DATAPDU_V1);
        dst.write_u16(self.pdu_source);
        dst.write_u32(0); // shareId, as our other share data PDUs
        dst.write_u8(0); // pad1
        dst.write_u8(Self::STREAM_MED);
        dst.write_u16(total - Self::HEADERS as u16); // uncompressedLength, as ironrdp-pdu writes it
        dst.write_u8(self.pdu_type2);
        dst.write_u8(0); // compressedType: none
        dst.write_u16(0); // compressedLength
        dst.write_slice(self.body);
        Ok(())
    }

    fn name(&self) -> &'static str {
        "RawShareData"
    }

    fn size(&self) -> usize {
        Self::HEADERS + self.body.len()
    }
}

#[cfg(test)]
mod tests {
    use ironrdp_core::decode;
    use ironrdp_pdu::mcs::SendDataIndication;
    use ironrdp_pdu::rdp::headers::{ShareControlHeader, ShareControlPdu, ShareDataPdu};
    use ironrdp_pdu::x224::X224;

    use super::*;

    #[test]
    fn keyboard_indicators_decode_as_ironrdp_reads_them() {
        let channels = Channels {
            io: 1003,
            user: 1007,
        };
        let mut out = Vec::new();
        set_keyboard_indicators(channels, false, true, true, false, &mut out);
        assert!(!out.is_empty(), "nothing was encoded");
        let X224(indication) = decode::<X224<SendDataIndication<'_>>>(&out).unwrap();
        assert_eq!(indication.channel_id, 1003);
        let header: ShareControlHeader = decode(&indication.user_data).unwrap();
        assert_eq!(header.pdu_source, 1007);
        let ShareControlPdu::Data(data) = header.share_control_pdu else {
            panic!("not a data pdu: {:?}", header.share_control_pdu);
        };
        // unitId 0, ledFlags NUM (2) | CAPS (4)
        assert_eq!(
            data.share_data_pdu,
            ShareDataPdu::SetKeyboardIndicators(vec![0, 0, 6, 0])
        );
    }
}
