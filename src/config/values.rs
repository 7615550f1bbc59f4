//! The settings' value types: each checks itself as it is read, so a `Settings` holds only
//! values that passed. A value that is not the expected form fails with `invalid_value`;
//! one with a named bad part with `custom(detail)` (see `given::Refusal`).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::de::{Deserialize, Deserializer, Error, Unexpected};

use crate::policy::Allowlist;

fn not_the_form<E: Error>() -> E {
    E::invalid_value(Unexpected::Other("value"), &"the form the key names")
}

/// Text read with the type's `FromStr` (socket addresses, modes, key types, prompt choices).
pub fn parsed<'de, D: Deserializer<'de>, T: FromStr>(d: D) -> Result<T, D::Error> {
    String::deserialize(d)?.parse().map_err(|_| not_the_form())
}

/// A list of CIDR ranges; an empty list (or only blank entries) is everyone. A blank entry
/// beside real ones is an error: on an allowlist a slip must not widen it silently.
pub fn allowlist<'de, D: Deserializer<'de>>(d: D) -> Result<Allowlist, D::Error> {
    let entries = Vec::<String>::deserialize(d)?;
    let entries: Vec<&str> = entries.iter().map(|e| e.trim()).collect();
    if entries.iter().all(|e| e.is_empty()) {
        return Ok(Allowlist::all());
    }
    Allowlist::parse(&entries).map_err(|e| D::Error::custom(e.to_string()))
}

/// A whole number in MIN..=MAX.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Count<const MIN: u64, const MAX: u64>(u64);

impl<const MIN: u64, const MAX: u64> Count<MIN, MAX> {
    pub fn new(n: u64) -> Option<Self> {
        (MIN..=MAX).contains(&n).then_some(Count(n))
    }
    pub fn get(self) -> u64 {
        self.0
    }
    /// Every bound in `Settings` fits in a u32.
    pub fn as_u32(self) -> u32 {
        u32::try_from(self.0).unwrap_or(u32::MAX)
    }
    pub fn as_usize(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

impl<'de, const MIN: u64, const MAX: u64> Deserialize<'de> for Count<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Count::new(u64::deserialize(d)?).ok_or_else(not_the_form)
    }
}

/// A time span written as a whole number of units (seconds, minutes …), MIN..=MAX of them.
macro_rules! span {
    ($name:ident, $what:literal, $per_unit:expr) => {
        #[doc = concat!("A time span given in whole ", $what, ".")]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $name<const MIN: u64, const MAX: u64>(Duration);

        impl<const MIN: u64, const MAX: u64> $name<MIN, MAX> {
            pub fn new(units: u64) -> Option<Self> {
                (MIN..=MAX)
                    .contains(&units)
                    .then(|| $name($per_unit(units)))
            }
            /// Only a span that is a whole number of units in range.
            pub fn from_duration(span: Duration) -> Option<Self> {
                let unit = $per_unit(1).as_nanos();
                let nanos = span.as_nanos();
                if nanos % unit != 0 {
                    return None;
                }
                Self::new(u64::try_from(nanos / unit).ok()?)
            }
            pub fn get(self) -> Duration {
                self.0
            }
        }

        impl<'de, const MIN: u64, const MAX: u64> Deserialize<'de> for $name<MIN, MAX> {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                $name::new(u64::deserialize(d)?).ok_or_else(not_the_form)
            }
        }
    };
}

span!(Millis, "milliseconds", Duration::from_millis);
span!(Seconds, "seconds", Duration::from_secs);
span!(Minutes, "minutes", |n: u64| Duration::from_secs(n * 60));
span!(Hours, "hours", |n: u64| Duration::from_secs(n * 3600));

/// A text value that passed its key's check.
macro_rules! checked_text {
    ($(#[$doc:meta])* $name:ident, $check:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            pub fn new(text: &str) -> Option<Self> {
                let check: fn(&str) -> bool = $check;
                check(text).then(|| $name(text.to_owned()))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                $name::new(&String::deserialize(d)?).ok_or_else(not_the_form)
            }
        }
    };
}

checked_text!(
    /// `--screen`: checked when opened (a device may come and go), here only not empty.
    ScreenSpec,
    |t| !t.is_empty()
);
checked_text!(
    /// The admins' login name: plain, so no client turns it into DOMAIN\user or a UPN.
    UserName,
    |t| !t.is_empty() && t.len() <= 64 && !t.contains(['\\', '@', ' '])
);
checked_text!(
    /// A gid or a group name, looked up at start.
    GroupName,
    |t| !t.is_empty() && !t.contains([':', '/', ' '])
);
checked_text!(
    /// One of the layouts built in from src/input/layouts.
    LayoutName,
    |t| crate::input::layout::names().any(|name| name == t)
);

/// A path that is not empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilePath(PathBuf);

impl FilePath {
    pub fn new(path: impl Into<PathBuf>) -> Option<Self> {
        let path = path.into();
        (!path.as_os_str().is_empty()).then_some(FilePath(path))
    }
    pub fn as_path(&self) -> &Path {
        &self.0
    }
}

impl<'de> Deserialize<'de> for FilePath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        FilePath::new(String::deserialize(d)?).ok_or_else(not_the_form)
    }
}

/// Process names as the kernel shows them (`comm`), never paths; a name may hold a comma.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessNames(Vec<String>);

impl ProcessNames {
    pub fn names(&self) -> &[String] {
        &self.0
    }
}

impl<'de> Deserialize<'de> for ProcessNames {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let names: Vec<String> = Vec::<String>::deserialize(d)?
            .iter()
            .map(|name| name.trim())
            .filter(|name| !name.is_empty())
            .map(str::to_owned)
            .collect();
        match names.iter().find(|n| n.contains('/') || n.len() > 255) {
            Some(bad) => Err(D::Error::custom(format!(
                "{bad:?}: a process name, not a path"
            ))),
            None => Ok(ProcessNames(names)),
        }
    }
}

/// `on` or `off`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OnOff(pub bool);

impl<'de> Deserialize<'de> for OnOff {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match String::deserialize(d)?.as_str() {
            "on" => Ok(OnOff(true)),
            "off" => Ok(OnOff(false)),
            _ => Err(not_the_form()),
        }
    }
}
