//! The RDP protocol side: handshake (ironrdp-acceptor), NLA, the active session's input
//! and control PDUs. Sans-IO: bytes in, bytes and events out.

pub mod caps;
pub mod connection;
pub mod credssp;
pub mod pdu;

pub use connection::{ConnError, Connection, Event, Settings};
pub use pdu::EndReason;
