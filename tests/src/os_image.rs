//! The host image of `os/` as the tests that boot it see it: the workspace's scripts, the output
//! directory of `os/build.sh` (built with the binaries under test when missing) and a panicking
//! runner for the commands around it. Shared by the qemu boot test and the `vagrant up` test.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The repository's root (the tests crate's parent).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_owned()
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

/// The output directory of `os/build.sh` ([`crate::os_out`]) holding `disk.qcow2` and
/// `flotilla.box`; a missing image is built first, with the binaries under test. tests/test.sh
/// builds it before the tests run.
pub fn output() -> PathBuf {
    let out = crate::os_out();
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
