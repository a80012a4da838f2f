//! What containers use: images (`rmi` refuses to delete them and `image prune` keeps them, as
//! docker does, because a container's root file system is mounted over the image's layers) and
//! volumes (`volume rm` and `volume prune` leave them alone).

use std::collections::BTreeMap;

use image::digest::Digest;
use image::store::Store;

use super::Context;
use crate::containers::store::ContainerStore;

/// Each image ID containers use, with the short IDs of those containers.
pub fn images_in_use(context: &Context) -> anyhow::Result<BTreeMap<Digest, Vec<String>>> {
    let mut used: BTreeMap<Digest, Vec<String>> = BTreeMap::new();
    for container in ContainerStore::open(&context.data_root)?.list()? {
        if let Ok(id) = container.image_id.parse::<Digest>() {
            used.entry(id)
                .or_default()
                .push(container.short_id().to_owned());
        }
    }
    Ok(used)
}

/// The IDs of the containers that mount each volume, by volume name.
pub fn volumes_in_use(context: &Context) -> anyhow::Result<BTreeMap<String, Vec<String>>> {
    let mut users: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for container in ContainerStore::open(&context.data_root)?.list()? {
        for name in container.mounts.iter().filter_map(|m| m.name.as_ref()) {
            users
                .entry(name.clone())
                .or_default()
                .push(container.id.clone());
        }
    }
    Ok(users)
}

/// Refuses to remove `name` when that would delete an image a container uses; removing one
/// of several tags only untags, which is always allowed.
pub fn check_removable(
    store: &Store,
    in_use: &BTreeMap<Digest, Vec<String>>,
    name: &str,
) -> anyhow::Result<()> {
    let image = store.resolve(name)?;
    let Some(users) = in_use.get(&image.id) else {
        return Ok(());
    };
    let only_untags = image.tags.len() > 1 && image.tags.iter().any(|tag| tag_matches(tag, name));
    if only_untags {
        return Ok(());
    }
    anyhow::bail!(
        "conflict: unable to remove {name:?}: image {} is used by container {} (remove the container first)",
        image.short_id(),
        users.join(", ")
    )
}

/// Whether the stored reference `tag` is what the user named (`busybox` is
/// `docker.io/library/busybox:latest`).
fn tag_matches(tag: &str, name: &str) -> bool {
    image::reference::Reference::parse(name).is_ok_and(|r| r.to_string() == tag)
}
