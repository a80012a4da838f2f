//! The image store on a real file system: ingest, resolve, remove and collect garbage, and what
//! a bad blob, a bad layer or an interrupted ingest leaves behind (nothing).

use std::fs;
use std::io::Write;
use std::path::Path;

use flate2::write::GzEncoder;
use image::digest::Digest;
use image::manifest::chain_ids;
use image::media_types;
use image::reference::Reference;
use image::store::{BlobCheck, NewImage, Removal, Store, StoreError};
use tempfile::TempDir;

/// A test image: gzip layers, config and manifest, all in memory.
struct TestImage {
    layers: Vec<(Vec<u8>, Digest)>,
    config: Vec<u8>,
    manifest: Vec<u8>,
}

/// A layer's files: path and content.
type Files<'a> = &'a [(&'a str, &'a [u8])];

fn tar_of(files: Files<'_>) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(1_600_000_000);
        header.set_uid(0);
        header.set_gid(0);
        header.set_cksum();
        // Written byte for byte, so that hostile names the builder refuses get through.
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_cksum();
        builder.append(&header, *data).unwrap();
    }
    builder.into_inner().unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

impl TestImage {
    fn new(layers: &[&[(&str, &[u8])]], label: &str) -> TestImage {
        let layers: Vec<(Vec<u8>, Digest)> = layers
            .iter()
            .map(|files| {
                let tar = tar_of(files);
                let diff_id = Digest::sha256_of(&tar);
                (gzip(&tar), diff_id)
            })
            .collect();
        let diff_ids: Vec<String> = layers.iter().map(|(_, d)| d.to_string()).collect();
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "config": {"Labels": {"test": label}},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }))
        .unwrap();
        let descriptors: Vec<serde_json::Value> = layers
            .iter()
            .map(|(blob, _)| {
                serde_json::json!({"mediaType": media_types::OCI_LAYER_GZIP,
                    "digest": Digest::sha256_of(blob).to_string(), "size": blob.len()})
            })
            .collect();
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": media_types::OCI_MANIFEST,
            "config": {"mediaType": media_types::OCI_CONFIG,
                "digest": Digest::sha256_of(&config).to_string(), "size": config.len()},
            "layers": descriptors,
        }))
        .unwrap();
        TestImage {
            layers,
            config,
            manifest,
        }
    }

    fn id(&self) -> Digest {
        Digest::sha256_of(&self.config)
    }

    fn chain_ids(&self) -> Vec<Digest> {
        let diff_ids: Vec<Digest> = self.layers.iter().map(|(_, d)| d.clone()).collect();
        chain_ids(&diff_ids)
    }

    /// Ingests the image the way a pull does and commits it under `tags`.
    fn ingest(&self, store: &Store, tags: &[&str]) -> Result<Digest, StoreError> {
        let ingest = store.ingest()?;
        let config_digest = Digest::sha256_of(&self.config);
        ingest.put_blob(
            &self.config,
            BlobCheck {
                digest: Some(&config_digest),
                size: Some(self.config.len() as u64),
            },
        )?;
        let mut parent: Option<Digest> = None;
        for (blob, diff_id) in &self.layers {
            let digest = Digest::sha256_of(blob);
            let layer = ingest.add_layer(
                blob.as_slice(),
                BlobCheck {
                    digest: Some(&digest),
                    size: Some(blob.len() as u64),
                },
                Some(diff_id),
                parent.as_ref(),
                &digest.to_string(),
            )?;
            parent = Some(layer.chain_id);
        }
        let tags: Vec<Reference> = tags.iter().map(|t| Reference::parse(t).unwrap()).collect();
        ingest.commit(&NewImage {
            manifest: &self.manifest,
            tags: &tags,
            repo_digests: &[],
        })
    }
}

fn busybox_like() -> TestImage {
    TestImage::new(
        &[
            &[("bin/sh", b"shell"), ("etc/passwd", b"root:x:0:0")],
            &[("app/main", b"main"), (".wh.etc", b"")],
        ],
        "one",
    )
}

/// Every file under `dir`, relative, sorted.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            out.push(path.strip_prefix(dir).unwrap().display().to_string());
            if path.is_dir() && !path.is_symlink() {
                stack.push(path);
            }
        }
    }
    out.sort();
    out
}

fn store() -> (TempDir, Store) {
    let root = TempDir::new().unwrap();
    let store = Store::open(root.path()).unwrap();
    (root, store)
}

#[test]
fn an_ingested_image_resolves_by_every_name_and_its_layers_are_unpacked() {
    let (_root, store) = store();
    let image = busybox_like();
    let id = image
        .ingest(&store, &["busybox", "registry.local:5000/tools/busybox:1"])
        .unwrap();
    assert_eq!(id, image.id());

    for name in [
        "busybox",
        "busybox:latest",
        "docker.io/library/busybox:latest",
        "registry.local:5000/tools/busybox:1",
        &id.to_string(),
        &id.hex()[..12],
    ] {
        assert_eq!(store.resolve(name).unwrap().id, id, "{name}");
    }
    let found = store.resolve("busybox").unwrap();
    assert_eq!(
        found.tags,
        [
            "docker.io/library/busybox:latest",
            "registry.local:5000/tools/busybox:1"
        ]
    );
    let layers = store.layers(&found).unwrap();
    assert_eq!(layers.len(), 2);
    assert_eq!(
        layers
            .iter()
            .map(|l| l.chain_id.clone())
            .collect::<Vec<_>>(),
        image.chain_ids()
    );
    assert_eq!(fs::read(layers[0].dir.join("bin/sh")).unwrap(), b"shell");
    assert_eq!(fs::read(layers[1].dir.join("app/main")).unwrap(), b"main");
    // The whiteout is an overlayfs whiteout (a 0/0 character device) when we are root.
    if rustix::process::geteuid().is_root() {
        use std::os::unix::fs::FileTypeExt;
        assert!(fs::symlink_metadata(layers[1].dir.join("etc"))
            .unwrap()
            .file_type()
            .is_char_device());
    }
    for layer in &layers {
        assert!(store.has_blob(&layer.blob.digest));
    }
    assert_eq!(store.images().unwrap().len(), 1);
    assert!(
        tree(&store.root().join("tmp")).is_empty(),
        "staging is cleaned up"
    );
}

#[test]
fn images_share_layers_by_chain_id() {
    let (_root, store) = store();
    let one = busybox_like();
    let two = TestImage::new(
        &[
            &[("bin/sh", b"shell"), ("etc/passwd", b"root:x:0:0")],
            &[("other", b"x")],
        ],
        "two",
    );
    one.ingest(&store, &["one"]).unwrap();
    two.ingest(&store, &["two"]).unwrap();
    assert_eq!(one.chain_ids()[0], two.chain_ids()[0]);
    assert_eq!(
        tree(&store.root().join("layers"))
            .iter()
            .filter(|p| !p.contains('/'))
            .count(),
        3
    );

    let removed = store.remove(&["one".into()], false).unwrap();
    assert_eq!(
        removed,
        [
            Removal::Untagged("one:latest".into()),
            Removal::Deleted(one.id()),
            Removal::Deleted(one.chain_ids()[1].clone()),
        ],
        "the shared base layer stays while `two` uses it"
    );
    assert!(store.has_layer(&two.chain_ids()[0]));
    let layers = store.layers(&store.resolve("two").unwrap()).unwrap();
    assert_eq!(fs::read(layers[0].dir.join("bin/sh")).unwrap(), b"shell");

    store.remove(&["two".into()], false).unwrap();
    assert!(tree(&store.root().join("layers")).is_empty());
    assert!(tree(&store.root().join("blobs/sha256")).is_empty());
}

#[test]
fn removing_one_of_two_tags_only_untags() {
    let (_root, store) = store();
    let image = busybox_like();
    image.ingest(&store, &["a", "b"]).unwrap();
    assert_eq!(
        store.remove(&["a".into()], false).unwrap(),
        [Removal::Untagged("a:latest".into())]
    );
    assert!(store.resolve("b").is_ok());
    assert_eq!(
        store.resolve("a").unwrap_err().to_string(),
        "no such image: a"
    );
}

#[test]
fn removing_by_id_with_tags_in_two_repositories_needs_force() {
    let (_root, store) = store();
    let image = busybox_like();
    let id = image.ingest(&store, &["a", "b"]).unwrap();
    let short = &id.hex()[..12];
    assert_eq!(
        store.remove(&[short.into()], false).unwrap_err().to_string(),
        format!("unable to delete {short} (must be forced): image is referenced in multiple repositories")
    );
    assert!(store.resolve("a").is_ok(), "a refused rmi changes nothing");
    let removed = store.remove(&[short.into()], true).unwrap();
    assert!(removed.contains(&Removal::Deleted(id)));
    assert!(store.images().unwrap().is_empty());
}

#[test]
fn prune_removes_only_untagged_images_unless_all() {
    let (_root, store) = store();
    let one = busybox_like();
    let two = TestImage::new(&[&[("x", b"x")]], "two");
    one.ingest(&store, &["one"]).unwrap();
    two.ingest(&store, &["two"]).unwrap();
    // Retagging `two` to `one` leaves the first image dangling.
    store.tag("two", &Reference::parse("one").unwrap()).unwrap();
    let (removed, swept) = store.prune(false, &[]).unwrap();
    assert!(removed.contains(&Removal::Deleted(one.id())));
    assert_eq!(swept.layers.len(), 2);
    assert_eq!(store.images().unwrap().len(), 1);
    let (removed, _) = store.prune(true, &[]).unwrap();
    assert!(removed.contains(&Removal::Deleted(two.id())));
    assert!(store.images().unwrap().is_empty());
}

/// Everything under the store except its lock files, for "nothing changed" checks.
fn snapshot(store: &Store) -> Vec<String> {
    tree(store.root())
        .into_iter()
        .filter(|p| !p.ends_with("lock"))
        .collect()
}

#[test]
fn a_layer_with_the_wrong_digest_leaves_the_store_unchanged() {
    let (_root, store) = store();
    let image = busybox_like();
    let before = snapshot(&store);
    let ingest = store.ingest().unwrap();
    let (blob, diff_id) = &image.layers[0];
    let wrong = Digest::sha256_of(b"something else");
    let err = ingest
        .add_layer(
            blob.as_slice(),
            BlobCheck {
                digest: Some(&wrong),
                size: Some(blob.len() as u64),
            },
            Some(diff_id),
            None,
            "layer 1",
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "layer blob {wrong}: digest mismatch: expected {wrong}, got {}",
            Digest::sha256_of(blob)
        )
    );
    drop(ingest);
    assert_eq!(snapshot(&store), before);
}

#[test]
fn a_layer_whose_content_is_not_its_diff_id_is_refused() {
    let (_root, store) = store();
    let image = busybox_like();
    let ingest = store.ingest().unwrap();
    let (blob, _) = &image.layers[0];
    let claimed = Digest::sha256_of(b"claimed");
    let err = ingest
        .add_layer(
            blob.as_slice(),
            BlobCheck::default(),
            Some(&claimed),
            None,
            "layer 1",
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "layer layer 1: uncompressed content is {}, the image config says {claimed}",
            image.layers[0].1
        )
    );
}

#[test]
fn truncated_and_overlong_blobs_are_refused() {
    let (_root, store) = store();
    let image = busybox_like();
    let ingest = store.ingest().unwrap();
    let (blob, diff_id) = &image.layers[0];
    let digest = Digest::sha256_of(blob);
    let short = ingest
        .add_layer(
            &blob[..blob.len() - 5],
            BlobCheck {
                digest: Some(&digest),
                size: Some(blob.len() as u64),
            },
            Some(diff_id),
            None,
            "layer 1",
        )
        .unwrap_err();
    assert!(
        short.to_string().starts_with("layer layer 1: "),
        "a truncated gzip stream fails to unpack: {short}"
    );
    let long = ingest
        .write_blob(
            [blob.as_slice(), b"more"].concat().as_slice(),
            BlobCheck {
                digest: Some(&digest),
                size: Some(blob.len() as u64),
            },
            "layer blob",
        )
        .unwrap_err();
    assert_eq!(
        long.to_string(),
        format!(
            "layer blob {digest} is longer than the {} bytes its descriptor says",
            blob.len()
        )
    );
    let config_digest = Digest::sha256_of(&image.config);
    let config = ingest
        .put_blob(
            &image.config[..10],
            BlobCheck {
                digest: Some(&config_digest),
                size: Some(image.config.len() as u64),
            },
        )
        .unwrap_err();
    assert!(matches!(config, StoreError::Digest { .. }), "{config}");
}

#[test]
fn commit_refuses_an_image_with_missing_content() {
    let (_root, store) = store();
    let image = busybox_like();
    let ingest = store.ingest().unwrap();
    let config_digest = Digest::sha256_of(&image.config);
    ingest
        .put_blob(&image.config, BlobCheck::default())
        .unwrap();
    let err = ingest
        .commit(&NewImage {
            manifest: &image.manifest,
            tags: &[],
            repo_digests: &[],
        })
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "layer blob {} is missing from the store",
            Digest::sha256_of(&image.layers[0].0)
        )
    );
    assert!(store.images().unwrap().is_empty());
    assert!(
        !store.has_blob(&config_digest),
        "staged content is not published"
    );
}

#[test]
fn staging_left_by_a_killed_process_is_removed_and_never_seen() {
    let (root, store) = store();
    let image = busybox_like();
    image.ingest(&store, &["kept"]).unwrap();
    let before = snapshot(&store);
    // What a process killed mid-ingest leaves: its staging directory with a partial blob and
    // a partly unpacked layer (its lock died with it).
    let staging = store.root().join("tmp/ingest-4242-0-0");
    fs::create_dir_all(staging.join("layer-4242-1-0/diff/usr/bin")).unwrap();
    fs::write(staging.join("blob-4242-2-0"), b"partial").unwrap();
    assert_eq!(
        store.resolve("kept").unwrap().id,
        image.id(),
        "readers never look at staging"
    );
    drop(store);
    let reopened = Store::open(root.path()).unwrap();
    assert_eq!(snapshot(&reopened), before);
    assert_eq!(reopened.resolve("kept").unwrap().id, image.id());
}

#[test]
fn gc_waits_for_a_running_ingest() {
    let (_root, store) = store();
    let image = busybox_like();
    let ingest = store.ingest().unwrap();
    let (blob, diff_id) = &image.layers[0];
    let staged = ingest
        .add_layer(
            blob.as_slice(),
            BlobCheck::default(),
            Some(diff_id),
            None,
            "l",
        )
        .unwrap();
    std::thread::scope(|scope| {
        let gc = scope.spawn(|| store.gc().unwrap());
        // Whenever GC gets the lock, the ingest is either not yet done (so GC must wait) or
        // committed (so GC must keep its content): both ways the image survives intact.
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(
            !gc.is_finished(),
            "gc must wait for the ingest's shared lock"
        );
        drop(ingest);
        gc.join().unwrap();
    });
    assert!(
        !store.has_layer(&staged.chain_id),
        "an uncommitted layer is not published"
    );
    image.ingest(&store, &["after"]).unwrap();
    assert!(store.has_layer(&staged.chain_id));
}

#[test]
fn a_corrupt_index_is_reported_with_its_path() {
    let (_root, store) = store();
    fs::write(store.root().join("index.json"), b"{not json").unwrap();
    let err = store.images().unwrap_err().to_string();
    assert!(
        err.starts_with(&format!(
            "image index {} is corrupt: ",
            store.root().join("index.json").display()
        )),
        "{err}"
    );
}

#[test]
fn a_layer_that_escapes_is_refused_by_name_and_leaves_the_store_unchanged() {
    let (root, store) = store();
    busybox_like().ingest(&store, &["kept"]).unwrap();
    let before = snapshot(&store);
    let cases: [(Files, &str); 2] = [
        (
            &[("../../../escaped", b"x")],
            "entry \"../../../escaped\" escapes the target directory",
        ),
        (
            &[("a/../../escaped", b"x")],
            "entry \"a/../../escaped\" escapes the target directory",
        ),
    ];
    for (files, expected) in cases {
        let hostile = TestImage::new(&[files], "hostile");
        let err = hostile
            .ingest(&store, &["hostile"])
            .unwrap_err()
            .to_string();
        assert!(err.ends_with(expected), "{err}");
        assert_eq!(snapshot(&store), before);
        assert!(!root.path().join("escaped").exists());
        assert!(!root.path().parent().unwrap().join("escaped").exists());
    }
}
