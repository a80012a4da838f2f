//! Which hierarchies a container joins and which limit files get which values: a pure function of
//! the host's [`Layout`] and the spec's `linux.resources`.
//!
//! A container always joins cgroup2 (if mounted) and, for each of the memory, pids and cpu
//! controllers that cgroup2 does not offer, the v1 hierarchy holding it, limits or not: the engine
//! kills every process through these cgroups and reads OOM kills from the memory one. A limit goes
//! where its controller is, cgroup2 first. The limits are the ones the engine's spec sets:
//! - `--memory`: v1 `memory.limit_in_bytes`; v2 `memory.max`. The spec's swap (memory + swap, docker's
//!   default twice the memory) goes to v1 `memory.memsw.limit_in_bytes` / v2 `memory.swap.max`
//!   (swap alone) only where the kernel accounts swap, as docker drops it with a warning otherwise;
//! - `--cpus`: v1 `cpu.cfs_period_us` then `cpu.cfs_quota_us`; v2 `cpu.max` "quota period";
//! - `--pids-limit`: `pids.max` on both.

use std::path::PathBuf;

use oci_spec::runtime::LinuxResources;

use super::layout::{Layout, V1Hierarchy};

/// Why no plan fits this host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error(
        "cannot apply the {limit} limit: no {controller} controller on this host (not in cgroup \
         v2's cgroup.controllers and no v1 hierarchy)"
    )]
    NoController {
        limit: &'static str,
        controller: &'static str,
    },
    #[error(
        "no cgroup hierarchy to track the container: neither cgroup2 nor a v1 memory, pids or cpu \
         hierarchy is mounted"
    )]
    NoHierarchy,
}

/// The controllers every container is tracked by.
const TRACKED: [&str; 3] = ["memory", "pids", "cpu"];

/// One value written to one file of the container's cgroup directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    pub file: &'static str,
    pub value: String,
    /// Skip the write when the kernel does not provide the file.
    pub if_present: bool,
}

/// A v1 hierarchy to join and what to write in the container's directory there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Target {
    pub hierarchy: V1Hierarchy,
    pub writes: Vec<Write>,
}

/// cgroup2 to join: the controllers to enable in `cgroup.subtree_control` from its root down to
/// the container's parent, and what to write in the container's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnifiedTarget {
    pub mount_point: PathBuf,
    pub enable: Vec<&'static str>,
    pub writes: Vec<Write>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub v1: Vec<V1Target>,
    pub unified: Option<UnifiedTarget>,
}

/// One requested limit: the files it takes on either version.
struct Limit {
    /// The flag a user set, for errors.
    name: &'static str,
    controller: &'static str,
    v1: Vec<Write>,
    v2: Vec<Write>,
}

pub fn plan(layout: &Layout, resources: Option<&LinuxResources>) -> Result<Plan, PlanError> {
    let mut plan = join(layout)?;
    for limit in resources.map(limits).unwrap_or_default() {
        let controller = limit.controller;
        if let Some(unified) = plan
            .unified
            .as_mut()
            .filter(|_| on_unified(layout, controller))
        {
            unified.writes.extend(limit.v2);
        } else if let Some(target) = plan
            .v1
            .iter_mut()
            .find(|target| target.hierarchy.has(controller))
        {
            target.writes.extend(limit.v1);
        } else {
            return Err(PlanError::NoController {
                limit: limit.name,
                controller,
            });
        }
    }
    Ok(plan)
}

fn on_unified(layout: &Layout, controller: &str) -> bool {
    layout
        .unified
        .as_ref()
        .is_some_and(|unified| unified.has(controller))
}

/// The hierarchies to join, without limits.
fn join(layout: &Layout) -> Result<Plan, PlanError> {
    let unified = layout.unified.as_ref().map(|unified| UnifiedTarget {
        mount_point: unified.mount_point.clone(),
        enable: TRACKED
            .into_iter()
            .filter(|&controller| unified.has(controller))
            .collect(),
        writes: Vec::new(),
    });
    let mut v1: Vec<V1Target> = Vec::new();
    for controller in TRACKED
        .into_iter()
        .filter(|&controller| !on_unified(layout, controller))
    {
        let hierarchy = layout.v1.iter().find(|hierarchy| hierarchy.has(controller));
        if let Some(hierarchy) =
            hierarchy.filter(|&hierarchy| !v1.iter().any(|target| target.hierarchy == *hierarchy))
        {
            v1.push(V1Target {
                hierarchy: hierarchy.clone(),
                writes: Vec::new(),
            });
        }
    }
    if unified.is_none() && v1.is_empty() {
        return Err(PlanError::NoHierarchy);
    }
    Ok(Plan { v1, unified })
}

fn write(file: &'static str, value: impl ToString) -> Write {
    Write {
        file,
        value: value.to_string(),
        if_present: false,
    }
}

fn write_if_present(file: &'static str, value: impl ToString) -> Write {
    Write {
        file,
        value: value.to_string(),
        if_present: true,
    }
}

/// cgroup2 spells "no limit" `max`; the spec spells it as a negative number.
fn v2_value(value: i64) -> String {
    if value < 0 {
        "max".to_owned()
    } else {
        value.to_string()
    }
}

fn limits(resources: &LinuxResources) -> Vec<Limit> {
    let mut limits = Vec::new();
    if let Some(bytes) = resources
        .memory()
        .as_ref()
        .and_then(|memory| memory.limit())
    {
        let swap = resources.memory().as_ref().and_then(|memory| memory.swap());
        let mut v1 = vec![write("memory.limit_in_bytes", bytes)];
        let mut v2 = vec![write("memory.max", v2_value(bytes))];
        if let Some(swap) = swap {
            v1.push(write_if_present("memory.memsw.limit_in_bytes", swap));
            let swap_only = if swap < 0 || bytes < 0 {
                -1
            } else {
                swap.saturating_sub(bytes).max(0)
            };
            v2.push(write_if_present("memory.swap.max", v2_value(swap_only)));
        }
        limits.push(Limit {
            name: "--memory",
            controller: "memory",
            v1,
            v2,
        });
    }
    if let Some(cpu) = resources.cpu().as_ref().filter(|cpu| cpu.quota().is_some()) {
        let quota = cpu.quota().unwrap_or(-1);
        let mut v1 = Vec::new();
        if let Some(period) = cpu.period() {
            v1.push(write("cpu.cfs_period_us", period));
        }
        v1.push(write("cpu.cfs_quota_us", quota));
        let period = cpu.period().unwrap_or(100_000);
        let v2 = vec![write("cpu.max", format!("{} {period}", v2_value(quota)))];
        limits.push(Limit {
            name: "--cpus",
            controller: "cpu",
            v1,
            v2,
        });
    }
    if let Some(pids) = resources.pids() {
        let max = if pids.limit() > 0 {
            pids.limit().to_string()
        } else {
            "max".to_owned()
        };
        let v1 = vec![write("pids.max", &max)];
        let v2 = vec![write("pids.max", max)];
        limits.push(Limit {
            name: "--pids-limit",
            controller: "pids",
            v1,
            v2,
        });
    }
    limits
}

#[cfg(test)]
mod tests {
    use oci_spec::runtime::{
        LinuxCpuBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResourcesBuilder,
    };

    use super::super::layout::Unified;
    use super::*;

    fn v1(mount_point: &str, controllers: &[&str]) -> V1Hierarchy {
        V1Hierarchy {
            mount_point: mount_point.into(),
            controllers: controllers.iter().map(|&name| name.to_owned()).collect(),
        }
    }

    fn unified(mount_point: &str, controllers: &[&str]) -> Option<Unified> {
        Some(Unified {
            mount_point: mount_point.into(),
            controllers: controllers.iter().map(|&name| name.to_owned()).collect(),
        })
    }

    /// This machine: memory, pids and cpu on v1, cgroup2 with hugetlb only.
    fn hybrid() -> Layout {
        Layout {
            v1: vec![
                v1("/sys/fs/cgroup/cpu", &["cpu"]),
                v1("/sys/fs/cgroup/cpuacct", &["cpuacct"]),
                v1("/sys/fs/cgroup/memory", &["memory"]),
                v1("/sys/fs/cgroup/pids", &["pids"]),
            ],
            unified: unified("/sys/fs/cgroup/unified", &["hugetlb"]),
        }
    }

    fn pure_v2() -> Layout {
        Layout {
            v1: Vec::new(),
            unified: unified("/sys/fs/cgroup", &["cpuset", "cpu", "io", "memory", "pids"]),
        }
    }

    fn pure_v1() -> Layout {
        Layout {
            v1: vec![
                v1("/sys/fs/cgroup/cpu,cpuacct", &["cpu", "cpuacct"]),
                v1("/sys/fs/cgroup/memory", &["memory"]),
                v1("/sys/fs/cgroup/pids", &["pids"]),
            ],
            unified: None,
        }
    }

    /// `docker run --memory 64m --cpus 0.5 --pids-limit 100`, as the engine's spec has it.
    fn all_limits() -> LinuxResources {
        LinuxResourcesBuilder::default()
            .memory(
                LinuxMemoryBuilder::default()
                    .limit(64 << 20)
                    .swap(128 << 20)
                    .build()
                    .unwrap(),
            )
            .cpu(
                LinuxCpuBuilder::default()
                    .quota(50_000)
                    .period(100_000_u64)
                    .build()
                    .unwrap(),
            )
            .pids(LinuxPidsBuilder::default().limit(100).build().unwrap())
            .build()
            .unwrap()
    }

    /// The plan as lines a reader can check: the hierarchy joined, `+controller` enabled down to
    /// the parent, `file=value` (`file?=value` when only written if present).
    fn lines(plan: &Plan) -> Vec<String> {
        let writes = |writes: &[Write]| -> Vec<String> {
            writes
                .iter()
                .map(|write| {
                    let op = if write.if_present { "?=" } else { "=" };
                    format!("  {}{op}{}", write.file, write.value)
                })
                .collect()
        };
        let mut lines = Vec::new();
        if let Some(unified) = &plan.unified {
            let enable: Vec<String> = unified
                .enable
                .iter()
                .map(|name| format!("+{name}"))
                .collect();
            lines.push(
                format!("v2 {} {}", unified.mount_point.display(), enable.join(" "))
                    .trim_end()
                    .to_owned(),
            );
            lines.extend(writes(&unified.writes));
        }
        for target in &plan.v1 {
            lines.push(format!("v1 {}", target.hierarchy.mount_point.display()));
            lines.extend(writes(&target.writes));
        }
        lines
    }

    #[test]
    fn limits_go_where_their_controller_is() {
        let cases: [(&str, Layout, Option<LinuxResources>, &[&str]); 6] = [
            (
                "hybrid, no limits: tracked on v2 and by the v1 memory, pids and cpu hierarchies",
                hybrid(),
                None,
                &[
                    "v2 /sys/fs/cgroup/unified",
                    "v1 /sys/fs/cgroup/memory",
                    "v1 /sys/fs/cgroup/pids",
                    "v1 /sys/fs/cgroup/cpu",
                ],
            ),
            (
                "hybrid, all limits",
                hybrid(),
                Some(all_limits()),
                &[
                    "v2 /sys/fs/cgroup/unified",
                    "v1 /sys/fs/cgroup/memory",
                    "  memory.limit_in_bytes=67108864",
                    "  memory.memsw.limit_in_bytes?=134217728",
                    "v1 /sys/fs/cgroup/pids",
                    "  pids.max=100",
                    "v1 /sys/fs/cgroup/cpu",
                    "  cpu.cfs_period_us=100000",
                    "  cpu.cfs_quota_us=50000",
                ],
            ),
            (
                "pure v2, all limits",
                pure_v2(),
                Some(all_limits()),
                &[
                    "v2 /sys/fs/cgroup +memory +pids +cpu",
                    "  memory.max=67108864",
                    "  memory.swap.max?=67108864",
                    "  cpu.max=50000 100000",
                    "  pids.max=100",
                ],
            ),
            (
                "pure v2, no limits",
                pure_v2(),
                None,
                &["v2 /sys/fs/cgroup +memory +pids +cpu"],
            ),
            (
                "pure v1, co-mounted cpu,cpuacct",
                pure_v1(),
                Some(all_limits()),
                &[
                    "v1 /sys/fs/cgroup/memory",
                    "  memory.limit_in_bytes=67108864",
                    "  memory.memsw.limit_in_bytes?=134217728",
                    "v1 /sys/fs/cgroup/pids",
                    "  pids.max=100",
                    "v1 /sys/fs/cgroup/cpu,cpuacct",
                    "  cpu.cfs_period_us=100000",
                    "  cpu.cfs_quota_us=50000",
                ],
            ),
            (
                "unlimited values spelled per version",
                pure_v2(),
                Some(
                    LinuxResourcesBuilder::default()
                        .memory(
                            LinuxMemoryBuilder::default()
                                .limit(1 << 30)
                                .swap(-1)
                                .build()
                                .unwrap(),
                        )
                        .cpu(LinuxCpuBuilder::default().quota(-1).build().unwrap())
                        .pids(LinuxPidsBuilder::default().limit(0).build().unwrap())
                        .build()
                        .unwrap(),
                ),
                &[
                    "v2 /sys/fs/cgroup +memory +pids +cpu",
                    "  memory.max=1073741824",
                    "  memory.swap.max?=max",
                    "  cpu.max=max 100000",
                    "  pids.max=max",
                ],
            ),
        ];
        for (name, layout, resources, expected) in cases {
            let plan = plan(&layout, resources.as_ref()).unwrap();
            assert_eq!(lines(&plan), expected, "{name}");
        }
    }

    #[test]
    fn a_limit_without_its_controller_is_refused_by_name() {
        let mut no_memory = hybrid();
        no_memory.v1.retain(|hierarchy| !hierarchy.has("memory"));
        let error = plan(&no_memory, Some(&all_limits())).unwrap_err();
        assert_eq!(
            error.to_string(),
            "cannot apply the --memory limit: no memory controller on this host (not in cgroup \
             v2's cgroup.controllers and no v1 hierarchy)"
        );
        let only_pids = LinuxResourcesBuilder::default()
            .pids(LinuxPidsBuilder::default().limit(5).build().unwrap())
            .build()
            .unwrap();
        assert_eq!(
            plan(&no_memory, None).map(|plan| lines(&plan).len()),
            Ok(3),
            "without a memory limit the container is still tracked"
        );
        let mut no_pids = pure_v1();
        no_pids.v1.retain(|hierarchy| !hierarchy.has("pids"));
        assert_eq!(
            plan(&no_pids, Some(&only_pids)),
            Err(PlanError::NoController {
                limit: "--pids-limit",
                controller: "pids"
            })
        );
    }

    #[test]
    fn a_host_without_cgroups_cannot_track_containers() {
        assert_eq!(plan(&Layout::default(), None), Err(PlanError::NoHierarchy));
        let only_devices = Layout {
            v1: vec![v1("/sys/fs/cgroup/devices", &["devices"])],
            unified: None,
        };
        assert_eq!(plan(&only_devices, None), Err(PlanError::NoHierarchy));
    }
}
