//! The control socket: how the thin client's UI and the CLI talk to the agent.
//!
//! JSON lines over a Unix socket (default `/run/thinshadow/control.sock`). Each request
//! line gets one reply line; `watch` then streams event lines. The codec (`json`,
//! `lines`, `request`, `reply`) and `authorize` are sans-IO; `socket::Server` is the mio
//! side the agent owns, `client` the blocking side the CLI uses.
//!
//! Rules of this layer:
//! - Nothing a peer sends can panic the agent or grow its memory: lines are capped at
//!   [`MAX_LINE`], clients at [`socket::MAX_CLIENTS`], queued output per client too.
//! - Malformed or oversized input gets an error reply naming the problem, then the
//!   connection is closed; a denied request gets an error reply only.
//! - Who may do what is decided from SO_PEERCRED by [`authorize`], never by the request.

mod auth;
pub mod client;
pub mod json;
mod lines;
pub mod peer;
mod place;
pub mod reply;
mod request;
pub mod socket;

pub use auth::{Denied, LocalUser, PeerCred, authorize};
pub use lines::{LineError, LineReader, MAX_LINE};
pub use place::SOCKET_MODE;
pub use request::{ModeKind, Request, RequestError};
pub use socket::{ClientId, Incoming, Server};

/// Where the agent listens unless told otherwise.
pub const DEFAULT_PATH: &str = "/run/thinshadow/control.sock";
