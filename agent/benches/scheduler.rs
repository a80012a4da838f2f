//! `cargo bench -p agent --bench scheduler`: the elected scheduler alone against a real etcd.
//!
//! One etcd 3.4 member (Debian's, data on `/dev/shm` as in the registry tests, the only tuning),
//! 1,000 simulated machines and 10,000 units. Each simulated machine is a lightweight agent in
//! this process: it registers its `MachineRecord` with `Presence::register` under a lease of its
//! own, watches its own `schedule/<id>/` prefix and reports a `ReportedState` for each unit it is
//! assigned (no systemd). The units are created with `Registry::create_unit`, desired state
//! launched; then ONE scheduler, the agent's real `daemon::leader::run` on machine 0's lease,
//! places them. Measured:
//! - placements per second end to end: from the start of the scheduler (the units exist) until
//!   every assignment is committed in etcd (a watch of the prefix sees the last one);
//! - etcd requests per placement, from `Registry::request_counts()` of the scheduler's handle
//!   and, separately, of the simulated agents' (until every state is reported);
//! - etcd requests per second at rest once everything is placed and reported;
//! - placements per second when the scheduler already leads and the units arrive while it works
//!   (64 API clients creating them): from the first creation until the last assignment, a fresh
//!   etcd and fresh machines for it.
//!
//! It prints medians beside published anchors (Nomad's C1M, fleet's recommended size); it asserts
//! nothing about time. Options: `--runs N` (default 1), `--machines N`, `--units N`,
//! `--rest SECONDS` (default 10), `--ttl SECONDS` (machine lease TTL, default 30 as fleet's).

#[allow(dead_code)] // the bench starts a plain etcd; the TLS and failure helpers are the tests'
#[path = "../tests/etcd_cluster/mod.rs"]
mod etcd_cluster;

use flotilla_tests::bench::median;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use agent::cluster::model::{DesiredState, MachineRecord, ReportedState, UnitRecord};
use agent::daemon::leader;
use agent::registry::{
    Change, Presence, Registry, RegistryConfig, RegistryError, RequestCounts, RequestKind,
    WatchUpdate,
};
use etcd_cluster::Etcd;
use futures_util::stream::{self, StreamExt, TryStreamExt};
use tokio::task::JoinHandle;
use unitgen::unit::Unit;

/// Requests in flight while registering machines and creating units (as many API clients would).
const CONCURRENCY: usize = 64;
/// The unit every instance is made from.
const UNIT: &str = "[Service]\nExecStart=/usr/bin/sleep infinity\n";

#[derive(Clone, Copy, Debug)]
struct Options {
    runs: usize,
    machines: usize,
    units: usize,
    rest: Duration,
    ttl: Duration,
}

fn options() -> Options {
    let mut options = Options {
        runs: 1,
        machines: 1000,
        units: 10_000,
        rest: Duration::from_secs(10),
        ttl: Duration::from_secs(30),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--bench" {
            continue; // cargo bench passes it
        }
        let value: Option<u64> = args.next().and_then(|value| value.parse().ok());
        match (flag.as_str(), value) {
            ("--runs", Some(n)) => options.runs = n.max(1) as usize,
            ("--machines", Some(n)) => options.machines = n.max(1) as usize,
            ("--units", Some(n)) => options.units = n.max(1) as usize,
            ("--rest", Some(n)) => options.rest = Duration::from_secs(n.max(1)),
            ("--ttl", Some(n)) => options.ttl = Duration::from_secs(n.max(2)),
            _ => {
                eprintln!(
                    "usage: scheduler [--runs N] [--machines N] [--units N] [--rest SECONDS] \
                     [--ttl SECONDS]"
                );
                std::process::exit(2);
            }
        }
    }
    options
}

/// What one run measured.
#[derive(Debug)]
struct Sample {
    /// Scheduler start → every assignment committed.
    placed: Duration,
    /// Scheduler start → every state reported.
    reported: Duration,
    /// Requests the scheduler sent until every assignment was committed.
    scheduler: RequestCounts,
    /// Requests the simulated agents sent from the scheduler's start until every state was
    /// reported.
    agents: RequestCounts,
    /// Requests at rest, over the rest window.
    scheduler_rest: RequestCounts,
    agents_rest: RequestCounts,
    /// Setup, for context.
    registered: Duration,
    created: Duration,
}

async fn connect(etcd: &Etcd) -> Registry {
    let config = RegistryConfig {
        request_timeout: Duration::from_secs(30),
        key_prefix: "/flotilla/".to_owned(),
        ..etcd.config(etcd.endpoints())
    };
    Registry::connect(&config).await.expect("connect to etcd")
}

fn machine_id(index: usize) -> String {
    format!("{index:032x}")
}

/// A simulated machine's agent: reports a running state for each unit assigned to it, once.
async fn simulated_agent(agents: Registry, presence: Presence) {
    let (snapshot, mut watch) = agents
        .schedule_for(presence.id())
        .await
        .expect("read own schedule");
    assert!(snapshot.assignments.is_empty(), "a fresh machine");
    loop {
        let WatchUpdate::Events(events) = watch.next().await.expect("watch own schedule") else {
            panic!("the schedule watch of {} ended", presence.id());
        };
        for event in events {
            if let Change::Assignment {
                unit,
                assignment: Some(assignment),
                ..
            } = event.change
            {
                let state = ReportedState {
                    hash: assignment.hash,
                    load_state: "loaded".to_owned(),
                    active_state: "active".to_owned(),
                    sub_state: "running".to_owned(),
                    launched_revision: assignment.unit_revision,
                };
                presence.put_state(&unit, &state).await.expect("report");
            }
        }
    }
}

/// Waits until `units` assignments and `units` states exist; returns when each count was reached.
async fn observe(api: &Registry, from: i64, units: usize, start: Instant) -> [Duration; 2] {
    let mut watch = api
        .watch(api.keys().prefix(), from)
        .await
        .expect("watch the cluster");
    let (mut assigned, mut reported) = (BTreeSet::new(), BTreeSet::new());
    let mut placed = None;
    loop {
        let WatchUpdate::Events(events) = watch.next().await.expect("observe") else {
            panic!("the observing watch ended");
        };
        for event in events {
            match event.change {
                Change::Assignment {
                    machine,
                    unit,
                    assignment: Some(_),
                } => {
                    assigned.insert((machine, unit));
                }
                Change::State {
                    machine,
                    unit,
                    state: Some(_),
                } => {
                    reported.insert((machine, unit));
                }
                _ => {}
            }
        }
        if assigned.len() >= units {
            placed.get_or_insert_with(|| start.elapsed());
        }
        if let (Some(placed), true) = (placed, reported.len() >= units) {
            return [placed, start.elapsed()];
        }
    }
}

/// A fresh etcd with the simulated machines registered and running, and the handles.
struct Bench {
    /// Killed on drop.
    _etcd: Etcd,
    agents: Registry,
    scheduler: Registry,
    /// Creates the units (as the API does) and observes.
    api: Registry,
    simulated: Vec<JoinHandle<()>>,
    /// Machine 0's lease: the scheduler runs on machine 0.
    leader_lease: i64,
    registered: Duration,
}

impl Bench {
    async fn start(options: Options) -> Bench {
        let etcd = Etcd::start(1).await;
        let (agents, scheduler, api) = (
            connect(&etcd).await,
            connect(&etcd).await,
            connect(&etcd).await,
        );
        let setup = Instant::now();
        let presences: Vec<Presence> = stream::iter(0..options.machines)
            .map(|index| {
                let agents = agents.clone();
                async move {
                    let record = MachineRecord {
                        id: machine_id(index),
                        public_ip: format!(
                            "10.{}.{}.{}",
                            index >> 16,
                            (index >> 8) & 255,
                            index & 255
                        ),
                        metadata: Default::default(),
                        version: env!("CARGO_PKG_VERSION").to_owned(),
                        disable_engine: false,
                        api_address: None,
                    };
                    Presence::register(&agents, &record, options.ttl, None).await
                }
            })
            .buffered(CONCURRENCY)
            .try_collect()
            .await
            .expect("register the machines");
        let registered = setup.elapsed();
        let leader_lease = presences[0].lease();
        let simulated = presences
            .into_iter()
            .map(|presence| tokio::spawn(simulated_agent(agents.clone(), presence)))
            .collect();
        Bench {
            _etcd: etcd,
            agents,
            scheduler,
            api,
            simulated,
            leader_lease,
            registered,
        }
    }

    /// Starts the scheduler on machine 0.
    fn lead(&self) -> JoinHandle<RegistryError> {
        tokio::spawn(leader::run(
            self.scheduler.clone(),
            machine_id(0),
            self.leader_lease,
        ))
    }

    /// Creates `units` launched units, [`CONCURRENCY`] at a time; returns the last revision.
    async fn create_units(&self, units: usize) -> i64 {
        let hash = Unit::check("u@.service", "u@1.service", UNIT.as_bytes())
            .expect("a valid unit")
            .hash()
            .to_string();
        stream::iter(1..=units)
            .map(|index| {
                let (api, hash) = (self.api.clone(), hash.clone());
                async move {
                    let unit = UnitRecord {
                        name: format!("u@{index}.service"),
                        hash,
                        desired_state: DesiredState::Launched,
                        contents: UNIT.to_owned(),
                    };
                    api.create_unit(&unit).await
                }
            })
            .buffer_unordered(CONCURRENCY)
            .try_fold(0, |latest: i64, revision| async move {
                Ok(latest.max(revision))
            })
            .await
            .expect("create the units")
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        for agent in &self.simulated {
            agent.abort();
        }
    }
}

/// The units exist, then the scheduler starts; then the cluster rests.
async fn run(options: Options) -> Sample {
    let bench = Bench::start(options).await;
    let setup = Instant::now();
    let revision = bench.create_units(options.units).await;
    let created = setup.elapsed();

    let (scheduler, agents) = (&bench.scheduler, &bench.agents);
    let (scheduler_before, agents_before) = (scheduler.request_counts(), agents.request_counts());
    let start = Instant::now();
    let leading = bench.lead();
    let [placed, reported] = observe(&bench.api, revision + 1, options.units, start).await;
    let scheduler_placing = scheduler.request_counts().since(&scheduler_before);
    let agents_placing = agents.request_counts().since(&agents_before);

    tokio::time::sleep(Duration::from_secs(1)).await;
    let (scheduler_before, agents_before) = (scheduler.request_counts(), agents.request_counts());
    tokio::time::sleep(options.rest).await;
    leading.abort();
    Sample {
        placed,
        reported,
        scheduler: scheduler_placing,
        agents: agents_placing,
        scheduler_rest: scheduler.request_counts().since(&scheduler_before),
        agents_rest: agents.request_counts().since(&agents_before),
        registered: bench.registered,
        created,
    }
}

/// The scheduler leads, then the units are created ([`CONCURRENCY`] API clients): the time from
/// the first creation until every assignment is committed, and the scheduler's requests.
async fn run_arriving(options: Options) -> (Duration, RequestCounts) {
    let bench = Bench::start(options).await;
    let leading = bench.lead();
    while bench.api.leader().await.expect("read the leader").is_none() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let revision = bench.api.units().await.expect("read the units").revision;
    let before = bench.scheduler.request_counts();
    let start = Instant::now();
    let (_, [placed, _]) = tokio::join!(
        bench.create_units(options.units),
        observe(&bench.api, revision + 1, options.units, start)
    );
    let counts = bench.scheduler.request_counts().since(&before);
    leading.abort();
    (placed, counts)
}

fn median_by<T: PartialOrd>(samples: &[Sample], value: impl Fn(&Sample) -> T) -> T {
    median(samples.iter().map(value).collect())
}

/// `counts` divided by `per`: the total, then each kind that was sent, with the raw counts.
fn rates(counts: &RequestCounts, per: f64) -> String {
    let kinds: Vec<String> = RequestKind::ALL
        .iter()
        .filter(|kind| counts.get(**kind) > 0)
        .map(|kind| format!("{kind} {}", counts.get(*kind)))
        .collect();
    format!(
        "{:.4} ({} requests{}{})",
        counts.total() as f64 / per,
        counts.total(),
        if kinds.is_empty() { "" } else { ": " },
        kinds.join(", ")
    )
}

fn main() {
    let options = options();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let samples: Vec<Sample> = (0..options.runs)
        .map(|_| runtime.block_on(run(options)))
        .collect();
    let arriving: Vec<(Duration, RequestCounts)> = (0..options.runs)
        .map(|_| runtime.block_on(run_arriving(options)))
        .collect();
    // The run whose placement rate is the median is the one whose request counts are shown.
    let placed = median_by(&samples, |s| s.placed);
    let sample = samples
        .iter()
        .find(|s| s.placed == placed)
        .expect("the median run");
    let units = options.units as f64;
    let rest = options.rest.as_secs_f64();
    let expected_keepalives = options.machines as f64 * 3.0 / options.ttl.as_secs_f64();
    println!(
        "scheduler alone against etcd 3.4 (one member, data on /dev/shm): {} simulated machines, \
         {} units launched, lease TTL {:?}; median of {} run(s), this machine",
        options.machines, options.units, options.ttl, options.runs
    );
    println!(
        "  setup: machines registered in {:.2} s, units created in {:.2} s",
        median_by(&samples, |s| s.registered.as_secs_f64()),
        median_by(&samples, |s| s.created.as_secs_f64())
    );
    println!(
        "  flotilla        placements/s end to end (decided + committed): {:.0}  ({:.2} s for all; \
         every state reported after {:.2} s)",
        units / placed.as_secs_f64(),
        placed.as_secs_f64(),
        median_by(&samples, |s| s.reported.as_secs_f64())
    );
    println!(
        "  flotilla        etcd requests per placement, scheduler: {}",
        rates(&sample.scheduler, units)
    );
    println!(
        "  flotilla        etcd requests per placement, agents:    {}",
        rates(&sample.agents, units)
    );
    println!(
        "  flotilla        etcd requests/s at rest, scheduler:     {}",
        rates(&sample.scheduler_rest, rest)
    );
    println!(
        "  flotilla        etcd requests/s at rest, agents:        {}  (lease keep-alives \
         expected: {expected_keepalives:.0}/s)",
        rates(&sample.agents_rest, rest)
    );
    let arriving_placed = median(arriving.iter().map(|(time, _)| *time).collect());
    let (_, arriving_counts) = arriving
        .iter()
        .find(|(time, _)| *time == arriving_placed)
        .expect("the median run");
    println!(
        "  flotilla        placements/s with the units arriving while it leads ({CONCURRENCY} API \
         clients creating; first creation → last assignment): {:.0}  ({:.2} s)",
        units / arriving_placed.as_secs_f64(),
        arriving_placed.as_secs_f64()
    );
    println!(
        "  flotilla        etcd requests per placement then, scheduler: {}",
        rates(arriving_counts, units)
    );
    println!("  anchor, Nomad   C1M: 3,750 placements/s on five servers (published)");
    println!(
        "  anchor, fleet   recommended at most 100 machines / 1,000 units; at that size at rest \
         ~130 etcd writes/s + ~100 full-keyspace reads/s (published)"
    );
}
