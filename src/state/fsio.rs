//! Atomic file replacement: write a temp file, fsync it, rename it over the old one,
//! fsync the directory. After a power cut the file is either the old or the new one.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

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

pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    write_atomic_steps(path, bytes, mode, &mut |_| Ok(()))
}

/// The temp file `write_atomic` uses for `path`.
pub fn temp_path(path: &Path) -> io::Result<PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    Ok(dir.join(format!(".{}.tmp", name.to_string_lossy())))
}

/// `write_atomic` with `after` called after each step. An error from `after` stops the
/// write right there and leaves everything as it is, as a crash would (fault injection).
pub fn write_atomic_steps(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    after: &mut dyn FnMut(Step) -> io::Result<()>,
) -> io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let tmp = temp_path(path)?;
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)?;
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
    File::open(dir)?.sync_all()?;
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

/// Creates the state directory (mode 0700) if it is missing.
pub fn ensure_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
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

    #[test]
    fn replaces_the_file_and_leaves_no_temp() {
        let dir = temp_dir("replace");
        let path = dir.join("state.bin");
        write_atomic(&path, b"one", 0o600).unwrap();
        write_atomic(&path, b"two", 0o600).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(names(&dir), ["state.bin"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn steps_come_in_order_and_a_stop_leaves_the_temp() {
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
        assert_eq!(names(&dir), [".state.bin.tmp", "state.bin"]);
        // The next write goes through over the leftover.
        write_atomic(&path, b"three", 0o600).unwrap();
        assert_eq!(names(&dir), ["state.bin"]);
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
}
