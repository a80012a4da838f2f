//! OCI whiteouts: how a layer says "this path of the lower layers is gone".
//!
//! A layer tarball marks a deleted path `dir/NAME` with an empty entry `dir/.wh.NAME`, and a
//! directory whose lower contents are all hidden with `dir/.wh..wh..opq` (the OCI image spec,
//! "Whiteouts"). Other `.wh..wh.` names are aufs bookkeeping and carry no meaning for us.
//!
//! This module only classifies names; [`super::unpack`] decides what a whiteout becomes on disk
//! according to [`WhiteoutMode`].

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

/// Prefix of every whiteout file name.
const PREFIX: &[u8] = b".wh.";
/// Name of the opaque-directory marker.
const OPAQUE: &[u8] = b".wh..wh..opq";
/// Prefix of aufs metadata names (`.wh..wh.plnk`, `.wh..wh.aufs`), which are ignored.
const META_PREFIX: &[u8] = b".wh..wh.";

/// What to do with whiteout entries while unpacking a layer.
///
/// ```no_run
/// use image::layer::{UnpackOptions, WhiteoutMode};
/// let flatten = UnpackOptions { whiteouts: WhiteoutMode::Apply };
/// # let _ = flatten;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhiteoutMode {
    /// Convert to overlayfs whiteouts, for a directory used as an overlayfs lower layer:
    /// `.wh.NAME` becomes a 0/0 character device `NAME`, and `.wh..wh..opq` sets
    /// `trusted.overlay.opaque=y` on its directory. Needs root (`CAP_MKNOD`, `CAP_SYS_ADMIN`).
    #[default]
    Overlay,
    /// Delete the whited-out paths from the target instead, for flattening layers onto one
    /// directory (e.g. `export`): `.wh.NAME` removes `NAME`, and `.wh..wh..opq` removes everything
    /// in its directory that this layer did not itself create.
    Apply,
}

/// A file name of a layer entry, classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Whiteout<'a> {
    /// Not a whiteout: an ordinary entry.
    None,
    /// `.wh..wh..opq`: the directory holding it is opaque.
    Opaque,
    /// `.wh.NAME`: `NAME` is deleted.
    Remove(&'a OsStr),
    /// `.wh.` followed by nothing, `.`, `..` or a name containing `/`: refused.
    Invalid,
    /// Other `.wh..wh.` aufs metadata: ignored.
    Meta,
}

/// Classifies the last component of an entry path.
pub(crate) fn classify(name: &OsStr) -> Whiteout<'_> {
    let bytes = name.as_bytes();
    if bytes == OPAQUE {
        return Whiteout::Opaque;
    }
    if bytes.starts_with(META_PREFIX) {
        return Whiteout::Meta;
    }
    match bytes.strip_prefix(PREFIX) {
        None => Whiteout::None,
        Some(b"" | b"." | b"..") => Whiteout::Invalid,
        Some(rest) if rest.contains(&b'/') => Whiteout::Invalid,
        Some(rest) => Whiteout::Remove(OsStr::from_bytes(rest)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_names() {
        let cases: &[(&str, Whiteout<'_>)] = &[
            ("file", Whiteout::None),
            (".whatever", Whiteout::None),
            (".wh.file", Whiteout::Remove(OsStr::new("file"))),
            (".wh..hidden", Whiteout::Remove(OsStr::new(".hidden"))),
            (".wh..wh..opq", Whiteout::Opaque),
            (".wh..wh.plnk", Whiteout::Meta),
            (".wh.", Whiteout::Invalid),
            (".wh..", Whiteout::Invalid),
            (".wh...", Whiteout::Invalid),
        ];
        for (name, want) in cases {
            assert_eq!(classify(OsStr::new(name)), *want, "{name}");
        }
    }
}
