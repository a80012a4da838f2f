//! Starting the resolver of a data root and telling it to re-read its table, from the
//! engine's processes: [`ensure_running`] and [`reload`].
//!
//! Both hold `dns.start.lock` while they look, so that callers at the same time start one
//! resolver between them: the first starts it and waits until it holds `dns.lock` and has
//! written its pid (it listens by then); the others find it running. The resolver must not die
//! with its starter: under systemd (PID 1) it runs as a transient service of its own
//! (`systemd-run`), outside the caller's cgroup, which a container's unit may kill whole;
//! elsewhere as a child in a session of its own with its standard streams on /dev/null.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use sha2::{Digest, Sha256};

use super::lock::{self, LockError};
use super::Paths;

/// How long a resolver gets to take its lock and write its pid.
const STARTUP: Duration = Duration::from_secs(5);
/// How often a starting resolver is looked at.
const POLL: Duration = Duration::from_millis(20);

/// Why the resolver could not be started or signalled.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("cannot run {program}: {source}")]
    Spawn { program: PathBuf, source: io::Error },
    #[error("systemd-run for the resolver failed: {0}")]
    SystemdRun(ExitStatus),
    #[error("the resolver {exe} exited ({status}) without serving")]
    Exited { exe: PathBuf, status: ExitStatus },
    #[error("the resolver {exe} did not start or reload within {STARTUP:?}")]
    Timeout { exe: PathBuf },
    #[error("cannot signal the resolver (pid {pid}): {source}")]
    Signal { pid: Pid, source: nix::Error },
}

/// How a resolver is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Launcher {
    /// A transient systemd service (`systemd-run`).
    Systemd,
    /// A child in a session of its own.
    Session,
}

impl Launcher {
    /// [`Launcher::Systemd`] when systemd is PID 1, else [`Launcher::Session`].
    pub fn detect() -> Launcher {
        if Path::new("/run/systemd/system").exists() {
            Launcher::Systemd
        } else {
            Launcher::Session
        }
    }
}

/// Makes sure the resolver of `data_root` runs, starting `exe --data-root DATA_ROOT
/// dns-serve` if none does; returns its pid once it listens.
pub fn ensure_running(
    data_root: &Path,
    exe: &Path,
    launcher: Launcher,
) -> Result<Pid, LaunchError> {
    let paths = Paths::new(data_root);
    let _start = lock::lock(&paths.start, true)?;
    running(&paths, data_root, exe, launcher)
}

/// Tells the resolver of `data_root` to re-read its table (starting it if none runs) and waits
/// until it has (it serves the new table, or has exited for want of networks); call it after
/// writing the table.
pub fn reload(data_root: &Path, exe: &Path, launcher: Launcher) -> Result<(), LaunchError> {
    let paths = Paths::new(data_root);
    let _start = lock::lock(&paths.start, true)?;
    let pid = running(&paths, data_root, exe, launcher)?;
    let before = lock::pid_stamp(&paths.pid)?;
    kill(pid, Signal::SIGHUP).map_err(|source| LaunchError::Signal { pid, source })?;
    // The resolver writes its pid file anew after each reading of the table.
    let deadline = Instant::now() + STARTUP;
    while lock::pid_stamp(&paths.pid)? == before {
        if Instant::now() > deadline {
            return Err(LaunchError::Timeout {
                exe: exe.to_owned(),
            });
        }
        thread::sleep(POLL);
    }
    Ok(())
}

/// The running resolver's pid, started if need be; the caller holds the start lock.
fn running(
    paths: &Paths,
    data_root: &Path,
    exe: &Path,
    launcher: Launcher,
) -> Result<Pid, LaunchError> {
    let deadline = Instant::now() + STARTUP;
    let mut child = None;
    let mut started = false;
    loop {
        if lock::is_held(&paths.lock)? {
            // Held without a pid: a resolver still binding, or one on its way out.
            if let Some(pid) = lock::read_pid(&paths.pid)? {
                if let Some(child) = child {
                    reap(child);
                }
                return Ok(pid);
            }
        } else if !started {
            // No resolver runs: a pid file left by one that was killed must not be taken for
            // the new one's.
            lock::remove_pid(&paths.pid)?;
            child = start(data_root, exe, launcher)?;
            started = true;
        } else if let Some(status) = exited(&mut child) {
            return Err(LaunchError::Exited {
                exe: exe.to_owned(),
                status,
            });
        }
        if Instant::now() > deadline {
            return Err(LaunchError::Timeout {
                exe: exe.to_owned(),
            });
        }
        thread::sleep(POLL);
    }
}

/// Starts a resolver; the child to reap when it is one of ours.
fn start(data_root: &Path, exe: &Path, launcher: Launcher) -> Result<Option<Child>, LaunchError> {
    let spawned = |program: &Path, args: Vec<OsString>| {
        Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| LaunchError::Spawn {
                program: program.to_owned(),
                source,
            })
    };
    match launcher {
        Launcher::Session => spawned(exe, serve_args(data_root)).map(Some),
        Launcher::Systemd => {
            let program = Path::new("systemd-run");
            let status = spawned(program, systemd_run_args(data_root, exe))?
                .wait()
                .map_err(|source| LaunchError::Spawn {
                    program: program.to_owned(),
                    source,
                })?;
            // A unit of that name still there (one exiting) is no failure: the lock says
            // whether a resolver runs, and the caller keeps looking until the deadline.
            if status.success() || status.code() == Some(1) {
                Ok(None)
            } else {
                Err(LaunchError::SystemdRun(status))
            }
        }
    }
}

/// How the resolver child exited, if it is ours and did.
fn exited(child: &mut Option<Child>) -> Option<ExitStatus> {
    child.as_mut()?.try_wait().ok().flatten()
}

/// Waits for a resolver child in the background, so that it leaves no zombie.
fn reap(mut child: Child) {
    thread::spawn(move || child.wait());
}

/// The resolver's command line after the program.
fn serve_args(data_root: &Path) -> Vec<OsString> {
    vec!["--data-root".into(), data_root.into(), "dns-serve".into()]
}

/// `systemd-run`'s arguments for the resolver of `data_root`.
fn systemd_run_args(data_root: &Path, exe: &Path) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![
        "--quiet".into(),
        "--collect".into(),
        "--unit".into(),
        unit_name(data_root).into(),
        exe.into(),
    ];
    args.extend(serve_args(data_root));
    args
}

/// The transient unit of the resolver of `data_root`: one per data root.
fn unit_name(data_root: &Path) -> String {
    let digest = Sha256::digest(data_root.as_os_str().as_encoded_bytes());
    let hex: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    format!("flotilla-dns-{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_systemd_unit_runs_dns_serve_for_the_data_root() {
        let args = systemd_run_args(
            Path::new("/var/lib/flotilla"),
            Path::new("/usr/bin/flotilla"),
        );
        let args: Vec<&str> = args.iter().map(|a| a.to_str().unwrap()).collect();
        let unit = unit_name(Path::new("/var/lib/flotilla"));
        assert_eq!(
            args,
            [
                "--quiet",
                "--collect",
                "--unit",
                &unit,
                "/usr/bin/flotilla",
                "--data-root",
                "/var/lib/flotilla",
                "dns-serve"
            ]
        );
        assert!(unit.starts_with("flotilla-dns-") && unit.len() == "flotilla-dns-".len() + 8);
        assert!(unit[13..].bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(unit, unit_name(Path::new("/tmp/other")));
    }
}
