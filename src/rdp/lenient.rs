//! What Windows' RDP listener accepts and IronRDP's acceptor does not, set right before it
//! decodes (bounds checked; the meaning of the frame is kept).
//!
//! - A client that joins fewer channels than it was given (aardwolf joins the I/O channel,
//!   never its user channel, without asking to skip channel joins) and goes on with Client
//!   Info: the acceptor still waits for joins, so the channels left are joined for it and
//!   the confirms kept back (the client asked for none).
//! - A Data PDU whose share control totalLength is not its real size (aardwolf declares
//!   payload + 24 instead of + 18): IronRDP reads the difference as padding that is not
//!   there. The real size, from the MCS length, is written in. (uncompressedLength, also
//!   off in aardwolf's PDUs, is not read by IronRDP.)
//! - Windows answers each finalization PDU as it arrives (Synchronize after the Confirm
//!   Active, Cooperate, Granted Control); the acceptor answers only after the Font List.
//!   rdesktop waits for each answer before it sends its Font List, aardwolf for the
//!   Synchronize: `EarlyAnswers` sends them in Windows' order and holds the acceptor's back.
//! - The Demand Active's shareId: the acceptor writes 0; Windows' is nonzero, and rdesktop
//!   waits for a nonzero one (`with_share_id`).
//! - Erect Domain Request `04 00 01 00 01` (aardwolf: a zero-length PER integer) needs
//!   nothing: ironrdp-pdu 0.11 reads a zero-length integer as 0 (a test pins that).

use ironrdp_acceptor::{Acceptor, AcceptorState, ChannelConnectionState};
use ironrdp_connector::Sequence as _;
use ironrdp_core::{WriteBuf, decode, encode_vec};
use ironrdp_pdu::mcs::{ChannelJoinRequest, SendDataIndication, SendDataRequest};
use ironrdp_pdu::x224::X224;

/// TPKT (4) + X.224 data TPDU header (3).
const MCS_START: usize = 7;
/// MCS SendDataRequest: its CHOICE index (25) in the top six bits.
const SEND_DATA_REQUEST: u8 = 25;
/// Share control pduType DATA (7) with version 1 (0x10).
const DATA_PDU: u16 = 0x0017;

/// The channels the acceptor still waits for when the client has moved on to sending data;
/// `None` when it waits for nothing or `frame` is not MCS data.
fn channels_left(acceptor: &Acceptor, frame: &[u8]) -> Option<(u16, Vec<u16>)> {
    let state = acceptor.state().as_any().downcast_ref::<AcceptorState>()?;
    let AcceptorState::ChannelConnection { connection, .. } = state else {
        return None;
    };
    let inner = connection
        .state()
        .as_any()
        .downcast_ref::<ChannelConnectionState>()?;
    let ChannelConnectionState::WaitChannelJoinRequest { remaining } = inner else {
        return None;
    };
    let data = decode::<X224<SendDataRequest<'_>>>(frame).ok()?;
    let mut left: Vec<u16> = remaining.iter().copied().collect();
    left.sort_unstable();
    Some((data.0.initiator_id, left))
}

/// Joins, on the client's behalf, the channels it did not join before sending `frame`.
/// Returns the channels joined (empty: nothing to do); the confirms are not sent.
pub(super) fn join_left_channels(
    acceptor: &mut Acceptor,
    frame: &[u8],
) -> Result<Vec<u16>, String> {
    let Some((initiator_id, left)) = channels_left(acceptor, frame) else {
        return Ok(Vec::new());
    };
    let mut unsent = WriteBuf::new();
    for &channel_id in &left {
        let request = encode_vec(&X224(ChannelJoinRequest {
            initiator_id,
            channel_id,
        }))
        .map_err(|e| e.to_string())?;
        acceptor
            .step(&request, None, &mut unsent)
            .map_err(|e| e.to_string())?;
        // The confirm.
        acceptor
            .step_no_input(&mut unsent)
            .map_err(|e| e.to_string())?;
    }
    Ok(left)
}

pub(super) fn awaits_confirm_active(acceptor: &Acceptor) -> bool {
    let state = acceptor.state().as_any().downcast_ref::<AcceptorState>();
    matches!(state, Some(AcceptorState::CapabilitiesWaitConfirm { .. }))
}

pub(super) fn awaits_confirm_or_finalization(acceptor: &Acceptor) -> bool {
    let state = acceptor.state().as_any().downcast_ref::<AcceptorState>();
    matches!(
        state,
        Some(
            AcceptorState::CapabilitiesWaitConfirm { .. }
                | AcceptorState::ConnectionFinalization { .. }
        )
    )
}

/// The acceptor's finalization step, by name ("WaitControlCooperate", ...).
pub(super) fn finalization_stage(acceptor: &Acceptor) -> Option<&'static str> {
    let state = acceptor.state().as_any().downcast_ref::<AcceptorState>();
    let Some(AcceptorState::ConnectionFinalization { finalization, .. }) = state else {
        return None;
    };
    Some(finalization.state().name())
}

/// The acceptor's answers, in its order; `EarlyAnswers::sent` counts how many went out early.
const ANSWERS: [&str; 3] = [
    "SendSynchronizeConfirm",
    "SendControlCooperateConfirm",
    "SendGrantedControlConfirm",
];

/// The finalization answers sent before the acceptor would (Windows' order), per activation.
#[derive(Debug, Default)]
pub(super) struct EarlyAnswers {
    channels: Option<super::pdu::Channels>,
    sent: usize,
}

impl EarlyAnswers {
    /// The Confirm Active `frame` was taken: the server's Synchronize, on its channels.
    pub(super) fn confirm_active(&mut self, frame: &[u8], out: &mut Vec<u8>) {
        *self = EarlyAnswers::default();
        let Ok(data) = decode::<X224<SendDataRequest<'_>>>(frame) else {
            return;
        };
        let channels = super::pdu::Channels {
            io: data.0.channel_id,
            user: data.0.initiator_id,
        };
        super::pdu::synchronize(channels, out);
        *self = EarlyAnswers {
            channels: Some(channels),
            sent: 1,
        };
    }

    /// The acceptor took a client PDU and moved from `before` to where it is now: the
    /// answer to a Control Cooperate or a Request Control, each once and in order.
    pub(super) fn took(&mut self, before: Option<&str>, acceptor: &Acceptor, out: &mut Vec<u8>) {
        let Some(channels) = self.channels else {
            return;
        };
        match (before, finalization_stage(acceptor), self.sent) {
            (Some("WaitControlCooperate"), Some("WaitRequestControl"), 1) => {
                super::pdu::cooperate(channels, out);
                self.sent = 2;
            }
            (Some("WaitRequestControl"), Some("WaitFontList"), 2) => {
                super::pdu::granted_control(channels, out);
                self.sent = 3;
            }
            _ => {}
        }
    }

    /// The acceptor's next step writes an answer that already went out: drop its output.
    pub(super) fn already_sent(&self, acceptor: &Acceptor) -> bool {
        finalization_stage(acceptor)
            .and_then(|stage| ANSWERS.iter().position(|a| *a == stage))
            .is_some_and(|index| index < self.sent)
    }
}

/// The acceptor's next step writes the Demand Active (first activation or a reactivation).
pub(super) fn sends_demand_active(acceptor: &Acceptor) -> bool {
    let state = acceptor.state().as_any().downcast_ref::<AcceptorState>();
    matches!(state, Some(AcceptorState::CapabilitiesSendServer { .. }))
}

/// Sets the shareId of the Demand Active in `frame` (one MCS Send Data Indication) to
/// `SHARE_ID`; false, changing nothing, when `frame` is not one.
pub(super) fn with_share_id(frame: &mut [u8]) -> bool {
    let Ok(data) = decode::<X224<SendDataIndication<'_>>>(frame) else {
        return false;
    };
    // The user data runs to the frame's end: share control header, then shareId.
    let start = frame.len() - data.0.user_data.len();
    let Some(header) = frame.get(start..start + 10) else {
        return false;
    };
    // pduType: DEMANDACTIVEPDU (1) with protocol version 1 (0x10).
    if u16::from_le_bytes([header[2], header[3]]) != 0x0011 {
        return false;
    }
    frame[start + 6..start + 10].copy_from_slice(&super::pdu::SHARE_ID.to_le_bytes());
    true
}

/// `frame` is an MCS Send Data Request holding a share Data PDU (input, refresh, ...), not
/// a Confirm Active.
pub(super) fn is_share_data(frame: &[u8]) -> bool {
    let Ok(data) = decode::<X224<SendDataRequest<'_>>>(frame) else {
        return false;
    };
    let user = data.0.user_data.as_ref();
    user.len() >= 4 && u16::from_le_bytes([user[2], user[3]]) == DATA_PDU
}

/// `frame` with its Data PDU's totalLength set to the real size, or `None` when it is not
/// an MCS data frame holding a Data PDU or its length is already right.
/// Returns (the copy, the declared length, the real one).
pub(super) fn share_data_length(frame: &[u8]) -> Option<(Vec<u8>, u16, u16)> {
    let mcs = frame.get(MCS_START..)?;
    let (&choice, rest) = mcs.split_first()?;
    if choice >> 2 != SEND_DATA_REQUEST {
        return None;
    }
    // initiator, channel id, priority and segmentation: 5 bytes; then a PER length.
    let &first = rest.get(5)?;
    let (len, len_size) = if first & 0x80 == 0 {
        (usize::from(first), 1)
    } else {
        let &second = rest.get(6)?;
        (usize::from(first & 0x3f) << 8 | usize::from(second), 2)
    };
    let start = MCS_START + 1 + 5 + len_size;
    let user_data = frame.get(start..start.checked_add(len)?)?;
    let declared = u16::from_le_bytes([*user_data.first()?, *user_data.get(1)?]);
    let pdu_type = u16::from_le_bytes([*user_data.get(2)?, *user_data.get(3)?]);
    let real = u16::try_from(len).ok()?;
    if pdu_type != DATA_PDU || declared == real {
        return None;
    }
    let mut fixed = frame.to_vec();
    fixed[start..start + 2].copy_from_slice(&real.to_le_bytes());
    Some((fixed, declared, real))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ironrdp_pdu::mcs::ErectDomainPdu;
    use ironrdp_pdu::rdp::headers::{ShareControlHeader, ShareControlPdu, ShareDataPdu};

    /// aardwolf's Synchronize PDU: totalLength = uncompressedLength = payload + 24.
    fn aardwolf_synchronize() -> Vec<u8> {
        let share = [
            0x1e, 0x00, // totalLength 30 (real 22)
            0x17, 0x00, // DATA, version 1
            0xea, 0x03, // pduSource 1002
            0xea, 0x03, 0x01, 0x00, // shareId
            0x00, 0x01, // pad, streamId
            0x1c, 0x00, // uncompressedLength 28
            0x1f, 0x00, 0x00, 0x00, // Synchronize, no compression, compressedLength 0
            0x01, 0x00, 0xea, 0x03, // SYNCMSGTYPE_SYNC, targetUser
        ];
        let mut frame = vec![0x03, 0x00, 0x00, 0x00, 0x02, 0xf0, 0x80];
        frame.extend_from_slice(&[0x64, 0x00, 0x01, 0x03, 0xeb, 0x70, share.len() as u8]);
        frame.extend_from_slice(&share);
        let len = frame.len() as u16;
        frame[2..4].copy_from_slice(&len.to_be_bytes());
        frame
    }

    fn share_pdu(frame: &[u8]) -> Result<ShareControlHeader, String> {
        let data = decode::<X224<SendDataRequest<'_>>>(frame).map_err(|e| e.to_string())?;
        decode::<ShareControlHeader>(data.0.user_data.as_ref()).map_err(|e| e.to_string())
    }

    #[test]
    fn an_over_declared_total_length_is_set_to_the_real_size() {
        let frame = aardwolf_synchronize();
        // What IronRDP makes of it as sent.
        assert!(share_pdu(&frame).is_err());
        let (fixed, declared, real) = share_data_length(&frame).unwrap();
        assert_eq!((declared, real), (30, 22));
        let header = share_pdu(&fixed).unwrap();
        let ShareControlPdu::Data(data) = header.share_control_pdu else {
            panic!("not a data pdu");
        };
        assert!(matches!(data.share_data_pdu, ShareDataPdu::Synchronize(_)));
        // Already right: left alone.
        assert!(share_data_length(&fixed).is_none());
    }

    #[test]
    fn other_frames_and_short_ones_are_left_alone() {
        let frame = aardwolf_synchronize();
        for len in 0..frame.len() {
            assert!(share_data_length(&frame[..len]).is_none(), "cut at {len}");
        }
        // Client Info: a security header (SEC_INFO_PKT), not a share control header.
        let mut info = frame.clone();
        info[14..18].copy_from_slice(&[0x40, 0x00, 0x00, 0x00]);
        assert!(share_data_length(&info).is_none());
        // Not a SendDataRequest (Erect Domain).
        assert!(share_data_length(&[3, 0, 0, 12, 2, 0xf0, 0x80, 4, 1, 0, 1, 0]).is_none());
        // A long PER length that runs past the frame.
        let mut long = frame.clone();
        long[13] = 0x80;
        long.insert(14, 0xff);
        assert!(share_data_length(&long).is_none());
    }

    #[test]
    fn aardwolf_erect_domain_request_decodes() {
        let frame = [3u8, 0, 0, 12, 2, 0xf0, 0x80, 0x04, 0x00, 0x01, 0x00, 0x01];
        let pdu = decode::<X224<ErectDomainPdu>>(&frame).unwrap().0;
        assert_eq!((pdu.sub_height, pdu.sub_interval), (0, 0));
    }
}
