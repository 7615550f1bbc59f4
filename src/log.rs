//! One line per event on stderr, with a level; filtered by `THINSHADOW_LOG` or `RUST_LOG`:
//! a level (`error`, `warn`, `info`, `debug`) for our own lines, and `target=level` entries for
//! the dependencies' (`rustls=debug,ironrdp=info`), which reach us through the `log` facade
//! and show at `warn` unless told otherwise.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Error => "ERROR",
            Level::Warn => "WARN",
            Level::Info => "INFO",
            Level::Debug => "DEBUG",
        }
    }

    fn parse(text: &str) -> Option<Level> {
        match text.trim().to_ascii_lowercase().as_str() {
            "error" => Some(Level::Error),
            "warn" | "warning" => Some(Level::Warn),
            "info" => Some(Level::Info),
            "debug" | "trace" => Some(Level::Debug),
            _ => None,
        }
    }
}

static MAX_LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);

/// What `THINSHADOW_LOG` / `RUST_LOG` say: our level, and one level per dependency target.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    pub ours: Option<Level>,
    /// `(target prefix, level)`; the longest matching prefix wins.
    pub targets: Vec<(String, Level)>,
}

/// Dependencies are quiet unless a directive names them.
const DEPENDENCY_LEVEL: Level = Level::Warn;

/// Warnings about what clients do that are no fault and no news, shown only when named:
/// rustls's "Illegal SNI extension: ignoring IP address" comes with every xfreerdp login.
const QUIETER: &[(&str, Level)] = &[("rustls::msgs::handshake", Level::Error)];

fn matches(prefix: &str, target: &str) -> bool {
    target == prefix
        || target
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with("::") || rest.starts_with('_'))
}

impl Filter {
    /// `debug`, `sspi=debug`, `info,rustls=debug`; unknown entries are ignored.
    pub fn parse(text: &str) -> Filter {
        let mut filter = Filter::default();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            match entry.split_once('=') {
                None => filter.ours = Level::parse(entry).or(filter.ours),
                Some((target, level)) => {
                    if let Some(level) = Level::parse(level) {
                        filter.targets.push((target.trim().to_owned(), level));
                    }
                }
            }
        }
        filter
    }

    /// The level a dependency's `target` (e.g. `rustls::server::hs`) is shown at.
    pub fn level_for(&self, target: &str) -> Level {
        let named = self
            .targets
            .iter()
            .filter(|(prefix, _)| matches(prefix, target))
            .max_by_key(|(prefix, _)| prefix.len())
            .map(|(_, level)| *level);
        let quieter = || {
            QUIETER
                .iter()
                .find(|(prefix, _)| matches(prefix, target))
                .map(|(_, level)| *level)
        };
        named.or_else(quieter).unwrap_or(DEPENDENCY_LEVEL)
    }
}

static DEPENDENCIES: OnceLock<Filter> = OnceLock::new();

/// Writes the dependencies' `log` records as our lines, target first.
struct Bridge;

impl ::log::Log for Bridge {
    fn enabled(&self, metadata: &::log::Metadata<'_>) -> bool {
        let level = match metadata.level() {
            ::log::Level::Error => Level::Error,
            ::log::Level::Warn => Level::Warn,
            ::log::Level::Info => Level::Info,
            ::log::Level::Debug | ::log::Level::Trace => Level::Debug,
        };
        DEPENDENCIES
            .get()
            .is_some_and(|f| level <= f.level_for(metadata.target()))
    }

    fn log(&self, record: &::log::Record<'_>) {
        if self.enabled(record.metadata()) {
            let level = match record.level() {
                ::log::Level::Error => Level::Error,
                ::log::Level::Warn => Level::Warn,
                ::log::Level::Info => Level::Info,
                ::log::Level::Debug | ::log::Level::Trace => Level::Debug,
            };
            write(
                level,
                format_args!("{}: {}", record.target(), record.args()),
            );
        }
    }

    fn flush(&self) {}
}

/// Reads the levels from the environment once, at start, and takes over the `log` facade.
pub fn init_from_env() {
    let text = std::env::var("THINSHADOW_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_default();
    let filter = Filter::parse(&text);
    if let Some(level) = filter.ours {
        MAX_LEVEL.store(level as u8, Ordering::Relaxed);
    }
    let most = filter
        .targets
        .iter()
        .map(|(_, level)| *level)
        .chain([DEPENDENCY_LEVEL])
        .max()
        .unwrap_or(DEPENDENCY_LEVEL);
    let _ = DEPENDENCIES.set(filter);
    if ::log::set_logger(&Bridge).is_ok() {
        ::log::set_max_level(match most {
            Level::Error => ::log::LevelFilter::Error,
            Level::Warn => ::log::LevelFilter::Warn,
            Level::Info => ::log::LevelFilter::Info,
            Level::Debug => ::log::LevelFilter::Trace,
        });
    }
}

/// Turns every level off; for the fuzz entry points, where a warning per input costs more
/// than the parsing it reports on. The agent never calls it.
pub fn silence() {
    MAX_LEVEL.store(0, Ordering::Relaxed);
}

pub fn enabled(level: Level) -> bool {
    level as u8 <= MAX_LEVEL.load(Ordering::Relaxed)
}

#[doc(hidden)]
pub fn write(level: Level, args: std::fmt::Arguments<'_>) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    // One write per line so lines never interleave; a failed write (console gone) is
    // ignored rather than a panic, which eprint! would be.
    let line = format!(
        "{}.{:03} {:5} {}\n",
        now.as_secs(),
        now.subsec_millis(),
        level.name(),
        args
    );
    let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), line.as_bytes());
}

#[macro_export]
macro_rules! log {
    ($level:expr, $($arg:tt)*) => {
        if $crate::log::enabled($level) {
            $crate::log::write($level, format_args!($($arg)*));
        }
    };
}
#[macro_export]
macro_rules! error { ($($arg:tt)*) => { $crate::log!($crate::log::Level::Error, $($arg)*) }; }
#[macro_export]
macro_rules! warn { ($($arg:tt)*) => { $crate::log!($crate::log::Level::Warn, $($arg)*) }; }
#[macro_export]
macro_rules! info { ($($arg:tt)*) => { $crate::log!($crate::log::Level::Info, $($arg)*) }; }
#[macro_export]
macro_rules! debug { ($($arg:tt)*) => { $crate::log!($crate::log::Level::Debug, $($arg)*) }; }

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_set_our_level_and_each_dependency() {
        let filter = Filter::parse("debug, rustls=info,ironrdp_acceptor=debug,bogus=loud");
        assert_eq!(filter.ours, Some(Level::Debug));
        assert_eq!(filter.level_for("rustls::server::hs"), Level::Info);
        assert_eq!(
            filter.level_for("ironrdp_acceptor::connection"),
            Level::Debug
        );
        // Unnamed dependencies stay at warn; a prefix must end at a path boundary.
        assert_eq!(filter.level_for("sspi::ntlm"), Level::Warn);
        assert_eq!(filter.level_for("rustlsx"), Level::Warn);
        assert_eq!(Filter::parse("sspi=debug").ours, None);
        // Client behaviour that is no fault stays out of the log unless asked for.
        assert_eq!(
            Filter::default().level_for("rustls::msgs::handshake"),
            Level::Error
        );
        assert_eq!(filter.level_for("rustls::msgs::handshake"), Level::Info);
    }
}
