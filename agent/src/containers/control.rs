//! What the CLI does to a container another process supervises: stop, kill, wait, remove.
//!
//! Signals go to the container's init by PID only while its record lock is held and the
//! record says it runs: the supervisor reaps the init and clears the PID under the same lock,
//! so a signal can never reach a process that reused the PID.

use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::store::ContainerStore;
use super::ContainersError;
use crate::engine::container::{Container, Status};
use crate::runtime::cgroups::Cgroups;
use crate::volumes::VolumeStore;

/// How often a waiting CLI looks again.
const POLL: Duration = Duration::from_millis(5);
/// How long to wait for a supervisor to finish after its container was SIGKILLed.
const AFTER_KILL: Duration = Duration::from_secs(10);

/// Sends `signal` to the running container `id`; `manual` marks it stopped by a user (its
/// restart policy will not start it again).
pub fn signal(
    store: &ContainerStore,
    id: &str,
    signal: Signal,
    manual: bool,
) -> Result<(), ContainersError> {
    let lock = store.record_lock(id)?;
    let record = store.read(id)?;
    match record.state.status {
        Status::Running if record.state.pid > 0 => {
            if manual {
                store.update_locked(&lock, id, |c| c.manually_stopped = true)?;
            }
            kill(Pid::from_raw(record.state.pid), signal).map_err(|e| ContainersError::Io {
                path: format!("container {} (pid {})", record.short_id(), record.state.pid).into(),
                source: e.into(),
            })
        }
        Status::Restarting if manual => {
            store.update_locked(&lock, id, |c| c.manually_stopped = true)?;
            let _ = kill(Pid::from_raw(record.state.shim_pid), Signal::SIGTERM);
            Ok(())
        }
        _ => Err(ContainersError::NotRunning {
            action: "kill",
            id: record.short_id().to_owned(),
        }),
    }
}

/// Waits until no supervisor owns container `id`, at most `timeout`; true if it is gone.
fn wait_supervisor(
    store: &ContainerStore,
    id: &str,
    timeout: Duration,
) -> Result<bool, ContainersError> {
    let until = Instant::now() + timeout;
    loop {
        if !store.supervisor_alive(id)? {
            return Ok(true);
        }
        if Instant::now() >= until {
            return Ok(false);
        }
        sleep(POLL);
    }
}

/// docker's `stop`: the stop signal, then SIGKILL after `timeout` (the container's
/// `--stop-timeout`, else 10 s). Stopping a stopped container is not an error.
pub fn stop(
    store: &ContainerStore,
    id: &str,
    timeout: Option<Duration>,
) -> Result<Container, ContainersError> {
    let record = store.read(id)?;
    if !record.is_active() {
        return Ok(record);
    }
    let timeout = timeout.unwrap_or_else(|| record.stop_timeout());
    match signal(store, id, stop_signal(&record), true) {
        Ok(()) | Err(ContainersError::NotRunning { .. }) => {}
        Err(e) => return Err(e),
    }
    if !wait_supervisor(store, id, timeout)? {
        force_kill(store, id)?;
        wait_supervisor(store, id, AFTER_KILL)?;
    }
    Ok(store.read(id)?)
}

/// SIGKILL to the container and every process left in its cgroups.
fn force_kill(store: &ContainerStore, id: &str) -> Result<(), ContainersError> {
    match signal(store, id, Signal::SIGKILL, true) {
        Ok(()) | Err(ContainersError::NotRunning { .. }) => {}
        Err(e) => return Err(e),
    }
    if let Some(cgroups) = saved_cgroups(&store.read_raw(id)?) {
        let _ = cgroups.kill_all(Signal::SIGKILL);
    }
    Ok(())
}

/// The cgroups of a container's last run, as its record saved them.
pub fn saved_cgroups(record: &Container) -> Option<Cgroups> {
    record
        .cgroups
        .clone()
        .and_then(|saved| serde_json::from_value(saved).ok())
}

/// Kills what is left in the cgroups of a container's last run and removes them, with the
/// supervisor's leaf once no supervisor lives in it (after a supervisor died with its
/// container, or before the container's directory goes).
pub fn discard_cgroups(record: &Container) -> Result<(), ContainersError> {
    if let Some(cgroups) = saved_cgroups(record) {
        let _ = cgroups.kill_all(Signal::SIGKILL);
        cgroups.remove()?;
        cgroups.remove_supervisor_leaf()?;
    }
    Ok(())
}

/// The signal that stops the container (its record holds a name checked when it was made).
pub fn stop_signal(record: &Container) -> Signal {
    record.stop_signal.parse().unwrap_or(Signal::SIGTERM)
}

/// docker's `wait`: blocks until the container stops; its exit code.
pub fn wait(store: &ContainerStore, id: &str) -> Result<i32, ContainersError> {
    loop {
        let record = store.read(id)?;
        if !record.is_active() {
            return Ok(record.state.exit_code);
        }
        sleep(POLL * 4);
    }
}

/// docker's `rm`: a running container needs `force` (then it is killed first); `volumes`
/// removes its anonymous volumes too.
pub fn remove(
    data_root: &Path,
    store: &ContainerStore,
    id: &str,
    force: bool,
    volumes: bool,
) -> Result<(), ContainersError> {
    let record = store.read(id)?;
    if record.is_active() {
        if !force {
            return Err(ContainersError::Running(record.short_id().to_owned()));
        }
        force_kill(store, id)?;
        wait_supervisor(store, id, AFTER_KILL)?;
    }
    let record = store.read(id)?;
    remove_stopped(data_root, store, &record, volumes)
}

/// Removes a stopped container's directory, name, leftover cgroups, network addresses and,
/// with `volumes`, its anonymous volumes.
pub fn remove_stopped(
    data_root: &Path,
    store: &ContainerStore,
    record: &Container,
    volumes: bool,
) -> Result<(), ContainersError> {
    discard_cgroups(record)?;
    super::networking::release(data_root, store, record)?;
    let lock = store.lock()?;
    store.remove(&lock, record)?;
    if volumes {
        let volume_store = VolumeStore::open(data_root)?;
        for mount in record.mounts.iter().filter(|m| m.anonymous) {
            if let Some(name) = &mount.name {
                volume_store.remove(name, &[])?;
            }
        }
    }
    Ok(())
}

/// This process's cgroup in the unified hierarchy, relative to its root (`/proc/self/cgroup`'s
/// `0::/PATH` line): where a systemd service's container gets its cgroup (`Delegate=yes`).
pub fn own_cgroup() -> Option<String> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix("0::/"))
        .filter(|path| !path.is_empty())
        .map(str::to_owned)
}
