//! `thinshadow status|mode|accept|reject|terminate|view-only|remote-session|watch`: thin
//! clients of the agent's control socket, one request and its reply (`watch`: then events).
//! `mode` with no agent at the socket edits the state in `--state-dir` instead (root only).

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::config::DEFAULT_STATE_DIR;
use std::time::Duration;

use crate::control::client::{Client, ClientError};
use crate::control::{DEFAULT_PATH, ModeKind, Request};

/// How long one request may take before the CLI gives up.
const TIMEOUT: Duration = Duration::from_secs(10);

/// `words` are everything after `thinshadow`, the command included.
pub fn run(words: &[String]) -> Result<(), String> {
    let mut path = PathBuf::from(DEFAULT_PATH);
    let mut state_dir = None;
    let mut rest: Vec<&str> = Vec::new();
    let mut it = words.iter();
    while let Some(word) = it.next() {
        match word.split_once('=') {
            Some(("--control", value)) => path = value.into(),
            Some(("--state-dir", value)) => state_dir = Some(PathBuf::from(value)),
            _ if word == "--control" => {
                let value = it.next().ok_or("--control needs a value")?;
                path = value.into();
            }
            _ if word == "--state-dir" => {
                let value = it.next().ok_or("--state-dir needs a value")?;
                state_dir = Some(value.into());
            }
            _ if word.starts_with("--") => {
                return Err(format!("unknown option '{word}' (see thinshadow --help)"));
            }
            _ => rest.push(word),
        }
    }
    if path.as_os_str().is_empty() {
        return Err("--control: expected a socket path, got ''".into());
    }
    let request = Request::from_args(&rest)?;
    let is_mode = matches!(request, Request::Mode { .. });
    if state_dir.is_some() && !is_mode {
        return Err("--state-dir applies to mode only".into());
    }
    let mut client = match Client::connect(&path, Some(TIMEOUT)) {
        Ok(client) => client,
        Err(ClientError::Connect { error, .. }) if is_mode && no_agent(&error) => {
            let dir = state_dir.unwrap_or_else(|| DEFAULT_STATE_DIR.into());
            return mode_offline(&request, &dir);
        }
        Err(e) => return Err(e.to_string()),
    };
    let (line, _) = client.call(&request).map_err(|e| e.to_string())?;
    let mut stdout = std::io::stdout();
    stdout
        .write_all(line.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("stdout: {e}"))?;
    if !matches!(request, Request::Watch | Request::Prompt) {
        return Ok(());
    }
    client.wait_forever().map_err(|e| e.to_string())?;
    while let Some((line, _)) = client.next_line().map_err(|e| e.to_string())? {
        stdout
            .write_all(line.as_bytes())
            .and_then(|()| stdout.flush())
            .map_err(|e| format!("stdout: {e}"))?;
    }
    Ok(())
}

/// Nobody listens at the path: no socket file, or a stale one from a stopped agent.
fn no_agent(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
    )
}

/// `mode` with no agent to ask: root edits the persisted modes; the agent reads them at
/// its next start (one that runs without a control socket holds the state lock, and
/// `edit_modes` says so rather than have it overwrite the change).
fn mode_offline(request: &Request, dir: &Path) -> Result<(), String> {
    let Request::Mode { which, mode } = *request else {
        return Err("not a mode request".into());
    };
    if !nix::unistd::geteuid().is_root() {
        return Err("permission denied: only root changes modes".into());
    }
    let modes = crate::state::edit_modes(dir, |modes| match which {
        ModeKind::Management => modes.management = mode,
        ModeKind::RemoteScreen => modes.remote_screen = mode,
    })?;
    eprintln!(
        "thinshadow: no agent is running; saved in {} for its next start",
        dir.display()
    );
    let line = crate::control::json::Writer::new()
        .bool("ok", true)
        .str("management", modes.management.as_str())
        .str("remote_screen", modes.remote_screen.as_str())
        .line();
    let mut stdout = std::io::stdout();
    stdout
        .write_all(line.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("stdout: {e}"))
}
