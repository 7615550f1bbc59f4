//! The peer's credentials as the kernel recorded them at connect time: SO_PEERCRED (uid,
//! gid, pid) and SO_PEERGROUPS (supplementary groups, Linux 4.13). Both are snapshots, so
//! a peer that exits and whose pid is reused cannot lend us another process's groups, as
//! reading /proc/PID/status would.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use nix::libc;
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

/// SO_PEERGROUPS: the kernel says how much room it needs (ERANGE) when the list is longer.
pub fn supplementary_groups(fd: BorrowedFd<'_>) -> io::Result<Vec<u32>> {
    let mut groups: Vec<libc::gid_t> = vec![0; 64];
    loop {
        let room = groups.len() * size_of::<libc::gid_t>();
        let mut len = libc::socklen_t::try_from(room).map_err(io::Error::other)?;
        // SAFETY: `groups` is valid for `len` bytes and outlives the call; the kernel
        // writes at most `len` bytes and stores the length it wrote (or needs) in `len`.
        let rc = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PEERGROUPS,
                groups.as_mut_ptr().cast(),
                &mut len,
            )
        };
        let count = len as usize / size_of::<libc::gid_t>();
        if rc == 0 {
            groups.truncate(count);
            return Ok(groups);
        }
        let error = io::Error::last_os_error();
        if error.raw_os_error() != Some(libc::ERANGE) || count <= groups.len() {
            return Err(error);
        }
        if count > MAX_GROUPS {
            return Err(io::Error::other(format!(
                "{count} groups, more than we read"
            )));
        }
        groups.resize(count, 0);
    }
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
