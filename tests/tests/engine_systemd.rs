//! The engine under a real systemd (a node booted in namespaces): a `[Container]` unit, expanded
//! by the generator, started with `systemctl start`: the container's output reaches the node's
//! journal with docker's journald fields, `flotilla logs` reads it back, `systemctl stop` stops
//! the container through its stop signal and the container's exit code is the unit's result.
//! The node's cgroup2 is the only hierarchy there, so the supervisor moves into the service's
//! `supervisor` leaf and the container gets the sibling cgroup; systemd removes both on stop.

use std::time::{Duration, Instant};

use flotilla_tests::flotilla::busybox_tarball;
use flotilla_tests::{built_binary, Node, NodeConfig};
use serde_json::Value;

/// Says hello on both streams, then waits for SIGTERM and exits 3 on it.
const SERVE: &str = "#!/bin/sh\n\
    echo hello-out\n\
    echo hello-err >&2\n\
    trap 'echo got-term; exit 3' TERM\n\
    while :; do sleep 0.1; done\n";

const UNIT: &str = "[Unit]\nDescription=web in a container\n\
    [Container]\nImage=bb\nName=web\nExec=/serve.sh\n";

fn eventually(node: &Node, what: &str, check: impl Fn(&Node) -> bool) {
    let until = Instant::now() + Duration::from_secs(20);
    while !check(node) {
        assert!(Instant::now() < until, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn prop(node: &Node, unit: &str, name: &str) -> String {
    node.exec_ok(&["systemctl", "show", "-p", name, "--value", unit])
        .unwrap()
        .trim()
        .to_owned()
}

/// `systemctl start web.service`; a failure shows the unit's journal.
fn start(node: &Node) {
    if let Err(error) = node.exec_ok(&["systemctl", "start", "web.service"]) {
        let journal = node
            .exec(&["journalctl", "--no-pager", "-u", "web.service"])
            .unwrap();
        panic!("{error}\n{}", String::from_utf8_lossy(&journal.stdout));
    }
}

/// The journal entries of container `web` as JSON objects.
fn entries(node: &Node) -> Vec<Value> {
    node.exec_ok(&["journalctl", "-o", "json", "--all", "CONTAINER_NAME=web"])
        .unwrap()
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

/// A node with the generator, `flotilla`, the image `bb` (with `/serve.sh`) and the unit
/// `web.container` installed.
fn node_with_web_unit(name: &str) -> Node {
    let scratch = tempfile::TempDir::new().unwrap();
    let tarball = busybox_tarball(&scratch.path().join("rootfs"), &[("/serve.sh", SERVE)]);
    let node = Node::boot(NodeConfig::new(name)).expect("node boots");
    node.install_generator(&built_binary("flotilla-generator"), "flotilla-generator")
        .unwrap();
    node.install(&built_binary("flotilla"), "/usr/bin/flotilla", 0o755)
        .unwrap();
    node.install(&tarball, "/var/tmp/bb.tar", 0o644).unwrap();
    // The node's /var is an overlay, and overlayfs cannot take its upper directory from another
    // overlay: the data root gets a file system of its own, as on a real host.
    node.exec_ok(&["mkdir", "-p", "/var/lib/flotilla"]).unwrap();
    node.exec_ok(&["mount", "-t", "tmpfs", "tmpfs", "/var/lib/flotilla"])
        .unwrap();
    node.exec_ok(&[
        "flotilla",
        "import",
        "--change",
        "CMD [\"sh\"]",
        "/var/tmp/bb.tar",
        "bb",
    ])
    .unwrap();
    node.write("/etc/flotilla/units/web.container", UNIT)
        .unwrap();
    node.exec_ok(&["systemctl", "daemon-reload"]).unwrap();
    node
}

#[test]
fn a_container_unit_logs_to_the_journal_stops_cleanly_and_reports_its_exit_code() {
    let node = node_with_web_unit("flotilla-engine-test");

    // Type=notify: `start` returns once the supervisor said READY=1, so the container runs.
    start(&node);
    assert_eq!(prop(&node, "web.service", "ActiveState"), "active");
    let inspect: Value =
        serde_json::from_str(&node.exec_ok(&["flotilla", "inspect", "web"]).unwrap()).unwrap();
    let id = inspect[0]["Id"].as_str().unwrap().to_owned();
    assert_eq!(inspect[0]["State"]["Status"], "running");
    assert_eq!(inspect[0]["HostConfig"]["LogConfig"]["Type"], "journald");
    // The supervisor is the service's main process.
    assert_eq!(
        prop(&node, "web.service", "MainPID"),
        inspect[0]["Flotilla"]["Supervisor"]["Pid"].to_string()
    );

    eventually(&node, "both lines in the journal", |node| {
        entries(node).len() >= 2
    });
    let entries = entries(&node);
    let line = |message: &str| {
        entries
            .iter()
            .find(|e| e["MESSAGE"] == message)
            .unwrap_or_else(|| panic!("{message} in {entries:#?}"))
            .clone()
    };
    let out = line("hello-out");
    assert_eq!(out["PRIORITY"], "6");
    assert_eq!(line("hello-err")["PRIORITY"], "3");
    assert_eq!(out["CONTAINER_ID"], &id[..12]);
    assert_eq!(out["CONTAINER_ID_FULL"], id.as_str());
    assert_eq!(out["CONTAINER_NAME"], "web");
    assert_eq!(out["CONTAINER_TAG"], &id[..12]);
    assert_eq!(out["SYSLOG_IDENTIFIER"], &id[..12]);
    assert_eq!(out["IMAGE_NAME"], "bb");

    // `flotilla logs` reads the journal back, by stream.
    let logs = node.exec(&["flotilla", "logs", "web"]).unwrap();
    assert_eq!(String::from_utf8_lossy(&logs.stdout), "hello-out\n");
    assert_eq!(String::from_utf8_lossy(&logs.stderr), "hello-err\n");

    // `systemctl stop`: SIGTERM reaches the container (its trap says so), it exits 3, and that
    // is the service's result.
    let started = Instant::now();
    node.exec_ok(&["systemctl", "stop", "web.service"]).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "stopped within the timeout"
    );
    assert_eq!(prop(&node, "web.service", "ExecMainStatus"), "3");
    assert_eq!(prop(&node, "web.service", "Result"), "exit-code");
    let logs = node.exec_ok(&["flotilla", "logs", "web"]).unwrap();
    assert!(logs.contains("got-term"), "{logs}");
    let inspect: Value =
        serde_json::from_str(&node.exec_ok(&["flotilla", "inspect", "web"]).unwrap()).unwrap();
    assert_eq!(inspect[0]["State"]["Status"], "exited");
    assert_eq!(inspect[0]["State"]["ExitCode"], 3);

    // Started again: run-or-start reuses the same container.
    start(&node);
    let again: Value =
        serde_json::from_str(&node.exec_ok(&["flotilla", "inspect", "web"]).unwrap()).unwrap();
    assert_eq!(again[0]["Id"], id.as_str());
    assert_eq!(again[0]["State"]["Status"], "running");
    node.exec_ok(&["systemctl", "stop", "web.service"]).unwrap();
}

/// The cgroup2 path of process `pid` in the node (`/proc/PID/cgroup`'s `0::` line).
fn cgroup_of(node: &Node, pid: &str) -> String {
    let text = node
        .exec_ok(&["cat", &format!("/proc/{pid}/cgroup")])
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix("0::"))
        .unwrap_or_else(|| panic!("no cgroup2 line in {text}"))
        .to_owned()
}

#[test]
fn under_systemd_the_supervisor_and_the_container_get_sibling_cgroups() {
    let node = node_with_web_unit("flotilla-engine-cgroups");
    let unit_cgroup = "/system.slice/web.service";
    start(&node);
    let inspect: Value =
        serde_json::from_str(&node.exec_ok(&["flotilla", "inspect", "web"]).unwrap()).unwrap();
    let id = inspect[0]["Id"].as_str().unwrap().to_owned();
    let supervisor = prop(&node, "web.service", "MainPID");
    let init = inspect[0]["State"]["Pid"].to_string();
    assert_eq!(
        cgroup_of(&node, &supervisor),
        format!("{unit_cgroup}/supervisor")
    );
    assert_eq!(cgroup_of(&node, &init), format!("{unit_cgroup}/{id}"));
    // Nothing is left in the service's own cgroup, as cgroup2 wants before it enables
    // controllers for the ones below.
    let dir = format!("/sys/fs/cgroup{unit_cgroup}");
    assert_eq!(
        node.exec_ok(&["cat", &format!("{dir}/cgroup.procs")])
            .unwrap(),
        ""
    );

    node.exec_ok(&["systemctl", "stop", "web.service"]).unwrap();
    for gone in [format!("{dir}/supervisor"), format!("{dir}/{id}")] {
        assert!(
            node.exec(&["test", "-e", &gone]).unwrap().status.code() == Some(1),
            "{gone} is removed"
        );
    }
    // rm after systemd removed the cgroups: nothing left to complain about.
    node.exec_ok(&["flotilla", "rm", "web"]).unwrap();
}
