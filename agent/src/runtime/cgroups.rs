//! A container's cgroups: created with its limits, joined by the runtime, killed, checked for OOM
//! kills and removed, on pure v1, hybrid and pure v2 hosts.
//!
//! [`layout`] reads where the hierarchies are mounted, [`plan`] decides (purely) which ones the
//! container joins and which limit files get which values, [`steps`] orders the directories,
//! moves and writes that make them; this module does the file system work. A container's cgroup
//! is `<parent>/<name>` in every hierarchy of the plan, except under a systemd service on a
//! cgroup2-only host, where the supervisor moves into the leaf `<service>/supervisor` and the
//! container's cgroup is its sibling (see [`steps`]). [`Cgroups`] is only its directories,
//! serializable, so a later process (after the supervisor crashed) can [`Cgroups::open`] it again
//! and kill, inspect or remove it.
//!
//! ```no_run
//! use agent::runtime::cgroups::{Cgroups, Parent};
//! use nix::sys::signal::Signal;
//!
//! let cgroups = Cgroups::create(&Parent::Shared("flotilla".into()), "0123abcd", None)?;
//! let membership = cgroups.membership(); // the runtime writes the init's pid to each dir
//! // ... the container runs ...
//! cgroups.kill_all(Signal::SIGKILL)?;
//! let oom = cgroups.oom_killed()?;
//! cgroups.remove()?;
//! # Ok::<(), agent::runtime::cgroups::CgroupError>(())
//! ```

pub mod layout;
pub mod plan;
pub mod steps;

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Write as _};
use std::path::{Component, Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

use self::layout::{parse_mountinfo, Layout};
use self::plan::{PlanError, Write};
pub use self::steps::Parent;
use self::steps::{Hierarchy, Step};

/// Why a cgroup operation failed; each names the file and, for writes, the value.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("invalid cgroup {what} {value:?}: {reason}")]
    InvalidPath {
        what: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("write {value:?} to {}: {source}", path.display())]
    Write {
        path: PathBuf,
        value: String,
        source: io::Error,
    },
    #[error("create {}: {source}", path.display())]
    Create { path: PathBuf, source: io::Error },
    #[error("remove {}: {source}", path.display())]
    Remove { path: PathBuf, source: io::Error },
    #[error("{}: expected a process id per line, found {line:?}", path.display())]
    Pid { path: PathBuf, line: String },
    #[error("send {signal} to process {pid}: {source}")]
    Kill {
        pid: Pid,
        signal: Signal,
        source: Errno,
    },
}

type Result<T> = std::result::Result<T, CgroupError>;

/// The cgroup directories a container joins: v1: (mount-point name like "memory" or
/// "cpu,cpuacct", absolute dir) per hierarchy; unified: the absolute cgroup2 dir, if any.
/// `supervisor`: the leaf a systemd service's supervisor moved into, which the container does
/// not join.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CgroupMembership {
    pub v1: Vec<(String, PathBuf)>,
    pub unified: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supervisor: Option<PathBuf>,
}

impl CgroupMembership {
    /// Every directory to join, v1 hierarchies first.
    pub fn dirs(&self) -> impl Iterator<Item = &Path> {
        self.v1
            .iter()
            .map(|(_, dir)| dir.as_path())
            .chain(self.unified.as_deref())
    }
}

/// A container's cgroup in every hierarchy it joined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Cgroups {
    membership: CgroupMembership,
}

/// How long [`Cgroups::remove`] waits for killed processes to leave a cgroup.
const REMOVE_TIMEOUT: Duration = Duration::from_secs(2);

impl Cgroups {
    /// Creates the container's cgroup `name` under `parent` in each hierarchy the host's layout
    /// and `resources` call for, enables the needed cgroup2 controllers and writes the limits;
    /// under a systemd service on a cgroup2-only host, moves this process into the service's
    /// supervisor leaf first. `parent` is relative to each hierarchy's root (a leading `/`, as in
    /// `/proc/self/cgroup`, is allowed). On failure, the container's cgroups created so far are
    /// removed again.
    pub fn create(
        parent: &Parent,
        name: &str,
        resources: Option<&LinuxResources>,
    ) -> Result<Cgroups> {
        let relative = relative_dir(parent.cgroup(), name)?;
        let checked_parent = relative.parent().unwrap_or(Path::new(""));
        let mut layout = detect()?;
        let placement = steps::place(&layout, parent, checked_parent, name);
        if let (Some(service), Some(unified)) = (&placement.service, &mut layout.unified) {
            // What systemd delegated to the service, not what the root offers.
            unified.controllers = controllers(&unified.mount_point.join(service))?;
        }
        let plan = plan::plan(&layout, resources)?;
        let mut cgroups = Cgroups {
            membership: CgroupMembership::default(),
        };
        match steps::steps(&plan, &placement)
            .iter()
            .try_for_each(|step| cgroups.run(step))
        {
            Ok(()) => Ok(cgroups),
            Err(error) => {
                // The first error is the one to report; a failing cleanup only leaves empty dirs.
                let _ = cgroups.remove();
                Err(error)
            }
        }
    }

    /// The cgroups of a container created earlier, from its saved membership.
    pub fn open(saved: CgroupMembership) -> Cgroups {
        Cgroups { membership: saved }
    }

    pub fn membership(&self) -> &CgroupMembership {
        &self.membership
    }

    /// Carries out one step, noting each directory made for the container (and the leaf this
    /// process moved into) as soon as it exists.
    fn run(&mut self, step: &Step) -> Result<()> {
        match step {
            Step::MakeShared(dir) => create_parents(dir),
            Step::MakeOwn { dir, hierarchy } => {
                create_dir(dir)?;
                match hierarchy {
                    Hierarchy::Unified => self.membership.unified = Some(dir.clone()),
                    Hierarchy::V1(name) => self.membership.v1.push((name.clone(), dir.clone())),
                }
                Ok(())
            }
            Step::Enable { dir, controllers } => enable(dir, controllers),
            Step::MoveSelf(dir) => {
                write_file(&dir.join("cgroup.procs"), &std::process::id().to_string())?;
                self.membership.supervisor = Some(dir.clone());
                Ok(())
            }
            Step::Write { dir, write } => write_one(dir, write),
        }
    }

    fn dirs(&self) -> impl Iterator<Item = &Path> {
        let v1 = self.membership.v1.iter().map(|(_, dir)| dir.as_path());
        self.membership.unified.as_deref().into_iter().chain(v1)
    }

    /// Every process in the container's cgroups (nested ones included), sorted; none once the
    /// cgroups are gone.
    pub fn procs(&self) -> Result<Vec<Pid>> {
        let mut pids = BTreeSet::new();
        for dir in self.dirs() {
            for cgroup in subtree(dir)? {
                let path = cgroup.join("cgroup.procs");
                let Some(text) = read_if_exists(&path)? else {
                    continue;
                };
                for line in text.lines() {
                    let pid = line.trim().parse().map_err(|_| CgroupError::Pid {
                        path: path.clone(),
                        line: line.to_owned(),
                    })?;
                    pids.insert(pid);
                }
            }
        }
        Ok(pids.into_iter().map(Pid::from_raw).collect())
    }

    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.procs()?.is_empty())
    }

    /// Sends `signal` to every process in the cgroups, again to processes forked meanwhile, until
    /// a listing shows no new one. SIGKILL on cgroup2 also writes `cgroup.kill` (Linux 5.14),
    /// which kills the whole subtree at once.
    pub fn kill_all(&self, signal: Signal) -> Result<()> {
        if signal == Signal::SIGKILL {
            let kill_file = self
                .membership
                .unified
                .as_ref()
                .map(|dir| dir.join("cgroup.kill"));
            if let Some(path) = kill_file.filter(|path| path.exists()) {
                write_file(&path, "1")?;
            }
        }
        let mut signalled = BTreeSet::new();
        loop {
            let fresh: Vec<Pid> = self
                .procs()?
                .into_iter()
                .filter(|pid| !signalled.contains(pid))
                .collect();
            if fresh.is_empty() {
                return Ok(());
            }
            for pid in fresh {
                match signal::kill(pid, signal) {
                    Ok(()) | Err(Errno::ESRCH) => {}
                    Err(source) => {
                        return Err(CgroupError::Kill {
                            pid,
                            signal,
                            source,
                        })
                    }
                }
                signalled.insert(pid);
            }
        }
    }

    /// Whether the kernel's OOM killer killed a process of the container: v1
    /// `memory.oom_control`'s `oom_kill`, v2 `memory.events`' `oom_kill`. `false` where the
    /// container has no memory cgroup or it is gone.
    pub fn oom_killed(&self) -> Result<bool> {
        let v1 = self
            .membership
            .v1
            .iter()
            .map(|(_, dir)| dir.join("memory.oom_control"));
        let v2 = self
            .membership
            .unified
            .iter()
            .map(|dir| dir.join("memory.events"));
        for path in v1.chain(v2) {
            if let Some(text) = read_if_exists(&path)? {
                return Ok(flat_keyed(&text, "oom_kill").is_some_and(|kills| kills > 0));
            }
        }
        Ok(false)
    }

    /// Removes every directory of the container's cgroups (nested ones first), waiting up to
    /// two seconds for killed processes to leave. Directories already gone are fine.
    pub fn remove(&self) -> Result<()> {
        for dir in self.dirs() {
            for cgroup in subtree(dir)?.into_iter().rev() {
                remove_dir(&cgroup)?;
            }
        }
        Ok(())
    }

    /// Removes the leaf a systemd service's supervisor moved into, once it is empty: while the
    /// supervisor still lives in it (EBUSY) it stays, for systemd to remove with the service's
    /// cgroup. One already gone is fine.
    pub fn remove_supervisor_leaf(&self) -> Result<()> {
        let Some(dir) = &self.membership.supervisor else {
            return Ok(());
        };
        match fs::remove_dir(dir) {
            Err(error)
                if error.kind() != io::ErrorKind::NotFound
                    && error.raw_os_error() != Some(Errno::EBUSY as i32) =>
            {
                Err(CgroupError::Remove {
                    path: dir.clone(),
                    source: error,
                })
            }
            _ => Ok(()),
        }
    }
}

/// `<parent>/<name>` as a relative path, refusing anything that would leave the hierarchy.
fn relative_dir(parent: &str, name: &str) -> Result<PathBuf> {
    let invalid = |what, value: &str, reason| CgroupError::InvalidPath {
        what,
        value: value.to_owned(),
        reason,
    };
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(invalid(
            "name",
            name,
            "expected one non-empty path component",
        ));
    }
    let parent_path = Path::new(parent.trim_start_matches('/'));
    if !parent_path
        .components()
        .all(|component| matches!(component, Component::Normal(_)))
    {
        return Err(invalid(
            "parent",
            parent,
            "expected a path below the cgroup root",
        ));
    }
    Ok(parent_path.join(name))
}

/// The host's cgroup layout: `/proc/self/mountinfo` and cgroup2's `cgroup.controllers`.
fn detect() -> Result<Layout> {
    let mountinfo = Path::new("/proc/self/mountinfo");
    let text = fs::read_to_string(mountinfo).map_err(|source| CgroupError::Read {
        path: mountinfo.to_owned(),
        source,
    })?;
    let mut layout = parse_mountinfo(&text);
    if let Some(unified) = &mut layout.unified {
        unified.controllers = controllers(&unified.mount_point)?;
    }
    Ok(layout)
}

/// The controllers a cgroup2 directory offers its children (`cgroup.controllers`).
fn controllers(dir: &Path) -> Result<Vec<String>> {
    let path = dir.join("cgroup.controllers");
    let text = fs::read_to_string(&path).map_err(|source| CgroupError::Read { path, source })?;
    Ok(text.split_whitespace().map(str::to_owned).collect())
}

/// Enables the `controllers` not yet enabled in `dir`'s `cgroup.subtree_control`.
fn enable(dir: &Path, controllers: &[&str]) -> Result<()> {
    if controllers.is_empty() {
        return Ok(());
    }
    let path = dir.join("cgroup.subtree_control");
    let text = fs::read_to_string(&path).map_err(|source| CgroupError::Read {
        path: path.clone(),
        source,
    })?;
    let enabled: Vec<&str> = text.split_whitespace().collect();
    let missing: Vec<String> = controllers
        .iter()
        .filter(|controller| !enabled.contains(controller))
        .map(|controller| format!("+{controller}"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    write_file(&path, &missing.join(" "))
}

/// Creates `dir`, which must not exist yet: a container's cgroup is its own.
fn create_dir(dir: &Path) -> Result<()> {
    fs::create_dir(dir).map_err(|source| CgroupError::Create {
        path: dir.to_owned(),
        source,
    })
}

/// Creates `dir` and its missing parents; existing ones are shared with other containers.
fn create_parents(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(|source| CgroupError::Create {
        path: dir.to_owned(),
        source,
    })
}

fn write_one(dir: &Path, write: &Write) -> Result<()> {
    let path = dir.join(write.file);
    if write.if_present && !path.exists() {
        return Ok(());
    }
    write_file(&path, &write.value)
}

/// One `write(2)` of `value`, as the kernel expects for cgroup files.
fn write_file(path: &Path, value: &str) -> Result<()> {
    fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut file| file.write_all(value.as_bytes()))
        .map_err(|source| CgroupError::Write {
            path: path.to_owned(),
            value: value.to_owned(),
            source,
        })
}

fn read_if_exists(path: &Path) -> Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CgroupError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

/// `dir` and every cgroup below it, parents before children; nothing if `dir` is gone.
fn subtree(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(cgroup) = pending.pop() {
        let entries = match fs::read_dir(&cgroup) {
            Ok(entries) => entries,
            Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(CgroupError::Read {
                    path: cgroup,
                    source,
                })
            }
        };
        for entry in entries {
            let entry = entry.map_err(|source| CgroupError::Read {
                path: cgroup.clone(),
                source,
            })?;
            if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                pending.push(entry.path());
            }
        }
        found.push(cgroup);
    }
    Ok(found)
}

/// rmdir, retrying while the cgroup still holds exiting processes (EBUSY).
fn remove_dir(dir: &Path) -> Result<()> {
    let deadline = Instant::now() + REMOVE_TIMEOUT;
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(error)
                if error.raw_os_error() == Some(Errno::EBUSY as i32)
                    && Instant::now() < deadline =>
            {
                thread::sleep(Duration::from_millis(10));
            }
            Err(source) => {
                return Err(CgroupError::Remove {
                    path: dir.to_owned(),
                    source,
                })
            }
        }
    }
}

/// The value of `key` in a flat-keyed cgroup file (`key value` per line).
fn flat_keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (name, value) = line.split_once(' ')?;
        (name == key).then(|| value.trim().parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_paths_stay_below_the_root() {
        let ok = [
            ("flotilla", "abc", "flotilla/abc"),
            (
                "/system.slice/flotilla.service",
                "abc",
                "system.slice/flotilla.service/abc",
            ),
            ("", "abc", "abc"),
        ];
        for (parent, name, expected) in ok {
            assert_eq!(
                relative_dir(parent, name).unwrap(),
                Path::new(expected),
                "{parent} {name}"
            );
        }
        let refused = [
            (
                "flotilla",
                "",
                "invalid cgroup name \"\": expected one non-empty path component",
            ),
            (
                "flotilla",
                "a/b",
                "invalid cgroup name \"a/b\": expected one non-empty path component",
            ),
            (
                "flotilla",
                "..",
                "invalid cgroup name \"..\": expected one non-empty path component",
            ),
            (
                "../etc",
                "abc",
                "invalid cgroup parent \"../etc\": expected a path below the cgroup root",
            ),
            (
                "a/../b",
                "abc",
                "invalid cgroup parent \"a/../b\": expected a path below the cgroup root",
            ),
        ];
        for (parent, name, message) in refused {
            assert_eq!(relative_dir(parent, name).unwrap_err().to_string(), message);
        }
    }

    #[test]
    fn oom_kill_counters_are_read_by_key() {
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n";
        let v2 = "low 0\nhigh 0\nmax 31\noom 1\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(flat_keyed(v1, "oom_kill"), Some(2));
        assert_eq!(flat_keyed(v2, "oom_kill"), Some(1));
        assert_eq!(flat_keyed(v2, "oom"), Some(1));
        assert_eq!(flat_keyed("oom_kill_disable 0\n", "oom_kill"), None);
    }
}
