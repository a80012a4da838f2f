//! A libvirt daemon of a test's own: Debian's monolithic `libvirtd`, in the foreground, in pid,
//! network and mount namespaces of its own, for `vagrant up` with vagrant-libvirt.
//!
//! * network: only loopback and the bridges libvirt makes (vagrant-libvirt's management network
//!   with its NAT and dnsmasq, the private network); no route out, so no packet leaves the
//!   machine and the host's interfaces and firewall are never touched;
//! * mount: `/etc` and `/var` are overlays whose upper directories are the daemon's temporary
//!   directory (its configuration, `/var/lib/libvirt/images`, logs: nothing reaches the host's),
//!   `/run` a fresh tmpfs (`/run/libvirt`, `/var/run`), `/proc` and `/sys` this namespace's;
//! * pid: a shell is PID 1 and reaps what libvirt daemonizes (dnsmasq, qemu); killing it ends
//!   every process libvirt started. It dies with the `unshare --kill-child` above it, which is
//!   killed on drop and dies with the test's thread (`setpriv --pdeathsig KILL`).
//!
//! Debian's `libvirt-daemon-system` would create the users `libvirt-qemu` and `libvirt-dnsmasq`
//! and start a daemon on the host; without it they are added to this namespace's `/etc` only.
//! qemu runs as root without a security driver or cgroups (the host's cgroup tree is left alone).
//! Commands run inside with [`Libvirtd::command`], `vagrant` with a `VAGRANT_HOME` of its own.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// PID 1 of the namespaces: private mounts, the users libvirt needs, its configuration, then
/// `libvirtd` as a child (`$1`: the daemon's directory).
const INIT: &str = r#"
set -eu
dir=$1
mount --make-rprivate /
mount -t proc proc /proc
mount -t sysfs sysfs /sys
ip link set lo up
for d in etc var; do
  mkdir -p "$dir/$d.upper" "$dir/$d.work"
  mount -t overlay overlay -o "lowerdir=/$d,upperdir=$dir/$d.upper,workdir=$dir/$d.work" "/$d"
done
mount -t tmpfs tmpfs /run
echo 'libvirt-qemu:x:64055:64055:libvirt qemu:/var/lib/libvirt:/usr/sbin/nologin' >>/etc/passwd
echo 'libvirt-dnsmasq:x:64056:64056:libvirt dnsmasq:/var/lib/libvirt/dnsmasq:/usr/sbin/nologin' >>/etc/passwd
echo 'libvirt-qemu:x:64055:' >>/etc/group
echo 'libvirt-dnsmasq:x:64056:' >>/etc/group
mkdir -p /etc/libvirt /var/lib/libvirt/images /var/log/libvirt /var/cache/libvirt /run/libvirt
printf '%s\n' 'user = "root"' 'group = "root"' 'dynamic_ownership = 0' 'security_driver = "none"' \
  'cgroup_controllers = [ ]' 'stdio_handler = "file"' >/etc/libvirt/qemu.conf
printf '%s\n' 'unix_sock_group = "root"' 'log_outputs = "2:stderr"' >/etc/libvirt/libvirtd.conf
/usr/sbin/libvirtd &
wait $!
"#;

/// How long the daemon may take to open its socket.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running `libvirtd` in namespaces of its own; everything in them is killed on drop.
#[derive(Debug)]
pub struct Libvirtd {
    unshare: Child,
    init: u32,
    dir: tempfile::TempDir,
}

impl Libvirtd {
    /// Starts the daemon and waits for its socket; panics naming what failed.
    pub fn start() -> Libvirtd {
        let dir = tempfile::tempdir().expect("temporary directory");
        let log = fs::File::create(dir.path().join("libvirtd.log")).expect("libvirtd.log");
        // setpriv: unshare dies with the test's thread, even when the test is killed
        let unshare = Command::new("setpriv")
            .args(["--pdeathsig", "KILL", "--", "unshare"])
            .args(["--pid", "--fork", "--kill-child", "--net", "--mount", "--"])
            .args(["bash", "-c", INIT, "init"])
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("libvirtd.log"))
            .stderr(log)
            .spawn()
            .expect("setpriv and unshare (util-linux) start");
        let mut daemon = Libvirtd {
            init: 0,
            unshare,
            dir,
        };
        let started = Instant::now();
        loop {
            if daemon.init == 0 {
                daemon.init = child_of(daemon.unshare.id()).unwrap_or(0);
            }
            if daemon.init != 0
                && daemon
                    .command("test")
                    .args(["-S", "/run/libvirt/libvirt-sock"])
                    .status()
                    .is_ok_and(|status| status.success())
            {
                return daemon;
            }
            if let Ok(Some(status)) = daemon.unshare.try_wait() {
                panic!("libvirtd's namespaces ended ({status}):\n{}", daemon.log());
            }
            assert!(
                started.elapsed() < START_TIMEOUT,
                "no /run/libvirt/libvirt-sock within {START_TIMEOUT:?}:\n{}",
                daemon.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `program` run in the daemon's namespaces, with `VAGRANT_HOME` in its directory.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new("nsenter");
        command
            .args([
                "-t",
                &self.init.to_string(),
                "-p",
                "-n",
                "-m",
                "--",
                program,
            ])
            .env("VAGRANT_HOME", self.dir.path().join("vagrant.d"))
            .stdin(Stdio::null());
        command
    }

    /// The daemon's directory (the upper directories of `/etc` and `/var`, its log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The daemon's log (its stderr).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("libvirtd.log")).unwrap_or_default()
    }

    /// The inode of the daemon's pid namespace (for [`processes_in`] after the daemon is gone).
    pub fn pid_namespace(&self) -> u64 {
        pid_namespace(self.init).expect("the daemon's PID 1 is alive")
    }

    /// Host pids and command names of the live (not zombie) processes in the daemon's pid
    /// namespace, its PID 1 included.
    pub fn processes(&self) -> Vec<(u32, String)> {
        processes_in(self.pid_namespace())
    }
}

/// The pid namespace inode of `pid`, if it is alive.
fn pid_namespace(pid: u32) -> Option<u64> {
    fs::metadata(format!("/proc/{pid}/ns/pid"))
        .ok()
        .map(|m| m.ino())
}

/// Live processes (pid, `comm`) whose pid namespace has inode `ns`.
pub fn processes_in(ns: u64) -> Vec<(u32, String)> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| pid_namespace(*pid) == Some(ns))
        .filter_map(|pid| {
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let (comm, rest) = stat.split_once(" (")?.1.rsplit_once(") ")?;
            (!rest.starts_with('Z')).then(|| (pid, comm.to_owned()))
        })
        .collect()
}

/// The first child of `pid` (from `/proc/PID/task/PID/children`).
fn child_of(pid: u32) -> Option<u32> {
    fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

impl Drop for Libvirtd {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("libvirtd's log:\n{}", self.log());
        }
        let ns = pid_namespace(self.init);
        let _ = self.unshare.kill();
        let _ = self.unshare.wait();
        // PID 1 got SIGKILL with unshare; the kernel kills the rest of its namespace.
        let started = Instant::now();
        while ns.is_some_and(|ns| !processes_in(ns).is_empty())
            && started.elapsed() < Duration::from_secs(10)
        {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
