//! flotilla's own container runtime, the process side: starts a container's init from an OCI
//! runtime [`Spec`] ([`spawn`]) and runs more processes inside a running container ([`exec()`]).
//!
//! The container's init is cloned straight into its new namespaces ([`process`]), so every
//! spawn gets a fresh pid namespace and the caller stays the parent that reaps it. The child
//! runs [`init`]'s steps in runc's order: cgroups then [`namespaces`], hostname, the root file
//! system ([`rootfs`]) and the spec's [`mounts`] (every destination resolved inside the root by
//! [`resolve`]), [`devices`], pivot_root, a [`terminal`] if asked for, sysctls, read-only and
//! masked paths; it ends in the tail every container process shares ([`mod@exec`]: [`rlimits`],
//! user, [`capabilities`], no_new_privs, cwd, execve). [`enter`] is `docker exec`. A step that
//! fails is reported over a close-on-exec sync pipe as the step's description and its errno
//! ([`StepError`]); a pipe closed by execve with nothing written means the container runs.
//!
//! Out of scope: seccomp (no filter is loaded, whatever `linux.seccomp` says), user namespaces,
//! AppArmor/SELinux labels, hooks. Creating and configuring cgroups is the cgroups module's job:
//! this one only joins the directories it is given ([`CgroupMembership`]).

pub mod capabilities;
pub mod cgroups;
pub mod devices;
pub mod enter;
pub mod exec;
pub mod init;
pub mod mounts;
pub mod namespaces;
pub mod process;
pub mod resolve;
pub mod rlimits;
pub mod rootfs;
pub mod terminal;

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::unistd::Pid;
use oci_spec::runtime::Spec;

/// How the container's root file system is made, inside the container's new mount namespace
/// (so nothing leaks into the host's mount table, and a crash leaves no mounts behind).
#[derive(Debug, Clone, Copy)]
pub enum RootFs<'a> {
    /// `spec.root.path` is already a populated directory (bind-mounted onto itself).
    Directory,
    /// Mount overlayfs at `spec.root.path`: lower dirs top-most first, upper and work dirs.
    Overlay {
        lower: &'a [PathBuf],
        upper: &'a Path,
        work: &'a Path,
    },
}

pub use cgroups::CgroupMembership;

/// The container process's standard input, output and error.
#[derive(Debug)]
pub struct Stdio {
    pub stdin: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

/// Everything [`spawn`] needs to start a container.
#[derive(Debug)]
pub struct Launch<'a> {
    pub spec: &'a Spec,
    pub rootfs: RootFs<'a>,
    pub cgroups: &'a CgroupMembership,
    /// Replaced, once inside the container, by the terminal when the spec asks for one.
    pub stdio: Stdio,
}

/// A started process: its host PID and, when `process.terminal` was set, the terminal's
/// controlling side (the caller's to read and write).
#[derive(Debug)]
pub struct Started {
    pub pid: Pid,
    pub terminal: Option<OwnedFd>,
}

/// A setup step of the container's process that failed, with the errno it failed with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{step}: {}", errno_text(*errno))]
pub struct StepError {
    /// What was being done, naming the thing: `mount "proc" on "/proc"`, `exec "/nope"`.
    pub step: String,
    pub errno: Errno,
}

/// Why a container process could not be started.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("namespace {0} is not supported")]
    UnsupportedNamespace(String),
    #[error("the spec has no {0}")]
    MissingField(&'static str),
    #[error("process.terminal is set: use spawn_with_terminal or exec_with_terminal")]
    TerminalNotTaken,
    #[error("receive the container's terminal: {}", errno_text(*.0))]
    Terminal(Errno),
    #[error("open namespace {path:?}: {}", errno_text(*errno))]
    Namespace { path: PathBuf, errno: Errno },
    #[error("create children in the container's pid namespace: {}", errno_text(*.0))]
    JoinPidNamespace(Errno),
    #[error("create children in the caller's own pid namespace again: {}", errno_text(*.0))]
    LeavePidNamespace(Errno),
    #[error("create the sync pipe: {}", errno_text(*.0))]
    Pipe(Errno),
    #[error("clone the container process: {}", errno_text(*.0))]
    Clone(Errno),
    #[error("read the sync pipe: {}", errno_text(*.0))]
    Sync(Errno),
    #[error(transparent)]
    Step(#[from] StepError),
}

/// A `Result` whose error is [`RuntimeError`].
pub type Result<T> = std::result::Result<T, RuntimeError>;

/// The errno's description in lower case, as error messages are written here.
pub fn errno_text(errno: Errno) -> String {
    let text = errno.desc();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The errno of a failed I/O call (`EIO` if it carries none).
pub fn io_errno(error: &std::io::Error) -> Errno {
    Errno::from_raw(error.raw_os_error().unwrap_or(libc::EIO))
}

/// The errno of a failed `rustix` call, as `nix` spells it.
pub fn rustix_errno(errno: rustix::io::Errno) -> Errno {
    Errno::from_raw(errno.raw_os_error())
}

/// Names a failing step: `result.step(|| format!("mount {source:?} on {dest:?}"))`.
pub trait Step<T> {
    fn step(self, describe: impl FnOnce() -> String) -> std::result::Result<T, StepError>;
}

impl<T> Step<T> for nix::Result<T> {
    fn step(self, describe: impl FnOnce() -> String) -> std::result::Result<T, StepError> {
        self.map_err(|errno| StepError {
            step: describe(),
            errno,
        })
    }
}

impl<T> Step<T> for rustix::io::Result<T> {
    fn step(self, describe: impl FnOnce() -> String) -> std::result::Result<T, StepError> {
        self.map_err(|errno| StepError {
            step: describe(),
            errno: rustix_errno(errno),
        })
    }
}

impl<T> Step<T> for std::io::Result<T> {
    fn step(self, describe: impl FnOnce() -> String) -> std::result::Result<T, StepError> {
        self.map_err(|error| StepError {
            step: describe(),
            errno: io_errno(&error),
        })
    }
}

/// Starts the container's init. Returns once the child passed every setup step and execve
/// succeeded, with the host PID of the container's init; the caller reaps it with waitpid.
/// If any step fails, the child is reaped and the error names the step, e.g.
/// `mount "proc" on "/proc": operation not permitted` or `exec "/nope": no such file or
/// directory`. A spec with `process.terminal` needs [`spawn_with_terminal`].
pub fn spawn(launch: Launch<'_>) -> Result<Pid> {
    if wants_terminal(launch.spec.process().as_ref()) {
        return Err(RuntimeError::TerminalNotTaken);
    }
    Ok(init::start(launch)?.pid)
}

/// [`spawn`], also allocating the container's terminal when `process.terminal` is set.
pub fn spawn_with_terminal(launch: Launch<'_>) -> Result<Started> {
    init::start(launch)
}

/// Runs `process` inside the running container whose init is `init` (docker exec): joins its
/// namespaces and cgroups, applies user, capabilities, no_new_privs, env, cwd and rlimits, then
/// execs. Returns the new process's host PID; the caller is its parent and reaps it.
pub fn exec(
    init: Pid,
    process: &oci_spec::runtime::Process,
    cgroups: &CgroupMembership,
    stdio: Stdio,
) -> Result<Pid> {
    if wants_terminal(Some(process)) {
        return Err(RuntimeError::TerminalNotTaken);
    }
    Ok(enter::start(init, process, cgroups, stdio)?.pid)
}

/// [`exec()`], also allocating a terminal when `process.terminal` is set (`exec -it`).
pub fn exec_with_terminal(
    init: Pid,
    process: &oci_spec::runtime::Process,
    cgroups: &CgroupMembership,
    stdio: Stdio,
) -> Result<Started> {
    enter::start(init, process, cgroups, stdio)
}

fn wants_terminal(process: Option<&oci_spec::runtime::Process>) -> bool {
    process.and_then(|p| p.terminal()).unwrap_or(false)
}
