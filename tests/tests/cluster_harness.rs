//! The local test cluster works as the cluster tests need it: nodes on a bridge of their own,
//! reaching each other and etcd only through it; etcd survives a lost member; network faults and
//! machine loss; the agent's unit installed; failures show the nodes' journals and etcd's log; and
//! nothing is left on the host afterwards, also when the test process was killed.

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader, Lines};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use flotilla_tests::cluster::{AgentBinaries, Cluster, ClusterConfig};
use flotilla_tests::{built_binary, Node};

/// Runs etcdctl inside `node` against `endpoints`, giving up quickly on unreachable ones.
fn etcdctl(node: &Node, endpoints: &[String], args: &[&str]) -> Output {
    let endpoints = format!("--endpoints={}", endpoints.join(","));
    let mut argv = vec![
        "etcdctl",
        endpoints.as_str(),
        "--dial-timeout=1s",
        "--command-timeout=3s",
    ];
    argv.extend_from_slice(args);
    node.exec(&argv).unwrap()
}

/// `etcdctl get KEY --print-value-only` inside `node`, panicking with etcdctl's stderr on failure.
fn etcd_get(node: &Node, endpoints: &[String], key: &str) -> String {
    let out = etcdctl(node, endpoints, &["get", key, "--print-value-only"]);
    assert!(
        out.status.success(),
        "etcdctl get {key} on {} failed: {}",
        node.hostname(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn etcd_put(node: &Node, endpoints: &[String], key: &str, value: &str) {
    let out = etcdctl(node, endpoints, &["put", key, value]);
    assert!(
        out.status.success(),
        "etcdctl put {key} on {} failed: {}",
        node.hostname(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Polls `check` every 100 ms until it holds or `timeout` passes.
fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        sleep(Duration::from_millis(100));
    }
}

/// Whether the host process `pid` runs (a zombie does not).
fn running(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start());
        !matches!(state.and_then(|s| s.chars().next()), None | Some('Z' | 'X'))
    })
}

/// What of the harness's naming still exists on the host for the test process `pid`: netns,
/// state dirs, etcd processes with their data under its state dirs, and `bridge`.
fn leftovers_of(pid: u32, bridge: &str) -> Vec<String> {
    let mut left = Vec::new();
    let netns = format!("flotilla-{pid}-");
    for entry in fs::read_dir("/run/netns").into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(&netns) {
            left.push(format!("netns {name}"));
        }
    }
    let dirs = [format!("{pid}-"), format!("cluster-{pid}-")];
    for entry in fs::read_dir("/tmp/flotilla-tests")
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if dirs.iter().any(|d| name.starts_with(d)) {
            left.push(format!("state dir {name}"));
        }
    }
    let data = format!("--data-dir=/tmp/flotilla-tests/cluster-{pid}-");
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let cmdline = fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let p: u32 = entry.file_name().to_string_lossy().parse().unwrap_or(0);
        if cmdline.contains(&data) && running(p) {
            left.push(format!("etcd {p}"));
        }
    }
    if Path::new("/sys/class/net").join(bridge).exists() {
        left.push(format!("bridge {bridge}"));
    }
    left
}

#[test]
fn three_nodes_reach_each_other_and_etcd_only_through_their_bridge() {
    let cluster = Cluster::boot(ClusterConfig::new(3)).expect("cluster boots");
    let endpoints = cluster.etcd_endpoints();
    let host = cluster.host_address().octets();
    assert_eq!(endpoints.len(), 1);
    assert!(
        endpoints[0].starts_with(&format!("http://{}:", cluster.host_address())),
        "{endpoints:?}"
    );

    let mut machine_ids = BTreeSet::new();
    for n in 1..=3 {
        let node = cluster.node(n);
        assert_eq!(
            node.exec_ok(&["hostname"]).unwrap().trim(),
            format!("node{n}")
        );
        let address = format!("{}.{}.{}.{}", host[0], host[1], host[2], 10 + n);
        assert_eq!(node.address().unwrap().to_string(), address);
        let eth0 = node
            .exec_ok(&["ip", "-4", "-o", "addr", "show", "dev", "eth0"])
            .unwrap();
        assert!(eth0.contains(&format!("inet {address}/24")), "{eth0}");
        let routes = node.exec_ok(&["ip", "-4", "route", "show"]).unwrap();
        assert_eq!(
            routes.lines().count(),
            1,
            "only the bridge's subnet: {routes}"
        );
        assert!(!routes.contains("default"), "{routes}");
        let id = node.exec_ok(&["cat", "/etc/machine-id"]).unwrap();
        assert_eq!(id.trim(), node.machine_id());
        machine_ids.insert(id.trim().to_owned());
    }
    assert_eq!(machine_ids.len(), 3, "machine-ids differ: {machine_ids:?}");

    // node1 reaches a listener on node2, by the name the nodes' /etc/hosts give it.
    cluster
        .node(2)
        .exec_ok(&[
            "systemd-run",
            "--unit=hello",
            "systemd-socket-activate",
            "--inetd",
            "--accept",
            "--listen=7777",
            "echo",
            "hello from node2",
        ])
        .unwrap();
    let hello = || {
        cluster
            .node(1)
            .exec_ok(&[
                "timeout",
                "5",
                "bash",
                "-c",
                "exec 3<>/dev/tcp/node2/7777; cat <&3",
            ])
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|e| e.to_string())
    };
    let mut answer = String::new();
    assert!(
        eventually(Duration::from_secs(5), || {
            answer = hello();
            answer == "hello from node2"
        }),
        "node1 to node2:7777: {answer}"
    );

    // etcd is reached from every node through the bridge ...
    etcd_put(cluster.node(1), &endpoints, "/harness/greeting", "ahoy");
    assert_eq!(
        etcd_get(cluster.node(3), &endpoints, "/harness/greeting"),
        "ahoy"
    );
    // ... while 127.0.0.1 in a node is the node's own: nothing listens on etcd's port there.
    let port = endpoints[0].rsplit(':').next().unwrap();
    let loopback = format!("http://127.0.0.1:{port}/health");
    let refused = cluster
        .node(2)
        .exec(&["curl", "-sS", "--max-time", "3", &loopback])
        .unwrap();
    // curl's 7: the connection failed at once (refused), not 28 (timed out).
    assert_eq!(
        refused.status.code(),
        Some(7),
        "node2 to {loopback}: {}",
        String::from_utf8_lossy(&refused.stderr)
    );
    // The host itself does reach etcd there.
    let host_health = Command::new("curl")
        .args(["-sS", "--max-time", "3"])
        .arg(format!("{}/health", cluster.etcd_loopback_endpoints()[0]))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&host_health.stdout).contains("\"health\":\"true\""));

    // A node cut off cannot reach etcd; the others still can; reconnected, it can again.
    cluster.cut_off(2).unwrap();
    let cut = etcdctl(
        cluster.node(2),
        &endpoints,
        &["--command-timeout=1s", "get", "/harness/greeting"],
    );
    assert!(!cut.status.success(), "node2 reached etcd while cut off");
    assert_eq!(
        etcd_get(cluster.node(1), &endpoints, "/harness/greeting"),
        "ahoy"
    );
    cluster.reconnect(2).unwrap();
    assert!(
        eventually(Duration::from_secs(10), || etcdctl(
            cluster.node(2),
            &endpoints,
            &["get", "/harness/greeting"]
        )
        .status
        .success()),
        "node2 does not reach etcd after reconnect"
    );

    // A killed node is gone at once; the rest of the cluster carries on.
    let node3 = cluster.node(3).pid();
    cluster.kill_node(3).unwrap();
    assert!(!running(node3), "node3's systemd survived SIGKILL");
    etcd_put(
        cluster.node(1),
        &endpoints,
        "/harness/after-loss",
        "still here",
    );
    assert_eq!(
        etcd_get(cluster.node(2), &endpoints, "/harness/after-loss"),
        "still here"
    );

    let footprint = cluster.footprint();
    drop(cluster);
    assert_eq!(footprint.leftovers(), Vec::<String>::new());
}

#[test]
fn three_member_etcd_keeps_serving_nodes_after_losing_a_member() {
    let mut config = ClusterConfig::new(1);
    config.etcd_members = 3;
    let mut cluster = Cluster::boot(config).expect("cluster boots");
    let endpoints = cluster.etcd_endpoints();
    assert_eq!(endpoints.len(), 3);
    let node = cluster.node(1);
    let members = etcdctl(node, &endpoints, &["member", "list"]);
    let members = String::from_utf8_lossy(&members.stdout);
    assert_eq!(members.lines().count(), 3, "{members}");
    etcd_put(node, &endpoints, "/harness/before", "1");

    cluster.kill_etcd_member(1).unwrap();
    let node = cluster.node(1);
    // Writes fail while the other two elect a new leader (member 1 may have led), then succeed.
    let mut error = String::new();
    assert!(
        eventually(Duration::from_secs(10), || {
            let out = etcdctl(node, &endpoints, &["put", "/harness/during", "2"]);
            error = String::from_utf8_lossy(&out.stderr).into_owned();
            out.status.success()
        }),
        "no write succeeded after losing member 1: {error}"
    );
    assert_eq!(etcd_get(node, &endpoints[1..], "/harness/during"), "2");
    assert_eq!(etcd_get(node, &endpoints[2..], "/harness/before"), "1");
    let dead = etcdctl(
        node,
        &endpoints[..1],
        &["--command-timeout=1s", "get", "/harness/before"],
    );
    assert!(!dead.status.success(), "the killed member still answers");

    cluster.restart_etcd_member(1).unwrap();
    let node = cluster.node(1);
    // The restarted member caught up with what was written without it.
    assert!(
        eventually(Duration::from_secs(10), || {
            let out = etcdctl(
                node,
                &endpoints[..1],
                &["get", "/harness/during", "--print-value-only"],
            );
            String::from_utf8_lossy(&out.stdout).trim() == "2"
        }),
        "member 1 did not catch up"
    );

    let footprint = cluster.footprint();
    drop(cluster);
    assert_eq!(footprint.leftovers(), Vec::<String>::new());
}

#[test]
fn two_clusters_in_one_process_get_their_own_subnets() {
    let a = Cluster::boot(ClusterConfig::new(1)).expect("cluster a boots");
    let b = Cluster::boot(ClusterConfig::new(1)).expect("cluster b boots");
    assert_ne!(a.subnet(), b.subnet());
    assert_ne!(a.bridge(), b.bridge());
    assert_ne!(a.etcd_endpoints(), b.etcd_endpoints());
    etcd_put(a.node(1), &a.etcd_endpoints(), "/harness/cluster", "a");
    etcd_put(b.node(1), &b.etcd_endpoints(), "/harness/cluster", "b");
    assert_eq!(
        etcd_get(a.node(1), &a.etcd_endpoints(), "/harness/cluster"),
        "a"
    );
    // No route leads from one cluster's node to the other's bridge.
    let across = a
        .node(1)
        .exec(&[
            "curl",
            "-sS",
            "--max-time",
            "3",
            &format!("{}/health", b.etcd_endpoints()[0]),
        ])
        .unwrap();
    // curl's 7: no connection at all (no route), not 28 (timed out).
    assert_eq!(
        across.status.code(),
        Some(7),
        "cluster a's node to cluster b's etcd: {}",
        String::from_utf8_lossy(&across.stderr)
    );

    let footprints = [a.footprint(), b.footprint()];
    drop(a);
    drop(b);
    for footprint in footprints {
        assert_eq!(footprint.leftovers(), Vec::<String>::new());
    }
}

#[test]
fn install_agent_runs_the_agent_unit_with_its_configuration() {
    let cluster = Cluster::boot(ClusterConfig::new(1)).expect("cluster boots");
    // flotillad's stand-in: reads the configuration and reports ready, as the unit requires.
    let dir = tempfile::tempdir().unwrap();
    let stand_in = dir.path().join("flotillad");
    fs::write(
        &stand_in,
        "#!/bin/sh\n\
         cat /etc/flotilla/flotilla.toml > /run/flotillad-saw-config\n\
         systemd-notify --ready\n\
         exec sleep infinity\n",
    )
    .unwrap();
    fs::set_permissions(&stand_in, fs::Permissions::from_mode(0o755)).unwrap();
    let binaries = AgentBinaries {
        flotillad: stand_in,
        flotctl: built_binary("flotctl"),
        flotilla: built_binary("flotilla"),
    };
    let config = format!("etcd-endpoints = {:?}\n", cluster.etcd_endpoints());
    cluster
        .install_agent_from(1, &binaries, &config)
        .expect("agent starts");
    let node = cluster.node(1);
    let active = node
        .exec_ok(&["systemctl", "is-active", "flotilla.service"])
        .unwrap();
    assert_eq!(active.trim(), "active");
    let enabled = node
        .exec_ok(&["systemctl", "is-enabled", "flotilla.service"])
        .unwrap();
    assert_eq!(enabled.trim(), "enabled");
    let unit_file = node
        .exec_ok(&[
            "systemctl",
            "show",
            "-p",
            "FragmentPath",
            "--value",
            "flotilla.service",
        ])
        .unwrap();
    // (Debian's /lib is /usr/lib: systemd names the unit's first search path.)
    assert!(
        ["/lib", "/usr/lib"]
            .map(|lib| format!("{lib}/systemd/system/flotilla.service\n"))
            .contains(&unit_file),
        "the agent runs from the unit the host image ships, not from {unit_file}"
    );
    assert_eq!(
        node.exec_ok(&["cat", "/run/flotillad-saw-config"]).unwrap(),
        config
    );
    let version = node.exec_ok(&["flotctl", "--version"]).unwrap();
    assert!(version.starts_with("flotctl "), "{version}");
    node.exec_ok(&["flotilla", "--version"]).unwrap();

    // An agent that never gets ready fails the install with its journal.
    fs::write(
        dir.path().join("flotillad"),
        "#!/bin/sh\necho 'cannot reach etcd' >&2\nexit 3\n",
    )
    .unwrap();
    let broken = AgentBinaries {
        flotillad: dir.path().join("flotillad"),
        ..binaries
    };
    node.exec_ok(&["systemctl", "disable", "--now", "flotilla.service"])
        .unwrap();
    let err = cluster
        .install_agent_from(1, &broken, &config)
        .expect_err("a failing agent fails the install")
        .to_string();
    assert!(
        err.contains("flotilla.service did not start on node1"),
        "{err}"
    );
    assert!(err.contains("cannot reach etcd"), "{err}");
}

/// Set in the child run of the failure-report test: boot, then fail.
const PANIC_CHILD: &str = "FLOTILLA_HARNESS_PANIC_CHILD";

#[test]
fn a_failing_test_shows_journals_and_etcd_log_and_leaves_nothing() {
    if std::env::var_os(PANIC_CHILD).is_some() {
        let cluster = Cluster::boot(ClusterConfig::new(1)).expect("cluster boots");
        cluster
            .node(1)
            .exec_ok(&[
                "systemd-cat",
                "-t",
                "harness",
                "echo",
                "marker-in-the-journal",
            ])
            .unwrap();
        eprintln!("bridge: {}", cluster.bridge());
        eprintln!("harness pid: {}", std::process::id());
        panic!("deliberate failure with a cluster up");
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_failing_test_shows_journals_and_etcd_log_and_leaves_nothing",
            "--nocapture",
        ])
        .env(PANIC_CHILD, "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the child test passed:\n{stderr}");
    assert!(
        stderr.contains("deliberate failure with a cluster up"),
        "{stderr}"
    );
    assert!(stderr.contains("===== journal of node node1"), "{stderr}");
    assert!(stderr.contains("marker-in-the-journal"), "{stderr}");
    assert!(
        stderr.contains("===== log tail of etcd member etcd1"),
        "{stderr}"
    );
    assert!(stderr.contains("serving client traffic"), "{stderr}");
    let printed = |prefix: &str| {
        stderr
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("the child printed no {prefix:?}"))
            .to_owned()
    };
    let pid = printed("harness pid: ").parse().unwrap();
    assert_eq!(
        leftovers_of(pid, &printed("bridge: ")),
        Vec::<String>::new()
    );
}

/// `flotilla-cluster up --nodes 1`, and its report up to the line saying it is up.
struct Up {
    child: Child,
    report: Vec<String>,
    rest: Lines<BufReader<ChildStdout>>,
}

fn start_up() -> Up {
    let mut child = Command::new(env!("CARGO_BIN_EXE_flotilla-cluster"))
        .args(["up", "--nodes", "1"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut report = Vec::new();
    let mut rest = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in rest.by_ref() {
        let line = line.unwrap();
        let done = line.starts_with("up (pid");
        report.push(line);
        if done {
            return Up {
                child,
                report,
                rest,
            };
        }
    }
    let status = child.wait().unwrap();
    panic!("flotilla-cluster up ended early ({status}): {report:?}");
}

fn field<'a>(lines: &'a [String], prefix: &str) -> &'a str {
    lines
        .iter()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} in {lines:?}"))
}

fn cluster_tool(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_flotilla-cluster"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "flotilla-cluster {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn flotilla_cluster_up_down_and_clean_after_a_killed_harness() {
    // up, then down: the cluster is torn down by its own process.
    let Up {
        child: mut up,
        report: lines,
        rest,
    } = start_up();
    let bridge = field(&lines, "bridge: ").to_owned();
    let endpoint = field(&lines, "etcd (host): ").to_owned();
    assert!(Path::new("/sys/class/net").join(&bridge).exists());
    let health = Command::new("curl")
        .args(["-sS", "--max-time", "3", &format!("{endpoint}/health")])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&health.stdout).contains("true"));
    let down = cluster_tool(&["down", &up.id().to_string()]);
    assert!(
        down.contains(&format!("stopped the cluster of pid {}", up.id())),
        "{down}"
    );
    let rest: Vec<String> = rest.map(Result::unwrap).collect();
    assert_eq!(rest, ["SIGTERM: tearing down", "down"]);
    assert!(up.wait().unwrap().success());
    assert_eq!(leftovers_of(up.id(), &bridge), Vec::<String>::new());

    // up, then SIGKILL: the nodes and etcd outlive it until `clean`.
    let Up {
        child: mut up,
        report: lines,
        ..
    } = start_up();
    let pid = up.id();
    let bridge = field(&lines, "bridge: ").to_owned();
    let node_pid: u32 = field(&lines, "node1 ")
        .split(" pid ")
        .nth(1)
        .and_then(|s| s.split(':').next())
        .unwrap()
        .parse()
        .unwrap();
    up.kill().unwrap();
    up.wait().unwrap();
    assert!(running(node_pid), "the node died with its harness");
    assert!(!leftovers_of(pid, &bridge).is_empty());
    let report = cluster_tool(&["clean"]);
    for expected in [
        "removed etcd process".to_owned(),
        format!("removed node cgroup flotilla-tests/{pid}-0"),
        format!("removed netns flotilla-{pid}-0"),
        format!("removed subnet {}", field(&lines, "subnet: ")),
        format!("removed state dir /tmp/flotilla-tests/{pid}-0"),
        format!("removed state dir /tmp/flotilla-tests/cluster-{pid}-0"),
    ] {
        assert!(report.contains(&expected), "no {expected:?} in:\n{report}");
    }
    assert!(!running(node_pid), "clean left the node running");
    assert_eq!(leftovers_of(pid, &bridge), Vec::<String>::new());
    assert!(!Path::new(&format!(
        "/run/flotilla-tests/subnet-{}.lock",
        subnet_index(&lines)
    ))
    .exists());
}

/// X of the `subnet: 10.213.X.0/24` line.
fn subnet_index(lines: &[String]) -> u8 {
    field(lines, "subnet: ")
        .split('.')
        .nth(2)
        .unwrap()
        .parse()
        .unwrap()
}
