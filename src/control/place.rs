//! Where the control socket lives: a directory only root (or the agent's own user) can
//! write, made 0755 if missing; the socket is bound under a fresh name there, given its
//! mode and renamed into place, so the final path is never chmod'ed (a path someone could
//! swap for a link). A stale socket from a previous run is replaced; anything else at the path is
//! refused.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use mio::net::UnixListener;

use crate::debug;

/// World-connectable on purpose: SO_PEERCRED decides who may do what (`auth.rs`), and a
/// narrower mode would only lock the local user's UI out.
pub const SOCKET_MODE: u32 = 0o666;
/// The socket's directory when the agent has to make it.
const DIR_MODE: u32 = 0o755;

/// Binds the listener at `path` after checking its directory (see the module docs).
pub fn bind(path: &Path) -> io::Result<UnixListener> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    check_dir(dir)?;
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            fs::remove_file(path)?;
            debug!("control: replaced a stale {}", path.display());
        }
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "something other than a socket is there; not replacing it",
            ));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    // Bound under a fresh name in the checked directory (only we can write there, so the
    // name cannot be swapped), given its mode, then renamed into place: the final path is
    // never chmod'ed, and the process umask is never touched (tests run threads).
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no socket file name"))?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(".{}.tmp", std::process::id()));
    let temp = dir.join(temp_name);
    match fs::remove_file(&temp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(&temp)?;
    let placed = fs::set_permissions(&temp, fs::Permissions::from_mode(SOCKET_MODE))
        .and_then(|()| fs::rename(&temp, path));
    if let Err(e) = placed {
        let _ = fs::remove_file(&temp);
        return Err(e);
    }
    Ok(listener)
}

/// Makes `dir` (0755) when missing; refuses one another user owns or that group or others
/// may write, where someone could replace the socket with their own.
pub fn check_dir(dir: &Path) -> io::Result<()> {
    match fs::DirBuilder::new().mode(DIR_MODE).create(dir) {
        Ok(()) => {
            // The umask may have taken the others' search bit the local UI needs.
            File::open(dir)?.set_permissions(fs::Permissions::from_mode(DIR_MODE))?;
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let meta = File::open(dir)?.metadata()?;
    let euid = nix::unistd::geteuid().as_raw();
    let refuse = |why: String| {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("directory {}: {why}", dir.display()),
        ))
    };
    if !meta.is_dir() {
        return refuse("not a directory".into());
    }
    if meta.uid() != 0 && meta.uid() != euid {
        return refuse(format!("owned by uid {}, not root", meta.uid()));
    }
    if meta.mode() & 0o022 != 0 {
        return refuse(format!(
            "mode {:04o} lets group or others write it",
            meta.mode() & 0o7777
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::stat::{Mode, umask};
    use std::path::PathBuf;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("thinshadow-place-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        dir
    }

    fn mode_of(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().mode() & 0o7777
    }

    #[test]
    fn the_socket_has_its_mode_from_birth_and_a_missing_directory_is_made() {
        let dir = temp_dir("made");
        let path = dir.join("run").join("control.sock");
        let old = umask(Mode::from_bits_truncate(0o077));
        let bound = bind(&path);
        umask(old);
        let listener = bound.unwrap();
        assert_eq!(mode_of(&path), SOCKET_MODE, "whatever the umask was");
        assert_eq!(mode_of(path.parent().unwrap()), DIR_MODE);
        // A stale socket is replaced; the process umask is back as it was.
        drop(listener);
        let _again = bind(&path).unwrap();
        assert_eq!(mode_of(&path), SOCKET_MODE);
        let now = umask(Mode::from_bits_truncate(0o022));
        umask(now);
        assert_eq!(now.bits(), old.bits());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_directory_others_may_write_or_a_non_socket_is_refused() {
        let dir = temp_dir("refused");
        let open = dir.join("open");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
        let err = bind(&open.join("control.sock")).unwrap_err();
        assert!(
            err.to_string().contains("lets group or others write"),
            "{err}"
        );
        assert!(!open.join("control.sock").exists());
        fs::set_permissions(&open, fs::Permissions::from_mode(0o775)).unwrap();
        assert!(bind(&open.join("control.sock")).is_err(), "group-writable");
        // /tmp: world-writable, sticky or not.
        assert!(check_dir(Path::new("/tmp")).is_err());
        // A file (or a link to one) at the path is not replaced.
        let victim = dir.join("victim");
        fs::write(&victim, b"keep").unwrap();
        // Whatever the umask made it (0644, 0600 under umask 077): bind must not change it.
        let victim_mode = mode_of(&victim);
        let link = dir.join("control.sock");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let err = bind(&link).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists, "{err}");
        assert_eq!(fs::read(&victim).unwrap(), b"keep");
        assert_eq!(mode_of(&victim), victim_mode);
        assert!(bind(&victim).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
