//! Creating a container process: clone(2) into new namespaces, with a close-on-exec sync pipe
//! on which the child reports the first setup step that failed.
//!
//! The protocol: the child runs its setup and ends in execve. If a step fails it writes the
//! errno (4 bytes, little-endian) and the step's description to the pipe and exits; a
//! successful execve closes the pipe with nothing written. The parent reads to end of file, so
//! it returns only once the container's program runs, or reaps the child and returns the step.
//!
//! clone (not unshare + fork) gives every spawn its own pid namespace without touching the
//! caller's: the caller is a long-lived supervisor that starts containers again and again.

#![allow(unsafe_code)]

use std::convert::Infallible;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sched::{setns, CloneFlags};
use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow};
use nix::sys::wait::waitpid;
use nix::unistd::{dup2, pipe2, Pid};

use super::{io_errno, Result, RuntimeError, StepError};

/// The child's stack: its setup runs on it until execve replaces the process image.
const STACK_SIZE: usize = 8 << 20;

/// Clones a child into the new namespaces `flags` and runs `setup` in it; returns its PID once
/// `setup` reached a successful execve. With `pid_namespace`, the child is created in that pid
/// namespace instead of the caller's (`docker exec`, or a spec's pid namespace by path).
pub fn start(
    flags: CloneFlags,
    pid_namespace: Option<BorrowedFd<'_>>,
    setup: impl FnOnce() -> std::result::Result<Infallible, StepError>,
) -> Result<Pid> {
    let (read, write) = pipe2(OFlag::O_CLOEXEC).map_err(RuntimeError::Pipe)?;
    let mut setup = Some(setup);
    let mut stack = vec![0u8; STACK_SIZE];
    let child = Box::new(|| {
        let Some(setup) = setup.take() else {
            return 1;
        };
        let Err(error) = setup();
        report(&write, &error);
        1
    });
    let pid = in_pid_namespace(pid_namespace, || {
        // SAFETY: the child gets a copy of the address space (no CLONE_VM) and its own stack
        // from `stack`; it runs `setup`, which ends in execve or returns an exit status.
        unsafe { nix::sched::clone(child, &mut stack, flags, Some(libc::SIGCHLD)) }
            .map_err(RuntimeError::Clone)
    })??;
    drop(write);
    let mut report = Vec::new();
    File::from(read)
        .read_to_end(&mut report)
        .map_err(|e| RuntimeError::Sync(io_errno(&e)))?;
    if report.is_empty() {
        return Ok(pid);
    }
    // The child failed before execve and exits at once: reap it so no zombie is left.
    let _ = waitpid(pid, None);
    Err(decode(&report).into())
}

/// Runs `clone` with the calling thread's children placed in `namespace`, then puts them back
/// in the thread's own pid namespace.
fn in_pid_namespace<T>(namespace: Option<BorrowedFd<'_>>, clone: impl FnOnce() -> T) -> Result<T> {
    let Some(namespace) = namespace else {
        return Ok(clone());
    };
    let own_path = "/proc/thread-self/ns/pid";
    let own = File::open(own_path).map_err(|e| RuntimeError::Namespace {
        path: own_path.into(),
        errno: io_errno(&e),
    })?;
    setns(namespace, CloneFlags::CLONE_NEWPID).map_err(RuntimeError::JoinPidNamespace)?;
    let result = clone();
    setns(own.as_fd(), CloneFlags::CLONE_NEWPID).map_err(RuntimeError::LeavePidNamespace)?;
    Ok(result)
}

/// The child's side: writes the failed step to the sync pipe.
fn report(pipe: &OwnedFd, error: &StepError) {
    let mut message = (error.errno as i32).to_le_bytes().to_vec();
    message.extend_from_slice(error.step.as_bytes());
    // Nothing more can be done if the parent is gone.
    let _ = nix::unistd::write(pipe, &message);
}

fn decode(report: &[u8]) -> StepError {
    let (errno, step) = report.split_at(report.len().min(4));
    let mut raw = [0u8; 4];
    raw[..errno.len()].copy_from_slice(errno);
    StepError {
        step: String::from_utf8_lossy(step).into_owned(),
        errno: Errno::from_raw(i32::from_le_bytes(raw)),
    }
}

/// In the child: makes the three descriptors its standard input, output and error.
pub fn install_stdio(
    stdin: BorrowedFd<'_>,
    stdout: BorrowedFd<'_>,
    stderr: BorrowedFd<'_>,
) -> std::result::Result<(), StepError> {
    for (fd, target) in [(stdin, 0), (stdout, 1), (stderr, 2)] {
        if fd.as_raw_fd() != target {
            dup2(fd.as_raw_fd(), target).map_err(|errno| StepError {
                step: format!("set up file descriptor {target}"),
                errno,
            })?;
        }
    }
    Ok(())
}

/// In the child, just before execve: marks every descriptor above stderr close-on-exec, so
/// nothing of the caller's leaks into the container.
pub fn close_on_exec_above_stdio() -> std::result::Result<(), StepError> {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets a flag on descriptors; it takes
    // no pointers.
    let result = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    Errno::result(result).map(drop).map_err(|errno| StepError {
        step: "mark file descriptors close-on-exec".to_owned(),
        errno,
    })
}

/// In the child, before execve: every signal back to its default action and none blocked. An
/// ignored signal stays ignored across execve (Rust programs ignore SIGPIPE; the supervisor
/// may block signals it reads from a signalfd), and a container expects neither.
pub fn reset_signals() -> std::result::Result<(), StepError> {
    // The kernel's `struct sigaction` all zero: SIG_DFL, no flags, nothing blocked while
    // handling; bigger than the largest layout (handler, flags, restorer, mask).
    let default = [0u64; 8];
    for signal in 1..=libc::SIGRTMAX() {
        if signal == libc::SIGKILL || signal == libc::SIGSTOP {
            continue;
        }
        // SAFETY: rt_sigaction reads `default` (valid, large enough) and writes nothing (the
        // old action pointer is null). The raw system call, because glibc's wrapper refuses
        // the signals it reserves for itself (32 and 33), which may be ignored too.
        let result = unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                signal,
                default.as_ptr(),
                std::ptr::null_mut::<u64>(),
                // sizeof the kernel's sigset_t: 64 signals.
                8usize,
            )
        };
        Errno::result(result).map_err(|errno| StepError {
            step: format!("reset signal {signal}"),
            errno,
        })?;
    }
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None).map_err(|errno| StepError {
        step: "unblock signals".to_owned(),
        errno,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_decodes_to_its_step_and_errno() {
        let mut message = (Errno::ENOENT as i32).to_le_bytes().to_vec();
        message.extend_from_slice(b"exec \"/nope\"");
        let error = decode(&message);
        assert_eq!(
            error.to_string(),
            "exec \"/nope\": no such file or directory"
        );
    }
}
