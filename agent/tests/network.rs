//! The kernel side of container networking as traffic meets it: bridges, veth pairs and
//! flotilla's nftables table, checked by TCP and UDP exchanges between network namespaces.
//!
//! Every test builds its own world of namespaces: a "host" holding the bridges and the
//! firewall, "containers" attached to them, and an "outside" machine linked to the host by an
//! uplink bridge (192.0.2.0/24, TEST-NET-1). Nothing runs in the test process's own network
//! namespace: a namespace is made by a thread that unshares it and lives as long as an open
//! file of it (so a failed assertion leaves nothing behind: the namespaces, with their
//! interfaces and tables, go with the last file and socket); code runs in one on a thread that
//! setns'es there. Servers answer each connection or datagram with the address they see it
//! come from. Needs root, nft and ip.

mod common;

use common::netns::Netns;

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use agent::network::bridge::{
    enable_ip_forward, enable_route_localnet, ensure_bridge, remove_bridge, BridgeError,
};
use agent::network::firewall::{
    add_container_rules, add_network_rules, rebuild, remove_container_rules, remove_network_rules,
    FirewallState, Network, Protocol, Publication, PublishedPort,
};
use agent::network::veth::{attach, detach, Attachment, Endpoint, VethError};
use nix::ifaddrs::getifaddrs;
use nix::net::if_::if_nametoindex;

/// How long a connection that gets no answer is waited for.
const PATIENCE: Duration = Duration::from_millis(700);

impl Netns {
    /// `nft -j list table ip flotilla`, `None` when the table does not exist.
    fn table(&self) -> Option<String> {
        let output = self.run(|| {
            Command::new("nft")
                .args(["-j", "list", "table", "ip", "flotilla"])
                .output()
                .unwrap()
        });
        output
            .status
            .success()
            .then(|| String::from_utf8(output.stdout).unwrap())
    }

    /// The comments of the rules of flotilla's table.
    fn comments(&self) -> Vec<String> {
        let listing: serde_json::Value = serde_json::from_str(&self.table().unwrap()).unwrap();
        listing["nftables"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|object| object.get("rule"))
            .map(|rule| rule["comment"].as_str().unwrap_or("(none)").to_owned())
            .collect()
    }

    /// The IPv4 addresses of interface `name`.
    fn addresses(&self, name: &str) -> Vec<Ipv4Addr> {
        self.run(|| {
            getifaddrs()
                .unwrap()
                .filter(|interface| interface.interface_name == name)
                .filter_map(|interface| Some(interface.address?.as_sockaddr_in()?.ip()))
                .collect()
        })
    }

    fn has_interface(&self, name: &str) -> bool {
        self.run(|| if_nametoindex(name).is_ok())
    }

    /// Connects to `address` from here; the address the server saw, or why it failed.
    fn reach(&self, address: SocketAddrV4) -> Result<String, ErrorKind> {
        self.run(|| {
            let mut stream = TcpStream::connect_timeout(&address.into(), PATIENCE)
                .map_err(|error| error.kind())?;
            stream.set_read_timeout(Some(PATIENCE)).unwrap();
            let mut seen = String::new();
            stream
                .read_to_string(&mut seen)
                .map_err(|error| error.kind())?;
            Ok(seen)
        })
    }

    /// Sends a datagram to `address` from here; the address the server saw in its answer.
    fn reach_udp(&self, address: SocketAddrV4) -> Result<String, ErrorKind> {
        self.run(|| {
            let socket = UdpSocket::bind("0.0.0.0:0").unwrap();
            socket.set_read_timeout(Some(PATIENCE)).unwrap();
            socket
                .send_to(b"?", address)
                .map_err(|error| error.kind())?;
            let mut answer = [0; 64];
            let (length, _) = socket
                .recv_from(&mut answer)
                .map_err(|error| error.kind())?;
            Ok(String::from_utf8_lossy(&answer[..length]).into_owned())
        })
    }

    /// Listens on `address` here (TCP, and UDP too when `udp`) until dropped.
    fn serve(&self, address: SocketAddrV4) -> Server {
        let listener = self.run(|| TcpListener::bind(address).unwrap());
        listener.set_nonblocking(true).unwrap();
        Server::start(move || match listener.accept() {
            Ok((mut stream, peer)) => {
                let _ = stream.write_all(peer.ip().to_string().as_bytes());
            }
            Err(error) if error.kind() == ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(5))
            }
            Err(error) => panic!("accept on {address}: {error}"),
        })
    }

    /// Answers datagrams on `address` here until dropped.
    fn serve_udp(&self, address: SocketAddrV4) -> Server {
        let socket = self.run(|| UdpSocket::bind(address).unwrap());
        socket
            .set_read_timeout(Some(Duration::from_millis(5)))
            .unwrap();
        Server::start(move || {
            let mut datagram = [0; 64];
            if let Ok((_, peer)) = socket.recv_from(&mut datagram) {
                let _ = socket.send_to(peer.ip().to_string().as_bytes(), peer);
            }
        })
    }
}

/// A server thread, stopped when dropped.
struct Server {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start(mut step: impl FnMut() + Send + 'static) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                step();
            }
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn at(address: Ipv4Addr, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(address, port)
}

/// The host's address on the uplink, and the outside machine's.
const HOST: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const OUTSIDE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const LOCALHOST: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// A bridge network of the tests: `10.99.N.0/24`, gateway `.1`, bridge `flt-N`.
struct TestNetwork {
    number: u8,
}

const ONE: TestNetwork = TestNetwork { number: 1 };
const TWO: TestNetwork = TestNetwork { number: 2 };

impl TestNetwork {
    fn name(&self) -> String {
        format!("net{}", self.number)
    }

    fn bridge(&self) -> String {
        format!("flt-{}", self.number)
    }

    fn address(&self, host: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 99, self.number, host)
    }

    fn gateway(&self) -> Ipv4Addr {
        self.address(1)
    }

    fn firewall(&self) -> Network {
        Network {
            name: self.name(),
            bridge: self.bridge(),
            subnet: self.address(0),
            prefix: 24,
        }
    }
}

/// The host, with the outside machine on its uplink.
struct Lab {
    host: Netns,
    outside: Netns,
}

impl Lab {
    fn new() -> Self {
        let lab = Self {
            host: Netns::new(),
            outside: Netns::new(),
        };
        lab.host.command("ip", &["link", "set", "lo", "up"]);
        lab.host.run(|| {
            ensure_bridge("uplink", HOST, 24).unwrap();
            enable_ip_forward().unwrap();
            attach(
                &lab.outside.path(),
                &endpoint("uplink", "v-outside", OUTSIDE, HOST),
            )
            .unwrap();
        });
        lab
    }

    /// Sets up `network` on the host: bridge, sysctl, firewall rules.
    fn network(&self, network: &TestNetwork) {
        self.host.run(|| {
            ensure_bridge(&network.bridge(), network.gateway(), 24).unwrap();
            enable_route_localnet(&network.bridge()).unwrap();
            add_network_rules(&network.firewall()).unwrap();
        });
    }

    /// A container with address `.host` on `network`.
    fn container(&self, network: &TestNetwork, host: u8) -> (Netns, Attachment) {
        let container = Netns::new();
        let attachment = self.connect(&container, network, host).unwrap();
        (container, attachment)
    }

    /// Connects `container` to `network` with address `.host`, host end `v-N-host`.
    fn connect(
        &self,
        container: &Netns,
        network: &TestNetwork,
        host: u8,
    ) -> Result<Attachment, VethError> {
        let host_if = format!("v-{}-{host}", network.number);
        let bridge = network.bridge();
        let endpoint = endpoint(&bridge, &host_if, network.address(host), network.gateway());
        self.host.run(|| attach(&container.path(), &endpoint))
    }
}

fn endpoint<'a>(
    bridge: &'a str,
    host_if_name: &'a str,
    address: Ipv4Addr,
    gateway: Ipv4Addr,
) -> Endpoint<'a> {
    Endpoint {
        bridge,
        host_if_name,
        address,
        prefix: 24,
        gateway,
        mac: None,
    }
}

fn tcp(host_ip: Ipv4Addr, host_port: u16, container_port: u16) -> PublishedPort {
    PublishedPort {
        host_ip,
        host_port,
        container_port,
        protocol: Protocol::Tcp,
    }
}

fn publication(id: &str, address: Ipv4Addr, ports: Vec<PublishedPort>) -> Publication {
    Publication {
        container: id.to_owned(),
        address,
        ports,
    }
}

#[test]
fn containers_reach_each_other_the_gateway_and_the_outside_behind_the_host() {
    let lab = Lab::new();
    lab.network(&ONE);
    let (c1, attachment) = lab.container(&ONE, 11);
    let (c2, _) = lab.container(&ONE, 12);
    assert_eq!(
        attachment,
        Attachment {
            host_if_name: "v-1-11".to_owned(),
            container_if_name: "eth0".to_owned(),
            mac: [0x02, 0x42, 10, 99, 1, 11],
            default_route: true,
        }
    );
    assert_eq!(c1.addresses("eth0"), [ONE.address(11)]);
    assert_eq!(c1.addresses("lo"), [LOCALHOST], "lo is up");

    let _web = c1.serve(at(ONE.address(11), 80));
    let _host = lab.host.serve(at(ONE.gateway(), 7000));
    let _outside = lab.outside.serve(at(OUTSIDE, 9000));
    assert_eq!(
        c2.reach(at(ONE.address(11), 80)),
        Ok(ONE.address(12).to_string())
    );
    assert_eq!(
        c2.reach(at(ONE.gateway(), 7000)),
        Ok(ONE.address(12).to_string())
    );
    assert_eq!(
        c1.reach(at(OUTSIDE, 9000)),
        Ok(HOST.to_string()),
        "the outside sees the host's address"
    );
    assert_eq!(
        lab.outside.reach(at(ONE.address(11), 80)),
        Err(ErrorKind::TimedOut),
        "the outside reaches containers through published ports only"
    );
}

#[test]
fn published_ports_lead_to_the_container_from_everywhere_until_removed() {
    let lab = Lab::new();
    lab.network(&ONE);
    let (c1, _) = lab.container(&ONE, 11);
    let (c2, _) = lab.container(&ONE, 12);
    let _web = c1.serve(at(Ipv4Addr::UNSPECIFIED, 80));
    let _dns = c1.serve_udp(at(Ipv4Addr::UNSPECIFIED, 53));
    let id = "c1".repeat(32);
    let ports = vec![
        tcp(Ipv4Addr::UNSPECIFIED, 8080, 80),
        tcp(HOST, 8081, 80),
        tcp(ONE.gateway(), 8082, 80),
        PublishedPort {
            host_ip: Ipv4Addr::UNSPECIFIED,
            host_port: 5353,
            container_port: 53,
            protocol: Protocol::Udp,
        },
    ];
    lab.host
        .run(|| add_container_rules(&publication(&id, ONE.address(11), ports)))
        .unwrap();

    let gateway = ONE.gateway().to_string();
    assert_eq!(
        lab.outside.reach(at(HOST, 8080)),
        Ok(OUTSIDE.to_string()),
        "the client's address is kept"
    );
    assert_eq!(
        lab.host.reach(at(LOCALHOST, 8080)),
        Ok(gateway.clone()),
        "localhost is masqueraded"
    );
    assert_eq!(lab.host.reach(at(HOST, 8080)), Ok(HOST.to_string()));
    assert_eq!(
        c2.reach(at(ONE.gateway(), 8080)),
        Ok(gateway.clone()),
        "a neighbour, through the host"
    );
    assert_eq!(
        c1.reach(at(ONE.gateway(), 8080)),
        Ok(gateway.clone()),
        "the container itself (hairpin)"
    );
    assert_eq!(lab.outside.reach(at(HOST, 8081)), Ok(OUTSIDE.to_string()));
    assert_eq!(
        lab.host.reach(at(LOCALHOST, 8081)),
        Err(ErrorKind::ConnectionRefused),
        "published on {HOST} only"
    );
    assert_eq!(
        lab.outside.reach(at(HOST, 8082)),
        Err(ErrorKind::ConnectionRefused)
    );
    assert_eq!(lab.host.reach(at(ONE.gateway(), 8082)), Ok(gateway.clone()));
    assert_eq!(
        lab.outside.reach_udp(at(HOST, 5353)),
        Ok(OUTSIDE.to_string())
    );

    lab.host.run(|| remove_container_rules(&id)).unwrap();
    assert_eq!(
        lab.outside.reach(at(HOST, 8080)),
        Err(ErrorKind::ConnectionRefused)
    );
    assert_eq!(
        lab.host.reach(at(LOCALHOST, 8080)),
        Err(ErrorKind::ConnectionRefused)
    );
    assert!(lab.outside.reach_udp(at(HOST, 5353)).is_err());
    assert!(
        lab.host
            .comments()
            .iter()
            .all(|comment| !comment.contains(&id)),
        "{:?}",
        lab.host.comments()
    );
    let _outside = lab.outside.serve(at(OUTSIDE, 9000));
    assert_eq!(
        c1.reach(at(OUTSIDE, 9000)),
        Ok(HOST.to_string()),
        "the network's rules stay"
    );

    lab.host.run(|| remove_network_rules(&ONE.name())).unwrap();
    assert_eq!(lab.host.table(), None, "the table goes with its last user");
    assert_eq!(
        c1.reach(at(OUTSIDE, 9000)),
        Ok(ONE.address(11).to_string()),
        "no more masquerading"
    );
    lab.host.run(|| remove_network_rules(&ONE.name())).unwrap();
    lab.host.run(|| remove_container_rules(&id)).unwrap();
}

#[test]
fn networks_are_isolated_from_each_other_but_published_ports_join_them() {
    let lab = Lab::new();
    lab.network(&ONE);
    lab.network(&TWO);
    let (c1, _) = lab.container(&ONE, 11);
    let (c3, _) = lab.container(&TWO, 13);
    let _one = c1.serve(at(Ipv4Addr::UNSPECIFIED, 80));
    let _two = c3.serve(at(Ipv4Addr::UNSPECIFIED, 80));
    assert_eq!(c3.reach(at(ONE.address(11), 80)), Err(ErrorKind::TimedOut));
    assert_eq!(c1.reach(at(TWO.address(13), 80)), Err(ErrorKind::TimedOut));

    let ports = vec![tcp(Ipv4Addr::UNSPECIFIED, 8080, 80)];
    lab.host
        .run(|| add_container_rules(&publication("c1", ONE.address(11), ports)))
        .unwrap();
    assert_eq!(
        c3.reach(at(TWO.gateway(), 8080)),
        Ok(ONE.gateway().to_string())
    );
}

#[test]
fn a_second_network_is_eth1_and_leaves_the_default_route_alone() {
    let lab = Lab::new();
    lab.network(&ONE);
    lab.network(&TWO);
    let (container, first) = lab.container(&ONE, 11);
    let second = lab.connect(&container, &TWO, 21).unwrap();
    assert_eq!(
        (first.container_if_name.as_str(), first.default_route),
        ("eth0", true)
    );
    assert_eq!(
        (second.container_if_name.as_str(), second.default_route),
        ("eth1", false)
    );
    assert_eq!(container.addresses("eth1"), [TWO.address(21)]);

    let _host = lab.host.serve(at(Ipv4Addr::UNSPECIFIED, 7000));
    assert_eq!(
        container.reach(at(HOST, 7000)),
        Ok(ONE.address(11).to_string()),
        "the default route goes through the first network"
    );
    assert_eq!(
        container.reach(at(TWO.gateway(), 7000)),
        Ok(TWO.address(21).to_string())
    );
}

#[test]
fn a_pair_is_deleted_with_its_host_end_and_a_failed_attach_leaves_nothing() {
    let lab = Lab::new();
    lab.network(&ONE);
    let (container, attachment) = lab.container(&ONE, 11);
    lab.host.run(|| detach(&attachment.host_if_name)).unwrap();
    assert!(!lab.host.has_interface("v-1-11"));
    assert!(!container.has_interface("eth0"));
    lab.host.run(|| detach("v-1-11")).unwrap();

    let error = lab.host.run(|| detach(&ONE.bridge())).unwrap_err();
    assert_eq!(error.to_string(), "interface flt-1 is not a veth");
    assert!(lab.host.has_interface("flt-1"));

    let error = lab.connect(&container, &TWO, 11).unwrap_err();
    assert_eq!(error.to_string(), "bridge flt-2 does not exist");
    lab.connect(&container, &ONE, 11).unwrap();
    let error = lab.connect(&Netns::new(), &ONE, 11).unwrap_err();
    assert!(
        error.to_string().starts_with("cannot create veth v-1-11: "),
        "{error}"
    );
    assert!(
        container.has_interface("eth0"),
        "the first attachment is intact"
    );

    let error = lab
        .host
        .run(|| {
            let mut taken = endpoint("flt-1", "v-1-12", ONE.address(12), ONE.gateway());
            taken.prefix = 40;
            attach(&container.path(), &taken)
        })
        .unwrap_err();
    assert!(
        error.to_string().starts_with(
            "cannot add address 10.99.1.12/40 to eth1 in network namespace /proc/self/fd/"
        ),
        "{error}"
    );
    assert!(
        !lab.host.has_interface("v-1-12"),
        "the pair was deleted again"
    );
    assert!(!container.has_interface("eth1"));
}

#[test]
fn bridges_are_made_once_and_removed_quietly_and_sysctls_stay_in_their_namespace() {
    let host = Netns::new();
    let index = host
        .run(|| ensure_bridge("flt-1", ONE.gateway(), 24))
        .unwrap();
    assert_eq!(
        host.run(|| ensure_bridge("flt-1", ONE.gateway(), 24))
            .unwrap(),
        index
    );
    assert_eq!(host.addresses("flt-1"), [ONE.gateway()]);
    let link: serde_json::Value =
        serde_json::from_str(&host.command("ip", &["-j", "link", "show", "flt-1"])).unwrap();
    assert!(
        link[0]["flags"].as_array().unwrap().contains(&"UP".into()),
        "{link}"
    );

    host.command(
        "ip",
        &["link", "add", "v-x", "type", "veth", "peer", "name", "v-y"],
    );
    let error = host
        .run(|| ensure_bridge("v-x", ONE.gateway(), 24))
        .unwrap_err();
    assert!(matches!(error, BridgeError::NotABridge { .. }), "{error}");
    assert_eq!(
        error.to_string(),
        "interface v-x exists and is not a bridge"
    );
    let error = host.run(|| remove_bridge("v-x")).unwrap_err();
    assert_eq!(
        error.to_string(),
        "interface v-x exists and is not a bridge"
    );

    host.run(|| remove_bridge("flt-1")).unwrap();
    assert!(!host.has_interface("flt-1"));
    host.run(|| remove_bridge("flt-1")).unwrap();

    let elsewhere = Netns::new();
    let read =
        |netns: &Netns, path: &'static str| netns.run(|| std::fs::read_to_string(path).unwrap());
    elsewhere
        .run(|| std::fs::write("/proc/sys/net/ipv4/ip_forward", "0"))
        .unwrap();
    host.run(enable_ip_forward).unwrap();
    assert_eq!(read(&host, "/proc/sys/net/ipv4/ip_forward"), "1\n");
    assert_eq!(read(&elsewhere, "/proc/sys/net/ipv4/ip_forward"), "0\n");
    host.run(|| ensure_bridge("flt-1", ONE.gateway(), 24))
        .unwrap();
    host.run(|| enable_route_localnet("flt-1")).unwrap();
    assert_eq!(
        read(&host, "/proc/sys/net/ipv4/conf/flt-1/route_localnet"),
        "1\n"
    );
}

#[test]
fn a_rebuild_makes_the_table_match_the_records_and_then_changes_nothing() {
    let lab = Lab::new();
    for network in [&ONE, &TWO] {
        lab.host.run(|| {
            ensure_bridge(&network.bridge(), network.gateway(), 24).unwrap();
            enable_route_localnet(&network.bridge()).unwrap();
        });
    }
    let (c1, _) = lab.container(&ONE, 11);
    let web = c1.serve(at(Ipv4Addr::UNSPECIFIED, 80));
    let mut state = FirewallState {
        networks: vec![ONE.firewall(), TWO.firewall()],
        publications: vec![publication(
            "c1",
            ONE.address(11),
            vec![tcp(Ipv4Addr::UNSPECIFIED, 8080, 80)],
        )],
    };
    lab.host.run(|| rebuild(&state)).unwrap();
    let built = lab.host.table().unwrap();
    lab.host.run(|| rebuild(&state)).unwrap();
    assert_eq!(
        lab.host.table().unwrap(),
        built,
        "a second rebuild changes nothing"
    );
    assert_eq!(lab.outside.reach(at(HOST, 8080)), Ok(OUTSIDE.to_string()));

    // Damage: a rule of network one deleted, a stranger's rule and chain added.
    let listing: serde_json::Value = serde_json::from_str(&built).unwrap();
    let handle = listing["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|object| object.get("rule"))
        .find(|rule| rule["chain"] == "publish")
        .map(|rule| rule["handle"].to_string())
        .unwrap();
    lab.host.command(
        "nft",
        &[
            "delete", "rule", "ip", "flotilla", "publish", "handle", &handle,
        ],
    );
    lab.host.command(
        "nft",
        &[
            "add", "rule", "ip", "flotilla", "publish", "tcp", "dport", "1", "accept",
        ],
    );
    lab.host
        .command("nft", &["add", "chain", "ip", "flotilla", "stranger"]);
    assert_eq!(
        lab.outside.reach(at(HOST, 8080)),
        Err(ErrorKind::ConnectionRefused)
    );
    lab.host.run(|| rebuild(&state)).unwrap();
    assert_eq!(lab.outside.reach(at(HOST, 8080)), Ok(OUTSIDE.to_string()));
    let repaired = lab.host.table().unwrap();
    assert!(!repaired.contains("stranger"));
    assert!(!lab.host.comments().contains(&"(none)".to_owned()));
    let mut comments = lab.host.comments();
    comments.sort();
    comments.dedup_by(|a, b| a == b);
    let owners: Vec<&str> = comments
        .iter()
        .map(|comment| comment.split(" #").next().unwrap())
        .collect();
    assert_eq!(
        owners,
        ["base", "container c1", "network net1", "network net2"]
    );
    lab.host.run(|| rebuild(&state)).unwrap();
    assert_eq!(lab.host.table().unwrap(), repaired);

    // The container now listens on another port, and network two is gone.
    drop(web);
    let _other = c1.serve(at(Ipv4Addr::UNSPECIFIED, 81));
    state.publications[0].ports[0].container_port = 81;
    state.networks.pop();
    lab.host.run(|| rebuild(&state)).unwrap();
    assert!(lab
        .host
        .comments()
        .iter()
        .all(|comment| !comment.starts_with("network net2")));
    assert_eq!(lab.outside.reach(at(HOST, 8080)), Ok(OUTSIDE.to_string()));

    lab.host.run(|| rebuild(&FirewallState::default())).unwrap();
    assert_eq!(lab.host.table(), None);
    lab.host.run(|| rebuild(&FirewallState::default())).unwrap();
}

#[test]
fn a_container_cannot_reach_the_hosts_loopback_services() {
    let lab = Lab::new();
    lab.network(&ONE);
    let (container, _) = lab.container(&ONE, 11);
    let _private = lab.host.serve(at(Ipv4Addr::UNSPECIFIED, 7000));
    // What a hostile container does: route 127.0.0.2 to the gateway instead of to its own lo
    // (route_localnet on the bridge would let that through).
    container.command(
        "ip",
        &["route", "del", "127.0.0.0/8", "dev", "lo", "table", "local"],
    );
    container.command(
        "ip",
        &[
            "route",
            "add",
            "127.0.0.2/32",
            "via",
            &ONE.gateway().to_string(),
        ],
    );
    container
        .run(|| std::fs::write("/proc/sys/net/ipv4/conf/eth0/route_localnet", "1"))
        .unwrap();
    assert_eq!(
        lab.host.reach(at(Ipv4Addr::new(127, 0, 0, 2), 7000)),
        Ok(LOCALHOST.to_string())
    );
    assert_eq!(
        container.reach(at(Ipv4Addr::new(127, 0, 0, 2), 7000)),
        Err(ErrorKind::TimedOut)
    );
}
