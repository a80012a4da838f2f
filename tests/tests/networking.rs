//! Container networking end to end through the `flotilla` CLI: each test's data root lives in a
//! network namespace of its own (its "host"), where the engine makes its bridges, veths and
//! nftables table. No packet leaves that namespace: published ports are reached from it over
//! 127.0.0.1, the bridge's address and the container's.
//!
//! What a user would notice: the fleet tutorial's pair (a database and a linked app with a
//! published port) working, echo through a published port landing in `flotilla logs`, port
//! conflicts refused at `run`, addresses never leaking across `kill -9` of a supervisor, and no
//! rule, interface or namespace left after `rm`.

use std::io::Write;
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use flotilla_tests::flotilla::Flotilla;
use serde_json::Value;

/// A data root in a namespace of its own with the busybox image `bb` (`EXPOSE 27017`).
fn engine() -> Flotilla {
    let flotilla = Flotilla::with_own_network();
    flotilla.busybox("bb", &["EXPOSE 27017"]);
    flotilla
}

/// `busybox ARGS` in the data root's namespace, `input` on its standard input; its stdout.
fn busybox(flotilla: &Flotilla, args: &[&str], input: &str) -> String {
    let mut child = flotilla
        .host_command("/bin/busybox")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run busybox");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// What a TCP connection to `address` `port` answers (empty if refused), sending `message`.
fn ask(flotilla: &Flotilla, address: &str, port: u16, message: &str) -> String {
    busybox(
        flotilla,
        &["nc", "-w", "3", address, &port.to_string()],
        message,
    )
}

/// Asks until the answer contains `expected` (servers take a moment to listen), at most 10 s.
fn ask_until(flotilla: &Flotilla, address: &str, port: u16, expected: &str) -> String {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = ask(flotilla, address, port, "");
        if answer.contains(expected) || Instant::now() > until {
            return answer;
        }
        sleep(Duration::from_millis(100));
    }
}

fn inspect(flotilla: &Flotilla, container: &str) -> Value {
    let json: Value =
        serde_json::from_str(&flotilla.ok(&["inspect", container])).expect("inspect prints JSON");
    json[0].clone()
}

fn address_of(flotilla: &Flotilla, container: &str) -> String {
    inspect(flotilla, container)["NetworkSettings"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The host port `flotilla port C PRIVATE` prints (`0.0.0.0:PORT`).
fn host_port(flotilla: &Flotilla, container: &str, private: &str) -> u16 {
    let line = flotilla.ok(&["port", container, private]);
    line.trim()
        .rsplit_once(':')
        .and_then(|(_, port)| port.parse().ok())
        .unwrap_or_else(|| panic!("no host port in {line:?}"))
}

/// `ip ARGS` in the data root's namespace, its stdout.
fn ip(flotilla: &Flotilla, args: &[&str]) -> String {
    let output = flotilla.host_command("ip").args(args).output().unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The data root's nftables table as `nft` lists it ("" when there is none).
fn firewall(flotilla: &Flotilla) -> String {
    let output = flotilla
        .host_command("nft")
        .args(["list", "table", "ip", "flotilla"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `flotilla run -d --name NAME FLAGS… bb nc -ll -p PORT -e echo REPLY`: a container that answers
/// every connection to its PORT with REPLY.
fn run_echo_server(flotilla: &Flotilla, name: &str, flags: &[&str], port: &str, reply: &str) {
    let mut argv = vec!["run", "-d", "--name", name];
    argv.extend_from_slice(flags);
    argv.extend_from_slice(&["bb", "nc", "-ll", "-p", port, "-e", "echo", reply]);
    flotilla.ok(&argv);
}

fn ipam(flotilla: &Flotilla, network: &str) -> Value {
    let path = flotilla
        .data_root()
        .join("networks")
        .join(network)
        .join("ipam.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn the_tutorials_database_and_linked_app_work_and_the_apps_port_is_published() {
    let f = engine();
    // The "database": answers every connection on 27017.
    run_echo_server(&f, "mongo-ins", &[], "27017", "mongo-here");
    // The app: on each connection on 3000 it reports the link's variables and asks the
    // database, by its link alias, for its greeting.
    f.ok(&[
        "run", "-d", "--name", "app", "-p", "3000:3000", "--link", "mongo-ins:mongo", "bb",
        "nc", "-ll", "-p", "3000", "-e", "sh", "-c",
        "echo db=$MONGO_PORT_27017_TCP_ADDR:$MONGO_PORT_27017_TCP_PORT name=$MONGO_NAME says $(nc -w 2 mongo 27017)",
    ]);
    let db = address_of(&f, "mongo-ins");
    let app = address_of(&f, "app");
    let expected = format!("db={db}:27017 name=/app/mongo says mongo-here");
    let gateway = inspect(&f, "app")["NetworkSettings"]["Gateway"]
        .as_str()
        .unwrap()
        .to_owned();
    for address in ["127.0.0.1", gateway.as_str()] {
        let answer = ask_until(&f, address, 3000, &expected);
        assert_eq!(answer.trim(), expected, "through {address}:3000");
    }
    assert_eq!(ask_until(&f, &app, 3000, &expected).trim(), expected);
    assert_eq!(f.ok(&["port", "app"]), "3000/tcp -> 0.0.0.0:3000\n");
    let ps = f.ok(&["ps"]);
    assert!(ps.contains("0.0.0.0:3000->3000/tcp"), "{ps}");
    let hosts = f.ok(&["exec", "app", "cat", "/etc/hosts"]);
    assert!(
        hosts.contains(&format!("{db}\tmongo ")) && hosts.contains(&format!("{app}\t")),
        "{hosts}"
    );
}

#[test]
fn a_message_sent_through_a_published_port_shows_in_the_containers_logs() {
    let f = engine();
    f.ok(&[
        "run", "-d", "--name", "echo", "-p", "7", "bb", "nc", "-ll", "-p", "7", "-e", "cat",
    ]);
    let port = host_port(&f, "echo", "7/tcp");
    let until = Instant::now() + Duration::from_secs(10);
    let mut answer = String::new();
    while !answer.contains("hello through the port") && Instant::now() < until {
        answer = ask(&f, "127.0.0.1", port, "hello through the port\n");
        sleep(Duration::from_millis(100));
    }
    assert_eq!(answer, "hello through the port\n", "the echo");
    // `cat`'s output is the container's: a second copy goes to the log as the echo is sent.
    f.ok(&[
        "run",
        "-d",
        "--name",
        "printer",
        "-p",
        "9000:9000",
        "bb",
        "sh",
        "-c",
        "while true; do nc -l -p 9000; done",
    ]);
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        ask(&f, "127.0.0.1", 9000, "a line for the log\n");
        let logs = f.ok(&["logs", "printer"]);
        if logs.contains("a line for the log") {
            break;
        }
        assert!(Instant::now() < until, "not in the logs: {logs:?}");
        sleep(Duration::from_millis(200));
    }
}

#[test]
fn publish_all_maps_the_images_exposed_ports_to_free_host_ports() {
    let f = engine();
    run_echo_server(&f, "db", &["-P"], "27017", "hi");
    let port = host_port(&f, "db", "27017");
    assert_ne!(port, 27017);
    assert_eq!(ask_until(&f, "127.0.0.1", port, "hi").trim(), "hi");
    let ports = &inspect(&f, "db")["NetworkSettings"]["Ports"]["27017/tcp"][0];
    assert_eq!(ports["HostPort"], Value::String(port.to_string()));
}

#[test]
fn a_port_that_is_taken_is_a_clear_error_at_run() {
    let f = engine();
    f.ok(&[
        "run", "-d", "--name", "first", "-p", "8080:80", "bb", "sleep", "60",
    ]);
    let taken = f.run(&[
        "run", "-d", "--name", "second", "-p", "8080:80", "bb", "sleep", "60",
    ]);
    assert_eq!(taken.status.code(), Some(125));
    assert_eq!(
        String::from_utf8_lossy(&taken.stderr),
        "flotilla run: cannot publish \"8080:80\": 0.0.0.0:8080/tcp is already in use\n"
    );
    // A program of the host holding a port is refused the same way.
    let mut listener = f
        .host_command("/bin/busybox")
        .args(["nc", "-l", "-p", "8081"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let until = Instant::now() + Duration::from_secs(5);
    while !busybox(&f, &["netstat", "-ltn"], "").contains(":8081 ") {
        assert!(Instant::now() < until, "the listener did not start");
        sleep(Duration::from_millis(50));
    }
    let held = f.run(&["run", "--rm", "-p", "8081:80", "bb", "true"]);
    let _ = listener.kill();
    let _ = listener.wait();
    assert_eq!(held.status.code(), Some(125));
    assert!(
        String::from_utf8_lossy(&held.stderr).contains("0.0.0.0:8081/tcp is already in use"),
        "{held:?}"
    );
    // Twice in one run.
    let twice = f.run(&[
        "run", "--rm", "-p", "9000:80", "-p", "9000:81", "bb", "true",
    ]);
    assert_eq!(twice.status.code(), Some(125));
    assert!(
        String::from_utf8_lossy(&twice.stderr).contains("9000"),
        "{twice:?}"
    );
    // The first container's port still works after the refusals, and frees up with it.
    f.ok(&["rm", "-f", "first"]);
    f.ok(&["start", "second"]);
    assert_eq!(f.ok(&["port", "second", "80"]), "0.0.0.0:8080\n");
}

#[test]
fn addresses_survive_kill_9_of_a_supervisor_and_go_back_at_rm() {
    let f = engine();
    for name in ["a", "b", "c"] {
        f.ok(&[
            "run", "-d", "--name", name, "-p", "27017", "bb", "sleep", "600",
        ]);
    }
    let addresses: Vec<String> = ["a", "b", "c"].iter().map(|n| address_of(&f, n)).collect();
    let supervisor = inspect(&f, "b")["Flotilla"]["Supervisor"]["Pid"]
        .as_i64()
        .unwrap();
    Command::new("kill")
        .args(["-9", &supervisor.to_string()])
        .status()
        .unwrap();
    let until = Instant::now() + Duration::from_secs(10);
    while inspect(&f, "b")["State"]["Status"] != "exited" {
        assert!(Instant::now() < until, "b still runs");
        sleep(Duration::from_millis(50));
    }
    // Started again, b keeps its address and gets its port back.
    f.ok(&["start", "b"]);
    assert_eq!(address_of(&f, "b"), addresses[1]);
    assert!(!f.ok(&["port", "b"]).is_empty());
    // Killed again and removed: nothing of it is left.
    let supervisor = inspect(&f, "b")["Flotilla"]["Supervisor"]["Pid"]
        .as_i64()
        .unwrap();
    let id = inspect(&f, "b")["Id"].as_str().unwrap().to_owned();
    Command::new("kill")
        .args(["-9", &supervisor.to_string()])
        .status()
        .unwrap();
    f.ok(&["rm", "-f", "b"]);
    let held: Vec<String> = ipam(&f, "bridge")["addresses"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(held, [addresses[0].clone(), addresses[2].clone()]);
    assert!(!firewall(&f).contains(&id), "{}", firewall(&f));
    // The freed address is the next one handed out.
    f.ok(&["run", "-d", "--name", "d", "bb", "sleep", "600"]);
    assert_eq!(address_of(&f, "d"), addresses[1]);
}

#[test]
fn nothing_is_left_after_rm() {
    let f = engine();
    f.ok(&[
        "run", "-d", "--name", "web", "-p", "8080:80", "bb", "sleep", "600",
    ]);
    let id = inspect(&f, "web")["Id"].as_str().unwrap().to_owned();
    let veth = format!("fv{}00", &id[..10]);
    assert!(firewall(&f).contains(&id), "{}", firewall(&f));
    assert!(ip(&f, &["link"]).contains(&veth));
    f.ok(&["stop", "-t", "1", "web"]);
    assert!(!firewall(&f).contains(&id), "{}", firewall(&f));
    assert!(!ip(&f, &["link"]).contains(&veth));
    assert!(f.ok(&["port", "web"]).is_empty());
    f.ok(&["rm", "web"]);
    assert_eq!(
        firewall(&f),
        "",
        "the last container took the table with it"
    );
    assert!(!ip(&f, &["link"]).contains("flotilla0"));
    assert_eq!(ipam(&f, "bridge")["addresses"], serde_json::json!({}));
}

#[test]
fn dns_flags_and_extra_hosts_shape_the_containers_files() {
    let f = engine();
    let out = f.ok(&[
        "run",
        "--rm",
        "--hostname",
        "web.example",
        "--dns",
        "10.0.0.53",
        "--dns-search",
        "corp.example",
        "--dns-option",
        "ndots:2",
        "--add-host",
        "db.local:10.1.2.3",
        "--add-host",
        "gw:host-gateway",
        "bb",
        "sh",
        "-c",
        "cat /etc/resolv.conf /etc/hosts /etc/hostname; hostname",
    ]);
    for line in [
        "nameserver 10.0.0.53\n",
        "search corp.example\n",
        "options ndots:2\n",
        "10.1.2.3\tdb.local\n",
        "10.222.0.1\tgw\n",
        "\tweb.example web\n",
        "127.0.0.1\tlocalhost\n",
    ] {
        assert!(out.contains(line), "{line:?} missing from {out}");
    }
    assert!(out.ends_with("web.example\nweb.example\n"), "{out}");
}

#[test]
fn host_none_and_container_network_modes() {
    let f = engine();
    let none = f.ok(&["run", "--rm", "--network", "none", "bb", "ip", "-o", "link"]);
    assert_eq!(none.lines().count(), 1, "{none}");
    assert!(none.contains("lo:") && none.contains("UP"), "{none}");
    run_echo_server(&f, "srv", &[], "80", "shared");
    let srv = address_of(&f, "srv");
    let joined = f.ok(&[
        "run",
        "--rm",
        "--network",
        "container:srv",
        "bb",
        "sh",
        "-c",
        "ip -o -4 addr show eth0; nc -w 2 127.0.0.1 80",
    ]);
    assert!(joined.contains(&format!("inet {srv}/16")), "{joined}");
    assert!(joined.contains("shared"), "{joined}");
    let refused = f.run(&[
        "run",
        "--rm",
        "--network",
        "host",
        "-p",
        "80:80",
        "bb",
        "true",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&refused.stderr),
        "flotilla run: conflicting options: --network host and --publish\n"
    );
    f.ok(&["stop", "-t", "1", "srv"]);
    let stopped = f.run(&["run", "--rm", "--network", "container:srv", "bb", "true"]);
    assert!(
        String::from_utf8_lossy(&stopped.stderr)
            .contains("cannot join the network of container srv: it is not running"),
        "{stopped:?}"
    );
}

#[test]
fn user_networks_isolate_and_a_container_can_join_several() {
    let f = engine();
    let id = f.ok(&["network", "create", "front"]);
    assert_eq!(id.trim().len(), 64);
    f.ok(&["network", "create", "--subnet", "10.30.0.0/24", "back"]);
    let ls = f.ok(&["network", "ls"]);
    for name in ["bridge", "front", "back"] {
        assert!(ls.contains(name), "{ls}");
    }
    f.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "front",
        "bb",
        "sleep",
        "600",
    ]);
    f.ok(&[
        "run",
        "-d",
        "--name",
        "db",
        "--network",
        "back",
        "bb",
        "sleep",
        "600",
    ]);
    let db = address_of_on(&f, "db", "back");
    assert!(db.starts_with("10.30.0."), "{db}");
    let unreachable = f.run(&["exec", "web", "ping", "-c", "1", "-W", "1", &db]);
    assert_ne!(unreachable.status.code(), Some(0), "front reaches back");
    f.ok(&["network", "connect", "back", "web"]);
    let links = f.ok(&["exec", "web", "ip", "-o", "-4", "addr"]);
    assert!(links.contains("eth0") && links.contains("eth1"), "{links}");
    f.ok(&["exec", "web", "ping", "-c", "1", "-W", "2", &db]);
    let inspected: Value = serde_json::from_str(&f.ok(&["network", "inspect", "back"])).unwrap();
    let members: Vec<&str> = inspected[0]["Containers"]
        .as_object()
        .unwrap()
        .values()
        .map(|c| c["Name"].as_str().unwrap())
        .collect();
    assert_eq!(members.len(), 2, "{members:?}");
    let busy = f.run(&["network", "rm", "back"]);
    assert!(
        String::from_utf8_lossy(&busy.stderr).contains("has active endpoints"),
        "{busy:?}"
    );
    f.ok(&["network", "disconnect", "back", "web"]);
    let unreachable = f.run(&["exec", "web", "ping", "-c", "1", "-W", "1", &db]);
    assert_ne!(
        unreachable.status.code(),
        Some(0),
        "disconnected, still reaches back"
    );
    f.ok(&["rm", "-f", "db"]);
    assert_eq!(f.ok(&["network", "rm", "back"]), "back\n");
    assert!(!f.ok(&["network", "ls"]).contains("back"));
}

fn address_of_on(flotilla: &Flotilla, container: &str, network: &str) -> String {
    inspect(flotilla, container)["NetworkSettings"]["Networks"][network]["IPAddress"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn boot_clears_what_killed_supervisors_left_and_rebuilds_the_rules() {
    let f = engine();
    run_echo_server(
        &f,
        "kept",
        &["--restart", "always", "-p", "8080:80"],
        "80",
        "back",
    );
    f.ok(&[
        "run", "-d", "--name", "gone", "-p", "8081:80", "bb", "sleep", "600",
    ]);
    let ids: Vec<String> = ["kept", "gone"]
        .iter()
        .map(|n| inspect(&f, n)["Id"].as_str().unwrap().to_owned())
        .collect();
    // A crash of the host as the engine sees it: every supervisor dies at once, and what they
    // set up (rules, namespaces) stays behind.
    for name in ["kept", "gone"] {
        let supervisor = inspect(&f, name)["Flotilla"]["Supervisor"]["Pid"]
            .as_i64()
            .unwrap();
        Command::new("kill")
            .args(["-9", &supervisor.to_string()])
            .status()
            .unwrap();
    }
    let stale = firewall(&f);
    assert!(
        stale.contains(&ids[0]) && stale.contains(&ids[1]),
        "{stale}"
    );
    f.ok(&["boot"]);
    let rebuilt = firewall(&f);
    assert!(
        !rebuilt.contains(&ids[1]),
        "the stopped container's rule stayed: {rebuilt}"
    );
    assert_eq!(
        rebuilt.matches(&ids[0]).count(),
        1,
        "one DNAT rule for the restarted container: {rebuilt}"
    );
    assert_eq!(ask_until(&f, "127.0.0.1", 8080, "back").trim(), "back");
    assert!(!f
        .data_root()
        .join("containers")
        .join(&ids[1])
        .join("netns")
        .exists());
}

#[test]
fn containers_on_a_user_network_find_each_other_by_name() {
    let f = engine();
    f.ok(&["network", "create", "back"]);
    f.ok(&["network", "create", "other"]);
    run_echo_server(&f, "db", &["--network", "back"], "27017", "found-by-name");
    f.ok(&[
        "run",
        "-d",
        "--name",
        "elsewhere",
        "--network",
        "other",
        "bb",
        "sleep",
        "600",
    ]);
    let db = address_of_on(&f, "db", "back");
    let gateway = inspect(&f, "db")["NetworkSettings"]["Networks"]["back"]["Gateway"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = f.ok(&[
        "run",
        "--rm",
        "--network",
        "back",
        "bb",
        "sh",
        "-c",
        "cat /etc/resolv.conf; nslookup db; nc -w 2 db 27017",
    ]);
    assert!(out.contains(&format!("nameserver {gateway}\n")), "{out}");
    assert!(out.contains(&format!("Address: {db}")), "{out}");
    assert!(out.ends_with("found-by-name\n"), "{out}");
    // A name of another network is not this network's.
    let isolated = f.run(&[
        "run",
        "--rm",
        "--network",
        "back",
        "bb",
        "nslookup",
        "elsewhere",
    ]);
    assert!(
        !String::from_utf8_lossy(&isolated.stdout).contains(&address_of_on(
            &f,
            "elsewhere",
            "other"
        )),
        "{isolated:?}"
    );
    // A stopped container's name goes with it.
    f.ok(&["stop", "-t", "1", "db"]);
    let gone = f.run(&["run", "--rm", "--network", "back", "bb", "nslookup", "db"]);
    assert!(
        !String::from_utf8_lossy(&gone.stdout).contains(&format!("Address: {db}")),
        "{gone:?}"
    );
}

/// Another host: a network namespace joined to the data root's by a veth, `10.99.0.2/30` there
/// and `10.99.0.1/30` on the data root's side. Removed when dropped.
struct OtherHost {
    name: String,
}

impl OtherHost {
    fn new(flotilla: &Flotilla) -> OtherHost {
        let host = flotilla
            .netns()
            .expect("a data root with its own namespace");
        let name = host.replace("-engine", "-outside");
        let end = format!("o{}", &name[name.len().saturating_sub(8)..]);
        let run = |args: &[&str]| {
            let status = Command::new("ip").args(args).status().unwrap();
            assert!(status.success(), "ip {args:?}");
        };
        run(&["netns", "add", &name]);
        run(&[
            "-n", host, "link", "add", "uplink", "type", "veth", "peer", "name", &end, "netns",
            &name,
        ]);
        run(&["-n", host, "addr", "add", "10.99.0.1/30", "dev", "uplink"]);
        run(&["-n", host, "link", "set", "uplink", "up"]);
        run(&["-n", &name, "addr", "add", "10.99.0.2/30", "dev", &end]);
        run(&["-n", &name, "link", "set", &end, "up"]);
        run(&["-n", &name, "link", "set", "lo", "up"]);
        OtherHost { name }
    }

    fn busybox(&self, args: &[&str]) -> Command {
        let mut command = Command::new("nsenter");
        command
            .arg(format!("--net=/run/netns/{}", self.name))
            .arg("--")
            .arg("/bin/busybox")
            .args(args);
        command
    }
}

impl Drop for OtherHost {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

#[test]
fn other_hosts_reach_published_ports_and_containers_reach_out_masqueraded() {
    let f = engine();
    let other = OtherHost::new(&f);
    run_echo_server(&f, "web", &["-p", "8080:80"], "80", "from-the-container");
    let until = Instant::now() + Duration::from_secs(10);
    let answer = loop {
        let output = other
            .busybox(&["nc", "-w", "3", "10.99.0.1", "8080"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let answer = String::from_utf8_lossy(&output.stdout).into_owned();
        if answer.contains("from-the-container") || Instant::now() > until {
            break answer;
        }
        sleep(Duration::from_millis(100));
    };
    assert_eq!(answer, "from-the-container\n");
    // Outbound: the other host sees the connection come from the host's address. The
    // listener's input stays open, so the connection does too until it is looked at.
    let mut listener = other
        .busybox(&["nc", "-l", "-p", "9999"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let input = listener.stdin.take();
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let listening = other.busybox(&["netstat", "-ltn"]).output().unwrap();
        if String::from_utf8_lossy(&listening.stdout).contains(":9999 ") {
            break;
        }
        assert!(
            Instant::now() < until,
            "the other host's listener did not start"
        );
        sleep(Duration::from_millis(50));
    }
    f.ok(&[
        "run",
        "-d",
        "--name",
        "client",
        "bb",
        "sh",
        "-c",
        "(echo hello-outside; sleep 600) | nc 10.99.0.2 9999",
    ]);
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let netstat = other.busybox(&["netstat", "-tn"]).output().unwrap();
        let netstat = String::from_utf8_lossy(&netstat.stdout).into_owned();
        if netstat.contains("10.99.0.2:9999") {
            assert!(netstat.contains("10.99.0.1:"), "not masqueraded: {netstat}");
            assert!(
                !netstat.contains("10.222."),
                "a container address left: {netstat}"
            );
            break;
        }
        assert!(Instant::now() < until, "no connection: {netstat}");
        sleep(Duration::from_millis(100));
    }
    drop(input);
    f.ok(&["rm", "-f", "client"]);
    let output = listener.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stdout), "hello-outside\n");
}
