//! The host's cgroup layout, read from `/proc/self/mountinfo`: which v1 hierarchies are mounted
//! where with which controllers, and where cgroup2 is mounted.
//!
//! Three shapes occur: pure v2 (`/sys/fs/cgroup` is cgroup2), hybrid (v1 hierarchies under
//! `/sys/fs/cgroup/<controllers>` plus cgroup2 at `/sys/fs/cgroup/unified`, usually with few or no
//! controllers) and pure v1 (no cgroup2). [`parse_mountinfo`] is pure and never fails: lines it
//! cannot read are not cgroup mounts it could use. The controllers cgroup2 offers come from its
//! root's `cgroup.controllers`, which the caller reads (a controller bound to a v1 hierarchy is
//! never listed there).

use std::path::PathBuf;

/// One mounted cgroup v1 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Hierarchy {
    /// Where it is mounted, e.g. `/sys/fs/cgroup/cpu,cpuacct`.
    pub mount_point: PathBuf,
    /// The controllers bound to it, e.g. `["cpu", "cpuacct"]`.
    pub controllers: Vec<String>,
}

impl V1Hierarchy {
    pub fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|bound| bound == controller)
    }
}

/// The mounted cgroup2 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unified {
    pub mount_point: PathBuf,
    /// Its root's `cgroup.controllers`; [`parse_mountinfo`] leaves it empty.
    pub controllers: Vec<String>,
}

impl Unified {
    pub fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|offered| offered == controller)
    }
}

/// Every cgroup hierarchy this process sees.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layout {
    /// v1 hierarchies with at least one controller (named ones such as `name=systemd` only
    /// track processes and are left out), one per set of controllers, in mountinfo order.
    pub v1: Vec<V1Hierarchy>,
    pub unified: Option<Unified>,
}

/// Mount options of a v1 cgroup mount that are not controllers.
const NOT_CONTROLLERS: [&str; 6] = [
    "rw",
    "ro",
    "noprefix",
    "clone_children",
    "xattr",
    "favordynmods",
];

/// Reads the cgroup mounts out of `/proc/<pid>/mountinfo` text (proc(5)): `id parent major:minor
/// root mount-point options [optional fields] - fstype source super-options`.
pub fn parse_mountinfo(text: &str) -> Layout {
    let mut layout = Layout::default();
    for line in text.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(separator) = fields.iter().position(|field| *field == "-") else {
            continue;
        };
        let (Some(mount_point), Some(fstype), Some(super_options)) = (
            fields.get(4).filter(|_| separator > 4),
            fields.get(separator + 1),
            fields.get(separator + 3),
        ) else {
            continue;
        };
        let mount_point = PathBuf::from(unescape(mount_point));
        match *fstype {
            "cgroup2" if layout.unified.is_none() => {
                layout.unified = Some(Unified {
                    mount_point,
                    controllers: Vec::new(),
                });
            }
            "cgroup" => {
                let controllers: Vec<String> = super_options
                    .split(',')
                    .filter(|option| !NOT_CONTROLLERS.contains(option) && !option.contains('='))
                    .map(str::to_owned)
                    .collect();
                let known = layout.v1.iter().any(|seen| seen.controllers == controllers);
                if !controllers.is_empty() && !known {
                    layout.v1.push(V1Hierarchy {
                        mount_point,
                        controllers,
                    });
                }
            }
            _ => {}
        }
    }
    layout
}

/// mountinfo escapes space, tab, newline and backslash in paths as `\ooo` octal.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let octal = bytes.get(index + 1..index + 4).filter(|digits| {
            bytes[index] == b'\\' && digits.iter().all(|digit| (b'0'..=b'7').contains(digit))
        });
        match octal.and_then(|digits| u8::from_str_radix(std::str::from_utf8(digits).ok()?, 8).ok())
        {
            Some(byte) => {
                out.push(byte);
                index += 4;
            }
            None => {
                out.push(bytes[index]);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v1(mount_point: &str, controllers: &[&str]) -> V1Hierarchy {
        V1Hierarchy {
            mount_point: mount_point.into(),
            controllers: controllers.iter().map(|&name| name.to_owned()).collect(),
        }
    }

    fn unified(mount_point: &str) -> Option<Unified> {
        Some(Unified {
            mount_point: mount_point.into(),
            controllers: Vec::new(),
        })
    }

    /// This machine (Debian 12 on Linux 6.18, hybrid), verbatim.
    const HYBRID: &str = "\
23 1 0:21 / /sys rw,nosuid,nodev,noexec,relatime - sysfs sysfs rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    /// systemd ≥ 247 default (e.g. Debian 12 installed normally), with optional fields.
    const PURE_V2: &str = "\
22 29 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
26 21 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
29 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro
";

    /// CentOS 7 style pure v1, co-mounted controllers, a bind mount of the same hierarchy.
    const PURE_V1: &str = "\
25 18 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,xattr,release_agent=/usr/lib/systemd/systemd-cgroups-agent,name=systemd
28 25 0:25 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,cpu,cpuacct
29 25 0:26 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,memory
30 25 0:27 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,pids
31 25 0:28 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,net_prio,net_cls
90 60 0:26 /docker /mnt/my\\040memory rw,relatime - cgroup cgroup rw,memory
";

    #[test]
    fn the_three_layouts() {
        let cases = [
            (
                "hybrid",
                HYBRID,
                Layout {
                    v1: vec![
                        v1("/sys/fs/cgroup/cpu", &["cpu"]),
                        v1("/sys/fs/cgroup/cpuacct", &["cpuacct"]),
                        v1("/sys/fs/cgroup/cpuset", &["cpuset"]),
                        v1("/sys/fs/cgroup/memory", &["memory"]),
                        v1("/sys/fs/cgroup/devices", &["devices"]),
                        v1("/sys/fs/cgroup/freezer", &["freezer"]),
                        v1("/sys/fs/cgroup/blkio", &["blkio"]),
                        v1("/sys/fs/cgroup/pids", &["pids"]),
                    ],
                    unified: unified("/sys/fs/cgroup/unified"),
                },
            ),
            (
                "pure v2",
                PURE_V2,
                Layout {
                    v1: Vec::new(),
                    unified: unified("/sys/fs/cgroup"),
                },
            ),
            (
                "pure v1",
                PURE_V1,
                Layout {
                    v1: vec![
                        v1("/sys/fs/cgroup/cpu,cpuacct", &["cpu", "cpuacct"]),
                        v1("/sys/fs/cgroup/memory", &["memory"]),
                        v1("/sys/fs/cgroup/pids", &["pids"]),
                        v1("/sys/fs/cgroup/net_cls,net_prio", &["net_prio", "net_cls"]),
                    ],
                    unified: None,
                },
            ),
            ("no cgroups", "", Layout::default()),
            ("garbage", "x y z\n- - -\n1 2 3 4\n", Layout::default()),
        ];
        for (name, text, expected) in cases {
            assert_eq!(parse_mountinfo(text), expected, "{name}");
        }
    }

    #[test]
    fn escaped_mount_points_are_decoded() {
        let text = "90 60 0:26 / /mnt/my\\040cgroup\\134x - cgroup2 cgroup2 rw\n";
        assert_eq!(parse_mountinfo(text).unified, unified("/mnt/my cgroup\\x"));
        assert_eq!(unescape("trailing\\04"), "trailing\\04");
    }
}
