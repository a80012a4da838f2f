//! `flotillad`'s life: serve the API, join the cluster, run the scheduler campaign and this
//! machine's units, and react to signals and to the loss of etcd.
//!
//! - The API answers from the first instant (503 until the machine has joined, as fleet did), so
//!   `Type=notify` readiness does not wait for etcd.
//! - Joining registers `machines/<id>` under a lease. The lease ID is kept in
//!   `<run dir>/lease`; an agent restarted within the TTL adopts its lease, so the cluster never
//!   notices the restart and no unit moves or restarts.
//! - When the lease is lost (etcd unreachable for a TTL, or the lease expired), the agent first
//!   tries to adopt the same lease again: etcd extends leases when it elects a new leader, so
//!   a lease this agent gave up for lost may still hold the registration, and then nothing
//!   moves. Otherwise the scheduler has placed this machine's units elsewhere. With `partition_action = "stop"` the units are
//!   stopped once the lease has surely expired plus `partition_grace`, so nothing runs twice
//!   for longer than that (fleet kept them, its issue #440); with `"keep"` they keep running
//!   until etcd is back. Either way the agent joins again as soon as it can and then runs what
//!   it is assigned.
//! - SIGHUP reads the configuration again and re-registers the machine's record (metadata,
//!   address) under the same lease; the API stays up. SIGTERM leaves: units are stopped and
//!   unloaded, the lease revoked, so the scheduler moves them at once.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::time::Instant;

use super::identity;
use super::leader;
use super::node::NodeAgent;
use crate::api::client::{Client, Endpoint, DEFAULT_API_PORT};
use crate::api::server::{bind_unix, router, ApiState, TlsListener};
use crate::cluster::model::MachineRecord;
use crate::config::{Config, Overrides, PartitionAction};
use crate::notify;
use crate::registry::{LeaseStatus, Presence, Registry, RegistryError};
use crate::systemd::Systemd;

/// Where the agent keeps what must survive its own restart (not a reboot).
pub const RUN_DIR: &str = "/run/flotilla";

/// Longest wait between two attempts to reach etcd or systemd.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Why the agent could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// This machine has no usable identity.
    #[error(transparent)]
    Identity(#[from] identity::IdentityError),
    /// The API could not listen.
    #[error(transparent)]
    Listen(#[from] crate::api::server::ListenError),
    /// The API's certificates.
    #[error(transparent)]
    Tls(#[from] crate::api::tls::TlsError),
    /// The API client for other machines.
    #[error(transparent)]
    Client(#[from] crate::api::client::ClientError),
    /// A signal handler.
    #[error("cannot handle signals: {0}")]
    Signals(std::io::Error),
}

/// How the agent was started: the configuration, and how to read it again on SIGHUP.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The configuration read at start.
    pub config: Config,
    /// The file it came from.
    pub config_path: PathBuf,
    /// The environment and flag overrides laid over it.
    pub overrides: Overrides,
    /// Where the lease file lives ([`RUN_DIR`] in production).
    pub run_dir: PathBuf,
}

struct Signals {
    hangup: Signal,
    terminate: Signal,
    interrupt: Signal,
}

impl Signals {
    fn new() -> Result<Signals, DaemonError> {
        let listen = |kind| signal(kind).map_err(DaemonError::Signals);
        Ok(Signals {
            hangup: listen(SignalKind::hangup())?,
            terminate: listen(SignalKind::terminate())?,
            interrupt: listen(SignalKind::interrupt())?,
        })
    }
}

/// What ended a session in the cluster.
enum Ended {
    /// SIGTERM or SIGINT: leave.
    Leave,
    /// The lease is lost; this is when etcd has surely expired it.
    LeaseLost { expired_by: Instant },
}

/// Waits `backoff`, then doubles it up to [`MAX_BACKOFF`].
async fn pause(backoff: &mut Duration) {
    tokio::time::sleep(*backoff).await;
    *backoff = (*backoff * 2).min(MAX_BACKOFF);
}

fn machine_record(config: &Config, machine_id: &str) -> Result<MachineRecord, DaemonError> {
    let public_ip = match config.public_ip {
        Some(ip) => ip,
        None => identity::public_ip()?,
    };
    Ok(MachineRecord {
        id: machine_id.to_owned(),
        public_ip: public_ip.to_string(),
        metadata: config.metadata.clone(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        disable_engine: config.disable_engine,
        api_address: config.api_listen.map(|address| {
            let host = if address.ip().is_unspecified() {
                public_ip
            } else {
                address.ip()
            };
            std::net::SocketAddr::new(host, address.port()).to_string()
        }),
    })
}

fn saved_lease(run_dir: &Path) -> Option<i64> {
    let text = std::fs::read_to_string(run_dir.join("lease")).ok()?;
    i64::from_str_radix(text.trim(), 16).ok()
}

fn save_lease(run_dir: &Path, lease: i64) {
    let path = run_dir.join("lease");
    let temporary = run_dir.join(".lease.tmp");
    let write = std::fs::create_dir_all(run_dir)
        .and_then(|()| std::fs::write(&temporary, format!("{lease:x}\n")))
        .and_then(|()| std::fs::rename(&temporary, &path));
    if let Err(error) = write {
        tracing::warn!(
            "cannot save the lease in {}: a restart of the agent will move its units: {error}",
            path.display()
        );
    }
}

/// Serves the API on the unix socket and, when configured, on TCP with mutual TLS.
async fn serve_api(config: &Config, state: &ApiState) -> Result<(), DaemonError> {
    let unix = bind_unix(&config.api_socket)?;
    let app = router(state.clone());
    tokio::spawn(async move {
        if let Err(error) = axum::serve(unix, app).await {
            tracing::error!("api: unix socket: {error}");
        }
    });
    if let (Some(address), Some(tls)) = (config.api_listen, config.api_tls()) {
        let listener = TlsListener::bind(address, tls.server_config()?).await?;
        let app = router(state.clone());
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!("api: tcp {address}: {error}");
            }
        });
    }
    Ok(())
}

/// A client for other machines' APIs, when this machine has API certificates.
fn peers(config: &Config) -> Result<Option<Client>, DaemonError> {
    let Some(tls) = config.api_tls() else {
        return Ok(None);
    };
    let own = Endpoint::Https {
        host: "localhost".to_owned(),
        port: config.api_listen.map_or(DEFAULT_API_PORT, |a| a.port()),
    };
    Ok(Some(Client::new(own, Some(&tls), Duration::from_secs(10))?))
}

/// Runs the agent until it is told to leave.
pub async fn run(mut settings: Settings) -> Result<(), DaemonError> {
    let machine_id = identity::machine_id(Path::new("/etc/machine-id"))?;
    let mut record = machine_record(&settings.config, &machine_id)?;
    let api = ApiState::new(machine_id.clone(), peers(&settings.config)?);
    serve_api(&settings.config, &api).await?;
    let mut signals = Signals::new()?;
    notify::send(&format!(
        "READY=1\nSTATUS=joining the cluster as {} ({})\n",
        machine_id, record.public_ip
    ));
    tracing::info!(
        "flotillad {} starting: machine {machine_id}, address {}",
        env!("CARGO_PKG_VERSION"),
        record.public_ip
    );
    let mut node = connect_node(&settings.config).await;
    let registry = connect_registry(&settings.config).await;
    let mut adopt = saved_lease(&settings.run_dir);
    let mut stop_at = None;
    loop {
        let joined = join(
            &registry,
            &record,
            &settings,
            adopt,
            &mut signals,
            &mut node,
            &mut stop_at,
        );
        let Some(mut presence) = joined.await else {
            return leave(&mut node, None).await;
        };
        stop_at = None;
        save_lease(&settings.run_dir, presence.lease());
        api.open(registry.clone());
        notify::send(&format!(
            "STATUS=in the cluster as {machine_id} ({})\n",
            record.public_ip
        ));
        let ended = session(
            &registry,
            &mut presence,
            &mut settings,
            &mut record,
            &mut signals,
            &mut node,
        )
        .await;
        // The API stays open while the machine joins again: it needs etcd, not this machine's
        // lease, and a client that asks in that moment must not be told the agent is gone.
        match ended {
            Ended::Leave => return leave(&mut node, Some(presence)).await,
            Ended::LeaseLost { expired_by } => {
                // The lease may well outlive what this agent saw: a new etcd leader extends
                // every lease when it is elected. Adopting it again keeps the registration and
                // the units where they are; a lease that did expire is simply not adopted.
                adopt = Some(presence.lease());
                drop(presence);
                tracing::warn!("this machine's lease is lost; joining again");
                notify::send("STATUS=cut off from etcd: joining again\n");
                if settings.config.partition_action == PartitionAction::Stop {
                    stop_at = Some(expired_by + settings.config.partition_grace);
                }
            }
        }
    }
}

async fn connect_node(config: &Config) -> NodeAgent {
    let mut backoff = Duration::from_millis(200);
    loop {
        let attempt = async {
            let systemd = Systemd::connect().await?;
            NodeAgent::new(&config.units_directory, systemd).await
        };
        match attempt.await {
            Ok(node) => return node,
            Err(error) => tracing::warn!("cannot reach systemd, trying again: {error}"),
        }
        pause(&mut backoff).await;
    }
}

async fn connect_registry(config: &Config) -> Registry {
    let mut backoff = Duration::from_millis(200);
    loop {
        match Registry::connect(&config.etcd()).await {
            Ok(registry) => return registry,
            Err(error) => tracing::warn!("cannot reach etcd, trying again: {error}"),
        }
        pause(&mut backoff).await;
    }
}

/// Registers the machine, trying until it works; `None` when told to leave meanwhile. While
/// it tries, at `stop_at` (a lease lost with `partition_action = "stop"`: when it has surely
/// expired, plus the grace period) every unit here is stopped, for they run elsewhere by then.
async fn join(
    registry: &Registry,
    record: &MachineRecord,
    settings: &Settings,
    adopt: Option<i64>,
    signals: &mut Signals,
    node: &mut NodeAgent,
    stop_at: &mut Option<Instant>,
) -> Option<Presence> {
    let mut backoff = Duration::from_millis(200);
    loop {
        let attempt = Presence::register(registry, record, settings.config.agent_ttl, adopt);
        match attempt.await {
            Ok(presence) => {
                tracing::info!(
                    "joined the cluster: machine {} under lease {:x}",
                    record.id,
                    presence.lease()
                );
                return Some(presence);
            }
            Err(error @ RegistryError::DuplicateMachine { .. }) => {
                tracing::error!("refusing to join: {error}");
                notify::send(&format!("STATUS=refusing to join: {error}\n"));
            }
            Err(error) => tracing::warn!("cannot join the cluster, trying again: {error}"),
        }
        let deadline = *stop_at;
        tokio::select! {
            () = pause(&mut backoff) => {}
            () = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                *stop_at = None;
                tracing::warn!(
                    "cut off from etcd and the lease has expired: the units of this machine run \
                     elsewhere now, stopping them here (partition_action = \"stop\")"
                );
                if let Err(error) = node.unload_all().await {
                    tracing::error!("cannot stop the units of this machine: {error}");
                }
            }
            _ = signals.terminate.recv() => return None,
            _ = signals.interrupt.recv() => return None,
        }
    }
}

/// One stay in the cluster: the scheduler campaign and this machine's units, until the lease
/// is lost or the agent is told to leave.
async fn session(
    registry: &Registry,
    presence: &mut Presence,
    settings: &mut Settings,
    record: &mut MachineRecord,
    signals: &mut Signals,
    node: &mut NodeAgent,
) -> Ended {
    let leader = (!settings.config.disable_engine).then(|| {
        let (registry, id, lease) = (registry.clone(), record.id.clone(), presence.lease());
        tokio::spawn(async move {
            let error = leader::run(registry, id, lease).await;
            tracing::warn!("scheduler campaign ended: {error}");
        })
    });
    let _abort_leader = leader
        .as_ref()
        .map(|task| task.abort_handle())
        .map(AbortOnDrop);
    let mut status = presence.status();
    let mut backoff = Duration::from_millis(200);
    loop {
        tokio::select! {
            error = node.run(registry, &*presence) => {
                tracing::warn!("node: {error}; starting over");
                if matches!(error, super::node::NodeError::Systemd(_)) {
                    *node = connect_node(&settings.config).await;
                }
                pause(&mut backoff).await;
            }
            _ = status.changed() => {
                if let LeaseStatus::Lost { expired_by, cause, .. } = *status.borrow() {
                    tracing::warn!("lease {:x} lost ({cause:?})", presence.lease());
                    return Ended::LeaseLost { expired_by };
                }
            }
            _ = signals.hangup.recv() => {
                reload(registry, presence, settings, record).await;
                status = presence.status();
            }
            _ = signals.terminate.recv() => return Ended::Leave,
            _ = signals.interrupt.recv() => return Ended::Leave,
        }
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// SIGHUP: reads the configuration again; the machine's record is re-registered under the same
/// lease when its metadata, address or engine setting changed. Other keys need a restart.
async fn reload(
    registry: &Registry,
    presence: &mut Presence,
    settings: &mut Settings,
    record: &mut MachineRecord,
) {
    notify::send("RELOADING=1\n");
    let loaded = Config::load_with(&settings.config_path, &settings.overrides);
    match loaded.map_err(|e| e.to_string()).and_then(|config| {
        machine_record(&config, &record.id)
            .map(|new| (config, new))
            .map_err(|e| e.to_string())
    }) {
        Err(error) => tracing::error!("reload: keeping the running configuration: {error}"),
        Ok((config, new_record)) => {
            for (key, changed) in [
                (
                    "etcd_endpoints",
                    config.etcd_endpoints != settings.config.etcd_endpoints,
                ),
                ("agent_ttl", config.agent_ttl != settings.config.agent_ttl),
                (
                    "units_directory",
                    config.units_directory != settings.config.units_directory,
                ),
                (
                    "api_socket",
                    config.api_socket != settings.config.api_socket,
                ),
                (
                    "api_listen",
                    config.api_listen != settings.config.api_listen,
                ),
            ] {
                if changed {
                    tracing::warn!(
                        "reload: {key} changed; it takes effect when the agent restarts"
                    );
                }
            }
            if new_record != *record {
                match Presence::register(
                    registry,
                    &new_record,
                    config.agent_ttl,
                    Some(presence.lease()),
                )
                .await
                {
                    Ok(updated) => {
                        *presence = updated;
                        tracing::info!("reload: machine record updated: {new_record:?}");
                        *record = new_record;
                    }
                    Err(error) => {
                        tracing::error!("reload: cannot update the machine record: {error}")
                    }
                }
            } else {
                tracing::info!("reload: nothing the cluster sees changed");
            }
            settings.config = config;
        }
    }
    notify::send("READY=1\n");
}

/// SIGTERM: stop and unload this machine's units, then revoke the lease so the scheduler moves
/// them at once.
async fn leave(node: &mut NodeAgent, presence: Option<Presence>) -> Result<(), DaemonError> {
    notify::send("STOPPING=1\nSTATUS=leaving the cluster\n");
    tracing::info!("leaving the cluster: stopping this machine's units");
    if let Err(error) = node.unload_all().await {
        tracing::error!("cannot stop the units of this machine: {error}");
    }
    if let Some(presence) = presence {
        if let Err(error) = presence.leave().await {
            tracing::error!("cannot revoke the lease (it expires within the TTL): {error}");
        }
    }
    Ok(())
}
