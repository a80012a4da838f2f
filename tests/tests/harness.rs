//! The registry fixtures work: a [`TestImage`] layout is valid to real peers (skopeo reads it,
//! umoci unpacks it with the whiteouts honoured), and it can be pushed to each kind of
//! [`Registry`].

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;

use flotilla_tests::registry::{Auth, Registry};
use flotilla_tests::test_image::{Compression, Format, TestImage, LAYOUT_TAG};

fn run(command: &mut Command) -> String {
    let output = command.output().expect("spawn (tests/deps.sh installs it)");
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn skopeo_reads_the_layout_and_umoci_unpacks_it_with_whiteouts() {
    let image = TestImage::build().unwrap();
    let layout = format!("oci:{}:{LAYOUT_TAG}", image.layout().display());
    let inspect: serde_json::Value =
        serde_json::from_str(&run(Command::new("skopeo").args(["inspect", &layout]))).unwrap();
    assert_eq!(inspect["Digest"], image.manifest_digest);
    assert_eq!(inspect["Layers"].as_array().unwrap().len(), 3);
    assert_eq!(inspect["Labels"]["org.flotilla.test"], "true");
    let config: serde_json::Value = serde_json::from_str(&run(
        Command::new("skopeo").args(["inspect", "--config", &layout])
    ))
    .unwrap();
    assert_eq!(
        config["rootfs"]["diff_ids"],
        serde_json::json!(image.diff_ids)
    );
    assert_eq!(config["config"]["WorkingDir"], "/data");

    let bundle = tempfile::tempdir().unwrap();
    let bundle = bundle.path().join("bundle");
    run(Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:{LAYOUT_TAG}", image.layout().display()))
        .arg(&bundle));
    let rootfs = bundle.join("rootfs");
    let hello = fs::read_to_string(rootfs.join("data/hello.txt")).unwrap();
    assert_eq!(hello, "hello from layer 2\n");
    assert_eq!(
        fs::read_link(rootfs.join("bin/sh")).unwrap().to_str(),
        Some("busybox")
    );
    assert_eq!(fs::read_to_string(rootfs.join("etc/motd")).unwrap(), hello);
    let original = fs::metadata(rootfs.join("data/hello.txt")).unwrap();
    let hardlink = fs::metadata(rootfs.join("data/hello-hardlink")).unwrap();
    assert_eq!(original.ino(), hardlink.ino(), "hard link");
    assert_eq!(original.mtime(), 1_600_000_000);
    let mode = |path: &str| {
        fs::metadata(rootfs.join(path))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(mode("data/script.sh"), 0o750);
    assert_eq!(mode("data/setuid"), 0o4755);
    assert_eq!(mode("tmp"), 0o1777);
    assert!(
        !rootfs.join("data/to-delete").exists(),
        "whiteout not honoured"
    );
    let mut opaque: Vec<String> = fs::read_dir(rootfs.join("opaque"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    opaque.sort();
    assert_eq!(opaque, ["new"], "opaque directory not honoured");
    // The busybox in the image runs.
    let echoed = run(Command::new(rootfs.join("bin/busybox")).args(["echo", "alive"]));
    assert_eq!(echoed, "alive\n");
}

#[test]
fn images_push_to_every_kind_of_registry() {
    let image = TestImage::builder()
        .compression(Compression::Zstd)
        .build()
        .unwrap();
    let plain = Registry::start(Auth::None).unwrap();
    assert_eq!(
        image.push(&plain, "zstd/app:v1", Format::Oci).unwrap(),
        image.manifest_digest
    );
    let basic = Registry::start(Auth::Basic {
        user: "alice".into(),
        password: "wonderland".into(),
    })
    .unwrap();
    let gzip = TestImage::build().unwrap();
    let pushed = gzip.push(&basic, "app:v1", Format::V2s2).unwrap();
    assert_ne!(pushed, gzip.manifest_digest, "v2s2 is a conversion");
    let token = Registry::start(Auth::Token).unwrap();
    assert_eq!(
        gzip.push(&token, "team/app:v1", Format::Oci).unwrap(),
        gzip.manifest_digest
    );
    assert!(token.token_server().unwrap().tokens_issued() > 0);
    let multi = TestImage::builder().multi_platform().build().unwrap();
    let index = multi.index.as_ref().unwrap();
    assert_eq!(
        multi.push(&plain, "multi:v1", Format::Oci).unwrap(),
        index.digest
    );
    // skopeo reads back what it pushed, the platform's config included.
    let arm = run(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        "--override-arch=arm64",
        "--override-variant=v8",
        &format!("docker://{}/multi:v1", plain.host()),
    ]));
    let arm: serde_json::Value = serde_json::from_str(&arm).unwrap();
    assert_eq!(arm["Architecture"], "arm64");
    let layers: Vec<&str> = multi
        .layers
        .iter()
        .map(|l| l.blob.digest.as_str())
        .collect();
    assert_eq!(
        arm["Layers"],
        serde_json::json!(layers),
        "arm64 shares the layers"
    );
}

#[test]
fn big_layers_are_partly_compressible_and_plain_layers_are_tars() {
    let image = TestImage::builder().big_layers(2, 2).build().unwrap();
    assert_eq!(image.layers.len(), 5);
    assert_eq!(image.diff_ids.len(), 5);
    for layer in &image.layers[3..] {
        let ratio = layer.blob.size as f64 / f64::from(2u32 << 20);
        assert!(
            (0.3..0.9).contains(&ratio),
            "compressed to {ratio:.2} of 2 MB"
        );
    }
    let plain = TestImage::builder()
        .compression(Compression::None)
        .build()
        .unwrap();
    let layer = &plain.layers[2];
    assert_eq!(
        layer.blob.digest, layer.diff_id,
        "an uncompressed layer is its own diff"
    );
    let listing = run(Command::new("tar")
        .arg("-tf")
        .arg(plain.blob_path(&layer.blob.digest)));
    assert_eq!(
        listing,
        "data/\ndata/.wh.to-delete\nopaque/\nopaque/.wh..wh..opq\nopaque/new\n"
    );
}
