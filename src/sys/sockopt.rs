//! SO_PEERGROUPS: the peer's supplementary groups as the kernel recorded them at connect.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use nix::libc;

/// SO_PEERGROUPS: the kernel says how much room it needs (ERANGE) when the list is longer.
pub(crate) fn peer_groups(fd: BorrowedFd<'_>, max_groups: usize) -> io::Result<Vec<u32>> {
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
        if count > max_groups {
            return Err(io::Error::other(format!(
                "{count} groups, more than we read"
            )));
        }
        groups.resize(count, 0);
    }
}
