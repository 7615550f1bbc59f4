//! Atomic file replacement: write a fresh temp file, fsync it, rename it over the old one,
//! fsync the directory. After a power cut the file is either the old or the new one.
//!
//! Temp files are unique (`.NAME.<pid>-<n>-<salt>.tmp`), created with
//! `O_CREAT | O_EXCL | O_NOFOLLOW` and then given their exact mode on the open fd, so a
//! file or link someone left under that name is never written through nor reused.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The points a write can be cut at, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// The temp file holds the bytes, maybe only in the page cache.
    TempWritten,
    TempSynced,
    /// The new file has the real name; the directory entry may not be on disk yet.
    Renamed,
    DirSynced,
}

impl Step {
    pub const ALL: [Step; 4] = [
        Step::TempWritten,
        Step::TempSynced,
        Step::Renamed,
        Step::DirSynced,
    ];
}

/// Names tried before giving up: a clash needs someone creating our exact names.
const TEMP_TRIES: usize = 16;
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    write_atomic_steps(path, bytes, mode, &mut |_| Ok(()))
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

fn file_name(path: &Path) -> io::Result<String> {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))
}

/// True when `name` (a directory entry) is one of the temp files made for `path`.
pub fn is_temp_of(path: &Path, name: &str) -> bool {
    let Ok(target) = file_name(path) else {
        return false;
    };
    let Some(middle) = name
        .strip_prefix('.')
        .and_then(|rest| rest.strip_prefix(target.as_str()))
        .and_then(|rest| rest.strip_suffix(".tmp"))
    else {
        return false;
    };
    // Empty: `.NAME.tmp`, the fixed name older versions used. Else `.<pid>-<n>-<salt>`.
    if middle.is_empty() {
        return true;
    }
    let parts: Vec<&str> = middle.strip_prefix('.').unwrap_or("").split('-').collect();
    matches!(parts.as_slice(), [pid, n, salt]
        if !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit())
            && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
            && salt.len() == 8 && salt.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A new temp file beside `path`, created exclusively (never through a link) with exactly
/// `mode`. For writers that need their own sequence of steps (e.g. a pair of files).
pub fn create_temp(path: &Path, mode: u32) -> io::Result<(PathBuf, File)> {
    let name = file_name(path)?;
    let dir = parent(path);
    for _ in 0..TEMP_TRIES {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut salt = [0u8; 4];
        // Uniqueness comes from O_EXCL; the salt only makes the name hard to guess.
        let _ = getrandom::fill(&mut salt);
        let tmp = dir.join(format!(
            ".{name}.{}-{n}-{:08x}.tmp",
            std::process::id(),
            u32::from_le_bytes(salt)
        ));
        let opened = OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
            .mode(mode)
            .open(&tmp);
        match opened {
            Ok(file) => {
                // The umask may have narrowed it; fchmod on the fd, never by path.
                if let Err(e) = file.set_permissions(fs::Permissions::from_mode(mode)) {
                    let _ = fs::remove_file(&tmp);
                    return Err(e);
                }
                return Ok((tmp, file));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("no free temp file name beside {}", path.display()),
    ))
}

/// Removes temp files a crash left beside `path`; returns how many. Call it only while
/// no one else writes `path` (under the state directory's lock).
pub fn remove_stale_temps(path: &Path) -> usize {
    let Ok(entries) = fs::read_dir(parent(path)) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        if is_temp_of(path, &name.to_string_lossy()) && fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// Fsyncs a directory, so a rename in it is on disk.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// `write_atomic` with `after` called after each step. An error from `after` stops the
/// write right there and leaves everything as it is, as a crash would (fault injection).
pub fn write_atomic_steps(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    after: &mut dyn FnMut(Step) -> io::Result<()>,
) -> io::Result<()> {
    let dir = parent(path);
    let (tmp, file) = create_temp(path, mode)?;
    let mut file = RemoveOnError {
        file,
        path: &tmp,
        armed: true,
    };
    file.run(|f| f.write_all(bytes))?;
    after(Step::TempWritten)?;
    file.run(|f| f.sync_all())?;
    after(Step::TempSynced)?;
    file.run(|_| fs::rename(&tmp, path))?;
    file.armed = false;
    after(Step::Renamed)?;
    sync_dir(dir)?;
    after(Step::DirSynced)
}

/// Removes the temp file when one of our own steps fails (a full disk keeps no litter);
/// an injected stop leaves it, like a crash.
struct RemoveOnError<'a> {
    file: File,
    path: &'a Path,
    armed: bool,
}

impl RemoveOnError<'_> {
    fn run(&mut self, op: impl FnOnce(&mut File) -> io::Result<()>) -> io::Result<()> {
        let result = op(&mut self.file);
        if result.is_err() && self.armed {
            let _ = fs::remove_file(self.path);
        }
        result
    }
}

/// Creates the state directory with mode 0700, or makes an existing one 0700 (with a log
/// line) when it was wider. Refused: not a directory, or owned by another user (who could
/// swap the files in it).
pub fn ensure_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    match fs::metadata(dir) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?,
        Err(e) => return Err(e),
    }
    // Checked and fixed on the open directory, so a rename in between changes nothing.
    let handle = File::open(dir)?;
    let meta = handle.metadata()?;
    if !meta.is_dir() {
        return Err(io::Error::other("not a directory"));
    }
    let euid = nix::unistd::geteuid().as_raw();
    if meta.uid() != euid {
        return Err(io::Error::other(format!(
            "owned by uid {}, not by this user (uid {euid})",
            meta.uid()
        )));
    }
    let mode = meta.mode() & 0o7777;
    if mode != 0o700 {
        handle.set_permissions(fs::Permissions::from_mode(0o700))?;
        if mode & 0o077 != 0 {
            crate::warn!(
                "state directory {}: mode {mode:04o} let others in; set to 0700",
                dir.display()
            );
        }
    }
    Ok(())
}
#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("thinshadow-fsio-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        ensure_dir(&dir).unwrap();
        dir
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn mode_of(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().mode() & 0o7777
    }

    #[test]
    fn replaces_the_file_and_leaves_no_temp() {
        let dir = temp_dir("replace");
        let path = dir.join("state.bin");
        write_atomic(&path, b"one", 0o600).unwrap();
        write_atomic(&path, b"two", 0o644).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(mode_of(&path), 0o644, "the exact mode, whatever the umask");
        assert_eq!(names(&dir), ["state.bin"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn steps_come_in_order_and_a_stop_leaves_a_temp_never_reused() {
        let dir = temp_dir("steps");
        let path = dir.join("state.bin");
        let mut seen = Vec::new();
        write_atomic_steps(&path, b"one", 0o600, &mut |step| {
            seen.push(step);
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, Step::ALL);
        let stop = write_atomic_steps(&path, b"two", 0o600, &mut |step| {
            if step == Step::TempSynced {
                Err(io::Error::other("power cut"))
            } else {
                Ok(())
            }
        });
        assert!(stop.is_err());
        assert_eq!(fs::read(&path).unwrap(), b"one");
        let left = names(&dir);
        assert_eq!(left.len(), 2, "{left:?}");
        let stale = dir.join(&left[0]);
        assert!(is_temp_of(&path, &left[0]), "{left:?}");
        // The next write takes a name of its own: the leftover stays as it was.
        write_atomic(&path, b"three", 0o600).unwrap();
        assert_eq!(fs::read(&stale).unwrap(), b"two");
        assert_eq!(fs::read(&path).unwrap(), b"three");
        assert_eq!(remove_stale_temps(&path), 1);
        assert_eq!(names(&dir), ["state.bin"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn temp_names_are_fresh_and_links_are_not_followed() {
        let dir = temp_dir("links");
        let path = dir.join("state.bin");
        let victim = dir.join("victim");
        fs::write(&victim, b"keep").unwrap();
        // The fixed name the old code used is a link to a file that must stay as it is.
        std::os::unix::fs::symlink(&victim, dir.join(".state.bin.tmp")).unwrap();
        let (a, file_a) = create_temp(&path, 0o600).unwrap();
        let (b, _file_b) = create_temp(&path, 0o600).unwrap();
        assert_ne!(a, b);
        assert_eq!(mode_of(&a), 0o600);
        drop(file_a);
        write_atomic(&path, b"new", 0o600).unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"keep");
        assert!(is_temp_of(&path, ".state.bin.tmp"));
        assert!(is_temp_of(&path, ".state.bin.12-0-00c0ffee.tmp"));
        assert!(
            !is_temp_of(&path, ".state.bin.prev.12-0-00c0ffee.tmp"),
            "another file's"
        );
        assert!(!is_temp_of(&path, ".state.bin.x-0-00c0ffee.tmp"));
        assert!(!is_temp_of(&path, "state.bin"));
        assert!(!is_temp_of(&path, ".other.bin.1.tmp"));
        // The cleanup removes the link, not what it points at.
        assert_eq!(remove_stale_temps(&path), 3);
        assert_eq!(fs::read(&victim).unwrap(), b"keep");
        assert_eq!(names(&dir), ["state.bin", "victim"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_write_removes_its_temp() {
        let dir = temp_dir("fail");
        // Renaming a file over a directory fails after the temp file was written.
        let path = dir.join("taken");
        fs::create_dir(&path).unwrap();
        fs::write(path.join("x"), b"x").unwrap();
        assert!(write_atomic(&path, b"bytes", 0o600).is_err());
        assert_eq!(names(&dir), ["taken"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_directory_is_made_or_fixed_to_0700() {
        let dir = temp_dir("mode");
        assert_eq!(mode_of(&dir), 0o700);
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        ensure_dir(&dir).unwrap();
        assert_eq!(mode_of(&dir), 0o700, "a wide mode is fixed");
        let nested = dir.join("a/b");
        ensure_dir(&nested).unwrap();
        assert_eq!(mode_of(&nested), 0o700);
        let file = dir.join("file");
        fs::write(&file, b"").unwrap();
        assert!(ensure_dir(&file).is_err(), "a file is no directory");
        fs::remove_dir_all(&dir).unwrap();
    }
}
