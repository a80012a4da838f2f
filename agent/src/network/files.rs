//! A container's name-resolution files, by docker's rules: `/etc/hosts`, `/etc/hostname` and
//! `/etc/resolv.conf`, and the flags that shape them (`--add-host`, `--dns`,
//! `--dns-search`, `--dns-option`). Pure: the host's `resolv.conf` comes in as text.
//!
//! `/etc/hosts` holds the loopback names, then each `--add-host` (`host-gateway` is the
//! address of the host the caller names), then each link (`IP ALIAS HOSTNAME [NAME]`, docker's
//! order), then the container's own address with its hostname and aliases.
//!
//! `/etc/resolv.conf` starts from the host's. On the default bridge the container talks to
//! the nameservers itself, so loopback ones (systemd-resolved's 127.0.0.53, a local dnsmasq)
//! are dropped, and IPv6 ones too (containers have no IPv6); if none is left the file names
//! none (docker would add Google's servers; we send no query the host did not configure). On
//! a user network the network's own resolver, at the gateway, is the only nameserver; it
//! forwards to [`upstreams`]. `--dns`, `--dns-search` (`.` for none) and `--dns-option`
//! replace the host's nameservers, search domains and options.

use std::fmt::Write;
use std::net::{IpAddr, Ipv4Addr};

use serde::{Deserialize, Serialize};

/// The `--add-host` address that stands for the host.
pub const HOST_GATEWAY: &str = "host-gateway";
/// The longest search domain resolv.conf takes.
const MAX_DOMAIN: usize = 255;

/// Why a flag's value was refused; each names the flag and the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilesError {
    #[error("invalid --add-host {0:?}: expected HOST:IP or HOST=IP")]
    AddHost(String),
    #[error("invalid --add-host {text:?}: {address:?} is neither an IP address nor host-gateway")]
    AddHostAddress { text: String, address: String },
    #[error("invalid --dns {0:?}: not an IP address")]
    Dns(String),
    #[error("invalid --dns-search {0:?}: not a domain name")]
    DnsSearch(String),
}

/// A `Result` whose error is [`FilesError`].
pub type Result<T> = std::result::Result<T, FilesError>;

/// Where an `--add-host` name points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostAddress {
    Ip(IpAddr),
    /// `host-gateway`: the host, as seen from the container.
    HostGateway,
}

/// One `--add-host`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtraHost {
    pub name: String,
    pub address: HostAddress,
}

/// `--add-host HOST:IP` (or `HOST=IP`; an IPv6 address may be in brackets; `host-gateway`
/// for the host).
pub fn parse_add_host(text: &str) -> Result<ExtraHost> {
    let (name, address) = text
        .split_once('=')
        .or_else(|| text.split_once(':'))
        .filter(|(name, address)| !name.is_empty() && !address.is_empty())
        .ok_or_else(|| FilesError::AddHost(text.to_owned()))?;
    if name.chars().any(char::is_whitespace) {
        return Err(FilesError::AddHost(text.to_owned()));
    }
    let address = if address == HOST_GATEWAY {
        HostAddress::HostGateway
    } else {
        let bare = address
            .strip_prefix('[')
            .and_then(|a| a.strip_suffix(']'))
            .unwrap_or(address);
        HostAddress::Ip(bare.parse().map_err(|_| FilesError::AddHostAddress {
            text: text.to_owned(),
            address: address.to_owned(),
        })?)
    };
    Ok(ExtraHost {
        name: name.to_owned(),
        address,
    })
}

/// A `--link`ed container as `/etc/hosts` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedHost {
    pub ip: Ipv4Addr,
    /// The link's alias (its name when none was given).
    pub alias: String,
    /// The linked container's hostname (its short ID by default).
    pub hostname: String,
    /// The linked container's name.
    pub name: String,
}

/// What a container's `/etc/hosts` is made of.
#[derive(Debug, Clone, Copy)]
pub struct Hosts<'a> {
    /// The container's own address; `None` without a network of its own (`--network none`).
    pub address: Option<Ipv4Addr>,
    pub hostname: &'a str,
    /// More names for the container's own address (network aliases).
    pub aliases: &'a [String],
    pub extra_hosts: &'a [ExtraHost],
    /// What `host-gateway` stands for.
    pub host_gateway: IpAddr,
    pub links: &'a [LinkedHost],
}

/// The loopback names every docker container has.
const LOOPBACK_HOSTS: &str = "127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
ff00::0\tip6-mcastprefix
ff02::1\tip6-allnodes
ff02::2\tip6-allrouters
";

/// The content of the container's `/etc/hosts`.
pub fn hosts_file(hosts: &Hosts<'_>) -> String {
    let mut text = LOOPBACK_HOSTS.to_owned();
    for extra in hosts.extra_hosts {
        let ip = match extra.address {
            HostAddress::Ip(ip) => ip,
            HostAddress::HostGateway => hosts.host_gateway,
        };
        let _ = writeln!(text, "{ip}\t{}", extra.name);
    }
    for link in hosts.links {
        let _ = write!(text, "{}\t{} {}", link.ip, link.alias, link.hostname);
        if link.alias != link.name {
            let _ = write!(text, " {}", link.name);
        }
        text.push('\n');
    }
    if let Some(address) = hosts.address {
        let _ = write!(text, "{address}\t{}", hosts.hostname);
        // A fully qualified hostname also answers to its first label, as in docker.
        if let Some((short, _)) = hosts.hostname.split_once('.') {
            let _ = write!(text, " {short}");
        }
        for alias in hosts.aliases {
            let _ = write!(text, " {alias}");
        }
        text.push('\n');
    }
    text
}

/// The content of the container's `/etc/hostname`.
pub fn hostname_file(hostname: &str) -> String {
    format!("{hostname}\n")
}

/// `--dns`, `--dns-search` and `--dns-option`; empty lists keep the host's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dns {
    pub servers: Vec<IpAddr>,
    /// `["."]` clears the host's search domains.
    pub search: Vec<String>,
    pub options: Vec<String>,
}

/// `--dns IP`.
pub fn parse_dns(text: &str) -> Result<IpAddr> {
    text.parse().map_err(|_| FilesError::Dns(text.to_owned()))
}

/// `--dns-search DOMAIN`: a domain name (a trailing dot allowed) or `.` for none.
pub fn parse_dns_search(text: &str) -> Result<String> {
    let label_ok = |label: &str| {
        let bytes = label.as_bytes();
        match (bytes.first(), bytes.last()) {
            (Some(first), Some(last)) => {
                first.is_ascii_alphanumeric()
                    && last.is_ascii_alphanumeric()
                    && bytes
                        .iter()
                        .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
            }
            _ => false,
        }
    };
    let name = text.strip_suffix('.').unwrap_or(text);
    if text == "." || (text.len() <= MAX_DOMAIN && name.split('.').all(label_ok)) {
        Ok(text.to_owned())
    } else {
        Err(FilesError::DnsSearch(text.to_owned()))
    }
}

/// Who answers a container's DNS queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolver {
    /// The nameservers themselves (the default bridge).
    Direct,
    /// The network's embedded resolver at this address (a user-defined network's gateway).
    Embedded(Ipv4Addr),
}

/// The lines of a `resolv.conf` that matter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvConf {
    pub nameservers: Vec<IpAddr>,
    pub search: Vec<String>,
    pub options: Vec<String>,
}

impl ResolvConf {
    /// Reads a `resolv.conf` as glibc does: `nameserver` lines in order (unparsable ones, such
    /// as link-local addresses with a zone, skipped), the last `search` or `domain` line,
    /// every `options` line; comments (`#`, `;`) and other keywords ignored.
    pub fn parse(text: &str) -> ResolvConf {
        let mut conf = ResolvConf::default();
        for line in text.lines() {
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => {
                    if let Some(ip) = words.next().and_then(|w| w.parse().ok()) {
                        conf.nameservers.push(ip);
                    }
                }
                Some("search" | "domain") => conf.search = words.map(str::to_owned).collect(),
                Some("options") => conf.options.extend(words.map(str::to_owned)),
                _ => {}
            }
        }
        conf
    }

    /// The file's text.
    pub fn render(&self) -> String {
        let mut text = String::new();
        for server in &self.nameservers {
            let _ = writeln!(text, "nameserver {server}");
        }
        if !self.search.is_empty() {
            let _ = writeln!(text, "search {}", self.search.join(" "));
        }
        if !self.options.is_empty() {
            let _ = writeln!(text, "options {}", self.options.join(" "));
        }
        text
    }
}

/// The container's `/etc/resolv.conf` from the host's (`host`, its text) and the flags.
pub fn resolv_conf(host: &str, dns: &Dns, resolver: Resolver) -> ResolvConf {
    let host = ResolvConf::parse(host);
    let nameservers = match resolver {
        Resolver::Embedded(gateway) => vec![IpAddr::V4(gateway)],
        Resolver::Direct if !dns.servers.is_empty() => dns.servers.clone(),
        Resolver::Direct => host
            .nameservers
            .into_iter()
            .filter(|ip| ip.is_ipv4() && !ip.is_loopback())
            .collect(),
    };
    let search = match dns.search.as_slice() {
        [] => host.search,
        [dot] if dot == "." => Vec::new(),
        given => given.to_vec(),
    };
    let options = if dns.options.is_empty() {
        host.options
    } else {
        dns.options.clone()
    };
    ResolvConf {
        nameservers,
        search,
        options,
    }
}

/// Where a network's embedded resolver sends the queries it cannot answer: the `--dns`
/// servers, else the host's nameservers (loopback ones included: the resolver runs on the
/// host).
pub fn upstreams(host: &str, dns: &Dns) -> Vec<IpAddr> {
    if dns.servers.is_empty() {
        ResolvConf::parse(host).nameservers
    } else {
        dns.servers.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn add_host_takes_dockers_forms() {
        let table = [
            ("db:10.0.0.5", "db", HostAddress::Ip(ip("10.0.0.5"))),
            ("db=10.0.0.5", "db", HostAddress::Ip(ip("10.0.0.5"))),
            ("v6:::1", "v6", HostAddress::Ip(ip("::1"))),
            ("v6=[fd00::7]", "v6", HostAddress::Ip(ip("fd00::7"))),
            ("v6:[fd00::7]", "v6", HostAddress::Ip(ip("fd00::7"))),
            ("me:host-gateway", "me", HostAddress::HostGateway),
        ];
        for (text, name, address) in table {
            let parsed = parse_add_host(text).unwrap();
            assert_eq!(
                (parsed.name.as_str(), parsed.address),
                (name, address),
                "{text}"
            );
        }
        let errors = [
            (
                "db",
                r#"invalid --add-host "db": expected HOST:IP or HOST=IP"#,
            ),
            (
                ":1.2.3.4",
                r#"invalid --add-host ":1.2.3.4": expected HOST:IP or HOST=IP"#,
            ),
            (
                "db:",
                r#"invalid --add-host "db:": expected HOST:IP or HOST=IP"#,
            ),
            (
                "db:nowhere",
                r#"invalid --add-host "db:nowhere": "nowhere" is neither an IP address nor host-gateway"#,
            ),
        ];
        for (text, message) in errors {
            assert_eq!(parse_add_host(text).unwrap_err().to_string(), message);
        }
    }

    #[test]
    fn hosts_file_lists_loopback_extras_links_and_the_container() {
        let extra = [
            parse_add_host("db:10.0.0.5").unwrap(),
            parse_add_host("host.flotilla.internal:host-gateway").unwrap(),
        ];
        let links = [
            LinkedHost {
                ip: "10.222.0.2".parse().unwrap(),
                alias: "mongo".into(),
                hostname: "3c4b5a6d7e8f".into(),
                name: "mongo-ins".into(),
            },
            LinkedHost {
                ip: "10.222.0.3".parse().unwrap(),
                alias: "cache".into(),
                hostname: "0123456789ab".into(),
                name: "cache".into(),
            },
        ];
        let aliases = ["app".to_owned()];
        let hosts = Hosts {
            address: Some("10.222.0.4".parse().unwrap()),
            hostname: "web.example.com",
            aliases: &aliases,
            extra_hosts: &extra,
            host_gateway: ip("10.222.0.1"),
            links: &links,
        };
        let expected = format!(
            "{LOOPBACK_HOSTS}10.0.0.5\tdb\n10.222.0.1\thost.flotilla.internal\n\
             10.222.0.2\tmongo 3c4b5a6d7e8f mongo-ins\n10.222.0.3\tcache 0123456789ab\n\
             10.222.0.4\tweb.example.com web app\n"
        );
        assert_eq!(hosts_file(&hosts), expected);
        assert!(expected.starts_with("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost"));

        let isolated = Hosts {
            address: None,
            hostname: "0123456789ab",
            aliases: &[],
            extra_hosts: &[],
            host_gateway: ip("10.222.0.1"),
            links: &[],
        };
        assert_eq!(hosts_file(&isolated), LOOPBACK_HOSTS);
        assert_eq!(hostname_file("0123456789ab"), "0123456789ab\n");
    }

    const HOST_RESOLV: &str = "# managed by someone\n\
        nameserver 127.0.0.53\n\
        nameserver 10.255.255.53\n\
        nameserver fd00::53\n\
        nameserver fe80::1%eth0\n\
        domain old.example\n\
        search corp.example lab.example\n\
        options ndots:2\n\
        options edns0\n";

    #[test]
    fn host_resolv_conf_is_read_like_glibc() {
        let conf = ResolvConf::parse(HOST_RESOLV);
        assert_eq!(
            conf.nameservers,
            [ip("127.0.0.53"), ip("10.255.255.53"), ip("fd00::53")]
        );
        assert_eq!(conf.search, ["corp.example", "lab.example"]);
        assert_eq!(conf.options, ["ndots:2", "edns0"]);
        assert_eq!(
            ResolvConf::parse("search a.example\ndomain b.example\n").search,
            ["b.example"]
        );
    }

    #[test]
    fn the_default_bridge_keeps_reachable_host_nameservers_only() {
        let conf = resolv_conf(HOST_RESOLV, &Dns::default(), Resolver::Direct);
        assert_eq!(
            conf.render(),
            "nameserver 10.255.255.53\nsearch corp.example lab.example\noptions ndots:2 edns0\n"
        );
        let resolved_only = "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch .\n";
        let conf = resolv_conf(resolved_only, &Dns::default(), Resolver::Direct);
        assert!(conf.nameservers.is_empty());
        assert_eq!(conf.render(), "search .\noptions edns0 trust-ad\n");
    }

    #[test]
    fn user_networks_ask_their_gateway_which_forwards_upstream() {
        let gateway: Ipv4Addr = "10.223.0.1".parse().unwrap();
        let conf = resolv_conf(HOST_RESOLV, &Dns::default(), Resolver::Embedded(gateway));
        assert_eq!(conf.nameservers, [ip("10.223.0.1")]);
        assert_eq!(conf.search, ["corp.example", "lab.example"]);
        assert_eq!(
            upstreams(HOST_RESOLV, &Dns::default()),
            [ip("127.0.0.53"), ip("10.255.255.53"), ip("fd00::53")]
        );
        let dns = Dns {
            servers: vec![ip("9.9.9.9")],
            ..Dns::default()
        };
        let conf = resolv_conf(HOST_RESOLV, &dns, Resolver::Embedded(gateway));
        assert_eq!(conf.nameservers, [ip("10.223.0.1")]);
        assert_eq!(upstreams(HOST_RESOLV, &dns), [ip("9.9.9.9")]);
    }

    #[test]
    fn dns_flags_replace_the_hosts_settings() {
        let dns = Dns {
            servers: vec![
                parse_dns("127.0.0.1").unwrap(),
                parse_dns("fd00::1").unwrap(),
            ],
            search: vec![parse_dns_search("example.org.").unwrap()],
            options: vec!["ndots:5".into()],
        };
        assert_eq!(
            resolv_conf(HOST_RESOLV, &dns, Resolver::Direct).render(),
            "nameserver 127.0.0.1\nnameserver fd00::1\nsearch example.org.\noptions ndots:5\n"
        );
        let no_search = Dns {
            search: vec![parse_dns_search(".").unwrap()],
            ..Dns::default()
        };
        assert!(resolv_conf(HOST_RESOLV, &no_search, Resolver::Direct)
            .search
            .is_empty());
        assert_eq!(
            parse_dns("dns.example").unwrap_err().to_string(),
            r#"invalid --dns "dns.example": not an IP address"#
        );
        for bad in ["", "-a.example", "a..example", "a b", "a_b.example", ".."] {
            assert_eq!(
                parse_dns_search(bad).unwrap_err(),
                FilesError::DnsSearch(bad.to_owned()),
                "{bad}"
            );
        }
        assert!(parse_dns_search(&"a".repeat(256)).is_err());
    }
}
