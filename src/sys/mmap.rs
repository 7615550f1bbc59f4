//! A read-only shared mapping of a file or device: the one place sources get bytes without a copy.

use core::ffi::c_void;
use core::num::NonZeroUsize;
use core::ptr::NonNull;
use std::fs::File;
use std::os::fd::AsFd;

use nix::errno::Errno;
use nix::sys::mman::{MapFlags, ProtFlags, mmap, munmap};

pub(crate) struct ReadMap {
    ptr: NonNull<c_void>,
    len: NonZeroUsize,
}

impl ReadMap {
    /// Maps the first `len` bytes of `file` read-only and shared (we see the writer's updates).
    pub(crate) fn new(file: &File, len: NonZeroUsize) -> Result<Self, Errno> {
        Self::at(file, len, 0)
    }

    /// Maps `len` bytes from `offset` (a DRM card's dumb-buffer offset, or 0 for a dma-buf).
    pub(crate) fn at<F: AsFd>(fd: F, len: NonZeroUsize, offset: i64) -> Result<Self, Errno> {
        // SAFETY: a fresh mapping at an address the kernel picks aliases no Rust object; it is
        // read-only, and `Drop` unmaps exactly this range.
        let ptr = unsafe {
            mmap(
                None,
                len,
                ProtFlags::PROT_READ,
                MapFlags::MAP_SHARED,
                fd,
                offset,
            )?
        };
        Ok(Self { ptr, len })
    }

    pub(crate) fn len(&self) -> usize {
        self.len.get()
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr` points to `len` readable bytes until `Drop`, and the slice borrows `self`.
        // Another process may write them meanwhile: every bit pattern is a valid u8, and a torn
        // pixel only shows until the next frame. A file shrunk under us would fault (SIGBUS), so
        // the xwd source checks the file size before each frame.
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr().cast::<u8>(), self.len.get()) }
    }
}

impl Drop for ReadMap {
    fn drop(&mut self) {
        // SAFETY: this range was returned by mmap in `new` and no borrow of it outlives `self`.
        // A failure here leaves a stale mapping; there is nothing better to do in Drop.
        let _ = unsafe { munmap(self.ptr, self.len.get()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    #[test]
    fn maps_file_contents_and_sees_later_writes() {
        let path = std::env::temp_dir().join(format!("thinshadow-mmap-{}", std::process::id()));
        let mut f = File::create(&path).unwrap();
        f.write_all(b"hello world").unwrap();
        let ro = File::open(&path).unwrap();
        let m = ReadMap::new(&ro, NonZeroUsize::new(11).unwrap()).unwrap();
        assert_eq!(m.bytes(), b"hello world");
        std::fs::write(&path, b"HELLO world").unwrap();
        assert_eq!(m.bytes(), b"HELLO world");
        drop(m);
        std::fs::remove_file(&path).unwrap();
    }
}
