//! Published ports: docker's `-p/--publish` grammar, `-P` for an image's exposed ports, the
//! choice of host ports, and how `inspect` and `flotilla port` show the result.
//!
//! A `-p` value is `[IP:][HOSTPORT[-HOSTPORT]:]CONTAINERPORT[-CONTAINERPORT][/tcp|/udp|/sctp]`
//! (an IPv6 address in brackets). It parses to a [`PortSpec`]; [`resolve`] turns a container's
//! specs into one [`PortBinding`] per container port: a host range as long as the container
//! range maps port to port, a host range with one container port takes the range's first free
//! port, no host port (or `0`) takes the first free port of the kernel's ephemeral range
//! (`/proc/sys/net/ipv4/ip_local_port_range`, docker's choice too). Whether a port is free is
//! the caller's question ([`port_is_free`] answers it by binding a socket and closing it), so
//! the choice itself is pure. The same host port twice in one container is refused, naming
//! both `-p` values; a taken explicit port is refused at `run`, naming the address.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::str::FromStr;

use rustix::net::{ipproto, AddressFamily, SocketFlags, SocketType};
use serde::{Deserialize, Serialize};

/// Where the kernel keeps its ephemeral port range.
pub const EPHEMERAL_RANGE_FILE: &str = "/proc/sys/net/ipv4/ip_local_port_range";

/// Why a port text was refused or no host port could be found; each names the text given.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    #[error("invalid {origin} {text:?}: {role} {value:?} {problem}")]
    Port {
        origin: Origin,
        text: String,
        role: Role,
        value: String,
        problem: &'static str,
    },
    #[error("invalid {origin} {text:?}: unknown protocol {protocol:?} (tcp, udp or sctp)")]
    Protocol {
        origin: Origin,
        text: String,
        protocol: String,
    },
    #[error("invalid {origin} {text:?}: expected one port, not a range")]
    NotOnePort { origin: Origin, text: String },
    #[error("invalid --publish {text:?}: no container port")]
    NoContainerPort { text: String },
    #[error("invalid --publish {text:?}: host IP {ip:?} is not an IP address")]
    HostIp { text: String, ip: String },
    #[error(
        "invalid --publish {text:?}: host ports {host} and container ports {container} differ in number"
    )]
    RangeMismatch {
        text: String,
        host: PortRange,
        container: PortRange,
    },
    #[error("host port {port}/{protocol} is published twice: {first:?} and {second:?}")]
    Conflict {
        port: u16,
        protocol: Protocol,
        first: String,
        second: String,
    },
    #[error("cannot publish {text:?}: {address}/{protocol} is already in use")]
    Taken {
        text: String,
        address: SocketAddr,
        protocol: Protocol,
    },
    #[error("cannot publish {text:?}: no free {protocol} port in {range} on {ip}")]
    NoFreePort {
        text: String,
        ip: IpAddr,
        range: PortRange,
        protocol: Protocol,
    },
    #[error("cannot publish {text:?}: cannot bind {address}/{protocol}: {source}")]
    Bind {
        text: String,
        address: SocketAddr,
        protocol: Protocol,
        source: io::Error,
    },
    #[error("no public port {port} published for {container}")]
    NotPublished {
        container: String,
        port: ContainerPort,
    },
    #[error("cannot read {path}: {source}")]
    EphemeralRead { path: PathBuf, source: io::Error },
    #[error("invalid ephemeral port range {text:?} in {path}")]
    EphemeralSyntax { path: PathBuf, text: String },
}

/// A `Result` whose error is [`PortError`].
pub type Result<T> = std::result::Result<T, PortError>;

/// Where a port text came from, as error messages name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `-p`/`--publish`.
    Publish,
    /// A key of the image's `ExposedPorts` (what `-P` publishes).
    Exposed,
    /// The `PRIVATE_PORT[/PROTO]` of `flotilla port`.
    Query,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Origin::Publish => "--publish",
            Origin::Exposed => "exposed port",
            Origin::Query => "port",
        })
    }
}

/// Which side of a mapping a port number is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Host,
    Container,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Host => "host port",
            Role::Container => "container port",
        })
    }
}

/// A transport protocol a port can be published for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    /// The name docker writes: `tcp`, `udp` or `sctp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Ports `start..=end`; one port has `start == end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortRange {
    pub start: u16,
    pub end: u16,
}

impl PortRange {
    /// The one port `port`.
    pub fn one(port: u16) -> PortRange {
        PortRange {
            start: port,
            end: port,
        }
    }

    /// How many ports the range holds.
    pub fn count(self) -> usize {
        usize::from(self.end - self.start) + 1
    }

    /// Whether the range holds exactly one port (a range is never empty).
    pub fn is_one(self) -> bool {
        self.start == self.end
    }

    /// Whether `port` is in the range.
    pub fn contains(self, port: u16) -> bool {
        (self.start..=self.end).contains(&port)
    }

    /// The ports, lowest first.
    pub fn ports(self) -> impl Iterator<Item = u16> {
        self.start..=self.end
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_one() {
            write!(f, "{}", self.start)
        } else {
            write!(f, "{}-{}", self.start, self.end)
        }
    }
}

/// A port of a container with its protocol, as docker keys them: `80/tcp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ContainerPort {
    pub port: u16,
    pub protocol: Protocol,
}

impl ContainerPort {
    /// `PORT[/PROTO]` (tcp when no protocol is given), e.g. the argument of `flotilla port C`.
    pub fn parse(text: &str, origin: Origin) -> Result<ContainerPort> {
        let (range, protocol) = parse_ports(text, text, origin)?;
        if !range.is_one() {
            return Err(PortError::NotOnePort {
                origin,
                text: text.to_owned(),
            });
        }
        Ok(ContainerPort {
            port: range.start,
            protocol,
        })
    }
}

impl fmt::Display for ContainerPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.port, self.protocol)
    }
}

/// One `-p` value, parsed but with its host ports not chosen yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortSpec {
    /// The value as the user gave it, for messages.
    pub text: String,
    /// The host address to listen on; `None` is every address (`0.0.0.0`).
    pub host_ip: Option<IpAddr>,
    /// The host ports; `None` (no host port, or `0`) is one ephemeral port per container port.
    pub host_ports: Option<PortRange>,
    pub container_ports: PortRange,
    pub protocol: Protocol,
}

impl PortSpec {
    /// The host address to listen on: `0.0.0.0` when none was given.
    pub fn host_ip(&self) -> IpAddr {
        self.host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }

    /// The host ports when they map one to one onto the container ports.
    fn fixed_host_ports(&self) -> Option<PortRange> {
        self.host_ports
            .filter(|host| host.count() == self.container_ports.count())
    }

    fn binding(&self, host_port: u16, container_port: u16) -> PortBinding {
        PortBinding {
            host_ip: self.host_ip(),
            host_port,
            container_port,
            protocol: self.protocol,
        }
    }
}

/// One published port: where the host listens and which container port it forwards to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PortBinding {
    /// `0.0.0.0` when the `-p` value named no address.
    pub host_ip: IpAddr,
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: Protocol,
}

impl PortBinding {
    /// The container side, as docker keys it.
    pub fn container(&self) -> ContainerPort {
        ContainerPort {
            port: self.container_port,
            protocol: self.protocol,
        }
    }

    /// The host address and port.
    pub fn host_address(&self) -> SocketAddr {
        SocketAddr::new(self.host_ip, self.host_port)
    }

    /// Whether both would listen on the same host port: same protocol and port, and the same
    /// address or either on every address.
    fn clashes_with(&self, other: &PortBinding) -> bool {
        self.protocol == other.protocol
            && self.host_port == other.host_port
            && (self.host_ip == other.host_ip
                || self.host_ip.is_unspecified()
                || other.host_ip.is_unspecified())
    }
}

/// One entry of docker's `NetworkSettings.Ports` list: `{"HostIp": "0.0.0.0", "HostPort": "8080"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HostBinding {
    pub host_ip: String,
    pub host_port: String,
}

/// Parses one `-p` value.
pub fn parse_publish(text: &str) -> Result<PortSpec> {
    // docker's split: the container part is after the last colon, the host port before it,
    // and everything earlier is the address (so an IPv6 address keeps its colons).
    let mut parts = text.rsplitn(3, ':');
    let container = parts.next().unwrap_or_default();
    let host_port = parts.next();
    let host_ip = parts.next();
    if container.is_empty() || container.starts_with('/') {
        return Err(PortError::NoContainerPort {
            text: text.to_owned(),
        });
    }
    let (container_ports, protocol) = parse_ports(text, container, Origin::Publish)?;
    let host_ip = host_ip
        .filter(|ip| !ip.is_empty())
        .map(|ip| {
            let bare = ip
                .strip_prefix('[')
                .and_then(|ip| ip.strip_suffix(']'))
                .unwrap_or(ip);
            bare.parse().map_err(|_| PortError::HostIp {
                text: text.to_owned(),
                ip: ip.to_owned(),
            })
        })
        .transpose()?;
    let host_ports = match host_port {
        None | Some("" | "0") => None,
        Some(ports) => Some(parse_range(text, ports, Role::Host, Origin::Publish)?),
    };
    if let Some(host) = host_ports {
        if host.count() != container_ports.count() && !container_ports.is_one() {
            return Err(PortError::RangeMismatch {
                text: text.to_owned(),
                host,
                container: container_ports,
            });
        }
    }
    Ok(PortSpec {
        text: text.to_owned(),
        host_ip,
        host_ports,
        container_ports,
        protocol,
    })
}

/// `PORT[-PORT][/PROTO]`, a part of `text`.
fn parse_ports(text: &str, part: &str, origin: Origin) -> Result<(PortRange, Protocol)> {
    let (ports, protocol) = part.split_once('/').unwrap_or((part, ""));
    let protocol = match protocol.to_ascii_lowercase().as_str() {
        "" | "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        "sctp" => Protocol::Sctp,
        _ => {
            return Err(PortError::Protocol {
                origin,
                text: text.to_owned(),
                protocol: protocol.to_owned(),
            })
        }
    };
    Ok((parse_range(text, ports, Role::Container, origin)?, protocol))
}

/// `PORT` or `PORT-PORT`, a part of `text`.
fn parse_range(text: &str, part: &str, role: Role, origin: Origin) -> Result<PortRange> {
    let error = |value: &str, problem| PortError::Port {
        origin,
        text: text.to_owned(),
        role,
        value: value.to_owned(),
        problem,
    };
    let number = |value: &str| -> Result<u16> {
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(error(value, "is not a number"));
        }
        match value.parse::<u16>() {
            Ok(port) if port > 0 => Ok(port),
            _ => Err(error(value, "is out of range 1-65535")),
        }
    };
    let range = match part.split_once('-') {
        None => PortRange::one(number(part)?),
        Some((start, end)) => PortRange {
            start: number(start)?,
            end: number(end)?,
        },
    };
    if range.end < range.start {
        return Err(error(part, "ends before it starts"));
    }
    Ok(range)
}

/// `-P`: a spec publishing each of the image's exposed ports (`ExposedPorts` keys such as
/// `80/tcp`) on an ephemeral host port, except the container ports `explicit` already
/// publishes (docker's rule: a `-p` for that port wins).
pub fn publish_all<'a>(
    exposed: impl IntoIterator<Item = &'a str>,
    explicit: &[PortSpec],
) -> Result<Vec<PortSpec>> {
    let mut specs = Vec::new();
    for key in exposed {
        let (range, protocol) = parse_ports(key, key, Origin::Exposed)?;
        for port in range.ports() {
            let published = explicit
                .iter()
                .any(|spec| spec.protocol == protocol && spec.container_ports.contains(port));
            if !published {
                specs.push(PortSpec {
                    text: ContainerPort { port, protocol }.to_string(),
                    host_ip: None,
                    host_ports: None,
                    container_ports: PortRange::one(port),
                    protocol,
                });
            }
        }
    }
    Ok(specs)
}

/// The image's exposed ports (`ExposedPorts` keys), one per port, for `inspect` and links.
pub fn exposed_ports<'a>(exposed: impl IntoIterator<Item = &'a str>) -> Result<Vec<ContainerPort>> {
    let mut ports = Vec::new();
    for key in exposed {
        let (range, protocol) = parse_ports(key, key, Origin::Exposed)?;
        ports.extend(range.ports().map(|port| ContainerPort { port, protocol }));
    }
    ports.sort();
    ports.dedup();
    Ok(ports)
}

/// Chooses the host port of every container port of `specs`: explicit ports as given, then
/// ranges and ephemeral ports lowest free first (after the explicit ones, so that they never
/// take a port a later `-p` names). `is_free(ip, port, protocol)` says whether a host port can
/// be bound now: `Ok(false)` when it is taken, `Err` when binding there cannot work at all (an
/// address this host does not have). The bindings come in the order of `specs`.
pub fn resolve(
    specs: &[PortSpec],
    ephemeral: PortRange,
    is_free: &dyn Fn(IpAddr, u16, Protocol) -> io::Result<bool>,
) -> Result<Vec<PortBinding>> {
    let ask = |spec: &PortSpec, candidate: &PortBinding| {
        is_free(candidate.host_ip, candidate.host_port, candidate.protocol).map_err(|source| {
            PortError::Bind {
                text: spec.text.clone(),
                address: candidate.host_address(),
                protocol: candidate.protocol,
                source,
            }
        })
    };
    // (index in `specs`, binding)
    let mut chosen: Vec<(usize, PortBinding)> = Vec::new();
    for (index, spec) in specs.iter().enumerate() {
        let Some(host) = spec.fixed_host_ports() else {
            continue;
        };
        for (host_port, container_port) in host.ports().zip(spec.container_ports.ports()) {
            let candidate = spec.binding(host_port, container_port);
            if let Some((first, _)) = chosen.iter().find(|(_, b)| b.clashes_with(&candidate)) {
                return Err(PortError::Conflict {
                    port: host_port,
                    protocol: spec.protocol,
                    first: specs[*first].text.clone(),
                    second: spec.text.clone(),
                });
            }
            if !ask(spec, &candidate)? {
                return Err(PortError::Taken {
                    text: spec.text.clone(),
                    address: candidate.host_address(),
                    protocol: spec.protocol,
                });
            }
            chosen.push((index, candidate));
        }
    }
    for (index, spec) in specs.iter().enumerate() {
        if spec.fixed_host_ports().is_some() {
            continue;
        }
        let range = spec.host_ports.unwrap_or(ephemeral);
        for container_port in spec.container_ports.ports() {
            let mut found = None;
            for host_port in range.ports() {
                let candidate = spec.binding(host_port, container_port);
                if !chosen.iter().any(|(_, b)| b.clashes_with(&candidate)) && ask(spec, &candidate)?
                {
                    found = Some(candidate);
                    break;
                }
            }
            let binding = found.ok_or_else(|| PortError::NoFreePort {
                text: spec.text.clone(),
                ip: spec.host_ip(),
                range,
                protocol: spec.protocol,
            })?;
            chosen.push((index, binding));
        }
    }
    chosen.sort_by_key(|(index, binding)| (*index, binding.container_port));
    Ok(chosen.into_iter().map(|(_, binding)| binding).collect())
}

/// Whether `port` can be bound on `ip` for `protocol` now, found out by [`reserve_port`] and
/// letting the reservation go at once.
pub fn port_is_free(ip: IpAddr, port: u16, protocol: Protocol) -> io::Result<bool> {
    reserve_port(ip, port, protocol).map(|socket| socket.is_some())
}

/// Holds `port` on `ip` for `protocol` with a socket nobody reads, so that no other program
/// (and no other container) can publish or listen on it while the socket lives: TCP binds
/// with `SO_REUSEADDR` (as a listener would, so connections in `TIME_WAIT` do not block it)
/// and listens, UDP binds. Published traffic never reaches the socket: it is DNATed before.
/// `Ok(None)` if something holds the port, `Err` for any other failure (the address is not
/// this host's, the protocol is not supported by the kernel).
pub fn reserve_port(ip: IpAddr, port: u16, protocol: Protocol) -> io::Result<Option<OwnedFd>> {
    let family = match ip {
        IpAddr::V4(_) => AddressFamily::INET,
        IpAddr::V6(_) => AddressFamily::INET6,
    };
    let (kind, number) = match protocol {
        Protocol::Tcp => (SocketType::STREAM, ipproto::TCP),
        Protocol::Udp => (SocketType::DGRAM, ipproto::UDP),
        Protocol::Sctp => (SocketType::STREAM, ipproto::SCTP),
    };
    let socket = rustix::net::socket_with(family, kind, SocketFlags::CLOEXEC, Some(number))?;
    let stream = kind == SocketType::STREAM;
    if stream {
        rustix::net::sockopt::set_socket_reuseaddr(&socket, true)?;
    }
    match rustix::net::bind(&socket, &SocketAddr::new(ip, port)) {
        Ok(()) => {}
        Err(rustix::io::Errno::ADDRINUSE) => return Ok(None),
        Err(errno) => return Err(errno.into()),
    }
    if stream {
        match rustix::net::listen(&socket, 1) {
            Ok(()) => {}
            Err(rustix::io::Errno::ADDRINUSE) => return Ok(None),
            Err(errno) => return Err(errno.into()),
        }
    }
    Ok(Some(socket))
}

/// The kernel's ephemeral port range, from [`EPHEMERAL_RANGE_FILE`].
pub fn ephemeral_range() -> Result<PortRange> {
    let path = PathBuf::from(EPHEMERAL_RANGE_FILE);
    let text = fs::read_to_string(&path).map_err(|source| PortError::EphemeralRead {
        path: path.clone(),
        source,
    })?;
    parse_ephemeral_range(&text).ok_or_else(|| PortError::EphemeralSyntax {
        path,
        text: text.trim().to_owned(),
    })
}

/// `ip_local_port_range`'s content: two numbers separated by white space.
fn parse_ephemeral_range(text: &str) -> Option<PortRange> {
    let mut numbers = text.split_whitespace().map(u16::from_str);
    match (numbers.next(), numbers.next(), numbers.next()) {
        (Some(Ok(start)), Some(Ok(end)), None) if 0 < start && start <= end => {
            Some(PortRange { start, end })
        }
        _ => None,
    }
}

/// docker's `NetworkSettings.Ports`: every exposed or published container port (`80/tcp`) with
/// its host bindings, `None` (JSON `null`) for an exposed port not published.
pub fn inspect_ports(
    bindings: &[PortBinding],
    exposed: &[ContainerPort],
) -> BTreeMap<String, Option<Vec<HostBinding>>> {
    let mut ports: BTreeMap<String, Option<Vec<HostBinding>>> = exposed
        .iter()
        .map(|port| (port.to_string(), None))
        .collect();
    for binding in bindings {
        ports
            .entry(binding.container().to_string())
            .or_default()
            .get_or_insert_with(Vec::new)
            .push(HostBinding {
                host_ip: binding.host_ip.to_string(),
                host_port: binding.host_port.to_string(),
            });
    }
    ports
}

/// What `flotilla port CONTAINER [PRIVATE[/PROTO]]` prints: every binding as
/// `80/tcp -> 0.0.0.0:8080`, or for one container port only its host addresses
/// (`0.0.0.0:8080`), an error if it has none.
pub fn port_lines(
    container: &str,
    bindings: &[PortBinding],
    query: Option<ContainerPort>,
) -> Result<Vec<String>> {
    let mut sorted = bindings.to_vec();
    sorted.sort_by_key(|b| (b.container(), b.host_ip, b.host_port));
    let Some(query) = query else {
        return Ok(sorted
            .iter()
            .map(|b| format!("{} -> {}", b.container(), b.host_address()))
            .collect());
    };
    let lines: Vec<String> = sorted
        .iter()
        .filter(|b| b.container() == query)
        .map(|b| b.host_address().to_string())
        .collect();
    if lines.is_empty() {
        return Err(PortError::NotPublished {
            container: container.to_owned(),
            port: query,
        });
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::net::{TcpListener, UdpSocket};

    use super::*;

    const ANY: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    fn spec(text: &str) -> PortSpec {
        parse_publish(text).unwrap()
    }

    fn error(text: &str) -> String {
        parse_publish(text).unwrap_err().to_string()
    }

    fn range(start: u16, end: u16) -> PortRange {
        PortRange { start, end }
    }

    /// A spec as `IP|HOST|CONTAINER/PROTO`, `*` for every address and `-` for no host port.
    fn summary(spec: &PortSpec) -> String {
        let ip = spec.host_ip.map_or("*".to_owned(), |ip| ip.to_string());
        let host = spec.host_ports.map_or("-".to_owned(), |r| r.to_string());
        format!("{ip}|{host}|{}/{}", spec.container_ports, spec.protocol)
    }

    #[test]
    fn publish_grammar_follows_docker() {
        let table = [
            ("80", "*|-|80/tcp"),
            ("8080:80", "*|8080|80/tcp"),
            ("0:80", "*|-|80/tcp"),
            ("127.0.0.1:8080:80/udp", "127.0.0.1|8080|80/udp"),
            ("127.0.0.1::80", "127.0.0.1|-|80/tcp"),
            ("[::1]:8080:80", "::1|8080|80/tcp"),
            ("[::1]::53/UDP", "::1|-|53/udp"),
            ("8000-8002:80-82", "*|8000-8002|80-82/tcp"),
            ("8000-8009:80/sctp", "*|8000-8009|80/sctp"),
            ("80-82", "*|-|80-82/tcp"),
            (":80/tcp", "*|-|80/tcp"),
        ];
        for (text, expected) in table {
            let parsed = spec(text);
            assert_eq!(summary(&parsed), expected, "{text}");
            assert_eq!(parsed.text, text);
        }
    }

    #[test]
    fn publish_errors_name_the_value_and_the_part() {
        let table = [
            (
                "80:abc",
                r#"invalid --publish "80:abc": container port "abc" is not a number"#,
            ),
            (
                "x:80",
                r#"invalid --publish "x:80": host port "x" is not a number"#,
            ),
            ("8080:", r#"invalid --publish "8080:": no container port"#),
            ("/udp", r#"invalid --publish "/udp": no container port"#),
            (
                "70000:80",
                r#"invalid --publish "70000:80": host port "70000" is out of range 1-65535"#,
            ),
            (
                "8080:0",
                r#"invalid --publish "8080:0": container port "0" is out of range 1-65535"#,
            ),
            (
                "90-80",
                r#"invalid --publish "90-80": container port "90-80" ends before it starts"#,
            ),
            (
                "80/icmp",
                r#"invalid --publish "80/icmp": unknown protocol "icmp" (tcp, udp or sctp)"#,
            ),
            (
                "localhost:80:80",
                r#"invalid --publish "localhost:80:80": host IP "localhost" is not an IP address"#,
            ),
            (
                "127.0.0.1:80",
                r#"invalid --publish "127.0.0.1:80": host port "127.0.0.1" is not a number"#,
            ),
            (
                "8000-8001:80-82",
                r#"invalid --publish "8000-8001:80-82": host ports 8000-8001 and container ports 80-82 differ in number"#,
            ),
            (
                "8000:80-82",
                r#"invalid --publish "8000:80-82": host ports 8000 and container ports 80-82 differ in number"#,
            ),
        ];
        for (text, message) in table {
            assert_eq!(error(text), message);
        }
    }

    /// A host where `taken` ports are held by others.
    fn host(taken: &[(u16, Protocol)]) -> impl Fn(IpAddr, u16, Protocol) -> io::Result<bool> + '_ {
        |_, port, protocol| Ok(!taken.contains(&(port, protocol)))
    }

    fn bound(ip: IpAddr, host_port: u16, container_port: u16, protocol: Protocol) -> PortBinding {
        PortBinding {
            host_ip: ip,
            host_port,
            container_port,
            protocol,
        }
    }

    #[test]
    fn resolve_maps_ranges_and_picks_free_ports_lowest_first() {
        let specs = [
            spec("8000-8002:80-82"),
            spec("127.0.0.1:9000-9005:90"),
            spec("53/udp"),
            spec("443"),
        ];
        let taken = [(9000, Protocol::Tcp), (40000, Protocol::Tcp)];
        let bindings = resolve(&specs, range(40000, 40010), &host(&taken)).unwrap();
        let tcp = Protocol::Tcp;
        assert_eq!(
            bindings,
            [
                bound(ANY, 8000, 80, tcp),
                bound(ANY, 8001, 81, tcp),
                bound(ANY, 8002, 82, tcp),
                bound(LOCAL, 9001, 90, tcp),
                bound(ANY, 40000, 53, Protocol::Udp),
                bound(ANY, 40001, 443, tcp),
            ]
        );
    }

    #[test]
    fn chosen_ports_of_one_run_leave_its_explicit_ones_alone() {
        let specs = [spec("40000:1"), spec("2"), spec("3")];
        let bindings = resolve(&specs, range(40000, 40002), &host(&[])).unwrap();
        let hosts: Vec<u16> = bindings.iter().map(|b| b.host_port).collect();
        assert_eq!(hosts, [40000, 40001, 40002]);
        let specs = [spec("8000-8010:80"), spec("8000:90")];
        let bindings = resolve(&specs, range(40000, 40002), &host(&[])).unwrap();
        let hosts: Vec<(u16, u16)> = bindings
            .iter()
            .map(|b| (b.container_port, b.host_port))
            .collect();
        assert_eq!(hosts, [(80, 8001), (90, 8000)]);
        let error = resolve(&[spec("1"), spec("2")], range(40000, 40000), &host(&[]))
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            r#"cannot publish "2": no free tcp port in 40000 on 0.0.0.0"#
        );
    }

    #[test]
    fn the_same_host_port_twice_is_a_conflict_unless_addresses_or_protocols_differ() {
        let conflict = |texts: &[&str]| {
            let specs: Vec<PortSpec> = texts.iter().map(|t| spec(t)).collect();
            resolve(&specs, range(40000, 40100), &host(&[])).map_err(|e| e.to_string())
        };
        assert_eq!(
            conflict(&["8080:80", "8080:81"]).unwrap_err(),
            r#"host port 8080/tcp is published twice: "8080:80" and "8080:81""#
        );
        assert_eq!(
            conflict(&["127.0.0.1:8080:80", "8079-8081:90-92"]).unwrap_err(),
            r#"host port 8080/tcp is published twice: "127.0.0.1:8080:80" and "8079-8081:90-92""#
        );
        assert!(conflict(&["8080:80", "8080:80/udp"]).is_ok());
        assert!(conflict(&["127.0.0.1:8080:80", "127.0.0.2:8080:80"]).is_ok());
        assert!(conflict(&["8080:80", "8081:80"]).is_ok());
    }

    #[test]
    fn a_taken_port_is_refused_with_its_address() {
        let taken = [(8080, Protocol::Tcp)];
        let refused = |text: &str| {
            resolve(&[spec(text)], range(40000, 40001), &host(&taken))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            refused("8080:80"),
            r#"cannot publish "8080:80": 0.0.0.0:8080/tcp is already in use"#
        );
        assert_eq!(
            refused("[::1]:8080:80"),
            r#"cannot publish "[::1]:8080:80": [::1]:8080/tcp is already in use"#
        );
        assert_eq!(
            refused("8080-8080:80"),
            r#"cannot publish "8080-8080:80": 0.0.0.0:8080/tcp is already in use"#
        );
        let unbindable = |_: IpAddr, _: u16, _: Protocol| -> io::Result<bool> {
            Err(io::Error::from_raw_os_error(libc::EADDRNOTAVAIL))
        };
        let error = resolve(&[spec("10.9.9.9::80")], range(40000, 40001), &unbindable)
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with(r#"cannot publish "10.9.9.9::80": cannot bind 10.9.9.9:40000/tcp: "#),
            "{error}"
        );
    }

    #[test]
    fn ranges_ask_the_host_port_by_port_and_stop_at_the_first_free_one() {
        let asked = RefCell::new(Vec::new());
        let is_free = |_: IpAddr, port: u16, _: Protocol| {
            asked.borrow_mut().push(port);
            Ok(port >= 8003)
        };
        let bindings = resolve(&[spec("8000-8009:80")], range(1, 2), &is_free).unwrap();
        assert_eq!(bindings[0].host_port, 8003);
        assert_eq!(*asked.borrow(), [8000, 8001, 8002, 8003]);
    }

    #[test]
    fn publish_all_takes_exposed_ports_not_published_explicitly() {
        let explicit = [spec("8080:80"), spec("5353:53/udp")];
        let specs =
            publish_all(["80/tcp", "53/udp", "53/tcp", "9000-9001/tcp"], &explicit).unwrap();
        let texts: Vec<&str> = specs.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(texts, ["53/tcp", "9000/tcp", "9001/tcp"]);
        assert!(specs
            .iter()
            .all(|s| s.host_ports.is_none() && s.host_ip.is_none()));
        assert_eq!(
            publish_all(["80/xyz"], &[]).unwrap_err().to_string(),
            r#"invalid exposed port "80/xyz": unknown protocol "xyz" (tcp, udp or sctp)"#
        );
        let ports = exposed_ports(["443", "80/tcp", "53/udp", "80/tcp"]).unwrap();
        let keys: Vec<String> = ports.iter().map(ToString::to_string).collect();
        assert_eq!(keys, ["53/udp", "80/tcp", "443/tcp"]);
    }

    #[test]
    fn inspect_shape_is_dockers() {
        let bindings = [
            bound(ANY, 8080, 80, Protocol::Tcp),
            bound(LOCAL, 8081, 80, Protocol::Tcp),
        ];
        let exposed = exposed_ports(["80/tcp", "443/tcp"]).unwrap();
        let json = serde_json::to_value(inspect_ports(&bindings, &exposed)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "80/tcp": [
                    {"HostIp": "0.0.0.0", "HostPort": "8080"},
                    {"HostIp": "127.0.0.1", "HostPort": "8081"}
                ],
                "443/tcp": null
            })
        );
        let record = serde_json::to_value(bindings[1]).unwrap();
        assert_eq!(
            record,
            serde_json::json!({"host_ip": "127.0.0.1", "host_port": 8081,
                "container_port": 80, "protocol": "tcp"})
        );
    }

    #[test]
    fn port_command_lines() {
        let bindings = [
            bound(ANY, 5353, 53, Protocol::Udp),
            bound("::".parse().unwrap(), 8080, 80, Protocol::Tcp),
            bound(ANY, 8080, 80, Protocol::Tcp),
        ];
        assert_eq!(
            port_lines("web", &bindings, None).unwrap(),
            [
                "53/udp -> 0.0.0.0:5353",
                "80/tcp -> 0.0.0.0:8080",
                "80/tcp -> [::]:8080"
            ]
        );
        let query = |text| ContainerPort::parse(text, Origin::Query).unwrap();
        assert_eq!(
            port_lines("web", &bindings, Some(query("80"))).unwrap(),
            ["0.0.0.0:8080", "[::]:8080"]
        );
        assert_eq!(
            port_lines("web", &bindings, Some(query("53/tcp")))
                .unwrap_err()
                .to_string(),
            "no public port 53/tcp published for web"
        );
        assert_eq!(
            ContainerPort::parse("80-81", Origin::Query)
                .unwrap_err()
                .to_string(),
            r#"invalid port "80-81": expected one port, not a range"#
        );
    }

    #[test]
    fn ephemeral_range_comes_from_the_kernel() {
        assert_eq!(
            parse_ephemeral_range("32768\t60999\n"),
            Some(range(32768, 60999))
        );
        for bad in ["", "1", "2 1", "0 5", "1 2 3", "a b"] {
            assert_eq!(parse_ephemeral_range(bad), None, "{bad}");
        }
        let kernel = ephemeral_range().unwrap();
        assert!(kernel.start <= kernel.end);
    }

    #[test]
    fn the_real_checker_sees_listening_sockets() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(!port_is_free(LOCAL, port, Protocol::Tcp).unwrap());
        assert!(!port_is_free(ANY, port, Protocol::Tcp).unwrap());
        drop(listener);
        assert!(port_is_free(LOCAL, port, Protocol::Tcp).unwrap());

        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = socket.local_addr().unwrap().port();
        assert!(!port_is_free(LOCAL, port, Protocol::Udp).unwrap());
        assert!(port_is_free(LOCAL, port, Protocol::Tcp).unwrap());

        let foreign = "203.0.113.1".parse().unwrap();
        assert!(port_is_free(foreign, port, Protocol::Tcp).is_err());
    }
}
