//! `flotilla-bench-cluster`: the cluster end to end on a local 3-node cluster (systemd nodes in
//! namespaces, one etcd 3.4 member on the host, agent TTL 3 s), driven only through `flotctl`
//! inside the nodes, printed beside fleet v1.0's anchors from DESIGN.md §6. It asserts nothing
//! about time.
//!
//! ```text
//! cargo build --release --workspace --bins
//! target/release/flotilla-bench-cluster [--runs 3]
//! ```
//!
//! Each run boots a fresh cluster and measures, in order:
//! - `flotctl start` of 100 instances of a template `u@.service` (`sleep infinity`), one command,
//!   until `flotctl list-units` shows all 100 active;
//! - etcd at rest with the 100 units over 10 s, from etcd's own `/metrics` (curl from the host):
//!   mvcc writes (`etcd_mvcc_put_total` + `etcd_mvcc_delete_total`, puts inside transactions
//!   included), reads (`etcd_mvcc_range_total`), gRPC unary requests and lease keep-alives; and
//!   each agent's RSS (`VmRSS` of flotillad's `MainPID` inside each node);
//! - after `kill -9` of a node that is not the scheduler (its systemd and everything under it),
//!   the time until every unit it ran is active elsewhere, polling `flotctl list-units` on a
//!   survivor.
//!
//! fleet cannot run here: its numbers are anchors measured once on the same kind of cluster.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use flotilla_tests::bench::median;
use flotilla_tests::cluster::{Cluster, ClusterConfig};

const UNITS: usize = 100;
const TTL: Duration = Duration::from_secs(3);
const REST: Duration = Duration::from_secs(10);
const PATIENCE: Duration = Duration::from_secs(120);
const SLEEPER: &str = "[Service]\nExecStart=/usr/bin/sleep infinity\n";

/// What one run measured.
struct Sample {
    /// `flotctl start` returned.
    start_returned: Duration,
    /// `flotctl list-units` shows every unit active.
    start_active: Duration,
    /// From the kill until the killed node's units are active elsewhere.
    moved: Duration,
    /// How many units the killed node ran.
    moved_units: usize,
    /// etcd at rest, per second.
    rest: Rest,
    /// Each node's agent RSS in kB, node 1 first.
    rss_kb: Vec<u64>,
}

/// etcd's counters at rest, per second.
#[derive(Clone, Copy)]
struct Rest {
    writes: f64,
    reads: f64,
    unary: f64,
    keep_alives: f64,
}

/// `flotctl ARGS` on `node`'s stdout; panics with everything it printed when it fails.
fn flotctl(cluster: &Cluster, node: usize, args: &[&str]) -> String {
    let mut argv = vec!["flotctl"];
    argv.extend_from_slice(args);
    let output = cluster.node(node).exec(&argv).expect("run flotctl");
    assert!(
        output.status.success(),
        "flotctl {args:?} on node{node}: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `list-units` as unit → the machine IDs where it is active.
fn active(cluster: &Cluster, node: usize) -> BTreeMap<String, BTreeSet<String>> {
    let listing = flotctl(
        cluster,
        node,
        &[
            "list-units",
            "--no-legend",
            "--full",
            "--fields",
            "unit,machine,active",
        ],
    );
    let mut active: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in listing.lines() {
        if let [unit, machine, "active"] = line.split_whitespace().collect::<Vec<_>>()[..] {
            let id = machine.split('/').next().unwrap_or_default();
            active
                .entry(unit.to_owned())
                .or_default()
                .insert(id.to_owned());
        }
    }
    active
}

fn wait_until<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not within {PATIENCE:?}");
        sleep(Duration::from_millis(50));
    }
}

/// etcd's metrics: name → summed value, for the samples whose labels contain `labels`.
fn metric(text: &str, name: &str, labels: &str) -> f64 {
    text.lines()
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with([' ', '{']) && rest.contains(labels))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn scrape(endpoint: &str) -> String {
    let output = Command::new("curl")
        .args(["-sf", &format!("{endpoint}/metrics")])
        .output()
        .expect("run curl");
    assert!(output.status.success(), "curl {endpoint}/metrics");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// etcd's request rates over [`REST`].
fn at_rest(cluster: &Cluster) -> Rest {
    let endpoint = &cluster.etcd_loopback_endpoints()[0];
    let counters = |text: &str| {
        [
            metric(text, "etcd_mvcc_put_total", "") + metric(text, "etcd_mvcc_delete_total", ""),
            metric(text, "etcd_mvcc_range_total", ""),
            metric(text, "grpc_server_handled_total", "grpc_type=\"unary\""),
            metric(
                text,
                "grpc_server_msg_received_total",
                "grpc_method=\"LeaseKeepAlive\"",
            ),
        ]
    };
    let before = counters(&scrape(endpoint));
    sleep(REST);
    let after = counters(&scrape(endpoint));
    let rate = |i: usize| (after[i] - before[i]) / REST.as_secs_f64();
    Rest {
        writes: rate(0),
        reads: rate(1),
        unary: rate(2),
        keep_alives: rate(3),
    }
}

/// VmRSS of flotillad in `node`, in kB.
fn agent_rss_kb(cluster: &Cluster, node: usize) -> u64 {
    let node = cluster.node(node);
    let pid = node
        .exec_ok(&[
            "systemctl",
            "show",
            "-p",
            "MainPID",
            "--value",
            "flotilla.service",
        ])
        .expect("flotillad's main pid");
    let status = node
        .exec_ok(&["cat", &format!("/proc/{}/status", pid.trim())])
        .expect("flotillad's status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

/// The node number of the scheduler's machine, from the `leader` key.
fn leader_node(cluster: &Cluster) -> usize {
    let output = Command::new("etcdctl")
        .args(["--endpoints", &cluster.etcd_loopback_endpoints()[0]])
        .args(["get", "--print-value-only", "/flotilla/leader"])
        .output()
        .expect("run etcdctl");
    let leader: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("the leader key's JSON");
    let id = leader["machineID"].as_str().unwrap_or_default();
    (1..=cluster.nodes().len())
        .find(|&n| cluster.node(n).machine_id() == id)
        .expect("the leader is one of the nodes")
}

fn run() -> Sample {
    let mut config = ClusterConfig::new(3);
    config.agent_ttl = TTL;
    let cluster = Cluster::boot(config).expect("boot the cluster");
    cluster.start_agents().expect("start the agents");
    cluster
        .node(1)
        .write("/root/units/u@.service", SLEEPER)
        .expect("write the template");
    let paths: Vec<String> = (1..=UNITS)
        .map(|i| format!("/root/units/u@{i}.service"))
        .collect();
    let mut args = vec!["start"];
    args.extend(paths.iter().map(String::as_str));

    let started = Instant::now();
    flotctl(&cluster, 1, &args);
    let start_returned = started.elapsed();
    let placement = wait_until("every unit active", || {
        let active = active(&cluster, 1);
        (active.len() == UNITS && active.values().all(|m| m.len() == 1)).then_some(active)
    });
    let start_active = started.elapsed();

    sleep(Duration::from_secs(2));
    let rest = at_rest(&cluster);
    let rss_kb = (1..=3).map(|n| agent_rss_kb(&cluster, n)).collect();

    let leader = leader_node(&cluster);
    let victim = (1..=3).rev().find(|&n| n != leader).expect("a non-leader");
    let survivor = (1..=3).find(|&n| n != victim).expect("a survivor");
    let victim_id = cluster.node(victim).machine_id().to_owned();
    let on_victim: Vec<String> = placement
        .iter()
        .filter(|(_, machines)| machines.contains(&victim_id))
        .map(|(unit, _)| unit.clone())
        .collect();
    cluster.kill_node(victim).expect("kill the node");
    let killed = Instant::now();
    wait_until("the killed node's units active elsewhere", || {
        let active = active(&cluster, survivor);
        on_victim
            .iter()
            .all(|unit| {
                active
                    .get(unit)
                    .is_some_and(|machines| machines.iter().any(|m| *m != victim_id))
            })
            .then_some(())
    });
    Sample {
        start_returned,
        start_active,
        moved: killed.elapsed(),
        moved_units: on_victim.len(),
        rest,
        rss_kb,
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

fn main() {
    let runs: usize = match std::env::args().skip(1).collect::<Vec<_>>().as_slice() {
        [] => 3,
        [flag, n] if flag == "--runs" => n.parse().unwrap_or(3).max(1),
        _ => {
            eprintln!("usage: flotilla-bench-cluster [--runs N]");
            std::process::exit(2);
        }
    };
    let load = load_average();
    let samples: Vec<Sample> = (0..runs).map(|_| run()).collect();
    let secs =
        |pick: fn(&Sample) -> Duration| median(samples.iter().map(pick).collect()).as_secs_f64();
    let rest = |pick: fn(&Rest) -> f64| median(samples.iter().map(|s| pick(&s.rest)).collect());
    let rss: Vec<f64> = samples
        .iter()
        .flat_map(|s| s.rss_kb.iter().map(|kb| *kb as f64 / 1024.0))
        .collect();
    let moved_units = median(samples.iter().map(|s| s.moved_units as f64).collect());

    println!(
        "3-node local cluster, etcd 3.4 on the host, agent TTL {TTL:?}; median of {runs} run(s); \
         load average before: {load}"
    );
    println!("fleet v1.0 numbers are anchors from DESIGN.md §6 (same kind of cluster; fleet does not run here)");
    let row =
        |label: &str, ours: String, anchor: &str| println!("{label:<56} {ours:>10}   {anchor}");
    row("", "flotilla".to_owned(), "fleet (anchor)");
    row(
        &format!("flotctl start of {UNITS} units → returned"),
        format!("{:.2} s", secs(|s| s.start_returned)),
        "-",
    );
    row(
        &format!("flotctl start of {UNITS} units → all active in list-units"),
        format!("{:.2} s", secs(|s| s.start_active)),
        "3.9 s",
    );
    row(
        &format!("kill -9 of a node → its {moved_units:.0} units active elsewhere"),
        format!("{:.2} s", secs(|s| s.moved)),
        "6.6 s (10 units)",
    );
    row(
        &format!("etcd writes/s at rest, {UNITS} units (mvcc put+delete)"),
        format!("{:.1}", rest(|r| r.writes)),
        "≈ 203 PUT/s",
    );
    row(
        "etcd reads/s at rest (mvcc range)",
        format!("{:.1}", rest(|r| r.reads)),
        "-",
    );
    row(
        "etcd gRPC unary requests/s at rest",
        format!("{:.1}", rest(|r| r.unary)),
        "-",
    );
    row(
        "etcd lease keep-alives/s at rest",
        format!("{:.1}", rest(|r| r.keep_alives)),
        "-",
    );
    row(
        "agent RSS, median over nodes and runs",
        format!("{:.1} MB", median(rss.clone())),
        "≈ 18 MB",
    );
    row(
        "agent RSS, largest",
        format!("{:.1} MB", rss.iter().copied().fold(0.0, f64::max)),
        "-",
    );
}
