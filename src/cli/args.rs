//! Flag parsing by hand: a handful of flags does not warrant a parser crate in firmware.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub const HELP_SHOWN: &str = "\0help";
pub const DEFAULT_STATE_DIR: &str = "/var/lib/thinshadow";

#[derive(Clone, Debug, PartialEq)]
pub struct ServeArgs {
    pub listen: SocketAddr,
    pub screen: String,
    pub state_dir: PathBuf,
    pub user: String,
    pub handshake_timeout: Duration,
    pub frame_interval: Duration,
    pub max_handshakes: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CredsArgs {
    pub state_dir: PathBuf,
    pub json: bool,
}

fn value<'a>(flag: &str, it: &mut impl Iterator<Item = &'a String>) -> Result<&'a str, String> {
    it.next()
        .map(String::as_str)
        .ok_or_else(|| format!("{flag} needs a value"))
}

fn number<T: std::str::FromStr>(flag: &str, text: &str, what: &str) -> Result<T, String> {
    text.parse()
        .map_err(|_| format!("{flag}: expected {what}, got '{text}'"))
}

fn split_flag(arg: &str) -> (&str, Option<&str>) {
    match arg.split_once('=') {
        Some((flag, value)) if flag.starts_with("--") => (flag, Some(value)),
        _ => (arg, None),
    }
}

impl ServeArgs {
    pub fn parse(args: &[String]) -> Result<Self, String> {
        let mut parsed = ServeArgs {
            listen: "0.0.0.0:3389"
                .parse()
                .map_err(|_| "default listen address")?,
            screen: "fbdev:/dev/fb0".into(),
            state_dir: DEFAULT_STATE_DIR.into(),
            user: "admin".into(),
            handshake_timeout: Duration::from_secs(15),
            frame_interval: Duration::from_millis(33),
            max_handshakes: 8,
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let (flag, inline) = split_flag(arg);
            let mut take = || inline.map_or_else(|| value(flag, &mut it), Ok);
            match flag {
                "--listen" => {
                    let text = take()?;
                    parsed.listen = number(flag, text, "ADDR:PORT, e.g. 0.0.0.0:3389")?;
                }
                "--screen" => parsed.screen = take()?.to_owned(),
                "--state-dir" => parsed.state_dir = take()?.into(),
                "--user" => {
                    let user = take()?;
                    if user.is_empty() || user.len() > 64 || user.contains(['\\', '@', ' ']) {
                        return Err(format!("--user: expected a plain user name, got '{user}'"));
                    }
                    parsed.user = user.to_owned();
                }
                "--handshake-timeout" => {
                    let secs: u64 = number(flag, take()?, "seconds (1 to 600)")?;
                    if !(1..=600).contains(&secs) {
                        return Err(format!("{flag}: expected seconds (1 to 600), got {secs}"));
                    }
                    parsed.handshake_timeout = Duration::from_secs(secs);
                }
                "--frame-interval" => {
                    let ms: u64 = number(flag, take()?, "milliseconds (5 to 10000)")?;
                    if !(5..=10_000).contains(&ms) {
                        return Err(format!(
                            "{flag}: expected milliseconds (5 to 10000), got {ms}"
                        ));
                    }
                    parsed.frame_interval = Duration::from_millis(ms);
                }
                "--max-handshakes" => {
                    let n: usize = number(flag, take()?, "a count (1 to 256)")?;
                    if !(1..=256).contains(&n) {
                        return Err(format!("{flag}: expected a count (1 to 256), got {n}"));
                    }
                    parsed.max_handshakes = n;
                }
                "--help" | "-h" => {
                    print!("{}", super::USAGE);
                    return Err(HELP_SHOWN.into());
                }
                other => {
                    return Err(format!(
                        "serve: unknown option '{other}' (see thinshadow --help)"
                    ));
                }
            }
        }
        Ok(parsed)
    }
}

impl CredsArgs {
    pub fn parse(args: &[String]) -> Result<Self, String> {
        let mut parsed = CredsArgs {
            state_dir: DEFAULT_STATE_DIR.into(),
            json: false,
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let (flag, inline) = split_flag(arg);
            match flag {
                "--state-dir" => {
                    parsed.state_dir = inline.map_or_else(|| value(flag, &mut it), Ok)?.into()
                }
                "--json" => parsed.json = true,
                "--help" | "-h" => {
                    print!("{}", super::USAGE);
                    return Err(HELP_SHOWN.into());
                }
                other => {
                    return Err(format!(
                        "creds: unknown option '{other}' (see thinshadow --help)"
                    ));
                }
            }
        }
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn defaults_work_on_a_bare_board() {
        let parsed = ServeArgs::parse(&[]).unwrap();
        assert_eq!(parsed.listen.port(), 3389);
        assert_eq!(parsed.screen, "fbdev:/dev/fb0");
        assert_eq!(parsed.user, "admin");
    }

    #[test]
    fn flags_in_both_forms() {
        let parsed = ServeArgs::parse(&args(&[
            "--listen",
            "127.0.0.1:4000",
            "--screen=synthetic:640x480",
        ]))
        .unwrap();
        assert_eq!(parsed.listen, "127.0.0.1:4000".parse().unwrap());
        assert_eq!(parsed.screen, "synthetic:640x480");
    }

    #[test]
    fn bad_values_name_the_flag_and_the_form() {
        let err = ServeArgs::parse(&args(&["--listen", "nowhere"])).unwrap_err();
        assert!(
            err.contains("--listen") && err.contains("ADDR:PORT"),
            "{err}"
        );
        let err = ServeArgs::parse(&args(&["--frame-interval", "0"])).unwrap_err();
        assert!(err.contains("--frame-interval"), "{err}");
        assert!(ServeArgs::parse(&args(&["--bogus"])).is_err());
        assert!(ServeArgs::parse(&args(&["--listen"])).is_err());
    }

    #[test]
    fn creds_json_flag() {
        let parsed = CredsArgs::parse(&args(&["--state-dir", "/tmp/x", "--json"])).unwrap();
        assert!(parsed.json);
        assert_eq!(parsed.state_dir, PathBuf::from("/tmp/x"));
    }
}
