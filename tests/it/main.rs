//! The integration tests, in one binary (one link, one set of helpers in `common`): real
//! IronRDP clients in-process against the agent over loopback, the core on a virtual clock,
//! the state store under power cuts, the control socket, fault injection, fuzz regressions.
//! Pick a group with its module name: `cargo test --test it credentials::`.

mod common;

mod core_clock;
mod credentials;
mod faults;
mod fuzz_regressions;
mod handshake_limits;
mod local_prompt;
mod policy_access;
mod policy_audit;
mod policy_control;
mod policy_session;
mod security_redteam;
mod security_sessions;
mod session;
mod state_keeper;
mod state_powercut;
mod state_publish;
mod test_client;
mod tls_identity;
