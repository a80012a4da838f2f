//! The cluster end to end: agents on a local cluster of systemd nodes with a real etcd, driven
//! only through `flotctl`, `systemctl` and `journalctl` inside the nodes.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use flotilla_tests::cluster::{Cluster, ClusterConfig};

/// A unit that runs until stopped.
const SLEEPER: &str = "[Service]\nExecStart=/usr/bin/sleep infinity\n";

fn boot(nodes: usize, metadata: &[&[(&str, &str)]]) -> Cluster {
    let mut config = ClusterConfig::new(nodes);
    config.agent_ttl = Duration::from_secs(3);
    config.metadata = metadata
        .iter()
        .map(|pairs| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        })
        .collect();
    let cluster = Cluster::boot(config).expect("boot the cluster");
    cluster.start_agents().expect("start the agents");
    cluster
}

/// Runs `flotctl ARGS` in node `n`; stdout, or a panic with everything it printed.
fn flotctl(cluster: &Cluster, n: usize, args: &[&str]) -> String {
    let mut argv = vec!["flotctl"];
    argv.extend_from_slice(args);
    let output = cluster.node(n).exec(&argv).expect("run flotctl");
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    assert!(
        output.status.success(),
        "flotctl {args:?} on node{n}: {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        text(&output.stdout),
        text(&output.stderr)
    );
    text(&output.stdout)
}

/// Writes unit files into node `n`'s `/root/units/`.
fn write_units(cluster: &Cluster, n: usize, units: &[(&str, &str)]) {
    for (name, text) in units {
        cluster
            .node(n)
            .write(&format!("/root/units/{name}"), text)
            .expect("write a unit file");
    }
}

/// `list-units` as unit → set of (hostname) machines running it (active).
fn running(cluster: &Cluster) -> BTreeMap<String, BTreeSet<String>> {
    let by_id: BTreeMap<String, String> = cluster
        .nodes()
        .iter()
        .map(|node| (node.machine_id().to_owned(), node.hostname().to_owned()))
        .collect();
    let listing = flotctl(
        cluster,
        1,
        &[
            "list-units",
            "--no-legend",
            "--full",
            "--fields",
            "unit,machine,active",
        ],
    );
    let mut running: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in listing.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [unit, machine, active] = fields.as_slice() else {
            panic!("unexpected list-units line {line:?}");
        };
        if *active == "active" {
            let id = machine.split('/').next().unwrap_or_default();
            running
                .entry((*unit).to_owned())
                .or_default()
                .insert(by_id.get(id).cloned().unwrap_or_else(|| id.to_owned()));
        }
    }
    running
}

fn wait_until<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

#[test]
fn units_land_where_their_x_fleet_options_say() {
    let cluster = boot(
        3,
        &[
            &[("disk", "ssd")],
            &[("disk", "hdd")],
            &[("disk", "ssd"), ("region", "eu")],
        ],
    );
    let node2 = cluster.node(2).machine_id()[..8].to_owned();
    let pinned = format!("{SLEEPER}[X-Fleet]\nMachineID={node2}\n");
    let legacy_pinned = format!(
        "{SLEEPER}[X-Fleet]\nX-ConditionMachineID={}\n",
        cluster.node(3).machine_id()
    );
    let metadata = format!("{SLEEPER}[X-Fleet]\nMachineMetadata=region=eu\n");
    let legacy_metadata = format!("{SLEEPER}[X-Fleet]\nX-ConditionMachineMetadata=disk=hdd\n");
    let or_metadata = format!("{SLEEPER}[X-Fleet]\nMachineMetadata=\"disk=hdd\" \"disk=nvme\"\n");
    let mongo = format!("[Unit]\nDescription=General MongoDB Service\n{SLEEPER}");
    let employees = format!(
        "[Unit]\nAfter=mongo.service\n{SLEEPER}[X-Fleet]\nX-ConditionMachineOf=mongo.service\n"
    );
    let web = format!("{SLEEPER}[X-Fleet]\nConflicts=web@*.service\n");
    let global = format!("{SLEEPER}[X-Fleet]\nGlobal=true\nMachineMetadata=disk=ssd\n");
    write_units(
        &cluster,
        1,
        &[
            ("pinned.service", &pinned),
            ("legacy-pinned.service", &legacy_pinned),
            ("metadata.service", &metadata),
            ("legacy-metadata.service", &legacy_metadata),
            ("or-metadata.service", &or_metadata),
            ("mongo.service", &mongo),
            ("employees.service", &employees),
            ("web@.service", &web),
            ("global.service", &global),
        ],
    );
    let started = flotctl(
        &cluster,
        1,
        &[
            "start",
            "/root/units/pinned.service",
            "/root/units/legacy-pinned.service",
            "/root/units/metadata.service",
            "/root/units/legacy-metadata.service",
            "/root/units/or-metadata.service",
            "/root/units/employees.service",
            "/root/units/mongo.service",
            "/root/units/web@1.service",
            "/root/units/web@2.service",
            "/root/units/web@3.service",
            "/root/units/global.service",
        ],
    );
    assert!(
        started.contains("Unit pinned.service launched on "),
        "{started}"
    );
    assert!(
        started.contains("Triggered global unit global.service start"),
        "{started}"
    );
    let running = wait_until("every unit active", Duration::from_secs(30), || {
        let running = running(&cluster);
        (running.get("global.service").map(BTreeSet::len) == Some(2) && running.len() == 11)
            .then_some(running)
    });
    assert_eq!(running["pinned.service"], set(&["node2"]));
    assert_eq!(running["legacy-pinned.service"], set(&["node3"]));
    assert_eq!(running["metadata.service"], set(&["node3"]));
    assert_eq!(running["legacy-metadata.service"], set(&["node2"]));
    assert_eq!(running["or-metadata.service"], set(&["node2"]));
    assert_eq!(running["employees.service"], running["mongo.service"]);
    let webs: BTreeSet<String> = ["web@1.service", "web@2.service", "web@3.service"]
        .iter()
        .flat_map(|unit| running[*unit].clone())
        .collect();
    assert_eq!(
        webs,
        set(&["node1", "node2", "node3"]),
        "conflicts spread them"
    );
    assert_eq!(running["global.service"], set(&["node1", "node3"]));
    // systemd on the machine agrees, and the unit file carries no [X-Fleet].
    let witness = cluster
        .node(2)
        .exec_ok(&["systemctl", "is-active", "pinned.service"])
        .expect("systemctl");
    assert_eq!(witness.trim(), "active");
    let file = cluster
        .node(2)
        .exec_ok(&["cat", "/run/flotilla/units/pinned.service"])
        .expect("the unit file");
    assert!(!file.contains("X-Fleet"), "{file}");
}
