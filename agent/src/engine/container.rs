//! A container's record: what it was made from and what state it is in, as kept in
//! `<data-root>/containers/<id>/container.json`, and docker's rules for the state's changes and
//! for telling one configuration from another (run-or-start).
//!
//! Pure: times come in as values; reading and writing the record is `containers::store`'s job.

use std::net::Ipv4Addr;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::options::RunOptions;
use super::restart::ExitCause;
use crate::network::ports::{ContainerPort, PortBinding};

/// docker's stop timeout when neither `--stop-timeout` nor `stop -t` says otherwise.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// The format version of `container.json`; a record of another version is refused, not guessed.
pub const RECORD_VERSION: u32 = 1;

/// docker's container states (`State.Status`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Made by `create`, never started.
    #[default]
    Created,
    /// Its process runs.
    Running,
    /// It ended and its restart policy will start it again after a delay.
    Restarting,
    /// It ended and stays so.
    Exited,
    /// `rm` is removing it.
    Removing,
}

impl Status {
    /// docker's word for the state, as `inspect` and `ps --format` print it.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Restarting => "restarting",
            Status::Exited => "exited",
            Status::Removing => "removing",
        }
    }
}

/// docker's `State` object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub status: Status,
    /// The container's init process as the host sees it; 0 when it does not run.
    pub pid: i32,
    /// The supervisor that owns the container while it runs or restarts; 0 otherwise.
    pub shim_pid: i32,
    pub exit_code: i32,
    /// Why the last start failed, as the user saw it.
    pub error: String,
    pub oom_killed: bool,
    pub started_at: Option<SystemTime>,
    pub finished_at: Option<SystemTime>,
}

/// What kind of storage backs a mount (`inspect`'s `Mounts[].Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    Bind,
    Volume,
}

/// One of the container's `-v` mounts as `inspect` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountPoint {
    pub kind: MountKind,
    /// The volume's name (named and anonymous volumes).
    pub name: Option<String>,
    /// The host path mounted.
    pub source: String,
    pub destination: String,
    pub read_write: bool,
    /// An anonymous volume: `rm -v` removes it with the container.
    pub anonymous: bool,
}

/// Where the container's output goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogTarget {
    /// docker's driver name: `journald` or `json-file`.
    pub driver: String,
    /// The log file of the `json-file` driver.
    pub path: Option<String>,
}

/// Everything flotilla keeps about one container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Container {
    pub version: u32,
    /// 64 hex digits.
    pub id: String,
    /// Without docker's leading `/`.
    pub name: String,
    pub created: SystemTime,
    /// The image as the user named it.
    pub image: String,
    /// The image's ID (`sha256:…`) when the container was made.
    pub image_id: String,
    /// The flags it was made with; `run --name` compares them (run-or-start).
    pub options: RunOptions,
    /// The process: `path` then `args` (docker's `Path` and `Args`).
    pub path: String,
    pub args: Vec<String>,
    pub mounts: Vec<MountPoint>,
    pub state: State,
    pub restart_count: u32,
    /// A user stopped or killed it: `unless-stopped` does not bring it back.
    pub manually_stopped: bool,
    /// Run as a systemd service's main process (`--systemd`): systemd restarts it, not flotilla.
    pub systemd: bool,
    /// The signal that stops it: `--stop-signal`, else the image's `StopSignal`, else SIGTERM.
    pub stop_signal: String,
    pub log: Option<LogTarget>,
    /// The cgroup directories of its last run, for `kill`/`rm` after its supervisor died.
    pub cgroups: Option<serde_json::Value>,
    /// Its place on each bridge network it joined, from `create` to `rm`.
    #[serde(default)]
    pub endpoints: Vec<Endpoint>,
    /// The image's exposed ports (`EXPOSE`), for `-P`, links and `inspect`.
    #[serde(default)]
    pub exposed: Vec<ContainerPort>,
    /// Its published ports as its supervisor bound them; empty while it does not run.
    #[serde(default)]
    pub ports: Vec<PortBinding>,
}

/// A container's place on a bridge network: its address there, given at `create` and kept
/// until `rm`, and the names of the veth pair that plugs it in while it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// The network's name.
    pub network: String,
    /// The network's ID.
    pub network_id: String,
    pub address: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    /// `02:42:…`, derived from the address.
    pub mac: String,
    /// The pair's host end, a port of the network's bridge.
    pub host_interface: String,
}

impl Container {
    /// The 12-digit short ID docker prints.
    pub fn short_id(&self) -> &str {
        short_id(&self.id)
    }

    /// Whether its supervisor owns it now (running, or waiting to restart).
    pub fn is_active(&self) -> bool {
        matches!(self.state.status, Status::Running | Status::Restarting)
    }

    /// Records a start: the process `pid` runs under the supervisor `shim_pid`.
    pub fn started(&mut self, pid: i32, shim_pid: i32, now: SystemTime) {
        self.state = State {
            status: Status::Running,
            pid,
            shim_pid,
            started_at: Some(now),
            finished_at: self.state.finished_at,
            exit_code: self.state.exit_code,
            ..State::default()
        };
        self.manually_stopped = false;
    }

    /// Records a start that failed before the process ran (docker: exit code 125–127).
    pub fn failed_to_start(&mut self, error: String, exit_code: i32, now: SystemTime) {
        self.state = State {
            status: Status::Exited,
            exit_code,
            error,
            started_at: self.state.started_at,
            finished_at: Some(now),
            ..State::default()
        };
    }

    /// Records the end of the process; `restarting` when the policy starts it again.
    pub fn ended(&mut self, cause: ExitCause, oom_killed: bool, restarting: bool, now: SystemTime) {
        self.state = State {
            status: if restarting {
                Status::Restarting
            } else {
                Status::Exited
            },
            pid: 0,
            shim_pid: if restarting { self.state.shim_pid } else { 0 },
            exit_code: cause.exit_code(),
            error: String::new(),
            oom_killed,
            started_at: self.state.started_at,
            finished_at: Some(now),
        };
    }

    /// The state others should believe: a record that says running or restarting while no
    /// supervisor holds it (the supervisor or the host crashed) is exited (docker reports a dead
    /// container's last exit code; with none known, 137 as for a kill).
    pub fn reconciled(mut self, supervisor_alive: bool, now: SystemTime) -> Container {
        if self.is_active() && !supervisor_alive {
            // A running one died with its supervisor (killed: 137, now); a restarting one had
            // already ended, with its own code and time.
            let (exit_code, finished_at) = if self.state.status == Status::Running {
                (128 + 9, Some(now))
            } else {
                (self.state.exit_code, self.state.finished_at)
            };
            self.state = State {
                status: Status::Exited,
                exit_code,
                finished_at,
                started_at: self.state.started_at,
                oom_killed: self.state.oom_killed,
                ..State::default()
            };
        }
        self
    }

    /// How long a stop waits after the stop signal before SIGKILL: `--stop-timeout`, else
    /// docker's 10 s.
    pub fn stop_timeout(&self) -> Duration {
        self.options
            .stop_timeout
            .map_or(DEFAULT_STOP_TIMEOUT, |s| Duration::from_secs(u64::from(s)))
    }

    /// How long its current or last run lasted (for the restart back-off).
    pub fn ran_for(&self, now: SystemTime) -> Duration {
        self.state
            .started_at
            .and_then(|started| now.duration_since(started).ok())
            .unwrap_or_default()
    }
}

#[cfg(test)]
impl Container {
    /// A container of `busybox` named `web`, made at `created`, never started: for tests.
    pub(crate) fn example(created: SystemTime) -> Container {
        Container {
            version: RECORD_VERSION,
            id: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".to_owned(),
            name: "web".to_owned(),
            created,
            image: "busybox".to_owned(),
            image_id: "sha256:aaaa".to_owned(),
            options: RunOptions {
                image: "busybox".to_owned(),
                ..RunOptions::default()
            },
            path: "sh".to_owned(),
            args: vec![],
            mounts: vec![],
            state: State::default(),
            restart_count: 0,
            manually_stopped: false,
            systemd: false,
            stop_signal: "SIGTERM".to_owned(),
            log: None,
            cgroups: None,
            endpoints: Vec::new(),
            exposed: Vec::new(),
            ports: Vec::new(),
        }
    }
}

/// The 12-digit prefix of an ID.
pub fn short_id(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// The flags (and their values) that differ between a container's configuration and a new
/// one, as `--flag: old → new`, for run-or-start's error; empty when they are the same. A
/// changed image ID under the same image name counts as a difference (a newer pull).
pub fn differences(existing: &Container, options: &RunOptions, image_id: &str) -> Vec<String> {
    let mut found = Vec::new();
    let old = serde_json::to_value(&existing.options).unwrap_or_default();
    let new = serde_json::to_value(options).unwrap_or_default();
    if let (Some(old), Some(new)) = (old.as_object(), new.as_object()) {
        for (field, new_value) in new {
            let old_value = old.get(field).unwrap_or(&serde_json::Value::Null);
            if old_value != new_value && field != "name" {
                found.push(format!(
                    "{}: {} → {}",
                    flag_of(field),
                    compact(old_value),
                    compact(new_value)
                ));
            }
        }
    }
    if existing.image == options.image && existing.image_id != image_id {
        found.push(format!(
            "image {}: {} → {}",
            options.image,
            short_id(existing.image_id.trim_start_matches("sha256:")),
            short_id(image_id.trim_start_matches("sha256:"))
        ));
    }
    found
}

/// The `run` flag that sets a [`RunOptions`] field.
fn flag_of(field: &str) -> &str {
    match field {
        "env" => "--env",
        "volumes" => "--volume",
        "workdir" => "--workdir",
        "user" => "--user",
        "entrypoint" => "--entrypoint",
        "hostname" => "--hostname",
        "read_only" => "--read-only",
        "restart" => "--restart",
        "memory" => "--memory",
        "nano_cpus" => "--cpus",
        "pids_limit" => "--pids-limit",
        "stop_timeout" => "--stop-timeout",
        "stop_signal" => "--stop-signal",
        "network" => "--network",
        "publish" => "--publish",
        "publish_all" => "--publish-all",
        "links" => "--link",
        "dns" => "--dns",
        "extra_hosts" => "--add-host",
        "remove" => "--rm",
        "tty" => "--tty",
        "image" => "IMAGE",
        "command" => "COMMAND",
        other => other,
    }
}

fn compact(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => "(unset)".to_owned(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::restart::RestartPolicy;

    fn container() -> Container {
        Container::example(SystemTime::UNIX_EPOCH)
    }

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
    }

    #[test]
    fn a_run_moves_through_docker_states() {
        let mut c = container();
        assert_eq!(c.state.status, Status::Created);
        c.started(100, 99, at(10));
        assert_eq!(
            (c.state.status, c.state.pid, c.is_active()),
            (Status::Running, 100, true)
        );
        c.ended(ExitCause::Exited(3), false, true, at(15));
        assert_eq!(c.state.status, Status::Restarting);
        assert_eq!((c.state.exit_code, c.state.shim_pid), (3, 99));
        assert_eq!(c.ran_for(at(15)), Duration::from_secs(5));
        c.ended(ExitCause::Signaled(9), true, false, at(20));
        assert_eq!(c.state.status, Status::Exited);
        assert_eq!(
            (c.state.exit_code, c.state.oom_killed, c.state.shim_pid),
            (137, true, 0)
        );
    }

    #[test]
    fn a_start_clears_a_manual_stop() {
        let mut c = container();
        c.manually_stopped = true;
        c.started(1, 2, at(1));
        assert!(!c.manually_stopped);
    }

    #[test]
    fn a_running_record_without_its_supervisor_reads_as_exited() {
        let mut c = container();
        c.started(100, 99, at(10));
        let dead = c.clone().reconciled(false, at(30));
        assert_eq!(dead.state.status, Status::Exited);
        assert_eq!((dead.state.exit_code, dead.state.pid), (137, 0));
        assert_eq!(dead.state.finished_at, Some(at(30)));
        let alive = c.clone().reconciled(true, at(30));
        assert_eq!(alive, c);
        let mut waiting = container();
        waiting.started(100, 99, at(10));
        waiting.ended(ExitCause::Exited(1), false, true, at(12));
        let dead = waiting.reconciled(false, at(30));
        assert_eq!(
            (dead.state.status, dead.state.exit_code),
            (Status::Exited, 1)
        );
        assert_eq!(dead.state.finished_at, Some(at(12)));
    }

    #[test]
    fn differences_name_the_flags_that_changed() {
        let c = container();
        let same = c.options.clone();
        assert!(differences(&c, &same, "sha256:aaaa").is_empty());
        let renamed = RunOptions {
            name: Some("other".into()),
            ..same.clone()
        };
        assert!(differences(&c, &renamed, "sha256:aaaa").is_empty());
        let changed = RunOptions {
            memory: Some(64 << 20),
            restart: RestartPolicy::Always,
            ..same
        };
        assert_eq!(
            differences(&c, &changed, "sha256:bbbb"),
            vec![
                "--memory: (unset) → 67108864".to_owned(),
                "--restart: \"no\" → \"always\"".to_owned(),
                "image busybox: aaaa → bbbb".to_owned(),
            ]
        );
        let with_terminal = RunOptions {
            tty: true,
            ..c.options.clone()
        };
        assert_eq!(
            differences(&c, &with_terminal, "sha256:aaaa"),
            vec!["--tty: false → true".to_owned()]
        );
    }
}
