//! The embedded resolver of user networks as a container meets it: the `flotilla dns-serve`
//! process, started by `ensure_running` and reloaded by `reload`, answering names over UDP
//! and TCP, keeping networks apart, relaying other names to an upstream and failing cleanly
//! when the upstream is silent.
//!
//! Every test builds its own network namespace, whose loopback holds the networks' gateways
//! (10.213.N.1) and a fake upstream nameserver (10.213.9.1) that answers every name with
//! 10.213.9.99. The resolver is started from a thread in that namespace, so it lives
//! there; the queries are sent from there too. Nothing leaves the namespace. Needs root and ip.

mod common;

use common::netns::Netns;

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use agent::network::dns::launch::{ensure_running, reload, Launcher};
use agent::network::dns::table::{self, Entry, Network, Table};
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use nix::sched::{setns, CloneFlags};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// The fake upstream, and the one address it gives every name.
const UPSTREAM: Ipv4Addr = Ipv4Addr::new(10, 213, 9, 1);
const UPSTREAM_ANSWER: Ipv4Addr = Ipv4Addr::new(10, 213, 9, 99);
/// An upstream that reads queries and never answers.
const SILENT: Ipv4Addr = Ipv4Addr::new(10, 213, 9, 2);

fn gateway(network: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 213, network, 1)
}

fn container(network: u8, host: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 213, network, host)
}

/// A namespace with loopback up, holding the gateways and upstreams too.
fn lab() -> Netns {
    let netns = Netns::new();
    netns.ip(&["link", "set", "lo", "up"]);
    for address in [gateway(1), gateway(2), UPSTREAM, SILENT] {
        netns.ip(&["address", "add", &format!("{address}/32"), "dev", "lo"]);
    }
    netns
}

impl Netns {
    fn ip(&self, args: &[&str]) {
        self.command("ip", args);
    }

    /// Runs `step` over and over on a thread in this namespace until the result is dropped.
    fn background(&self, mut step: impl FnMut() + Send + 'static) -> Background {
        let file = self.file().as_fd().try_clone_to_owned().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            setns(&file, CloneFlags::CLONE_NEWNET).unwrap();
            while !stopped.load(Ordering::Relaxed) {
                step();
            }
        });
        Background {
            stop,
            thread: Some(thread),
        }
    }

    /// A fake upstream nameserver on `UPSTREAM`:53, UDP and TCP, answering every A query
    /// with `UPSTREAM_ANSWER`.
    fn upstream(&self) -> (Background, Background) {
        let address = SocketAddrV4::new(UPSTREAM, 53);
        let udp = self.run(|| UdpSocket::bind(address).unwrap());
        udp.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let tcp = self.run(|| TcpListener::bind(address).unwrap());
        tcp.set_nonblocking(true).unwrap();
        let udp = self.background(move || {
            let mut query = [0; 512];
            if let Ok((length, client)) = udp.recv_from(&mut query) {
                udp.send_to(&upstream_reply(&query[..length]), client)
                    .unwrap();
            }
        });
        let tcp = self.background(move || match tcp.accept() {
            Ok((mut stream, _)) => {
                stream.set_nonblocking(false).unwrap();
                let query = read_frame(&mut stream);
                write_frame(&mut stream, &upstream_reply(&query));
            }
            Err(_) => thread::sleep(Duration::from_millis(20)),
        });
        (udp, tcp)
    }

    /// An upstream on `SILENT`:53 that takes queries and never answers.
    fn silent_upstream(&self) -> Background {
        let udp = self.run(|| UdpSocket::bind(SocketAddrV4::new(SILENT, 53)).unwrap());
        udp.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        self.background(move || {
            let _ = udp.recv_from(&mut [0; 512]);
        })
    }

    /// Asks `server` (port 53) for `name`'s `kind` records over UDP.
    fn ask_udp(&self, server: Ipv4Addr, name: &str, kind: RecordType) -> Message {
        self.run(|| {
            let socket = UdpSocket::bind("0.0.0.0:0").unwrap();
            socket
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            socket
                .send_to(&query(name, kind), SocketAddrV4::new(server, 53))
                .unwrap();
            let mut reply = [0; 512];
            let (length, _) = socket
                .recv_from(&mut reply)
                .unwrap_or_else(|e| panic!("no answer from {server} for {name}: {e}"));
            Message::from_vec(&reply[..length]).unwrap()
        })
    }

    /// Asks `server` (port 53) for `name`'s `kind` records over TCP.
    fn ask_tcp(&self, server: Ipv4Addr, name: &str, kind: RecordType) -> Message {
        self.run(|| {
            let mut stream = TcpStream::connect(SocketAddrV4::new(server, 53)).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            write_frame(&mut stream, &query(name, kind));
            Message::from_vec(&read_frame(&mut stream)).unwrap()
        })
    }

    /// The addresses `server` gives for `name` over UDP.
    fn resolve(&self, server: Ipv4Addr, name: &str) -> Vec<Ipv4Addr> {
        let reply = self.ask_udp(server, name, RecordType::A);
        assert_eq!(
            reply.metadata.response_code,
            ResponseCode::NoError,
            "{name}"
        );
        addresses(&reply)
    }
}

/// A thread in a namespace, stopped when dropped.
struct Background {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Background {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn query(name: &str, kind: RecordType) -> Vec<u8> {
    let mut message = Message::new(7, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(Name::from_ascii(name).unwrap(), kind));
    message.to_vec().unwrap()
}

/// The fake upstream's reply: `UPSTREAM_ANSWER` for whatever was asked.
fn upstream_reply(query: &[u8]) -> Vec<u8> {
    let query = Message::from_vec(query).unwrap();
    let mut reply = Message::response(query.metadata.id, OpCode::Query);
    let name = query.queries[0].name().clone();
    reply.add_queries(query.queries.clone());
    reply.add_answer(Record::from_rdata(name, 60, RData::A(A(UPSTREAM_ANSWER))));
    reply.to_vec().unwrap()
}

fn addresses(reply: &Message) -> Vec<Ipv4Addr> {
    reply
        .answers
        .iter()
        .filter_map(|record| match &record.data {
            RData::A(A(ip)) => Some(*ip),
            _ => None,
        })
        .collect()
}

fn read_frame(stream: &mut TcpStream) -> Vec<u8> {
    let mut length = [0; 2];
    stream.read_exact(&mut length).unwrap();
    let mut message = vec![0; usize::from(u16::from_be_bytes(length))];
    stream.read_exact(&mut message).unwrap();
    message
}

fn write_frame(stream: &mut TcpStream, message: &[u8]) {
    let mut frame = u16::try_from(message.len()).unwrap().to_be_bytes().to_vec();
    frame.extend_from_slice(message);
    stream.write_all(&frame).unwrap();
}

fn network(number: u8, entries: &[(&str, u8)]) -> Network {
    Network {
        name: format!("net{number}"),
        gateway: gateway(number),
        entries: entries
            .iter()
            .map(|(name, host)| Entry {
                names: vec![(*name).to_owned()],
                addresses: vec![container(number, *host)],
            })
            .collect(),
    }
}

/// A data root with a resolver table, the resolver started in a namespace, stopped when
/// dropped.
struct World {
    netns: Netns,
    root: tempfile::TempDir,
}

impl World {
    fn new(networks: Vec<Network>, upstreams: &[Ipv4Addr]) -> Self {
        let world = World {
            netns: lab(),
            root: tempfile::tempdir().unwrap(),
        };
        world.write(networks, upstreams);
        world
    }

    fn data_root(&self) -> &Path {
        self.root.path()
    }

    fn write(&self, networks: Vec<Network>, upstreams: &[Ipv4Addr]) {
        let table = Table {
            networks,
            upstreams: upstreams
                .iter()
                .map(|ip| SocketAddr::from((*ip, 53)))
                .collect(),
        };
        table::write(&table::path(self.data_root()), &table).unwrap();
    }

    /// Starts the resolver (or finds it) from the namespace; its pid.
    fn ensure_running(&self) -> Pid {
        self.netns
            .run(|| ensure_running(self.data_root(), &exe(), Launcher::Session).unwrap())
    }

    fn reload(&self) {
        self.netns
            .run(|| reload(self.data_root(), &exe(), Launcher::Session).unwrap());
    }

    /// Whether a resolver holds the data root's lock.
    fn running(&self) -> bool {
        let path = self.data_root().join("network/dns.lock");
        let file = File::options().write(true).open(path).unwrap();
        nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock).is_err()
    }

    /// Waits up to `patience` for the resolver to be gone.
    fn gone_within(&self, patience: Duration) -> bool {
        let deadline = Instant::now() + patience;
        while self.running() {
            if Instant::now() > deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(20));
        }
        true
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let pid_file = self.data_root().join("network/dns.pid");
        if let Some(pid) = std::fs::read_to_string(pid_file)
            .ok()
            .and_then(|text| text.trim().parse().ok())
        {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_flotilla"))
}

/// The `dns-serve` processes running for `data_root`.
fn resolvers(data_root: &Path) -> Vec<i32> {
    let root = data_root.to_str().unwrap();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            args.contains(&root.as_bytes()) && args.contains(&b"dns-serve".as_slice())
        })
        .collect()
}

#[test]
fn a_container_name_resolves_over_udp_and_tcp() {
    let world = World::new(vec![network(1, &[("web", 5)])], &[UPSTREAM]);
    world.ensure_running();
    assert_eq!(world.netns.resolve(gateway(1), "web"), [container(1, 5)]);
    assert_eq!(
        world.netns.resolve(gateway(1), "WEB.net1."),
        [container(1, 5)]
    );
    let tcp = world.netns.ask_tcp(gateway(1), "web", RecordType::A);
    assert_eq!(addresses(&tcp), [container(1, 5)]);
    let aaaa = world.netns.ask_udp(gateway(1), "web", RecordType::AAAA);
    assert_eq!(aaaa.metadata.response_code, ResponseCode::NoError);
    assert!(aaaa.answers.is_empty());

    // A real client (it asks for A and AAAA).
    let output = world.netns.run(|| {
        Command::new("/bin/busybox")
            .args(["nslookup", "web", &gateway(1).to_string()])
            .output()
            .unwrap()
    });
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("Address: 10.213.1.5"), "{stdout}");
}

#[test]
fn a_network_sees_only_its_own_containers() {
    let world = World::new(
        vec![network(1, &[("web", 5)]), network(2, &[("db", 7)])],
        &[UPSTREAM],
    );
    let _upstream = world.netns.upstream();
    world.ensure_running();
    assert_eq!(world.netns.resolve(gateway(2), "db"), [container(2, 7)]);
    assert_eq!(world.netns.resolve(gateway(1), "web"), [container(1, 5)]);
    // Not a name on net1: the upstream's answer, not db's address.
    assert_eq!(world.netns.resolve(gateway(1), "db"), [UPSTREAM_ANSWER]);
    assert_eq!(world.netns.resolve(gateway(2), "web"), [UPSTREAM_ANSWER]);
}

#[test]
fn other_names_are_relayed_to_the_upstream_over_udp_and_tcp() {
    let world = World::new(vec![network(1, &[("web", 5)])], &[UPSTREAM]);
    let _upstream = world.netns.upstream();
    world.ensure_running();
    assert_eq!(
        world.netns.resolve(gateway(1), "example.org."),
        [UPSTREAM_ANSWER]
    );
    let tcp = world
        .netns
        .ask_tcp(gateway(1), "example.org.", RecordType::A);
    assert_eq!(tcp.metadata.id, 7);
    assert_eq!(addresses(&tcp), [UPSTREAM_ANSWER]);
}

#[test]
fn a_silent_upstream_gives_servfail_after_the_timeout_and_the_next_one_is_tried() {
    let world = World::new(vec![network(1, &[("web", 5)])], &[SILENT]);
    let _silent = world.netns.silent_upstream();
    world.ensure_running();
    let asked = Instant::now();
    let reply = world
        .netns
        .ask_udp(gateway(1), "example.org.", RecordType::A);
    let waited = asked.elapsed();
    assert_eq!(reply.metadata.response_code, ResponseCode::ServFail);
    assert!(
        waited >= Duration::from_millis(1900) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
    // Known names do not wait for upstreams.
    assert_eq!(world.netns.resolve(gateway(1), "web"), [container(1, 5)]);

    let _upstream = world.netns.upstream();
    world.write(vec![network(1, &[("web", 5)])], &[SILENT, UPSTREAM]);
    world.reload();
    assert_eq!(
        world.netns.resolve(gateway(1), "example.org."),
        [UPSTREAM_ANSWER]
    );
}

#[test]
fn a_reload_serves_new_names_and_networks_drops_gone_ones_and_an_empty_table_ends_it() {
    let world = World::new(vec![network(1, &[("web", 5)])], &[UPSTREAM]);
    let _upstream = world.netns.upstream();
    let pid = world.ensure_running();
    assert_eq!(world.netns.resolve(gateway(1), "db"), [UPSTREAM_ANSWER]);

    world.write(
        vec![
            network(1, &[("web", 5), ("db", 6)]),
            network(2, &[("cache", 9)]),
        ],
        &[UPSTREAM],
    );
    // Served once reload returns.
    world.reload();
    assert_eq!(world.netns.resolve(gateway(1), "db"), [container(1, 6)]);
    assert_eq!(world.netns.resolve(gateway(2), "cache"), [container(2, 9)]);
    assert_eq!(world.ensure_running(), pid, "the same resolver goes on");

    // A network that went is no longer listened on.
    world.write(vec![network(1, &[("web", 5)])], &[UPSTREAM]);
    world.reload();
    let refused = world
        .netns
        .run(|| TcpStream::connect(SocketAddrV4::new(gateway(2), 53)).unwrap_err());
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    assert_eq!(world.netns.resolve(gateway(1), "web"), [container(1, 5)]);

    world.write(Vec::new(), &[UPSTREAM]);
    world.reload();
    assert!(
        world.gone_within(Duration::from_secs(3)),
        "the resolver stayed with nothing to serve"
    );
    assert!(!world.data_root().join("network/dns.pid").exists());
}

#[test]
fn the_resolver_listens_before_the_gateway_address_exists() {
    let world = World::new(vec![network(3, &[("web", 5)])], &[UPSTREAM]);
    world.ensure_running();
    // The bridge gets its address after the resolver started.
    world
        .netns
        .ip(&["address", "add", &format!("{}/32", gateway(3)), "dev", "lo"]);
    assert_eq!(world.netns.resolve(gateway(3), "web"), [container(3, 5)]);
}

#[test]
fn a_killed_resolver_is_replaced() {
    let world = World::new(vec![network(1, &[("web", 5)])], &[UPSTREAM]);
    let first = world.ensure_running();
    kill(first, Signal::SIGKILL).unwrap();
    assert!(world.gone_within(Duration::from_secs(3)));
    let second = world.ensure_running();
    assert_ne!(second, first);
    assert_eq!(resolvers(world.data_root()), [second.as_raw()]);
    assert_eq!(world.netns.resolve(gateway(1), "web"), [container(1, 5)]);
}

#[test]
fn sigterm_stops_the_resolver() {
    let world = World::new(vec![network(1, &[("web", 5)])], &[UPSTREAM]);
    let pid = world.ensure_running();
    kill(pid, Signal::SIGTERM).unwrap();
    assert!(world.gone_within(Duration::from_secs(3)));
    assert!(resolvers(world.data_root()).is_empty());
}

#[test]
fn callers_at_the_same_time_start_one_resolver() {
    let world = World::new(vec![network(1, &[("web", 5)])], &[UPSTREAM]);
    let pids: Vec<Pid> = thread::scope(|scope| {
        let callers: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| world.ensure_running()))
            .collect();
        callers.into_iter().map(|c| c.join().unwrap()).collect()
    });
    assert!(pids.iter().all(|pid| *pid == pids[0]), "{pids:?}");
    thread::sleep(Duration::from_millis(200));
    assert_eq!(resolvers(world.data_root()), [pids[0].as_raw()]);
    assert_eq!(world.netns.resolve(gateway(1), "web"), [container(1, 5)]);
}
