//! `thinshadow serve`: everything the agent needs, in order, each failure a clear message.

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use super::ServeArgs;
use crate::agent::{Agent, AgentConfig, ControlConfig, PromptConfig};
use crate::audit::{AuditConfig, SYSLOG_PATH};
use crate::config::PromptChoice;
use crate::control::LocalUser;
use crate::input::{CountingSink, InputSink};
use crate::net::Identity;
use crate::state::publish::HookConfig;
use crate::state::rotation::RotationPolicy;
use crate::state::{self, Keeper, KeeperConfig};
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

    if let Some(path) = &args.config {
        info!("settings from {}", path.display());
    }
    state::ensure_dir(&args.state_dir)
        .map_err(|e| format!("state directory {}: {e}", args.state_dir.display()))?;
    // Held until the agent stops: one agent per state, and `mode` edits wait for it.
    let _state_lock = state::lock::try_lock(&args.state_dir)
        .map_err(|e| format!("state directory {}: {e}", args.state_dir.display()))?
        .ok_or_else(|| {
            format!(
                "state directory {} is in use by another thinshadow agent",
                args.state_dir.display()
            )
        })?;
    // Before listening: a new RSA key may take seconds on a slow board (logged with its time).
    let identity = crate::net::tls_store::load_or_create(&args.state_dir, &args.tls_source()?)
        .map_err(|e| e.to_string())?;

    let mut source =
        crate::screen::open(&args.screen).map_err(|e| format!("screen {}: {e}", args.screen))?;
    let (width, height) = source
        .frame()
        .map(|frame| (frame.width, frame.height))
        .map_err(|e| format!("screen {}: {e}", args.screen))?;

    let (loaded, recovery) = state::load(&args.state_dir).resolve(args.default_modes);
    let crate::agent::Now {
        mono: now,
        unix: now_unix,
    } = crate::agent::clock();
    // A new password at every start of the agent.
    let mut keeper = Keeper::start(keeper_config(args, &identity), &loaded, now, now_unix)
        .map_err(|e| e.to_string())?;

    let mut config = AgentConfig::new(args.listen, &args.user, keeper.password());
    config.handshake_timeout = args.handshake_timeout;
    config.frame_interval = args.frame_interval;
    config.scroll_copies = args.scroll_copies;
    config.slots.global = args.max_handshakes;
    config.slots.per_address = args.handshakes_per_address;
    // The policy is always on: the saved modes decide, Deny is honoured, the local user is
    // asked through the control socket, the framebuffer prompt, or the timeouts.
    config.access = args.access_settings();
    let gid = args.local_group.as_deref().map(resolve_group).transpose()?;
    if let Some(dir) = args.control.parent()
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
    config.control = Some(ControlConfig {
        path: args.control.clone(),
        local: LocalUser {
            uid: args.local_uid,
            gid,
        },
    });
    config.remote_processes = args.remote_processes.clone();
    config.audit = AuditConfig {
        stderr: !args.audit_syslog,
        syslog: args.audit_syslog.then(|| SYSLOG_PATH.into()),
        file: args.audit_file.clone(),
        file_max: args.audit_file_max,
        file_keep: args.audit_file_keep,
    };
    // `auto` resolved: the prompt follows what was really opened.
    let screen = match args.screen.as_str() {
        "auto" => source
            .describe()
            .split(' ')
            .next()
            .unwrap_or_default()
            .to_owned(),
        spec => spec.to_owned(),
    };
    config.local_prompt = prompt_config(args, &screen);

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
    if let Some(layout) = crate::input::layout::Layout::by_name(&args.keyboard_layout) {
        info!(
            "input: characters typed as Unicode use the {} layout",
            layout.name()
        );
        sink.set_keyboard_layout(layout);
    }
    let mut agent = Agent::new(config, &identity, source, sink)
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    if let Some(recovery) = &recovery {
        agent.state_recovered(recovery);
    }
    // Publish only once the port is really ours.
    keeper.set_port(agent.local_addr().port());
    keeper
        .commit(now, now_unix)
        .map_err(|e| format!("cannot save state: {e}"))?;
    if !args.allow.is_all() {
        info!("only {} may connect", args.allow);
    }
    info!(
        "`thinshadow creds --state-dir {}` shows the password (certificate sha256 {})",
        args.state_dir.display(),
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
fn prompt_config(args: &ServeArgs, spec: &str) -> Option<PromptConfig> {
    let fbdev = spec.starts_with("fbdev:");
    let screen = if spec.starts_with("synthetic:") {
        "fbdev:/dev/fb0"
    } else {
        spec
    };
    let choice = args.local_prompt;
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
            leftover: args
                .control
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

/// Everything the keeper needs from the settings.
fn keeper_config(args: &ServeArgs, identity: &Identity) -> KeeperConfig {
    KeeperConfig {
        state_dir: args.state_dir.clone(),
        user: args.user.clone(),
        port: args.listen.port(),
        cert_sha256: identity.fingerprint(),
        rotation: RotationPolicy {
            period: args.rotation_period,
            after_session: args.rotate_after_session,
        },
        hook: args.publish_hook.as_ref().map(|program| HookConfig {
            program: program.clone(),
            timeout: args.hook_timeout,
        }),
        lockout: args.lockout_policy(),
        allow: args.allow.clone(),
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
