//! thinshadow: a one-thread RDP agent for Linux thin clients.
//!
//! ```text
//!  fb0 / xwd / synthetic ─► screen::Source ─► screen::Damage (tile hashes)
//!        ─► screen::BitmapEncoder (planar, fast-path) ─► net::Transport (TLS) ─► admin
//!  admin ─► net::Transport ─► rdp::Connection (acceptor, CredSSP, input PDUs)
//!        ─► input::InputSink
//!  agent: the mio loop that owns all of the above and moves bytes between them
//!  policy: who may connect (allowlist, failed-login lockout, access modes), sans-IO
//!  state: the persisted blob (password, publishing), written atomically
//! ```
//! Every layer but `agent` and `net` is sans-IO: bytes and time in, bytes and events out.

pub mod agent;
pub mod cli;
pub mod input;
pub mod log;
pub mod net;
pub mod policy;
pub mod rdp;
pub mod screen;
pub mod state;
