//! thinshadow: a one-thread RDP agent for Linux thin clients.
//!
//! ```text
//!  fb0 / xwd / synthetic ─► screen::Source ─► screen::Damage (tile hashes)
//!        ─► screen::BitmapEncoder (planar, fast-path) ─► net::Wire (TLS) ─► admin
//!  admin ─► net::Wire ─► rdp::Connection (acceptor, CredSSP, input PDUs)
//!        ─► input::InputSink
//!  agent: `agent::Core` decides (connections, the session, screen, policy, keeper) with
//!         time passed in; the mio shell around it owns sockets, signals and devices
//!  policy: who may connect (allowlist, failed-login lockout, access modes), sans-IO
//!  state: the persisted blob (password, modes, login counts), written atomically;
//!         rotation, the publish hook, and `state::Keeper` that the agent drives
//!  config: the serve settings file (TOML), merged under the command-line flags
//!  control: the Unix control socket (JSON lines) for the local UI and the CLI
//!  audit: where the policy's audit lines go (stderr or syslog, a size-bounded file)
//!  prompt: the built-in local prompt (`--local-prompt fb`): a box on the mirrored screen,
//!          answers from the local keyboards (evdev)
//! ```
//! Every layer but the agent's shell (`agent/mod.rs`), `audit`, the file and process shell of
//! `state` (`save`, `load`, `Keeper`, the hook runner) and `prompt::keyboards` is sans-IO:
//! bytes and time in, bytes and events out.

#![deny(unsafe_code)]

pub mod agent;
pub mod audit;
pub mod cli;
pub mod config;
pub mod control;
#[cfg(feature = "test-hooks")]
#[doc(hidden)]
pub mod fuzzing;
pub mod input;
pub mod log;
pub mod net;
pub mod policy;
pub mod prompt;
pub mod rdp;
pub mod screen;
pub mod state;
#[allow(unsafe_code)]
mod sys;
