//! The engine's stateful side: containers on disk and the processes that run them.
//!
//! [`store`] keeps each container's record and OCI configuration under the data root;
//! [`create`] makes a container from `run` options and an image; [`launch`] starts a container's
//! supervisor from the CLI and prepares each run; [`supervisor`] is that supervisor;
//! [`control`] stops, kills, waits for and removes containers; [`networking`] sets up and takes
//! down a container's network; [`notify`] speaks systemd's
//! notification protocol; [`inherited`] adopts descriptors a parent passed down; [`console`]
//! relays a container's terminal (`-t`); [`rootfs_view`] mounts a container's root file system
//! where only one reader sees it (`export`).

pub mod console;
pub mod control;
pub mod create;
pub mod inherited;
pub mod launch;
pub mod networking;
pub mod output;
pub mod rootfs_view;
pub mod store;
pub mod supervisor;
pub mod supervisor_lock;

use crate::engine;

/// Why a container operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ContainersError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Images(#[from] image::store::StoreError),
    #[error(transparent)]
    Options(#[from] engine::options::OptionsError),
    #[error(transparent)]
    Spec(#[from] engine::spec::SpecError),
    #[error(transparent)]
    User(#[from] engine::user::UserError),
    #[error(transparent)]
    ImageConfig(#[from] engine::image_config::ImageConfigError),
    #[error(transparent)]
    Runtime(#[from] crate::runtime::RuntimeError),
    #[error(transparent)]
    Cgroups(#[from] crate::runtime::cgroups::CgroupError),
    #[error(transparent)]
    Volumes(#[from] crate::volumes::VolumeError),
    #[error(transparent)]
    Log(#[from] crate::logs::driver::DriverError),
    #[error(transparent)]
    Inherited(#[from] inherited::InheritedError),
    #[error(transparent)]
    Console(#[from] console::ConsoleError),
    #[error(transparent)]
    View(#[from] rootfs_view::ViewError),
    #[error(transparent)]
    Networking(#[from] networking::NetworkingError),
    #[error("cannot set up the supervisor's signal handling: {0}")]
    Signals(nix::errno::Errno),
    #[error("cannot start the supervisor of container {id}: {source}")]
    Supervisor {
        id: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the supervisor of container {0} ended without saying whether the container started")]
    SupervisorVanished(String),
    #[error("{message}")]
    StartFailed { message: String, code: i32 },
    #[error("container {0} is running: stop it first, or use --force")]
    Running(String),
    #[error("cannot {action} container {id}: it is not running")]
    NotRunning { action: &'static str, id: String },
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ContainersError {
    /// The exit status docker's CLI gives this failure to start: 127 when the command does
    /// not exist, 126 when it cannot be run, 125 for anything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            ContainersError::StartFailed { code, .. } => *code,
            ContainersError::Runtime(crate::runtime::RuntimeError::Step(step))
                if step.step.starts_with("exec ") =>
            {
                match step.errno {
                    nix::errno::Errno::ENOENT => 127,
                    nix::errno::Errno::EACCES | nix::errno::Errno::ENOEXEC => 126,
                    _ => 125,
                }
            }
            _ => 125,
        }
    }
}
