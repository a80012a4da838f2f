//! The systemd D-Bus layer: the agent's only way to make systemd load, start, stop and forget
//! units, and to learn what they are doing. Async, on zbus with the generated
//! `org.freedesktop.systemd1` proxies of `zbus_systemd`; no `systemctl` subprocess.
//!
//! - [`Systemd`] (client): connect (system bus, or systemd's private socket as root), unit-file
//!   symlinks in `/run/systemd/system`, `daemon-reload`, start/stop jobs, `reset-failed`, and
//!   the state of many units in one call ([`UnitStatus`]).
//! - [`Events`] (events): `JobRemoved` and unit `PropertiesChanged` signals through two match
//!   rules, in the order systemd sent them; [`Events::wait_job`] waits for one job.
//! - [`unit_path`]/[`unit_name`] (bus_path): systemd's escaping of unit names in object paths.
//!
//! fleet's mistakes avoided here (reference-fleet.md §3.4, §7): no `GetUnitProperties` call per
//! unit, no 1-second polling, no property cache that goes stale (every proxy is built with
//! `CacheProperties::No`).

mod bus_path;
mod client;
mod error;
mod events;
mod private_socket;
mod types;

pub use bus_path::{unit_name, unit_path, UNIT_PATH_PREFIX};
pub use client::{Systemd, PRIVATE_SOCKET};
pub use error::{Result, SystemdError};
pub use events::{Event, Events};
pub use types::{FileChange, JobPath, UnitStatus};
