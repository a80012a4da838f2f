//! [`TestImage`]: an OCI image layout built in Rust for the registry and store tests, and pushed to
//! a [`Registry`] with skopeo.
//!
//! The default image has three layers that exercise what unpacking must get right:
//! 1. a busybox root file system (`/bin/busybox` of busybox-static, applet symlinks, `/etc/passwd`,
//!    `/etc/group`);
//! 2. files with various modes and mtimes, a hard link, relative symlinks, a directory tree, a file
//!    that layer 3 deletes and a directory that layer 3 makes opaque;
//! 3. the whiteout `data/.wh.to-delete`, the opaque marker `opaque/.wh..wh..opq` and new content.
//!
//! The configuration has `Env`, `Cmd`, `WorkingDir`, `Labels`, `rootfs.diff_ids` and `history`.
//! [`TestImageBuilder`] chooses the compression, adds big layers for benchmarks, or makes a
//! multi-platform index (linux/amd64 and linux/arm64/v8, sharing the layers).
//! Digests are `sha256:…` strings: this crate does not link `image`.
//!
//! ```no_run
//! use flotilla_tests::registry::{Auth, Registry};
//! use flotilla_tests::test_image::{Format, TestImage};
//!
//! let registry = Registry::start(Auth::None).unwrap();
//! let image = TestImage::build().unwrap();
//! let digest = image.push(&registry, "app:v1", Format::Oci).unwrap();
//! assert_eq!(digest, image.manifest_digest);
//! ```

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest as _, Sha256};

use crate::registry::{io_error, run, write, FixtureError, Registry, Result};

/// The tag of the image inside the layout.
pub const LAYOUT_TAG: &str = "latest";

/// Applets linked to `/bin/busybox` in layer 1.
pub const APPLETS: &[&str] = &[
    "sh", "ls", "cat", "echo", "sleep", "true", "false", "env", "id", "hostname", "wc", "stat",
];

/// How layers are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// `tar+gzip`.
    #[default]
    Gzip,
    /// `tar+zstd` (by the `zstd` command).
    Zstd,
    /// Plain `tar`.
    None,
}

/// The manifest format a push writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OCI manifest (and index), as built.
    Oci,
    /// Docker schema 2, converted by skopeo (`--format v2s2`).
    V2s2,
    /// Docker schema 1 (signed), converted by skopeo (`--format v2s1`): what clients must refuse.
    V2s1,
}

/// A blob of the layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// `sha256:…` of the bytes.
    pub digest: String,
    /// The size in bytes.
    pub size: u64,
    /// The descriptor's media type.
    pub media_type: String,
}

/// A layer: its blob and the digest of its uncompressed tar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// The (possibly compressed) blob.
    pub blob: Blob,
    /// `sha256:…` of the uncompressed tar, as in `rootfs.diff_ids`.
    pub diff_id: String,
}

/// One platform's image: manifest and configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformImage {
    /// `linux/amd64`, `linux/arm64/v8`.
    pub platform: String,
    /// The manifest blob.
    pub manifest: Blob,
    /// The configuration blob.
    pub config: Blob,
}

/// Options of a [`TestImage`].
#[derive(Debug, Clone, Default)]
pub struct TestImageBuilder {
    compression: Compression,
    big_layers: Option<(usize, usize)>,
    multi_platform: bool,
}

impl TestImageBuilder {
    /// Compresses layers with `compression` (default gzip).
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// Adds `count` layers of about `megabytes` MB each: many small files and some big ones, part
    /// random and part repetitive text, so compression behaves as on real images.
    pub fn big_layers(mut self, count: usize, megabytes: usize) -> Self {
        self.big_layers = Some((count, megabytes));
        self
    }

    /// Makes the layout's tag an index of linux/amd64 and linux/arm64/v8 images.
    pub fn multi_platform(mut self) -> Self {
        self.multi_platform = true;
        self
    }

    /// Writes the layout into a new temporary directory.
    ///
    /// # Errors
    /// `/bin/busybox` is missing, or writing or compressing failed.
    pub fn build(self) -> Result<TestImage> {
        let dir = tempfile::tempdir().map_err(io_error("create", "a temporary directory"))?;
        let blobs = dir.path().join("blobs/sha256");
        fs::create_dir_all(&blobs).map_err(io_error("create", blobs.display()))?;
        let mut tars = vec![busybox_layer()?, files_layer()?, whiteout_layer()?];
        if let Some((count, megabytes)) = self.big_layers {
            for index in 0..count {
                tars.push(big_layer(index, megabytes)?);
            }
        }
        let mut layers = Vec::new();
        for tar in tars {
            layers.push(write_layer(dir.path(), tar, self.compression)?);
        }
        let platforms: &[(&str, Option<&str>)] = if self.multi_platform {
            &[("amd64", None), ("arm64", Some("v8"))]
        } else {
            &[("amd64", None)]
        };
        let mut images = Vec::new();
        for (architecture, variant) in platforms {
            let config = config_json(architecture, *variant, &layers);
            let config = write_blob(dir.path(), config.as_bytes(), OCI_CONFIG)?;
            let manifest = serde_json::json!({
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": descriptor(&config),
                "layers": layers.iter().map(|layer| descriptor(&layer.blob)).collect::<Vec<_>>(),
            });
            let manifest = write_blob(dir.path(), manifest.to_string().as_bytes(), OCI_MANIFEST)?;
            let platform = match variant {
                Some(variant) => format!("linux/{architecture}/{variant}"),
                None => format!("linux/{architecture}"),
            };
            images.push(PlatformImage {
                platform,
                manifest,
                config,
            });
        }
        let (top, index) = if self.multi_platform {
            let index = serde_json::json!({
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": images.iter().zip(platforms).map(|(image, (architecture, variant))| {
                    let mut descriptor = descriptor(&image.manifest);
                    descriptor["platform"] = serde_json::json!({"architecture": architecture, "os": "linux"});
                    if let Some(variant) = variant {
                        descriptor["platform"]["variant"] = serde_json::json!(variant);
                    }
                    descriptor
                }).collect::<Vec<_>>(),
            });
            let index = write_blob(dir.path(), index.to_string().as_bytes(), OCI_INDEX)?;
            (index.clone(), Some(index))
        } else {
            (images[0].manifest.clone(), None)
        };
        let mut top_descriptor = descriptor(&top);
        top_descriptor["annotations"] =
            serde_json::json!({"org.opencontainers.image.ref.name": LAYOUT_TAG});
        let layout_index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [top_descriptor],
        });
        write(
            &dir.path().join("index.json"),
            layout_index.to_string().as_bytes(),
        )?;
        write(
            &dir.path().join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )?;
        Ok(TestImage {
            manifest_digest: images[0].manifest.digest.clone(),
            config_digest: images[0].config.digest.clone(),
            diff_ids: layers.iter().map(|layer| layer.diff_id.clone()).collect(),
            layers,
            platforms: images,
            index,
            dir,
        })
    }
}

/// An OCI image layout on disk, deleted on drop.
#[derive(Debug)]
pub struct TestImage {
    /// The (first platform's) manifest digest, `sha256:…`.
    pub manifest_digest: String,
    /// The (first platform's) configuration digest.
    pub config_digest: String,
    /// `rootfs.diff_ids`, first layer first.
    pub diff_ids: Vec<String>,
    /// The layers, first first.
    pub layers: Vec<Layer>,
    /// Each platform's manifest and configuration (one unless multi-platform).
    pub platforms: Vec<PlatformImage>,
    /// The index blob, when multi-platform.
    pub index: Option<Blob>,
    dir: tempfile::TempDir,
}

impl TestImage {
    /// The default image: three gzip layers, one platform.
    ///
    /// # Errors
    /// As [`TestImageBuilder::build`].
    pub fn build() -> Result<TestImage> {
        TestImageBuilder::default().build()
    }

    /// Options for another image.
    pub fn builder() -> TestImageBuilder {
        TestImageBuilder::default()
    }

    /// The layout directory (`index.json`, `oci-layout`, `blobs/sha256/…`).
    pub fn layout(&self) -> &Path {
        self.dir.path()
    }

    /// Where a blob of the layout is stored.
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        self.layout()
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    }

    /// Copies the image to `registry` as `target` (`repo:tag`) with skopeo, every platform for a
    /// multi-platform image; returns the digest of the manifest (or index) pushed, which differs
    /// from the layout's for [`Format::V2s2`].
    ///
    /// # Errors
    /// skopeo failed (with its message).
    pub fn push(&self, registry: &Registry, target: &str, format: Format) -> Result<String> {
        let digest_file = self
            .layout()
            .join(format!(".pushed-{}", std::process::id()));
        let mut command = Command::new("skopeo");
        command.args(["copy", "--quiet", "--dest-tls-verify=false", "--digestfile"]);
        command.arg(&digest_file);
        if let Some((user, password)) = registry.credentials() {
            command.arg(format!("--dest-creds={user}:{password}"));
        }
        match format {
            Format::Oci => {}
            Format::V2s2 => {
                command.args(["--format", "v2s2"]);
            }
            Format::V2s1 => {
                command.args(["--format", "v2s1"]);
            }
        }
        if self.index.is_some() {
            command.arg("--all");
        }
        command.arg(format!("oci:{}:{LAYOUT_TAG}", self.layout().display()));
        command.arg(format!("docker://{}/{target}", registry.host()));
        run(&mut command)?;
        let digest =
            fs::read_to_string(&digest_file).map_err(io_error("read", digest_file.display()))?;
        fs::remove_file(&digest_file).map_err(io_error("remove", digest_file.display()))?;
        Ok(digest.trim().to_owned())
    }
}

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

fn sha256(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let mut text = String::from("sha256:");
    for byte in hash {
        text.push_str(&format!("{byte:02x}"));
    }
    text
}

fn descriptor(blob: &Blob) -> serde_json::Value {
    serde_json::json!({"mediaType": blob.media_type, "digest": blob.digest, "size": blob.size})
}

fn write_blob(layout: &Path, bytes: &[u8], media_type: &str) -> Result<Blob> {
    let digest = sha256(bytes);
    let path = layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    write(&path, bytes)?;
    Ok(Blob {
        digest,
        size: bytes.len() as u64,
        media_type: media_type.to_owned(),
    })
}

fn write_layer(layout: &Path, tar: Vec<u8>, compression: Compression) -> Result<Layer> {
    let diff_id = sha256(&tar);
    let (bytes, media_type) = match compression {
        Compression::None => (tar, "application/vnd.oci.image.layer.v1.tar"),
        Compression::Gzip => {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            encoder
                .write_all(&tar)
                .and_then(|()| encoder.finish())
                .map(|bytes| (bytes, "application/vnd.oci.image.layer.v1.tar+gzip"))
                .map_err(io_error("gzip", "a layer"))?
        }
        Compression::Zstd => {
            let input = tempfile::NamedTempFile::new_in(layout)
                .map_err(io_error("create", layout.display()))?;
            write(input.path(), &tar)?;
            let output = run(Command::new("zstd")
                .args(["-q", "-c", "-3"])
                .arg(input.path()))?;
            (output.stdout, "application/vnd.oci.image.layer.v1.tar+zstd")
        }
    };
    Ok(Layer {
        blob: write_blob(layout, &bytes, media_type)?,
        diff_id,
    })
}

fn config_json(architecture: &str, variant: Option<&str>, layers: &[Layer]) -> String {
    let mut history = vec![
        serde_json::json!({"created": "2024-01-01T00:00:00Z", "created_by": "busybox root file system"}),
        serde_json::json!({"created": "2024-01-02T00:00:00Z", "created_by": "files, links and modes"}),
        serde_json::json!({"created": "2024-01-03T00:00:00Z", "created_by": "whiteouts"}),
    ];
    for index in 3..layers.len() {
        history.push(serde_json::json!({"created": "2024-01-04T00:00:00Z", "created_by": format!("big layer {}", index - 3)}));
    }
    history.push(serde_json::json!({"created": "2024-01-05T00:00:00Z", "created_by": "CMD", "empty_layer": true}));
    let mut config = serde_json::json!({
        "created": "2024-01-05T00:00:00Z",
        "architecture": architecture,
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/bin:/usr/bin:/bin", "GREETING=hello from flotilla"],
            "Cmd": ["/bin/sh", "-c", "echo $GREETING"],
            "WorkingDir": "/data",
            "Labels": {"org.flotilla.test": "true", "org.flotilla.layers": layers.len().to_string()},
        },
        "rootfs": {
            "type": "layers",
            "diff_ids": layers.iter().map(|layer| layer.diff_id.clone()).collect::<Vec<_>>(),
        },
        "history": history,
    });
    if let Some(variant) = variant {
        config["variant"] = serde_json::json!(variant);
    }
    config.to_string()
}

/// Builds one layer tar in memory.
struct TarWriter {
    builder: tar::Builder<Vec<u8>>,
}

const MTIME: u64 = 1_700_000_000;

impl TarWriter {
    fn new() -> TarWriter {
        TarWriter {
            builder: tar::Builder::new(Vec::new()),
        }
    }

    fn header(kind: tar::EntryType, mode: u32, mtime: u64, size: u64) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_mtime(mtime);
        header.set_uid(0);
        header.set_gid(0);
        header.set_size(size);
        header
    }

    fn dir(&mut self, path: &str, mode: u32) -> Result<()> {
        let mut header = Self::header(tar::EntryType::Directory, mode, MTIME, 0);
        // With the trailing `/` docker and buildkit write.
        self.builder
            .append_data(&mut header, format!("{path}/"), std::io::empty())
            .map_err(io_error("add to a layer", path))
    }

    fn file(&mut self, path: &str, mode: u32, mtime: u64, content: &[u8]) -> Result<()> {
        let mut header = Self::header(tar::EntryType::Regular, mode, mtime, content.len() as u64);
        self.builder
            .append_data(&mut header, path, content)
            .map_err(io_error("add to a layer", path))
    }

    fn link(&mut self, kind: tar::EntryType, path: &str, target: &str) -> Result<()> {
        let mut header = Self::header(kind, 0o777, MTIME, 0);
        self.builder
            .append_link(&mut header, path, target)
            .map_err(io_error("add to a layer", path))
    }

    fn finish(self) -> Result<Vec<u8>> {
        self.builder
            .into_inner()
            .map_err(io_error("finish", "a layer"))
    }
}

fn busybox_layer() -> Result<Vec<u8>> {
    let busybox = fs::read("/bin/busybox").map_err(|source| FixtureError::Io {
        what: "read (install busybox-static)",
        target: "/bin/busybox".to_owned(),
        source,
    })?;
    let mut tar = TarWriter::new();
    for (dir, mode) in [
        ("bin", 0o755),
        ("etc", 0o755),
        ("root", 0o700),
        ("tmp", 0o1777),
    ] {
        tar.dir(dir, mode)?;
    }
    tar.file("bin/busybox", 0o755, MTIME, &busybox)?;
    for applet in APPLETS {
        tar.link(tar::EntryType::Symlink, &format!("bin/{applet}"), "busybox")?;
    }
    tar.file(
        "etc/passwd",
        0o644,
        MTIME,
        b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )?;
    tar.file("etc/group", 0o644, MTIME, b"root:x:0:\nnogroup:x:65534:\n")?;
    tar.finish()
}

fn files_layer() -> Result<Vec<u8>> {
    let mut tar = TarWriter::new();
    tar.dir("data", 0o755)?;
    tar.file(
        "data/hello.txt",
        0o644,
        1_600_000_000,
        b"hello from layer 2\n",
    )?;
    tar.file(
        "data/script.sh",
        0o750,
        1_500_000_000,
        b"#!/bin/sh\necho script\n",
    )?;
    tar.file("data/secret", 0o600, MTIME, b"only root reads this\n")?;
    tar.file("data/readonly", 0o444, MTIME, b"read only\n")?;
    tar.file("data/setuid", 0o4755, MTIME, b"not really a program\n")?;
    tar.link(
        tar::EntryType::Link,
        "data/hello-hardlink",
        "data/hello.txt",
    )?;
    tar.link(tar::EntryType::Symlink, "data/hello-symlink", "hello.txt")?;
    tar.link(tar::EntryType::Symlink, "etc/motd", "../data/hello.txt")?;
    tar.dir("data/tree", 0o755)?;
    tar.dir("data/tree/nested", 0o700)?;
    tar.file("data/tree/a", 0o644, MTIME, b"a\n")?;
    tar.file("data/tree/nested/b", 0o640, MTIME, b"b\n")?;
    tar.file("data/to-delete", 0o644, MTIME, b"layer 3 deletes this\n")?;
    tar.dir("opaque", 0o755)?;
    tar.file("opaque/old-1", 0o644, MTIME, b"hidden by layer 3\n")?;
    tar.file("opaque/old-2", 0o644, MTIME, b"hidden by layer 3\n")?;
    tar.finish()
}

fn whiteout_layer() -> Result<Vec<u8>> {
    let mut tar = TarWriter::new();
    tar.dir("data", 0o755)?;
    tar.file("data/.wh.to-delete", 0o644, MTIME, b"")?;
    tar.dir("opaque", 0o755)?;
    tar.file("opaque/.wh..wh..opq", 0o644, MTIME, b"")?;
    tar.file(
        "opaque/new",
        0o644,
        MTIME,
        b"the only file left in opaque/\n",
    )?;
    tar.finish()
}

/// xorshift64*: reproducible bytes without a dependency.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn fill(&mut self, out: &mut Vec<u8>, len: usize) {
        let end = out.len() + len;
        while out.len() < end {
            out.extend_from_slice(&self.next().to_le_bytes());
        }
        out.truncate(end);
    }
}

/// About `megabytes` MB: a third many small files, two thirds big files that are half random (as
/// compressed assets are) and half repetitive text (as logs and sources are).
fn big_layer(index: usize, megabytes: usize) -> Result<Vec<u8>> {
    const LINE: &[u8] =
        b"2024-01-01T00:00:00Z level=info msg=\"request served\" path=/api/v1/items status=200\n";
    let total = megabytes << 20;
    let mut random = Random(0x9e37_79b9_7f4a_7c15 ^ (index as u64 + 1));
    let mut tar = TarWriter::new();
    let root = format!("big-{index}");
    tar.dir(&root, 0o755)?;
    let mut written = 0;
    let mut file = 0;
    while written < total / 3 {
        let len = 512 + (random.next() % 8192) as usize;
        let mut content = Vec::with_capacity(len);
        if file % 2 == 0 {
            random.fill(&mut content, len);
        } else {
            content.extend(LINE.iter().cycle().take(len));
        }
        if file % 100 == 0 {
            tar.dir(&format!("{root}/d{}", file / 100), 0o755)?;
        }
        tar.file(
            &format!("{root}/d{}/f{file}", file / 100),
            0o644,
            MTIME,
            &content,
        )?;
        written += len;
        file += 1;
    }
    let mut big = 0;
    while written < total {
        let len = (total - written).min(8 << 20);
        let mut content = Vec::with_capacity(len);
        random.fill(&mut content, len / 2);
        content.extend(LINE.iter().cycle().take(len - len / 2));
        tar.file(&format!("{root}/big-{big}.bin"), 0o644, MTIME, &content)?;
        written += len;
        big += 1;
    }
    tar.finish()
}
