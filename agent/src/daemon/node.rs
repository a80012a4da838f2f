//! The agent's part on its own machine: make systemd run what the scheduler assigned here, and
//! tell the cluster what systemd says of it.
//!
//! One loop: read this machine's assignments (`schedule/<self>/`) at a revision and watch them
//! from the next; read the units directory and, in one D-Bus call, systemd's state of every unit
//! concerned; plan ([`crate::node::plan`]); execute; publish each unit's state under the
//! machine's lease when it changed. Then sleep until an assignment changes or systemd signals a
//! change to one of our units (no polling). What the agent knows survives its restart: the
//! content hash is the first line of each unit file, the revision each unit was last started
//! for is in the states it published, and systemd holds the rest; so a restarted agent adopts
//! every unit without touching it.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::future::join_all;
use unitgen::unit::Unit;

use crate::cluster::model::{Assignment, ReportedState};
use crate::node::plan::{self, file_hash, render_unit_file, LocalUnit, SystemdState, Task};

use crate::registry::{
    Change, Presence, Registry, RegistryError, StateFilter, StateReport, Watch, WatchUpdate,
};
use crate::systemd::{Event, Events, JobPath, Systemd, SystemdError, UnitStatus};

/// How long a pass waits for the changes that follow the one that woke it.
const SETTLE: Duration = Duration::from_millis(20);

/// Why the node loop stopped.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// etcd.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// systemd.
    #[error(transparent)]
    Systemd(#[from] SystemdError),
    /// The units directory.
    #[error("units directory {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

type Result<T> = std::result::Result<T, NodeError>;

/// systemd's states of units, by name.
type Statuses = BTreeMap<String, UnitStatus>;

/// The agent's view of its own machine, kept across etcd sessions.
#[derive(Debug)]
pub struct NodeAgent {
    units_dir: PathBuf,
    systemd: Systemd,
    events: Events,
    /// Unit name → the hash on the first line of its file in the units directory.
    files: BTreeMap<String, String>,
    /// Unit name → the assignment revision it was last started for.
    launched: BTreeMap<String, i64>,
    /// Unit name → what was last published for it.
    published: BTreeMap<String, ReportedState>,
    /// Start jobs not finished yet: the revision is recorded as launched when they end.
    starting: BTreeMap<JobPath, (String, i64)>,
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> NodeError + '_ {
    move |source| NodeError::Io {
        path: path.to_owned(),
        source,
    }
}

impl NodeAgent {
    /// Subscribes to systemd's signals and reads the units directory (creating it).
    pub async fn new(units_dir: &Path, systemd: Systemd) -> Result<NodeAgent> {
        std::fs::create_dir_all(units_dir).map_err(io_error(units_dir))?;
        let events = systemd.events().await?;
        let mut files = BTreeMap::new();
        for entry in std::fs::read_dir(units_dir).map_err(io_error(units_dir))? {
            let entry = entry.map_err(io_error(units_dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                // A write that was cut short: never renamed into place.
                let _ = std::fs::remove_file(entry.path());
                continue;
            }
            let text = std::fs::read_to_string(entry.path()).map_err(io_error(&entry.path()))?;
            files.insert(name, file_hash(&text).unwrap_or_default().to_owned());
        }
        Ok(NodeAgent {
            units_dir: units_dir.to_owned(),
            systemd,
            events,
            files,
            launched: BTreeMap::new(),
            published: BTreeMap::new(),
            starting: BTreeMap::new(),
        })
    }

    /// Runs this machine's units for as long as `presence` holds; returns the error that ended it.
    pub async fn run(&mut self, registry: &Registry, presence: &Presence) -> NodeError {
        match self.session(registry, presence).await {
            Ok(never) => match never {},
            Err(error) => error,
        }
    }

    async fn session(
        &mut self,
        registry: &Registry,
        presence: &Presence,
    ) -> Result<std::convert::Infallible> {
        for entry in registry
            .states(StateFilter::Machine(presence.id()))
            .await?
            .states
        {
            let launched = self.launched.entry(entry.unit.clone()).or_default();
            *launched = (*launched).max(entry.state.launched_revision);
            self.published.insert(entry.unit, entry.state);
        }
        loop {
            let (snapshot, mut watch) = registry.schedule_for(presence.id()).await?;
            let mut desired = snapshot.assignments;
            loop {
                let current = self.converge(&desired).await?;
                self.publish(presence, current).await?;
                if !self.wait_for_changes(&mut watch, &mut desired).await? {
                    break;
                }
            }
        }
    }

    /// Sleeps until an assignment changes or systemd signals something, then takes in every
    /// change that follows within [`SETTLE`] of the last, so a burst (a hundred units placed at
    /// once, a unit's many property changes) is one pass with one daemon-reload. `false` when the
    /// watch asks for the assignments to be read again.
    async fn wait_for_changes(
        &mut self,
        watch: &mut Watch,
        desired: &mut BTreeMap<String, Assignment>,
    ) -> Result<bool> {
        let mut quiet_for = None;
        loop {
            let settled = async {
                match quiet_for {
                    Some(period) => tokio::time::sleep(period).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                update = watch.next() => match update? {
                    WatchUpdate::Events(events) => {
                        for event in events {
                            if let Change::Assignment { unit, assignment, .. } = event.change {
                                match assignment {
                                    Some(assignment) => desired.insert(unit, assignment),
                                    None => desired.remove(&unit),
                                };
                            }
                        }
                    }
                    WatchUpdate::Resync(why) => {
                        tracing::info!("node: reading this machine's assignments again: {why:?}");
                        return Ok(false);
                    }
                },
                event = self.events.next() => self.note(event)?,
                () = settled => return Ok(true),
            }
            quiet_for = Some(SETTLE);
        }
    }

    fn note(&mut self, event: Option<std::result::Result<Event, SystemdError>>) -> Result<()> {
        match event {
            None => Err(NodeError::Systemd(SystemdError::SignalsEnded {
                address: self.systemd.address().to_owned(),
                job: "(the signal stream)".to_owned(),
            })),
            Some(Err(error)) => Err(error.into()),
            Some(Ok(Event::JobRemoved { job, result, .. })) => {
                if let Some((unit, revision)) = self.starting.remove(&job) {
                    tracing::info!("node: start of {unit} ended: {result}");
                    self.launched.insert(unit, revision);
                }
                Ok(())
            }
            Some(Ok(Event::UnitChanged { .. })) => Ok(()),
        }
    }

    /// systemd's state of `names`, by name, in one call.
    async fn statuses(&self, names: &BTreeSet<String>) -> Result<Statuses> {
        if names.is_empty() {
            return Ok(BTreeMap::new());
        }
        let names: Vec<&String> = names.iter().collect();
        Ok(self
            .systemd
            .states(&names)
            .await?
            .into_iter()
            .map(|status| (status.name.clone(), status))
            .collect())
    }

    /// Plans from `desired` and what is here, and carries the plan out. Returns systemd's states
    /// as read when the plan was empty (still current), `None` when it changed something.
    async fn converge(
        &mut self,
        desired: &BTreeMap<String, Assignment>,
    ) -> Result<Option<Statuses>> {
        let names: BTreeSet<String> = desired.keys().chain(self.files.keys()).cloned().collect();
        let statuses = self.statuses(&names).await?;
        // A unit without a file here is not local, whatever systemd remembers of it: the plan
        // loads it.
        let current: BTreeMap<String, LocalUnit> = names
            .iter()
            .filter(|name| self.files.contains_key(*name))
            .map(|name| {
                let local = LocalUnit {
                    file_hash: self.files.get(name).filter(|h| !h.is_empty()).cloned(),
                    systemd: statuses.get(name).map(|status| SystemdState {
                        load_state: status.load_state.clone(),
                        active_state: status.active_state.clone(),
                        sub_state: status.sub_state.clone(),
                    }),
                    launched_revision: self.launched.get(name).copied().unwrap_or(0),
                };
                (name.clone(), local)
            })
            .collect();
        let tasks = plan::plan(desired, &current);
        if tasks.is_empty() {
            return Ok(Some(statuses));
        }
        for task in &tasks {
            tracing::info!("node: {task}");
        }
        // The plan runs kind by kind, in its order: unloads (their stops issued together, their
        // files removed once every stop has ended), loads (linked in one call), the reload,
        // stops, starts.
        let (mut unloads, mut loads, mut stops, mut starts) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut reload = false;
        for task in &tasks {
            match task {
                Task::Unload { unit, .. } => unloads.push(unit.as_str()),
                Task::Load { unit, .. } => loads.push(unit.as_str()),
                Task::Reload => reload = true,
                Task::Stop { unit, .. } => stops.push(unit),
                Task::Start { unit, revision, .. } => starts.push((unit, *revision)),
                Task::Record { unit, revision, .. } => {
                    self.launched.insert(unit.clone(), *revision);
                }
            }
        }
        self.unload(&unloads, &statuses).await?;
        self.load(&loads, desired).await?;
        if reload {
            self.systemd.reload().await?;
        }
        for unit in stops {
            self.systemd.stop(unit).await?;
        }
        // Every start is asked for at once: systemd queues the jobs, the answers come as they
        // may, and each job's end arrives as a signal.
        let systemd = &self.systemd;
        let jobs = join_all(starts.iter().map(|(unit, _)| systemd.start(unit))).await;
        for ((unit, revision), job) in starts.into_iter().zip(jobs) {
            match job {
                Ok(job) => {
                    self.starting.insert(job, (unit.clone(), revision));
                }
                Err(error) => {
                    tracing::warn!("node: start {unit}: {error}");
                    self.launched.insert(unit.clone(), revision);
                }
            }
        }
        Ok(None)
    }

    /// Stops `units` (those systemd knows), waits for the stops, then disables them, removes
    /// their files and resets their failed state (fleet's order: a unit file is never removed
    /// before its unit stopped, fleet's issue #1216).
    async fn unload(&mut self, units: &[&str], statuses: &Statuses) -> Result<()> {
        let mut stopping = Vec::new();
        for unit in units {
            let known = statuses.get(*unit).is_some_and(|status| {
                status.load_state != "not-found" || status.active_state != "inactive"
            });
            if !known {
                continue;
            }
            match self.systemd.stop(unit).await {
                Ok(job) => stopping.push(job),
                Err(error) => tracing::warn!("node: stop {unit}: {error}"),
            }
        }
        for job in stopping {
            let result = self.events.wait_job(&job).await?;
            if result != "done" {
                tracing::warn!("node: stop job {job} ended: {result}");
            }
        }
        let names: Vec<&str> = units
            .iter()
            .copied()
            .filter(|unit| self.files.contains_key(*unit))
            .collect();
        if names.is_empty() {
            return Ok(());
        }
        if let Err(error) = self.systemd.disable_runtime(&names).await {
            tracing::warn!("node: disable {}: {error}", names.join(" "));
        }
        for name in names {
            let path = self.units_dir.join(name);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error(&path)(e)),
            }
            self.files.remove(name);
            self.launched.remove(name);
            if let Err(error) = self.systemd.reset_failed(name).await {
                tracing::debug!("node: reset-failed {name}: {error}");
            }
        }
        Ok(())
    }

    /// Writes the files of `units` (each atomically: a temporary file renamed into place) and
    /// links them into systemd in one call; enables for this boot those with an `[Install]`
    /// section, as fleet did. A unit whose contents do not check is left out, with an error.
    async fn load(&mut self, units: &[&str], desired: &BTreeMap<String, Assignment>) -> Result<()> {
        let mut linked = Vec::new();
        let mut enabled = Vec::new();
        for &unit in units {
            let assignment = &desired[unit];
            let checked = match Unit::check(unit, unit, assignment.contents.as_bytes()) {
                Ok(checked) => checked,
                Err(diagnostics) => {
                    let problems: Vec<String> = diagnostics
                        .sorted()
                        .iter()
                        .map(ToString::to_string)
                        .collect();
                    tracing::error!("node: cannot load {unit}: {}", problems.join("; "));
                    continue;
                }
            };
            let path = self.units_dir.join(unit);
            write_atomically(
                &path,
                render_unit_file(&assignment.hash, &checked).as_bytes(),
            )?;
            self.files
                .insert((*unit).to_owned(), assignment.hash.clone());
            if checked.systemd_unit().has_section("Install") {
                enabled.push(path.clone());
            }
            linked.push(path);
        }
        if !linked.is_empty() {
            self.systemd.link_runtime(&linked).await?;
        }
        if !enabled.is_empty() {
            self.systemd.enable_runtime(&enabled).await?;
        }
        Ok(())
    }

    /// Publishes each unit's state where it changed; withdraws the states of units gone.
    /// `current` is systemd's states if they are still current (nothing was done since they
    /// were read); otherwise they are read again.
    async fn publish(&mut self, presence: &Presence, current: Option<Statuses>) -> Result<()> {
        let statuses = match current {
            Some(statuses) => statuses,
            None => {
                let names: BTreeSet<String> = self.files.keys().cloned().collect();
                self.statuses(&names).await?
            }
        };
        let mut changed = Vec::new();
        for (name, hash) in &self.files {
            let Some(status) = statuses.get(name) else {
                continue;
            };
            let state = ReportedState {
                hash: hash.clone(),
                load_state: status.load_state.clone(),
                active_state: status.active_state.clone(),
                sub_state: status.sub_state.clone(),
                launched_revision: self.launched.get(name).copied().unwrap_or(0),
            };
            if self.published.get(name) != Some(&state) {
                changed.push((name.clone(), state));
            }
        }
        let gone: Vec<String> = self
            .published
            .keys()
            .filter(|name| !self.files.contains_key(*name))
            .cloned()
            .collect();
        let reports: Vec<StateReport> = changed
            .iter()
            .map(|(unit, state)| StateReport::Put { unit, state })
            .chain(gone.iter().map(|unit| StateReport::Withdraw { unit }))
            .collect();
        presence.report(&reports).await?;
        self.published.extend(changed);
        for name in gone {
            self.published.remove(&name);
        }
        Ok(())
    }

    /// Stops and unloads every unit here, without etcd: for a machine that left the cluster, or
    /// whose lease surely expired while it was cut off (its units then run elsewhere).
    pub async fn unload_all(&mut self) -> Result<()> {
        self.converge(&BTreeMap::new()).await.map(drop)
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory, renamed into place.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let temporary = dir.join(format!(".{name}.tmp"));
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    };
    write().map_err(io_error(path))
}
