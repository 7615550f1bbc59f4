//! The settings' names: the file's key, the flag, and the form an error message asks for.
//! The values' types and checks are `Settings`' fields; a test keeps the two in step.

#[derive(Debug)]
pub struct Key {
    /// In the file, and the field of `Settings`.
    pub name: &'static str,
    /// On the command line.
    pub flag: &'static str,
    /// A flag that needs no value: present means true (`--flag=false` works too).
    pub switch: bool,
    /// What is expected, for error messages.
    pub form: &'static str,
}

pub const KEYS: &[Key] = &[
    Key {
        name: "listen",
        flag: "--listen",
        switch: false,
        form: "ADDR:PORT, e.g. 0.0.0.0:3389",
    },
    Key {
        name: "screen",
        flag: "--screen",
        switch: false,
        form: "auto, kms[:CARD[:CONNECTOR]], fbdev:PATH, xwd:PATH or synthetic:WxH",
    },
    Key {
        name: "state_dir",
        flag: "--state-dir",
        switch: false,
        form: "a directory",
    },
    Key {
        name: "user",
        flag: "--user",
        switch: false,
        form: "a plain user name (1 to 64 characters, no \\, @ or space)",
    },
    Key {
        name: "handshake_timeout",
        flag: "--handshake-timeout",
        switch: false,
        form: "seconds (1 to 600)",
    },
    Key {
        name: "frame_interval",
        flag: "--frame-interval",
        switch: false,
        form: "milliseconds (5 to 10000)",
    },
    Key {
        name: "max_handshakes",
        flag: "--max-handshakes",
        switch: false,
        form: "a count (1 to 256)",
    },
    Key {
        name: "rotation_period_hours",
        flag: "--rotation-period",
        switch: false,
        form: "hours (1 to 720)",
    },
    Key {
        name: "rotate_after_session",
        flag: "--rotate-after-session",
        switch: true,
        form: "true or false",
    },
    Key {
        name: "publish_hook",
        flag: "--publish-hook",
        switch: false,
        form: "a program to run after each rotation, e.g. /usr/libexec/publish-creds",
    },
    Key {
        name: "hook_timeout",
        flag: "--hook-timeout",
        switch: false,
        form: "seconds (1 to 300)",
    },
    Key {
        name: "lockout_after",
        flag: "--lockout-after",
        switch: false,
        form: "a count of failed logins (1 to 100)",
    },
    Key {
        name: "lockout_minutes",
        flag: "--lockout-minutes",
        switch: false,
        form: "minutes (1 to 1440)",
    },
    Key {
        name: "allow",
        flag: "--allow",
        switch: false,
        form: "ADDR/PREFIX ranges, e.g. 10.0.0.0/8 or fd00::/8",
    },
    Key {
        name: "consent_timeout",
        flag: "--consent-timeout",
        switch: false,
        form: "seconds (1 to 3600)",
    },
    Key {
        name: "consent_timeout_auto",
        flag: "--consent-timeout-auto",
        switch: false,
        form: "seconds (0 to 3600; 0: allow-auto sessions start at once, for unattended images)",
    },
    Key {
        name: "consent_timeout_request",
        flag: "--consent-timeout-request",
        switch: false,
        form: "seconds (1 to 3600)",
    },
    Key {
        name: "consent_timeout_action_auto",
        flag: "--consent-timeout-action-auto",
        switch: false,
        form: "start or refuse",
    },
    Key {
        name: "consent_timeout_action_request",
        flag: "--consent-timeout-action-request",
        switch: false,
        form: "start or refuse",
    },
    Key {
        name: "audit_syslog",
        flag: "--audit-syslog",
        switch: true,
        form: "true or false",
    },
    Key {
        name: "audit_file",
        flag: "--audit-file",
        switch: false,
        form: "a file path, e.g. /var/log/thinshadow-audit.log",
    },
    Key {
        name: "audit_file_max",
        flag: "--audit-file-max",
        switch: false,
        form: "bytes (4096 to 1073741824)",
    },
    Key {
        name: "remote_processes",
        flag: "--remote-processes",
        switch: false,
        form: "process names, e.g. xfreerdp,wfica,vmware-view",
    },
    Key {
        name: "local_prompt",
        flag: "--local-prompt",
        switch: false,
        form: "auto (the framebuffer prompt unless a UI registered on the control socket), fb or off",
    },
    Key {
        name: "control",
        flag: "--control",
        switch: false,
        form: "a socket path, e.g. /run/thinshadow/control.sock",
    },
    Key {
        name: "local_uid",
        flag: "--local-uid",
        switch: false,
        form: "a user id",
    },
    Key {
        name: "local_group",
        flag: "--local-group",
        switch: false,
        form: "a group id or name",
    },
    Key {
        name: "handshakes_per_address",
        flag: "--handshakes-per-address",
        switch: false,
        form: "a count (1 to 256)",
    },
    Key {
        name: "audit_file_keep",
        flag: "--audit-file-keep",
        switch: false,
        form: "old audit files to keep (1 to 100)",
    },
    Key {
        name: "keyboard_layout",
        flag: "--keyboard-layout",
        switch: false,
        form: "a layout in src/input/layouts: us, gb, de, fr, es, it or ru",
    },
    Key {
        name: "scroll_copies",
        flag: "--scroll-copies",
        switch: false,
        form: "on (scrolled rows become copies the client does, if it supports them) or off",
    },
    Key {
        name: "bitmap_cache",
        flag: "--bitmap-cache",
        switch: false,
        form: "on (whole tiles go through the client's bitmap cache, if it has one) or off",
    },
    Key {
        name: "default_management_mode",
        flag: "--default-management-mode",
        switch: false,
        form: "allow-auto, allow-by-request or deny (when no saved state can be read)",
    },
    Key {
        name: "default_remote_screen_mode",
        flag: "--default-remote-screen-mode",
        switch: false,
        form: "allow-auto, allow-by-request or deny (when no saved state can be read)",
    },
    Key {
        name: "tls_key_type",
        flag: "--tls-key-type",
        switch: false,
        form: "rsa (RSA-2048, as Windows; every client) or ecdsa (P-256), for a new certificate",
    },
    Key {
        name: "tls_cert",
        flag: "--tls-cert",
        switch: false,
        form: "a PEM file: the certificate, then any intermediates",
    },
    Key {
        name: "tls_key",
        flag: "--tls-key",
        switch: false,
        form: "a PEM file: the certificate's private key (PKCS#8, PKCS#1 or SEC1)",
    },
];

pub fn by_name(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|key| key.name == name)
}

pub fn by_flag(flag: &str) -> Option<&'static Key> {
    KEYS.iter().find(|key| key.flag == flag)
}
