//! The media types of manifests, indexes, configs and layers (OCI's and Docker's), and how to
//! tell an index from a manifest.

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index (multi-platform).
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image configuration.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI uncompressed layer.
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
/// OCI gzip layer.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// OCI zstd layer.
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list (multi-platform).
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image configuration.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker gzip layer.
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Docker zstd layer (written by newer dockers).
pub const DOCKER_LAYER_ZSTD: &str = "application/vnd.docker.image.rootfs.diff.tar.zstd";
/// Docker uncompressed layer.
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
/// Docker schema 1 manifest, unsigned; refused.
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
/// Docker schema 1 manifest, signed; refused.
pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// Whether `media_type` is a multi-platform index (OCI index or Docker manifest list).
///
/// ```
/// use image::media_types;
///
/// assert!(media_types::is_index(media_types::DOCKER_MANIFEST_LIST));
/// assert!(!media_types::is_index(media_types::OCI_MANIFEST));
/// ```
pub fn is_index(media_type: &str) -> bool {
    matches!(essence(media_type), OCI_INDEX | DOCKER_MANIFEST_LIST)
}

/// Whether `media_type` is a single-platform image manifest (OCI or Docker schema 2).
///
/// ```
/// use image::media_types;
///
/// assert!(media_types::is_manifest(media_types::DOCKER_MANIFEST));
/// assert!(!media_types::is_manifest(media_types::DOCKER_SCHEMA1));
/// ```
pub fn is_manifest(media_type: &str) -> bool {
    matches!(essence(media_type), OCI_MANIFEST | DOCKER_MANIFEST)
}

/// Whether `media_type` is a Docker schema 1 manifest, which is refused.
pub fn is_schema1(media_type: &str) -> bool {
    matches!(essence(media_type), DOCKER_SCHEMA1 | DOCKER_SCHEMA1_SIGNED)
}

/// The media type without parameters (`; charset=utf-8`) or surrounding blanks.
pub(crate) fn essence(media_type: &str) -> &str {
    media_type.split(';').next().unwrap_or_default().trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_with_parameters() {
        assert!(is_manifest(
            "application/vnd.oci.image.manifest.v1+json; charset=utf-8"
        ));
        assert!(is_index(" application/vnd.oci.image.index.v1+json"));
        assert!(is_schema1(DOCKER_SCHEMA1_SIGNED));
        assert!(!is_manifest(OCI_CONFIG));
        assert!(!is_index(DOCKER_MANIFEST));
    }
}
