//! The systemd D-Bus layer's one error type: every message names the address of the systemd it
//! talked to, the method and its argument, and the D-Bus error name and message systemd answered
//! (zbus shows a method error as `org.freedesktop.systemd1.NoSuchUnit: Unit x.service not found.`).

use std::path::PathBuf;

/// What went wrong talking to systemd.
#[derive(Debug, thiserror::Error)]
pub enum SystemdError {
    /// Connecting or authenticating to `address` failed.
    #[error("connect to systemd at {address}: {source}")]
    Connect {
        address: String,
        #[source]
        source: Box<zbus::Error>,
    },
    /// Neither the system bus nor systemd's private socket answered.
    #[error("no system bus and no private socket: {bus}; {private}")]
    Unreachable {
        bus: Box<SystemdError>,
        private: Box<SystemdError>,
    },
    /// A method call to systemd failed.
    #[error("{method}({argument}) on systemd at {address}: {source}")]
    Call {
        address: String,
        method: &'static str,
        argument: String,
        #[source]
        source: Box<zbus::Error>,
    },
    /// A unit file path that cannot travel over D-Bus (D-Bus strings are UTF-8).
    #[error("unit file path {} is not utf-8", .path.display())]
    NonUtf8Path { path: PathBuf },
    /// Reading signals from systemd failed (the connection broke).
    #[error("signals from systemd at {address}: {source}")]
    Signals {
        address: String,
        #[source]
        source: Box<zbus::Error>,
    },
    /// The signal stream ended (the connection closed) before the awaited job finished.
    #[error("signals from systemd at {address} ended before job {job} was removed")]
    SignalsEnded { address: String, job: String },
}

/// The systemd layer's result type.
pub type Result<T, E = SystemdError> = std::result::Result<T, E>;
