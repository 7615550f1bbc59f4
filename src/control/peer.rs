//! The peer's credentials as the kernel recorded them at connect time: SO_PEERCRED (uid,
//! gid, pid) and SO_PEERGROUPS (supplementary groups, Linux 4.13). Both are snapshots, so
//! a peer that exits and whose pid is reused cannot lend us another process's groups, as
//! reading /proc/PID/status would.

use std::io;
use std::os::fd::BorrowedFd;

use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};

use super::auth::{LocalUser, PeerCred};

/// More supplementary groups than any real account has; a peer past this is not trusted
/// by group (it still may be by uid).
const MAX_GROUPS: usize = 4096;

/// The peer's credentials, with its membership of the configured local group resolved.
pub fn peer_cred(fd: BorrowedFd<'_>, local: LocalUser) -> io::Result<PeerCred> {
    let cred = getsockopt(&fd, PeerCredentials).map_err(io::Error::from)?;
    let (uid, gid) = (cred.uid(), cred.gid());
    let in_local_group = match local.gid {
        None => false,
        Some(group) if group == gid => true,
        // Only ask for the list when it can matter.
        Some(group) => match supplementary_groups(fd) {
            Ok(groups) => groups.contains(&group),
            Err(e) => {
                crate::debug!("control: no supplementary groups for uid {uid}: {e}");
                false
            }
        },
    };
    Ok(PeerCred {
        uid,
        gid,
        pid: cred.pid(),
        in_local_group,
    })
}

/// The peer's supplementary groups (SO_PEERGROUPS, the one sockopt nix has no wrapper for).
pub fn supplementary_groups(fd: BorrowedFd<'_>) -> io::Result<Vec<u32>> {
    crate::sys::sockopt::peer_groups(fd, MAX_GROUPS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn our_own_groups_come_back() {
        let (a, _b) = UnixStream::pair().unwrap();
        let mut want: Vec<u32> = nix::unistd::getgroups()
            .unwrap()
            .iter()
            .map(|g| g.as_raw())
            .collect();
        let mut got = supplementary_groups(a.as_fd()).unwrap();
        want.sort_unstable();
        got.sort_unstable();
        assert_eq!(got, want);
        let me = peer_cred(a.as_fd(), LocalUser::default()).unwrap();
        assert_eq!(me.uid, nix::unistd::geteuid().as_raw());
        assert!(!me.in_local_group, "no group configured");
        let mine = LocalUser {
            uid: None,
            gid: Some(nix::unistd::getegid().as_raw()),
        };
        assert!(peer_cred(a.as_fd(), mine).unwrap().in_local_group);
    }
}
