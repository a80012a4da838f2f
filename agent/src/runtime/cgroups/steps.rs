//! The ordered file-system steps that make a container's cgroups from a [`Plan`]: which
//! directories are made, where controllers are enabled, where this process moves, which files
//! get which values, in what order. Pure; [`super::Cgroups::create`] carries them out.
//!
//! Two placements:
//! - **below a parent**: the container's cgroup is `<parent>/<name>` in every hierarchy of the
//!   plan, made with missing parents; on cgroup2 the controllers are enabled in
//!   `cgroup.subtree_control` from the root down to the parent. Containers started by hand go
//!   below `flotilla`; on v1 and hybrid hosts a systemd service's container goes below the
//!   service's own cgroup the same way (its cgroup2 offers no controller to enable there).
//! - **beside a systemd service's supervisor**, on a host whose controllers are all on cgroup2:
//!   the supervisor is the service's main process and sits in the service's cgroup, which systemd
//!   delegated to it (`Delegate=yes`). cgroup2's "no internal processes" rule refuses controllers
//!   in the `cgroup.subtree_control` of a cgroup holding a process (EBUSY), so, as podman and crun
//!   do with `--cgroups=split`, the supervisor first moves into the leaf `<service>/supervisor`,
//!   then the controllers are enabled in the service's cgroup only (systemd enabled them above
//!   it: those cgroups are not ours), and the container's cgroup is its sibling
//!   `<service>/<name>`. systemd removes both with the service's cgroup when the service stops.

use std::path::{Path, PathBuf};

use super::layout::Layout;
use super::plan::{Plan, Write};

/// The leaf a systemd service's supervisor moves into on cgroup2.
pub const SUPERVISOR_LEAF: &str = "supervisor";

/// Where a container's cgroup goes, as `/proc/self/cgroup` names cgroups (relative to each
/// hierarchy's root, a leading `/` allowed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parent {
    /// Below a cgroup containers share (docker's `/docker`, our `flotilla`).
    Shared(String),
    /// The cgroup of the systemd service whose main process this is (`Delegate=yes`): this
    /// process's own cgroup, or the supervisor leaf in it once it moved there.
    Service(String),
}

impl Parent {
    /// The cgroup path it names.
    pub fn cgroup(&self) -> &str {
        match self {
            Parent::Shared(path) | Parent::Service(path) => path,
        }
    }
}

/// Where the container's cgroup is, relative to each hierarchy's root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The container's cgroup.
    pub container: PathBuf,
    /// The systemd service's cgroup the supervisor moves out of, on a cgroup2-only host.
    pub service: Option<PathBuf>,
}

/// Where the container named `name` goes under `parent` on a host of this `layout`; `parent`
/// is a checked path below the root, without its leading `/`.
pub fn place(layout: &Layout, parent: &Parent, checked_parent: &Path, name: &str) -> Placement {
    let cgroup2_only = layout.v1.is_empty() && layout.unified.is_some();
    match parent {
        Parent::Service(_) if cgroup2_only => {
            let service = if checked_parent.ends_with(SUPERVISOR_LEAF) {
                checked_parent.parent().unwrap_or(Path::new(""))
            } else {
                checked_parent
            };
            Placement {
                container: service.join(name),
                service: Some(service.to_owned()),
            }
        }
        _ => Placement {
            container: checked_parent.join(name),
            service: None,
        },
    }
}

/// Which hierarchy a container's own cgroup is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hierarchy {
    Unified,
    /// A v1 hierarchy, by the name of its mount point (`memory`, `cpu,cpuacct`).
    V1(String),
}

/// One step, with absolute directories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Make a directory with its missing parents; one that exists is fine (it is shared with
    /// other containers, or an earlier run of this supervisor left it).
    MakeShared(PathBuf),
    /// Make the container's own cgroup in one hierarchy: it must not exist yet.
    MakeOwn { dir: PathBuf, hierarchy: Hierarchy },
    /// Enable the controllers not yet enabled in the directory's `cgroup.subtree_control`.
    Enable {
        dir: PathBuf,
        controllers: Vec<&'static str>,
    },
    /// Move this process into the directory (`cgroup.procs`).
    MoveSelf(PathBuf),
    /// Write one value into a file of the directory.
    Write { dir: PathBuf, write: Write },
}

/// The steps that make the container's cgroups of `plan` at `placement`, in order.
pub fn steps(plan: &Plan, placement: &Placement) -> Vec<Step> {
    let mut steps = Vec::new();
    let enable = |steps: &mut Vec<Step>, dir: PathBuf, controllers: &[&'static str]| {
        if !controllers.is_empty() {
            steps.push(Step::Enable {
                dir,
                controllers: controllers.to_vec(),
            });
        }
    };
    if let Some(unified) = &plan.unified {
        let mount_point = &unified.mount_point;
        if let Some(service) = &placement.service {
            let leaf = mount_point.join(service).join(SUPERVISOR_LEAF);
            steps.push(Step::MakeShared(leaf.clone()));
            steps.push(Step::MoveSelf(leaf));
            enable(&mut steps, mount_point.join(service), &unified.enable);
        } else {
            let mut dir = mount_point.clone();
            enable(&mut steps, dir.clone(), &unified.enable);
            for component in placement
                .container
                .parent()
                .into_iter()
                .flat_map(Path::components)
            {
                dir.push(component);
                steps.push(Step::MakeShared(dir.clone()));
                enable(&mut steps, dir.clone(), &unified.enable);
            }
        }
        let own = mount_point.join(&placement.container);
        steps.push(Step::MakeOwn {
            dir: own.clone(),
            hierarchy: Hierarchy::Unified,
        });
        steps.extend(writes(&own, &unified.writes));
    }
    for target in &plan.v1 {
        let mount_point = &target.hierarchy.mount_point;
        let own = mount_point.join(&placement.container);
        if let Some(parent) = own.parent() {
            steps.push(Step::MakeShared(parent.to_owned()));
        }
        let name = mount_point
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        steps.push(Step::MakeOwn {
            dir: own.clone(),
            hierarchy: Hierarchy::V1(name),
        });
        steps.extend(writes(&own, &target.writes));
    }
    steps
}

fn writes<'a>(dir: &'a Path, writes: &'a [Write]) -> impl Iterator<Item = Step> + 'a {
    writes.iter().map(|write| Step::Write {
        dir: dir.to_owned(),
        write: write.clone(),
    })
}

#[cfg(test)]
mod tests {
    use oci_spec::runtime::{LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResourcesBuilder};

    use super::super::layout::{Unified, V1Hierarchy};
    use super::super::plan::plan;
    use super::*;

    fn unified(mount_point: &str, controllers: &[&str]) -> Option<Unified> {
        Some(Unified {
            mount_point: mount_point.into(),
            controllers: controllers.iter().map(|&name| name.to_owned()).collect(),
        })
    }

    /// systemd's default since 247: everything on cgroup2 at /sys/fs/cgroup. The controllers
    /// are those offered where the container's cgroup goes (the caller reads the service's
    /// `cgroup.controllers` for a service).
    fn pure_v2(controllers: &[&str]) -> Layout {
        Layout {
            v1: Vec::new(),
            unified: unified("/sys/fs/cgroup", controllers),
        }
    }

    /// This machine: memory, pids and cpu on v1, cgroup2 with hugetlb only.
    fn hybrid() -> Layout {
        let v1 = |mount_point: &str, controller: &str| V1Hierarchy {
            mount_point: mount_point.into(),
            controllers: vec![controller.to_owned()],
        };
        Layout {
            v1: vec![
                v1("/sys/fs/cgroup/memory", "memory"),
                v1("/sys/fs/cgroup/pids", "pids"),
                v1("/sys/fs/cgroup/cpu", "cpu"),
            ],
            unified: unified("/sys/fs/cgroup/unified", &["hugetlb"]),
        }
    }

    /// `--memory 64m --pids-limit 100`.
    fn limits() -> oci_spec::runtime::LinuxResources {
        LinuxResourcesBuilder::default()
            .memory(
                LinuxMemoryBuilder::default()
                    .limit(64 << 20)
                    .build()
                    .unwrap(),
            )
            .pids(LinuxPidsBuilder::default().limit(100).build().unwrap())
            .build()
            .unwrap()
    }

    /// The steps as a reader checks them: `mkdir -p`, `mkdir`, `enable DIR +c`, `join DIR`
    /// (this process), `DIR/FILE=VALUE`.
    fn script(layout: &Layout, parent: Parent, with_limits: bool) -> Vec<String> {
        let checked = Path::new(parent.cgroup().trim_start_matches('/'));
        let placement = place(layout, &parent, checked, "ID");
        let resources = with_limits.then(limits);
        let plan = plan(layout, resources.as_ref()).unwrap();
        steps(&plan, &placement)
            .into_iter()
            .map(|step| match step {
                Step::MakeShared(dir) => format!("mkdir -p {}", dir.display()),
                Step::MakeOwn { dir, hierarchy } => {
                    format!("mkdir {} ({hierarchy:?})", dir.display())
                }
                Step::Enable { dir, controllers } => {
                    format!("enable {} +{}", dir.display(), controllers.join(" +"))
                }
                Step::MoveSelf(dir) => format!("join {}", dir.display()),
                Step::Write { dir, write } => {
                    format!("{}/{}={}", dir.display(), write.file, write.value)
                }
            })
            .collect()
    }

    const SERVICE: &str = "/system.slice/web.service";

    #[test]
    fn a_service_on_cgroup2_moves_its_supervisor_into_a_leaf_before_enabling_controllers() {
        assert_eq!(
            script(
                &pure_v2(&["cpu", "memory", "pids"]),
                Parent::Service(SERVICE.into()),
                true
            ),
            [
                "mkdir -p /sys/fs/cgroup/system.slice/web.service/supervisor",
                "join /sys/fs/cgroup/system.slice/web.service/supervisor",
                "enable /sys/fs/cgroup/system.slice/web.service +memory +pids +cpu",
                "mkdir /sys/fs/cgroup/system.slice/web.service/ID (Unified)",
                "/sys/fs/cgroup/system.slice/web.service/ID/memory.max=67108864",
                "/sys/fs/cgroup/system.slice/web.service/ID/pids.max=100",
            ]
        );
    }

    #[test]
    fn a_supervisor_already_in_its_leaf_keeps_the_same_layout() {
        let again = script(
            &pure_v2(&["memory", "pids"]),
            Parent::Service(format!("{SERVICE}/supervisor")),
            false,
        );
        assert_eq!(
            again,
            [
                "mkdir -p /sys/fs/cgroup/system.slice/web.service/supervisor",
                "join /sys/fs/cgroup/system.slice/web.service/supervisor",
                "enable /sys/fs/cgroup/system.slice/web.service +memory +pids",
                "mkdir /sys/fs/cgroup/system.slice/web.service/ID (Unified)",
            ]
        );
    }

    #[test]
    fn without_controllers_the_layout_is_the_same_and_nothing_is_enabled() {
        // A test node: its cgroup2 offers no controller at all.
        assert_eq!(
            script(&pure_v2(&[]), Parent::Service(SERVICE.into()), false),
            [
                "mkdir -p /sys/fs/cgroup/system.slice/web.service/supervisor",
                "join /sys/fs/cgroup/system.slice/web.service/supervisor",
                "mkdir /sys/fs/cgroup/system.slice/web.service/ID (Unified)",
            ]
        );
    }

    #[test]
    fn a_shared_parent_on_cgroup2_is_enabled_from_the_root_down() {
        assert_eq!(
            script(
                &pure_v2(&["memory", "pids"]),
                Parent::Shared("flotilla".into()),
                true
            ),
            [
                "enable /sys/fs/cgroup +memory +pids",
                "mkdir -p /sys/fs/cgroup/flotilla",
                "enable /sys/fs/cgroup/flotilla +memory +pids",
                "mkdir /sys/fs/cgroup/flotilla/ID (Unified)",
                "/sys/fs/cgroup/flotilla/ID/memory.max=67108864",
                "/sys/fs/cgroup/flotilla/ID/pids.max=100",
            ]
        );
    }

    #[test]
    fn a_service_on_a_hybrid_host_keeps_its_supervisor_where_it_is() {
        assert_eq!(
            script(&hybrid(), Parent::Service(SERVICE.into()), true),
            [
                "mkdir -p /sys/fs/cgroup/unified/system.slice",
                "mkdir -p /sys/fs/cgroup/unified/system.slice/web.service",
                "mkdir /sys/fs/cgroup/unified/system.slice/web.service/ID (Unified)",
                "mkdir -p /sys/fs/cgroup/memory/system.slice/web.service",
                "mkdir /sys/fs/cgroup/memory/system.slice/web.service/ID (V1(\"memory\"))",
                "/sys/fs/cgroup/memory/system.slice/web.service/ID/memory.limit_in_bytes=67108864",
                "mkdir -p /sys/fs/cgroup/pids/system.slice/web.service",
                "mkdir /sys/fs/cgroup/pids/system.slice/web.service/ID (V1(\"pids\"))",
                "/sys/fs/cgroup/pids/system.slice/web.service/ID/pids.max=100",
                "mkdir -p /sys/fs/cgroup/cpu/system.slice/web.service",
                "mkdir /sys/fs/cgroup/cpu/system.slice/web.service/ID (V1(\"cpu\"))",
            ]
        );
    }
}
