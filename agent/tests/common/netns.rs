//! A test's own network namespace, alive while its [`Netns`] is: made by a thread that
//! unshares, entered by the threads [`Netns::run`] starts, so the test's own threads never
//! change namespace.

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::Command;
use std::thread;

use nix::sched::{setns, unshare, CloneFlags};

/// A network namespace, alive while this is.
pub struct Netns {
    file: OwnedFd,
}

impl Netns {
    /// A new namespace (only `lo`, down).
    pub fn new() -> Self {
        let file = thread::spawn(|| {
            unshare(CloneFlags::CLONE_NEWNET).expect("unshare a network namespace (needs root)");
            OwnedFd::from(File::open("/proc/thread-self/ns/net").unwrap())
        })
        .join()
        .unwrap();
        Self { file }
    }

    /// The namespace's descriptor.
    #[allow(dead_code)] // not every test crate that takes this module asks for it
    pub fn file(&self) -> &OwnedFd {
        &self.file
    }

    /// A path that opens this namespace.
    #[allow(dead_code)] // not every test crate that takes this module asks for it
    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.file.as_raw_fd()))
    }

    /// Runs `work` on a thread in this namespace.
    pub fn run<T: Send>(&self, work: impl FnOnce() -> T + Send) -> T {
        thread::scope(|scope| {
            let thread = scope.spawn(|| {
                setns(&self.file, CloneFlags::CLONE_NEWNET).unwrap();
                work()
            });
            thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// Runs a command here; panics with its output if it fails.
    pub fn command(&self, program: &str, args: &[&str]) -> String {
        let output = self.run(|| Command::new(program).args(args).output().unwrap());
        assert!(
            output.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }
}
