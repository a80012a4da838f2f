//! What a checked first-boot file does to the machine, as data: the files to write (with their
//! contents), the host name, the commands to run and the units to enable and start. Pure;
//! [`super::apply`] carries it out.

use std::path::PathBuf;

use super::config::{Etcd, FirstBoot, Interface, Member};

/// Where the agent's configuration lives.
pub const FLOTILLA_TOML: &str = "/etc/flotilla/flotilla.toml";

/// One file to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    /// Its absolute path on the machine.
    pub path: PathBuf,
    /// Its contents.
    pub contents: String,
    /// Its permission bits.
    pub mode: u32,
}

/// Everything first boot does, in order: set the host name, write the files, run the commands,
/// then enable and start the units.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// The host name to set now (it is also in `/etc/hostname`).
    pub hostname: Option<String>,
    /// Files to write.
    pub files: Vec<File>,
    /// Commands to run, each as program and arguments.
    pub commands: Vec<Vec<String>>,
    /// Units to enable and start.
    pub start: Vec<String>,
}

impl Plan {
    fn file(&mut self, path: &str, contents: String, mode: u32) {
        self.files.push(File {
            path: PathBuf::from(path),
            contents,
            mode,
        });
    }
}

/// The plan for `config` on a machine whose `flotilla.toml` holds `current` (its keys stay
/// unless the first-boot file sets them).
pub fn plan(config: &FirstBoot, current: &toml::Table) -> Plan {
    let mut plan = Plan::default();
    if let Some(name) = &config.hostname {
        plan.hostname = Some(name.clone());
        plan.file("/etc/hostname", format!("{name}\n"), 0o644);
    }
    plan.file(FLOTILLA_TOML, flotilla_toml(config, current), 0o644);
    match &config.etcd {
        Some(Etcd::Member(member)) => {
            plan.file("/etc/default/etcd", etcd_environment(member), 0o644);
            plan.start.push("etcd.service".to_owned());
        }
        Some(Etcd::Client { .. }) | None => {}
    }
    for (i, interface) in config.interfaces.iter().enumerate() {
        let path = format!("/etc/systemd/network/10-flotilla-{i}.network");
        plan.file(&path, network_file(interface), 0o644);
    }
    if !config.ssh_authorized_keys.is_empty() {
        let mut keys = config.ssh_authorized_keys.join("\n");
        keys.push('\n');
        plan.file("/root/.ssh/authorized_keys", keys, 0o600);
        plan.commands
            .push(vec!["ssh-keygen".to_owned(), "-A".to_owned()]);
        plan.start.push("ssh.service".to_owned());
    }
    for unit in &config.units {
        let path = format!("/etc/systemd/system/{}", unit.name);
        plan.file(&path, unit.contents.clone(), 0o644);
        if unit.start {
            plan.start.push(unit.name.clone());
        }
    }
    plan
}

/// `flotilla.toml`: `current`, then the first-boot file's `[flotilla]` keys, its metadata and
/// the etcd endpoints its `[etcd]` implies.
pub fn flotilla_toml(config: &FirstBoot, current: &toml::Table) -> String {
    let mut table = current.clone();
    table.extend(config.flotilla.clone());
    let strings = |items: &[String]| {
        toml::Value::Array(items.iter().cloned().map(toml::Value::String).collect())
    };
    match &config.etcd {
        Some(Etcd::Member(member)) => {
            table.insert("etcd_endpoints".into(), strings(&member.client_urls));
        }
        Some(Etcd::Client { endpoints }) => {
            table.insert("etcd_endpoints".into(), strings(endpoints));
        }
        None => {}
    }
    if !config.metadata.is_empty() {
        let metadata = config
            .metadata
            .iter()
            .map(|(key, value)| (key.clone(), toml::Value::String(value.clone())))
            .collect();
        table.insert("metadata".into(), toml::Value::Table(metadata));
    }
    format!(
        "# Written by flotilla-firstboot from this machine's first-boot configuration.\n{}",
        toml::to_string(&table).expect("a TOML table serializes")
    )
}

/// Debian's `/etc/default/etcd` for a member of a new cluster.
pub fn etcd_environment(member: &Member) -> String {
    let lines = [
        ("ETCD_NAME", member.name.clone()),
        ("ETCD_DATA_DIR", "/var/lib/etcd/default".to_owned()),
        ("ETCD_LISTEN_PEER_URLS", member.peer_urls.join(",")),
        (
            "ETCD_INITIAL_ADVERTISE_PEER_URLS",
            member.peer_urls.join(","),
        ),
        (
            "ETCD_LISTEN_CLIENT_URLS",
            listen_client_urls(&member.client_urls),
        ),
        ("ETCD_ADVERTISE_CLIENT_URLS", member.client_urls.join(",")),
        ("ETCD_INITIAL_CLUSTER", member.initial_cluster.join(",")),
        ("ETCD_INITIAL_CLUSTER_STATE", "new".to_owned()),
        (
            "ETCD_INITIAL_CLUSTER_TOKEN",
            member.initial_cluster_token.clone(),
        ),
    ];
    let mut text =
        String::from("# Written by flotilla-firstboot: this machine is an etcd member.\n");
    for (name, value) in lines {
        text.push_str(&format!("{name}=\"{value}\"\n"));
    }
    text
}

/// The client URLs plus loopback, so that the machine's own agent and `etcdctl` always reach it.
fn listen_client_urls(client_urls: &[String]) -> String {
    let mut urls = client_urls.to_vec();
    let loopback = "http://127.0.0.1:2379".to_owned();
    if !urls.contains(&loopback) {
        urls.push(loopback);
    }
    urls.join(",")
}

/// A systemd-networkd `.network` file for `interface`.
pub fn network_file(interface: &Interface) -> String {
    let mut text = format!(
        "# Written by flotilla-firstboot.\n[Match]\nName={}\n\n[Network]\n",
        interface.name
    );
    if interface.dhcp {
        text.push_str("DHCP=yes\n");
    }
    for address in &interface.addresses {
        text.push_str(&format!("Address={address}\n"));
    }
    if let Some(gateway) = interface.gateway {
        text.push_str(&format!("Gateway={gateway}\n"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firstboot::config::parse;

    const MEMBER: &str = r#"
hostname = "core-01"
ssh_authorized_keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK0w vagrant"]
[metadata]
role = "etcd"
[etcd]
role = "member"
name = "core-01"
peer_urls = ["http://10.240.8.101:2380"]
client_urls = ["http://10.240.8.101:2379"]
initial_cluster = ["core-01=http://10.240.8.101:2380"]
[flotilla]
agent_ttl = "10s"
[[interfaces]]
name = "eth1"
addresses = ["10.240.8.101/24"]
gateway = "10.240.8.1"
[[units]]
name = "hello.service"
contents = "[Service]\nExecStart=/bin/echo hello\n"
[[units]]
name = "later.service"
contents = "[Service]\nExecStart=/bin/true\n"
start = false
"#;

    fn file<'a>(plan: &'a Plan, path: &str) -> &'a File {
        plan.files
            .iter()
            .find(|file| file.path == std::path::Path::new(path))
            .unwrap_or_else(|| panic!("no {path} in {plan:#?}"))
    }

    #[test]
    fn a_member_gets_etcd_ssh_network_units_and_its_agent_configuration() {
        let config = parse("x", MEMBER).unwrap();
        let current: toml::Table =
            toml::from_str("agent_ttl = \"30s\"\ndisable_engine = true\n").unwrap();
        let plan = plan(&config, &current);
        assert_eq!(plan.hostname.as_deref(), Some("core-01"));
        assert_eq!(file(&plan, "/etc/hostname").contents, "core-01\n");
        let agent: toml::Table = toml::from_str(&file(&plan, FLOTILLA_TOML).contents).unwrap();
        assert_eq!(
            agent["agent_ttl"].as_str(),
            Some("10s"),
            "the first-boot file wins"
        );
        assert_eq!(
            agent["disable_engine"].as_bool(),
            Some(true),
            "the current keys stay"
        );
        assert_eq!(
            agent["etcd_endpoints"][0].as_str(),
            Some("http://10.240.8.101:2379")
        );
        assert_eq!(agent["metadata"]["role"].as_str(), Some("etcd"));
        let etcd = &file(&plan, "/etc/default/etcd").contents;
        assert!(etcd.contains("ETCD_NAME=\"core-01\"\n"), "{etcd}");
        assert!(
            etcd.contains(
                "ETCD_LISTEN_CLIENT_URLS=\"http://10.240.8.101:2379,http://127.0.0.1:2379\"\n"
            ),
            "{etcd}"
        );
        assert!(
            etcd.contains("ETCD_INITIAL_CLUSTER=\"core-01=http://10.240.8.101:2380\"\n"),
            "{etcd}"
        );
        assert!(
            etcd.contains("ETCD_INITIAL_CLUSTER_STATE=\"new\"\n"),
            "{etcd}"
        );
        let network = &file(&plan, "/etc/systemd/network/10-flotilla-0.network").contents;
        assert!(
            network.contains("Name=eth1\n")
                && network.contains("Address=10.240.8.101/24\nGateway=10.240.8.1\n"),
            "{network}"
        );
        let keys = file(&plan, "/root/.ssh/authorized_keys");
        assert_eq!(keys.mode, 0o600);
        assert!(keys.contents.ends_with("vagrant\n"));
        assert_eq!(
            file(&plan, "/etc/systemd/system/later.service").contents,
            "[Service]\nExecStart=/bin/true\n"
        );
        assert_eq!(plan.commands, [["ssh-keygen", "-A"]]);
        assert_eq!(plan.start, ["etcd.service", "ssh.service", "hello.service"]);
    }

    #[test]
    fn a_client_uses_its_endpoints_and_runs_nothing_more() {
        let config = parse(
            "x",
            "[etcd]\nrole = \"client\"\nendpoints = [\"http://10.0.0.1:2379\"]\n[[interfaces]]\nname = \"en*\"\ndhcp = true\n",
        )
        .unwrap();
        let plan = plan(&config, &toml::Table::new());
        let agent: toml::Table = toml::from_str(&file(&plan, FLOTILLA_TOML).contents).unwrap();
        assert_eq!(
            agent["etcd_endpoints"][0].as_str(),
            Some("http://10.0.0.1:2379")
        );
        assert!(plan
            .files
            .iter()
            .all(|file| file.path != std::path::Path::new("/etc/default/etcd")));
        assert_eq!(
            network_file(&config.interfaces[0]),
            "# Written by flotilla-firstboot.\n[Match]\nName=en*\n\n[Network]\nDHCP=yes\n"
        );
        assert!(plan.start.is_empty() && plan.commands.is_empty() && plan.hostname.is_none());
    }
}
