//! `thinshadow status|mode|accept|reject|terminate|view-only|remote-session|watch`: thin
//! clients of the agent's control socket, one request and its reply (`watch`: then events).

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use crate::control::client::Client;
use crate::control::{DEFAULT_PATH, Request};

/// How long one request may take before the CLI gives up.
const TIMEOUT: Duration = Duration::from_secs(10);

/// `words` are everything after `thinshadow`, the command included.
pub fn run(words: &[String]) -> Result<(), String> {
    let mut path = PathBuf::from(DEFAULT_PATH);
    let mut rest: Vec<&str> = Vec::new();
    let mut it = words.iter();
    while let Some(word) = it.next() {
        match word.split_once('=') {
            Some(("--control", value)) => path = value.into(),
            _ if word == "--control" => {
                let value = it.next().ok_or("--control needs a value")?;
                path = value.into();
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
    let mut client = Client::connect(&path, Some(TIMEOUT)).map_err(|e| e.to_string())?;
    let (line, _) = client.call(&request).map_err(|e| e.to_string())?;
    let mut stdout = std::io::stdout();
    stdout
        .write_all(line.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("stdout: {e}"))?;
    if request != Request::Watch {
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
