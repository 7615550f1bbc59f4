//! Sockets and TLS: the only place bytes meet the network.

pub mod tls;
pub mod transport;

pub use tls::Identity;
pub use transport::{MAX_PENDING_OUTPUT, ReadStatus, Transport};
