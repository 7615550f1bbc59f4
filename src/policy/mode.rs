//! The two access modes (DESIGN.md §2) and their spelling in files, flags and JSON.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    /// The local user is asked; no answer within the timeout means yes.
    AllowAuto,
    /// The local user is asked; no answer within the timeout means no.
    AllowByRequest,
    Deny,
}

impl Mode {
    pub const ALL: [Mode; 3] = [Mode::AllowAuto, Mode::AllowByRequest, Mode::Deny];

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::AllowAuto => "allow-auto",
            Mode::AllowByRequest => "allow-by-request",
            Mode::Deny => "deny",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = ();

    fn from_str(text: &str) -> Result<Mode, ()> {
        Mode::ALL
            .into_iter()
            .find(|mode| mode.as_str() == text)
            .ok_or(())
    }
}

/// Both modes, as persisted in the state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Modes {
    /// Remote management: may an admin's session start at all.
    pub management: Mode,
    /// While the local user is inside a remote desktop/VDI session: may the admin see it.
    pub remote_screen: Mode,
}

impl Default for Modes {
    /// Management asks and starts when nobody answers, so an unattended bare board can be
    /// reached. The VDI screen belongs to another system and its owner, so seeing it
    /// needs the user's yes; a bare board never has such a session, so this costs it nothing.
    fn default() -> Self {
        Modes {
            management: Mode::AllowAuto,
            remote_screen: Mode::AllowByRequest,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spelling_round_trips() {
        for mode in Mode::ALL {
            assert_eq!(mode.as_str().parse::<Mode>(), Ok(mode));
        }
        assert!("allow".parse::<Mode>().is_err());
        assert!("Allow-Auto".parse::<Mode>().is_err());
    }

    #[test]
    fn defaults_let_a_bare_board_serve() {
        let modes = Modes::default();
        assert_eq!(modes.management, Mode::AllowAuto);
        assert_eq!(modes.remote_screen, Mode::AllowByRequest);
    }
}
