//! A local test cluster: N [`Node`]s on a bridge of ours with a real etcd on the host, the way
//! fleet's functional tests use a `platform.Cluster` (DESIGN §5).
//!
//! [`Cluster::boot`] reserves a /24 of `10.213.0.0/16` ([`network::Subnet`]), creates its bridge
//! with the host at `.1`, starts etcd on the host listening on the bridge address and on
//! 127.0.0.1 ([`etcd`]), and boots the nodes in parallel: node n is hostname `node<n>` at
//! `.(10+n)` on its `eth0`, with a random machine-id and no default route. Nodes are numbered from
//! 1, like their hostnames, everywhere in this API.
//!
//! Dropping a cluster tears everything down, also after a failed assertion: nodes (in parallel),
//! etcd, the bridge, the state directory `/tmp/flotilla-tests/cluster-<pid>-<n>` and the subnet
//! lock. Dropped during a panic, it first prints every node's journal and the tail of etcd's logs.
//! What a killed test process leaves behind is removed by `flotilla-cluster clean`.
//!
//! ```no_run
//! use flotilla_tests::cluster::{Cluster, ClusterConfig};
//!
//! let cluster = Cluster::boot(ClusterConfig::new(3)).unwrap();
//! let endpoints = cluster.etcd_endpoints().join(",");
//! cluster.node(1)
//!     .exec_ok(&["etcdctl", "--endpoints", &endpoints, "put", "k", "v"])
//!     .unwrap();
//! ```

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::{geteuid, Pid};

use crate::error::HarnessError;
use crate::etcd::{Etcd, EtcdConfig, EtcdError};
use crate::locate_binary;
use crate::network::{self, Bridge, NetworkError, Subnet, MAX_NODES, PREFIX_LEN};
use crate::node::{alive, link_exists, Node, NodeConfig, NodeFootprint, NodeNetwork, STATE_ROOT};
use crate::pki::{Authority, Identity};
use crate::registry::FixtureError;

/// Where [`Cluster::install_agent`] writes the agent's configuration inside a node.
pub const AGENT_CONFIG_PATH: &str = "/etc/flotilla/flotilla.toml";
/// Where a node's API certificates go.
const TLS_DIR: &str = "/etc/flotilla/tls";
/// The agents' TCP API port in the test cluster.
pub const AGENT_API_PORT: u16 = 8479;
/// Most etcd members a cluster runs.
const MAX_ETCD_MEMBERS: usize = 3;
/// Subnet X's etcd uses the ports `ETCD_PORT_BASE + ETCD_PORTS_PER_SUBNET * X` and up (below the
/// ephemeral range); a subnet whose ports are taken on 127.0.0.1 is not reserved.
const ETCD_PORT_BASE: u16 = 20000;
const ETCD_PORTS_PER_SUBNET: u16 = 8;
/// Lines of the agent's journal quoted when it does not start.
const JOURNAL_TAIL_LINES: &str = "30";
/// The host's name in the nodes' `/etc/hosts`.
const HOST_NAME: &str = "flotilla-host";

/// Numbers the clusters of this test process.
static NEXT_CLUSTER: AtomicUsize = AtomicUsize::new(0);

/// Why a cluster could not be booted or driven.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A [`ClusterConfig`] field out of range.
    #[error("cluster config: {field} = {value} is out of range {range}")]
    Config {
        /// The field.
        field: &'static str,
        /// Its value.
        value: usize,
        /// What it may be.
        range: String,
    },
    /// A node number out of range.
    #[error("no node{n}: the cluster has node1..=node{nodes}")]
    NoNode {
        /// The number asked for.
        n: usize,
        /// How many nodes there are.
        nodes: usize,
    },
    /// The cluster's state directory could not be created.
    #[error("cannot {what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The agent's unit did not start.
    #[error("flotilla.service did not start on {node}: {source}\njournal of flotilla.service:\n{journal}")]
    AgentFailed {
        /// The node's hostname.
        node: String,
        /// The failed `systemctl enable --now`.
        source: Box<HarnessError>,
        /// The tail of the unit's journal.
        journal: String,
    },
    /// The agents did not all join the cluster in time.
    #[error("expected {expected} machines in `flotctl list-machines`, it listed:\n{listed}")]
    AgentsNotListed {
        /// How many nodes run an agent.
        expected: usize,
        /// The last listing.
        listed: String,
    },
    /// Certificates for the agents' API could not be made.
    #[error(transparent)]
    Pki(#[from] FixtureError),
    /// Booting, driving or reaching into a node failed.
    #[error(transparent)]
    Node(#[from] HarnessError),
    /// The bridge or subnet could not be set up.
    #[error(transparent)]
    Network(#[from] NetworkError),
    /// etcd could not be started or controlled.
    #[error(transparent)]
    Etcd(#[from] EtcdError),
}

/// Result of this module.
pub type Result<T> = std::result::Result<T, ClusterError>;

/// How to boot a [`Cluster`].
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// Number of nodes, 1 to 244.
    pub nodes: usize,
    /// Number of etcd members, 1 to 3 (3 for tests where a member fails).
    pub etcd_members: usize,
    /// The agents' machine TTL, for the tests' agent configurations ([`Cluster::agent_ttl`]).
    pub agent_ttl: Duration,
    /// Configured metadata of node n at index n-1 ([`Cluster::metadata`]); missing entries are
    /// empty.
    pub metadata: Vec<BTreeMap<String, String>>,
    /// How long each node may take to boot.
    pub boot_timeout: Duration,
}

impl ClusterConfig {
    /// `nodes` nodes without metadata, one etcd member, fleet's default agent TTL of 30 s.
    ///
    /// ```no_run
    /// let mut config = flotilla_tests::cluster::ClusterConfig::new(3);
    /// config.etcd_members = 3;
    /// config.agent_ttl = std::time::Duration::from_secs(5);
    /// ```
    pub fn new(nodes: usize) -> Self {
        Self {
            nodes,
            etcd_members: 1,
            agent_ttl: Duration::from_secs(30),
            metadata: Vec::new(),
            boot_timeout: Duration::from_secs(60),
        }
    }

    fn validate(&self) -> Result<()> {
        let check = |field, value, max| {
            if (1..=max).contains(&value) {
                Ok(())
            } else {
                Err(ClusterError::Config {
                    field,
                    value,
                    range: format!("1..={max}"),
                })
            }
        };
        check("nodes", self.nodes, MAX_NODES)?;
        check("etcd_members", self.etcd_members, MAX_ETCD_MEMBERS)
    }
}

/// The flotilla binaries [`Cluster::install_agent_from`] copies into a node's `/usr/bin`.
#[derive(Debug, Clone)]
pub struct AgentBinaries {
    /// Installed as `/usr/bin/flotillad`.
    pub flotillad: PathBuf,
    /// Installed as `/usr/bin/flotctl`.
    pub flotctl: PathBuf,
    /// Installed as `/usr/bin/flotilla`.
    pub flotilla: PathBuf,
}

impl AgentBinaries {
    /// The binaries cargo built next to the running test ([`locate_binary`]).
    ///
    /// # Errors
    /// [`HarnessError::BinaryNotFound`] for the first one missing.
    pub fn built() -> Result<Self> {
        Ok(Self {
            flotillad: locate_binary("flotillad")?,
            flotctl: locate_binary("flotctl")?,
            flotilla: locate_binary("flotilla")?,
        })
    }
}

/// A booted cluster; see the [module docs](self).
#[derive(Debug)]
pub struct Cluster {
    config: ClusterConfig,
    state_dir: PathBuf,
    /// Node n at index n-1.
    nodes: Vec<Node>,
    etcd: Option<Etcd>,
    bridge: Option<Bridge>,
    /// Last: released after everything using the subnet is gone.
    subnet: Subnet,
}

/// Everything a cluster creates on the host, to check after teardown that nothing is left.
#[derive(Debug, Clone)]
pub struct ClusterFootprint {
    /// The nodes'.
    pub nodes: Vec<NodeFootprint>,
    /// The bridge.
    pub bridge: String,
    /// The cluster's state directory (etcd's data and logs).
    pub state_dir: PathBuf,
    /// Host pids of the etcd members.
    pub etcd_pids: Vec<u32>,
    /// The subnet lock file.
    pub lock_file: PathBuf,
}

impl Cluster {
    /// Boots a cluster: subnet, bridge, etcd and nodes (in parallel); see the
    /// [module docs](self).
    ///
    /// # Errors
    /// [`ClusterError::Config`] for a config out of range, [`HarnessError::NotRoot`] when not
    /// root, [`NetworkError::ForwardDrop`] when the host firewall would drop the traffic between
    /// nodes, or what failed while booting; whatever was set up is torn down.
    pub fn boot(config: ClusterConfig) -> Result<Cluster> {
        config.validate()?;
        let euid = geteuid();
        if !euid.is_root() {
            return Err(HarnessError::NotRoot {
                euid: euid.as_raw(),
            }
            .into());
        }
        network::check_forwarding()?;
        let subnet = Subnet::reserve(|index| {
            let base = etcd_base_port(index);
            (base..base + ETCD_PORTS_PER_SUBNET).all(loopback_port_free)
        })?;
        let id = format!(
            "cluster-{}-{}",
            std::process::id(),
            NEXT_CLUSTER.fetch_add(1, Ordering::Relaxed)
        );
        let state_dir = Path::new(STATE_ROOT).join(&id);
        // From here on, dropping `cluster` (also on `?`) removes whatever was created.
        let mut cluster = Cluster {
            config,
            state_dir,
            nodes: Vec::new(),
            etcd: None,
            bridge: None,
            subnet,
        };
        fs::create_dir_all(&cluster.state_dir).map_err(|source| ClusterError::Io {
            what: "create",
            path: cluster.state_dir.clone(),
            source,
        })?;
        cluster.bridge = Some(Bridge::create(&cluster.subnet)?);
        let etcd_config = EtcdConfig {
            members: cluster.config.etcd_members,
            address: cluster.subnet.host_address(),
            base_port: etcd_base_port(cluster.subnet.index()),
            dir: cluster.state_dir.clone(),
            token: id,
        };
        let node_configs: Vec<NodeConfig> = (1..=cluster.config.nodes)
            .map(|n| cluster.node_config(n))
            .collect();
        let (etcd, nodes) = thread::scope(|s| {
            let etcd = s.spawn(|| Etcd::start(etcd_config));
            let nodes: Vec<_> = node_configs
                .into_iter()
                .map(|c| s.spawn(|| Node::boot(c)))
                .collect();
            let nodes: Vec<_> = nodes.into_iter().map(join).collect();
            (join(etcd), nodes)
        });
        // Keep every node that booted, so that an error below tears them all down.
        let mut first_error = None;
        for node in nodes {
            match node {
                Ok(node) => cluster.nodes.push(node),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match etcd {
            Ok(etcd) => cluster.etcd = Some(etcd),
            Err(e) => return Err(e.into()),
        }
        match first_error {
            Some(e) => Err(e.into()),
            None => Ok(cluster),
        }
    }

    /// Node n (hostname `node<n>`), numbered from 1.
    ///
    /// # Panics
    /// If there is no node n: tests never guess.
    #[track_caller]
    pub fn node(&self, n: usize) -> &Node {
        match self.try_node(n) {
            Ok(node) => node,
            Err(e) => panic!("{e}"),
        }
    }

    /// All nodes; node n at index n-1.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// etcd's client URLs as seen from the nodes (`http://<bridge address>:<port>`).
    pub fn etcd_endpoints(&self) -> Vec<String> {
        self.etcd.as_ref().map(Etcd::endpoints).unwrap_or_default()
    }

    /// etcd's client URLs on the host's loopback (`http://127.0.0.1:<port>`): for the host only,
    /// a node's 127.0.0.1 is its own.
    pub fn etcd_loopback_endpoints(&self) -> Vec<String> {
        self.etcd
            .as_ref()
            .map(Etcd::loopback_endpoints)
            .unwrap_or_default()
    }

    /// The cluster's subnet, `10.213.X.0/24`.
    pub fn subnet(&self) -> String {
        self.subnet.cidr()
    }

    /// The host's address on the bridge (where etcd listens).
    pub fn host_address(&self) -> Ipv4Addr {
        self.subnet.host_address()
    }

    /// The bridge's name.
    pub fn bridge(&self) -> &str {
        self.bridge.as_ref().map(Bridge::name).unwrap_or_default()
    }

    /// The agents' machine TTL from the [`ClusterConfig`].
    pub fn agent_ttl(&self) -> Duration {
        self.config.agent_ttl
    }

    /// Node n's configured metadata from the [`ClusterConfig`] (empty if none was given).
    pub fn metadata(&self, n: usize) -> BTreeMap<String, String> {
        self.config
            .metadata
            .get(n.wrapping_sub(1))
            .cloned()
            .unwrap_or_default()
    }

    /// The cluster's state directory on the host (etcd's data dirs and `etcd<m>.log`).
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The configuration the tests run node n's agent with: this cluster's etcd, the node's
    /// address, the cluster's agent TTL and node n's metadata, and the TCP API with mutual TLS on
    /// port [`AGENT_API_PORT`] with the certificates [`Cluster::start_agents`] installs.
    pub fn agent_config(&self, n: usize) -> String {
        let node = self.node(n);
        let address = node.address().expect("cluster nodes have an address");
        let mut toml = format!(
            "etcd_endpoints = {:?}\npublic_ip = \"{address}\"\nagent_ttl = \"{}ms\"\n\
             api_listen = \"{address}:{AGENT_API_PORT}\"\n\
             api_cafile = \"{TLS_DIR}/ca.pem\"\napi_certfile = \"{TLS_DIR}/machine.pem\"\n\
             api_keyfile = \"{TLS_DIR}/machine-key.pem\"\n",
            self.etcd_endpoints(),
            self.config.agent_ttl.as_millis()
        );
        let metadata = self.metadata(n);
        if !metadata.is_empty() {
            toml.push_str("[metadata]\n");
            for (key, value) in metadata {
                toml.push_str(&format!("{key} = {value:?}\n"));
            }
        }
        toml
    }

    /// Installs API certificates (from a CA made for this cluster) and the freshly built agent
    /// with [`Cluster::agent_config`] on every node, then waits until node 1's `flotctl
    /// list-machines` lists every node.
    ///
    /// # Errors
    /// The failing `openssl`, copy or install, or [`ClusterError::AgentsNotListed`].
    pub fn start_agents(&self) -> Result<()> {
        let pki = self.state_dir.join("pki");
        fs::create_dir_all(&pki).map_err(|source| {
            ClusterError::Node(HarnessError::Io {
                what: "create",
                path: pki.clone(),
                source,
            })
        })?;
        let authority = Authority::create(&pki)?;
        let binaries = AgentBinaries::built()?;
        for n in 1..=self.nodes.len() {
            let node = self.node(n);
            let address = node.address().expect("cluster nodes have an address");
            let identity = authority.issue(node.hostname(), address)?;
            node.install(&identity.ca, &format!("{TLS_DIR}/ca.pem"), 0o644)?;
            node.install(&identity.cert, &format!("{TLS_DIR}/machine.pem"), 0o644)?;
            node.install(&identity.key, &format!("{TLS_DIR}/machine-key.pem"), 0o600)?;
            self.install_agent_from(n, &binaries, &self.agent_config(n))?;
        }
        self.wait_for_machines(self.nodes.len())
    }

    /// A client certificate from the CA of [`Cluster::start_agents`], for `flotctl --endpoint
    /// https://…` from the host.
    ///
    /// # Errors
    /// The failing `openssl`, or no CA yet.
    pub fn client_identity(&self, name: &str) -> Result<Identity> {
        let authority = Authority::open(&self.state_dir.join("pki"))?;
        Ok(authority.issue(name, self.host_address())?)
    }

    /// Waits until node 1's `flotctl list-machines` lists `count` machines.
    ///
    /// # Errors
    /// [`ClusterError::AgentsNotListed`] with what it listed last, after 30 s.
    pub fn wait_for_machines(&self, count: usize) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let listed = self
                .node(1)
                .exec(&["flotctl", "list-machines", "--no-legend"])
                .map(|output| String::from_utf8_lossy(&output.stdout).into_owned())
                .unwrap_or_default();
            if listed.lines().count() == count {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(ClusterError::AgentsNotListed {
                    expected: count,
                    listed,
                });
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Installs the freshly built agent on node n and starts it: see
    /// [`Cluster::install_agent_from`] with [`AgentBinaries::built`].
    ///
    /// # Errors
    /// As [`Cluster::install_agent_from`], or [`HarnessError::BinaryNotFound`].
    ///
    /// ```no_run
    /// # let cluster = flotilla_tests::cluster::Cluster::boot(
    /// #     flotilla_tests::cluster::ClusterConfig::new(1)).unwrap();
    /// let toml = format!("etcd-endpoints = {:?}\n", cluster.etcd_endpoints());
    /// cluster.install_agent(1, &toml).unwrap();
    /// ```
    pub fn install_agent(&self, n: usize, config_toml: &str) -> Result<()> {
        self.install_agent_from(n, &AgentBinaries::built()?, config_toml)
    }

    /// Copies `binaries` into node n's `/usr/bin`, writes `config_toml` to
    /// `/etc/flotilla/flotilla.toml` and runs `systemctl enable --now flotilla.service`, the unit
    /// the host image ships (which waits for the agent's readiness notification).
    ///
    /// # Errors
    /// [`ClusterError::AgentFailed`] with the unit's journal when it does not start, or the
    /// failing copy or command.
    pub fn install_agent_from(
        &self,
        n: usize,
        binaries: &AgentBinaries,
        config_toml: &str,
    ) -> Result<()> {
        let node = self.try_node(n)?;
        for (path, name) in [
            (&binaries.flotillad, "flotillad"),
            (&binaries.flotctl, "flotctl"),
            (&binaries.flotilla, "flotilla"),
        ] {
            node.install(path, &format!("/usr/bin/{name}"), 0o755)?;
        }
        node.write(AGENT_CONFIG_PATH, config_toml)?;
        match node.exec_ok(&["systemctl", "enable", "--now", "flotilla.service"]) {
            Ok(_) => Ok(()),
            Err(source) => Err(ClusterError::AgentFailed {
                node: node.hostname().to_owned(),
                source: Box::new(source),
                journal: node
                    .journal(&["-u", "flotilla.service", "-n", JOURNAL_TAIL_LINES])
                    .unwrap_or_else(|e| e.to_string()),
            }),
        }
    }

    /// Cuts node n off the network: the host end of its veth goes down, so nothing reaches the
    /// node and the node reaches nothing (a partition; the node keeps running).
    ///
    /// # Errors
    /// [`ClusterError::NoNode`] or the failing `ip` command.
    pub fn cut_off(&self, n: usize) -> Result<()> {
        self.try_node(n)?;
        Ok(network::set_link(&self.subnet.host_veth(n), false)?)
    }

    /// Undoes [`Cluster::cut_off`].
    ///
    /// # Errors
    /// As [`Cluster::cut_off`].
    pub fn reconnect(&self, n: usize) -> Result<()> {
        self.try_node(n)?;
        Ok(network::set_link(&self.subnet.host_veth(n), true)?)
    }

    /// Kills node n's systemd with SIGKILL, which takes every process of the node with it: a hard
    /// machine loss. The other nodes keep running; what is left of node n goes at teardown.
    ///
    /// # Errors
    /// [`ClusterError::NoNode`].
    pub fn kill_node(&self, n: usize) -> Result<()> {
        let pid = self.try_node(n)?.pid();
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        let deadline = Instant::now() + Duration::from_secs(10);
        while alive(pid) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    /// Kills etcd member m (numbered from 1) with SIGKILL.
    ///
    /// # Errors
    /// [`EtcdError::NoMember`].
    pub fn kill_etcd_member(&mut self, m: usize) -> Result<()> {
        Ok(self.etcd_mut().kill_member(m)?)
    }

    /// Starts etcd member m again on its data and waits until it is healthy.
    ///
    /// # Errors
    /// [`EtcdError`] naming the member, with its log.
    pub fn restart_etcd_member(&mut self, m: usize) -> Result<()> {
        Ok(self.etcd_mut().restart_member(m)?)
    }

    /// What this cluster created on the host; [`ClusterFootprint::leftovers`] checks it after
    /// drop.
    pub fn footprint(&self) -> ClusterFootprint {
        ClusterFootprint {
            nodes: self.nodes.iter().map(Node::footprint).collect(),
            bridge: self.subnet.bridge_name(),
            state_dir: self.state_dir.clone(),
            etcd_pids: self.etcd.as_ref().map(Etcd::pids).unwrap_or_default(),
            lock_file: self.subnet.lock_path().to_path_buf(),
        }
    }

    fn try_node(&self, n: usize) -> Result<&Node> {
        n.checked_sub(1)
            .and_then(|i| self.nodes.get(i))
            .ok_or(ClusterError::NoNode {
                n,
                nodes: self.nodes.len(),
            })
    }

    fn etcd_mut(&mut self) -> &mut Etcd {
        self.etcd
            .as_mut()
            .expect("a booted cluster always has etcd")
    }

    fn node_config(&self, n: usize) -> NodeConfig {
        let mut hosts = vec![(self.subnet.host_address(), HOST_NAME.to_owned())];
        hosts.extend(
            (1..=self.config.nodes).map(|i| (self.subnet.node_address(i), format!("node{i}"))),
        );
        let mut config = NodeConfig::new(format!("node{n}"));
        config.boot_timeout = self.config.boot_timeout;
        config.network = Some(NodeNetwork {
            bridge: self.subnet.bridge_name(),
            host_veth: self.subnet.host_veth(n),
            address: self.subnet.node_address(n),
            prefix_len: PREFIX_LEN,
            hosts,
        });
        config
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if thread::panicking() {
            for node in self.nodes.iter().filter(|n| alive(n.pid())) {
                node.dump_journal();
            }
            if let Some(etcd) = &self.etcd {
                etcd.dump_logs();
            }
        }
        // In parallel: each node may take a moment to power off.
        let nodes = std::mem::take(&mut self.nodes);
        thread::scope(|s| {
            for node in nodes {
                s.spawn(move || drop(node));
            }
        });
        self.etcd = None;
        self.bridge = None;
        if let Err(e) = fs::remove_dir_all(&self.state_dir) {
            if e.kind() != io::ErrorKind::NotFound {
                eprintln!("cannot remove {}: {e}", self.state_dir.display());
            }
        }
        let _ = fs::remove_dir(STATE_ROOT);
    }
}

impl ClusterFootprint {
    /// What of the cluster still exists on the host: the nodes' leftovers, the bridge, the state
    /// directory, etcd processes, the subnet lock. Empty after a clean teardown.
    ///
    /// ```no_run
    /// # let cluster = flotilla_tests::cluster::Cluster::boot(
    /// #     flotilla_tests::cluster::ClusterConfig::new(1)).unwrap();
    /// let footprint = cluster.footprint();
    /// drop(cluster);
    /// assert_eq!(footprint.leftovers(), Vec::<String>::new());
    /// ```
    pub fn leftovers(&self) -> Vec<String> {
        let mut left: Vec<String> = self
            .nodes
            .iter()
            .flat_map(NodeFootprint::leftovers)
            .collect();
        if link_exists(&self.bridge) {
            left.push(format!("bridge {}", self.bridge));
        }
        if self.state_dir.exists() {
            left.push(format!("state dir {}", self.state_dir.display()));
        }
        for pid in self.etcd_pids.iter().filter(|p| alive(**p)) {
            left.push(format!("etcd process {pid}"));
        }
        if self.lock_file.exists() {
            left.push(format!("subnet lock {}", self.lock_file.display()));
        }
        left
    }
}

/// Client port of etcd member 1 in subnet `index`; the members use the next ports up to
/// `ETCD_PORTS_PER_SUBNET`.
fn etcd_base_port(index: u8) -> u16 {
    ETCD_PORT_BASE + ETCD_PORTS_PER_SUBNET * u16::from(index)
}

/// Whether nothing listens on 127.0.0.1:`port` (etcd listens there besides the bridge address).
fn loopback_port_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// The result of a scoped thread, re-raising its panic.
fn join<T>(handle: thread::ScopedJoinHandle<'_, T>) -> T {
    handle
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}
