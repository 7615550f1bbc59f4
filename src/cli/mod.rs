//! The command line: `serve` runs the agent, `creds` publishes how to reach it.

mod args;
mod creds;
mod serve;

pub use args::{CredsArgs, ServeArgs};

pub const USAGE: &str = "\
usage: thinshadow <command> [options]

commands:
  serve    run the agent
  creds    print how to connect: addresses, port, user, password, certificate fingerprint
  help     this text

serve options:
  --listen ADDR:PORT          where to listen (default 0.0.0.0:3389)
  --screen SPEC               fbdev:PATH | xwd:PATH | synthetic:WxH (default fbdev:/dev/fb0)
  --state-dir DIR             certificate and state (default /var/lib/thinshadow)
  --user NAME                 the user name admins log in with (default admin)
  --handshake-timeout SECS    drop a client that has not logged in by then (default 15)
  --frame-interval MS         screen scan interval during a session (default 33)
  --max-handshakes N          handshakes in progress at once; more are closed (default 8)

creds options:
  --state-dir DIR             as for serve
  --json                      one JSON object: user, password, addresses, port, cert_sha256

logging: THINSHADOW_LOG or RUST_LOG = error | warn | info | debug (default info)
";

/// `__state-writer DIR [START]`: writes states until killed (at most 30 s).
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
        // Hidden: the child the power-cut test kills in the middle of writes.
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
