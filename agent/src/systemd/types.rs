//! Plain data the systemd layer hands out: a unit's three state words, a job's object path, and
//! one change systemd made to unit-file symlinks. Free of zbus so callers need not know D-Bus.

use std::fmt;

/// A unit's state as `systemctl status` and `fleetctl list-units` show it: the three words
/// systemd reports (`loaded`/`not-found`/…, `active`/`inactive`/`failed`/…, `running`/`dead`/…).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UnitStatus {
    /// The unit's name, e.g. `web.service`.
    pub name: String,
    /// `LoadState`: `loaded`, `not-found`, `bad-setting`, `error`, `masked`, …
    pub load_state: String,
    /// `ActiveState`: `active`, `reloading`, `inactive`, `failed`, `activating`, `deactivating`.
    pub active_state: String,
    /// `SubState`, unit-type specific: `running`, `exited`, `dead`, `failed`, `auto-restart`, …
    pub sub_state: String,
}

/// The object path of a systemd job, as `StartUnit`/`StopUnit` return it and `JobRemoved`
/// names it (`/org/freedesktop/systemd1/job/1234`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobPath(String);

impl JobPath {
    /// The path as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<zbus::OwnedObjectPath> for JobPath {
    fn from(path: zbus::OwnedObjectPath) -> Self {
        Self(path.as_str().to_owned())
    }
}

impl fmt::Display for JobPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One symlink systemd created or removed for a unit-file operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    /// `symlink` or `unlink`.
    pub kind: String,
    /// The symlink, e.g. `/run/systemd/system/multi-user.target.wants/web.service`.
    pub path: String,
    /// What a new symlink points to (empty for `unlink`).
    pub target: String,
}

impl From<(String, String, String)> for FileChange {
    fn from((kind, path, target): (String, String, String)) -> Self {
        Self { kind, path, target }
    }
}
