//! Starting a container: the CLI's side (take the supervisor lock, start the supervisor, wait
//! for its report) and what the supervisor reads before each run ([`prepare`]).
//!
//! The CLI takes `supervisor.lock` itself and hands the locked descriptor down, so two
//! concurrent starts of one container cannot both start a supervisor: the second finds the lock
//! taken and reports the container as already running. The supervisor reports on a pipe, one
//! line per event: `started PID`, `failed CODE MESSAGE`, `exited CODE`.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use image::store::Store;
use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::sys::signal::Signal;
use oci_spec::runtime::Spec;

use super::store::ContainerStore;
use super::supervisor_lock::SupervisorLock;
use super::ContainersError;
use crate::logs::driver::LogConfig;
use crate::logs::journal::JOURNAL_SOCKET;
use crate::runtime::cgroups::Parent;

/// One event the supervisor reports to the CLI that started it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    Started { pid: i32 },
    Failed { code: i32, message: String },
    Exited { code: i32 },
}

impl Report {
    /// The line written on the status pipe.
    pub fn to_line(&self) -> String {
        match self {
            Report::Started { pid } => format!("started {pid}\n"),
            Report::Failed { code, message } => {
                format!("failed {code} {}\n", message.replace('\n', " "))
            }
            Report::Exited { code } => format!("exited {code}\n"),
        }
    }

    /// Reads a line written by [`Report::to_line`].
    pub fn parse(line: &str) -> Option<Report> {
        let (word, rest) = line.trim_end().split_once(' ')?;
        match word {
            "started" => Some(Report::Started {
                pid: rest.parse().ok()?,
            }),
            "exited" => Some(Report::Exited {
                code: rest.parse().ok()?,
            }),
            "failed" => {
                let (code, message) = rest.split_once(' ').unwrap_or((rest, ""));
                Some(Report::Failed {
                    code: code.parse().ok()?,
                    message: message.to_owned(),
                })
            }
            _ => None,
        }
    }
}

/// What one run of a container needs, read fresh before each run.
#[derive(Debug)]
pub struct Prepared {
    pub spec: Spec,
    /// The image's unpacked layers, top-most first.
    pub lower: Vec<PathBuf>,
    pub upper: PathBuf,
    pub work: PathBuf,
    /// Where the container's cgroup is made.
    pub cgroup_parent: Parent,
    pub log: LogConfig,
    pub stop_signal: Signal,
    pub stop_timeout: Duration,
}

/// The cgroup under which containers not run by systemd get theirs (docker's `/docker`).
pub const CGROUP_PARENT: &str = "flotilla";

/// Reads what the next run of container `id` needs.
pub fn prepare(
    data_root: &Path,
    store: &ContainerStore,
    id: &str,
) -> Result<Prepared, ContainersError> {
    let record = store.read_raw(id)?;
    let spec = store.spec(id)?;
    let images = Store::open(data_root)?;
    let image = images.resolve(&record.image_id)?;
    let mut lower: Vec<PathBuf> = images
        .layers(&image)?
        .into_iter()
        .map(|layer| layer.dir)
        .collect();
    lower.reverse();
    let dir = store.dir(id);
    let cgroup_parent = match record.systemd.then(super::control::own_cgroup).flatten() {
        Some(service) => Parent::Service(service),
        None => Parent::Shared(CGROUP_PARENT.to_owned()),
    };
    Ok(Prepared {
        spec,
        lower,
        upper: dir.join("upper"),
        work: dir.join("work"),
        cgroup_parent,
        log: LogConfig {
            container_id: record.id.clone(),
            name: record.name.clone(),
            image: record.image.clone(),
            journal_socket: PathBuf::from(JOURNAL_SOCKET),
            json_path: dir.join(format!("{id}-json.log")),
        },
        stop_signal: super::control::stop_signal(&record),
        stop_timeout: record.stop_timeout(),
    })
}

/// A pipe whose ends close on exec.
pub fn pipe() -> Result<(OwnedFd, OwnedFd), ContainersError> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| ContainersError::Io {
        path: PathBuf::from("pipe"),
        source: e.into(),
    })
}

/// `/dev/null`, for a container's standard input.
pub fn dev_null() -> Result<OwnedFd, ContainersError> {
    OpenOptions::new()
        .read(true)
        .open("/dev/null")
        .map(OwnedFd::from)
        .map_err(|source| ContainersError::Io {
            path: PathBuf::from("/dev/null"),
            source,
        })
}

/// Lets a child process inherit `fd`.
fn inheritable(fd: &impl AsRawFd) -> Result<(), ContainersError> {
    fcntl(fd.as_raw_fd(), FcntlArg::F_SETFD(FdFlag::empty()))
        .map(drop)
        .map_err(|e| ContainersError::Io {
            path: PathBuf::from(format!("descriptor {}", fd.as_raw_fd())),
            source: e.into(),
        })
}

/// What a CLI asking for a start gets back.
#[derive(Debug)]
pub enum Started {
    /// A supervisor started it; `status` carries its later reports (`exited`).
    Now { pid: i32, status: BufReader<File> },
    /// Another supervisor already owns it.
    AlreadyRunning,
}

/// Whether the CLI stays attached to the container's output and input.
#[derive(Debug, Default)]
pub struct Attach {
    /// The raw stdout and stderr come back on these pipes (the CLI copies them to its own).
    pub output: Option<(OwnedFd, OwnedFd)>,
    /// `-i`: the CLI's standard input becomes the container's (with a terminal, the
    /// supervisor copies it into the terminal).
    pub stdin: bool,
    /// `-t`: the reading end of the pipe on which the CLI sends its window sizes.
    pub resize: Option<OwnedFd>,
}

/// Starts container `id` under a new supervisor (a re-execution of this binary as
/// `flotilla supervise`), unless one already owns it.
pub fn start(
    data_root: &Path,
    store: &ContainerStore,
    id: &str,
    attach: Attach,
) -> Result<Started, ContainersError> {
    let lock_path = store.supervisor_lock_path(id);
    let taken = SupervisorLock::try_take(&lock_path).map_err(|source| ContainersError::Io {
        path: lock_path,
        source,
    })?;
    let Some(lock) = taken else {
        return Ok(Started::AlreadyRunning);
    };
    let diary_path = store.dir(id).join("supervisor.log");
    let diary = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&diary_path)
        .map_err(|source| ContainersError::Io {
            path: diary_path,
            source,
        })?;
    let (status_read, status_write) = pipe()?;
    inheritable(&status_write)?;
    inheritable(lock.file())?;
    let mut command = Command::new("/proc/self/exe");
    command
        .arg("--data-root")
        .arg(data_root)
        .arg("supervise")
        .arg(id)
        .arg("--status-fd")
        .arg(status_write.as_raw_fd().to_string())
        .arg("--lock-fd")
        .arg(lock.file().as_raw_fd().to_string())
        .stdin(if attach.stdin {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        // What the supervisor could not report on its status pipe (it failed before, or
        // nobody listens any more) goes to the container's supervisor.log.
        .stderr(diary);
    if attach.stdin {
        command.arg("--interactive");
    }
    if let Some((out, err)) = &attach.output {
        inheritable(out)?;
        inheritable(err)?;
        command
            .arg("--attach-fds")
            .arg(format!("{},{}", out.as_raw_fd(), err.as_raw_fd()));
    }
    if let Some(resize) = &attach.resize {
        inheritable(resize)?;
        command
            .arg("--resize-fd")
            .arg(resize.as_raw_fd().to_string());
    }
    command
        .spawn()
        .map_err(|source| ContainersError::Supervisor {
            id: id.to_owned(),
            source,
        })?;
    // The supervisor has its copies now; ours must go, or we would never see its pipe close.
    drop(status_write);
    drop(attach);
    drop(lock);
    let mut status = BufReader::new(File::from(status_read));
    match read_report(&mut status) {
        Some(Report::Started { pid }) => Ok(Started::Now { pid, status }),
        Some(Report::Failed { code, message }) => {
            Err(ContainersError::StartFailed { message, code })
        }
        _ => Err(ContainersError::SupervisorVanished(id.to_owned())),
    }
}

/// The next report on a supervisor's status pipe; `None` once it closed.
pub fn read_report(status: &mut BufReader<File>) -> Option<Report> {
    let mut line = String::new();
    match status.read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Report::parse(&line),
    }
}

/// The error a start that failed under systemd ends with.
pub fn start_failed(message: String, code: i32) -> ContainersError {
    ContainersError::StartFailed { message, code }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_survive_the_pipe() {
        for report in [
            Report::Started { pid: 42 },
            Report::Exited { code: 137 },
            Report::Failed {
                code: 127,
                message: "exec \"/nope\": no such file\nor directory".to_owned(),
            },
        ] {
            let parsed = Report::parse(&report.to_line()).unwrap();
            match (&report, &parsed) {
                (Report::Failed { code, .. }, Report::Failed { code: c, message }) => {
                    assert_eq!(code, c);
                    assert_eq!(message, "exec \"/nope\": no such file or directory");
                }
                _ => assert_eq!(parsed, report),
            }
        }
        assert_eq!(Report::parse("bogus 1"), None);
    }
}
