//! The cluster's etcd registry: every read and write flotilla makes to etcd, on the key layout
//! of [`keys`], through one clonable [`Registry`] handle that fails over between endpoints and
//! counts its requests.
//!
//! - API side: units ([`Registry::create_unit`], [`Registry::set_desired_state`], …) and
//!   dynamic machine metadata;
//! - each agent: its [`Presence`] (registration under a kept-alive lease, reported states),
//!   its own assignments ([`Registry::schedule_for`]);
//! - the scheduler: [`Registry::campaign`] for the [`Leadership`], [`Registry::snapshot_cluster`]
//!   and [`Registry::watch`] to follow the cluster without gaps, [`Registry::apply`] to write
//!   assignments guarded by leadership and unit revisions.
//!
//! No other module of the agent imports `etcd_client`.

mod batch;
mod client;
mod config;
mod counters;
mod election;
mod error;
mod keepalive;
pub mod keys;
mod kv;
mod machines;
mod presence;
mod retry;
mod schedule;
mod snapshot;
mod states;
mod units;
mod watch;

pub use client::Registry;
pub use config::{Credentials, RegistryConfig, TlsFiles};
pub use counters::{RequestCounts, RequestKind};
pub use election::{Leader, Leadership};
pub use error::{RegistryError, Result, StaleUnit};
pub use keepalive::{LeaseStatus, LossCause};
pub use kv::Versioned;
pub use machines::{Machine, MachineList};
pub use presence::{Presence, StateReport};
pub use schedule::{Applied, ScheduleOp};
pub use snapshot::{ClusterSnapshot, ScheduleSnapshot};
pub use states::{StateEntry, StateFilter, StateList};
pub use units::UnitList;
pub use watch::{Change, Event, Resync, Watch, WatchUpdate};
