//! Sockets and TLS: the only place bytes meet the network.

pub mod tls;
pub mod tls_store;
pub mod transport;

pub use tls::{Identity, KeyType};
pub use transport::{MAX_PENDING_OUTPUT, ReadStatus, Transport};
