//! Making a container (`create`, and `run`'s first step): the image's config and `run` options
//! become a record and an OCI runtime configuration in a new container directory.
//!
//! Names are claimed under the store's lock, so two concurrent `run --name N` make one
//! container: the second finds N taken and gets [`Outcome::Existing`] (run-or-start).

use std::fs;
use std::io;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use image::store::{Image, Store};

use super::networking;
use super::store::ContainerStore;
use super::ContainersError;
use crate::engine::container::{Container, MountKind, MountPoint, State, RECORD_VERSION};
use crate::engine::image_config::ImageConfig;
use crate::engine::options::{Network, RunOptions, VolumeSource};
use crate::engine::spec::{self, anonymous_volume_name, effective_user, Host, Ids, NetworkSetup};
use crate::engine::user::{numeric_user, resolve_user};
use crate::volumes::VolumeStore;

/// What `create` found or made.
#[derive(Debug)]
pub enum Outcome {
    /// A new container.
    Created(Container),
    /// `--name` was taken by this container (compare configurations: run-or-start).
    Existing(Container),
}

/// Makes a container from `options` and `image` (IMAGE as the caller resolved it in `images`),
/// unless a container of that name exists already; the image's content is read only to make
/// a new container.
pub fn create(
    data_root: &Path,
    images: &Store,
    image: &Image,
    options: &RunOptions,
    systemd: bool,
) -> Result<Outcome, ContainersError> {
    options.check()?;
    let store = ContainerStore::open(data_root)?;
    let lock = store.lock()?;
    if let Some(name) = &options.name {
        if let Some(id) = store.resolve_name(name)? {
            return Ok(Outcome::Existing(store.read(&id)?));
        }
    }
    let contents = images.contents(image)?;
    let image_config = ImageConfig::from_document(&contents.config)?;
    let mut lower: Vec<PathBuf> = contents.layers.into_iter().map(|l| l.dir).collect();
    lower.reverse();
    let user = {
        let wanted = effective_user(&image_config, options);
        match numeric_user(wanted) {
            Some(user) if !wanted.contains(|c: char| c.is_ascii_alphabetic()) => user,
            _ => resolve_user(
                &image_file(&lower, "etc/passwd")?,
                &image_file(&lower, "etc/group")?,
                wanted,
            )?,
        }
    };
    let id = new_id()?;
    let name = options
        .name
        .clone()
        .unwrap_or_else(|| crate::engine::names::generate(&id));
    let volumes = VolumeStore::open(data_root)?;
    let mut mounts = Vec::new();
    for (index, volume) in options.volumes.iter().enumerate() {
        mounts.push(match &volume.source {
            VolumeSource::Bind(path) => MountPoint {
                kind: MountKind::Bind,
                name: None,
                source: path.display().to_string(),
                destination: volume.destination.clone(),
                read_write: !volume.read_only,
                anonymous: false,
            },
            VolumeSource::Named(volume_name) => MountPoint {
                kind: MountKind::Volume,
                name: Some(volume_name.clone()),
                source: volumes
                    .ensure(volume_name, false)?
                    .mountpoint
                    .display()
                    .to_string(),
                destination: volume.destination.clone(),
                read_write: !volume.read_only,
                anonymous: false,
            },
            VolumeSource::Anonymous => {
                let volume_name = anonymous_volume_name(&id, index);
                MountPoint {
                    kind: MountKind::Volume,
                    source: volumes
                        .ensure(&volume_name, true)?
                        .mountpoint
                        .display()
                        .to_string(),
                    name: Some(volume_name),
                    destination: volume.destination.clone(),
                    read_write: !volume.read_only,
                    anonymous: true,
                }
            }
        });
    }
    let hostname = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (_, nofile_hard) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
            .unwrap_or((1024, 1024));
    let mut spec_options = options.clone();
    spec_options.user = Some(format!("{}:{}", user.uid(), user.gid()));
    let dir = store.dir(&id);
    let netns_file = dir.join(networking::NETNS_FILE);
    let network_container = networking::network_container(&store, options)?;
    let target_netns_file = network_container
        .as_ref()
        .map(|(_, target_dir)| target_dir.join(networking::NETNS_FILE));
    let link_env = networking::links_environment(&store, &name, options)?;
    let network = match (&options.network, &network_container) {
        (Network::Host, _) => NetworkSetup {
            netns: None,
            files: &dir,
            link_env: &link_env,
        },
        (Network::Container(_), Some((target, target_dir))) => NetworkSetup {
            netns: target_netns_file
                .as_deref()
                .filter(|_| target.options.network != Network::Host),
            files: target_dir,
            link_env: &link_env,
        },
        _ => NetworkSetup {
            netns: Some(&netns_file),
            files: &dir,
            link_env: &link_env,
        },
    };
    let mut spec = spec::runtime_spec(
        &image_config,
        &spec_options,
        &dir.join("rootfs"),
        &Ids {
            container_id: &id,
            name: &name,
            volumes_root: volumes.root(),
            network,
        },
        &Host {
            nofile_hard,
            hostname: &hostname,
        },
    )?;
    if let Some(process) = spec.process_mut() {
        process.set_user(user);
    }
    let args = spec
        .process()
        .as_ref()
        .and_then(|p| p.args().clone())
        .unwrap_or_default();
    let record = Container {
        version: RECORD_VERSION,
        id: id.clone(),
        name,
        created: SystemTime::now(),
        image: options.image.clone(),
        image_id: image.id.to_string(),
        options: options.clone(),
        path: args.first().cloned().unwrap_or_default(),
        args: args.iter().skip(1).cloned().collect(),
        mounts,
        state: State::default(),
        restart_count: 0,
        manually_stopped: false,
        systemd,
        stop_signal: options
            .stop_signal
            .clone()
            .or(image_config.stop_signal.clone())
            .unwrap_or_else(|| "SIGTERM".to_owned()),
        log: None,
        cgroups: None,
        endpoints: Vec::new(),
        exposed: exposed_ports(image_config.exposed_ports.as_ref())?,
        ports: Vec::new(),
    };
    store.create(&lock, &record, &spec)?;
    drop(lock);
    match networking::join(data_root, &store, &record) {
        Ok(endpoints) if endpoints.is_empty() => Ok(Outcome::Created(record)),
        Ok(endpoints) => {
            let (record, ()) = store.update(&id, |c| c.endpoints = endpoints)?;
            Ok(Outcome::Created(record))
        }
        Err(error) => {
            let _ = super::control::remove_stopped(data_root, &store, &record, true);
            Err(error.into())
        }
    }
}

/// The text of `path` (relative to the root) as the image's merged layers show it: the
/// top-most layer that has it wins; a whiteout hides it. Empty when no layer has it.
fn image_file(lower_top_first: &[PathBuf], path: &str) -> Result<String, ContainersError> {
    for layer in lower_top_first {
        let candidate = layer.join(path);
        match fs::symlink_metadata(&candidate) {
            Ok(meta) if meta.file_type().is_char_device() => return Ok(String::new()),
            Ok(meta) if meta.is_file() => {
                return fs::read_to_string(&candidate).map_err(|source| ContainersError::Io {
                    path: candidate,
                    source,
                })
            }
            Ok(_) => return Ok(String::new()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(ContainersError::Io {
                    path: candidate,
                    source,
                })
            }
        }
    }
    Ok(String::new())
}

/// The image's `ExposedPorts` keys as ports.
fn exposed_ports(
    exposed: Option<&std::collections::BTreeMap<String, crate::engine::image_config::Empty>>,
) -> Result<Vec<crate::network::ports::ContainerPort>, ContainersError> {
    let keys = exposed
        .into_iter()
        .flat_map(|map| map.keys().map(String::as_str));
    Ok(crate::network::ports::exposed_ports(keys).map_err(networking::NetworkingError::from)?)
}

/// A new random 64-hex-digit container ID.
fn new_id() -> Result<String, ContainersError> {
    crate::random::hex_id().map_err(|source| ContainersError::Io {
        path: PathBuf::from("/dev/urandom"),
        source,
    })
}
