//! Screen sources, damage detection and encoding.
//!
//! Frame path: `Source::frame()` borrows the picture (an mmap for fbdev and xwd: no copy) →
//! `Damage::scan` hashes 64x64 tiles row by row and lists changed rectangles → `BitmapEncoder::encode`
//! turns each into fast-path bitmap updates. Everything here is sans-IO except the sources.
//!
//! Rules of this layer:
//! - A `Frame` is checked, never trusted: damage and encode do not panic on an inconsistent one.
//! - `unsafe` lives only in `mmap.rs` (the mapping) and `fbdev.rs` (the ioctls).
//! - Memory is bounded: damage keeps a hash per tile row (8 bytes per 64 pixels), encode one
//!   bitmap's worth of scratch and, when the client asks for bulk compression, one compressor.

#[deny(unsafe_code)]
mod convert;
#[deny(unsafe_code)]
mod damage;
#[deny(unsafe_code)]
mod encode;
mod fbdev;
#[deny(unsafe_code)]
mod frame;
mod mmap;
#[deny(unsafe_code)]
pub mod placeholder;
#[deny(unsafe_code)]
mod planar_rle;
#[deny(unsafe_code)]
mod rle_guess;
#[deny(unsafe_code)]
mod source;
#[deny(unsafe_code)]
pub mod synthetic;
#[deny(unsafe_code)]
mod xwd;

pub use damage::{Damage, MAX_RECT_BYTES, TILE, fits_one_bitmap};
pub use encode::{BitmapEncoder, DEFAULT_MAX_UPDATE_LEN, EncodeError, MAX_FRAGMENT_PAYLOAD};
pub use fbdev::Fbdev;
pub use frame::{Channel, Frame, PixelFormat, Rect};
pub use placeholder::Placeholder;
pub use source::{MAX_SYNTHETIC_SIDE, Source, SourceError, open};
pub use synthetic::{Synthetic, SyntheticHandle, synthetic_pixel};
pub use xwd::{Xwd, XwdError};
