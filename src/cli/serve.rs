//! `thinshadow serve`: everything the agent needs, in order, each failure a clear message.

use std::time::{SystemTime, UNIX_EPOCH};

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use super::ServeArgs;
use crate::agent::{Agent, AgentConfig};
use crate::input::{CountingSink, InputSink};
use crate::net::Identity;
use crate::state;
use crate::{info, warn};

pub fn run(args: &ServeArgs) -> Result<(), String> {
    // Block the stop signals before anything else so only the signalfd sees them.
    let mut mask = SigSet::empty();
    for signal in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        mask.add(signal);
    }
    mask.thread_block()
        .map_err(|e| format!("cannot block signals: {e}"))?;
    let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .map_err(|e| format!("cannot create a signalfd: {e}"))?;

    state::ensure_dir(&args.state_dir)
        .map_err(|e| format!("state directory {}: {e}", args.state_dir.display()))?;
    let identity = Identity::load_or_create(&args.state_dir).map_err(|e| e.to_string())?;

    let source =
        crate::screen::open(&args.screen).map_err(|e| format!("screen {}: {e}", args.screen))?;

    let mut current = state::load(&args.state_dir).into_state();
    // A new password at every start of the agent.
    current.password =
        state::password::generate().map_err(|e| format!("no randomness for the password: {e}"))?;
    current.password_issued_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    current.user = args.user.clone();
    current.port = args.listen.port();

    let mut config = AgentConfig::new(args.listen, &args.user, &current.password);
    config.handshake_timeout = args.handshake_timeout;
    config.frame_interval = args.frame_interval;
    config.max_handshakes = args.max_handshakes;

    let sink: Box<dyn InputSink> = match crate::input::uinput::open() {
        Ok(sink) => {
            info!("input: uinput keyboard and pointer ready");
            Box::new(sink)
        }
        Err(e) => {
            warn!("view-only: admins see the screen but cannot type or point: {e}");
            Box::new(CountingSink::default())
        }
    };
    let mut agent = Agent::new(config, &identity, source, sink)
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    // Publish only once the port is really ours.
    current.port = agent.local_addr().port();
    state::save(&args.state_dir, &current).map_err(|e| format!("cannot save state: {e}"))?;
    info!(
        "password rotated; `thinshadow creds --state-dir {}` shows it (certificate sha256 {})",
        args.state_dir.display(),
        identity.fingerprint()
    );
    agent
        .watch_signals(signals)
        .map_err(|e| format!("cannot watch signals: {e}"))?;
    agent.run().map_err(|e| format!("event loop failed: {e}"))
}
