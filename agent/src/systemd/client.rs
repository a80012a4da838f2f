//! [`Systemd`]: one connection to a systemd manager and the calls the agent makes on it.
//!
//! Unit files are handed over by full path (`/run/flotilla/units/<name>`) and linked or enabled
//! into `/run/systemd/system` (`runtime = true`, gone at reboot like the units directory); jobs
//! are queued in mode `replace`; the state of any number of units is read in one
//! `ListUnitsByNames` call (fleet made one `GetUnitProperties` call per unit). Changes arrive as
//! signals ([`Systemd::events`]), never by polling.

use std::future::Future;
use std::path::Path;

use zbus::connection::Builder;
use zbus::proxy::CacheProperties;
use zbus::{Address, Connection};
use zbus_systemd::systemd1::ManagerProxy;

use super::error::{Result, SystemdError};
use super::events::Events;
use super::private_socket;
use super::types::{FileChange, JobPath, UnitStatus};

/// systemd's own socket for root (`systemctl` uses it when there is no bus): peer-to-peer,
/// no `Hello`, no names.
pub const PRIVATE_SOCKET: &str = "/run/systemd/private";

/// The job mode of every start and stop: replace conflicting queued jobs, as fleet did.
const JOB_MODE: &str = "replace";
/// systemd's error for a unit it has not loaded.
const NO_SUCH_UNIT: &str = "org.freedesktop.systemd1.NoSuchUnit";

/// A connection to systemd's manager object (`org.freedesktop.systemd1.Manager`).
///
/// Cheap to clone: clones share the connection.
#[derive(Debug, Clone)]
pub struct Systemd {
    address: String,
    connection: Connection,
    manager: ManagerProxy<'static>,
}

impl Systemd {
    /// Connects to systemd over the system bus (`$DBUS_SYSTEM_BUS_ADDRESS`, else
    /// `/var/run/dbus/system_bus_socket`); as root, when the bus cannot be reached, over
    /// systemd's private socket [`PRIVATE_SOCKET`] instead.
    ///
    /// # Errors
    /// [`SystemdError::Connect`] naming the bus address (not root), or
    /// [`SystemdError::Unreachable`] with both failures.
    ///
    /// ```no_run
    /// # async fn f() -> agent::systemd::Result<()> {
    /// let systemd = agent::systemd::Systemd::connect().await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect() -> Result<Self> {
        let bus = match Address::system() {
            Ok(address) => Self::connect_address(&address.to_string()).await,
            Err(source) => Err(SystemdError::Connect {
                address: "$DBUS_SYSTEM_BUS_ADDRESS".to_owned(),
                source: Box::new(source),
            }),
        };
        match bus {
            Err(bus) if nix::unistd::geteuid().is_root() => Self::connect_private(PRIVATE_SOCKET)
                .await
                .map_err(|private| SystemdError::Unreachable {
                    bus: Box::new(bus),
                    private: Box::new(private),
                }),
            bus => bus,
        }
    }

    /// Connects to systemd through the message bus at `address`, e.g.
    /// `unix:path=/proc/1234/root/run/dbus/system_bus_socket`.
    ///
    /// # Errors
    /// [`SystemdError::Connect`] naming `address` and the D-Bus error.
    pub async fn connect_address(address: &str) -> Result<Self> {
        Self::open(address, Builder::address(address).build()).await
    }

    /// Connects peer-to-peer to systemd's private socket at `path` (e.g. [`PRIVATE_SOCKET`]);
    /// root only, and only from systemd's own pid namespace (see `private_socket`).
    ///
    /// # Errors
    /// [`SystemdError::Connect`] naming the socket and the D-Bus error.
    pub async fn connect_private(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let address = format!("unix:path={}", path.display());
        Self::open(&address, private_socket::connect(path)).await
    }

    async fn open(
        address: &str,
        connection: impl Future<Output = zbus::Result<Connection>>,
    ) -> Result<Self> {
        let failed = |source: zbus::Error| SystemdError::Connect {
            address: address.to_owned(),
            source: Box::new(source),
        };
        let connection = connection.await.map_err(failed)?;
        let manager = ManagerProxy::builder(&connection)
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .map_err(failed)?;
        Ok(Self {
            address: address.to_owned(),
            connection,
            manager,
        })
    }

    /// The D-Bus address this connection was opened to.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Links unit files into `/run/systemd/system` (`LinkUnitFiles(paths, runtime, force)`), so
    /// that the next [`Systemd::reload`] loads them. Returns the symlinks made.
    ///
    /// # Errors
    /// [`SystemdError::NonUtf8Path`], or [`SystemdError::Call`] with systemd's answer.
    pub async fn link_runtime(&self, paths: &[impl AsRef<Path>]) -> Result<Vec<FileChange>> {
        let files = utf8_paths(paths)?;
        let argument = files.join(", ");
        let changes = self
            .manager
            .link_unit_files(files, true, true)
            .await
            .map_err(self.failed("LinkUnitFiles", argument))?;
        Ok(changes.into_iter().map(FileChange::from).collect())
    }

    /// Links and enables unit files with an `[Install]` section for this boot
    /// (`EnableUnitFiles(paths, runtime, force)`: e.g. the `multi-user.target.wants/` symlink
    /// in `/run/systemd/system`). Returns the symlinks made.
    ///
    /// # Errors
    /// [`SystemdError::NonUtf8Path`], or [`SystemdError::Call`] with systemd's answer.
    pub async fn enable_runtime(&self, paths: &[impl AsRef<Path>]) -> Result<Vec<FileChange>> {
        let files = utf8_paths(paths)?;
        let argument = files.join(", ");
        let (_, changes) = self
            .manager
            .enable_unit_files(files, true, true)
            .await
            .map_err(self.failed("EnableUnitFiles", argument))?;
        Ok(changes.into_iter().map(FileChange::from).collect())
    }

    /// Removes every runtime symlink to the named units (`DisableUnitFiles(names, runtime)`):
    /// the `.wants/` links and the link [`Systemd::link_runtime`] made. Returns the symlinks
    /// removed.
    ///
    /// # Errors
    /// [`SystemdError::Call`] with systemd's answer.
    pub async fn disable_runtime(&self, names: &[impl AsRef<str>]) -> Result<Vec<FileChange>> {
        let names = strings(names);
        let argument = names.join(", ");
        let changes = self
            .manager
            .disable_unit_files(names, true)
            .await
            .map_err(self.failed("DisableUnitFiles", argument))?;
        Ok(changes.into_iter().map(FileChange::from).collect())
    }

    /// `daemon-reload`: systemd re-reads all unit files; returns once the reload is done.
    ///
    /// # Errors
    /// [`SystemdError::Call`] with systemd's answer.
    pub async fn reload(&self) -> Result<()> {
        self.manager
            .reload()
            .await
            .map_err(self.failed("Reload", String::new()))
    }

    /// Queues a start job for unit `name` and returns its path, to match against
    /// [`super::Event::JobRemoved`] (see [`Events::wait_job`]).
    ///
    /// # Errors
    /// [`SystemdError::Call`] with systemd's answer (e.g. `org.freedesktop.systemd1.NoSuchUnit`).
    pub async fn start(&self, name: &str) -> Result<JobPath> {
        self.manager
            .start_unit(name.to_owned(), JOB_MODE.to_owned())
            .await
            .map(JobPath::from)
            .map_err(self.failed("StartUnit", name.to_owned()))
    }

    /// Queues a stop job for unit `name` and returns its path.
    ///
    /// # Errors
    /// [`SystemdError::Call`] with systemd's answer.
    pub async fn stop(&self, name: &str) -> Result<JobPath> {
        self.manager
            .stop_unit(name.to_owned(), JOB_MODE.to_owned())
            .await
            .map(JobPath::from)
            .map_err(self.failed("StopUnit", name.to_owned()))
    }

    /// Clears unit `name`'s failed state (`ResetFailedUnit`), so it can be unloaded or started
    /// afresh. A unit systemd has not loaded (it unloads inactive units it no longer needs) has
    /// no failed state: that is success, not `NoSuchUnit`.
    ///
    /// # Errors
    /// [`SystemdError::Call`] with systemd's answer.
    pub async fn reset_failed(&self, name: &str) -> Result<()> {
        match self.manager.reset_failed_unit(name.to_owned()).await {
            Err(zbus::Error::MethodError(error, _, _)) if error.as_str() == NO_SUCH_UNIT => Ok(()),
            other => other.map_err(self.failed("ResetFailedUnit", name.to_owned())),
        }
    }

    /// The state of the named units, read in one `ListUnitsByNames` call. A name systemd has
    /// no unit for comes back with load state `not-found` (active `inactive`, sub `dead`);
    /// names that are not valid unit names are left out.
    ///
    /// # Errors
    /// [`SystemdError::Call`] with systemd's answer.
    ///
    /// ```no_run
    /// # async fn f(systemd: agent::systemd::Systemd) -> agent::systemd::Result<()> {
    /// for unit in systemd.states(&["web.service", "db.service"]).await? {
    ///     println!("{} {} {} {}", unit.name, unit.load_state, unit.active_state, unit.sub_state);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn states(&self, names: &[impl AsRef<str>]) -> Result<Vec<UnitStatus>> {
        let names = strings(names);
        let argument = format!("{} names", names.len());
        let units = self
            .manager
            .list_units_by_names(names)
            .await
            .map_err(self.failed("ListUnitsByNames", argument))?;
        Ok(units
            .into_iter()
            .map(
                |(name, _, load_state, active_state, sub_state, ..)| UnitStatus {
                    name,
                    load_state,
                    active_state,
                    sub_state,
                },
            )
            .collect())
    }

    /// Subscribes to systemd's signals and returns the stream of [`super::Event`]s: every job
    /// that finishes and every unit whose properties change. Take it *before* queueing the
    /// jobs you want to hear about.
    ///
    /// # Errors
    /// [`SystemdError::Call`] when the match rules or `Subscribe` fail.
    pub async fn events(&self) -> Result<Events> {
        Events::subscribe(&self.address, &self.connection, &self.manager).await
    }

    fn failed(
        &self,
        method: &'static str,
        argument: String,
    ) -> impl FnOnce(zbus::Error) -> SystemdError + '_ {
        move |source| SystemdError::Call {
            address: self.address.clone(),
            method,
            argument,
            source: Box::new(source),
        }
    }
}

fn utf8_paths(paths: &[impl AsRef<Path>]) -> Result<Vec<String>> {
    paths
        .iter()
        .map(|path| {
            let path = path.as_ref();
            path.to_str()
                .map(str::to_owned)
                .ok_or_else(|| SystemdError::NonUtf8Path {
                    path: path.to_owned(),
                })
        })
        .collect()
}

fn strings(names: &[impl AsRef<str>]) -> Vec<String> {
    names.iter().map(|name| name.as_ref().to_owned()).collect()
}
