//! Runs the real agent in-process on a loopback port, on its own thread, for a test.

use std::net::SocketAddr;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use std::sync::Arc;

use thinshadow::agent::{Agent, AgentConfig, StopHandle, Watermarks};
use thinshadow::input::RecordingSink;
use thinshadow::net::Identity;
use thinshadow::screen::Source;

pub const USER: &str = "admin";

pub struct RunningAgent {
    pub addr: SocketAddr,
    pub password: String,
    pub input: RecordingSink,
    /// The agent's buffer high-water marks.
    pub watermarks: Arc<Watermarks>,
    stop: StopHandle,
    thread: Option<JoinHandle<()>>,
}

pub struct Options {
    pub handshake_timeout: Duration,
    pub max_handshakes: usize,
    pub handshakes_per_address: usize,
    /// How long a handshake may send nothing before a newcomer may take its slot.
    pub handshake_idle: Duration,
    /// Audit lines of connections that never log in.
    pub audit_limits: thinshadow::policy::AuditLimits,
    pub frame_interval: Duration,
    /// Run the agent with a credentials keeper (rotation, lockout) over this state.
    pub keeper: Option<thinshadow::state::KeeperConfig>,
    /// The access policy's settings (always on; by default allow-auto sessions start at
    /// once, as `consent_timeout_auto = 0` does).
    pub access: thinshadow::policy::AccessSettings,
    /// The modes the agent starts with (when no keeper brings its own).
    pub modes: thinshadow::policy::Modes,
    /// Serve the control socket here; the test's own uid is the local user.
    pub control: Option<std::path::PathBuf>,
    /// Where audit lines go (stderr by default).
    pub audit: thinshadow::audit::AuditConfig,
    /// Process names that mean the local user is in a remote session.
    pub remote_processes: Vec<String>,
    /// The local prompt (`--local-prompt fb`), on this screen and these keyboards.
    pub local_prompt: Option<thinshadow::agent::PromptConfig>,
    /// ECDSA by default: quick to make in every test.
    pub key_type: thinshadow::net::KeyType,
    /// Runs after each step of every state save (with `keeper`): failed and torn writes.
    pub save_faults: Option<thinshadow::state::keeper::SaveFaults>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            handshake_timeout: Duration::from_secs(15),
            max_handshakes: 8,
            handshakes_per_address: 8,
            handshake_idle: Duration::from_secs(3),
            audit_limits: thinshadow::policy::AuditLimits::default(),
            frame_interval: Duration::from_millis(20),
            keeper: None,
            access: immediate(),
            modes: thinshadow::policy::Modes::default(),
            control: None,
            audit: thinshadow::audit::AuditConfig::default(),
            remote_processes: Vec::new(),
            local_prompt: None,
            key_type: thinshadow::net::KeyType::Ecdsa,
            save_faults: None,
        }
    }
}

/// Allow-auto sessions start at once (`consent_timeout_auto = 0`).
pub fn immediate() -> thinshadow::policy::AccessSettings {
    let mut settings = thinshadow::policy::AccessSettings::default();
    settings.allow_auto.timeout = Duration::ZERO;
    settings
}

/// Starts an agent whose screen comes from `make_source` (called on the agent's thread).
pub fn start<F>(options: Options, make_source: F) -> RunningAgent
where
    F: FnOnce() -> Box<dyn Source> + Send + 'static,
{
    let password = thinshadow::state::password::generate().expect("randomness");
    let input = RecordingSink::default();
    let (ready_tx, ready_rx) = mpsc::channel();
    let sink = input.clone();
    let agent_password = password.clone();
    let thread = std::thread::spawn(move || {
        let mut config = AgentConfig::new("127.0.0.1:0".parse().unwrap(), USER, &agent_password);
        config.handshake_timeout = options.handshake_timeout;
        config.slots.global = options.max_handshakes;
        config.slots.per_address = options.handshakes_per_address;
        config.slots.idle_after = options.handshake_idle;
        config.audit_limits = options.audit_limits;
        config.frame_interval = options.frame_interval;
        config.access = options.access;
        config.modes = options.modes;
        config.audit = options.audit;
        config.remote_processes = options.remote_processes;
        config.control = options
            .control
            .map(|path| thinshadow::agent::ControlConfig {
                path,
                local: thinshadow::control::LocalUser {
                    uid: Some(nix::unistd::getuid().as_raw()),
                    gid: None,
                },
            });
        config.local_prompt = options.local_prompt;
        let identity = Identity::generate(options.key_type).expect("certificate");
        let mut agent =
            Agent::new(config, &identity, make_source(), Box::new(sink)).expect("agent starts");
        if let Some(keeper_config) = options.keeper {
            let (now, unix) = (std::time::Instant::now(), unix_now());
            let loaded = thinshadow::state::load(&keeper_config.state_dir).into_state();
            let mut keeper = thinshadow::state::Keeper::start(keeper_config, &loaded, now, unix)
                .expect("keeper");
            keeper.set_port(agent.local_addr().port());
            keeper.commit(now, unix).expect("state saved");
            // Faults start after the first save, as on a disk that fails later.
            if let Some(faults) = options.save_faults {
                keeper = keeper.with_save_faults(faults);
            }
            agent.set_keeper(keeper);
        }
        ready_tx
            .send((agent.local_addr(), agent.stop_handle(), agent.watermarks()))
            .unwrap();
        agent.run().expect("event loop");
    });
    let (addr, stop, watermarks) = ready_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("agent ready");
    RunningAgent {
        addr,
        password,
        input,
        watermarks,
        stop,
        thread: Some(thread),
    }
}

/// An agent on a synthetic `width`x`height` screen frozen at phase 0.
pub fn start_frozen(options: Options, width: u16, height: u16) -> RunningAgent {
    let (tx, rx) = mpsc::channel();
    let agent = start(options, move || {
        let (source, handle) = thinshadow::screen::Synthetic::new(width, height);
        handle.freeze(0);
        tx.send(handle).unwrap();
        Box::new(source)
    });
    // The handle must outlive the test's use of the screen; leak it (tests are short).
    std::mem::forget(rx.recv().unwrap());
    agent
}

impl RunningAgent {
    /// Stops the agent as SIGTERM would, and waits for its thread.
    pub fn stop(&mut self) {
        self.stop.stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for RunningAgent {
    fn drop(&mut self) {
        self.stop.stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
