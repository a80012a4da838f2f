//! `flotilla save`, `load`, `export` and `import` against the tools people already have: what
//! flotilla saves loads in skopeo and podman with the same digests, what they save loads in
//! flotilla with the same image ID and layers, a save → load round trip gives the same files,
//! export writes a container's tree faithfully and import makes an image of it, and hostile
//! archives are refused by name with the store left as it was.
//!
//! Images come from a real registry (`flotilla pull`) or from skopeo-made archives; podman runs
//! on a throwaway vfs storage. Build the binaries first (`cargo build --workspace --bins`).

use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use flotilla_tests::flotilla::{diff_ids, Flotilla};
use flotilla_tests::registry::{Auth, Registry};
use flotilla_tests::test_image::{Format, TestImage, LAYOUT_TAG};
use serde_json::Value;

/// Everything in the store but its lock files, with sizes: what must not change when a load
/// fails.
fn store_listing(root: &Flotilla) -> Vec<String> {
    tree(&root.data_root().join("image"))
        .into_iter()
        .filter(|line| !line.contains("lock"))
        .collect()
}

/// GNU tar's tarball of the tree under `dir`, extended attributes included.
fn tar_of(dir: &Path, tarball: &Path) {
    run(Command::new("tar")
        .arg("--xattrs")
        .arg("-C")
        .arg(dir)
        .arg("-cf")
        .arg(tarball)
        .arg("."));
}

fn run(command: &mut Command) -> String {
    let output = command.stdin(Stdio::null()).output().unwrap();
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// A throwaway podman storage.
struct Podman {
    dir: tempfile::TempDir,
}

impl Podman {
    fn new() -> Podman {
        Podman {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn run(&self, args: &[&str]) -> String {
        let dir = self.dir.path();
        run(Command::new("podman")
            .arg("--root")
            .arg(dir.join("root"))
            .arg("--runroot")
            .arg(dir.join("runroot"))
            .args(["--storage-driver", "vfs", "--cgroup-manager", "cgroupfs"])
            .args(args))
    }

    fn inspect(&self, name: &str) -> Value {
        let json: Value = serde_json::from_str(&self.run(&["image", "inspect", name])).unwrap();
        json[0].clone()
    }
}

/// A registry with the test image pushed as `test/app:v1`, and the image.
fn registry_with_image() -> (Registry, TestImage, String) {
    let registry = Registry::start(Auth::None).unwrap();
    let image = TestImage::build().unwrap();
    image.push(&registry, "test/app:v1", Format::Oci).unwrap();
    let name = format!("{}/test/app:v1", registry.host());
    (registry, image, name)
}

/// The test image in a data root, loaded from a skopeo-made oci-archive as `app:v1`.
fn root_with_image(scratch: &Path) -> (Flotilla, TestImage) {
    let image = TestImage::build().unwrap();
    let archive = scratch.join("skopeo-oci.tar");
    skopeo_copy(&image, &format!("oci-archive:{}:app:v1", archive.display()));
    let root = Flotilla::new();
    root.ok(&["load", "-i", archive.to_str().unwrap()]);
    (root, image)
}

fn skopeo_copy(image: &TestImage, destination: &str) {
    run(Command::new("skopeo").args([
        "copy",
        "--quiet",
        &format!("oci:{}:{LAYOUT_TAG}", image.layout().display()),
        destination,
    ]));
}

/// The gzip compression of the file at `path`, by gzip(1).
fn gzip(path: &Path) -> Vec<u8> {
    let output = Command::new("gzip").arg("-c").arg(path).output().unwrap();
    assert!(output.status.success(), "gzip {}", path.display());
    output.stdout
}

/// One line per file under `dir` (sorted): path, type, mode, owner, and content digest,
/// link target or device number.
fn tree(dir: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        let mut children: Vec<_> = fs::read_dir(dir.join(&relative))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        children.sort();
        for child in children {
            let path = relative.join(&child);
            let full = dir.join(&path);
            let meta = fs::symlink_metadata(&full).unwrap();
            let kind = meta.file_type();
            let what = if kind.is_dir() {
                pending.push(path.clone());
                "dir".to_owned()
            } else if kind.is_symlink() {
                format!("-> {}", fs::read_link(&full).unwrap().display())
            } else if kind.is_file() {
                let mut hasher = <sha2::Sha256 as sha2::Digest>::new();
                sha2::Digest::update(&mut hasher, fs::read(&full).unwrap());
                format!("file {:x}", sha2::Digest::finalize(hasher))
            } else if kind.is_char_device() || kind.is_block_device() {
                format!("dev {:x}", meta.rdev())
            } else {
                "fifo".to_owned()
            };
            lines.push(format!(
                "{} {:o} {}:{} {} {what}",
                path.display(),
                meta.mode() & 0o7777,
                meta.uid(),
                meta.gid(),
                // Directories change as children come and go; overlay whiteouts (0/0 devices)
                // are made at unpack time.
                if kind.is_dir() || (kind.is_char_device() && meta.rdev() == 0) {
                    0
                } else {
                    meta.mtime()
                },
            ));
        }
    }
    lines.sort();
    lines
}

/// The layer directories of an image, each as [`tree`] lines, base first.
fn layer_trees(root: &Flotilla, name: &str) -> Vec<Vec<String>> {
    root.lower_dirs(name)
        .iter()
        .rev()
        .map(|d| tree(d))
        .collect()
}

#[test]
fn docker_archive_from_flotilla_reads_in_skopeo_and_podman_and_back() {
    let (_registry, image, name) = registry_with_image();
    let scratch = tempfile::tempdir().unwrap();
    let root = Flotilla::new();
    root.ok(&["pull", "-q", &name]);
    let archive = scratch.path().join("docker.tar");
    root.ok(&["save", "-o", archive.to_str().unwrap(), &name]);

    // skopeo sees the same config and, layers being uncompressed, the diff IDs as blobs.
    let raw: Value = serde_json::from_str(&run(Command::new("skopeo").args([
        "inspect",
        "--raw",
        &format!("docker-archive:{}", archive.display()),
    ])))
    .unwrap();
    assert_eq!(raw["config"]["digest"], image.config_digest);
    let layer_digests: Vec<String> = raw["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(layer_digests, image.diff_ids);

    // podman loads it under its name, with the same ID and layers.
    let podman = Podman::new();
    let loaded = podman.run(&["load", "-i", archive.to_str().unwrap()]);
    assert!(
        loaded.contains(&format!("Loaded image: {name}")),
        "{loaded}"
    );
    let inspect = podman.inspect(&name);
    assert_eq!(
        inspect["Id"],
        image.config_digest.trim_start_matches("sha256:")
    );
    assert_eq!(diff_ids(&inspect), image.diff_ids);

    // What podman saves, in both formats, loads back with the same ID, layers and name.
    for format in ["docker-archive", "oci-archive"] {
        let saved = scratch.path().join(format!("podman-{format}.tar"));
        podman.run(&[
            "save",
            "--format",
            format,
            "-o",
            saved.to_str().unwrap(),
            &name,
        ]);
        let back = Flotilla::new();
        let out = back.ok(&["load", "-i", saved.to_str().unwrap()]);
        assert_eq!(out, format!("Loaded image: {name}\n"), "{format}");
        // podman converts the config to OCI's when it writes an oci-archive of an image it
        // loaded from a docker-archive, so the ID to expect is the one in its archive.
        let raw: Value = serde_json::from_str(&run(Command::new("skopeo").args([
            "inspect",
            "--raw",
            &format!("{format}:{}", saved.display()),
        ])))
        .unwrap();
        let inspect = back.inspect(&name);
        assert_eq!(inspect["Id"], raw["config"]["digest"], "{format}");
        assert_eq!(diff_ids(&inspect), image.diff_ids, "{format}");
        assert_eq!(
            layer_trees(&back, &name),
            layer_trees(&root, &name),
            "{format}"
        );
    }
}

#[test]
fn oci_archive_keeps_manifest_digest_and_names_through_skopeo_and_podman() {
    let scratch = tempfile::tempdir().unwrap();
    let (root, image) = root_with_image(scratch.path());
    root.ok(&["tag", "app:v1", "example.com/team/app:v2"]);
    let archive = scratch.path().join("oci.tar");
    root.ok(&[
        "save",
        "--format",
        "oci-archive",
        "-o",
        archive.to_str().unwrap(),
        "app:v1",
    ]);

    let layout = scratch.path().join("layout");
    run(Command::new("skopeo").args([
        "copy",
        "--quiet",
        &format!("oci-archive:{}", archive.display()),
        &format!("oci:{}:copied", layout.display()),
    ]));
    let index: Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"][0]["digest"], image.manifest_digest);

    // flotilla → podman → flotilla keeps the names, the manifest and the ID.
    let two_names = scratch.path().join("two-names.tar");
    root.ok(&[
        "save",
        "--format",
        "oci-archive",
        "-o",
        two_names.to_str().unwrap(),
        "app:v1",
        "example.com/team/app:v2",
    ]);
    // podman 4.3 loads only single-image oci-archives.
    let podman = Podman::new();
    podman.run(&["load", "-i", archive.to_str().unwrap()]);
    let inspect = podman.inspect("docker.io/library/app:v1");
    assert_eq!(
        inspect["Id"],
        image.config_digest.trim_start_matches("sha256:")
    );
    let back_archive = scratch.path().join("from-podman.tar");
    podman.run(&[
        "save",
        "--format",
        "oci-archive",
        "-o",
        back_archive.to_str().unwrap(),
        "docker.io/library/app:v1",
    ]);
    let back = Flotilla::new();
    assert_eq!(
        back.ok(&["load", "-i", back_archive.to_str().unwrap()]),
        "Loaded image: app:v1\n"
    );
    assert_eq!(back.inspect("app:v1")["Id"], image.config_digest);

    // Both names survive flotilla → flotilla, as one image.
    let again = Flotilla::new();
    let out = again.ok(&["load", "-i", two_names.to_str().unwrap()]);
    assert_eq!(
        out,
        "Loaded image: app:v1\nLoaded image: example.com/team/app:v2\n"
    );
    let inspect = again.inspect("example.com/team/app:v2");
    assert_eq!(inspect["Id"], image.config_digest);
    assert_eq!(inspect["Descriptor"]["digest"], image.manifest_digest);
}

#[test]
fn skopeo_archives_load_plain_gzip_and_zstd_and_round_trip() {
    let scratch = tempfile::tempdir().unwrap();
    let image = TestImage::build().unwrap();
    let docker = scratch.path().join("skopeo-docker.tar");
    skopeo_copy(
        &image,
        &format!("docker-archive:{}:app:v1", docker.display()),
    );
    let oci = scratch.path().join("skopeo-oci.tar");
    skopeo_copy(&image, &format!("oci-archive:{}:app:v1", oci.display()));

    let reference = Flotilla::new();
    assert_eq!(
        reference.ok(&["load", "-i", docker.to_str().unwrap()]),
        "Loaded image: app:v1\n"
    );
    let expected_trees = layer_trees(&reference, "app:v1");
    assert_eq!(reference.inspect("app:v1")["Id"], image.config_digest);

    let gzip_bytes = gzip(&oci);
    let zstd_file = scratch.path().join("docker.tar.zst");
    run(Command::new("zstd").args([
        "-q",
        docker.to_str().unwrap(),
        "-o",
        zstd_file.to_str().unwrap(),
    ]));
    for (what, root, out) in [
        ("gzip oci-archive on stdin", Flotilla::new(), None),
        (
            "zstd docker-archive file",
            Flotilla::new(),
            Some(&zstd_file),
        ),
    ] {
        let printed = match out {
            None => root.ok_with_input(&["load"], &gzip_bytes),
            Some(file) => root.ok(&["load", "-i", file.to_str().unwrap()]),
        };
        assert_eq!(printed, "Loaded image: app:v1\n", "{what}");
        let inspect = root.inspect("app:v1");
        assert_eq!(inspect["Id"], image.config_digest, "{what}");
        assert_eq!(diff_ids(&inspect), image.diff_ids, "{what}");
        assert_eq!(layer_trees(&root, "app:v1"), expected_trees, "{what}");
    }

    // An image saved by ID is saved without a name, as docker does.
    let by_id = reference
        .command(&["save", &image.config_digest])
        .stdin(Stdio::null())
        .output()
        .unwrap()
        .stdout;
    assert_eq!(
        Flotilla::new().ok_with_input(&["load"], &by_id),
        format!("Loaded image ID: {}\n", image.config_digest)
    );

    // A second image, to save two in one archive.
    let small = scratch.path().join("small");
    fs::create_dir(&small).unwrap();
    fs::write(small.join("file"), b"small").unwrap();
    let small_tar = scratch.path().join("small.tar");
    tar_of(&small, &small_tar);
    let small_id = reference.ok(&["import", small_tar.to_str().unwrap(), "small:v1"]);

    // save → load (through a pipe) into another root: same IDs, layers and files.
    for format in ["docker-archive", "oci-archive"] {
        let archive_bytes = reference
            .command(&["save", "--format", format, "app:v1", "small:v1"])
            .stdin(Stdio::null())
            .output()
            .unwrap()
            .stdout;
        let other = Flotilla::new();
        let out = other.ok_with_input(&["load"], &archive_bytes);
        assert_eq!(
            out, "Loaded image: app:v1\nLoaded image: small:v1\n",
            "{format}"
        );
        assert_eq!(
            other.inspect("app:v1")["Id"],
            image.config_digest,
            "{format}"
        );
        assert_eq!(other.inspect("small:v1")["Id"], small_id.trim(), "{format}");
        assert_eq!(layer_trees(&other, "small:v1"), [tree(&small)], "{format}");
        assert_eq!(layer_trees(&other, "app:v1"), expected_trees, "{format}");
    }
}

#[test]
fn multi_platform_oci_archive_loads_this_machines_image() {
    let scratch = tempfile::tempdir().unwrap();
    let image = TestImage::builder().multi_platform().build().unwrap();
    let archive = scratch.path().join("all.tar");
    run(Command::new("skopeo").args([
        "copy",
        "--quiet",
        "--all",
        &format!("oci:{}:{LAYOUT_TAG}", image.layout().display()),
        &format!("oci-archive:{}:app:v1", archive.display()),
    ]));
    let root = Flotilla::new();
    assert_eq!(
        root.ok(&["load", "-i", archive.to_str().unwrap()]),
        "Loaded image: app:v1\n"
    );
    let arch = match std::env::consts::ARCH {
        "aarch64" => "arm64",
        _ => "amd64",
    };
    let host = image
        .platforms
        .iter()
        .find(|p| p.platform.starts_with(&format!("linux/{arch}")))
        .unwrap();
    let inspect = root.inspect("app:v1");
    assert_eq!(inspect["Id"], host.config.digest);
    assert_eq!(inspect["Descriptor"]["digest"], host.manifest.digest);
    assert_eq!(inspect["Architecture"], arch);
}

/// A tree with every kind of entry export must write.
fn special_tree(dir: &Path) {
    fs::create_dir_all(dir.join("bin")).unwrap();
    fs::copy("/bin/busybox", dir.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", dir.join("bin/sh")).unwrap();
    fs::write(dir.join("bin/suid"), b"#!/bin/sh\n").unwrap();
    fs::set_permissions(dir.join("bin/suid"), fs::Permissions::from_mode(0o4755)).unwrap();
    fs::hard_link(dir.join("bin/suid"), dir.join("bin/suid-link")).unwrap();
    fs::create_dir(dir.join("tmp")).unwrap();
    fs::set_permissions(dir.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    fs::create_dir(dir.join("dev")).unwrap();
    run(Command::new("mknod")
        .arg(dir.join("dev/null"))
        .args(["c", "1", "3"]));
    run(Command::new("mkfifo").arg(dir.join("dev/fifo")));
    fs::write(dir.join("owned"), b"owned").unwrap();
    std::os::unix::fs::chown(dir.join("owned"), Some(1234), Some(5678)).unwrap();
    run(Command::new("setfattr")
        .args(["-n", "user.flotilla", "-v", "yes"])
        .arg(dir.join("owned")));
    run(Command::new("touch")
        .args(["-h", "-d", "2001-02-03 04:05:06"])
        .arg(dir.join("owned")));
}

#[test]
fn export_writes_the_tree_and_import_makes_an_image_of_it() {
    let scratch = tempfile::tempdir().unwrap();
    let tree_dir = scratch.path().join("rootfs");
    special_tree(&tree_dir);
    let root = Flotilla::new();
    // The tree becomes a container's file system (GNU tar → import → create), which export
    // writes back.
    let source = scratch.path().join("source.tar");
    tar_of(&tree_dir, &source);
    root.ok(&["import", source.to_str().unwrap(), "special:v1"]);
    root.ok(&["create", "--name", "special", "special:v1", "/bin/sh"]);
    let tarball = scratch.path().join("rootfs.tar");
    root.ok(&["export", "-o", tarball.to_str().unwrap(), "special"]);

    let mut archive = tar::Archive::new(fs::File::open(&tarball).unwrap());
    let mut listing = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let xattrs: Vec<String> = entry
            .pax_extensions()
            .unwrap()
            .into_iter()
            .flatten()
            .map(|e| {
                let e = e.unwrap();
                format!(" {}={}", e.key().unwrap(), e.value().unwrap())
            })
            .collect();
        let header = entry.header();
        listing.push(format!(
            "{:?} {} {:o} {}:{} {}{}",
            header.entry_type(),
            String::from_utf8_lossy(&entry.path_bytes()),
            header.mode().unwrap(),
            header.uid().unwrap(),
            header.gid().unwrap(),
            entry
                .link_name()
                .unwrap()
                .map(|l| format!("-> {}", l.display()))
                .unwrap_or_default(),
            xattrs.concat(),
        ));
    }
    let names: Vec<&str> = listing
        .iter()
        .map(|l| l.split(' ').nth(1).unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "bin/",
            "bin/busybox",
            "bin/sh",
            "bin/suid",
            "bin/suid-link",
            "dev/",
            "dev/fifo",
            "dev/null",
            "owned",
            "tmp/"
        ]
    );
    for expected in [
        "Symlink bin/sh 777 0:0 -> busybox",
        "Regular bin/suid 4755 0:0 ",
        "Link bin/suid-link 4755 0:0 -> bin/suid",
        "Char dev/null 644 0:0 ",
        "Fifo dev/fifo 644 0:0 ",
        "Regular owned 644 1234:5678  SCHILY.xattr.user.flotilla=yes",
        "Directory tmp/ 1777 0:0 ",
    ] {
        assert!(
            listing.iter().any(|l| l == expected),
            "{expected:?} not in {listing:#?}"
        );
    }
    let again = scratch.path().join("again.tar");
    root.ok(&["export", "-o", again.to_str().unwrap(), "special"]);
    assert_eq!(
        fs::read(&again).unwrap(),
        fs::read(&tarball).unwrap(),
        "deterministic"
    );

    // export → import: one layer holding the same tree, and the changes in the config.
    let printed = root.ok(&[
        "import",
        "--change",
        "CMD [\"/bin/sh\"]",
        "-c",
        "ENTRYPOINT echo hi",
        "-c",
        "ENV A=1 B=\"two words\"",
        "-c",
        "EXPOSE 8080 53/udp",
        "-c",
        "LABEL team=infra",
        "-c",
        "USER 1000",
        "-c",
        "VOLUME /data",
        "-c",
        "WORKDIR /srv",
        "-c",
        "STOPSIGNAL SIGINT",
        "-m",
        "snapshot of rootfs",
        tarball.to_str().unwrap(),
        "snap:v1",
    ]);
    let inspect = root.inspect("snap:v1");
    assert_eq!(printed.trim(), inspect["Id"].as_str().unwrap());
    assert!(printed.starts_with("sha256:"), "{printed}");
    let config = &inspect["Config"];
    assert_eq!(config["Cmd"], serde_json::json!(["/bin/sh"]));
    assert_eq!(
        config["Entrypoint"],
        serde_json::json!(["/bin/sh", "-c", "echo hi"])
    );
    assert_eq!(config["Env"], serde_json::json!(["A=1", "B=two words"]));
    assert_eq!(
        config["ExposedPorts"],
        serde_json::json!({"8080/tcp": {}, "53/udp": {}})
    );
    assert_eq!(config["Labels"], serde_json::json!({"team": "infra"}));
    assert_eq!(config["User"], "1000");
    assert_eq!(config["Volumes"], serde_json::json!({"/data": {}}));
    assert_eq!(config["WorkingDir"], "/srv");
    assert_eq!(config["StopSignal"], "SIGINT");
    assert_eq!(inspect["Comment"], "snapshot of rootfs");
    let layers = layer_trees(&root, "snap:v1");
    assert_eq!(layers.len(), 1);
    assert_eq!(layers[0], tree(&tree_dir));

    // A gzip tarball on standard input, no name.
    let gzip = gzip(&tarball);
    let id = root.ok_with_input(&["import", "-"], &gzip);
    let inspect = root.inspect(id.trim());
    assert_eq!(inspect["Comment"], "Imported from -");
    assert_eq!(inspect["RootFS"], root.inspect("snap:v1")["RootFS"]);

    let error = root.fails(&["import", "-c", "RUN rm -rf /", tarball.to_str().unwrap()]);
    assert!(
        error.contains("RUN is not supported by --change (supported: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR, STOPSIGNAL)"),
        "{error}"
    );
}

/// Archive entries: names and contents.
type Entries = Vec<(String, Vec<u8>)>;

/// A tar with `entries` written byte for byte, names unchecked (as a hostile writer would).
fn raw_tar(path: &Path, entries: &[(&str, &[u8])]) {
    let mut out = Vec::new();
    for (name, data) in entries {
        let mut header = tar::Header::new_old();
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    fs::write(path, out).unwrap();
}

fn sha256_hex(bytes: &[u8]) -> String {
    let mut hasher = <sha2::Sha256 as sha2::Digest>::new();
    sha2::Digest::update(&mut hasher, bytes);
    format!("{:x}", sha2::Digest::finalize(hasher))
}

/// An uncompressed layer holding one file, and a config listing `diff_id` for it.
fn layer_and_config(diff_id: Option<&str>) -> (Vec<u8>, Vec<u8>) {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_size(5);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    builder
        .append_data(&mut header, "hello", &b"hello"[..])
        .unwrap();
    let layer = builder.into_inner().unwrap();
    let diff_id = diff_id.map_or_else(|| format!("sha256:{}", sha256_hex(&layer)), str::to_owned);
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    });
    (layer, config.to_string().into_bytes())
}

#[test]
fn hostile_archives_are_refused_by_name_and_leave_the_store_unchanged() {
    let scratch = tempfile::tempdir().unwrap();
    let (root, image) = root_with_image(scratch.path());
    let images_before = root.ok(&["images"]);
    let store_before = store_listing(&root);

    let (layer, config) = layer_and_config(None);
    let config_name = format!("{}.json", sha256_hex(&config));
    let manifest = |layers: &str| {
        format!(r#"[{{"Config":"{config_name}","RepoTags":["evil:v1"],"Layers":[{layers}]}}]"#)
    };
    let (_, wrong_config) = layer_and_config(Some(&format!("sha256:{}", "0".repeat(64))));
    let wrong_config_name = format!("{}.json", sha256_hex(&wrong_config));

    // A truncated copy of a real archive: cut in the middle of its biggest layer.
    let full = scratch.path().join("full.tar");
    root.ok(&["save", "-o", full.to_str().unwrap(), "app:v1"]);
    let bytes = fs::read(&full).unwrap();
    let busybox_layer = format!("{}.tar", image.diff_ids[0].trim_start_matches("sha256:"));
    let truncated = scratch.path().join("truncated.tar");
    fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();

    // An OCI blob whose content is not what its name says.
    let oci = scratch.path().join("oci.tar");
    root.ok(&[
        "save",
        "--format",
        "oci-archive",
        "-o",
        oci.to_str().unwrap(),
        "app:v1",
    ]);
    let mut oci_archive = tar::Archive::new(fs::File::open(&oci).unwrap());
    let mut oci_entries: Entries = Vec::new();
    for entry in oci_archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        oci_entries.push((entry.path().unwrap().display().to_string(), data));
    }
    let top_layer = format!(
        "blobs/sha256/{}",
        image.layers[2].blob.digest.trim_start_matches("sha256:")
    );
    for (name, data) in &mut oci_entries {
        if *name == top_layer {
            data[20] ^= 0xff;
        }
    }
    let corrupt_blob = scratch.path().join("corrupt-blob.tar");
    raw_tar(
        &corrupt_blob,
        &oci_entries
            .iter()
            .map(|(n, d)| (n.as_str(), d.as_slice()))
            .collect::<Vec<_>>(),
    );

    let bomb = format!("[{}]", " ".repeat(5 << 20));
    let cases: Vec<(&str, Entries, String)> = vec![
        (
            "parent traversal",
            vec![
                ("../x".into(), b"x".to_vec()),
                (
                    "manifest.json".into(),
                    manifest("\"layer.tar\"").into_bytes(),
                ),
            ],
            r#"archive entry "../x" has an unsafe name (absolute or climbing out with ..)"#.into(),
        ),
        (
            "absolute name",
            vec![("/etc/evil".into(), b"x".to_vec())],
            r#"archive entry "/etc/evil" has an unsafe name"#.into(),
        ),
        (
            "missing layer",
            vec![
                (config_name.clone(), config.clone()),
                (
                    "manifest.json".into(),
                    manifest("\"missing.tar\"").into_bytes(),
                ),
            ],
            r#"archive entry "missing.tar" named by manifest.json is missing"#.into(),
        ),
        (
            "layer not matching the config's diff ID",
            vec![
                (wrong_config_name.clone(), wrong_config.clone()),
                ("layer.tar".into(), layer.clone()),
                (
                    "manifest.json".into(),
                    manifest("\"layer.tar\"")
                        .replace(&config_name, &wrong_config_name)
                        .into_bytes(),
                ),
            ],
            format!(
                r#"layer layer.tar: uncompressed content is sha256:{}, the image config says sha256:{}"#,
                sha256_hex(&layer),
                "0".repeat(64)
            ),
        ),
        (
            "manifest bomb",
            vec![("manifest.json".into(), bomb.into_bytes())],
            r#"archive entry "manifest.json" is 5242882 bytes, more than the 4194304 allowed"#
                .into(),
        ),
    ];
    let mut checks: Vec<(String, PathBuf, String)> = Vec::new();
    for (what, entries, expected) in cases {
        let path = scratch
            .path()
            .join(format!("{}.tar", what.replace(' ', "-")));
        raw_tar(
            &path,
            &entries
                .iter()
                .map(|(n, d)| (n.as_str(), d.as_slice()))
                .collect::<Vec<_>>(),
        );
        checks.push((what.to_owned(), path, expected));
    }
    let truncated_gzip = scratch.path().join("truncated.tar.gz");
    let gzipped = gzip(&full);
    fs::write(&truncated_gzip, &gzipped[..gzipped.len() / 2]).unwrap();
    checks.push((
        "truncated gzip archive".into(),
        truncated_gzip,
        "cannot read the archive: ".into(),
    ));
    checks.push((
        "truncated archive".into(),
        truncated,
        format!(r#"the archive is truncated: entry "{busybox_layer}" ends past its end"#),
    ));
    checks.push((
        "blob not matching its name".into(),
        corrupt_blob,
        format!(
            r#"archive entry "{top_layer}": layer blob {}"#,
            image.layers[2].blob.digest
        ),
    ));

    for (what, path, expected) in checks {
        let error = root.fails(&["load", "-i", path.to_str().unwrap()]);
        assert!(
            error.contains(&expected),
            "{what}: expected {expected:?} in {error:?}"
        );
        assert_eq!(root.ok(&["images"]), images_before, "{what}");
        assert_eq!(store_listing(&root), store_before, "{what}");
    }
}
