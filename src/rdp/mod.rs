//! The RDP protocol side: handshake (ironrdp-acceptor), NLA, the active session's input
//! and control PDUs. Sans-IO: bytes in, bytes and events out. It never touches a socket,
//! the clock or a device, and does not decide who gets the session (the agent's core does).

pub mod caps;
pub mod connection;
pub mod credssp;
mod lenient;
pub mod nla;
pub mod pdu;

pub use connection::{Activation, ConnError, Connection, Event, Settings};
pub use pdu::EndReason;

/// The framing the connection uses, for the fuzz targets.
#[cfg(feature = "test-hooks")]
pub(crate) use connection::next_frame as frame_len;
pub use connection::{MAX_FRAME, MAX_HANDSHAKE_BYTES};
#[cfg(feature = "test-hooks")]
pub(crate) fn credssp_frame_len(buf: &[u8]) -> Result<Option<usize>, credssp::CredsspError> {
    credssp::Credssp::frame_len(buf)
}
