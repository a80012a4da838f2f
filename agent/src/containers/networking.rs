//! A container's network through its life: its addresses are taken at `create` ([`join`]);
//! when its supervisor starts it, [`plumb`] makes its network namespace, plugs it into each
//! bridge, writes its `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf`, reserves its
//! published host ports and adds their firewall rules; [`unplumb`] undoes all that when the
//! supervisor ends (or finds it left behind by a supervisor that was killed); [`release`] gives
//! the addresses back at `rm`, and takes a network's bridge and rules away with its last
//! container.
//!
//! Every change of kernel state happens under one lock per data root (`network/plumbing.lock`),
//! so two supervisors never race for a bridge, a host port or the firewall table.

use std::fs;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use image::store::lock::FileLock;

use super::store::ContainerStore;
use crate::engine::container::{Container, Endpoint};
use crate::engine::options::{Network as Mode, RunOptions};
use crate::network::dns;
use crate::network::files::{self, Hosts, LinkedHost, Resolver};
use crate::network::firewall::{self, Publication, PublishedPort};
use crate::network::links::{link_env, LinkTarget};
use crate::network::ports::{self, PortBinding};
use crate::network::store::{Network, NetworkStore, DEFAULT_NETWORK};
use crate::network::{bridge, netns, veth};

/// Why a container's network could not be set up or taken down.
#[derive(Debug, thiserror::Error)]
pub enum NetworkingError {
    #[error(transparent)]
    Network(#[from] crate::network::store::NetworkError),
    #[error(transparent)]
    Ipam(#[from] crate::network::ipam::IpamError),
    #[error(transparent)]
    Bridge(#[from] bridge::BridgeError),
    #[error(transparent)]
    Veth(#[from] veth::VethError),
    #[error(transparent)]
    Netns(#[from] netns::NetnsError),
    #[error(transparent)]
    Firewall(#[from] firewall::FirewallError),
    #[error(transparent)]
    Ports(#[from] ports::PortError),
    #[error(transparent)]
    Store(#[from] super::store::StoreError),
    #[error("--link {name}: no such container")]
    NoLinkTarget { name: String },
    #[error("--link {name}: container {name} is not on network {network}")]
    LinkNotShared { name: String, network: String },
    #[error("--network container:{name}: no such container")]
    NoNetworkContainer { name: String },
    #[error("cannot join the network of container {name}: it is not running")]
    NetworkContainerStopped { name: String },
    #[error(
        "cannot publish {binding} of container {container}: it has no address on a bridge network"
    )]
    NoAddress { binding: String, container: String },
    #[error("container {container} cannot join networks: its network is {mode}")]
    NotBridged { container: String, mode: String },
    #[error("container {container} is already connected to network {network}")]
    AlreadyConnected { container: String, network: String },
    #[error("container {container} is not connected to network {network}")]
    NotConnected { container: String, network: String },
    #[error(transparent)]
    DnsTable(#[from] crate::records::RecordError),
    #[error(transparent)]
    DnsLaunch(#[from] dns::launch::LaunchError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Result of this module.
pub type Result<T> = std::result::Result<T, NetworkingError>;

/// The file in a container's directory that its network namespace is bound onto.
pub const NETNS_FILE: &str = "netns";

/// What a supervisor holds while its container runs: the sockets that keep its published host
/// ports from anyone else.
#[derive(Debug, Default)]
pub struct Plumbing {
    _reserved: Vec<OwnedFd>,
}

/// The container `--network container:NAME` names, and its directory.
pub fn network_container(
    store: &ContainerStore,
    options: &RunOptions,
) -> Result<Option<(Container, PathBuf)>> {
    let Mode::Container(name) = &options.network else {
        return Ok(None);
    };
    let id = store
        .resolve(name)
        .map_err(|_| NetworkingError::NoNetworkContainer { name: name.clone() })?;
    Ok(Some((store.read(&id)?, store.dir(&id))))
}

/// The `--link` variables of a container called `name` made with `options`, from the linked
/// containers' records: each must exist and share the container's network.
pub fn links_environment(
    store: &ContainerStore,
    name: &str,
    options: &RunOptions,
) -> Result<Vec<String>> {
    let network = options.network.bridge_network().unwrap_or(DEFAULT_NETWORK);
    let mut env = Vec::new();
    for link in &options.links {
        let target = linked(store, &link.name)?;
        let endpoint = shared_endpoint(&target, network)?;
        let target_env: Vec<String> = store
            .spec(&target.id)?
            .process()
            .as_ref()
            .and_then(|p| p.env().clone())
            .unwrap_or_default()
            .into_iter()
            .filter(|e| !e.starts_with("HOSTNAME="))
            .collect();
        env.extend(link_env(
            name,
            link,
            &LinkTarget {
                ip: endpoint.address,
                exposed: &target.exposed,
                env: &target_env,
            },
        ));
    }
    Ok(env)
}

fn linked(store: &ContainerStore, name: &str) -> Result<Container> {
    let id = store
        .resolve(name)
        .map_err(|_| NetworkingError::NoLinkTarget {
            name: name.to_owned(),
        })?;
    Ok(store.read(&id)?)
}

fn shared_endpoint<'a>(target: &'a Container, network: &str) -> Result<&'a Endpoint> {
    target
        .endpoints
        .iter()
        .find(|e| e.network == network)
        .ok_or_else(|| NetworkingError::LinkNotShared {
            name: target.name.clone(),
            network: network.to_owned(),
        })
}

/// Takes container `id`'s address on the bridge network its options name (none for host,
/// none and container modes). Call it once the container's record exists: addresses whose
/// container has no record are reclaimed by the next allocation.
pub fn join(data_root: &Path, store: &ContainerStore, record: &Container) -> Result<Vec<Endpoint>> {
    let Some(name) = record.options.network.bridge_network() else {
        return Ok(Vec::new());
    };
    let networks = NetworkStore::open(data_root)?;
    let network = networks.get(name)?;
    Ok(vec![endpoint_on(store, &networks, &network, record, 0)?])
}

/// A new address for `record` on `network`, its veth named by `index`.
pub fn endpoint_on(
    store: &ContainerStore,
    networks: &NetworkStore,
    network: &Network,
    record: &Container,
    index: usize,
) -> Result<Endpoint> {
    let ipam = networks.ipam(network);
    ipam.reclaim(&|owner| store.dir(owner).join(super::store::RECORD_FILE).exists())?;
    let address = ipam.allocate(&record.id)?;
    let mac = crate::network::mac_for(address)
        .map(|byte| format!("{byte:02x}"))
        .join(":");
    Ok(Endpoint {
        network: network.name.clone(),
        network_id: network.id.clone(),
        address,
        prefix: network.subnet.prefix(),
        gateway: network.gateway,
        mac,
        host_interface: format!("fv{}{index:02x}", record.id.get(..10).unwrap_or(&record.id)),
    })
}

/// Makes container `record`'s network ready for its first process, undoing what it did on
/// failure. The [`Plumbing`] must live as long as the container runs.
pub fn plumb(data_root: &Path, store: &ContainerStore, record: &Container) -> Result<Plumbing> {
    let _lock = plumbing_lock(data_root)?;
    let dir = store.dir(&record.id);
    let result = match &record.options.network {
        Mode::Host => write_host_files(&dir).map(|()| (Plumbing::default(), Vec::new())),
        Mode::Container(_) => check_network_container(store, &record.options)
            .map(|()| (Plumbing::default(), Vec::new())),
        Mode::None | Mode::Bridge | Mode::Named(_) => {
            plumb_namespace(data_root, store, record, &dir)
        }
    };
    match result.and_then(|done| {
        if on_user_network(record) {
            serve_names(data_root, store, None)?;
        }
        Ok(done)
    }) {
        Ok((plumbing, bindings)) => {
            if !bindings.is_empty() {
                store.update(&record.id, |c| c.ports = bindings)?;
            }
            Ok(plumbing)
        }
        Err(error) => {
            let _ = undo(store, record);
            if !record.options.publish.is_empty() || record.options.publish_all {
                let _ = firewall::remove_container_rules(&record.id);
            }
            Err(error)
        }
    }
}

fn check_network_container(store: &ContainerStore, options: &RunOptions) -> Result<()> {
    let Some((target, dir)) = network_container(store, options)? else {
        return Ok(());
    };
    let has_namespace =
        target.options.network == Mode::Host || netns::exists(&dir.join(NETNS_FILE));
    if target.is_active() && has_namespace {
        Ok(())
    } else {
        Err(NetworkingError::NetworkContainerStopped { name: target.name })
    }
}

/// A namespace of the container's own: made, plugged into its networks, files written, ports
/// published.
fn plumb_namespace(
    data_root: &Path,
    store: &ContainerStore,
    record: &Container,
    dir: &Path,
) -> Result<(Plumbing, Vec<PortBinding>)> {
    let netns_path = dir.join(NETNS_FILE);
    // Left behind by a supervisor that was killed: its veths and rules go first.
    undo(store, record)?;
    netns::create(&netns_path)?;
    let networks = NetworkStore::open(data_root)?;
    for endpoint in &record.endpoints {
        plug(&netns_path, &networks.get(&endpoint.network)?, endpoint)?;
    }
    write_files(store, record, dir)?;
    publish(record)
}

/// Brings `network` up and gives the namespace at `netns_path` its interface there.
fn plug(netns_path: &Path, network: &Network, endpoint: &Endpoint) -> Result<()> {
    bring_up(network)?;
    veth::attach(
        netns_path,
        &veth::Endpoint {
            bridge: &network.interface,
            host_if_name: &endpoint.host_interface,
            address: endpoint.address,
            prefix: endpoint.prefix,
            gateway: endpoint.gateway,
            mac: None,
        },
    )?;
    Ok(())
}

/// The network's bridge, the sysctls it needs, and its firewall rules.
fn bring_up(network: &Network) -> Result<()> {
    bridge::ensure_bridge(&network.interface, network.gateway, network.subnet.prefix())?;
    bridge::enable_ip_forward()?;
    bridge::enable_route_localnet(&network.interface)?;
    firewall::add_network_rules(&firewall_network(network))?;
    Ok(())
}

fn firewall_network(network: &Network) -> firewall::Network {
    firewall::Network {
        name: network.name.clone(),
        bridge: network.interface.clone(),
        subnet: network.subnet.network(),
        prefix: network.subnet.prefix(),
    }
}

/// Chooses and reserves the host ports of `-p` and `-P`, and adds their DNAT rules.
fn publish(record: &Container) -> Result<(Plumbing, Vec<PortBinding>)> {
    let options = &record.options;
    let mut specs = options.publish.clone();
    if options.publish_all {
        let exposed: Vec<String> = record.exposed.iter().map(ToString::to_string).collect();
        specs.extend(ports::publish_all(
            exposed.iter().map(String::as_str),
            &options.publish,
        )?);
    }
    if specs.is_empty() {
        return Ok((Plumbing::default(), Vec::new()));
    }
    let reserved = std::cell::RefCell::new(Vec::new());
    let bindings = ports::resolve(&specs, ports::ephemeral_range()?, &|ip, port, protocol| {
        let socket = ports::reserve_port(ip, port, protocol)?;
        let free = socket.is_some();
        reserved.borrow_mut().extend(socket);
        Ok(free)
    })?;
    let publication = publication(record, &bindings).ok_or_else(|| NetworkingError::NoAddress {
        binding: specs[0].text.clone(),
        container: record.name.clone(),
    })?;
    firewall::add_container_rules(&publication)?;
    Ok((
        Plumbing {
            _reserved: reserved.into_inner(),
        },
        bindings,
    ))
}

/// The DNAT rules `bindings` of `record` need: to its first address (none without one).
fn publication(record: &Container, bindings: &[PortBinding]) -> Option<Publication> {
    if bindings.is_empty() {
        return None;
    }
    let address = record.endpoints.first()?.address;
    let ports = bindings
        .iter()
        .filter_map(|binding| match binding.host_ip {
            IpAddr::V4(host_ip) => Some(PublishedPort {
                host_ip,
                host_port: binding.host_port,
                container_port: binding.container_port,
                protocol: binding.protocol,
            }),
            IpAddr::V6(_) => None,
        })
        .collect();
    Some(Publication {
        container: record.id.clone(),
        address,
        ports,
    })
}

/// `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf` of a container with a namespace of its
/// own.
fn write_files(store: &ContainerStore, record: &Container, dir: &Path) -> Result<()> {
    let hostname = store
        .spec(&record.id)?
        .hostname()
        .clone()
        .unwrap_or_else(|| record.short_id().to_owned());
    let own = record.endpoints.first();
    let mut links = Vec::new();
    for link in &record.options.links {
        let target = linked(store, &link.name)?;
        let network = own.map_or(DEFAULT_NETWORK, |e| e.network.as_str());
        let endpoint = shared_endpoint(&target, network)?;
        links.push(LinkedHost {
            ip: endpoint.address,
            alias: link.alias.clone(),
            hostname: store
                .spec(&target.id)?
                .hostname()
                .clone()
                .unwrap_or_else(|| target.short_id().to_owned()),
            name: target.name.clone(),
        });
    }
    let hosts = files::hosts_file(&Hosts {
        address: own.map(|e| e.address),
        hostname: &hostname,
        aliases: &[],
        extra_hosts: &record.options.extra_hosts,
        host_gateway: IpAddr::V4(own.map_or(Ipv4Addr::LOCALHOST, |e| e.gateway)),
        links: &links,
    });
    let resolver = match own {
        Some(endpoint) if endpoint.network != DEFAULT_NETWORK => {
            Resolver::Embedded(endpoint.gateway)
        }
        _ => Resolver::Direct,
    };
    let resolv = files::resolv_conf(&host_resolv_conf(), &record.options.dns, resolver);
    write(&dir.join("hosts"), &hosts)?;
    write(&dir.join("hostname"), &files::hostname_file(&hostname))?;
    write(&dir.join("resolv.conf"), &resolv.render())
}

/// `--network host`: the host's own files, as docker copies them.
fn write_host_files(dir: &Path) -> Result<()> {
    let hostname = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    let hosts = fs::read_to_string("/etc/hosts").unwrap_or_default();
    write(&dir.join("hosts"), &hosts)?;
    write(&dir.join("hostname"), &files::hostname_file(&hostname))?;
    write(&dir.join("resolv.conf"), &host_resolv_conf())
}

fn host_resolv_conf() -> String {
    fs::read_to_string("/etc/resolv.conf").unwrap_or_default()
}

/// Writes a network file in place: it is bind-mounted by inode, so a rename would not reach a
/// running container.
fn write(path: &Path, text: &str) -> Result<()> {
    fs::write(path, text).map_err(|source| NetworkingError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Takes down what [`plumb`] made for container `record`: its DNAT rules, veths and network
/// namespace; its addresses stay. Nothing left is no error.
pub fn unplumb(data_root: &Path, store: &ContainerStore, record: &Container) -> Result<()> {
    let _lock = plumbing_lock(data_root)?;
    undo(store, record)?;
    if on_user_network(record) {
        serve_names(data_root, store, Some(&record.id))?;
    }
    if store
        .read_raw(&record.id)
        .is_ok_and(|c| !c.ports.is_empty())
    {
        store.update(&record.id, |c| c.ports.clear())?;
    }
    Ok(())
}

/// What [`plumb`] made, taken down. The DNAT rules go if the record has ports: the rules are
/// added just before the ports are recorded, and boot's [`recover`] rebuilds the table, which
/// covers a supervisor killed in between.
fn undo(store: &ContainerStore, record: &Container) -> Result<()> {
    if !record.ports.is_empty() {
        firewall::remove_container_rules(&record.id)?;
    }
    let netns_path = store.dir(&record.id).join(NETNS_FILE);
    if netns::exists(&netns_path) {
        for endpoint in &record.endpoints {
            veth::detach(&endpoint.host_interface)?;
        }
    }
    netns::remove(&netns_path)?;
    Ok(())
}

/// `rm`: [`unplumb`], then the addresses go back to their networks; a network whose last
/// container this was loses its bridge and rules until the next one starts.
pub fn release(data_root: &Path, store: &ContainerStore, record: &Container) -> Result<()> {
    unplumb(data_root, store, record)?;
    if record.endpoints.is_empty() {
        return Ok(());
    }
    let _lock = plumbing_lock(data_root)?;
    let networks = NetworkStore::open(data_root)?;
    let others: Vec<Container> = store
        .list()?
        .into_iter()
        .filter(|c| c.id != record.id)
        .collect();
    for endpoint in &record.endpoints {
        let Ok(network) = networks.get(&endpoint.network) else {
            continue;
        };
        networks.ipam(&network).release(&record.id)?;
        let used = others
            .iter()
            .any(|c| c.endpoints.iter().any(|e| e.network == network.name));
        if !used {
            firewall::remove_network_rules(&network.name)?;
            bridge::remove_bridge(&network.interface)?;
        }
    }
    Ok(())
}

/// `network connect`: the container gets an address on `network_name` too, and while it runs
/// an interface there at once.
pub fn connect(
    data_root: &Path,
    store: &ContainerStore,
    id: &str,
    network_name: &str,
) -> Result<Endpoint> {
    let _lock = plumbing_lock(data_root)?;
    let record = store.read(id)?;
    if record.options.network.bridge_network().is_none() {
        return Err(NetworkingError::NotBridged {
            container: record.name,
            mode: record.options.network.mode(),
        });
    }
    let networks = NetworkStore::open(data_root)?;
    let network = networks.get(network_name)?;
    if record.endpoints.iter().any(|e| e.network == network.name) {
        return Err(NetworkingError::AlreadyConnected {
            container: record.name,
            network: network.name,
        });
    }
    let index = (0..=usize::from(u8::MAX))
        .find(|i| {
            let suffix = format!("{i:02x}");
            !record
                .endpoints
                .iter()
                .any(|e| e.host_interface.ends_with(&suffix))
        })
        .unwrap_or(0);
    let endpoint = endpoint_on(store, &networks, &network, &record, index)?;
    let netns_path = store.dir(id).join(NETNS_FILE);
    if record.is_active() && netns::exists(&netns_path) {
        let plugged = plug(&netns_path, &network, &endpoint);
        if let Err(error) = plugged {
            networks.ipam(&network).release(id)?;
            return Err(error);
        }
    }
    store.update(id, |c| c.endpoints.push(endpoint.clone()))?;
    if !network.is_default() {
        serve_names(data_root, store, None)?;
    }
    Ok(endpoint)
}

/// `network disconnect`: the container leaves `network_name`, its interface there goes and
/// its address is given back.
pub fn disconnect(
    data_root: &Path,
    store: &ContainerStore,
    id: &str,
    network_name: &str,
) -> Result<()> {
    let _lock = plumbing_lock(data_root)?;
    let record = store.read(id)?;
    let networks = NetworkStore::open(data_root)?;
    let network = networks.get(network_name)?;
    let Some(endpoint) = record.endpoints.iter().find(|e| e.network == network.name) else {
        return Err(NetworkingError::NotConnected {
            container: record.name,
            network: network.name,
        });
    };
    if netns::exists(&store.dir(id).join(NETNS_FILE)) {
        veth::detach(&endpoint.host_interface)?;
    }
    networks.ipam(&network).release(id)?;
    store.update(id, |c| c.endpoints.retain(|e| e.network != network.name))?;
    if !network.is_default() {
        serve_names(data_root, store, None)?;
    }
    Ok(())
}

/// `flotilla boot`: what supervisors that died with the host left (namespace files, rules,
/// port records) is cleared, and the firewall table is rebuilt to hold exactly the rules of
/// the networks in use and of the containers still running.
pub fn recover(data_root: &Path, store: &ContainerStore) -> Result<()> {
    let mut running = Vec::new();
    for record in store.list()? {
        if store.supervisor_alive(&record.id)? {
            running.push(record);
        } else {
            unplumb(data_root, store, &record)?;
        }
    }
    let _lock = plumbing_lock(data_root)?;
    let networks = NetworkStore::open(data_root)?;
    let mut state = firewall::FirewallState::default();
    for network in networks.list()? {
        if running
            .iter()
            .any(|c| c.endpoints.iter().any(|e| e.network == network.name))
        {
            state.networks.push(firewall_network(&network));
        }
    }
    for record in &running {
        if let Some(publication) = publication(record, &record.ports) {
            state.publications.push(publication);
        }
    }
    firewall::rebuild(&state)?;
    Ok(())
}

fn on_user_network(record: &Container) -> bool {
    record
        .endpoints
        .iter()
        .any(|e| e.network != DEFAULT_NETWORK)
}

/// Rewrites the embedded resolver's table from the running containers on user networks (but
/// `leaving`, whose supervisor is ending) and has the resolver read it; the caller holds the
/// plumbing lock, which makes this read-modify-write the only one at a time.
fn serve_names(data_root: &Path, store: &ContainerStore, leaving: Option<&str>) -> Result<()> {
    let networks = NetworkStore::open(data_root)?;
    let mut running = Vec::new();
    for record in store.list()? {
        if Some(record.id.as_str()) != leaving && store.supervisor_alive(&record.id)? {
            running.push(record);
        }
    }
    let mut table = dns::table::Table {
        networks: Vec::new(),
        upstreams: files::upstreams(&host_resolv_conf(), &files::Dns::default())
            .into_iter()
            .map(|ip| std::net::SocketAddr::new(ip, dns::server::PORT))
            .collect(),
    };
    for network in networks.list()?.into_iter().filter(|n| !n.is_default()) {
        let entries: Vec<dns::table::Entry> = running
            .iter()
            .filter_map(|c| {
                let endpoint = c.endpoints.iter().find(|e| e.network == network.name)?;
                Some(dns::table::Entry {
                    names: vec![c.name.clone(), c.short_id().to_owned()],
                    addresses: vec![endpoint.address],
                })
            })
            .collect();
        if !entries.is_empty() {
            table.networks.push(dns::table::Network {
                name: network.name.clone(),
                gateway: network.gateway,
                entries,
            });
        }
    }
    let path = dns::table::path(data_root);
    let before = dns::table::read(&path)?;
    dns::table::write(&path, &table)?;
    if before.networks.is_empty() && table.networks.is_empty() {
        return Ok(());
    }
    let exe = std::env::current_exe().map_err(|source| NetworkingError::Io {
        path: PathBuf::from("/proc/self/exe"),
        source,
    })?;
    dns::launch::reload(data_root, &exe, dns::launch::Launcher::detect())?;
    Ok(())
}

fn plumbing_lock(data_root: &Path) -> Result<FileLock> {
    let dir = data_root.join("network");
    fs::create_dir_all(&dir).map_err(|source| NetworkingError::Io {
        path: dir.clone(),
        source,
    })?;
    let path = dir.join("plumbing.lock");
    FileLock::exclusive(&path).map_err(|source| NetworkingError::Io { path, source })
}
