use std::time::Duration;

use super::*;

fn parse(text: &str) -> Result<Settings, String> {
    parse_file(Path::new("thinshadow.toml"), text)
        .and_then(Settings::from_entries)
        .map_err(|e| e.to_string())
}

fn flags(list: &[(&str, &str)]) -> Result<Settings, String> {
    let entries = list
        .iter()
        .map(|(flag, text)| flag_entry(keys::by_flag(flag).unwrap(), text))
        .collect();
    Settings::from_entries(entries).map_err(|e| e.to_string())
}

const EVERY_KEY: &str = r#"
listen = "127.0.0.1:4000"
screen = "synthetic:640x480"
state_dir = "/tmp/ts"
user = "support"
handshake_timeout = 20
frame_interval = 50
max_handshakes = 4
rotation_period_hours = 12
rotate_after_session = true
publish_hook = "/usr/libexec/publish"
hook_timeout = 5
lockout_after = 3
lockout_minutes = 10
allow = ["10.0.0.0/8", "fd00::/8"]
consent_timeout = 45
consent_timeout_auto = 20
consent_timeout_request = 60
consent_timeout_action_auto = "refuse"
consent_timeout_action_request = "start"
audit_syslog = true
audit_file = "/var/log/thinshadow-audit.log"
audit_file_max = 65536
remote_processes = ["xfreerdp", "wfica"]
local_prompt = "fb"
scroll_copies = "off"
bitmap_cache = "off"
control = "/run/ts/control.sock"
local_uid = 1000
local_group = "video"
handshakes_per_address = 2
audit_file_keep = 7
keyboard_layout = "de"
default_management_mode = "deny"
default_remote_screen_mode = "allow-auto"
tls_key_type = "ecdsa"
tls_cert = "/etc/thinshadow/cert.pem"
tls_key = "/etc/thinshadow/key.pem"
"#;

#[test]
fn every_key_from_a_file() {
    let entries = parse_file(Path::new("thinshadow.toml"), EVERY_KEY).unwrap();
    assert_eq!(entries.len(), KEYS.len());
    let s = parse(EVERY_KEY).unwrap();
    assert_eq!(s.listen, "127.0.0.1:4000".parse().unwrap());
    assert_eq!(s.screen.as_str(), "synthetic:640x480");
    assert_eq!(s.state_dir.as_path(), Path::new("/tmp/ts"));
    assert_eq!(s.user.as_str(), "support");
    assert_eq!(s.handshake_timeout.get(), Duration::from_secs(20));
    assert_eq!(s.frame_interval.get(), Duration::from_millis(50));
    assert_eq!(s.max_handshakes.get(), 4);
    assert_eq!(
        s.rotation_period_hours.get(),
        Duration::from_secs(12 * 3600)
    );
    assert!(s.rotate_after_session);
    assert_eq!(
        s.publish_hook.as_ref().map(FilePath::as_path),
        Some(Path::new("/usr/libexec/publish"))
    );
    assert_eq!(s.hook_timeout.get(), Duration::from_secs(5));
    assert_eq!(s.lockout_policy().after, 3);
    assert_eq!(s.lockout_policy().window, Duration::from_secs(600));
    assert_eq!(
        s.allow,
        Allowlist::parse(&["10.0.0.0/8", "fd00::/8"]).unwrap()
    );
    let access = s.access_settings();
    assert_eq!(access.allow_auto.timeout, Duration::from_secs(20));
    assert_eq!(access.allow_auto.on_timeout, TimeoutAction::Refuse);
    assert_eq!(access.allow_by_request.timeout, Duration::from_secs(60));
    assert_eq!(access.allow_by_request.on_timeout, TimeoutAction::Start);
    assert_eq!(s.consent_timeout.get(), Duration::from_secs(45));
    assert!(s.audit_syslog);
    assert!(s.audit_file.is_some());
    assert_eq!(s.audit_file_max.get(), 65536);
    assert_eq!(s.audit_file_keep.get(), 7);
    assert_eq!(s.remote_processes.names(), ["xfreerdp", "wfica"]);
    assert_eq!(s.local_prompt, PromptChoice::Fb);
    assert_eq!(s.scroll_copies, OnOff(false));
    assert_eq!(s.bitmap_cache, OnOff(false));
    assert_eq!(s.control.as_path(), Path::new("/run/ts/control.sock"));
    assert_eq!(s.local_uid, Some(1000));
    assert_eq!(s.local_group.as_ref().map(GroupName::as_str), Some("video"));
    assert_eq!(s.slot_limits().per_address, 2);
    assert_eq!(s.keyboard_layout.as_str(), "de");
    assert_eq!(s.default_modes().management, Mode::Deny);
    assert_eq!(s.default_modes().remote_screen, Mode::AllowAuto);
    assert_eq!(s.tls_key_type, crate::net::KeyType::Ecdsa);
    assert!(matches!(
        s.tls_source(),
        Ok(crate::net::tls_store::Source::Provisioned { .. })
    ));
}

/// Every field of `Settings` has a key (a flag and a form) and every key a field: the
/// field list is what serde's derive hands the deserializer.
#[test]
fn keys_and_fields_are_the_same_list() {
    struct Names(Vec<&'static str>);
    impl<'de> serde::Deserializer<'de> for &mut Names {
        type Error = serde::de::value::Error;
        fn deserialize_any<V: serde::de::Visitor<'de>>(
            self,
            _: V,
        ) -> Result<V::Value, Self::Error> {
            Err(serde::de::Error::custom("names only"))
        }
        fn deserialize_struct<V: serde::de::Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            self.0 = fields.to_vec();
            Err(serde::de::Error::custom("names only"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }
    let mut names = Names(Vec::new());
    assert!(Settings::deserialize(&mut names).is_err());
    let mut fields = names.0;
    let mut keys: Vec<&str> = KEYS.iter().map(|key| key.name).collect();
    fields.sort_unstable();
    keys.sort_unstable();
    assert_eq!(fields, keys);
}

#[test]
fn the_defaults_are_the_modules_own() {
    let s = Settings::default();
    assert_eq!(s, parse("").unwrap());
    assert_eq!(s.access_settings(), AccessSettings::default());
    assert_eq!(s.slot_limits(), SlotLimits::default());
    assert_eq!(s.lockout_policy(), LockoutPolicy::default());
    assert_eq!(s.default_modes(), Modes::default());
    assert_eq!(
        s.handshake_timeout.get(),
        crate::agent::DEFAULT_HANDSHAKE_TIMEOUT
    );
    assert_eq!(s.frame_interval.get(), crate::agent::DEFAULT_FRAME_INTERVAL);
    assert_eq!(s.listen.port(), 3389);
    assert_eq!(s.screen.as_str(), "auto");
    assert!(s.allow.is_all());
}

#[test]
fn policy_and_audit_values_are_checked() {
    assert_eq!(
        parse(r#"consent_timeout_action_auto = "later""#).unwrap_err(),
        r#"thinshadow.toml: consent_timeout_action_auto: expected start or refuse, got "later""#
    );
    assert_eq!(
        parse("consent_timeout = 0").unwrap_err(),
        "thinshadow.toml: consent_timeout: expected seconds (1 to 3600), got 0"
    );
    assert!(parse("audit_file_max = 100").is_err());
    assert_eq!(
        parse(r#"default_management_mode = "allow""#).unwrap_err(),
        r#"thinshadow.toml: default_management_mode: expected allow-auto, allow-by-request or deny (when no saved state can be read), got "allow""#
    );
    let err = parse(r#"remote_processes = ["/usr/bin/xfreerdp"]"#).unwrap_err();
    assert!(err.contains("a process name, not a path"), "{err}");
    assert!(
        parse("remote_processes = []")
            .unwrap()
            .remote_processes
            .names()
            .is_empty()
    );
}

#[test]
fn bad_values_name_the_key_and_the_form() {
    assert_eq!(
        parse(r#"listen = "x""#).unwrap_err(),
        r#"thinshadow.toml: listen: expected ADDR:PORT, e.g. 0.0.0.0:3389, got "x""#
    );
    assert_eq!(
        parse("handshake_timeout = 0").unwrap_err(),
        "thinshadow.toml: handshake_timeout: expected seconds (1 to 600), got 0"
    );
    assert_eq!(
        parse("handshake_timeout = 1.5").unwrap_err(),
        "thinshadow.toml: handshake_timeout: expected seconds (1 to 600), got 1.5"
    );
    assert_eq!(
        parse(r#"max_handshakes = "8""#).unwrap_err(),
        r#"thinshadow.toml: max_handshakes: expected a count (1 to 256), got "8""#
    );
    assert_eq!(
        parse("lockout_after = -1").unwrap_err(),
        "thinshadow.toml: lockout_after: expected a count of failed logins (1 to 100), got -1"
    );
    assert_eq!(
        parse(r#"rotate_after_session = "yes""#).unwrap_err(),
        r#"thinshadow.toml: rotate_after_session: expected true or false, got "yes""#
    );
    assert_eq!(
        parse("local_uid = -1").unwrap_err(),
        "thinshadow.toml: local_uid: expected a user id, got -1"
    );
    assert_eq!(
        parse("tls_cert = 1979-05-27").unwrap_err(),
        "thinshadow.toml: tls_cert: expected a PEM file: the certificate, then any intermediates, got 1979-05-27"
    );
    let err = parse(r#"allow = ["10.0.0.0/8", "10.0.0.0/33"]"#).unwrap_err();
    assert_eq!(
        err,
        r#"thinshadow.toml: allow: "10.0.0.0/33": prefix length must be 0 to 32 (expected ADDR/PREFIX ranges, e.g. 10.0.0.0/8 or fd00::/8)"#
    );
    let err = parse(r#"allow = "10.0.0.0/8""#).unwrap_err();
    assert!(err.contains("allow: expected ADDR/PREFIX"), "{err}");
    let err = parse(r#"allow = ["10.0.0.0/8", 7]"#).unwrap_err();
    assert!(err.contains("allow: expected ADDR/PREFIX"), "{err}");
    // A file's entry is one entry: a comma in it is not a separator (it is on the
    // command line), so this is one bad range, named as written.
    let err = parse(r#"allow = ["10.0.0.0/8,fd00::/8"]"#).unwrap_err();
    assert!(err.contains(r#"allow: "10.0.0.0/8,fd00::/8""#), "{err}");
    // A process name may hold a comma (the kernel's comm is any 15 bytes).
    assert_eq!(
        parse(r#"remote_processes = ["vdi,client", "wfica"]"#)
            .unwrap()
            .remote_processes
            .names(),
        ["vdi,client", "wfica"]
    );
    let err = parse(r#"user = "a b""#).unwrap_err();
    assert!(
        err.starts_with("thinshadow.toml: user: expected a plain user name"),
        "{err}"
    );
}

#[test]
fn unknown_keys_and_tables_are_errors() {
    let err = parse("listen = \"0.0.0.0:3389\"\nlistn = \"x\"").unwrap_err();
    assert!(
        err.starts_with(r#"thinshadow.toml: unknown key "listn" (known: listen, "#),
        "{err}"
    );
    let err = parse("[serve]\nlisten = \"0.0.0.0:3389\"").unwrap_err();
    assert!(err.contains(r#"unknown key "serve""#), "{err}");
}

#[test]
fn syntax_errors_give_the_line() {
    let err = parse("listen = \"0.0.0.0:3389\"\nuser = \n").unwrap_err();
    assert!(err.starts_with("thinshadow.toml: line 2: "), "{err}");
    let err = parse("user = \"a\"\nuser = \"b\"\n").unwrap_err();
    assert!(err.starts_with("thinshadow.toml: line 2: "), "{err}");
}

#[test]
fn an_empty_allow_list_is_everyone() {
    assert!(parse("allow = []").unwrap().allow.is_all());
    assert!(parse(r#"allow = [""]"#).unwrap().allow.is_all());
    let err = parse(r#"allow = ["10.0.0.0/8", ""]"#).unwrap_err();
    assert!(err.starts_with("thinshadow.toml: allow: "), "{err}");
    assert!(flags(&[("--allow", "")]).unwrap().allow.is_all());
}

#[test]
fn flag_errors_read_like_file_errors() {
    assert_eq!(
        flags(&[("--listen", "nowhere")]).unwrap_err(),
        "--listen: expected ADDR:PORT, e.g. 0.0.0.0:3389, got 'nowhere'"
    );
    let err = flags(&[("--allow", "10.0.0.0/8,bogus")]).unwrap_err();
    assert!(err.starts_with(r#"--allow: "bogus": not an IPv4"#), "{err}");
    assert_eq!(
        flags(&[("--rotation-period", "0")]).unwrap_err(),
        "--rotation-period: expected hours (1 to 720), got '0'"
    );
    assert_eq!(
        flags(&[("--audit-syslog", "yes")]).unwrap_err(),
        "--audit-syslog: expected true or false, got 'yes'"
    );
    assert!(flags(&[("--local-uid", "-1")]).is_err());
}

#[test]
fn later_entries_win_and_every_entry_is_checked() {
    let s = flags(&[("--user", "one"), ("--user", "two")]).unwrap();
    assert_eq!(s.user.as_str(), "two");
    // An entry a later one replaces is still checked.
    let err = flags(&[("--user", "a b"), ("--user", "two")]).unwrap_err();
    assert!(
        err.starts_with("--user: expected a plain user name"),
        "{err}"
    );
}

#[test]
fn every_key_has_a_flag_and_a_name_once() {
    for (i, key) in KEYS.iter().enumerate() {
        assert!(key.flag.starts_with("--"));
        assert!(
            KEYS[i + 1..]
                .iter()
                .all(|k| k.name != key.name && k.flag != key.flag)
        );
    }
}

#[test]
fn a_missing_or_huge_file_is_an_error() {
    let err = read_file(Path::new("/nonexistent/thinshadow.toml")).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("/nonexistent/thinshadow.toml: "),
        "{err}"
    );
    let path = std::env::temp_dir().join(format!("thinshadow-big-{}.toml", std::process::id()));
    std::fs::write(&path, "#".repeat(MAX_FILE as usize + 10)).unwrap();
    assert!(matches!(
        read_file(&path),
        Err(ConfigError::TooLarge { .. })
    ));
    std::fs::remove_file(&path).unwrap();
}
