//! The cluster end to end: agents on a local cluster of systemd nodes with a real etcd, driven
//! only through `flotctl`, `systemctl` and `journalctl` inside the nodes.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use flotilla_tests::cluster::{Cluster, ClusterConfig};
use flotilla_tests::flotilla::busybox_tarball;

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

/// Writes unit files into node 1 and starts them all with one `flotctl start` there.
fn start_units(cluster: &Cluster, units: &[(&str, &str)]) -> String {
    write_units(cluster, 1, units);
    let paths: Vec<String> = units
        .iter()
        .map(|(name, _)| format!("/root/units/{name}"))
        .collect();
    let mut args = vec!["start"];
    args.extend(paths.iter().map(String::as_str));
    flotctl(cluster, 1, &args)
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
    let legacy_conflicts = format!("{SLEEPER}[X-Fleet]\nX-Conflicts=metadata.service\n");
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
            ("legacy-conflicts.service", &legacy_conflicts),
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
            "/root/units/legacy-conflicts.service",
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
        (running.get("global.service").map(BTreeSet::len) == Some(2) && running.len() == 12)
            .then_some(running)
    });
    assert_eq!(running["pinned.service"], set(&["node2"]));
    assert_eq!(running["legacy-pinned.service"], set(&["node3"]));
    assert_eq!(running["metadata.service"], set(&["node3"]));
    assert_eq!(running["legacy-metadata.service"], set(&["node2"]));
    assert_eq!(running["or-metadata.service"], set(&["node2"]));
    assert_eq!(running["employees.service"], running["mongo.service"]);
    assert!(
        !running["legacy-conflicts.service"].contains("node3"),
        "{running:?}"
    );
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

/// The machine (hostname) running `unit`, once exactly one does.
fn machine_of(cluster: &Cluster, unit: &str) -> String {
    wait_until(
        &format!("{unit} active on one machine"),
        Duration::from_secs(30),
        || {
            let running = running(cluster);
            let machines = running.get(unit)?;
            (machines.len() == 1).then(|| machines.iter().next().cloned().unwrap_or_default())
        },
    )
}

/// systemd's main PID of `unit` on node `n` (it changes when the unit restarts).
fn main_pid(cluster: &Cluster, n: usize, unit: &str) -> String {
    cluster
        .node(n)
        .exec_ok(&["systemctl", "show", "-p", "MainPID", "--value", unit])
        .expect("systemctl show")
        .trim()
        .to_owned()
}

fn node_number(hostname: &str) -> usize {
    hostname
        .trim_start_matches("node")
        .parse()
        .expect("node<n> hostnames")
}

#[test]
fn a_lost_machines_units_move_with_their_followers_and_nothing_else_moves() {
    let cluster = boot(3, &[]);
    let web = format!("{SLEEPER}[X-Fleet]\nConflicts=web@*.service\n");
    let follower = format!("{SLEEPER}[X-Fleet]\nMachineOf=web@1.service\n");
    write_units(
        &cluster,
        1,
        &[("web@.service", &web), ("follower.service", &follower)],
    );
    flotctl(
        &cluster,
        1,
        &[
            "start",
            "/root/units/web@1.service",
            "/root/units/web@2.service",
            "/root/units/follower.service",
        ],
    );
    let lost = machine_of(&cluster, "web@1.service");
    assert_eq!(machine_of(&cluster, "follower.service"), lost);
    let stayer = machine_of(&cluster, "web@2.service");
    let survivor = (1..=3)
        .find(|n| format!("node{n}") != lost)
        .expect("a survivor");
    let stayer_pid = main_pid(&cluster, node_number(&stayer), "web@2.service");
    cluster
        .kill_node(node_number(&lost))
        .expect("kill the node");
    let killed = Instant::now();
    let moved_to = wait_until(
        "web@1 and its follower elsewhere",
        Duration::from_secs(30),
        || {
            let listing = flotctl(
                &cluster,
                survivor,
                &[
                    "list-units",
                    "--no-legend",
                    "--full",
                    "--fields",
                    "unit,machine,active",
                ],
            );
            let by_id: BTreeMap<&str, &str> = cluster
                .nodes()
                .iter()
                .map(|node| (node.machine_id(), node.hostname()))
                .collect();
            let on = |unit: &str| {
                listing.lines().find_map(|line| {
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    (fields.first() == Some(&unit) && fields.get(2) == Some(&"active"))
                        .then(|| by_id.get(fields[1].split('/').next()?).copied())
                        .flatten()
                })
            };
            match (on("web@1.service"), on("follower.service")) {
                (Some(a), Some(b)) if a == b && a != lost => Some(a.to_owned()),
                _ => None,
            }
        },
    );
    let took = killed.elapsed();
    eprintln!("units moved {took:?} after the machine was killed (agent TTL 3 s)");
    assert!(
        took <= 2 * cluster.agent_ttl() + Duration::from_secs(3),
        "moving took {took:?}, more than two TTLs"
    );
    assert_ne!(moved_to, lost);
    assert_eq!(
        main_pid(&cluster, node_number(&stayer), "web@2.service"),
        stayer_pid,
        "a unit on a healthy machine was restarted"
    );
}

#[test]
fn killing_the_agent_restarts_no_unit_and_moves_nothing() {
    let cluster = boot(2, &[]);
    start_units(&cluster, &[("a.service", SLEEPER), ("b.service", SLEEPER)]);
    let before: BTreeMap<String, (String, String)> = ["a.service", "b.service"]
        .iter()
        .map(|unit| {
            let machine = machine_of(&cluster, unit);
            let pid = main_pid(&cluster, node_number(&machine), unit);
            ((*unit).to_owned(), (machine, pid))
        })
        .collect();
    for n in 1..=2 {
        let agent = main_pid(&cluster, n, "flotilla.service");
        cluster
            .node(n)
            .exec_ok(&["kill", "-9", &agent])
            .expect("kill -9 the agent");
    }
    // systemd restarts the agents (Restart=always); wait past two TTLs, which would have moved
    // the units if a lease had been lost.
    std::thread::sleep(2 * cluster.agent_ttl() + Duration::from_secs(1));
    for n in 1..=2 {
        wait_until("the agent back", Duration::from_secs(20), || {
            (cluster
                .node(n)
                .exec_ok(&["systemctl", "is-active", "flotilla.service"])
                .ok()?
                .trim()
                == "active")
                .then_some(())
        });
    }
    cluster.wait_for_machines(2).expect("both machines listed");
    for (unit, (machine, pid)) in &before {
        assert_eq!(&machine_of(&cluster, unit), machine, "{unit} moved");
        assert_eq!(
            &main_pid(&cluster, node_number(machine), unit),
            pid,
            "{unit} was restarted"
        );
    }
    let journal = agent_journal(&cluster, 1);
    assert!(
        !journal.contains("node: start a.service: unit revision"),
        "{journal}"
    );
}

#[test]
fn status_and_journal_come_from_the_machine_that_runs_the_unit() {
    let cluster = boot(2, &[&[("disk", "ssd")], &[("disk", "hdd")]]);
    let chatty =
        "[Service]\nExecStart=/bin/sh -c 'echo hello-from-the-unit; exec sleep infinity'\n\
                  [X-Fleet]\nMachineMetadata=disk=hdd\n";
    let nowhere = format!("{SLEEPER}[X-Fleet]\nMachineMetadata=disk=nvme\n");
    write_units(
        &cluster,
        1,
        &[("chatty.service", chatty), ("nowhere.service", &nowhere)],
    );
    flotctl(&cluster, 1, &["start", "/root/units/chatty.service"]);
    assert_eq!(machine_of(&cluster, "chatty.service"), "node2");
    let status = flotctl(&cluster, 1, &["status", "chatty.service"]);
    assert!(status.contains("Active: active (running)"), "{status}");
    let journal = wait_until(
        "the unit's output in its journal",
        Duration::from_secs(10),
        || {
            let journal = flotctl(&cluster, 1, &["journal", "--lines", "20", "chatty.service"]);
            journal.contains("hello-from-the-unit").then_some(journal)
        },
    );
    assert!(
        journal.contains("node2"),
        "journal lines name the machine: {journal}"
    );
    let followed = cluster
        .node(1)
        .exec(&["timeout", "3", "flotctl", "journal", "-f", "chatty.service"])
        .expect("flotctl journal -f");
    assert_eq!(
        followed.status.code(),
        Some(124),
        "-f keeps following until stopped"
    );
    assert!(String::from_utf8_lossy(&followed.stdout).contains("hello-from-the-unit"));
    flotctl(
        &cluster,
        1,
        &["start", "--no-block", "/root/units/nowhere.service"],
    );
    let output = cluster
        .node(1)
        .exec(&["flotctl", "status", "nowhere.service"])
        .expect("flotctl status");
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains("Unit nowhere.service is not running on any machine."),
        "{text}"
    );
    for (n, has) in [(1, "ssd"), (2, "hdd")] {
        let line = format!(
            "{}.../{}: MachineMetadata requires disk=nvme, machine has disk={has}",
            &cluster.node(n).machine_id()[..8],
            cluster.node(n).address().expect("address")
        );
        assert!(text.contains(&line), "missing {line:?} in:\n{text}");
    }
}

#[test]
fn fifty_units_start_in_one_command() {
    let cluster = boot(3, &[]);
    write_units(&cluster, 1, &[("many@.service", SLEEPER)]);
    let names: Vec<String> = (1..=50)
        .map(|i| format!("/root/units/many@{i}.service"))
        .collect();
    let mut args = vec!["start"];
    args.extend(names.iter().map(String::as_str));
    let started = Instant::now();
    let output = flotctl(&cluster, 1, &args);
    eprintln!(
        "50 units active {:?} after flotctl start",
        started.elapsed()
    );
    assert_eq!(output.matches(" launched on ").count(), 50, "{output}");
    let running = running(&cluster);
    let mut per_machine: BTreeMap<String, usize> = BTreeMap::new();
    for machines in running.values() {
        assert_eq!(machines.len(), 1);
        for machine in machines {
            *per_machine.entry(machine.clone()).or_default() += 1;
        }
    }
    assert_eq!(running.len(), 50);
    assert!(
        per_machine.values().all(|count| (16..=17).contains(count)),
        "least-loaded placement spreads them: {per_machine:?}"
    );
}

/// `flotctl ARGS` on node `n`: exit code, stdout, stderr (for commands expected to fail).
fn flotctl_output(cluster: &Cluster, n: usize, args: &[&str]) -> (Option<i32>, String, String) {
    let mut argv = vec!["flotctl"];
    argv.extend_from_slice(args);
    let output = cluster.node(n).exec(&argv).expect("run flotctl");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn unit_lifecycle_replace_and_templates_from_the_cluster() {
    let cluster = boot(2, &[]);
    let v1 = "[Service]\nExecStart=/bin/sh -c 'echo version-1; exec sleep infinity'\n";
    let v2 = "[Service]\nExecStart=/bin/sh -c 'echo version-2; exec sleep infinity'\n";
    write_units(
        &cluster,
        1,
        &[("app.service", v1), ("tpl@.service", SLEEPER)],
    );
    // submit, load, start, stop, unload: the states fleetctl prints.
    let submitted = flotctl(&cluster, 1, &["submit", "/root/units/app.service"]);
    assert_eq!(submitted, "Unit app.service inactive\n");
    let files = flotctl(&cluster, 1, &["list-unit-files", "--no-legend"]);
    let fields: Vec<&str> = files.split_whitespace().collect();
    assert_eq!(
        &fields[..],
        &["app.service", fields[1], "inactive", "inactive", "-"]
    );
    let loaded = flotctl(&cluster, 1, &["load", "app.service"]);
    assert!(
        loaded.starts_with("Unit app.service loaded on "),
        "{loaded}"
    );
    let started = flotctl(&cluster, 1, &["start", "app"]);
    assert!(
        started.starts_with("Unit app.service launched on "),
        "{started}"
    );
    let hash_v1 = fields[1].to_owned();
    // A changed local file is refused without --replace, and replaces with it.
    write_units(&cluster, 1, &[("app.service", v2)]);
    let (code, _, stderr) = flotctl_output(&cluster, 1, &["start", "/root/units/app.service"]);
    assert_eq!(code, Some(0));
    assert!(
        stderr.contains("WARNING: Unit app.service in registry differs from local unit file"),
        "{stderr}"
    );
    flotctl(
        &cluster,
        1,
        &["start", "--replace", "/root/units/app.service"],
    );
    let cat = flotctl(&cluster, 1, &["cat", "app.service"]);
    assert!(cat.contains("version-2"), "{cat}");
    let files = flotctl(
        &cluster,
        1,
        &[
            "list-unit-files",
            "--no-legend",
            "--fields",
            "unit,hash,dstate,state",
        ],
    );
    let fields: Vec<&str> = files.split_whitespace().collect();
    assert_eq!(fields.len(), 4, "{files}");
    assert_ne!(fields[1], hash_v1, "the hash changed");
    assert_eq!(&fields[2..], &["launched", "launched"], "{files}");
    let machine = node_number(&machine_of(&cluster, "app.service"));
    let unit_file = cluster
        .node(machine)
        .exec_ok(&["cat", "/run/flotilla/units/app.service"])
        .expect("the unit file");
    assert!(unit_file.contains("version-2"), "{unit_file}");
    // restart stops and starts it where it is.
    let pid = main_pid(&cluster, machine, "app.service");
    let restarted = flotctl(&cluster, 1, &["restart", "app.service"]);
    assert!(
        restarted.contains("Unit app.service launched on "),
        "{restarted}"
    );
    assert_ne!(
        main_pid(&cluster, machine, "app.service"),
        pid,
        "a new process"
    );
    // stop keeps it placed, unload unplaces it, destroy removes it.
    let (code, stdout, stderr) = flotctl_output(&cluster, 1, &["stop", "app.service"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.starts_with("Unit app.service loaded on "),
        "{stdout}"
    );
    assert_eq!(stderr, "Successfully stopped units [app.service].\n");
    let active = cluster
        .node(machine)
        .exec(&["systemctl", "is-active", "app.service"])
        .expect("systemctl");
    assert_eq!(String::from_utf8_lossy(&active.stdout).trim(), "inactive");
    let (_, stdout, _) = flotctl_output(&cluster, 1, &["unload", "app.service"]);
    assert_eq!(stdout, "Unit app.service inactive\n");
    let (code, _, stderr) = flotctl_output(&cluster, 1, &["stop", "app.service"]);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("Unable to stop unit app.service in state inactive"),
        "{stderr}"
    );
    assert_eq!(
        flotctl(&cluster, 1, &["destroy", "app.service"]),
        "Destroyed app.service\n"
    );
    assert_eq!(
        flotctl(&cluster, 1, &["list-unit-files", "--no-legend"]),
        ""
    );
    let (code, _, stderr) = flotctl_output(&cluster, 1, &["cat", "app.service"]);
    assert_eq!(
        (code, stderr.as_str()),
        (Some(1), "Error: Unit app.service does not exist.\n")
    );
    // A template submitted to the cluster makes instances on any machine, no local file needed.
    flotctl(&cluster, 1, &["submit", "/root/units/tpl@.service"]);
    let (code, _, stderr) = flotctl_output(&cluster, 1, &["start", "tpl@.service"]);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("cannot activate template \"tpl@.service\""),
        "{stderr}"
    );
    let started = flotctl(&cluster, 2, &["start", "tpl@7.service"]);
    assert!(
        started.starts_with("Unit tpl@7.service launched on "),
        "{started}"
    );
}

#[test]
fn replaces_moves_the_replaced_unit_off_the_machine() {
    let cluster = boot(2, &[&[("role", "a")], &[("role", "b")]]);
    write_units(&cluster, 1, &[("old.service", SLEEPER)]);
    flotctl(&cluster, 1, &["start", "/root/units/old.service"]);
    let old_machine = machine_of(&cluster, "old.service");
    let role = if old_machine == "node1" { "a" } else { "b" };
    let new = format!("{SLEEPER}[X-Fleet]\nReplaces=old.service\nMachineMetadata=role={role}\n");
    write_units(&cluster, 1, &[("new.service", &new)]);
    flotctl(&cluster, 1, &["start", "/root/units/new.service"]);
    assert_eq!(machine_of(&cluster, "new.service"), old_machine);
    let moved = wait_until("old.service moved", Duration::from_secs(20), || {
        let machine = machine_of(&cluster, "old.service");
        (machine != old_machine).then_some(machine)
    });
    assert_ne!(moved, old_machine);
}

/// Two machines with `disk=hdd`, and `fast.service` (wanting `disk=ssd`) submitted to start.
fn two_hdd_machines_and_a_unit_wanting_ssd() -> Cluster {
    let cluster = boot(2, &[&[("disk", "hdd")], &[("disk", "hdd")]]);
    let wants_ssd = format!("{SLEEPER}[X-Fleet]\nMachineMetadata=disk=ssd\n");
    write_units(&cluster, 1, &[("fast.service", &wants_ssd)]);
    flotctl(
        &cluster,
        1,
        &["start", "--no-block", "/root/units/fast.service"],
    );
    cluster
}

#[test]
fn sighup_applies_new_metadata_without_dropping_the_api() {
    let cluster = two_hdd_machines_and_a_unit_wanting_ssd();
    let config = cluster
        .agent_config(2)
        .replace("disk = \"hdd\"", "disk = \"ssd\"");
    cluster
        .node(2)
        .write("/etc/flotilla/flotilla.toml", &config)
        .expect("write the new configuration");
    let agent_pid = main_pid(&cluster, 2, "flotilla.service");
    cluster
        .node(2)
        .exec_ok(&["systemctl", "reload", "flotilla.service"])
        .expect("systemctl reload");
    assert_eq!(machine_of(&cluster, "fast.service"), "node2");
    assert_eq!(
        main_pid(&cluster, 2, "flotilla.service"),
        agent_pid,
        "the agent kept running"
    );
    let machines = flotctl(&cluster, 2, &["list-machines", "--no-legend"]);
    assert!(machines.contains("disk=ssd"), "{machines}");
}

#[test]
fn a_second_machine_with_the_same_id_is_refused() {
    let cluster = boot(2, &[]);
    let first = cluster.node(1).machine_id().to_owned();
    cluster
        .node(2)
        .write("/etc/machine-id", &format!("{first}\n"))
        .expect("copy the machine ID");
    cluster
        .node(2)
        .exec_ok(&["systemctl", "restart", "flotilla.service"])
        .expect("restart the agent");
    let journal = wait_until(
        "the refusal in node2's journal",
        Duration::from_secs(20),
        || {
            let journal = cluster
                .node(2)
                .journal(&["-u", "flotilla.service", "--no-pager"])
                .ok()?;
            journal.contains("refusing to join").then_some(journal)
        },
    );
    let address = cluster.node(1).address().expect("address").to_string();
    assert!(
        journal.contains(&format!(
            "machine {first} is already registered by {address}"
        )),
        "{journal}"
    );
    let machines = flotctl(&cluster, 1, &["list-machines", "--no-legend", "--full"]);
    let listed: Vec<&str> = machines.lines().filter(|l| l.starts_with(&first)).collect();
    assert_eq!(listed.len(), 1, "{machines}");
    assert!(listed[0].contains(&address), "{machines}");
}

#[test]
fn a_machine_cut_off_from_etcd_stops_its_units_once_they_run_elsewhere() {
    let cluster = boot(3, &[]);
    // The unit keeps off node 1 (it conflicts with a unit pinned there), so node 1 can watch it
    // move.
    let avoid = format!("{SLEEPER}[X-Fleet]\nConflicts=anchor.service\n");
    let anchor = format!(
        "{SLEEPER}[X-Fleet]\nMachineID={}\n",
        cluster.node(1).machine_id()
    );
    write_units(
        &cluster,
        1,
        &[("anchor.service", &anchor), ("moving.service", &avoid)],
    );
    flotctl(&cluster, 1, &["start", "/root/units/anchor.service"]);
    flotctl(&cluster, 1, &["start", "/root/units/moving.service"]);
    let cut = machine_of(&cluster, "moving.service");
    assert_ne!(cut, "node1");
    let cut_n = node_number(&cut);
    cluster.cut_off(cut_n).expect("cut the machine off");
    let elsewhere = wait_until("moving.service elsewhere", Duration::from_secs(30), || {
        let machine = machine_of(&cluster, "moving.service");
        (machine != cut).then_some(machine)
    });
    assert_ne!(elsewhere, cut);
    wait_until(
        "the cut-off machine stopped its copy",
        Duration::from_secs(20),
        || {
            let output = cluster
                .node(cut_n)
                .exec(&["systemctl", "is-active", "moving.service"])
                .ok()?;
            let state = String::from_utf8_lossy(&output.stdout).trim().to_owned();
            (state == "inactive" || state == "failed").then_some(())
        },
    );
    cluster.reconnect(cut_n).expect("reconnect");
    cluster
        .wait_for_machines(3)
        .expect("the machine joins again");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        machine_of(&cluster, "moving.service"),
        elsewhere,
        "it did not move back"
    );
}

#[test]
fn the_cluster_keeps_working_when_an_etcd_member_dies() {
    let mut config = ClusterConfig::new(2);
    config.agent_ttl = Duration::from_secs(3);
    config.etcd_members = 3;
    let mut cluster = Cluster::boot(config).expect("boot the cluster");
    cluster.start_agents().expect("start the agents");
    write_units(&cluster, 1, &[("before.service", SLEEPER)]);
    write_units(&cluster, 2, &[("after.service", SLEEPER)]);
    flotctl(&cluster, 1, &["start", "/root/units/before.service"]);
    let machine = machine_of(&cluster, "before.service");
    let pid = main_pid(&cluster, node_number(&machine), "before.service");
    cluster.kill_etcd_member(1).expect("kill an etcd member");
    let started = flotctl(&cluster, 2, &["start", "/root/units/after.service"]);
    assert!(
        started.starts_with("Unit after.service launched on "),
        "{started}"
    );
    machine_of(&cluster, "after.service");
    std::thread::sleep(2 * Duration::from_secs(3));
    assert_eq!(machine_of(&cluster, "before.service"), machine);
    assert_eq!(
        main_pid(&cluster, node_number(&machine), "before.service"),
        pid
    );
    cluster
        .wait_for_machines(2)
        .expect("both machines still listed");
}

#[test]
fn an_etcd_outage_the_lease_outlives_moves_nothing_and_restarts_nothing() {
    // The agent gives its lease up for lost after a TTL without answers, but etcd, started again
    // on its data, extends every lease: the agent must take the same lease back, not wait for it
    // to expire as if another machine held its ID. A long grace keeps the units running meanwhile.
    let mut config = ClusterConfig::new(1);
    config.agent_ttl = Duration::from_secs(3);
    let mut cluster = Cluster::boot(config).expect("boot the cluster");
    cluster.start_agents().expect("start the agents");
    let settings = format!("{}partition_grace = \"60s\"\n", cluster.agent_config(1));
    let node = cluster.node(1);
    node.write("/etc/flotilla/flotilla.toml", &settings)
        .expect("write the configuration");
    node.exec_ok(&["systemctl", "restart", "flotilla.service"])
        .expect("restart the agent");
    cluster.wait_for_machines(1).expect("the machine listed");
    start_units(&cluster, &[("steady.service", SLEEPER)]);
    let pid = main_pid(&cluster, 1, "steady.service");
    let lease = |cluster: &Cluster| {
        cluster
            .node(1)
            .exec_ok(&["cat", "/run/flotilla/lease"])
            .expect("the saved lease")
    };
    let before = lease(&cluster);
    cluster.kill_etcd_member(1).expect("kill etcd");
    wait_until("the lease given up", Duration::from_secs(20), || {
        agent_journal(&cluster, 1)
            .contains("machine lease lost")
            .then_some(())
    });
    cluster.restart_etcd_member(1).expect("start etcd again");
    let joined = format!("under lease {}", before.trim());
    wait_until("the same lease adopted", Duration::from_secs(20), || {
        (agent_journal(&cluster, 1).matches(&joined).count() >= 2).then_some(())
    });
    let journal = agent_journal(&cluster, 1);
    assert!(!journal.contains("refusing to join"), "{journal}");
    assert_eq!(main_pid(&cluster, 1, "steady.service"), pid, "{journal}");
    assert_eq!(lease(&cluster), before);
}

fn agent_journal(cluster: &Cluster, n: usize) -> String {
    cluster
        .node(n)
        .journal(&["-u", "flotilla.service", "--no-pager"])
        .expect("the agent's journal")
}

#[test]
fn sigterm_leaves_the_cluster_and_the_units_move_at_once() {
    // A long TTL: units that moved only after it would make this test time out.
    let mut config = ClusterConfig::new(2);
    config.agent_ttl = Duration::from_secs(60);
    let cluster = Cluster::boot(config).expect("boot the cluster");
    cluster.start_agents().expect("start the agents");
    start_units(&cluster, &[("a.service", SLEEPER), ("b.service", SLEEPER)]);
    let on_node2 = ["a.service", "b.service"]
        .into_iter()
        .find(|unit| machine_of(&cluster, unit) == "node2")
        .expect("least-loaded placement put one unit on node2");
    cluster
        .node(2)
        .exec_ok(&["systemctl", "stop", "flotilla.service"])
        .expect("stop the agent");
    let inactive = cluster
        .node(2)
        .exec(&["systemctl", "is-active", on_node2])
        .expect("systemctl");
    assert_eq!(String::from_utf8_lossy(&inactive.stdout).trim(), "inactive");
    wait_until("the unit on node1", Duration::from_secs(15), || {
        (machine_of(&cluster, on_node2) == "node1").then_some(())
    });
    assert_eq!(
        flotctl(&cluster, 1, &["list-machines", "--no-legend"])
            .lines()
            .count(),
        1
    );
}

#[test]
fn machine_metadata_changes_through_the_api() {
    let cluster = two_hdd_machines_and_a_unit_wanting_ssd();
    let patch = format!(
        r#"[{{"op":"replace","path":"/{}/metadata/disk","value":{{"value":"ssd"}}}}]"#,
        cluster.node(1).machine_id()
    );
    let curl = [
        "curl",
        "-sS",
        "--fail-with-body",
        "--unix-socket",
        "/run/flotilla/flotilla.sock",
        "-X",
        "PATCH",
        "-H",
        "Content-Type: application/json",
        "--data",
        &patch,
        "http://flotilla/fleet/v1/machines",
    ];
    cluster.node(2).exec_ok(&curl).expect("PATCH /machines");
    assert_eq!(machine_of(&cluster, "fast.service"), "node1");
    let machines = flotctl(&cluster, 2, &["list-machines", "--no-legend", "--full"]);
    let node1 = machines
        .lines()
        .find(|line| line.starts_with(cluster.node(1).machine_id()))
        .expect("node1 listed");
    assert!(node1.ends_with("disk=ssd"), "{machines}");
}

#[test]
fn flotctl_reaches_a_remote_agent_over_mutual_tls_only() {
    let cluster = boot(2, &[]);
    let identity = cluster
        .client_identity("operator")
        .expect("a client certificate");
    let endpoint = format!(
        "https://{}:{}",
        cluster.node(2).address().expect("address"),
        flotilla_tests::cluster::AGENT_API_PORT
    );
    let flotctl = flotilla_tests::locate_binary("flotctl").expect("flotctl built");
    let run = |extra: &[&str]| {
        std::process::Command::new(&flotctl)
            .args(["--endpoint", &endpoint])
            .args(extra)
            .args(["list-machines", "--no-legend"])
            .output()
            .expect("run flotctl")
    };
    let tls = [
        "--ca-file",
        identity.ca.to_str().expect("utf-8"),
        "--cert-file",
        identity.cert.to_str().expect("utf-8"),
        "--key-file",
        identity.key.to_str().expect("utf-8"),
    ];
    let output = run(&tls);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(String::from_utf8_lossy(&output.stdout).lines().count(), 2);
    let output = run(&[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("needs --ca-file, --cert-file and --key-file"),
        "{output:?}"
    );
    // A certificate from another CA is refused by the agent.
    let stranger_dir = tempfile::tempdir().expect("temporary directory");
    let stranger = flotilla_tests::pki::Authority::create(stranger_dir.path())
        .and_then(|ca| ca.issue("stranger", cluster.host_address()))
        .expect("another CA");
    let output = run(&[
        "--ca-file",
        identity.ca.to_str().expect("utf-8"),
        "--cert-file",
        stranger.cert.to_str().expect("utf-8"),
        "--key-file",
        stranger.key.to_str().expect("utf-8"),
    ]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains(&format!("agent at {endpoint}")),
        "{output:?}"
    );
}

#[test]
fn a_container_unit_started_through_the_cluster_runs_its_container() {
    let cluster = boot(1, &[]);
    let node = cluster.node(1);
    let scratch = tempfile::TempDir::new().expect("scratch");
    let tarball = busybox_tarball(&scratch.path().join("rootfs"), &[]);
    node.install(&tarball, "/var/tmp/bb.tar", 0o644)
        .expect("install the image");
    // overlayfs cannot take its upper directory from the node's overlay /var.
    node.exec_ok(&["mkdir", "-p", "/var/lib/flotilla"])
        .expect("mkdir");
    node.exec_ok(&["mount", "-t", "tmpfs", "tmpfs", "/var/lib/flotilla"])
        .expect("mount the data root");
    node.exec_ok(&["flotilla", "import", "/var/tmp/bb.tar", "bb"])
        .expect("import the image");
    node.write(
        "/root/units/web.container",
        "[Unit]\nDescription=web in a container\n[Container]\nImage=bb\nName=web\n\
         Exec=sleep 1000\n",
    )
    .expect("write the unit");
    let started = flotctl(&cluster, 1, &["start", "/root/units/web.container"]);
    assert!(
        started.starts_with("Unit web.service launched on "),
        "{started}"
    );
    let inspect = |node: &flotilla_tests::Node| -> serde_json::Value {
        let text = node
            .exec_ok(&["flotilla", "inspect", "web"])
            .expect("inspect the container");
        serde_json::from_str(&text).expect("inspect prints JSON")
    };
    let running = inspect(node);
    assert_eq!(running[0]["State"]["Status"], "running");
    assert_eq!(
        running[0]["Flotilla"]["Supervisor"]["Pid"].to_string(),
        main_pid(&cluster, 1, "web.service"),
        "the unit's main process is the supervisor"
    );
    flotctl(&cluster, 1, &["stop", "web.service"]);
    assert_eq!(inspect(node)[0]["State"]["Status"], "exited");
}
