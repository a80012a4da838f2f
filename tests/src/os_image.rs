//! The host image of `os/` as the tests see it: the workspace's scripts, the output directory of
//! `os/build.sh` (built with the binaries under test when missing), the root tree every test node
//! boots, and a panicking runner for the commands around it. Shared by the nodes, the qemu boot
//! test and the `vagrant up` test.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The repository's root (the tests crate's parent).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_owned()
}

/// Where `os/build.sh` writes the host image: `FLOTILLA_OS_OUT`, else the workspace's `os/out`.
pub fn os_out() -> PathBuf {
    std::env::var_os("FLOTILLA_OS_OUT").map_or_else(|| workspace().join("os/out"), PathBuf::from)
}

/// The host image's root filesystem tree (`rootfs/` of [`os_out`]), which every test node boots.
///
/// # Errors
/// [`HarnessError::OsRootfsMissing`] when the image was not built (`tests/test.sh` builds it).
pub fn os_rootfs() -> crate::Result<PathBuf> {
    let rootfs = os_out().join("rootfs");
    if rootfs.join("usr/lib/systemd/systemd").is_file() {
        Ok(rootfs)
    } else {
        Err(crate::HarnessError::OsRootfsMissing { rootfs })
    }
}

/// Runs `command` to success and returns its stdout; panics with its status and stderr.
#[track_caller]
pub fn run(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?}: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The output directory of `os/build.sh` ([`os_out`]) holding `disk.qcow2` and
/// `flotilla.box`; a missing image is built first, with the binaries under test. tests/test.sh
/// builds it before the tests run.
pub fn output() -> PathBuf {
    let out = os_out();
    if !out.join("disk.qcow2").exists() || !out.join("flotilla.box").exists() {
        let bins = crate::built_binary("flotillad")
            .parent()
            .expect("a binary has a directory")
            .to_owned();
        run(Command::new(workspace().join("os/build.sh"))
            .env("FLOTILLA_BIN_DIR", bins)
            .env("FLOTILLA_OS_OUT", &out)
            .stdout(Stdio::inherit()));
    }
    out
}
