//! Tests of the first-boot parser: every key read, every error naming its key.

use super::*;

const MEMBER: &str = r#"
hostname = "core-01"
ssh_authorized_keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK0w vagrant"]
[metadata]
role = "etcd"
disk = "ssd"
[etcd]
role = "member"
name = "core-01"
peer_urls = ["http://10.240.8.101:2380"]
client_urls = ["http://10.240.8.101:2379"]
initial_cluster = ["core-01=http://10.240.8.101:2380", "core-02=http://10.240.8.102:2380"]
[flotilla]
public_ip = "10.240.8.101"
agent_ttl = "10s"
[[interfaces]]
name = "eth1"
addresses = ["10.240.8.101/24"]
gateway = "10.240.8.1"
[[interfaces]]
name = "eth0"
dhcp = true
[[units]]
name = "hello.service"
contents = "[Service]\nExecStart=/bin/echo hello\n"
[[units]]
name = "quiet.service"
contents = "[Service]\nExecStart=/bin/true\n"
start = false
"#;

fn error(text: &str) -> String {
    parse("firstboot.toml", text).unwrap_err().to_string()
}

#[test]
fn every_key_of_a_member_is_read() {
    let config = parse("firstboot.toml", MEMBER).unwrap();
    assert_eq!(config.hostname.as_deref(), Some("core-01"));
    assert_eq!(config.ssh_authorized_keys.len(), 1);
    assert_eq!(config.metadata["disk"], "ssd");
    assert_eq!(config.metadata["role"], "etcd");
    let Some(Etcd::Member(member)) = &config.etcd else {
        panic!("not a member: {:?}", config.etcd)
    };
    assert_eq!(member.name, "core-01");
    assert_eq!(member.peer_urls, ["http://10.240.8.101:2380"]);
    assert_eq!(member.client_urls, ["http://10.240.8.101:2379"]);
    assert_eq!(member.initial_cluster.len(), 2);
    assert_eq!(member.initial_cluster_token, DEFAULT_CLUSTER_TOKEN);
    assert_eq!(config.flotilla["public_ip"].as_str(), Some("10.240.8.101"));
    assert_eq!(config.interfaces[0].addresses, ["10.240.8.101/24"]);
    assert_eq!(
        config.interfaces[0].gateway,
        Some("10.240.8.1".parse().unwrap())
    );
    assert!(!config.interfaces[0].dhcp);
    assert!(config.interfaces[1].dhcp);
    assert_eq!(config.units[0].name, "hello.service");
    assert!(config.units[0].start);
    assert!(!config.units[1].start);
}

#[test]
fn a_client_and_an_empty_file() {
    let config = parse(
        "x",
        "[etcd]\nrole = \"client\"\nendpoints = [\"http://10.0.0.1:2379\"]\n",
    )
    .unwrap();
    assert_eq!(
        config.etcd,
        Some(Etcd::Client {
            endpoints: vec!["http://10.0.0.1:2379".into()]
        })
    );
    let empty = parse("x", "").unwrap();
    assert_eq!(empty.hostname, None);
    assert!(empty.etcd.is_none() && empty.units.is_empty() && empty.flotilla.is_empty());
    let token = "[etcd]\nrole = \"member\"\nname = \"a\"\npeer_urls = [\"http://h:2380\"]\n\
        client_urls = [\"http://h:2379\"]\ninitial_cluster = [\"a=http://h:2380\"]\n\
        initial_cluster_token = \"t1\"\n";
    let Some(Etcd::Member(member)) = parse("x", token).unwrap().etcd else {
        panic!("not a member")
    };
    assert_eq!(member.initial_cluster_token, "t1");
}

#[test]
fn the_role_error_names_the_key_and_the_choices() {
    assert_eq!(
        error("[etcd]\nrole = \"memer\"\n"),
        "firstboot.toml: etcd.role: unknown role \"memer\" (member|client)"
    );
    assert_eq!(
        error("[etcd]\nname = \"a\"\n"),
        "firstboot.toml: etcd.role: missing (member|client)"
    );
}

#[test]
fn every_error_names_its_key() {
    let member = |extra: &str| {
        format!(
            "[etcd]\nrole = \"member\"\nname = \"a\"\npeer_urls = [\"http://h:2380\"]\n\
             client_urls = [\"http://h:2379\"]\ninitial_cluster = [\"a=http://h:2380\"]\n{extra}"
        )
    };
    let cases: &[(&str, &str)] = &[
        ("hostnme = \"a\"\n", "hostnme: unknown key"),
        ("hostname = \"a_b\"\n", "hostname: invalid hostname \"a_b\""),
        ("hostname = 3\n", "hostname: expected a string, got integer"),
        ("ssh_authorized_keys = [\"ssh-dss AAAA\"]\n", "ssh_authorized_keys[0]: not an OpenSSH public key"),
        ("ssh_authorized_keys = \"ssh-ed25519 AAAA\"\n", "ssh_authorized_keys: expected an array of strings, got string"),
        ("[metadata]\ndisk = 1\n", "metadata.disk: expected a string, got integer"),
        ("[metadata]\ndisk = \"a,b\"\n", "metadata.disk: \"a,b\" contains"),
        ("etcd = 1\n", "etcd: expected a table, got integer"),
        ("[etcd]\nrole = \"client\"\n", "etcd.endpoints: missing (required by role \"client\")"),
        ("[etcd]\nrole = \"client\"\nendpoints = [\"10.0.0.1:2379\"]\n", "etcd.endpoints[0]: invalid URL"),
        ("[etcd]\nrole = \"client\"\nname = \"a\"\nendpoints = [\"http://h:1\"]\n", "etcd.name: not a key of role \"client\""),
        ("[etcd]\nrole = \"member\"\nendpoints = [\"http://h:1\"]\n", "etcd.endpoints: not a key of role \"member\""),
        ("[etcd]\nrole = \"member\"\n", "etcd.name: missing (required by role \"member\")"),
        ("[etcd]\nrole = \"member\"\nname = \"a b\"\n", "etcd.name: invalid member name \"a b\""),
        ("[etcd]\nrole = \"member\"\nname = \"a\"\n", "etcd.peer_urls: missing (required by role \"member\")"),
        ("[etcd]\nrole = \"member\"\nname = \"a\"\npeer_urls = [\"http://h\"]\n", "etcd.peer_urls[0]: invalid URL \"http://h\""),
        ("[etcd]\nrole = \"member\"\nname = \"a\"\npeer_urls = [\"http://h:2380\"]\n", "etcd.client_urls: missing"),
        (
            "[etcd]\nrole = \"member\"\nname = \"a\"\npeer_urls = [\"http://h:2380\"]\nclient_urls = [\"http://h:2379\"]\n",
            "etcd.initial_cluster: missing (required by role \"member\")",
        ),
        (
            "[etcd]\nrole = \"member\"\nname = \"a\"\npeer_urls = [\"http://h:2380\"]\nclient_urls = [\"http://h:2379\"]\ninitial_cluster = [\"a\"]\n",
            "etcd.initial_cluster[0]: expected NAME=PEER_URL, got \"a\"",
        ),
        (
            "[etcd]\nrole = \"member\"\nname = \"a\"\npeer_urls = [\"http://h:2380\"]\nclient_urls = [\"http://h:2379\"]\ninitial_cluster = [\"b=http://g:2380\"]\n",
            "etcd.initial_cluster: has no entry a=URL",
        ),
        (&member("initial_cluster_token = 1\n"), "etcd.initial_cluster_token: expected a string, got integer"),
        (&member("extra = 1\n"), "etcd.extra: unknown key"),
        ("[flotilla]\nagent_tl = \"3s\"\n", "flotilla: unknown field `agent_tl`"),
        ("[flotilla]\nagent_ttl = \"soon\"\n", "flotilla: invalid duration \"soon\""),
        ("[metadata]\na = \"b\"\n[flotilla.metadata]\nc = \"d\"\n", "flotilla.metadata: also given as [metadata]"),
        (&member("[flotilla]\netcd_endpoints = [\"http://h:2379\"]\n"), "flotilla.etcd_endpoints: set by [etcd]"),
        ("[[interfaces]]\naddresses = [\"10.0.0.1/24\"]\n", "interfaces[0].name: missing"),
        ("[[interfaces]]\nname = \"eth 1\"\ndhcp = true\n", "interfaces[0].name: invalid interface name"),
        ("[[interfaces]]\nname = \"eth1\"\n", "interfaces[0].addresses: missing (give addresses, or dhcp = true)"),
        ("[[interfaces]]\nname = \"eth1\"\naddresses = [\"10.0.0.1\"]\n", "interfaces[0].addresses[0]: invalid address \"10.0.0.1\""),
        ("[[interfaces]]\nname = \"eth1\"\ndhcp = \"yes\"\n", "interfaces[0].dhcp: expected true or false, got string"),
        ("[[interfaces]]\nname = \"eth1\"\ndhcp = true\ngateway = \"x\"\n", "interfaces[0].gateway: invalid address \"x\""),
        ("[[interfaces]]\nname = \"eth1\"\ndhcp = true\nmtu = 1\n", "interfaces[0].mtu: unknown key"),
        ("interfaces = 1\n", "interfaces: expected an array of tables, got integer"),
        ("[[units]]\ncontents = \"\"\n", "units[0].name: missing"),
        ("[[units]]\nname = \"hello\"\ncontents = \"\"\n", "units[0].name: unit name must contain \".\""),
        ("[[units]]\nname = \"a.service\"\n", "units[0].contents: missing"),
        ("[[units]]\nname = \"a.service\"\ncontents = \"[Service\\n\"\n", "units[0].contents: a.service:1:"),
        ("[[units]]\nname = \"a.service\"\ncontents = \"\"\nstart = 1\n", "units[0].start: expected true or false, got integer"),
        ("[[units]]\nname = \"a.service\"\ncontents = \"\"\nstop = true\n", "units[0].stop: unknown key"),
        (
            "[[units]]\nname = \"a.service\"\ncontents = \"\"\n[[units]]\nname = \"a.service\"\ncontents = \"\"\n",
            "units[1].name: \"a.service\" is given twice",
        ),
    ];
    for (text, expected) in cases {
        let message = error(text);
        assert!(
            message.starts_with(&format!("firstboot.toml: {expected}")),
            "for {text:?}\n got: {message}\nwant: firstboot.toml: {expected}…"
        );
    }
}

#[test]
fn toml_syntax_errors_say_where() {
    let message = error("hostname = \n");
    assert!(
        message.starts_with("firstboot.toml: TOML parse error at line 1"),
        "{message}"
    );
}
