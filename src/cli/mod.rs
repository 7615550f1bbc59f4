//! The command line: `serve` runs the agent, `creds` publishes how to reach it. It parses,
//! builds the agent's configuration and starts it; no agent logic lives here.

mod args;
mod control;
mod creds;
mod serve;

pub use args::{CredsArgs, ServeArgs};

pub const USAGE: &str = "\
usage: thinshadow <command> [options]

commands:
  serve    run the agent
  creds    print how to connect: addresses, port, user, password, certificate fingerprint
  status | watch                 the agent's modes and admin session | its events, as JSON lines
  mode management|remote-screen allow-auto|allow-by-request|deny     (root only)
  accept [consent|screen-access] | reject [consent|screen-access]
  terminate | view-only on|off | remote-session started|ended
                                 answer for the local user (root, --local-uid, --local-group)
  help     this text

serve options (flags override the config file, which overrides the defaults):
  --config PATH               TOML file with the settings below, keys as in brackets
                              (default /etc/thinshadow.toml if it exists)
  --listen ADDR:PORT          where to listen (default 0.0.0.0:3389) [listen]
  --screen SPEC               auto | kms[:CARD[:CONNECTOR]] | fbdev:PATH | xwd:PATH |
                              synthetic:WxH (default auto: KMS when a DRM master's framebuffer
                              can be read, e.g. a compositor's, else fbdev:/dev/fb0) [screen]
  --state-dir DIR             certificate and state (default /var/lib/thinshadow) [state_dir]
  --user NAME                 the user name admins log in with (default admin) [user]
  --handshake-timeout SECS    drop a client that has not logged in by then (default 15)
                              [handshake_timeout]
  --frame-interval MS         screen scan interval during a session (default 33)
                              [frame_interval]
  --scroll-copies on|off      send scrolled rows as copies the client makes (ScrBlt), to
                              clients that support them (default on) [scroll_copies]
  --bitmap-cache on|off       send whole 64x64 tiles through the client's bitmap cache
                              (Cache Bitmap Rev2 + MemBlt): content seen before costs one
                              small order (default on) [bitmap_cache]
  --max-handshakes N          handshakes in progress at once (default 8); when all are
                              taken the oldest one idle for 3 s makes room [max_handshakes]
  --handshakes-per-address N  handshakes one source address may have at once (default 3)
                              [handshakes_per_address]
  --tls-key-type rsa|ecdsa    key of a certificate made for a new state directory (default rsa,
                              as Windows; an existing one is kept) [tls_key_type]
  --tls-cert PEM --tls-key PEM  serve this certificate (then any intermediates) and key
                              instead (RSA or ECDSA) [tls_cert, tls_key]
  --rotation-period HOURS     new password this often, and at every start (default 24)
                              [rotation_period_hours]
  --rotate-after-session      also a new password when a session ends [rotate_after_session]
  --publish-hook PROGRAM      run after each rotation with the creds JSON on stdin
                              [publish_hook]
  --hook-timeout SECS         kill the hook after this long (default 10) [hook_timeout]
  --allow CIDR[,CIDR...]      only these source ranges may connect (default: all)
                              [allow, a list of strings]
  --lockout-after N           failed logins from one address before a lockout (default 5)
                              [lockout_after]
  --lockout-minutes M         how long a lockout lasts (default 5) [lockout_minutes]
  --control PATH              the control socket, where the local UI and the CLI answer the
                              access policy (default /run/thinshadow/control.sock) [control].
                              The policy is always on: the saved modes decide (default
                              management allow-auto, remote-screen allow-by-request)
  --local-uid UID             besides root, this user may answer on the control socket
                              [local_uid]
  --local-group GROUP         and the members of this group (a gid or a name; primary or
                              supplementary group of the peer process) [local_group]
  --consent-timeout SECS      how long the local user has to answer (default 30)
                              [consent_timeout]; per mode, winning over it:
  --consent-timeout-auto SECS       allow-auto; 0: sessions start at once (unattended
                              images; still audited, shown and ended as usual)
                              [consent_timeout_auto]
  --consent-timeout-request SECS    allow-by-request [consent_timeout_request]
  --consent-timeout-action-auto start|refuse      no answer in allow-auto (default start)
                              [consent_timeout_action_auto]
  --consent-timeout-action-request start|refuse   no answer in allow-by-request (default
                              refuse) [consent_timeout_action_request]
  --remote-processes NAME[,NAME...]  while an admin session exists or waits, a running
                              process of one of these names (/proc/PID/comm, polled every
                              2 s) means the local user is in a remote session, as
                              `remote-session started` does (default: none)
                              [remote_processes, a list of strings]
  --audit-syslog              audit lines to syslog (/dev/log, facility authpriv) instead
                              of stderr [audit_syslog]
  --audit-file PATH           also append audit lines to PATH [audit_file]
  --audit-file-max BYTES      past this, PATH becomes PATH.1 and a new PATH starts
                              (default 1048576) [audit_file_max]
  --audit-file-keep N         old audit files kept, PATH.1 ... PATH.N (default 4)
                              [audit_file_keep]
  --keyboard-layout NAME      the thin client's layout, for clients that type characters
                              (iOS, Android): us gb de fr es it ru (default us)
                              [keyboard_layout]
  --local-prompt auto|fb|off  fb: ask on the framebuffer (a box over the screen) and take the
                              answer from the local keyboard: Enter accepts, Esc rejects,
                              Ctrl+Alt+End ends a session; auto (default): fb on fbdev
                              screens while no UI registered on the control socket as the
                              prompt (`thinshadow prompt`); off: only for images whose UI
                              registers [local_prompt]
  --default-management-mode MODE     the modes when no saved state can be read (first
  --default-remote-screen-mode MODE  start, or both copies bad): allow-auto|allow-by-request|
                              deny (defaults allow-auto, allow-by-request)
                              [default_management_mode, default_remote_screen_mode]

control commands (status ... watch) options:
  --control PATH              the agent's control socket (default /run/thinshadow/control.sock)
  --state-dir DIR             mode only: with no agent at --control, root edits the modes
                              kept in DIR's state (default /var/lib/thinshadow); a running
                              agent reads them at its next start

creds options:
  --state-dir DIR             as for serve
  --json                      one JSON object: user, password, addresses, port, cert_sha256,
                              password_issued_at (what the publish hook gets)

logging: THINSHADOW_LOG or RUST_LOG = LEVEL[,TARGET=LEVEL...], LEVEL error|warn|info|debug
         (default info; dependencies warn unless named, e.g. info,sspi=debug,rustls=debug)
";

/// `__state-writer DIR [START]`: writes states until killed (at most 30 s).
#[cfg(feature = "test-hooks")]
fn state_writer(args: &[String]) -> Result<(), String> {
    let [dir, rest @ ..] = args else {
        return Err("__state-writer DIR [START]".into());
    };
    let start = match rest.first() {
        Some(text) => text.parse().map_err(|_| format!("bad start '{text}'"))?,
        None => 0,
    };
    let dir = std::path::Path::new(dir);
    crate::state::stress_writer(dir, start, std::time::Duration::from_secs(30))
        .map_err(|e| format!("{}: {e}", dir.display()))
}

/// Runs a command line; returns the process exit code.
pub fn run(args: &[String]) -> i32 {
    let (command, rest) = match args.split_first() {
        Some((command, rest)) => (command.as_str(), rest),
        None => {
            eprint!("{USAGE}");
            return 2;
        }
    };
    let result = match command {
        "serve" => ServeArgs::parse(rest).and_then(|a| serve::run(&a)),
        "creds" => CredsArgs::parse(rest).and_then(|a| creds::run(&a)),
        "status" | "mode" | "accept" | "reject" | "terminate" | "view-only" | "remote-session"
        | "watch" => control::run(args),
        // Hidden, tests only: the child the power-cut test kills in the middle of writes.
        #[cfg(feature = "test-hooks")]
        "__state-writer" => state_writer(rest),
        "help" | "--help" | "-h" => {
            print!("{USAGE}");
            return 0;
        }
        other => Err(format!("unknown command '{other}'")),
    };
    match result {
        Ok(()) => 0,
        Err(message) if message == args::HELP_SHOWN => 0,
        Err(message) => {
            eprintln!("thinshadow: {message}");
            1
        }
    }
}
