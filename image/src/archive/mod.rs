//! Image archives: `save` writes images from the store to a docker-archive or oci-archive tar,
//! [`load`] reads either (plain, gzip or zstd) back into the store.
//!
//! - [`docker`]: `manifest.json` + `repositories` + uncompressed layer tars (docker, podman);
//! - [`oci`]: an OCI image layout in a tar, blobs byte for byte (skopeo, podman, containerd);
//! - [`names`]: how image names are written in each format and read from every writer;
//! - `tar_index` reads an archive's entries by name in place; `tar_out` writes a tar stream
//!   with kernel-side copies; [`Compression`](crate::compression::Compression) tells gzip and zstd
//!   from plain tar.
//!
//! Loading never uses an entry name as a path: entries are looked up by name in an index of the
//! archive, and unsafe names (`../x`, `/x`) make the archive refused. Every blob and layer is
//! verified while it is ingested, and nothing becomes visible in the store unless every image of
//! the archive is complete.
//!
//! ```no_run
//! use image::archive::{self, Format};
//! use image::store::Store;
//!
//! let store = Store::open(std::path::Path::new("/var/lib/flotilla")).unwrap();
//! let out = std::fs::File::create("busybox.tar").unwrap();
//! archive::save(&store, &["busybox".to_owned()], Format::DockerArchive, out).unwrap();
//! let loaded = archive::load(&store, std::fs::File::open("busybox.tar").unwrap()).unwrap();
//! assert_eq!(loaded.len(), 1);
//! ```

pub mod docker;
pub mod names;
pub mod oci;

mod load;
mod tar_index;
mod tar_out;

use std::fs::File;
use std::io;
use std::path::PathBuf;

use crate::digest::Digest;
use crate::manifest::{ManifestError, Platform};
use crate::reference::{Reference, ReferenceError};
use crate::store::{Image, Store, StoreError};

pub use load::{load, Loaded};
pub use tar_index::{EntryReader, TarIndex};
pub use tar_out::TarOut;

/// The largest `manifest.json`, `index.json` or manifest read from an archive.
pub const MAX_JSON_BYTES: u64 = 4 << 20;
/// The largest image config read from an archive.
pub const MAX_CONFIG_BYTES: u64 = 8 << 20;

/// Why an archive could not be written or read; each names the entry, file or digest.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// Reading the archive failed.
    #[error("cannot read the archive: {0}")]
    Input(#[source] io::Error),
    /// Writing the archive failed.
    #[error("cannot write the archive: {0}")]
    Output(#[source] io::Error),
    /// A file-system operation on a spool file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the kernel said.
        source: io::Error,
    },
    /// A stored layer blob could not be decompressed.
    #[error("layer blob {digest}: {source}")]
    Blob {
        /// The blob.
        digest: Digest,
        /// Why.
        source: io::Error,
    },
    /// The store refused or could not provide content.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The store refused an entry's content (digest, size or diff ID mismatch, bad layer).
    #[error("archive entry {entry:?}: {source}")]
    Entry {
        /// The entry.
        entry: String,
        /// Why.
        source: StoreError,
    },
    /// A blob does not hash to the digest it is named by.
    #[error("archive entry {entry:?} does not match its digest: expected {expected}, got {got} (or a different size)")]
    BlobMismatch {
        /// The entry.
        entry: String,
        /// The digest its descriptor gives.
        expected: Digest,
        /// The digest of its content.
        got: Digest,
    },
    /// A manifest names an entry the archive does not have.
    #[error("archive entry {entry:?} named by {by} is missing")]
    Missing {
        /// The entry.
        entry: String,
        /// What names it.
        by: String,
    },
    /// A manifest or index in the archive is larger than allowed.
    #[error("archive entry {entry:?} is {size} bytes, more than the {limit} allowed")]
    TooLarge {
        /// The entry.
        entry: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// An entry name is absolute or climbs out of the archive.
    #[error("archive entry {entry:?} has an unsafe name (absolute or climbing out with ..)")]
    UnsafeName {
        /// The name as written in the archive.
        entry: String,
    },
    /// The archive ends inside an entry.
    #[error("the archive is truncated: entry {entry:?} ends past its end")]
    Truncated {
        /// The entry.
        entry: String,
    },
    /// The archive is not a valid tar.
    #[error("corrupt or truncated archive after entry {after:?}: {source}")]
    CorruptTar {
        /// The last entry read whole.
        after: String,
        /// What the tar reader said.
        source: io::Error,
    },
    /// Neither format's table of contents is in the archive.
    #[error(
        "the archive holds neither manifest.json (docker-archive) nor index.json (oci-archive)"
    )]
    UnknownFormat,
    /// A JSON entry does not parse.
    #[error("malformed {entry}: {source}")]
    Malformed {
        /// The entry.
        entry: String,
        /// What serde said.
        source: serde_json::Error,
    },
    /// A manifest, index or config entry is not usable.
    #[error("{entry}: {source}")]
    Manifest {
        /// The entry.
        entry: String,
        /// Why.
        source: ManifestError,
    },
    /// An image name in the archive does not parse.
    #[error("{entry}: invalid image name {name:?}: {source}")]
    Reference {
        /// The entry naming it.
        entry: String,
        /// The name.
        name: String,
        /// Why.
        source: ReferenceError,
    },
    /// An index in the archive has no manifest for this machine.
    #[error("{entry} has no manifest for {wanted}")]
    NoPlatform {
        /// The index entry.
        entry: String,
        /// This machine's platform.
        wanted: Platform,
    },
    /// An index entry is neither an image manifest nor an index.
    #[error("{entry} is a {media_type}, not an image manifest or index")]
    NotAnImage {
        /// The entry.
        entry: String,
        /// What it is.
        media_type: String,
    },
}

/// A `Result` whose error is [`ArchiveError`].
pub type Result<T, E = ArchiveError> = std::result::Result<T, E>;

/// The archive formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `docker save`'s format.
    DockerArchive,
    /// An OCI image layout in a tar.
    OciArchive,
}

/// An image to save, with the names to save it under.
#[derive(Debug, Clone)]
pub(crate) struct Selected {
    image: Image,
    tags: Vec<Reference>,
}

/// Resolves `names` to images as `docker save` does: a tag saves the image under that name, an
/// ID or digest saves it unnamed; an image named twice is saved once with both names.
fn selection(store: &Store, names: &[String]) -> Result<Vec<Selected>> {
    let mut selected: Vec<Selected> = Vec::new();
    for name in names {
        let image = store.resolve(name)?;
        let tag = Reference::parse(name)
            .ok()
            .filter(|r| image.tags.contains(&r.to_string()));
        match selected.iter_mut().find(|s| s.image.id == image.id) {
            Some(s) => s.tags.extend(tag.filter(|t| !s.tags.contains(t))),
            None => selected.push(Selected {
                image,
                tags: tag.into_iter().collect(),
            }),
        }
    }
    Ok(selected)
}

/// Writes the images `names` resolve to as one archive to `out` (a file, pipe or terminal)
/// and returns `out`, flushed.
pub fn save(store: &Store, names: &[String], format: Format, out: File) -> Result<File> {
    // GC must not delete a blob while it is being written out.
    let _reading = store.read_lock()?;
    let images = selection(store, names)?;
    let mut tar = TarOut::new(out, &store.root().join("tmp"));
    match format {
        Format::DockerArchive => docker::write(store, &images, &mut tar)?,
        Format::OciArchive => oci::write(store, &images, &mut tar)?,
    }
    tar.finish()
}
