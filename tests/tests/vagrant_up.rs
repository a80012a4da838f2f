//! `vagrant up` of the repository's `vagrant/Vagrantfile` on the host image's box, with Debian's
//! `vagrant` and `vagrant-libvirt` and a libvirt daemon of the test's own (pid, network and mount
//! namespaces of its own: see `flotilla_tests::libvirt`): `vagrant box add`, `NUM_INSTANCES=3
//! vagrant up`, `vagrant ssh core-01 -c 'flotctl list-machines'` lists every machine with the
//! metadata the Vagrantfile gave it, `vagrant destroy -f` removes the machines, and when the
//! daemon stops nothing of it is left: no process, no mount, no network.
//!
//! The box chooses libvirt's domain type (kvm, or qemu's TCG where KVM does not work, as
//! `os_boot.rs` does); `vagrant` runs in the daemon's namespaces with a `VAGRANT_HOME` of its own,
//! on a copy of `vagrant/` (the Vagrantfile writes the config drives next to itself).

use flotilla_tests::libvirt::{processes_in, Libvirtd};
use flotilla_tests::os_image::{self, run, workspace};
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Machines of the cluster: the three etcd members of the Vagrantfile.
const INSTANCES: usize = 3;

/// How long the cluster may take to list every machine once `vagrant up` returned.
const CLUSTER_TIMEOUT: Duration = Duration::from_secs(600);

/// `vagrant ARGS` in `project`, inside the daemon's namespaces (`VAGRANT_CWD`: entering a mount
/// namespace starts at its `/`).
fn vagrant(daemon: &Libvirtd, project: &Path, args: &[&str]) -> Command {
    let mut command = daemon.command("vagrant");
    command
        .args(args)
        .env("VAGRANT_CWD", project)
        .env("NUM_INSTANCES", INSTANCES.to_string());
    command
}

/// A copy of the repository's `vagrant/` (Vagrantfile and the scripts it runs).
fn project() -> tempfile::TempDir {
    // vagrant-libvirt names the domains and the private network after the directory
    let dir = tempfile::Builder::new()
        .prefix("flotilla-vagrant-")
        .tempdir()
        .expect("temporary directory");
    for file in ["Vagrantfile", "node-config.sh", "config-drive.sh"] {
        fs::copy(
            workspace().join("vagrant").join(file),
            dir.path().join(file),
        )
        .unwrap_or_else(|e| panic!("copy vagrant/{file}: {e}"));
    }
    dir
}

/// `flotctl list-machines` on core-01 once it lists every machine (etcd forms after the VMs
/// boot); panics with the last answer on timeout.
fn machines_listed(daemon: &Libvirtd, project: &Path) -> String {
    let started = Instant::now();
    loop {
        let output = vagrant(
            daemon,
            project,
            &["ssh", "core-01", "-c", "flotctl list-machines"],
        )
        .output()
        .expect("vagrant ssh runs");
        let listed = String::from_utf8_lossy(&output.stdout).into_owned();
        if output.status.success() && listed.matches("10.240.8.10").count() == INSTANCES {
            return listed;
        }
        assert!(
            started.elapsed() < CLUSTER_TIMEOUT,
            "core-01 did not list {INSTANCES} machines within {CLUSTER_TIMEOUT:?} ({}):\n{listed}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        std::thread::sleep(Duration::from_secs(5));
    }
}

#[test]
fn vagrant_up_brings_up_a_cluster_that_lists_every_machine() {
    let flotilla_box = os_image::output().join("flotilla.box");
    let project = project();
    let daemon = Libvirtd::start();
    let routes = run(daemon.command("ip").args(["route", "show", "default"]));
    assert_eq!(routes, "", "the daemon's network namespace has a way out");

    run(vagrant(
        &daemon,
        project.path(),
        &["box", "add", "--name", "flotilla"],
    )
    .arg(&flotilla_box));
    let started = Instant::now();
    let up = vagrant(&daemon, project.path(), &["up"])
        .output()
        .expect("vagrant runs");
    let up_log = String::from_utf8_lossy(&up.stdout);
    assert!(
        up.status.success(),
        "vagrant up: {}\n{up_log}\n{}\nlibvirtd:\n{}",
        up.status,
        String::from_utf8_lossy(&up.stderr),
        daemon.log()
    );
    eprintln!(
        "vagrant_up: vagrant up of {INSTANCES} machines in {:.1}s",
        started.elapsed().as_secs_f64()
    );

    let listed = machines_listed(&daemon, project.path());
    eprintln!(
        "vagrant_up: {INSTANCES} machines listed {:.1}s after vagrant up started:\n{listed}",
        started.elapsed().as_secs_f64()
    );
    for (i, disk) in [(1, "ssd"), (2, "hdd"), (3, "hdd")] {
        let ip = format!("10.240.8.{}", 100 + i);
        let line = listed
            .lines()
            .find(|line| line.contains(&ip))
            .unwrap_or_else(|| panic!("{ip} is not in flotctl list-machines:\n{listed}"));
        assert!(
            line.contains(&format!("disk={disk},name=core-0{i},role=etcd")),
            "{line}"
        );
    }
    let destroyed = Instant::now();
    run(&mut vagrant(&daemon, project.path(), &["destroy", "-f"]));
    eprintln!(
        "vagrant_up: vagrant destroy -f in {:.1}s",
        destroyed.elapsed().as_secs_f64()
    );
    let status = run(&mut vagrant(&daemon, project.path(), &["status"]));
    assert_eq!(
        status.matches("not created").count(),
        INSTANCES,
        "vagrant status after destroy:\n{status}"
    );
    let left: Vec<String> = daemon
        .processes()
        .into_iter()
        .map(|(_, comm)| comm)
        .filter(|comm| comm.starts_with("qemu"))
        .collect();
    assert!(left.is_empty(), "qemu left after vagrant destroy: {left:?}");

    let ns = daemon.pid_namespace();
    let dir = daemon.dir().to_owned();
    drop(daemon);
    assert_eq!(processes_in(ns), Vec::new(), "processes left by libvirtd");
    let mounts = fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(
        !mounts.contains(&*dir.to_string_lossy()),
        "mounts of the daemon are left:\n{mounts}"
    );
    assert!(!dir.exists(), "{} is left", dir.display());
}
