//! TLS and the byte streams: what the agent's sockets carry, without the sockets (the
//! agent's shell owns those). It decides nothing about a connection's life: the agent's core
//! does.

pub mod tls;
pub mod tls_store;
pub mod wire;

pub use tls::{Identity, KeyType};
pub use wire::{MAX_PENDING_OUTPUT, Wire};
