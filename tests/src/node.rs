//! One test node: systemd as PID 1 in its own namespaces, booted from the host image's root
//! filesystem (`os/build.sh`'s `rootfs/`, the same bits the VMs run), driven from the host with
//! `nsenter`.
//!
//! # How a node is built
//! On the host, [`Node::boot`]:
//! 1. creates the node's state directory `/tmp/flotilla-tests/<test pid>-<n>` with the overlay
//!    upper and work dirs of its root, the console log, and the node's own `/etc/machine-id`
//!    (random), `/etc/hostname` and `/etc/hosts` pre-written into the upper dir;
//! 2. mounts a private cgroup2 hierarchy at `<state>/cgroup2` and creates
//!    `flotilla-tests/<id>/node` (the node's cgroup namespace root, so nodes never share cgroups) and
//!    `flotilla-tests/<id>/launcher` (where `unshare` is parked once PID 1 exists);
//! 3. creates the network namespace `flotilla-<id>` with `lo` up and, for a node of a cluster
//!    ([`NodeConfig::network`]), a veth pair: `eth0` inside with the node's address and no default
//!    route, its host end plugged into the cluster's bridge;
//! 4. runs `flotilla-node-init enter`, which joins that cgroup and netns and execs `unshare` to create
//!    the pid/mount/uts/ipc/cgroup namespaces; PID 1 there runs `flotilla-node-init boot`, which
//!    overlays the image's tree, mounts private `/proc`, `/sys`, `/dev`, `/run` and `/tmp` in it,
//!    pivots into it and execs the image's systemd with `flotilla-node.target` (sysinit, sockets,
//!    journald, dbus) as its only goal: the image's enabled units and generators are hidden, so
//!    a test starts what it needs (the agent from the image's own `flotilla.service`);
//! 5. waits until `systemctl is-system-running` inside says `running` or `degraded`.
//!
//! The state directory stays under the host's `/tmp` but is *not* visible inside the node, nor is
//! any other file of the host's: everything the harness puts into the node goes through
//! `/proc/<pid>/root` ([`Node::root`]) into the node's upper dir. The image's tree is the overlay's
//! lower layer and must not change while nodes run (`tests/test.sh` builds it before the tests).
//! `/usr` stays writable in a node (unlike on a VM, where it is erofs) so that tests install the
//! binaries under test over the image's.
//!
//! # Teardown
//! Dropping a [`Node`] powers it off (`SIGRTMIN+4` to its systemd, `SIGKILL` after 20 s), reaps
//! `unshare`, deletes the host end of its veth and the netns, removes the cgroup directories,
//! unmounts the private cgroup2 mount and removes the state directory. Liveness is read from `/proc/<pid>/stat` (a zombie is dead), not
//! from `kill -0` (DESIGN §5).

use std::fs::{self, File, OpenOptions};
use std::io;
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::signal::{kill, Signal};
use nix::unistd::{geteuid, Pid};

use crate::error::{HarnessError, Result};
use crate::locate_binary;
use crate::os_image::os_rootfs;

/// Parent of every node's (and cluster's) state directory on the host.
pub(crate) const STATE_ROOT: &str = "/tmp/flotilla-tests";
/// Directory under the cgroup2 root holding one directory per node.
pub(crate) const CGROUP_PARENT: &str = "flotilla-tests";
/// Prefix of every node's network namespace name (`flotilla-<id>`).
pub(crate) const NETNS_PREFIX: &str = "flotilla-";
/// `PATH` for commands run inside a node.
const NODE_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";
/// How long systemd gets to power off before it is killed.
const POWEROFF_TIMEOUT: Duration = Duration::from_secs(20);
/// Lines of the console log and journal quoted in boot errors.
const CONSOLE_TAIL_LINES: usize = 30;

/// Numbers the nodes of this test process, so parallel tests never share names.
static NEXT_NODE: AtomicUsize = AtomicUsize::new(0);
/// Numbers the cgroup probes of this test process.
static NEXT_PROBE: AtomicUsize = AtomicUsize::new(0);

/// How to boot a [`Node`].
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The node's hostname (also names it in errors and journal dumps).
    pub hostname: String,
    /// How long systemd may take to reach `running` or `degraded`.
    pub boot_timeout: Duration,
    /// The node's `eth0` on a bridge; `None`: only `lo`.
    pub network: Option<NodeNetwork>,
}

/// Where a node of a cluster is plugged in: a veth pair, `eth0` in the node, the other end on the
/// host in `bridge`. The node gets no default route.
#[derive(Debug, Clone)]
pub struct NodeNetwork {
    /// The host's bridge the veth's host end joins.
    pub bridge: String,
    /// Name of the veth's host end (at most 15 bytes, unique on the host).
    pub host_veth: String,
    /// The node's address on `eth0`.
    pub address: Ipv4Addr,
    /// Prefix length of the bridge's subnet.
    pub prefix_len: u8,
    /// Entries of the node's `/etc/hosts` besides `localhost` (e.g. the other nodes).
    pub hosts: Vec<(Ipv4Addr, String)>,
}

impl NodeConfig {
    /// A node named `hostname` with the default 60 s boot timeout.
    ///
    /// ```no_run
    /// let config = flotilla_tests::NodeConfig::new("node1");
    /// ```
    pub fn new(hostname: impl Into<String>) -> Self {
        Self {
            hostname: hostname.into(),
            boot_timeout: Duration::from_secs(60),
            network: None,
        }
    }
}

/// A booted test node; see the [module docs](self) for how it is built and torn down.
#[derive(Debug)]
pub struct Node {
    hostname: String,
    /// `<test pid>-<n>`: unique among all nodes on this host.
    id: String,
    /// Written at boot: 32 lower-case hex digits.
    machine_id: String,
    network: Option<NodeNetwork>,
    /// Set once the host end of the veth exists.
    host_veth: Option<String>,
    state_dir: PathBuf,
    /// Set once the netns exists.
    netns: Option<String>,
    /// Set once the private cgroup2 hierarchy is mounted.
    cgroup_mount: Option<PathBuf>,
    /// `unshare`, our direct child.
    launcher: Option<Child>,
    /// Host pid of the node's systemd.
    pid: Option<u32>,
    boot_time: Duration,
}

/// Everything a node creates on the host, to check after teardown that nothing is left.
#[derive(Debug, Clone)]
pub struct NodeFootprint {
    /// The node's hostname.
    pub hostname: String,
    /// Host pid of the node's systemd.
    pub pid: u32,
    /// The node's state directory.
    pub state_dir: PathBuf,
    /// Name of the node's network namespace (in `/run/netns`).
    pub netns: String,
    /// The node's cgroup directory, relative to the cgroup2 root.
    pub cgroup: PathBuf,
    /// The host end of the node's veth, if it has one.
    pub host_veth: Option<String>,
}

impl Node {
    /// Boots a node and waits until its systemd is `running` or `degraded`.
    ///
    /// # Errors
    /// [`HarnessError::NotRoot`] when not root, [`HarnessError::BinaryNotFound`] when
    /// `flotilla-node-init` was not built, [`HarnessError::BootTimeout`] /
    /// [`HarnessError::NodeDied`] with the console log's tail when systemd does not come up, or the
    /// failing host command or path. Whatever was set up before the error is torn down.
    ///
    /// ```no_run
    /// let node = flotilla_tests::Node::boot(flotilla_tests::NodeConfig::new("node1")).unwrap();
    /// println!("booted in {:?}", node.boot_time());
    /// ```
    pub fn boot(config: NodeConfig) -> Result<Node> {
        let started = Instant::now();
        let euid = geteuid();
        if !euid.is_root() {
            return Err(HarnessError::NotRoot {
                euid: euid.as_raw(),
            });
        }
        let init = locate_binary("flotilla-node-init")?;
        let rootfs = os_rootfs()?;
        let id = format!(
            "{}-{}",
            std::process::id(),
            NEXT_NODE.fetch_add(1, Ordering::Relaxed)
        );
        // From here on, dropping `node` (also on `?`) removes whatever was created.
        let mut node = Node {
            hostname: config.hostname,
            state_dir: Path::new(STATE_ROOT).join(&id),
            id,
            machine_id: String::new(),
            network: config.network,
            host_veth: None,
            netns: None,
            cgroup_mount: None,
            launcher: None,
            pid: None,
            boot_time: Duration::ZERO,
        };
        node.prepare_state_dir()?;
        node.create_cgroups()?;
        node.create_netns()?;
        node.launch(&init, &rootfs)?;
        node.wait_booted(config.boot_timeout)?;
        node.boot_time = started.elapsed();
        Ok(node)
    }

    /// The node's hostname.
    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    /// The node's `/etc/machine-id`: 32 random lower-case hex digits.
    pub fn machine_id(&self) -> &str {
        &self.machine_id
    }

    /// The node's address on `eth0`; `None` for a node with only `lo`.
    pub fn address(&self) -> Option<Ipv4Addr> {
        self.network.as_ref().map(|n| n.address)
    }

    /// Host pid of the node's systemd (for `nsenter -t PID -a …` by hand).
    pub fn pid(&self) -> u32 {
        self.pid.unwrap_or_default()
    }

    /// How long [`Node::boot`] took, from the call until systemd was up.
    pub fn boot_time(&self) -> Duration {
        self.boot_time
    }

    /// The node's root directory seen from the host (`/proc/PID/root`): write files into the
    /// node here. Paths inside it must not cross absolute symlinks (they resolve on the host).
    pub fn root(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root", self.pid()))
    }

    /// What this node created on the host; [`NodeFootprint::leftovers`] checks it after drop.
    pub fn footprint(&self) -> NodeFootprint {
        NodeFootprint {
            hostname: self.hostname.clone(),
            pid: self.pid(),
            state_dir: self.state_dir.clone(),
            netns: self.netns_name(),
            cgroup: self.cgroup_rel(),
            host_veth: self.network.as_ref().map(|n| n.host_veth.clone()),
        }
    }

    /// Runs `argv` inside all of the node's namespaces (`nsenter -t PID -a`) with a clean
    /// environment, and returns its output whatever its exit status.
    ///
    /// The process stays in the host's cgroup: run programs under test as units
    /// (`systemd-run …`) instead.
    ///
    /// # Errors
    /// [`HarnessError::Spawn`] if `nsenter` cannot be run.
    pub fn exec(&self, argv: &[&str]) -> Result<Output> {
        let pid = self.pid().to_string();
        Command::new("nsenter")
            .args(["-t", &pid, "-a", "--"])
            .args(argv)
            .env_clear()
            .env("PATH", NODE_PATH)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| HarnessError::Spawn {
                place: self.place(),
                cmd: argv.join(" "),
                source,
            })
    }

    /// Like [`Node::exec`], but fails unless `argv` exits 0; returns its stdout.
    ///
    /// # Errors
    /// [`HarnessError::CommandFailed`] with the command line and its stderr.
    ///
    /// ```no_run
    /// # let node = flotilla_tests::Node::boot(flotilla_tests::NodeConfig::new("n")).unwrap();
    /// let comm = node.exec_ok(&["cat", "/proc/1/comm"]).unwrap();
    /// assert_eq!(comm.trim(), "systemd");
    /// ```
    pub fn exec_ok(&self, argv: &[&str]) -> Result<String> {
        let out = self.exec(argv)?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(HarnessError::CommandFailed {
                place: self.place(),
                cmd: argv.join(" "),
                status: out.status,
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            })
        }
    }

    /// `journalctl --no-pager ARGS…` inside the node; returns its stdout.
    ///
    /// # Errors
    /// As [`Node::exec_ok`].
    pub fn journal(&self, args: &[&str]) -> Result<String> {
        let mut argv = vec!["journalctl", "--no-pager"];
        argv.extend_from_slice(args);
        self.exec_ok(&argv)
    }

    /// Prints the node's whole journal of this boot (`journalctl -b --no-pager`) to stderr, or
    /// its console log if the journal cannot be read. [`Drop`] calls this during a panic.
    pub fn dump_journal(&self) {
        eprintln!(
            "===== journal of node {} (pid {}) =====",
            self.hostname,
            self.pid()
        );
        match self.journal(&["-b"]) {
            Ok(journal) => eprintln!("{journal}"),
            Err(e) => eprintln!(
                "{e}\n--- console log ---\n{}",
                self.console_tail(usize::MAX)
            ),
        }
        eprintln!("===== end of journal of node {} =====", self.hostname);
    }

    /// Writes `contents` to `node_path` inside the node, creating parent directories.
    ///
    /// # Errors
    /// [`HarnessError::Io`] naming the path.
    pub fn write(&self, node_path: &str, contents: &str) -> Result<()> {
        let path = self.host_path(node_path);
        create_parent(&path)?;
        fs::write(&path, contents).map_err(|source| HarnessError::Io {
            what: "write",
            path,
            source,
        })
    }

    /// Copies `host_path` to `node_path` inside the node with permission bits `mode`, replacing
    /// what was there. Below `/etc`, `/var` and `/usr` this lands in the node's overlay upper dir
    /// and never touches the host.
    ///
    /// # Errors
    /// [`HarnessError::Io`] naming the path.
    ///
    /// ```no_run
    /// # let node = flotilla_tests::Node::boot(flotilla_tests::NodeConfig::new("n")).unwrap();
    /// let bin = flotilla_tests::built_binary("flotilla");
    /// node.install(&bin, "/usr/bin/flotilla", 0o755).unwrap();
    /// ```
    pub fn install(&self, host_path: &Path, node_path: &str, mode: u32) -> Result<()> {
        let path = self.host_path(node_path);
        create_parent(&path)?;
        // Unlink first: the old file may be a running binary (ETXTBSY) or a symlink.
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(HarnessError::Io {
                    what: "replace",
                    path,
                    source,
                })
            }
        }
        fs::copy(host_path, &path).map_err(|source| HarnessError::Io {
            what: "copy to",
            path: path.clone(),
            source,
        })?;
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).map_err(|source| {
            HarnessError::Io {
                what: "chmod",
                path,
                source,
            }
        })
    }

    /// Installs `host_path` as the system generator `name`
    /// (`/usr/lib/systemd/system-generators/NAME`) and removes the boot-time mask of that name in
    /// `/run/systemd/system-generators` if the host has a generator called the same. Takes effect
    /// at the next `systemctl daemon-reload`.
    ///
    /// # Errors
    /// As [`Node::install`].
    pub fn install_generator(&self, host_path: &Path, name: &str) -> Result<()> {
        self.install(
            host_path,
            &format!("/usr/lib/systemd/system-generators/{name}"),
            0o755,
        )?;
        let mask = self.host_path(&format!("/run/systemd/system-generators/{name}"));
        match fs::remove_file(&mask) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(HarnessError::Io {
                what: "unmask",
                path: mask,
                source,
            }),
        }
    }

    /// Powers the node off and removes everything it created, reporting what could not be
    /// removed (dropping a node does the same but can only print it).
    ///
    /// # Errors
    /// [`HarnessError::Teardown`] listing the leftovers.
    pub fn shutdown(mut self) -> Result<()> {
        let leftovers = self.teardown();
        if leftovers.is_empty() {
            Ok(())
        } else {
            Err(HarnessError::Teardown {
                node: self.hostname.clone(),
                leftovers,
            })
        }
    }

    // ------------------------------------------------------------------------------ boot steps

    fn prepare_state_dir(&mut self) -> Result<()> {
        let d = &self.state_dir;
        for sub in ["root", "root.upper", "root.work"] {
            mkdirs(&d.join(sub))?;
        }
        let etc = d.join("root.upper/etc");
        mkdirs(&etc)?;
        // 32 lowercase hex digits, unique per node.
        let uuid = read(Path::new("/proc/sys/kernel/random/uuid"))?;
        self.machine_id = uuid.trim().replace('-', "");
        write_host(&etc.join("machine-id"), &format!("{}\n", self.machine_id))?;
        write_host(&etc.join("hostname"), &format!("{}\n", self.hostname))?;
        write_host(&etc.join("hosts"), &self.etc_hosts())?;
        write_host(&d.join("console.log"), "")
    }

    fn create_cgroups(&mut self) -> Result<()> {
        let mnt = self.state_dir.join("cgroup2");
        mkdirs(&mnt)?;
        mount_cgroup2(&mnt)?;
        self.cgroup_mount = Some(mnt.clone());
        mkdirs(&mnt.join(self.cgroup_rel()).join("node"))?;
        mkdirs(&mnt.join(self.cgroup_rel()).join("launcher"))
    }

    /// The node's network namespace: `lo` up and, on a bridge, `eth0` with the node's address.
    fn create_netns(&mut self) -> Result<()> {
        let name = self.netns_name();
        host_cmd(&["ip", "netns", "add", &name])?;
        self.netns = Some(name.clone());
        host_cmd(&["ip", "-n", &name, "link", "set", "lo", "up"])?;
        let Some(net) = self.network.clone() else {
            return Ok(());
        };
        let veth = net.host_veth.as_str();
        let peer = ["type", "veth", "peer", "name", "eth0", "netns", &name];
        host_cmd(&[&["ip", "link", "add", veth][..], &peer[..]].concat())?;
        self.host_veth = Some(veth.to_owned());
        host_cmd(&["ip", "link", "set", veth, "master", &net.bridge, "up"])?;
        let cidr = format!("{}/{}", net.address, net.prefix_len);
        host_cmd(&["ip", "-n", &name, "addr", "add", &cidr, "dev", "eth0"])?;
        host_cmd(&["ip", "-n", &name, "link", "set", "eth0", "up"])
    }

    fn launch(&mut self, init: &Path, rootfs: &Path) -> Result<()> {
        let console = self.state_dir.join("console.log");
        let log = OpenOptions::new()
            .append(true)
            .open(&console)
            .map_err(|source| HarnessError::Io {
                what: "open",
                path: console.clone(),
                source,
            })?;
        let log2 = log.try_clone().map_err(|source| HarnessError::Io {
            what: "open",
            path: console.clone(),
            source,
        })?;
        let cgroup = self.cgroup_dir("node");
        let args = [
            "enter".to_owned(),
            cgroup.display().to_string(),
            format!("/run/netns/{}", self.netns_name()),
            self.state_dir.display().to_string(),
            self.hostname.clone(),
            rootfs.display().to_string(),
        ];
        let child = Command::new(init)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|source| HarnessError::Spawn {
                place: "host".into(),
                cmd: format!("{} {}", init.display(), args.join(" ")),
                source,
            })?;
        let unshare = child.id();
        self.launcher = Some(child);
        // PID 1 of the node is the only child of unshare.
        let children = PathBuf::from(format!("/proc/{unshare}/task/{unshare}/children"));
        let deadline = Instant::now() + Duration::from_secs(10);
        let pid = loop {
            let first = fs::read_to_string(&children).ok().and_then(|s| {
                s.split_whitespace()
                    .next()
                    .and_then(|p| p.parse::<u32>().ok())
            });
            if let Some(pid) = first {
                break pid;
            }
            if let Some(status) = self.launcher_exit() {
                return Err(self.died(format!("unshare exited ({status}) before starting pid 1")));
            }
            if Instant::now() > deadline {
                return Err(self.died("unshare started no pid 1 within 10 s".into()));
            }
            sleep(Duration::from_millis(5));
        };
        self.pid = Some(pid);
        // Park unshare outside the node's cgroup: the node's systemd owns its cgroup tree.
        write_host(
            &self.cgroup_dir("launcher").join("cgroup.procs"),
            &unshare.to_string(),
        )
    }

    fn wait_booted(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let state = loop {
            if !alive(self.pid()) {
                return Err(self.died(format!("pid 1 ({}) exited during boot", self.pid())));
            }
            // Fails with "Failed to connect to bus" until systemd has its private socket.
            let out = self.exec(&["timeout", "10", "systemctl", "is-system-running"])?;
            let stdout = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            let state = if stdout.is_empty() {
                String::from_utf8_lossy(&out.stderr).trim().to_owned()
            } else {
                stdout
            };
            if state == "running" || state == "degraded" {
                return Ok(());
            }
            if Instant::now() > deadline {
                break state;
            }
            sleep(Duration::from_millis(20));
        };
        Err(HarnessError::BootTimeout {
            node: self.hostname.clone(),
            timeout,
            state,
            console: self.console_tail(CONSOLE_TAIL_LINES),
            journal: self
                .journal(&["-b", "-n", &CONSOLE_TAIL_LINES.to_string()])
                .unwrap_or_else(|e| e.to_string()),
        })
    }

    // ------------------------------------------------------------------------------ teardown

    /// Stops the node and removes everything it created; returns what could not be removed.
    fn teardown(&mut self) -> Vec<String> {
        let mut left = Vec::new();
        if let Some(pid) = self.pid.take() {
            if alive(pid) && !poweroff(pid, POWEROFF_TIMEOUT) {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
                if !wait_dead(pid, Duration::from_secs(5)) {
                    left.push(format!("pid 1 (host pid {pid}) survived SIGKILL"));
                }
            }
        }
        if let Some(mut child) = self.launcher.take() {
            let deadline = Instant::now() + Duration::from_secs(5);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                sleep(Duration::from_millis(10));
            }
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
        // Deleting the host end takes `eth0` with it, now rather than when the kernel gets to the
        // namespace.
        if let Some(veth) = self.host_veth.take().filter(|v| link_exists(v)) {
            if let Err(e) = host_cmd(&["ip", "link", "del", &veth]) {
                left.push(e.to_string());
            }
        }
        if let Some(ns) = self.netns.take() {
            if let Err(e) = host_cmd(&["ip", "netns", "del", &ns]) {
                left.push(e.to_string());
            }
        }
        if let Some(mnt) = self.cgroup_mount.take() {
            let dir = mnt.join(self.cgroup_rel());
            if let Err(e) = remove_cgroup_tree(&dir) {
                left.push(format!("cgroup {}: {e}", dir.display()));
            }
            // Shared by all nodes: only the last one removes it.
            let _ = fs::remove_dir(mnt.join(CGROUP_PARENT));
            if let Err(e) = umount2(&mnt, MntFlags::empty()) {
                let _ = umount2(&mnt, MntFlags::MNT_DETACH);
                left.push(format!("unmount {}: {e}", mnt.display()));
            }
        }
        if self.state_dir.exists() {
            if mounts_under(&self.state_dir).is_empty() {
                if let Err(e) = fs::remove_dir_all(&self.state_dir) {
                    left.push(format!("remove {}: {e}", self.state_dir.display()));
                }
            } else {
                left.push(format!("{} still has mounts", self.state_dir.display()));
            }
        }
        let _ = fs::remove_dir(STATE_ROOT);
        left
    }

    // ------------------------------------------------------------------------------ helpers

    fn place(&self) -> String {
        format!("node {}", self.hostname)
    }

    fn netns_name(&self) -> String {
        format!("{NETNS_PREFIX}{}", self.id)
    }

    /// `localhost`, then the network's entries or, without one, the hostname on 127.0.1.1.
    fn etc_hosts(&self) -> String {
        let mut hosts = String::from("127.0.0.1 localhost\n::1 localhost\n");
        match &self.network {
            Some(net) => {
                for (address, name) in &net.hosts {
                    hosts.push_str(&format!("{address} {name}\n"));
                }
            }
            None => hosts.push_str(&format!("127.0.1.1 {}\n", self.hostname)),
        }
        hosts
    }

    fn cgroup_rel(&self) -> PathBuf {
        Path::new(CGROUP_PARENT).join(&self.id)
    }

    fn cgroup_dir(&self, leaf: &str) -> PathBuf {
        let mnt = self.cgroup_mount.clone().unwrap_or_default();
        mnt.join(self.cgroup_rel()).join(leaf)
    }

    fn host_path(&self, node_path: &str) -> PathBuf {
        self.root().join(node_path.trim_start_matches('/'))
    }

    fn launcher_exit(&mut self) -> Option<std::process::ExitStatus> {
        self.launcher
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    fn died(&self, what: String) -> HarnessError {
        HarnessError::NodeDied {
            node: self.hostname.clone(),
            what,
            console: self.console_tail(CONSOLE_TAIL_LINES),
        }
    }

    fn console_tail(&self, lines: usize) -> String {
        let log = fs::read_to_string(self.state_dir.join("console.log")).unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if std::thread::panicking() && self.pid.is_some_and(alive) {
            self.dump_journal();
        }
        let left = self.teardown();
        if !left.is_empty() {
            eprintln!("node {}: teardown left: {}", self.hostname, left.join("; "));
        }
    }
}

impl NodeFootprint {
    /// What of this node still exists on the host: its process, state dir, mounts, netns or
    /// cgroup directory. Empty after a clean teardown.
    ///
    /// ```no_run
    /// # let node = flotilla_tests::Node::boot(flotilla_tests::NodeConfig::new("n")).unwrap();
    /// let footprint = node.footprint();
    /// drop(node);
    /// assert_eq!(footprint.leftovers(), Vec::<String>::new());
    /// ```
    pub fn leftovers(&self) -> Vec<String> {
        let mut left = Vec::new();
        if alive(self.pid) {
            left.push(format!("process {}", self.pid));
        }
        if self.state_dir.exists() {
            left.push(format!("state dir {}", self.state_dir.display()));
        }
        left.extend(
            mounts_under(&self.state_dir)
                .into_iter()
                .map(|m| format!("mount {m}")),
        );
        let ns = Path::new("/run/netns").join(&self.netns);
        if ns.exists() {
            left.push(format!("netns {}", ns.display()));
        }
        if let Some(veth) = self.host_veth.as_deref().filter(|v| link_exists(v)) {
            left.push(format!("link {veth}"));
        }
        match CgroupProbe::mount() {
            Ok(probe) if probe.root().join(&self.cgroup).exists() => {
                left.push(format!("cgroup {}", self.cgroup.display()));
            }
            Ok(_) => {}
            Err(e) => left.push(format!("cannot check cgroups: {e}")),
        }
        left
    }
}

/// A private mount of the cgroup2 hierarchy, to look into it (the host's may be elsewhere, as on
/// this hybrid host, or absent); unmounted and removed on drop. Each probe has its own mount
/// point, `probe-<pid>-<n>` in the state root, so parallel tests never unmount each other's.
#[derive(Debug)]
pub(crate) struct CgroupProbe {
    root: PathBuf,
}

impl CgroupProbe {
    pub(crate) fn mount() -> Result<CgroupProbe> {
        let n = NEXT_PROBE.fetch_add(1, Ordering::Relaxed);
        let root = Path::new(STATE_ROOT).join(format!("probe-{}-{n}", std::process::id()));
        mkdirs(&root)?;
        let probe = CgroupProbe { root };
        mount_cgroup2(&probe.root)?;
        Ok(probe)
    }

    /// Where the hierarchy's root is mounted.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }
}

impl Drop for CgroupProbe {
    fn drop(&mut self) {
        let _ = umount2(&self.root, MntFlags::empty());
        let _ = fs::remove_dir(&self.root);
        let _ = fs::remove_dir(STATE_ROOT);
    }
}

/// Whether the host has a network interface called `name`.
pub(crate) fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// Whether `pid` is running: its `/proc/PID/stat` exists and its state is not zombie/dead.
pub(crate) fn alive(pid: u32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // "pid (comm) S ...": comm may contain spaces and parentheses, the state follows the last ')'.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    !matches!(state, None | Some("Z" | "X" | "x"))
}

/// Asks the node's systemd to power off (SIGRTMIN+4) and waits until it is gone. The signal is
/// repeated: sent before systemd installed its handlers (a node torn down mid-boot), PID 1 of a pid
/// namespace ignores it.
fn poweroff(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let _ = Command::new("kill")
            .args(["-s", "RTMIN+4", &pid.to_string()])
            .stderr(Stdio::null())
            .status();
        if wait_dead(pid, Duration::from_millis(250)) {
            return true;
        }
    }
    !alive(pid)
}

fn wait_dead(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while alive(pid) {
        if Instant::now() > deadline {
            return false;
        }
        sleep(Duration::from_millis(10));
    }
    true
}

/// Mount points in this process's mount namespace at or below `dir`.
pub(crate) fn mounts_under(dir: &Path) -> Vec<String> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let dir = dir.display().to_string();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| *m == dir || m.starts_with(&format!("{dir}/")))
        .map(str::to_owned)
        .collect()
}

/// Removes a cgroup directory and its sub-cgroups, deepest first, retrying while the kernel still
/// holds exiting processes (EBUSY).
pub(crate) fn remove_cgroup_tree(dir: &Path) -> io::Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    let mut dirs = vec![dir.to_path_buf()];
    let mut i = 0;
    while i < dirs.len() {
        for e in fs::read_dir(&dirs[i])? {
            let e = e?;
            if e.file_type()?.is_dir() {
                dirs.push(e.path());
            }
        }
        i += 1;
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    for d in dirs.iter().rev() {
        loop {
            match fs::remove_dir(d) {
                Ok(()) => break,
                Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                Err(e) if Instant::now() > deadline => return Err(e),
                Err(_) => sleep(Duration::from_millis(20)),
            }
        }
    }
    Ok(())
}

fn mount_cgroup2(at: &Path) -> Result<()> {
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(Some("cgroup2"), at, Some("cgroup2"), flags, None::<&str>).map_err(|source| {
        HarnessError::Mount {
            what: "mount cgroup2 on",
            path: at.to_path_buf(),
            source,
        }
    })
}

/// Runs a command on the host; fails with its stderr unless it exits 0.
pub(crate) fn host_cmd(argv: &[&str]) -> Result<()> {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .output()
        .map_err(|source| HarnessError::Spawn {
            place: "host".into(),
            cmd: argv.join(" "),
            source,
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(HarnessError::CommandFailed {
            place: "host".into(),
            cmd: argv.join(" "),
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

fn mkdirs(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(|source| HarnessError::Io {
        what: "create",
        path: dir.to_path_buf(),
        source,
    })
}

fn create_parent(path: &Path) -> Result<()> {
    path.parent().map_or(Ok(()), mkdirs)
}

fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).map_err(|source| HarnessError::Io {
        what: "read",
        path: path.to_path_buf(),
        source,
    })
}

fn write_host(path: &Path, contents: &str) -> Result<()> {
    File::create(path)
        .and_then(|mut f| io::Write::write_all(&mut f, contents.as_bytes()))
        .map_err(|source| HarnessError::Io {
            what: "write",
            path: path.to_path_buf(),
            source,
        })
}
