//! The systemd D-Bus layer against a real systemd 252: each test boots a node (systemd as PID 1
//! in its own namespaces, with dbus) and talks to it from the host, over the node's system bus
//! at `/proc/<pid>/root/run/dbus/system_bus_socket` or peer-to-peer over systemd's private socket
//! `/proc/<pid>/root/run/systemd/private`. `systemctl` inside the node is the independent witness
//! of what the layer says.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use agent::systemd::{unit_name, unit_path, Event, Events, Systemd, UnitStatus, PRIVATE_SOCKET};
use flotilla_tests::{Node, NodeConfig};
use tokio::time::timeout;

/// Where the agent writes the units systemd loads.
const UNITS_DIR: &str = "/run/flotilla/units";
/// How long any one job or state change may take.
const PATIENCE: Duration = Duration::from_secs(30);

const SLEEPER: &str =
    "[Unit]\nDescription=sleeps\n[Service]\nType=simple\nExecStart=/bin/sleep 1000\n";
const EXITS_3: &str =
    "[Unit]\nDescription=exits 3\n[Service]\nType=simple\nExecStart=/bin/sh -c 'exit 3'\n";
const INSTALLABLE: &str =
    "[Unit]\nDescription=wanted by multi-user\n[Service]\nExecStart=/bin/sleep 1000\n\
    [Install]\nWantedBy=multi-user.target\n";

fn boot(hostname: &str) -> Node {
    Node::boot(NodeConfig::new(hostname)).expect("node boots")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn bus_address(node: &Node) -> String {
    format!(
        "unix:path={}",
        node.root().join("run/dbus/system_bus_socket").display()
    )
}

/// Writes unit `name` into the node's units directory; returns its path inside the node.
fn write_unit(node: &Node, name: &str, contents: &str) -> PathBuf {
    let path = Path::new(UNITS_DIR).join(name);
    node.write(path.to_str().unwrap(), contents).unwrap();
    path
}

fn remove_unit(node: &Node, name: &str) {
    fs::remove_file(node.root().join(&UNITS_DIR[1..]).join(name)).unwrap();
}

/// What `systemctl is-active NAME` says inside the node (it exits non-zero unless active).
fn is_active(node: &Node, name: &str) -> String {
    let out = node.exec(&["systemctl", "is-active", name]).unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn load_state(node: &Node, name: &str) -> String {
    node.exec_ok(&["systemctl", "show", "-p", "LoadState", "--value", name])
        .unwrap()
        .trim()
        .to_owned()
}

fn words(status: &UnitStatus) -> [&str; 3] {
    [
        status.load_state.as_str(),
        status.active_state.as_str(),
        status.sub_state.as_str(),
    ]
}

async fn state(systemd: &Systemd, name: &str) -> UnitStatus {
    let mut states = systemd.states(&[name]).await.unwrap();
    assert_eq!(states.len(), 1, "one status for {name}: {states:?}");
    states.remove(0)
}

/// Starts `name` and waits for its job's result.
async fn start(systemd: &Systemd, events: &mut Events, name: &str) -> String {
    let job = systemd.start(name).await.unwrap();
    timeout(PATIENCE, events.wait_job(&job))
        .await
        .unwrap_or_else(|_| panic!("start job of {name} never finished"))
        .unwrap()
}

async fn stop(systemd: &Systemd, events: &mut Events, name: &str) -> String {
    let job = systemd.stop(name).await.unwrap();
    timeout(PATIENCE, events.wait_job(&job))
        .await
        .unwrap_or_else(|_| panic!("stop job of {name} never finished"))
        .unwrap()
}

/// Reads events until unit `name` changed and `systemd` then reports it `active_state`: no
/// polling, each look follows a `UnitChanged`.
async fn until_active_state(
    systemd: &Systemd,
    events: &mut Events,
    name: &str,
    active_state: &str,
) -> UnitStatus {
    let wait = async {
        loop {
            match events.next().await {
                Some(Ok(Event::UnitChanged { name: changed })) if changed == name => {
                    let status = state(systemd, name).await;
                    if status.active_state == active_state {
                        return status;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("events failed: {e}"),
                None => panic!("events ended"),
            }
        }
    };
    timeout(PATIENCE, wait)
        .await
        .unwrap_or_else(|_| panic!("{name} never became {active_state}"))
}

#[test]
fn a_linked_unit_starts_stops_and_is_forgotten_over_the_bus() {
    let node = boot("sd-link");
    runtime().block_on(async {
        let systemd = Systemd::connect_address(&bus_address(&node)).await.unwrap();
        let path = write_unit(&node, "sleeper.service", SLEEPER);

        let linked = systemd.link_runtime(&[&path]).await.unwrap();
        assert!(
            linked.iter().any(|c| c.kind == "symlink"
                && c.path == "/run/systemd/system/sleeper.service"
                && c.target == path.to_str().unwrap()),
            "link_runtime made /run/systemd/system/sleeper.service: {linked:?}"
        );
        systemd.reload().await.unwrap();
        assert_eq!(
            words(&state(&systemd, "sleeper.service").await),
            ["loaded", "inactive", "dead"]
        );

        let mut events = systemd.events().await.unwrap();
        assert_eq!(
            start(&systemd, &mut events, "sleeper.service").await,
            "done"
        );
        let running = until_active_state(&systemd, &mut events, "sleeper.service", "active").await;
        assert_eq!(words(&running), ["loaded", "active", "running"]);
        assert_eq!(is_active(&node, "sleeper.service"), "active");

        assert_eq!(stop(&systemd, &mut events, "sleeper.service").await, "done");
        assert_eq!(
            words(&state(&systemd, "sleeper.service").await),
            ["loaded", "inactive", "dead"]
        );
        assert_eq!(is_active(&node, "sleeper.service"), "inactive");

        let unlinked = systemd.disable_runtime(&["sleeper.service"]).await.unwrap();
        assert!(
            unlinked
                .iter()
                .any(|c| c.kind == "unlink" && c.path == "/run/systemd/system/sleeper.service"),
            "disable_runtime removed the link: {unlinked:?}"
        );
        remove_unit(&node, "sleeper.service");
        systemd.reload().await.unwrap();
        assert_eq!(
            words(&state(&systemd, "sleeper.service").await),
            ["not-found", "inactive", "dead"]
        );
        assert_eq!(load_state(&node, "sleeper.service"), "not-found");

        let error = systemd
            .start("sleeper.service")
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("StartUnit(sleeper.service)")
                && error.contains(&bus_address(&node))
                && error.contains("org.freedesktop.systemd1.NoSuchUnit"),
            "the error names the call, the address and systemd's answer: {error}"
        );
    });
}

#[test]
fn a_unit_that_exits_3_is_failed_until_reset_then_forgotten() {
    let node = boot("sd-fail");
    runtime().block_on(async {
        let systemd = Systemd::connect_address(&bus_address(&node)).await.unwrap();
        let path = write_unit(&node, "exits3.service", EXITS_3);
        systemd.link_runtime(&[&path]).await.unwrap();
        systemd.reload().await.unwrap();

        let mut events = systemd.events().await.unwrap();
        // Type=simple: the job is done once the process is forked; it fails afterwards.
        assert_eq!(start(&systemd, &mut events, "exits3.service").await, "done");
        let failed = until_active_state(&systemd, &mut events, "exits3.service", "failed").await;
        assert_eq!(words(&failed), ["loaded", "failed", "failed"]);
        assert_eq!(is_active(&node, "exits3.service"), "failed");

        systemd.reset_failed("exits3.service").await.unwrap();
        assert_eq!(is_active(&node, "exits3.service"), "inactive");

        systemd.disable_runtime(&["exits3.service"]).await.unwrap();
        remove_unit(&node, "exits3.service");
        systemd.reload().await.unwrap();
        assert_eq!(
            words(&state(&systemd, "exits3.service").await),
            ["not-found", "inactive", "dead"]
        );
        assert_eq!(load_state(&node, "exits3.service"), "not-found");
    });
}

#[test]
fn enable_runtime_wants_the_unit_from_its_install_section_until_disabled() {
    let node = boot("sd-enable");
    runtime().block_on(async {
        let systemd = Systemd::connect_address(&bus_address(&node)).await.unwrap();
        let path = write_unit(&node, "wanted.service", INSTALLABLE);
        let wants = node
            .root()
            .join("run/systemd/system/multi-user.target.wants/wanted.service");

        let changes = systemd.enable_runtime(&[&path]).await.unwrap();
        assert!(
            changes.iter().any(|c| c.kind == "symlink"
                && c.path == "/run/systemd/system/multi-user.target.wants/wanted.service"),
            "enable_runtime made the wants symlink: {changes:?}"
        );
        assert!(
            fs::symlink_metadata(&wants).is_ok(),
            "{} exists",
            wants.display()
        );
        systemd.reload().await.unwrap();
        let enabled = node
            .exec(&["systemctl", "is-enabled", "wanted.service"])
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&enabled.stdout).trim(),
            "enabled-runtime"
        );
        let target_wants = node
            .exec_ok(&[
                "systemctl",
                "show",
                "-p",
                "Wants",
                "--value",
                "multi-user.target",
            ])
            .unwrap();
        assert!(
            target_wants
                .split_whitespace()
                .any(|u| u == "wanted.service"),
            "{target_wants}"
        );

        let mut events = systemd.events().await.unwrap();
        assert_eq!(start(&systemd, &mut events, "wanted.service").await, "done");
        assert_eq!(is_active(&node, "wanted.service"), "active");
        assert_eq!(stop(&systemd, &mut events, "wanted.service").await, "done");

        systemd.disable_runtime(&["wanted.service"]).await.unwrap();
        assert!(
            fs::symlink_metadata(&wants).is_err(),
            "{} is gone",
            wants.display()
        );
        // Stopped and wanted by nothing, systemd may have unloaded it already: still fine.
        systemd.reset_failed("wanted.service").await.unwrap();
        remove_unit(&node, "wanted.service");
        systemd.reload().await.unwrap();
        assert_eq!(
            words(&state(&systemd, "wanted.service").await),
            ["not-found", "inactive", "dead"]
        );
        assert_eq!(load_state(&node, "wanted.service"), "not-found");
    });
}

#[test]
fn the_states_of_fifty_units_come_in_one_call() {
    let node = boot("sd-fifty");
    runtime().block_on(async {
        let systemd = Systemd::connect_address(&bus_address(&node)).await.unwrap();
        let names: Vec<String> = (0..50).map(|i| format!("many-{i:02}.service")).collect();
        let paths: Vec<PathBuf> = names
            .iter()
            .map(|name| write_unit(&node, name, SLEEPER))
            .collect();
        systemd.link_runtime(&paths).await.unwrap();
        systemd.reload().await.unwrap();

        let mut events = systemd.events().await.unwrap();
        let mut jobs = Vec::new();
        for name in &names {
            jobs.push(systemd.start(name).await.unwrap());
        }
        for job in &jobs {
            let result = timeout(PATIENCE, events.wait_job(job))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(result, "done", "{job}");
        }

        let mut asked = names.clone();
        asked.push("never-written.service".to_owned());
        let states = systemd.states(&asked).await.unwrap();
        let got: Vec<(&str, [&str; 3])> =
            states.iter().map(|s| (s.name.as_str(), words(s))).collect();
        let mut want: Vec<(&str, [&str; 3])> = names
            .iter()
            .map(|n| (n.as_str(), ["loaded", "active", "running"]))
            .collect();
        want.push(("never-written.service", ["not-found", "inactive", "dead"]));
        assert_eq!(got, want);
        let active = node
            .exec_ok(&[
                "sh",
                "-c",
                "systemctl list-units --state=active --no-legend 'many-*' | wc -l",
            ])
            .unwrap();
        assert_eq!(active.trim(), "50");
    });
}

/// Set to `bus` or `private` when this test binary runs inside a node as the client of
/// [`inside_a_node_connect_takes_the_bus_then_falls_back_to_the_private_socket`].
const PROBE: &str = "FLOTILLA_SYSTEMD_PROBE";
/// Where that test installs this test binary inside the node.
const SELF_IN_NODE: &str = "/usr/local/bin/flotilla-systemd-test";

/// systemd refuses private-socket clients whose pid it cannot see ("Incoming private connection
/// from unprivileged client, refusing: No data available": `SO_PEERCRED` gives pid 0 across
/// pid namespaces), so this client runs inside the node: the test binary re-runs itself there
/// through `nsenter`, as the agent runs on a machine, and the host checks what it did.
#[test]
fn inside_a_node_connect_takes_the_bus_then_falls_back_to_the_private_socket() {
    match std::env::var(PROBE).as_deref() {
        Ok("bus") => return runtime().block_on(probe_on_the_bus()),
        Ok("private") => return runtime().block_on(probe_without_the_bus()),
        _ => {}
    }
    let node = boot("sd-connect");
    let this = std::env::current_exe().unwrap();
    node.install(&this, SELF_IN_NODE, 0o755).unwrap();
    run_probe(&node, "bus");

    node.exec_ok(&["systemctl", "stop", "dbus.socket", "dbus.service"])
        .unwrap();
    run_probe(&node, "private");
    assert_eq!(is_active(&node, "direct.service"), "active");
    assert_eq!(is_active(&node, "dbus.service"), "inactive");
}

/// Runs the `role` half of the test above inside `node`; fails unless it ran and passed.
fn run_probe(node: &Node, role: &str) {
    let test = "inside_a_node_connect_takes_the_bus_then_falls_back_to_the_private_socket";
    let env = format!("{PROBE}={role}");
    let argv = ["timeout", "120", "env", &env, SELF_IN_NODE, "--exact", test];
    let out = node.exec(&argv).unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "the {role} client inside the node failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Inside the node with dbus up: `connect()` takes the system bus; the private socket also
/// answers.
async fn probe_on_the_bus() {
    let systemd = Systemd::connect().await.unwrap();
    assert_eq!(
        systemd.address(),
        "unix:path=/var/run/dbus/system_bus_socket"
    );
    assert_eq!(
        words(&state(&systemd, "dbus.service").await),
        ["loaded", "active", "running"]
    );
    let direct = Systemd::connect_private(PRIVATE_SOCKET).await.unwrap();
    assert_eq!(
        words(&state(&direct, "dbus.service").await),
        ["loaded", "active", "running"]
    );
}

/// Inside the node with dbus stopped: `connect()` falls back to the private socket, where
/// linking, reloading, starting and the event stream all work; leaves `direct.service`
/// running for the host to witness.
async fn probe_without_the_bus() {
    let systemd = Systemd::connect().await.unwrap();
    assert_eq!(systemd.address(), format!("unix:path={PRIVATE_SOCKET}"));
    let path = Path::new(UNITS_DIR).join("direct.service");
    fs::create_dir_all(UNITS_DIR).unwrap();
    fs::write(&path, SLEEPER).unwrap();
    systemd.link_runtime(&[&path]).await.unwrap();
    systemd.reload().await.unwrap();

    let mut events = systemd.events().await.unwrap();
    assert_eq!(start(&systemd, &mut events, "direct.service").await, "done");
    let running = until_active_state(&systemd, &mut events, "direct.service", "active").await;
    assert_eq!(words(&running), ["loaded", "active", "running"]);
}

#[test]
fn unit_paths_are_the_ones_systemd_publishes() {
    let node = boot("sd-paths");
    for name in [
        "app@1.service",
        "1st.service",
        "under_score.service",
        "-.mount",
        "sys-kernel-debug.mount",
    ] {
        let reply = node
            .exec_ok(&[
                "busctl",
                "--",
                "call",
                "org.freedesktop.systemd1",
                "/org/freedesktop/systemd1",
                "org.freedesktop.systemd1.Manager",
                "LoadUnit",
                "s",
                name,
            ])
            .unwrap();
        let path = unit_path(name);
        assert_eq!(reply.trim(), format!("o \"{path}\""), "{name}");
        assert_eq!(unit_name(&path).as_deref(), Some(name));
    }
}
