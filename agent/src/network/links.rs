//! docker's legacy links: `--link NAME[:ALIAS]` and the environment it gives the linking
//! container, with docker's exact names (`daemon/links` in moby):
//!
//! ```text
//! DB_PORT=tcp://10.222.0.2:5432                 the first port (TCP ones first, lowest first)
//! DB_PORT_5432_TCP=tcp://10.222.0.2:5432        for every exposed port …
//! DB_PORT_5432_TCP_ADDR=10.222.0.2
//! DB_PORT_5432_TCP_PORT=5432
//! DB_PORT_5432_TCP_PROTO=tcp
//! DB_PORT_8000_TCP_START=tcp://10.222.0.2:8000  … and for runs of consecutive ports
//! DB_PORT_8000_TCP_PORT_START=8000
//! DB_PORT_8000_TCP_END=tcp://10.222.0.2:8002
//! DB_PORT_8000_TCP_PORT_END=8002
//! DB_NAME=/web/db                               /LINKING-CONTAINER/ALIAS
//! DB_ENV_POSTGRES_DB=app                        the linked container's environment
//! ```
//!
//! The prefix is the alias upper-cased with `-` turned into `_`; the linked container's
//! `HOME` and `PATH` are left out. The linking container's own environment is applied after
//! these, so it wins. Where the alias resolves (`/etc/hosts`) is [`super::files`]' part.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use super::ports::{ContainerPort, Protocol};
use crate::engine::options::is_object_name;

/// Variables of the linked container that its links do not pass on.
const NOT_PASSED_ON: [&str; 2] = ["HOME", "PATH"];

/// Why a `--link` value was refused; each names the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("invalid --link {0:?}: expected NAME[:ALIAS]")]
    Syntax(String),
    #[error("invalid --link {text:?}: {part:?} is not a container name or alias ([a-zA-Z0-9][a-zA-Z0-9_.-]*)")]
    Name { text: String, part: String },
}

/// A `Result` whose error is [`LinkError`].
pub type Result<T> = std::result::Result<T, LinkError>;

/// One `--link`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// The linked container's name or ID.
    pub name: String,
    /// The name it has in the linking container: the name itself when none was given.
    pub alias: String,
}

/// `--link NAME[:ALIAS]`.
pub fn parse_link(text: &str) -> Result<Link> {
    let parts: Vec<&str> = text.split(':').collect();
    let (name, alias) = match parts.as_slice() {
        [name] => (*name, *name),
        [name, alias] => (*name, *alias),
        _ => return Err(LinkError::Syntax(text.to_owned())),
    };
    for part in [name, alias] {
        if !is_object_name(part) {
            return Err(LinkError::Name {
                text: text.to_owned(),
                part: part.to_owned(),
            });
        }
    }
    Ok(Link {
        name: name.to_owned(),
        alias: alias.to_owned(),
    })
}

/// What a link tells about the linked container.
#[derive(Debug, Clone, Copy)]
pub struct LinkTarget<'a> {
    /// Its address on the network the two share.
    pub ip: Ipv4Addr,
    /// Its exposed ports (the image's `EXPOSE` and its published ones).
    pub exposed: &'a [ContainerPort],
    /// Its configured environment as `KEY=VALUE` (the image's `Env` overlaid by its `-e`).
    pub env: &'a [String],
}

/// The variables `link` gives the container `linker`, in docker's order.
pub fn link_env(linker: &str, link: &Link, target: &LinkTarget<'_>) -> Vec<String> {
    let prefix = link.alias.to_uppercase().replace('-', "_");
    let ip = target.ip;
    let url = |port: &ContainerPort| format!("{}://{ip}:{}", port.protocol, port.port);
    let port_prefix = |port: &ContainerPort| {
        format!(
            "{prefix}_PORT_{}_{}",
            port.port,
            port.protocol.as_str().to_uppercase()
        )
    };

    let mut ports = target.exposed.to_vec();
    ports.sort_by_key(|p| (p.protocol != Protocol::Tcp, p.port, p.protocol));
    let mut env = Vec::new();
    if let Some(first) = ports.first() {
        env.push(format!("{prefix}_PORT={}", url(first)));
    }
    // The current run of consecutive ports of one protocol.
    let mut run: Option<(ContainerPort, ContainerPort)> = None;
    for (index, port) in ports.iter().enumerate() {
        let each = port_prefix(port);
        env.push(format!("{each}={}", url(port)));
        env.push(format!("{each}_ADDR={ip}"));
        env.push(format!("{each}_PORT={}", port.port));
        env.push(format!("{each}_PROTO={}", port.protocol));

        let (start, mut end) = run.unwrap_or((*port, *port));
        if u32::from(port.port) == u32::from(end.port) + 1 && port.protocol == start.protocol {
            end = *port;
            if index + 1 < ports.len() {
                run = Some((start, end));
                continue;
            }
        }
        if end != start {
            let range = port_prefix(&start);
            env.push(format!("{range}_START={}", url(&start)));
            env.push(format!("{range}_PORT_START={}", start.port));
            env.push(format!("{range}_END={}", url(&end)));
            env.push(format!("{range}_PORT_END={}", end.port));
        }
        run = Some((*port, *port));
    }

    env.push(format!("{prefix}_NAME=/{linker}/{}", link.alias));
    for entry in target.env {
        if let Some((key, value)) = entry.split_once('=') {
            if !NOT_PASSED_ON.contains(&key) {
                env.push(format!("{prefix}_ENV_{key}={value}"));
            }
        }
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::ports::exposed_ports;

    #[test]
    fn link_specs_follow_docker() {
        assert_eq!(
            parse_link("mongo-ins:mongo").unwrap(),
            Link {
                name: "mongo-ins".into(),
                alias: "mongo".into()
            }
        );
        assert_eq!(
            parse_link("db").unwrap(),
            Link {
                name: "db".into(),
                alias: "db".into()
            }
        );
        let errors = [
            ("a:b:c", r#"invalid --link "a:b:c": expected NAME[:ALIAS]"#),
            (
                "",
                r#"invalid --link "": "" is not a container name or alias ([a-zA-Z0-9][a-zA-Z0-9_.-]*)"#,
            ),
            (
                "db:",
                r#"invalid --link "db:": "" is not a container name or alias ([a-zA-Z0-9][a-zA-Z0-9_.-]*)"#,
            ),
            (
                "db:my alias",
                r#"invalid --link "db:my alias": "my alias" is not a container name or alias ([a-zA-Z0-9][a-zA-Z0-9_.-]*)"#,
            ),
        ];
        for (text, message) in errors {
            assert_eq!(parse_link(text).unwrap_err().to_string(), message);
        }
    }

    #[test]
    fn the_fleet_tutorial_link_gives_dockers_variables() {
        let exposed = exposed_ports(["27017/tcp"]).unwrap();
        let env = [
            "PATH=/usr/local/bin:/usr/bin".to_owned(),
            "HOME=/root".to_owned(),
            "MONGO_VERSION=3.0.4".to_owned(),
            "GOSU_VERSION=1.7".to_owned(),
        ];
        let target = LinkTarget {
            ip: "10.222.0.2".parse().unwrap(),
            exposed: &exposed,
            env: &env,
        };
        let link = parse_link("mongo-ins:mongo").unwrap();
        assert_eq!(
            link_env("app", &link, &target),
            [
                "MONGO_PORT=tcp://10.222.0.2:27017",
                "MONGO_PORT_27017_TCP=tcp://10.222.0.2:27017",
                "MONGO_PORT_27017_TCP_ADDR=10.222.0.2",
                "MONGO_PORT_27017_TCP_PORT=27017",
                "MONGO_PORT_27017_TCP_PROTO=tcp",
                "MONGO_NAME=/app/mongo",
                "MONGO_ENV_MONGO_VERSION=3.0.4",
                "MONGO_ENV_GOSU_VERSION=1.7",
            ]
        );
    }

    #[test]
    fn tcp_ports_come_first_and_consecutive_ports_make_ranges() {
        let exposed =
            exposed_ports(["53/udp", "8001/tcp", "8000/tcp", "8002/tcp", "9000/tcp"]).unwrap();
        let target = LinkTarget {
            ip: "10.223.0.9".parse().unwrap(),
            exposed: &exposed,
            env: &["lower=x".to_owned(), "NOEQUALS".to_owned()],
        };
        let link = parse_link("web-cache:my-cache").unwrap();
        let env = link_env("front", &link, &target);
        let names: Vec<&str> = env.iter().map(|e| e.split('=').next().unwrap()).collect();
        let per_port = |p: &str| {
            [
                format!("MY_CACHE_PORT_{p}"),
                format!("MY_CACHE_PORT_{p}_ADDR"),
                format!("MY_CACHE_PORT_{p}_PORT"),
                format!("MY_CACHE_PORT_{p}_PROTO"),
            ]
        };
        let mut expected = vec!["MY_CACHE_PORT".to_owned()];
        expected.extend(per_port("8000_TCP"));
        expected.extend(per_port("8001_TCP"));
        expected.extend(per_port("8002_TCP"));
        expected.extend(per_port("9000_TCP"));
        expected.extend([
            "MY_CACHE_PORT_8000_TCP_START".to_owned(),
            "MY_CACHE_PORT_8000_TCP_PORT_START".to_owned(),
            "MY_CACHE_PORT_8000_TCP_END".to_owned(),
            "MY_CACHE_PORT_8000_TCP_PORT_END".to_owned(),
        ]);
        expected.extend(per_port("53_UDP"));
        expected.extend(["MY_CACHE_NAME".to_owned(), "MY_CACHE_ENV_lower".to_owned()]);
        assert_eq!(names, expected);
        let value = |name: &str| {
            env.iter()
                .find_map(|e| e.strip_prefix(&format!("{name}=")))
                .unwrap()
                .to_owned()
        };
        assert_eq!(value("MY_CACHE_PORT"), "tcp://10.223.0.9:8000");
        assert_eq!(value("MY_CACHE_PORT_8000_TCP_END"), "tcp://10.223.0.9:8002");
        assert_eq!(value("MY_CACHE_PORT_8000_TCP_PORT_END"), "8002");
        assert_eq!(value("MY_CACHE_PORT_53_UDP"), "udp://10.223.0.9:53");
        assert_eq!(value("MY_CACHE_PORT_53_UDP_PROTO"), "udp");
        assert_eq!(value("MY_CACHE_NAME"), "/front/my-cache");
        assert_eq!(value("MY_CACHE_ENV_lower"), "x");
    }

    #[test]
    fn a_container_without_ports_still_gets_its_name() {
        let target = LinkTarget {
            ip: "10.222.0.2".parse().unwrap(),
            exposed: &[],
            env: &[],
        };
        let link = parse_link("db").unwrap();
        assert_eq!(link_env("web", &link, &target), ["DB_NAME=/web/db"]);
    }
}
