//! Screen sources, damage detection and encoding.
//!
//! Frame path: `Source::frame()` borrows the picture (an mmap for fbdev and xwd: no copy) →
//! `Damage::scan` hashes 64x64 tiles row by row and lists changed rectangles → `BitmapEncoder::encode`
//! turns each into fast-path bitmap updates. Everything here is sans-IO except the sources.
//!
//! Rules of this layer:
//! - A `Frame` is checked, never trusted: damage and encode do not panic on an inconsistent one.
//! - No `unsafe` here: the mapping and the ioctls are safe functions of `crate::sys`;
//!   `panel.rs` writes (the local prompt's box) with plain pwrite.
//! - Memory is bounded: damage keeps a hash per tile row (8 bytes per 64 pixels), encode one
//!   bitmap's worth of scratch and, when the client asks for bulk compression, one compressor.

mod bitmap_cache;
mod convert;
mod cursor;
mod damage;
mod encode;
mod encode_cached;
mod fbdev;
pub mod font;
mod frame;
mod kms;
pub(crate) mod kms_core;
mod moves;
mod mppc;
mod orders;
mod panel;
pub mod placeholder;
mod planar_rle;
mod rle_guess;
mod scroll;
mod source;
pub mod synthetic;
mod xwd;

pub use cursor::{Cursor, CursorShape, PointerState};
pub use damage::{CopyRect, Damage, MAX_RECT_BYTES, TILE, fits_one_bitmap};
pub use encode::{BitmapEncoder, DEFAULT_MAX_UPDATE_LEN, EncodeError, MAX_FRAGMENT_PAYLOAD};
#[cfg(feature = "test-hooks")]
pub(crate) use encode::{Bulk, fragment};
pub use fbdev::Fbdev;
pub use frame::{Channel, Frame, PixelFormat, Rect};
pub use kms_core::KmsError;
pub use orders::encode_copies;
pub use panel::{FbPanel, Panel, XwdPanel, open_panel};
pub use placeholder::Placeholder;
pub use source::{MAX_SYNTHETIC_SIDE, Source, SourceError, open};
pub use synthetic::{Synthetic, SyntheticHandle, synthetic_pixel};
pub use xwd::{Xwd, XwdError};
