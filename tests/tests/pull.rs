//! `flotilla pull` and the image commands against a real registry (Debian's docker-registry on
//! 127.0.0.1), as a user runs them: what they print, what ends up in the store, and what a bad
//! registry, wrong credentials or a killed pull leave behind.

use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use flotilla_tests::flotilla::{diff_ids, Flotilla};
use flotilla_tests::hostile_proxy::{HostileProxy, Mode};
use flotilla_tests::registry::{Auth, Registry};
use flotilla_tests::test_image::{Format, TestImage};
use tempfile::TempDir;

/// Names of the entries of a store directory (`blobs/sha256`, `layers`, `tmp`).
fn store_entries(flotilla: &Flotilla, dir: &str) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(flotilla.data_root().join("image").join(dir))
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn assert_store_empty(flotilla: &Flotilla) {
    assert!(flotilla.ok(&["images", "-q"]).is_empty());
    for dir in ["blobs/sha256", "layers", "tmp"] {
        assert_eq!(store_entries(flotilla, dir), Vec::<String>::new(), "{dir}");
    }
}

fn image() -> TestImage {
    TestImage::build().unwrap()
}

/// Mounts the image's layers as an overlay in a private mount namespace and runs `script` with
/// the image's busybox, chrooted: proof that the unpacked layers make a working root.
fn run_in_image(inspect: &serde_json::Value, script: &str) -> String {
    let lower = inspect["GraphDriver"]["Data"]["LowerDir"].as_str().unwrap();
    let merged = TempDir::new().unwrap();
    let output = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(format!(
            "mount -t overlay overlay -o ro,lowerdir={lower} {m} && chroot {m} /bin/sh -c '{script}'",
            m = merged.path().display()
        ))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn pull_unpacks_a_working_image_and_a_second_pull_is_up_to_date() {
    let registry = Registry::start(Auth::None).unwrap();
    let test_image = image();
    for (tag, format) in [("oci", Format::Oci), ("v2s2", Format::V2s2)] {
        let flotilla = Flotilla::new();
        let pushed = test_image
            .push(&registry, &format!("tools/box:{tag}"), format)
            .unwrap();
        let name = format!("{}/tools/box:{tag}", registry.host());
        let out = flotilla.ok(&["pull", &name]);
        assert!(
            out.starts_with(&format!("{tag}: Pulling from tools/box\n")),
            "{out}"
        );
        assert_eq!(out.matches(": Pull complete").count(), 3, "{out}");
        assert!(out.contains(&format!("Digest: {pushed}\n")), "{out}");
        assert!(
            out.contains(&format!("Status: Downloaded newer image for {name}\n")),
            "{out}"
        );
        assert!(out.ends_with(&format!("{name}\n")), "{out}");

        let inspect = flotilla.inspect(&name);
        assert_eq!(
            inspect["Id"], test_image.config_digest,
            "image ID is the config digest"
        );
        assert_eq!(diff_ids(&inspect), test_image.diff_ids);
        assert_eq!(inspect["RepoTags"][0], name);
        assert_eq!(
            inspect["RepoDigests"][0],
            format!("{}/tools/box@{pushed}", registry.host())
        );

        // The layers work as an overlay: busybox runs, the whiteout and the opaque dir hide.
        let listing = run_in_image(
            &inspect,
            "cat /data/hello.txt; ls /opaque; ls /data; stat -c %a /data/setuid",
        );
        assert_eq!(
            listing,
            "hello from layer 2\nnew\nhello-hardlink\nhello-symlink\nhello.txt\nreadonly\nscript.sh\nsecret\nsetuid\ntree\n4755\n",
            "the merged view of the image"
        );

        let again = flotilla.ok(&["pull", &name]);
        assert_eq!(again.matches(": Already exists").count(), 3, "{again}");
        assert!(
            again.contains(&format!("Status: Image is up to date for {name}")),
            "{again}"
        );
    }
}

#[test]
fn layers_are_overlay_ready_with_whiteouts_and_opaque_dirs() {
    let registry = Registry::start(Auth::None).unwrap();
    let test_image = image();
    test_image.push(&registry, "box:1", Format::Oci).unwrap();
    let flotilla = Flotilla::new();
    let name = format!("{}/box:1", registry.host());
    flotilla.ok(&["pull", "-q", &name]);
    let lower = flotilla.lower_dirs(&name);
    let top = &lower[0];
    let whiteout = fs::symlink_metadata(top.join("data/to-delete")).unwrap();
    assert!(whiteout.file_type().is_char_device());
    let opaque = xattr(&top.join("opaque"), "trusted.overlay.opaque");
    assert_eq!(opaque.as_deref(), Some("y"));
    assert!(lower[2].join("bin/busybox").is_file());
}

fn xattr(path: &Path, name: &str) -> Option<String> {
    let output = Command::new("getfattr")
        .args(["--only-values", "-n", name])
        .arg(path)
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

#[test]
fn pull_by_digest_and_by_platform() {
    let registry = Registry::start(Auth::None).unwrap();
    let multi = TestImage::builder().multi_platform().build().unwrap();
    let pushed = multi.push(&registry, "multi:1", Format::Oci).unwrap();
    let flotilla = Flotilla::new();
    let name = format!("{}/multi:1", registry.host());

    let arm = multi
        .platforms
        .iter()
        .find(|p| p.platform.starts_with("linux/arm64"))
        .unwrap();
    flotilla.ok(&["pull", "-q", "--platform", "linux/arm64", &name]);
    assert_eq!(flotilla.inspect(&name)["Id"], arm.config.digest);
    assert_eq!(flotilla.inspect(&name)["Architecture"], "arm64");

    let amd = multi
        .platforms
        .iter()
        .find(|p| p.platform == "linux/amd64")
        .unwrap();
    let by_digest = format!("{}/multi@{pushed}", registry.host());
    flotilla.ok(&["pull", "-q", "--platform", "linux/amd64", &by_digest]);
    assert_eq!(flotilla.inspect(&by_digest)["Id"], amd.config.digest);

    let err = flotilla.fails(&["pull", "--platform", "linux/s390x", &name]);
    assert!(
        err.contains("no matching manifest for linux/s390x in the manifest list entries of")
            && err.contains("(it has: linux/amd64, linux/arm64/v8)"),
        "{err}"
    );
    let usage = flotilla.run(&["pull", "--platform", "s390x", &name]);
    assert_eq!(
        usage.status.code(),
        Some(2),
        "a malformed --platform is a usage error"
    );
    assert!(String::from_utf8_lossy(&usage.stderr).contains("is not OS/ARCH[/VARIANT]"));
}

#[test]
fn basic_and_token_auth_come_from_the_auth_file() {
    for auth in [
        Auth::Basic {
            user: "alice".into(),
            password: "wonderland".into(),
        },
        Auth::Token,
    ] {
        let registry = Registry::start(auth).unwrap();
        let test_image = image();
        test_image
            .push(&registry, "private/app:v1", Format::Oci)
            .unwrap();
        let flotilla = Flotilla::new();
        let name = format!("{}/private/app:v1", registry.host());

        let err = flotilla.fails(&["pull", &name]);
        assert!(err.contains("cannot pull"), "{err}");
        assert!(flotilla.ok(&["images", "-q"]).is_empty());

        let auth_file = flotilla.dir().join("auth.json");
        registry.write_auth_file(&auth_file).unwrap();
        flotilla.configure(&format!("[engine]\nauth_file = {:?}\n", auth_file));
        flotilla.ok(&["pull", "-q", &name]);
        assert_eq!(flotilla.inspect(&name)["Id"], test_image.config_digest);
    }
}

#[test]
fn docker_hub_names_go_through_the_configured_mirrors() {
    let registry = Registry::start(Auth::None).unwrap();
    let test_image = image();
    test_image
        .push(&registry, "library/busybox:latest", Format::V2s2)
        .unwrap();
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    drop(dead);
    let flotilla = Flotilla::new();
    flotilla.configure(&format!(
        "[engine]\nregistry_mirrors = [\"http://127.0.0.1:{dead_port}\", \"http://{}\"]\nretries = 0\n",
        registry.host()
    ));
    let out = flotilla.ok(&["pull", "busybox"]);
    assert!(
        out.starts_with("Using default tag: latest\nlatest: Pulling from library/busybox\n"),
        "{out}"
    );
    assert!(out.ends_with("docker.io/library/busybox:latest\n"), "{out}");
    let images = flotilla.ok(&["images"]);
    let lines: Vec<&str> = images.lines().collect();
    assert!(lines[0].starts_with("REPOSITORY"), "{images}");
    assert!(lines[1].starts_with("busybox "), "{images}");
    assert!(
        lines[1].contains(&test_image.config_digest[7..19]),
        "{images}"
    );
}

#[test]
fn a_hostile_registry_leaves_the_store_unchanged() {
    let registry = Registry::start(Auth::None).unwrap();
    let test_image = image();
    test_image.push(&registry, "app:1", Format::Oci).unwrap();
    let cases: [(Mode, &str); 4] = [
        (Mode::WrongBlobBytes, "digest mismatch: expected sha256:"),
        (
            Mode::ManifestBomb { chunked: false },
            "larger than the 4194304 bytes allowed",
        ),
        (
            Mode::ManifestBomb { chunked: true },
            "larger than the 4194304 bytes allowed",
        ),
        (
            Mode::TruncateBlob {
                after: 1000,
                every_time: true,
            },
            "truncated: got",
        ),
    ];
    for (mode, expected) in cases {
        let proxy = HostileProxy::start(&registry, mode).unwrap();
        let flotilla = Flotilla::new();
        flotilla.configure("[engine]\nretries = 1\n");
        let err = flotilla.fails(&["pull", &format!("{}/app:1", proxy.host())]);
        assert!(err.contains(expected), "expected {expected:?} in: {err}");
        assert_store_empty(&flotilla);
    }
}

#[test]
fn a_blob_cut_once_is_resumed() {
    let registry = Registry::start(Auth::None).unwrap();
    let test_image = image();
    test_image.push(&registry, "app:1", Format::Oci).unwrap();
    let proxy = HostileProxy::start(
        &registry,
        Mode::TruncateBlob {
            after: 200,
            every_time: false,
        },
    )
    .unwrap();
    let flotilla = Flotilla::new();
    let name = format!("{}/app:1", proxy.host());
    flotilla.ok(&["pull", "-q", &name]);
    assert_eq!(flotilla.inspect(&name)["Id"], test_image.config_digest);
    assert!(
        proxy.requests().iter().any(|r| r.range.is_some()),
        "a Range request resumed it"
    );
}

/// Waits until `condition` holds, for at most `limit`.
fn wait_for(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Bytes staged under the store's tmp/.
fn staged_bytes(root: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![root.join("image/tmp")];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                total += meta.len();
            }
        }
    }
    total
}

#[test]
fn a_killed_pull_leaves_a_consistent_store() {
    let registry = Registry::start(Auth::None).unwrap();
    let small = image();
    small.push(&registry, "small:1", Format::Oci).unwrap();
    let big = TestImage::builder().big_layers(3, 40).build().unwrap();
    big.push(&registry, "big:1", Format::Oci).unwrap();
    let flotilla = Flotilla::new();
    let small_name = format!("{}/small:1", registry.host());
    let big_name = format!("{}/big:1", registry.host());
    flotilla.ok(&["pull", "-q", &small_name]);
    let before = flotilla.ok(&["images"]);

    let mut pull = flotilla
        .command(&["pull", "-q", &big_name])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let root = flotilla.data_root();
    let staged = wait_for(Duration::from_secs(60), || staged_bytes(&root) > 1 << 20);
    pull.kill().unwrap();
    pull.wait().unwrap();
    assert!(staged, "the pull was killed while it had content staged");

    // Nothing of the killed pull is visible; the earlier image is intact and still works.
    assert_eq!(flotilla.ok(&["images"]), before);
    assert!(flotilla
        .fails(&["image", "inspect", &big_name])
        .contains("no such image"));
    assert_eq!(
        run_in_image(&flotilla.inspect(&small_name), "cat /data/hello.txt"),
        "hello from layer 2\n"
    );
    // The next run of the store cleans the staging up, and the pull then completes.
    flotilla.ok(&["pull", "-q", &big_name]);
    assert_eq!(flotilla.inspect(&big_name)["Id"], big.config_digest);
    assert_eq!(store_entries(&flotilla, "tmp"), Vec::<String>::new());
    flotilla.ok(&["image", "prune", "-a", "-f"]);
    assert_store_empty(&flotilla);
}

#[test]
fn two_pulls_at_once_share_the_store() {
    let registry = Registry::start(Auth::None).unwrap();
    let test_image = TestImage::builder().big_layers(2, 8).build().unwrap();
    test_image.push(&registry, "app:1", Format::Oci).unwrap();
    let flotilla = Flotilla::new();
    let name = format!("{}/app:1", registry.host());
    let children: Vec<_> = (0..2)
        .map(|_| {
            flotilla
                .command(&["pull", "-q", &name])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert_eq!(flotilla.ok(&["images", "-q"]).lines().count(), 1);
    assert_eq!(
        store_entries(&flotilla, "layers").len(),
        test_image.diff_ids.len()
    );
}

#[test]
fn tag_rmi_and_prune_print_what_they_did() {
    let registry = Registry::start(Auth::None).unwrap();
    let test_image = image();
    test_image.push(&registry, "app:1", Format::Oci).unwrap();
    let flotilla = Flotilla::new();
    let name = format!("{}/app:1", registry.host());
    flotilla.ok(&["pull", "-q", &name]);
    flotilla.ok(&["tag", &name, "mine:v1"]);
    assert_eq!(flotilla.inspect("mine:v1")["Id"], test_image.config_digest);

    assert_eq!(flotilla.ok(&["rmi", "mine:v1"]), "Untagged: mine:v1\n");
    let err = flotilla.fails(&["rmi", "mine:v1", &name]);
    assert!(err.contains("no such image: mine:v1"), "{err}");
    // `rmi` went on with the next name after the failed one.
    assert!(flotilla.ok(&["images", "-q"]).is_empty());
    assert_store_empty(&flotilla);

    flotilla.ok(&["pull", "-q", &name]);
    flotilla.ok(&["tag", &name, "other:v1"]);
    let short = &test_image.config_digest[7..19];
    let err = flotilla.fails(&["rmi", short]);
    assert!(
        err.contains(&format!("unable to delete {short} (must be forced)")),
        "{err}"
    );
    let out = flotilla.ok(&["rmi", "-f", short]);
    assert!(
        out.contains(&format!("Deleted: {}", test_image.config_digest)),
        "{out}"
    );
    assert_eq!(
        out.matches("Deleted: sha256:").count(),
        4,
        "the image and its 3 layers: {out}"
    );

    flotilla.ok(&["pull", "-q", &name]);
    flotilla.ok(&["tag", &name, "next:v1"]);
    flotilla.ok(&["rmi", &name]);
    let dangling = flotilla.ok(&["image", "prune", "-f"]);
    assert_eq!(
        dangling, "Total reclaimed space: 0B\n",
        "a tagged image is not dangling"
    );
    let all = flotilla.ok(&["image", "prune", "-a", "-f"]);
    assert!(
        all.starts_with("Deleted Images:\nUntagged: next:v1\n"),
        "{all}"
    );
    assert_store_empty(&flotilla);
}
