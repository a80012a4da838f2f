//! Layer unpacking against hostile and ordinary tarballs built in the tests: every escape trick
//! must fail with its exact error and leave everything outside the target untouched; a normal
//! layer must come out with every property; whiteouts must work, down to a real overlayfs mount.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use image::digest::Digest;
use image::layer::{unpack, UnpackError, UnpackOptions, UnpackStats, WhiteoutMode};
use tar::{EntryType, Header};
use tempfile::TempDir;

const OVERLAY: UnpackOptions = UnpackOptions {
    whiteouts: WhiteoutMode::Overlay,
};
const APPLY: UnpackOptions = UnpackOptions {
    whiteouts: WhiteoutMode::Apply,
};

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// A tarball under construction; raw headers let names the `tar` builder refuses through.
struct Layer(tar::Builder<Vec<u8>>);

impl Layer {
    fn new() -> Self {
        Layer(tar::Builder::new(Vec::new()))
    }

    /// An entry with the name and link name written byte for byte into the header.
    fn raw(mut self, kind: EntryType, name: &str, link: &str, mode: u32, data: &[u8]) -> Self {
        let mut header = Header::new_gnu();
        let old = header.as_old_mut();
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        old.linkname[..link.len()].copy_from_slice(link.as_bytes());
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_size(data.len() as u64);
        header.set_mtime(1_600_000_000);
        header.set_uid(0);
        header.set_gid(0);
        header.set_cksum();
        self.0.append(&header, data).unwrap();
        self
    }

    fn file(self, name: &str, data: &[u8]) -> Self {
        self.raw(EntryType::Regular, name, "", 0o644, data)
    }

    fn dir(self, name: &str) -> Self {
        self.raw(EntryType::Directory, name, "", 0o755, b"")
    }

    fn symlink(self, name: &str, target: &str) -> Self {
        self.raw(EntryType::Symlink, name, target, 0o777, b"")
    }

    fn hardlink(self, name: &str, target: &str) -> Self {
        self.raw(EntryType::Link, name, target, 0o644, b"")
    }

    fn tar(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }
}

/// `tmp/box/target` to unpack into, beside `tmp/box/outside/sentinel` that must never change.
struct Sandbox {
    tmp: TempDir,
    target: PathBuf,
}

impl Sandbox {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("box/target");
        fs::create_dir_all(&target).unwrap();
        fs::create_dir_all(tmp.path().join("box/outside/sub")).unwrap();
        fs::write(tmp.path().join("box/outside/sentinel"), "untouched").unwrap();
        Sandbox { tmp, target }
    }

    fn outside(&self) -> PathBuf {
        self.tmp.path().join("box/outside")
    }

    /// Everything in the sandbox except the target's contents, with the details that a write
    /// would change.
    fn snapshot(&self) -> BTreeMap<PathBuf, String> {
        let mut out = BTreeMap::new();
        self.walk(self.tmp.path(), &mut out);
        out
    }

    fn walk(&self, path: &Path, out: &mut BTreeMap<PathBuf, String>) {
        if path == self.target {
            return;
        }
        let meta = fs::symlink_metadata(path).unwrap();
        let mut desc = format!(
            "{:o} {} {} {}.{} {}",
            meta.mode(),
            meta.len(),
            meta.nlink(),
            meta.mtime(),
            meta.mtime_nsec(),
            meta.ctime_nsec()
        );
        if meta.file_type().is_symlink() {
            desc += &format!(" -> {:?}", fs::read_link(path).unwrap());
        } else if meta.is_file() {
            desc += &format!(" {:?}", fs::read(path).unwrap());
        }
        out.insert(path.to_path_buf(), desc);
        if meta.is_dir() {
            for child in fs::read_dir(path).unwrap() {
                self.walk(&child.unwrap().path(), out);
            }
        }
    }
}

/// Unpacks `layer` into a fresh sandbox, asserts nothing outside the target changed, and
/// returns the error message.
fn refused(layer: Vec<u8>, options: &UnpackOptions) -> String {
    let sandbox = Sandbox::new();
    let before = sandbox.snapshot();
    let err = unpack(layer.as_slice(), &sandbox.target, options).unwrap_err();
    assert_eq!(
        sandbox.snapshot(),
        before,
        "something outside the target changed"
    );
    err.to_string()
}

#[test]
fn dot_dot_entry_is_refused() {
    let layer = Layer::new().file("../x", b"evil").tar();
    assert_eq!(
        refused(layer, &OVERLAY),
        r#"entry "../x" escapes the target directory"#
    );
}

#[test]
fn dot_dot_inside_entry_is_refused() {
    let layer = Layer::new().dir("a/").file("a/../../x", b"evil").tar();
    assert_eq!(
        refused(layer, &OVERLAY),
        r#"entry "a/../../x" escapes the target directory"#
    );
}

#[test]
fn hard_link_named_dot_dot_is_refused() {
    let layer = Layer::new().file("f", b"x").hardlink("../h", "f").tar();
    assert_eq!(
        refused(layer, &OVERLAY),
        r#"entry "../h" escapes the target directory"#
    );
}

#[test]
fn absolute_entry_lands_inside_like_docker() {
    let sandbox = Sandbox::new();
    let before = sandbox.snapshot();
    let layer = Layer::new()
        .file("/etc/flotilla-unpack-test", b"inside")
        .tar();
    unpack(layer.as_slice(), &sandbox.target, &OVERLAY).unwrap();
    assert_eq!(sandbox.snapshot(), before);
    assert!(!Path::new("/etc/flotilla-unpack-test").exists());
    let written = fs::read(sandbox.target.join("etc/flotilla-unpack-test")).unwrap();
    assert_eq!(written, b"inside");
}

#[test]
fn write_through_absolute_symlink_is_refused() {
    let sandbox_dir = Sandbox::new();
    // Points at the sandbox's own sentinel directory, absolute.
    let outside = sandbox_dir.outside();
    let layer = Layer::new()
        .symlink("link", outside.to_str().unwrap())
        .file("link/sentinel", b"evil")
        .tar();
    assert_eq!(
        refused(layer, &OVERLAY),
        r#"entry "link/sentinel" goes through symlink "link" that leaves the target"#
    );
}

#[test]
fn write_through_symlink_to_etc_is_refused() {
    let layer = Layer::new()
        .symlink("link", "/etc")
        .file("link/flotilla-unpack-escape-test", b"evil")
        .tar();
    assert_eq!(
        refused(layer, &OVERLAY),
        r#"entry "link/flotilla-unpack-escape-test" goes through symlink "link" that leaves the target"#
    );
    assert!(!Path::new("/etc/flotilla-unpack-escape-test").exists());
}

#[test]
fn write_through_relative_symlink_is_refused() {
    // target is tmp/box/target: `../..` is tmp.
    let layer = Layer::new()
        .symlink("link", "../..")
        .file("link/box/outside/evil", b"evil")
        .tar();
    assert_eq!(
        refused(layer, &OVERLAY),
        r#"entry "link/box/outside/evil" goes through symlink "link" that leaves the target"#
    );
}

#[test]
fn nested_symlink_is_named() {
    let layer = Layer::new()
        .dir("a/")
        .symlink("a/l", "../../outside")
        .dir("a/l/sub/new/")
        .tar();
    assert_eq!(
        refused(layer, &OVERLAY),
        r#"entry "a/l/sub/new/" goes through symlink "a/l" that leaves the target"#
    );
}

#[test]
fn symlink_chain_that_leaves_is_refused() {
    let layer = Layer::new()
        .symlink("up", "..")
        .symlink("a", "up/..")
        .file("a/outside/evil", b"evil")
        .tar();
    assert_eq!(
        refused(layer, &OVERLAY),
        r#"entry "a/outside/evil" goes through symlink "a" that leaves the target"#
    );
}

#[test]
fn hard_link_out_by_dot_dot_is_refused() {
    let layer = Layer::new().hardlink("h", "../outside/sentinel").tar();
    assert_eq!(
        refused(layer, &OVERLAY),
        r#"hard link "h" points outside the target: "../outside/sentinel""#
    );
}

#[test]
fn hard_link_to_etc_shadow_is_refused() {
    let layer = Layer::new().hardlink("h", "../../etc/shadow").tar();
    assert_eq!(
        refused(layer, &OVERLAY),
        r#"hard link "h" points outside the target: "../../etc/shadow""#
    );
}

#[test]
fn hard_link_through_escaping_symlink_is_refused() {
    let layer = Layer::new()
        .symlink("link", "../outside")
        .hardlink("h", "link/sentinel")
        .tar();
    assert_eq!(
        refused(layer, &OVERLAY),
        r#"hard link "h" points outside the target: "link/sentinel""#
    );
}

#[test]
fn hard_link_to_escaping_symlink_is_refused() {
    let layer = Layer::new()
        .symlink("s", "../outside/sentinel")
        .hardlink("h", "s")
        .tar();
    assert_eq!(
        refused(layer, &OVERLAY),
        r#"hard link "h" points outside the target: "s""#
    );
}

#[test]
fn absolute_hard_link_stays_inside() {
    // Docker joins the link name onto the target: `/etc/shadow` means target/etc/shadow.
    let layer = Layer::new().hardlink("h", "/etc/shadow").tar();
    let message = refused(layer, &OVERLAY);
    assert!(message.starts_with(r#"io error at "h": "#), "{message}");
}

#[test]
fn whiteout_through_escaping_symlink_is_refused() {
    let layer = Layer::new()
        .symlink("link", "../outside")
        .file("link/.wh.sentinel", b"")
        .tar();
    let want = r#"entry "link/.wh.sentinel" goes through symlink "link" that leaves the target"#;
    assert_eq!(refused(layer.clone(), &APPLY), want);
    if is_root() {
        assert_eq!(refused(layer, &OVERLAY), want);
    }
}

#[test]
fn opaque_through_escaping_symlink_is_refused() {
    let layer = Layer::new()
        .symlink("link", "../outside")
        .file("link/.wh..wh..opq", b"")
        .tar();
    assert_eq!(
        refused(layer, &APPLY),
        r#"entry "link/.wh..wh..opq" goes through symlink "link" that leaves the target"#
    );
}

#[test]
fn whiteout_of_parent_is_refused() {
    for name in ["a/.wh...", ".wh...", "a/.wh..", ".wh."] {
        let layer = Layer::new().dir("a/").file(name, b"").tar();
        assert_eq!(
            refused(layer, &APPLY),
            format!("whiteout {name:?} does not name a file in its directory")
        );
    }
}

#[test]
fn entries_replace_symlinks_instead_of_following_them() {
    let sandbox = Sandbox::new();
    let before = sandbox.snapshot();
    let outside = sandbox.outside();
    let layer = Layer::new()
        .symlink("f", outside.join("sentinel").to_str().unwrap())
        .file("f", b"mine")
        .symlink("d", outside.to_str().unwrap())
        .dir("d/")
        .file("d/sentinel", b"mine too")
        .symlink("h", "../outside/sentinel")
        .hardlink("h", "f")
        .tar();
    unpack(layer.as_slice(), &sandbox.target, &OVERLAY).unwrap();
    assert_eq!(sandbox.snapshot(), before);
    assert_eq!(fs::read(sandbox.target.join("f")).unwrap(), b"mine");
    assert!(fs::symlink_metadata(sandbox.target.join("d"))
        .unwrap()
        .is_dir());
    assert_eq!(
        fs::read(sandbox.target.join("d/sentinel")).unwrap(),
        b"mine too"
    );
    assert_eq!(fs::read(sandbox.target.join("h")).unwrap(), b"mine");
}

#[test]
fn symlinks_may_point_anywhere() {
    let sandbox = Sandbox::new();
    let before = sandbox.snapshot();
    let layer = Layer::new()
        .symlink("abs", "/etc/shadow")
        .symlink("rel", "../../../../x")
        .tar();
    unpack(layer.as_slice(), &sandbox.target, &OVERLAY).unwrap();
    assert_eq!(sandbox.snapshot(), before);
    let link = |n: &str| fs::read_link(sandbox.target.join(n)).unwrap();
    assert_eq!(link("abs"), Path::new("/etc/shadow"));
    assert_eq!(link("rel"), Path::new("../../../../x"));
}

/// An ordinary layer exercising every entry type and property.
fn normal_layer() -> Vec<u8> {
    let mut layer = Layer::new()
        .raw(EntryType::Directory, "./", "", 0o755, b"")
        .raw(EntryType::Directory, "etc/", "", 0o750, b"");
    let header = |kind: EntryType, name: &str, link: &str, mode: u32, uid: u64, mtime: u64| {
        let mut h = Header::new_gnu();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(uid);
        h.set_gid(uid + 1);
        h.set_mtime(mtime);
        h
    };
    let mut passwd = header(
        EntryType::Regular,
        "etc/passwd",
        "",
        0o644,
        1000,
        1_500_000_001,
    );
    passwd.set_size(5);
    passwd.set_cksum();
    layer
        .0
        .append_pax_extensions([("SCHILY.xattr.user.flotilla", b"hello".as_slice())])
        .unwrap();
    layer.0.append(&passwd, b"root\n".as_slice()).unwrap();
    for (name, mode) in [("usr/bin/su", 0o4755), ("usr/bin/wall", 0o2755)] {
        let mut h = header(EntryType::Regular, name, "", mode, 0, 1_500_000_002);
        h.set_size(3);
        h.set_cksum();
        layer.0.append(&h, b"elf".as_slice()).unwrap();
    }
    let mut rest = vec![
        header(EntryType::Directory, "tmp/", "", 0o1777, 0, 1_500_000_003),
        header(
            EntryType::Symlink,
            "etc/localtime",
            "/usr/share/zoneinfo/UTC",
            0o777,
            0,
            1_500_000_004,
        ),
        header(
            EntryType::Link,
            "etc/passwd.hard",
            "etc/passwd",
            0o644,
            0,
            1_500_000_005,
        ),
        header(EntryType::Fifo, "run/fifo", "", 0o620, 0, 1_500_000_006),
    ];
    let mut null = header(EntryType::Char, "dev/null", "", 0o666, 0, 1_500_000_007);
    null.set_device_major(1).unwrap();
    null.set_device_minor(3).unwrap();
    rest.push(null);
    rest.push(header(
        EntryType::Directory,
        "etc/",
        "",
        0o755,
        0,
        1_500_000_000,
    ));
    for mut h in rest {
        h.set_size(0);
        h.set_cksum();
        layer.0.append(&h, b"".as_slice()).unwrap();
    }
    layer.tar()
}

fn check_normal(target: &Path, stats: UnpackStats) {
    let root = is_root();
    let meta = |p: &str| fs::symlink_metadata(target.join(p)).unwrap();
    assert_eq!(
        stats,
        UnpackStats {
            // Whatever the compression, the diff ID is the digest of the plain tar stream.
            diff_id: Digest::sha256_of(&normal_layer()),
            entries: 11,
            bytes: 11,
            skipped_devices: u64::from(!root),
            xattrs_unsupported: 0,
        }
    );

    let passwd = meta("etc/passwd");
    assert_eq!(fs::read(target.join("etc/passwd")).unwrap(), b"root\n");
    assert_eq!(passwd.mode() & 0o7777, 0o644);
    assert_eq!(passwd.mtime(), 1_500_000_001);
    if root {
        assert_eq!((passwd.uid(), passwd.gid()), (1000, 1001));
    }
    let mut value = [0u8; 16];
    let n = rustix::fs::getxattr(target.join("etc/passwd"), "user.flotilla", &mut value).unwrap();
    assert_eq!(&value[..n], b"hello");

    assert_eq!(meta("usr/bin/su").mode() & 0o7777, 0o4755);
    assert_eq!(meta("usr/bin/wall").mode() & 0o7777, 0o2755);
    assert_eq!(
        meta("usr").mode() & 0o7777,
        0o755,
        "implicit parents are 0755"
    );
    assert_eq!(meta("tmp").mode() & 0o7777, 0o1777);
    assert_eq!(meta("tmp").mtime(), 1_500_000_003);

    let localtime = meta("etc/localtime");
    assert!(localtime.file_type().is_symlink());
    assert_eq!(
        fs::read_link(target.join("etc/localtime")).unwrap(),
        Path::new("/usr/share/zoneinfo/UTC")
    );
    assert_eq!(localtime.mtime(), 1_500_000_004);

    let hard = meta("etc/passwd.hard");
    assert_eq!((hard.ino(), hard.nlink()), (passwd.ino(), 2));

    let fifo = meta("run/fifo");
    assert!(fifo.file_type().is_fifo());
    assert_eq!((fifo.mode() & 0o7777, fifo.mtime()), (0o620, 1_500_000_006));

    if root {
        let null = meta("dev/null");
        assert!(null.file_type().is_char_device());
        assert_eq!(null.rdev(), rustix::fs::makedev(1, 3));
        assert_eq!((null.mode() & 0o7777, null.mtime()), (0o666, 1_500_000_007));
    } else {
        assert!(!target.join("dev/null").exists());
    }

    // The second `etc/` entry wins, and its mtime survives the entries written into it.
    let etc = meta("etc");
    assert_eq!((etc.mode() & 0o7777, etc.mtime()), (0o755, 1_500_000_000));
    let top = fs::metadata(target).unwrap();
    assert_eq!((top.mode() & 0o7777, top.mtime()), (0o755, 1_600_000_000));
}

#[test]
fn normal_layer_keeps_every_property() {
    let sandbox = Sandbox::new();
    let stats = unpack(normal_layer().as_slice(), &sandbox.target, &OVERLAY).unwrap();
    check_normal(&sandbox.target, stats);
}

#[test]
fn gzip_layer() {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&normal_layer()).unwrap();
    let sandbox = Sandbox::new();
    let stats = unpack(gz.finish().unwrap().as_slice(), &sandbox.target, &OVERLAY).unwrap();
    check_normal(&sandbox.target, stats);
}

#[test]
fn zstd_layer() {
    let compressed = zstd::encode_all(normal_layer().as_slice(), 3).unwrap();
    let sandbox = Sandbox::new();
    let stats = unpack(compressed.as_slice(), &sandbox.target, &OVERLAY).unwrap();
    check_normal(&sandbox.target, stats);
}

#[test]
fn xz_and_garbage_are_errors() {
    let sandbox = Sandbox::new();
    let xz = b"\xfd7zXZ\0rest-of-stream";
    let err = unpack(xz.as_slice(), &sandbox.target, &OVERLAY).unwrap_err();
    assert_eq!(
        err.to_string(),
        "layer is compressed with xz, which is not supported (only gzip and zstd)"
    );
    let mut truncated = normal_layer();
    truncated.truncate(700);
    let err = unpack(truncated.as_slice(), &sandbox.target, &OVERLAY).unwrap_err();
    assert!(matches!(err, UnpackError::CorruptTar(_)), "{err}");
    assert!(err.to_string().starts_with("corrupt tar: "), "{err}");
    let gz_garbage = b"\x1f\x8b\x08\0garbage";
    let err = unpack(gz_garbage.as_slice(), &sandbox.target, &OVERLAY).unwrap_err();
    assert!(matches!(err, UnpackError::CorruptTar(_)), "{err}");
}

/// Lower layer: `a/{gone,keep}`, `b/{old,sub/x}`.
fn lower_layer() -> Vec<u8> {
    Layer::new()
        .file("a/gone", b"lower")
        .file("a/keep", b"lower")
        .file("b/old", b"lower")
        .file("b/sub/x", b"lower")
        .tar()
}

/// Upper layer: deletes `a/gone`, makes `b` opaque with only `b/new` and `b/made/deep` (marker
/// after the entries, to check entries of this layer and their implicit parents survive it in
/// `Apply` mode).
fn upper_layer() -> Vec<u8> {
    Layer::new()
        .file("a/.wh.gone", b"")
        .dir("b/")
        .file("b/new", b"upper")
        .file("b/made/deep", b"upper")
        .file("b/.wh..wh..opq", b"")
        .file("c/.wh..wh.plnk", b"")
        .tar()
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn whiteouts_applied_flatten_layers() {
    let sandbox = Sandbox::new();
    unpack(lower_layer().as_slice(), &sandbox.target, &APPLY).unwrap();
    unpack(upper_layer().as_slice(), &sandbox.target, &APPLY).unwrap();
    assert_eq!(names(&sandbox.target.join("a")), ["keep"]);
    assert_eq!(names(&sandbox.target.join("b")), ["made", "new"]);
    assert_eq!(fs::read(sandbox.target.join("b/new")).unwrap(), b"upper");
}

#[test]
fn whiteouts_become_overlay_whiteouts() {
    assert!(
        is_root(),
        "overlay whiteouts need root: run the tests as root (tests/test.sh)"
    );
    let sandbox = Sandbox::new();
    unpack(upper_layer().as_slice(), &sandbox.target, &OVERLAY).unwrap();
    let gone = fs::symlink_metadata(sandbox.target.join("a/gone")).unwrap();
    assert!(gone.file_type().is_char_device());
    assert_eq!(gone.rdev(), 0);
    let mut value = [0u8; 4];
    let n = rustix::fs::getxattr(
        sandbox.target.join("b"),
        "trusted.overlay.opaque",
        &mut value,
    )
    .unwrap();
    assert_eq!(&value[..n], b"y");
    assert_eq!(names(&sandbox.target.join("b")), ["made", "new"]);
}

#[test]
fn overlay_xattrs_in_the_tarball_are_dropped() {
    let mut layer = Layer::new();
    layer
        .0
        .append_pax_extensions([("SCHILY.xattr.trusted.overlay.opaque", b"y".as_slice())])
        .unwrap();
    let layer = layer.dir("d/").tar();
    let sandbox = Sandbox::new();
    unpack(layer.as_slice(), &sandbox.target, &OVERLAY).unwrap();
    let mut value = [0u8; 4];
    let got = rustix::fs::getxattr(
        sandbox.target.join("d"),
        "trusted.overlay.opaque",
        &mut value,
    );
    assert!(got.is_err(), "{got:?}");
}

#[test]
fn unpacked_layers_work_as_overlay_lower_dirs() {
    use nix::mount::{mount, umount, MsFlags};
    assert!(
        is_root(),
        "mounting overlayfs needs root: run the tests as root (tests/test.sh)"
    );
    let sandbox = Sandbox::new();
    let base = sandbox.tmp.path();
    let (lower, upper, merged) = (base.join("lower"), base.join("upper"), base.join("merged"));
    for dir in [&lower, &upper, &merged] {
        fs::create_dir(dir).unwrap();
    }
    unpack(lower_layer().as_slice(), &lower, &OVERLAY).unwrap();
    unpack(upper_layer().as_slice(), &upper, &OVERLAY).unwrap();
    let options = format!("lowerdir={}:{}", upper.display(), lower.display());
    mount(
        Some("overlay"),
        &merged,
        Some("overlay"),
        MsFlags::MS_RDONLY,
        Some(options.as_str()),
    )
    .unwrap();
    let seen = (names(&merged.join("a")), names(&merged.join("b")));
    let new = fs::read(merged.join("b/new"));
    umount(&merged).unwrap();
    assert_eq!(seen.0, ["keep"], "the whited-out file is gone");
    assert_eq!(
        seen.1,
        ["made", "new"],
        "the opaque directory hides the lower content"
    );
    assert_eq!(new.unwrap(), b"upper");
}

#[test]
fn xattrs_the_filesystem_refuses_are_counted() {
    // `user.*` xattrs are not allowed on symlinks: counted, not fatal.
    let mut layer = Layer::new();
    layer
        .0
        .append_pax_extensions([("SCHILY.xattr.user.flotilla", b"x".as_slice())])
        .unwrap();
    let layer = layer.symlink("link", "target").tar();
    let sandbox = Sandbox::new();
    let stats = unpack(layer.as_slice(), &sandbox.target, &OVERLAY).unwrap();
    assert_eq!(stats.xattrs_unsupported, 1);
    assert!(fs::symlink_metadata(sandbox.target.join("link"))
        .unwrap()
        .file_type()
        .is_symlink());
}

/// A one-file layer whose PAX records say `records`.
fn pax_layer(records: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    builder
        .append_pax_extensions(records.iter().copied())
        .unwrap();
    let mut header = Header::new_ustar();
    header.set_path("file").unwrap();
    header.set_entry_type(EntryType::Regular);
    header.set_mode(0o644);
    header.set_size(2);
    header.set_uid(1);
    header.set_gid(1);
    header.set_mtime(1);
    header.set_cksum();
    builder.append(&header, b"hi".as_slice()).unwrap();
    builder.into_inner().unwrap()
}

#[test]
fn pax_records_override_the_header_owner_and_mtime() {
    let sandbox = Sandbox::new();
    let layer = pax_layer(&[
        ("uid", b"3000000"),
        ("gid", b"3000001"),
        ("mtime", b"1700000000.75"),
    ]);
    unpack(layer.as_slice(), &sandbox.target, &OVERLAY).unwrap();
    let meta = fs::symlink_metadata(sandbox.target.join("file")).unwrap();
    assert_eq!(meta.mtime(), 1_700_000_000);
    if is_root() {
        assert_eq!((meta.uid(), meta.gid()), (3_000_000, 3_000_001));
    }
    let sandbox = Sandbox::new();
    unpack(
        pax_layer(&[("mtime", b"-86400")]).as_slice(),
        &sandbox.target,
        &OVERLAY,
    )
    .unwrap();
    let meta = fs::symlink_metadata(sandbox.target.join("file")).unwrap();
    assert_eq!(meta.mtime(), -86_400, "times before 1970 survive");
}

#[test]
fn a_malformed_pax_record_is_a_corrupt_layer() {
    let message = refused(pax_layer(&[("uid", b"lots")]), &OVERLAY);
    assert_eq!(
        message,
        "corrupt tar: PAX record uid=\"lots\" is not a number"
    );
}

/// One entry of a random layer: kind, path and link target drawn from names that collide,
/// climb, and point in and out of the target.
fn arbitrary_entry() -> impl proptest::strategy::Strategy<Value = (u8, String, String)> {
    use proptest::prelude::*;
    let part = prop_oneof![
        Just("a"),
        Just("b"),
        Just(".."),
        Just("."),
        Just(""),
        Just(".wh.a"),
        Just(".wh..wh..opq"),
        Just("link"),
    ];
    let path = proptest::collection::vec(part, 1..4).prop_map(|parts| parts.join("/"));
    let target = prop_oneof![
        Just("/etc".to_owned()),
        Just("../outside".to_owned()),
        Just("../../box/outside/sentinel".to_owned()),
        Just("a".to_owned()),
        Just("link/b".to_owned()),
        Just("/".to_owned()),
    ];
    (0u8..5, path, target)
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(
        std::env::var("FLOTILLA_FUZZ_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(300)
    ))]

    /// Whatever a layer holds, unpacking never panics and never changes anything outside the
    /// target, in either whiteout mode.
    #[test]
    fn arbitrary_layers_never_escape(entries in proptest::collection::vec(arbitrary_entry(), 1..12), apply: bool) {
        let mut layer = Layer::new();
        for (kind, path, target) in &entries {
            layer = match kind {
                0 => layer.file(path, b"data"),
                1 => layer.dir(path),
                2 => layer.symlink(path, target),
                3 => layer.hardlink(path, target),
                _ => layer.file(&format!("{path}/.wh.{target}"), b""),
            };
        }
        let sandbox = Sandbox::new();
        let before = sandbox.snapshot();
        let options = if apply { APPLY } else { OVERLAY };
        // Refusal is fine; escaping or panicking is not.
        let _ = unpack(layer.tar().as_slice(), &sandbox.target, &options);
        proptest::prop_assert_eq!(sandbox.snapshot(), before);
    }
}
