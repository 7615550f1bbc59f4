//! Flag parsing by hand: a handful of flags does not warrant a parser crate in firmware.
//!
//! `serve` settings come from three places, later ones winning: `Settings::default()`,
//! the config file (`--config PATH`, else `/etc/thinshadow.toml` if present), then the
//! flags. A flag is the same setting as its file key (`config::KEYS`), checked by the same
//! field of `Settings`.

use std::path::{Path, PathBuf};

use crate::config::{self, DEFAULT_STATE_DIR, Settings};

pub const HELP_SHOWN: &str = "\0help";

/// What `serve` runs with.
#[derive(Clone, Debug, PartialEq)]
pub struct ServeArgs {
    pub settings: Settings,
    /// The config file that was read, if any.
    pub config: Option<PathBuf>,
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

fn split_flag(arg: &str) -> (&str, Option<&str>) {
    match arg.split_once('=') {
        Some((flag, value)) if flag.starts_with("--") => (flag, Some(value)),
        _ => (arg, None),
    }
}

/// What the command line said, before the file is merged in.
#[derive(Debug, Default)]
struct Flags {
    config: Option<PathBuf>,
    entries: Vec<config::Entry>,
}

impl Flags {
    fn parse(args: &[String]) -> Result<Flags, String> {
        let mut flags = Flags::default();
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let (flag, inline) = split_flag(arg);
            match flag {
                "--config" => {
                    let path = inline.map_or_else(|| value(flag, &mut it), Ok)?;
                    if path.is_empty() {
                        return Err("--config: expected a file path, got ''".into());
                    }
                    flags.config = Some(path.into());
                }
                "--help" | "-h" => {
                    print!("{}", super::USAGE);
                    return Err(HELP_SHOWN.into());
                }
                _ => {
                    let Some(key) = config::keys::by_flag(flag) else {
                        return Err(format!(
                            "serve: unknown option '{flag}' (see thinshadow --help)"
                        ));
                    };
                    let text = match (key.switch, inline) {
                        (true, None) => "true",
                        (_, Some(text)) => text,
                        (false, None) => value(flag, &mut it)?,
                    };
                    flags.entries.push(config::flag_entry(key, text));
                }
            }
        }
        Ok(flags)
    }
}

impl ServeArgs {
    /// Defaults, then the config file, then the flags.
    pub fn parse(args: &[String]) -> Result<Self, String> {
        Self::parse_with_default_config(args, Path::new(config::DEFAULT_PATH))
    }

    /// `parse` with another default config path (tests).
    pub fn parse_with_default_config(args: &[String], default: &Path) -> Result<Self, String> {
        let flags = Flags::parse(args)?;
        // A named file must exist; the default one only if it does.
        let file = match flags.config {
            Some(path) => Some(path),
            None => default.exists().then(|| default.to_owned()),
        };
        let mut entries = match &file {
            Some(path) => config::read_file(path).map_err(|e| e.to_string())?,
            None => Vec::new(),
        };
        entries.extend(flags.entries);
        let settings = Settings::from_entries(entries).map_err(|e| e.to_string())?;
        Ok(ServeArgs {
            settings,
            config: file,
        })
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
    use crate::config::PromptChoice;
    use crate::policy::{AccessSettings, Ask, TimeoutAction};
    use std::time::Duration;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    /// Parses with no default config file, whatever this machine has in /etc.
    fn parse_args(list: &[&str]) -> Result<ServeArgs, String> {
        ServeArgs::parse_with_default_config(&args(list), Path::new("/nonexistent/x.toml"))
    }

    fn parse(list: &[&str]) -> Result<Settings, String> {
        parse_args(list).map(|parsed| parsed.settings)
    }

    struct TempFile(PathBuf);

    impl TempFile {
        fn new(name: &str, text: &str) -> TempFile {
            let path = std::env::temp_dir().join(format!(
                "thinshadow-args-{name}-{}.toml",
                std::process::id()
            ));
            std::fs::write(&path, text).unwrap();
            TempFile(path)
        }

        fn arg(&self) -> &str {
            self.0.to_str().unwrap()
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn defaults_work_on_a_bare_board() {
        let parsed = parse(&[]).unwrap();
        assert_eq!(parsed.listen.port(), 3389);
        assert_eq!(parsed.screen.as_str(), "auto");
        assert_eq!(parsed.user.as_str(), "admin");
        assert_eq!(
            parsed.rotation_period_hours.get(),
            Duration::from_secs(86_400)
        );
        assert!(!parsed.rotate_after_session);
        assert_eq!(parsed.publish_hook, None);
        assert_eq!(parsed.hook_timeout.get(), Duration::from_secs(10));
        assert_eq!(parsed.lockout_after.get(), 5);
        assert_eq!(parsed.lockout_minutes.get(), Duration::from_secs(300));
        assert!(parsed.allow.is_all());
        assert_eq!(parse_args(&[]).unwrap().config, None);
    }

    #[test]
    fn the_control_socket_is_on_by_default() {
        let parsed = parse(&[]).unwrap();
        assert_eq!(
            parsed.control.as_path(),
            Path::new(config::DEFAULT_CONTROL_PATH)
        );
        assert_eq!(parsed.local_uid, None);
        let parsed = parse(&["--control", "/run/t.sock", "--local-uid=1000"]).unwrap();
        assert_eq!(parsed.control.as_path(), Path::new("/run/t.sock"));
        assert_eq!(parsed.local_uid, Some(1000));
        assert!(parse(&["--control="]).is_err());
        assert!(
            parse(&["--local-uid", "bob"])
                .unwrap_err()
                .contains("--local-uid")
        );
    }

    #[test]
    fn consent_timeouts_per_mode() {
        let parsed = parse(&[]).unwrap();
        assert_eq!(parsed.access_settings(), AccessSettings::default());
        let parsed = parse(&[
            "--consent-timeout-request=90",
            "--consent-timeout",
            "10",
            "--consent-timeout-action-auto",
            "refuse",
            "--consent-timeout-action-request=start",
        ])
        .unwrap();
        let settings = parsed.access_settings();
        assert_eq!(
            settings.allow_auto,
            Ask {
                timeout: Duration::from_secs(10),
                on_timeout: TimeoutAction::Refuse
            }
        );
        assert_eq!(
            settings.allow_by_request,
            Ask {
                timeout: Duration::from_secs(90),
                on_timeout: TimeoutAction::Start
            },
            "the per-mode timeout wins though it came first"
        );
        let err = parse(&["--consent-timeout-action-request", "maybe"]).unwrap_err();
        assert_eq!(
            err,
            "--consent-timeout-action-request: expected start or refuse, got 'maybe'"
        );
        assert!(parse(&["--consent-timeout", "0"]).is_err());
    }

    #[test]
    fn audit_and_remote_process_flags() {
        let parsed = parse(&[]).unwrap();
        assert!(!parsed.audit_syslog);
        assert_eq!(parsed.audit_file, None);
        assert_eq!(parsed.audit_file_max.get(), 1024 * 1024);
        assert!(parsed.remote_processes.names().is_empty());
        let parsed = parse(&[
            "--audit-syslog",
            "--audit-file",
            "/var/log/ts.log",
            "--audit-file-max=8192",
            "--remote-processes",
            "xfreerdp, wfica,vmware-view",
            "--local-group",
            "video",
        ])
        .unwrap();
        assert!(parsed.audit_syslog);
        assert_eq!(
            parsed.audit_file.as_ref().map(|f| f.as_path()),
            Some(Path::new("/var/log/ts.log"))
        );
        assert_eq!(parsed.audit_file_max.get(), 8192);
        assert_eq!(
            parsed.remote_processes.names(),
            ["xfreerdp", "wfica", "vmware-view"]
        );
        assert_eq!(
            parsed.local_group.as_ref().map(|g| g.as_str()),
            Some("video")
        );
        assert!(parse(&["--local-group="]).is_err());
        assert!(parse(&["--audit-file-max", "10"]).is_err());
    }

    #[test]
    fn the_local_prompt_is_automatic_by_default() {
        let prompt = |args: &[&str]| parse(args).unwrap().local_prompt;
        assert_eq!(prompt(&[]), PromptChoice::Auto);
        assert_eq!(prompt(&["--local-prompt", "fb"]), PromptChoice::Fb);
        assert_eq!(prompt(&["--local-prompt=off"]), PromptChoice::Off);
        assert_eq!(prompt(&["--local-prompt=none"]), PromptChoice::Off);
        let err = parse(&["--local-prompt", "tty"]).unwrap_err();
        assert!(err.starts_with("--local-prompt: expected auto "), "{err}");
    }

    #[test]
    fn unattended_images_may_start_allow_auto_sessions_at_once() {
        let parsed = parse(&["--consent-timeout-auto", "0"]).unwrap();
        assert_eq!(parsed.access_settings().allow_auto.timeout, Duration::ZERO);
        // Only allow-auto: a by-request session with no time to answer would never start.
        assert!(parse(&["--consent-timeout-request", "0"]).is_err());
        assert!(parse(&["--consent-timeout", "0"]).is_err());
    }

    #[test]
    fn flags_in_both_forms() {
        let parsed = parse(&["--listen", "127.0.0.1:4000", "--screen=synthetic:640x480"]).unwrap();
        assert_eq!(parsed.listen, "127.0.0.1:4000".parse().unwrap());
        assert_eq!(parsed.screen.as_str(), "synthetic:640x480");
    }

    #[test]
    fn the_new_flags() {
        let parsed = parse(&[
            "--publish-hook",
            "/usr/bin/publish",
            "--rotation-period=6",
            "--rotate-after-session",
            "--allow",
            "10.0.0.0/8,fd00::/8",
            "--lockout-after",
            "3",
            "--lockout-minutes",
            "15",
            "--hook-timeout",
            "30",
        ])
        .unwrap();
        assert_eq!(
            parsed.publish_hook.as_ref().map(|f| f.as_path()),
            Some(Path::new("/usr/bin/publish"))
        );
        assert_eq!(
            parsed.rotation_period_hours.get(),
            Duration::from_secs(6 * 3600)
        );
        assert!(parsed.rotate_after_session);
        assert_eq!(parsed.allow.ranges().len(), 2);
        assert_eq!(parsed.lockout_after.get(), 3);
        assert_eq!(parsed.lockout_minutes.get(), Duration::from_secs(900));
        assert_eq!(parsed.hook_timeout.get(), Duration::from_secs(30));
        let policy = parsed.lockout_policy();
        assert_eq!((policy.after, policy.window), (3, Duration::from_secs(900)));
        assert!(
            !parse(&["--rotate-after-session=false"])
                .unwrap()
                .rotate_after_session
        );
    }

    #[test]
    fn bad_values_name_the_flag_and_the_form() {
        let err = parse(&["--listen", "nowhere"]).unwrap_err();
        assert!(
            err.contains("--listen") && err.contains("ADDR:PORT"),
            "{err}"
        );
        let err = parse(&["--frame-interval", "0"]).unwrap_err();
        assert!(err.contains("--frame-interval"), "{err}");
        assert_eq!(
            parse(&["--rotation-period", "0"]).unwrap_err(),
            "--rotation-period: expected hours (1 to 720), got '0'"
        );
        let err = parse(&["--allow", "10.0.0.0/8,10.0.0.1/8"]).unwrap_err();
        assert!(err.starts_with(r#"--allow: "10.0.0.1/8": "#), "{err}");
        let err = parse(&["--rotate-after-session=maybe"]).unwrap_err();
        assert!(err.contains("true or false"), "{err}");
        assert!(parse(&["--bogus"]).is_err());
        assert!(parse(&["--listen"]).is_err());
        assert!(parse(&["--config"]).is_err());
    }

    #[test]
    fn flags_override_the_file_which_overrides_defaults() {
        let file = TempFile::new(
            "precedence",
            "listen = \"127.0.0.1:5000\"\nuser = \"support\"\nlockout_after = 7\nallow = [\"10.0.0.0/8\"]\n",
        );
        let args = parse_args(&["--config", file.arg(), "--user", "helpdesk"]).unwrap();
        assert_eq!(args.config.as_deref(), Some(file.0.as_path()));
        let parsed = args.settings;
        assert_eq!(
            parsed.listen,
            "127.0.0.1:5000".parse().unwrap(),
            "from the file"
        );
        assert_eq!(parsed.user.as_str(), "helpdesk", "the flag wins");
        assert_eq!(parsed.lockout_after.get(), 7);
        assert_eq!(
            parsed.frame_interval.get(),
            Duration::from_millis(33),
            "default"
        );
        // Order on the command line does not matter: the flag still wins.
        let parsed = parse(&["--allow", "192.0.2.0/24", "--config", file.arg()]).unwrap();
        assert_eq!(parsed.allow.to_string(), "192.0.2.0/24");
    }

    #[test]
    fn the_default_file_is_read_only_if_present() {
        let file = TempFile::new("default", "max_handshakes = 3\n");
        let parsed = ServeArgs::parse_with_default_config(&[], &file.0).unwrap();
        assert_eq!(parsed.settings.max_handshakes.get(), 3);
        assert_eq!(parsed.config.as_deref(), Some(file.0.as_path()));
        // A named file that is missing is an error; a missing default is not.
        let err = parse(&["--config", "/nonexistent/thinshadow.toml"]).unwrap_err();
        assert!(err.starts_with("/nonexistent/thinshadow.toml: "), "{err}");
    }

    #[test]
    fn a_bad_file_stops_the_start_with_the_key_named() {
        let file = TempFile::new("bad", "listen = \"x\"\n");
        let err = parse(&["--config", file.arg(), "--listen", "127.0.0.1:1"]).unwrap_err();
        assert_eq!(
            err,
            format!(
                "{}: listen: expected ADDR:PORT, e.g. 0.0.0.0:3389, got \"x\"",
                file.arg()
            )
        );
        let file = TempFile::new("unknown", "colour = \"blue\"\n");
        let err = parse(&["--config", file.arg()]).unwrap_err();
        assert!(err.contains("unknown key \"colour\""), "{err}");
    }

    #[test]
    fn help_lists_every_flag() {
        let usage = super::super::USAGE;
        let serve =
            &usage[usage.find("serve options").unwrap()..usage.find("control commands").unwrap()];
        for key in config::KEYS {
            assert!(serve.contains(key.flag), "{} missing", key.flag);
            // Each flag's line names its file key in brackets.
            let named = serve.contains(&format!("[{}]", key.name))
                || serve.contains(&format!("[{},", key.name))
                || serve.contains(&format!(" {}]", key.name));
            assert!(named, "[{}] missing", key.name);
            assert_eq!(
                serve.matches(&format!(" {} ", key.flag)).count(),
                1,
                "{} listed once",
                key.flag
            );
        }
        assert!(super::super::USAGE.contains("--config"));
        assert!(!super::super::USAGE.contains("__state-writer"));
    }

    #[test]
    fn creds_json_flag() {
        let parsed = CredsArgs::parse(&args(&["--state-dir", "/tmp/x", "--json"])).unwrap();
        assert!(parsed.json);
        assert_eq!(parsed.state_dir, PathBuf::from("/tmp/x"));
    }
}
