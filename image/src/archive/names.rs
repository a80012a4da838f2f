//! Image names in archives: the `RepoTags` of a docker-archive's `manifest.json` and the
//! annotations of an oci-archive's `index.json`.
//!
//! podman and skopeo name an image in an OCI layout by `org.opencontainers.image.ref.name`
//! holding the full reference (`localhost/app:v1`); containerd and docker 25+ write the full
//! reference to `io.containerd.image.name` and only the tag to `ref.name`. [`oci_annotations`]
//! writes the full reference to both keys, which every one of them reads back as the same name;
//! [`name_from_annotations`] reads either convention.

use std::collections::BTreeMap;

use crate::reference::{Reference, ReferenceError};

/// The OCI annotation naming a manifest in a layout.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// containerd's (and docker's) annotation with the full image name.
pub const CONTAINERD_NAME: &str = "io.containerd.image.name";

/// The annotations naming `reference` in an oci-archive's `index.json`.
pub fn oci_annotations(reference: &Reference) -> BTreeMap<String, String> {
    let name = reference.to_string();
    BTreeMap::from([
        (CONTAINERD_NAME.to_owned(), name.clone()),
        (REF_NAME.to_owned(), name),
    ])
}

/// The image name an `index.json` entry's annotations give, if any: the containerd name, or a
/// `ref.name` that is a whole reference (a bare tag such as `latest` names no repository and is
/// ignored, as podman does).
pub fn name_from_annotations(
    annotations: &BTreeMap<String, String>,
) -> Option<Result<Reference, (String, ReferenceError)>> {
    let name = annotations.get(CONTAINERD_NAME).or_else(|| {
        annotations
            .get(REF_NAME)
            .filter(|n| n.contains('/') || n.contains(':'))
    })?;
    Some(Reference::parse(name).map_err(|e| (name.clone(), e)))
}

/// The name docker writes to `RepoTags` for a tag: the familiar form (`busybox:latest`,
/// `registry.local:5000/app:v1`).
pub fn repo_tag(reference: &Reference) -> String {
    reference.familiar()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn every_naming_convention_is_read() {
        let name = |pairs: &[(&str, &str)]| {
            name_from_annotations(&annotations(pairs)).map(|r| r.unwrap().to_string())
        };
        assert_eq!(
            name(&[(REF_NAME, "localhost/app:v1")]).as_deref(),
            Some("localhost/app:v1")
        );
        assert_eq!(
            name(&[
                (REF_NAME, "latest"),
                (CONTAINERD_NAME, "docker.io/library/busybox:latest")
            ])
            .as_deref(),
            Some("docker.io/library/busybox:latest")
        );
        assert_eq!(name(&[(REF_NAME, "latest")]), None);
        assert_eq!(name(&[]), None);
        assert!(
            name_from_annotations(&annotations(&[(REF_NAME, "Bad:Name:x")]))
                .unwrap()
                .is_err()
        );
    }

    #[test]
    fn written_names_read_back() {
        let reference = Reference::parse("127.0.0.1:5000/team/app:v2").unwrap();
        let written = oci_annotations(&reference);
        assert_eq!(written[REF_NAME], "127.0.0.1:5000/team/app:v2");
        assert_eq!(name_from_annotations(&written).unwrap().unwrap(), reference);
        assert_eq!(
            repo_tag(&Reference::parse("busybox").unwrap()),
            "busybox:latest"
        );
    }
}
