//! Image layers on disk: unpacking a layer tarball into a directory.
//!
//! [`unpack`] reads one OCI/Docker layer (gzip, zstd or plain tar), refuses every entry that
//! would land outside the target directory, and turns OCI whiteouts into overlayfs whiteouts
//! ([`WhiteoutMode::Overlay`], for a lower directory of an overlay mount) or applies them
//! ([`WhiteoutMode::Apply`], for flattening layers onto one directory).

mod unpack;
mod whiteout;

pub use unpack::{unpack, UnpackError, UnpackOptions, UnpackStats};
pub use whiteout::WhiteoutMode;
