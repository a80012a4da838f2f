//! The systemd D-Bus layer: the agent's only way to make systemd load, start, stop and forget
//! units, and to learn what they are doing.
//!
//! - [`unit_path`]/[`unit_name`] (bus_path): systemd's escaping of unit names in object paths.

mod bus_path;
mod error;
mod types;

pub use bus_path::{unit_name, unit_path, UNIT_PATH_PREFIX};
pub use error::{Result, SystemdError};
pub use types::{FileChange, JobPath, UnitStatus};
