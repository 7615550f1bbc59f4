//! One writer per state directory: the agent holds an exclusive `flock` on `DIR/lock` for
//! its whole run, and `thinshadow mode` with no agent to ask takes it before editing the
//! state file, so the two never overwrite each other's changes.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

pub const LOCK_FILE: &str = "lock";

/// Held while it lives; the kernel drops the lock when the process ends, however it ends.
pub struct DirLock {
    _lock: Flock<File>,
}

/// Takes the directory's lock without waiting; None when another process holds it.
pub fn try_lock(dir: &Path) -> io::Result<Option<DirLock>> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(dir.join(LOCK_FILE))?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(Some(DirLock { _lock: lock })),
        Err((_, Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, errno)) => Err(io::Error::from(errno)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time() {
        let dir = std::env::temp_dir().join(format!("thinshadow-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let held = try_lock(&dir).unwrap().expect("free");
        // flock locks belong to the open file: a second open in this process conflicts too.
        assert!(try_lock(&dir).unwrap().is_none());
        drop(held);
        assert!(try_lock(&dir).unwrap().is_some());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
