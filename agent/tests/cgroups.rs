//! `runtime::cgroups` on the real host (root, hybrid: memory, pids and cpu on v1, cgroup2 at
//! /sys/fs/cgroup/unified): limits land in the kernel's files, processes are listed, killed and
//! OOM-killed, and the cgroups are removed; a systemd service's supervisor leaf is removed once
//! its supervisor left it.
//!
//! Every test works below its own parent `flotilla-test-<pid>-<test>` in each hierarchy, which a
//! guard kills and removes even when the test fails.

use std::fs;
use std::io::Write as _;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use agent::runtime::cgroups::layout::parse_mountinfo;
use agent::runtime::cgroups::{CgroupMembership, Cgroups, Parent};
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use oci_spec::runtime::{
    LinuxCpuBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResources, LinuxResourcesBuilder,
};

/// A test's parent cgroup in every hierarchy; dropping it kills and removes all below.
struct TestParent {
    name: String,
}

impl TestParent {
    fn new(test: &str) -> TestParent {
        TestParent {
            name: format!("flotilla-test-{}-{test}", std::process::id()),
        }
    }
}

impl Drop for TestParent {
    fn drop(&mut self) {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
        let layout = parse_mountinfo(&mountinfo);
        let everything = Cgroups::open(CgroupMembership {
            v1: layout
                .v1
                .iter()
                .map(|hierarchy| (String::new(), hierarchy.mount_point.join(&self.name)))
                .collect(),
            unified: layout
                .unified
                .map(|unified| unified.mount_point.join(&self.name)),
            supervisor: None,
        });
        let killed = everything.kill_all(Signal::SIGKILL);
        let removed = everything.remove();
        if !std::thread::panicking() {
            killed.unwrap();
            removed.unwrap();
        }
    }
}

fn resources(memory: i64, cpu_quota: Option<i64>, pids: Option<i64>) -> LinuxResources {
    let mut resources = LinuxResourcesBuilder::default().memory(
        // The engine's spec: docker's default swap allowance is as much again as the memory.
        LinuxMemoryBuilder::default()
            .limit(memory)
            .swap(memory * 2)
            .build()
            .unwrap(),
    );
    if let Some(quota) = cpu_quota {
        let cpu = LinuxCpuBuilder::default()
            .quota(quota)
            .period(100_000_u64)
            .build()
            .unwrap();
        resources = resources.cpu(cpu);
    }
    if let Some(limit) = pids {
        resources = resources.pids(LinuxPidsBuilder::default().limit(limit).build().unwrap());
    }
    resources.build().unwrap()
}

/// The directory of the v1 hierarchy mounted as `name`.
fn v1_dir<'a>(membership: &'a CgroupMembership, name: &str) -> &'a Path {
    let found = membership.v1.iter().find(|(mount, _)| mount == name);
    &found
        .unwrap_or_else(|| panic!("no {name} hierarchy in {membership:?}"))
        .1
}

fn read(dir: &Path, file: &str) -> String {
    fs::read_to_string(dir.join(file))
        .unwrap()
        .trim()
        .to_owned()
}

/// Starts `sh -c script` in every cgroup of `membership`, as the runtime does with a container's
/// init: the shell waits for a line on its stdin until it has been moved in.
fn start_in(membership: &CgroupMembership, script: &str) -> Child {
    let mut child = Command::new("sh")
        .args(["-c", &format!("read go; {script}")])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let dirs = membership
        .v1
        .iter()
        .map(|(_, dir)| dir)
        .chain(&membership.unified);
    for dir in dirs {
        fs::write(dir.join("cgroup.procs"), child.id().to_string()).unwrap();
    }
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    child
}

fn all_dirs(membership: &CgroupMembership) -> Vec<PathBuf> {
    let v1 = membership.v1.iter().map(|(_, dir)| dir.clone());
    v1.chain(membership.unified.clone()).collect()
}

#[test]
fn limits_are_written_and_processes_tracked_killed_and_removed() {
    let parent = TestParent::new("limits");
    let resources = resources(64 << 20, Some(50_000), Some(100));
    let cgroups = Cgroups::create(
        &Parent::Shared(parent.name.clone()),
        "abc",
        Some(&resources),
    )
    .unwrap();
    let membership = cgroups.membership().clone();

    let mut names: Vec<&str> = membership
        .v1
        .iter()
        .map(|(name, _)| name.as_str())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["cpu", "memory", "pids"]);
    let unified = membership
        .unified
        .clone()
        .expect("the hybrid cgroup2 is joined too");
    assert_eq!(
        unified,
        Path::new("/sys/fs/cgroup/unified")
            .join(&parent.name)
            .join("abc")
    );
    let memory = v1_dir(&membership, "memory");
    assert_eq!(
        memory,
        Path::new("/sys/fs/cgroup/memory")
            .join(&parent.name)
            .join("abc")
    );
    assert_eq!(read(memory, "memory.limit_in_bytes"), "67108864");
    assert_eq!(read(memory, "memory.memsw.limit_in_bytes"), "134217728");
    let cpu = v1_dir(&membership, "cpu");
    assert_eq!(read(cpu, "cpu.cfs_period_us"), "100000");
    assert_eq!(read(cpu, "cpu.cfs_quota_us"), "50000");
    assert_eq!(read(v1_dir(&membership, "pids"), "pids.max"), "100");

    let again = Cgroups::create(&Parent::Shared(parent.name.clone()), "abc", None)
        .unwrap_err()
        .to_string();
    let unified_display = unified.display();
    assert!(
        again.starts_with(&format!("create {unified_display}: ")),
        "{again}"
    );
    assert!(
        unified.is_dir(),
        "a failed create leaves an existing cgroup alone"
    );

    assert!(cgroups.is_empty().unwrap());
    let mut child = start_in(&membership, "sleep 30 & sleep 30 & wait");
    let shell = Pid::from_raw(i32::try_from(child.id()).unwrap());
    let wait_for_three = std::time::Instant::now();
    while cgroups.procs().unwrap().len() < 3 {
        assert!(
            wait_for_three.elapsed().as_secs() < 5,
            "{:?}",
            cgroups.procs()
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let procs = cgroups.procs().unwrap();
    assert!(procs.contains(&shell), "{procs:?} lacks the shell {shell}");
    assert!(!cgroups.is_empty().unwrap());

    // A later process finds the cgroups from what the supervisor saved.
    let saved = serde_json::to_string(&cgroups).unwrap();
    let reopened: Cgroups = serde_json::from_str(&saved).unwrap();
    assert_eq!(reopened.membership(), &membership);
    reopened.kill_all(Signal::SIGKILL).unwrap();
    assert_eq!(child.wait().unwrap().signal(), Some(Signal::SIGKILL as i32));
    reopened.remove().unwrap();
    for dir in all_dirs(&membership) {
        assert!(!dir.exists(), "{} still exists", dir.display());
    }
    assert!(reopened.procs().unwrap().is_empty());
    reopened.remove().unwrap();
    assert!(!reopened.oom_killed().unwrap());
}

#[test]
fn a_process_over_its_memory_limit_is_oom_killed() {
    let parent = TestParent::new("oom");
    let resources = resources(8 << 20, None, None);
    let cgroups = Cgroups::create(
        &Parent::Shared(parent.name.clone()),
        "hog",
        Some(&resources),
    )
    .unwrap();
    assert!(!cgroups.oom_killed().unwrap());
    let mut child = start_in(
        cgroups.membership(),
        r#"x=$(head -c 64m /dev/zero | tr "\0" a)"#,
    );
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(Signal::SIGKILL as i32), "{status}");
    assert!(cgroups.oom_killed().unwrap());
    cgroups.kill_all(Signal::SIGKILL).unwrap();
    cgroups.remove().unwrap();
    assert!(!v1_dir(cgroups.membership(), "memory").exists());
}

#[test]
fn without_limits_a_container_is_still_tracked_for_kills_and_oom() {
    let parent = TestParent::new("track");
    let cgroups = Cgroups::create(
        &Parent::Shared(format!("/{}/nested", parent.name)),
        "plain",
        None,
    )
    .unwrap();
    let membership = cgroups.membership();
    let memory = v1_dir(membership, "memory");
    assert_eq!(
        memory,
        Path::new("/sys/fs/cgroup/memory")
            .join(&parent.name)
            .join("nested/plain")
    );
    assert!(memory.join("memory.oom_control").exists());
    let mut child = start_in(membership, "exec sleep 30");
    cgroups.kill_all(Signal::SIGTERM).unwrap();
    assert_eq!(child.wait().unwrap().signal(), Some(Signal::SIGTERM as i32));
    cgroups.remove().unwrap();
    for dir in all_dirs(membership) {
        assert!(!dir.exists(), "{} still exists", dir.display());
        assert!(
            dir.parent().unwrap().is_dir(),
            "the parent {} stays",
            dir.display()
        );
    }
}

#[test]
fn a_value_the_kernel_refuses_is_named_and_nothing_is_left_behind() {
    let parent = TestParent::new("refused");
    // memory + swap below the memory limit: the kernel answers EINVAL.
    let memory = LinuxMemoryBuilder::default()
        .limit(64 << 20)
        .swap(32 << 20)
        .build()
        .unwrap();
    let resources = LinuxResourcesBuilder::default()
        .memory(memory)
        .build()
        .unwrap();
    let error = Cgroups::create(
        &Parent::Shared(parent.name.clone()),
        "bad",
        Some(&resources),
    )
    .unwrap_err();
    let dir = Path::new("/sys/fs/cgroup/memory")
        .join(&parent.name)
        .join("bad");
    assert_eq!(
        error.to_string(),
        format!(
            "write \"33554432\" to {}/memory.memsw.limit_in_bytes: Invalid argument (os error 22)",
            dir.display()
        )
    );
    assert!(!dir.exists());
    let unified = Path::new("/sys/fs/cgroup/unified")
        .join(&parent.name)
        .join("bad");
    assert!(
        !unified.exists(),
        "the cgroup2 dir created first is removed again"
    );
}

#[test]
fn a_supervisor_leaf_is_removed_only_once_its_supervisor_left() {
    let parent = TestParent::new("leaf");
    let service = Path::new("/sys/fs/cgroup/unified").join(&parent.name);
    let leaf = service.join("supervisor");
    fs::create_dir_all(&leaf).unwrap();
    let cgroups = Cgroups::open(CgroupMembership {
        supervisor: Some(leaf.clone()),
        ..CgroupMembership::default()
    });
    let mut supervisor = start_in(
        &CgroupMembership {
            unified: Some(leaf.clone()),
            ..CgroupMembership::default()
        },
        "exec sleep 30",
    );
    cgroups.remove_supervisor_leaf().unwrap();
    assert!(leaf.is_dir(), "the leaf stays while its supervisor lives");
    assert!(
        cgroups.procs().unwrap().is_empty(),
        "the supervisor is not the container's: it is neither listed nor killed with it"
    );
    supervisor.kill().unwrap();
    supervisor.wait().unwrap();
    cgroups.remove_supervisor_leaf().unwrap();
    assert!(!leaf.exists());
    cgroups.remove_supervisor_leaf().unwrap();
    // The record's JSON of a run without a leaf has no such key.
    assert_eq!(
        serde_json::to_value(Cgroups::open(CgroupMembership::default())).unwrap(),
        serde_json::json!({"v1": [], "unified": null})
    );
    assert_eq!(
        serde_json::from_value::<CgroupMembership>(serde_json::json!({"v1": [], "unified": null}))
            .unwrap(),
        CgroupMembership::default()
    );
}
