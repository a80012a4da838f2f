//! Layer unpacking against hostile and ordinary tarballs built in the tests: every escape trick
//! must fail with its exact error and leave everything outside the target untouched; a normal
//! layer must come out with every property; whiteouts must work, down to a real overlayfs mount.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

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
    assert_eq!(sandbox.snapshot(), before, "something outside the target changed");
    err.to_string()
}

#[test]
fn dot_dot_entry_is_refused() {
    let layer = Layer::new().file("../x", b"evil").tar();
    assert_eq!(refused(layer, &OVERLAY), r#"entry "../x" escapes the target directory"#);
}

#[test]
fn dot_dot_inside_entry_is_refused() {
    let layer = Layer::new().dir("a/").file("a/../../x", b"evil").tar();
    assert_eq!(refused(layer, &OVERLAY), r#"entry "a/../../x" escapes the target directory"#);
}

#[test]
fn hard_link_named_dot_dot_is_refused() {
    let layer = Layer::new().file("f", b"x").hardlink("../h", "f").tar();
    assert_eq!(refused(layer, &OVERLAY), r#"entry "../h" escapes the target directory"#);
}

#[test]
fn absolute_entry_lands_inside_like_docker() {
    let sandbox = Sandbox::new();
    let before = sandbox.snapshot();
    let layer = Layer::new().file("/etc/flotilla-unpack-test", b"inside").tar();
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
    assert_eq!(refused(layer, &OVERLAY), r#"hard link "h" points outside the target: "s""#);
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
    assert!(fs::symlink_metadata(sandbox.target.join("d")).unwrap().is_dir());
    assert_eq!(fs::read(sandbox.target.join("d/sentinel")).unwrap(), b"mine too");
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
