//! `thinshadow serve`: everything the agent needs, in order, each failure a clear message.

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use super::ServeArgs;
use crate::agent::{Agent, AgentConfig, ControlConfig, PromptConfig};
use crate::audit::{AuditConfig, SYSLOG_PATH};
use crate::config::{PromptChoice, Settings};
use crate::control::LocalUser;
use crate::input::{CountingSink, InputSink};
use crate::net::Identity;
use crate::state::publish::HookConfig;
use crate::state::rotation::RotationPolicy;
use crate::state::{self, Keeper, KeeperConfig};
use crate::{info, warn};

pub fn run(args: &ServeArgs) -> Result<(), String> {
    let settings = &args.settings;
    // Block the stop signals before anything else so only the signalfd sees them.
    let mut mask = SigSet::empty();
    for signal in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        mask.add(signal);
    }
    mask.thread_block()
        .map_err(|e| format!("cannot block signals: {e}"))?;
    let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .map_err(|e| format!("cannot create a signalfd: {e}"))?;

    if let Some(path) = &args.config {
        info!("settings from {}", path.display());
    }
    let state_dir = settings.state_dir.as_path();
    state::ensure_dir(state_dir)
        .map_err(|e| format!("state directory {}: {e}", state_dir.display()))?;
    // Held until the agent stops: one agent per state, and `mode` edits wait for it.
    let _state_lock = state::lock::try_lock(state_dir)
        .map_err(|e| format!("state directory {}: {e}", state_dir.display()))?
        .ok_or_else(|| {
            format!(
                "state directory {} is in use by another thinshadow agent",
                state_dir.display()
            )
        })?;
    // Before listening: a new RSA key may take seconds on a slow board (logged with its time).
    let identity = crate::net::tls_store::load_or_create(state_dir, &settings.tls_source()?)
        .map_err(|e| e.to_string())?;

    let spec = settings.screen.as_str();
    let mut source = crate::screen::open(spec).map_err(|e| format!("screen {spec}: {e}"))?;
    let (width, height) = source
        .frame()
        .map(|frame| (frame.width, frame.height))
        .map_err(|e| format!("screen {spec}: {e}"))?;

    let (loaded, recovery) = state::load(state_dir).resolve(settings.default_modes());
    let crate::agent::Now {
        mono: now,
        unix: now_unix,
    } = crate::agent::clock();
    // A new password at every start of the agent.
    let mut keeper = Keeper::start(keeper_config(settings, &identity), &loaded, now, now_unix)
        .map_err(|e| e.to_string())?;

    let gid = settings
        .local_group
        .as_ref()
        .map(|group| resolve_group(group.as_str()))
        .transpose()?;
    let control = settings.control.as_path();
    if let Some(dir) = control.parent()
        && !dir.as_os_str().is_empty()
        && !dir.exists()
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .map_err(|e| format!("control socket directory {}: {e}", dir.display()))?;
    }
    // `auto` resolved: the prompt follows what was really opened.
    let screen = match spec {
        "auto" => source
            .describe()
            .split(' ')
            .next()
            .unwrap_or_default()
            .to_owned(),
        spec => spec.to_owned(),
    };
    let local = LocalUser {
        uid: settings.local_uid,
        gid,
    };
    let config = agent_config(
        settings,
        keeper.password(),
        local,
        prompt_config(settings, &screen),
    );

    // Sized to the screen now, so the pointer is not re-created when the session starts.
    let sink: Box<dyn InputSink> = match crate::input::uinput::open_with_size(width, height) {
        Ok(sink) => {
            info!("input: uinput keyboard and pointer ready");
            Box::new(sink)
        }
        Err(e) => {
            warn!("view-only: admins see the screen but cannot type or point: {e}");
            Box::new(CountingSink::default())
        }
    };
    let mut sink = sink;
    if let Some(layout) = crate::input::layout::Layout::by_name(settings.keyboard_layout.as_str()) {
        info!(
            "input: characters typed as Unicode use the {} layout",
            layout.name()
        );
        sink.set_keyboard_layout(layout);
    }
    let mut agent = Agent::new(config, &identity, source, sink)
        .map_err(|e| format!("cannot listen on {}: {e}", settings.listen))?;
    if let Some(recovery) = &recovery {
        agent.state_recovered(recovery);
    }
    // Publish only once the port is really ours.
    keeper.set_port(agent.local_addr().port());
    keeper
        .commit(now, now_unix)
        .map_err(|e| format!("cannot save state: {e}"))?;
    if !settings.allow.is_all() {
        info!("only {} may connect", settings.allow);
    }
    info!(
        "`thinshadow creds --state-dir {}` shows the password (certificate sha256 {})",
        state_dir.display(),
        identity.fingerprint()
    );
    agent
        .watch_signals(signals)
        .map_err(|e| format!("cannot watch signals: {e}"))?;
    // From here the loop owns the keeper: rotation, the publish hook, lockout, allowlist.
    agent.set_keeper(keeper);
    agent.run().map_err(|e| format!("event loop failed: {e}"))
}

/// Where the built-in prompt draws, if it may: on the framebuffer the agent mirrors (fb0
/// when that is a test picture). `auto` leaves it to a registered UI when there is one.
fn prompt_config(settings: &Settings, spec: &str) -> Option<PromptConfig> {
    let fbdev = spec.starts_with("fbdev:");
    let screen = if spec.starts_with("synthetic:") {
        "fbdev:/dev/fb0"
    } else {
        spec
    };
    let choice = settings.local_prompt;
    match choice {
        PromptChoice::Off => None,
        PromptChoice::Fb if spec.starts_with("kms") => {
            warn!(
                "local prompt: not on {spec}: the compositor's buffer is not ours to draw \
                 into; the image's UI must answer on the control socket"
            );
            None
        }
        PromptChoice::Auto if !fbdev && !spec.starts_with("synthetic:") => {
            info!("local prompt: none on {spec} (a UI on the control socket answers)");
            None
        }
        PromptChoice::Auto | PromptChoice::Fb => Some(PromptConfig {
            screen: screen.to_owned(),
            input_dir: "/dev/input".into(),
            defer_to_ui: choice == PromptChoice::Auto,
            // Next to the control socket: /run is RAM, and the record must not outlive a boot.
            leftover: settings
                .control
                .as_path()
                .parent()
                .filter(|dir| !dir.as_os_str().is_empty())
                .map(|dir| dir.join("prompt-box")),
        }),
    }
}

/// A gid as digits, else a name from the group database (musl reads /etc/group itself,
/// so this works in the static binary).
fn resolve_group(text: &str) -> Result<u32, String> {
    if let Ok(gid) = text.parse() {
        return Ok(gid);
    }
    match nix::unistd::Group::from_name(text) {
        Ok(Some(group)) => Ok(group.gid.as_raw()),
        Ok(None) => Err(format!("--local-group: no group named '{text}'")),
        Err(e) => Err(format!("--local-group: cannot look up '{text}': {e}")),
    }
}

/// The agent's configuration: the settings, with what `serve` resolved at start.
fn agent_config(
    settings: &Settings,
    password: &str,
    local: LocalUser,
    local_prompt: Option<PromptConfig>,
) -> AgentConfig {
    AgentConfig {
        handshake_timeout: settings.handshake_timeout.get(),
        frame_interval: settings.frame_interval.get(),
        scroll_copies: settings.scroll_copies.0,
        bitmap_cache: settings.bitmap_cache.0,
        slots: settings.slot_limits(),
        // The policy is always on: the saved modes decide, Deny is honoured, the local user
        // is asked through the control socket, the framebuffer prompt, or the timeouts.
        access: settings.access_settings(),
        control: Some(ControlConfig {
            path: settings.control.as_path().to_owned(),
            local,
        }),
        remote_processes: settings.remote_processes.names().to_vec(),
        audit: AuditConfig {
            stderr: !settings.audit_syslog,
            syslog: settings.audit_syslog.then(|| SYSLOG_PATH.into()),
            file: settings.audit_file.as_ref().map(|f| f.as_path().to_owned()),
            file_max: settings.audit_file_max.get(),
            file_keep: settings.audit_file_keep.as_u32(),
        },
        local_prompt,
        ..AgentConfig::new(settings.listen, settings.user.as_str(), password)
    }
}

/// Everything the keeper needs from the settings.
fn keeper_config(settings: &Settings, identity: &Identity) -> KeeperConfig {
    KeeperConfig {
        state_dir: settings.state_dir.as_path().to_owned(),
        user: settings.user.as_str().to_owned(),
        port: settings.listen.port(),
        cert_sha256: identity.fingerprint(),
        rotation: RotationPolicy {
            period: settings.rotation_period_hours.get(),
            after_session: settings.rotate_after_session,
        },
        hook: settings.publish_hook.as_ref().map(|program| HookConfig {
            program: program.as_path().to_owned(),
            timeout: settings.hook_timeout.get(),
        }),
        lockout: settings.lockout_policy(),
        allow: settings.allow.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_by_number_or_name() {
        assert_eq!(resolve_group("50"), Ok(50));
        // Every Linux system names gid 0.
        let root = nix::unistd::Group::from_gid(0.into()).unwrap().unwrap();
        assert_eq!(resolve_group(&root.name), Ok(0));
        let err = resolve_group("no-such-group-here").unwrap_err();
        assert_eq!(err, "--local-group: no group named 'no-such-group-here'");
    }
}
