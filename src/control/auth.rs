//! Who may send which request, from the peer's SO_PEERCRED. A pure function, so every
//! case is a unit test.
//!
//! - `mode`: root only. The modes are the owner's (integrator's) policy, persisted across
//!   boots; the local user must not be able to loosen them.
//! - Everything else (`status`, `watch`, `accept`, `reject`, `terminate`, `view-only`,
//!   `remote-session`): root, the configured local user's uid, or a peer in the configured
//!   group (`--local-group`) as its primary or a supplementary group. `status` and `watch` too: they reveal when someone
//!   watches the screen and from which address, which is the local user's business and
//!   no other local account's (a compromised service could time its moves by it).
//!
//! SO_PEERCRED gives the primary gid; the supplementary groups come from SO_PEERGROUPS
//! (`peer.rs`), both recorded by the kernel at connect time.

use std::fmt;

use super::request::Request;
use crate::policy::By;

/// The peer's credentials as the kernel reports them at connect time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerCred {
    pub uid: u32,
    pub gid: u32,
    pub pid: i32,
    /// The configured local group is the peer's primary or one of its supplementary groups.
    pub in_local_group: bool,
}

impl From<PeerCred> for By {
    fn from(peer: PeerCred) -> By {
        By::Peer {
            uid: peer.uid,
            pid: peer.pid,
        }
    }
}

/// The local user (the thin client's UI account) from the configuration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LocalUser {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

impl LocalUser {
    /// Root or the local user: may use the socket at all.
    pub fn admits(&self, peer: PeerCred) -> bool {
        peer.uid == 0
            || self.uid == Some(peer.uid)
            || (self.gid.is_some() && (peer.in_local_group || self.gid == Some(peer.gid)))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denied {
    /// Only root changes modes.
    RootOnly,
    /// Neither root nor the configured local user or group.
    NotLocalUser,
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Denied::RootOnly => f.write_str("permission denied: only root changes modes"),
            Denied::NotLocalUser => {
                f.write_str("permission denied: only root and the local user may use this socket")
            }
        }
    }
}

pub fn authorize(request: &Request, peer: PeerCred, local: LocalUser) -> Result<(), Denied> {
    match request {
        Request::Mode { .. } if peer.uid != 0 => Err(Denied::RootOnly),
        _ if !local.admits(peer) => Err(Denied::NotLocalUser),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::request::ModeKind;
    use crate::policy::Mode;

    #[test]
    fn who_may_do_what() {
        let local = LocalUser {
            uid: Some(1000),
            gid: Some(50),
        };
        let peer = |uid, gid, pid, in_local_group| PeerCred {
            uid,
            gid,
            pid,
            in_local_group,
        };
        let root = peer(0, 0, 1, false);
        let user = peer(1000, 1000, 2, false);
        let grouped = peer(1001, 50, 3, false);
        let supplementary = peer(1003, 1003, 5, true);
        let other = peer(1002, 1002, 4, false);
        let mode = Request::Mode {
            which: ModeKind::Management,
            mode: Mode::AllowAuto,
        };
        let answering = [
            Request::Status,
            Request::Watch,
            Request::Accept(None),
            Request::Reject(None),
            Request::Terminate,
            Request::ViewOnly(true),
            Request::RemoteSession(true),
        ];
        assert_eq!(authorize(&mode, root, local), Ok(()));
        for peer in [user, grouped, supplementary, other] {
            assert_eq!(authorize(&mode, peer, local), Err(Denied::RootOnly));
        }
        for request in answering {
            for peer in [root, user, grouped, supplementary] {
                assert_eq!(
                    authorize(&request, peer, local),
                    Ok(()),
                    "{request:?} {peer:?}"
                );
            }
            assert_eq!(authorize(&request, other, local), Err(Denied::NotLocalUser));
            // With no local user configured, only root.
            assert_eq!(
                authorize(&request, user, LocalUser::default()),
                Err(Denied::NotLocalUser)
            );
            assert_eq!(authorize(&request, root, LocalUser::default()), Ok(()));
            // A stale membership flag means nothing once no group is configured.
            assert_eq!(
                authorize(&request, supplementary, LocalUser::default()),
                Err(Denied::NotLocalUser)
            );
        }
    }
}
