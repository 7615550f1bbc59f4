//! The `Source` seam and `open`, which picks one from a spec string.

use core::fmt;
use std::io;

use nix::errno::Errno;

use super::fbdev::Fbdev;
use super::frame::{Frame, PixelFormat};
use super::kms_core::KmsError;
use super::synthetic::Synthetic;
use super::xwd::{Xwd, XwdError};

/// Where pictures come from.
pub trait Source {
    /// The current picture, borrowed (mmap for fbdev/xwd: no copy). Its size may differ from the
    /// previous call; the caller follows it.
    fn frame(&mut self) -> Result<Frame<'_>, SourceError>;
    /// One line for logs, e.g. "fbdev:/dev/fb0 1024x768 XRGB8888".
    fn describe(&self) -> String;
    /// `auto` decides again which screen to mirror (a compositor may have taken the display
    /// since the agent started). True when the source changed; the others never do.
    fn reselect(&mut self) -> bool {
        false
    }
    /// The pointer on a cursor plane, where the source has one (KMS); the others draw their
    /// pointer into the picture.
    fn cursor(&mut self) -> super::Cursor {
        super::Cursor::None
    }
}

/// Largest synthetic side: RDP desktops stop at 8192 too, and it bounds the allocation.
pub const MAX_SYNTHETIC_SIDE: u16 = 8192;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceError {
    /// The spec is none of the accepted forms.
    Spec(String),
    /// Opening the device or file failed.
    Open { path: String, errno: Errno },
    /// A query (ioctl, fstat) failed.
    Query {
        path: String,
        call: &'static str,
        errno: Errno,
    },
    /// mmap failed.
    Map { path: String, errno: Errno },
    /// Not a true-colour framebuffer (palette, FOURCC, grayscale, ...).
    Visual { path: String, visual: u32 },
    /// A pixel layout we cannot convert.
    Format { path: String, format: PixelFormat },
    /// The reported picture does not fit the memory behind it.
    Geometry {
        path: String,
        width: u32,
        height: u32,
        stride: u64,
        need: u64,
        have: u64,
    },
    /// An XWD file that is truncated or not what Xvfb writes.
    Xwd { path: String, problem: XwdError },
    /// A DRM card that shows no picture we can read.
    Kms { path: String, problem: KmsError },
}

impl SourceError {
    pub(crate) fn open(path: &str, err: &io::Error) -> Self {
        SourceError::Open {
            path: path.to_owned(),
            errno: errno_of(err),
        }
    }
}

pub(crate) fn errno_of(err: &io::Error) -> Errno {
    err.raw_os_error()
        .map_or(Errno::UnknownErrno, Errno::from_raw)
}

fn open_hint(path: &str, errno: Errno) -> &'static str {
    match errno {
        Errno::EACCES | Errno::EPERM => " (run as root or join the video group)",
        Errno::ENOENT | Errno::ENODEV | Errno::ENXIO if path.starts_with("/dev/") => {
            " (is a display driver loaded?)"
        }
        Errno::ENOENT => " (is Xvfb running with -fbdir?)",
        _ => "",
    }
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceError::Spec(spec) => write!(
                f,
                "unknown screen source {spec:?}: expected auto, kms[:CARD[:CONNECTOR]], fbdev:PATH, xwd:PATH \
                 or synthetic:WxH (W and H 1..={MAX_SYNTHETIC_SIDE})"
            ),
            SourceError::Open { path, errno } => {
                write!(
                    f,
                    "cannot open {path}: {}{}",
                    errno.desc(),
                    open_hint(path, *errno)
                )
            }
            SourceError::Query { path, call, errno } => {
                write!(f, "cannot query {path} ({call}): {}", errno.desc())
            }
            SourceError::Map { path, errno } => write!(f, "cannot map {path}: {}", errno.desc()),
            SourceError::Visual { path, visual } => {
                write!(
                    f,
                    "{path} is not a true-colour framebuffer (visual {visual})"
                )
            }
            SourceError::Format { path, format } => write!(
                f,
                "unsupported pixel format on {path}: {format} \
                 (need 16, 24 or 32 bits per pixel with rgb bitfields)"
            ),
            SourceError::Geometry {
                path,
                width,
                height,
                stride,
                need,
                have,
            } => write!(
                f,
                "{path}: a {width}x{height} picture with {stride} bytes a line needs {need} bytes, \
                 only {have} are there"
            ),
            SourceError::Xwd { path, problem } => write!(f, "bad xwd file {path}: {problem}"),
            SourceError::Kms { path, problem } => write!(f, "{path}: {problem}"),
        }
    }
}

impl std::error::Error for SourceError {}

/// "auto" | "kms[:CARD[:CONNECTOR]]" | "fbdev:PATH" | "xwd:PATH" | "synthetic:WxH"; an unknown
/// or malformed spec is an error naming the accepted forms.
pub fn open(spec: &str) -> Result<Box<dyn Source>, SourceError> {
    let bad = || SourceError::Spec(spec.to_owned());
    match spec {
        "auto" => return Ok(Box::new(super::kms::Auto::open()?)),
        "kms" => return Ok(Box::new(super::kms::open("")?)),
        _ => {}
    }
    let (kind, arg) = spec.split_once(':').ok_or_else(bad)?;
    match kind {
        "kms" => Ok(Box::new(super::kms::open(arg)?)),
        "fbdev" if !arg.is_empty() => Ok(Box::new(Fbdev::open(arg)?)),
        "xwd" if !arg.is_empty() => Ok(Box::new(Xwd::open(arg)?)),
        "synthetic" => {
            let (w, h) = parse_size(arg).ok_or_else(bad)?;
            Ok(Box::new(Synthetic::new(w, h).0))
        }
        _ => Err(bad()),
    }
}

/// "WxH" with both sides in 1..=MAX_SYNTHETIC_SIDE.
fn parse_size(s: &str) -> Option<(u16, u16)> {
    let (w, h) = s.split_once('x')?;
    let side = |v: &str| {
        v.parse::<u16>()
            .ok()
            .filter(|n| (1..=MAX_SYNTHETIC_SIDE).contains(n))
    };
    Some((side(w)?, side(h)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(spec: &str) -> SourceError {
        match open(spec) {
            Ok(_) => panic!("{spec} opened"),
            Err(e) => e,
        }
    }

    #[test]
    fn malformed_specs_name_the_accepted_forms() {
        for spec in [
            "",
            "fb0",
            "fbdev:",
            "xwd:",
            "vnc:host",
            "synthetic:",
            "synthetic:640",
            "synthetic:0x480",
            "synthetic:640x-1",
            "synthetic:9000x10",
            "synthetic:640x480x2",
        ] {
            let e = err(spec);
            assert_eq!(e, SourceError::Spec(spec.to_owned()));
            let text = e.to_string();
            assert!(
                text.contains(
                    "auto, kms[:CARD[:CONNECTOR]], fbdev:PATH, xwd:PATH or synthetic:WxH"
                ),
                "{text}"
            );
        }
    }

    #[test]
    fn synthetic_spec_opens_with_its_size() {
        let mut s = open("synthetic:320x200").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.describe(), "synthetic:320x200 XRGB8888");
        let f = s.frame().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (f.width, f.height, f.format),
            (320, 200, PixelFormat::XRGB8888)
        );
    }

    #[test]
    fn missing_device_says_what_to_check() {
        let e = err("fbdev:/dev/thinshadow-no-such-fb");
        assert_eq!(
            e.to_string(),
            "cannot open /dev/thinshadow-no-such-fb: No such file or directory \
             (is a display driver loaded?)"
        );
        let e = err("xwd:/tmp/thinshadow-no-such-dir/Xvfb_screen0");
        assert!(
            e.to_string().ends_with("(is Xvfb running with -fbdir?)"),
            "{e}"
        );
    }

    #[test]
    fn a_file_that_is_no_framebuffer_is_refused() {
        // /dev/null opens, but the fb ioctls fail on it.
        let e = err("fbdev:/dev/null");
        assert!(
            matches!(
                e,
                SourceError::Query {
                    call: "FBIOGET_VSCREENINFO",
                    ..
                }
            ),
            "{e}"
        );
    }
}
