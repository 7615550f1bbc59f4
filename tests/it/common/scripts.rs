//! Helpers for tests that run hook programs.

use std::path::Path;

/// Writes an executable script from a child process: a write fd held in this
/// multi-threaded test process could leak into another test's fork and make exec fail
/// with ETXTBSY.
pub fn write_script(path: &Path, text: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg("cat > \"$1\" && chmod 755 \"$1\"")
        .arg("sh")
        .arg(path)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
}
