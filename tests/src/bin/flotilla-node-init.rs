//! `flotilla-node-init`: the first process of a test node, before systemd.
//!
//! [`flotilla_tests::Node::boot`] runs it in two stages:
//!
//! 1. `flotilla-node-init enter CGROUP_DIR NETNS STATE_DIR HOSTNAME` runs on the host. It starts a
//!    new session, moves itself into the node's cgroup (so that the cgroup namespace created next is
//!    rooted there), joins the node's network namespace and execs util-linux `unshare` to create the
//!    pid, mount, uts, ipc and cgroup namespaces. `unshare` forks; its child is PID 1 of the node
//!    and runs stage 2.
//! 2. `flotilla-node-init boot STATE_DIR HOSTNAME` runs as PID 1 inside the new namespaces. It sets
//!    the hostname, builds the node's filesystem (overlays on `/etc`, `/var` and `/usr`; private
//!    `/run`, `/tmp`, `/dev`; read-only `/sys` and `/proc/sys` with the node's own cgroup2 mount),
//!    hides the host's `*.wants` links and generators, writes the node's default target and execs
//!    systemd.
//!
//! Every mount happens in the node's own mount namespace (`unshare` makes all mounts private), so
//! nothing here can touch the host's `/etc`, `/var`, `/tmp` or cgroup root (DESIGN §5).

use std::ffi::OsStr;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::symlink;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, CloneFlags};
use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use nix::unistd::{getpid, sethostname, setsid};

/// The unit systemd boots instead of `default.target`.
const TARGET: &str = "flotilla-node.target";

/// Directories systemd searches for generators, lowest priority last; every generator found in them
/// at boot is masked by name in `/run/systemd/system-generators`.
const GENERATOR_DIRS: &[&str] = &[
    "/etc/systemd/system-generators",
    "/usr/local/lib/systemd/system-generators",
    "/usr/lib/systemd/system-generators",
];

/// Same for environment generators, masked in `/run/systemd/system-environment-generators`.
const ENV_GENERATOR_DIRS: &[&str] = &[
    "/etc/systemd/system-environment-generators",
    "/usr/local/lib/systemd/system-environment-generators",
    "/usr/lib/systemd/system-environment-generators",
];

/// Unit directories whose `*.wants` / `*.requires` links are removed (in the node's overlay only).
const UNIT_DIRS: &[&str] = &["/etc/systemd/system", "/usr/lib/systemd/system"];

/// A failed setup step: what was being done and why it failed.
#[derive(Debug)]
struct InitError(String);

type Result<T> = std::result::Result<T, InitError>;

fn err(what: impl std::fmt::Display, e: impl std::fmt::Display) -> InitError {
    InitError(format!("{what}: {e}"))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.get(1).map(String::as_str) {
        Some("enter") if args.len() == 6 => enter(&args[2], &args[3], &args[4], &args[5]),
        Some("boot") if args.len() == 4 => boot(Path::new(&args[2]), &args[3]),
        _ => Err(InitError(
            "usage: flotilla-node-init enter CGROUP_DIR NETNS STATE_DIR HOSTNAME \
             | boot STATE_DIR HOSTNAME"
                .into(),
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(InitError(msg)) => {
            eprintln!("flotilla-node-init: {msg}");
            ExitCode::FAILURE
        }
    }
}

/// Stage 1 (host side): join the node's cgroup and netns, then exec `unshare` for the rest.
fn enter(cgroup_dir: &str, netns: &str, state_dir: &str, hostname: &str) -> Result<()> {
    setsid().map_err(|e| err("setsid", e))?;
    let procs = Path::new(cgroup_dir).join("cgroup.procs");
    fs::write(&procs, getpid().to_string())
        .map_err(|e| err(format!("join cgroup {}", procs.display()), e))?;
    let ns = fs::File::open(netns).map_err(|e| err(format!("open netns {netns}"), e))?;
    setns(ns, CloneFlags::CLONE_NEWNET).map_err(|e| err(format!("enter netns {netns}"), e))?;
    let me = std::env::current_exe().map_err(|e| err("find own executable", e))?;
    // --kill-child: if unshare dies, the node dies with it. --mount-proc also makes every mount
    // private (unshare's default propagation), so nothing below leaks to the host.
    let e = Command::new("unshare")
        .args([
            "--cgroup",
            "--pid",
            "--fork",
            "--kill-child",
            "--mount",
            "--uts",
            "--ipc",
            "--mount-proc",
            "--",
        ])
        .arg(me)
        .args(["boot", state_dir, hostname])
        .exec();
    Err(err("exec unshare", e))
}

/// Stage 2 (PID 1 in the node): build the node's filesystem and exec systemd.
fn boot(state: &Path, hostname: &str) -> Result<()> {
    sethostname(hostname).map_err(|e| err("set hostname", e))?;
    proc_sys()?;
    sys()?;
    // /etc, /var, /usr: host content below, this node's writes above. The upper dirs live in the
    // state dir under the host's /tmp, so they must be mounted before /tmp is replaced below.
    for dir in ["etc", "var", "usr"] {
        let opts = format!(
            "lowerdir=/{dir},upperdir={up},workdir={work}",
            up = state.join(format!("{dir}.upper")).display(),
            work = state.join(format!("{dir}.work")).display(),
        );
        do_mount(
            Some("overlay"),
            &format!("/{dir}"),
            Some("overlay"),
            MsFlags::empty(),
            Some(&opts),
        )?;
    }
    dev(&state.join("console.log"))?;
    // /run and /tmp: fresh tmpfs. Detaching first drops the host's mounts there (/run/netns/*,
    // other nodes' state): a copy kept in this namespace would keep their netns alive.
    detach_under("/run")?;
    do_mount(
        Some("tmpfs"),
        "/run",
        Some("tmpfs"),
        nosuid_nodev(),
        Some("mode=755,size=256m"),
    )?;
    detach_under("/tmp")?;
    do_mount(
        Some("tmpfs"),
        "/tmp",
        Some("tmpfs"),
        nosuid_nodev(),
        Some("mode=1777,size=1g"),
    )?;
    for d in ["/run/lock", "/run/systemd/system"] {
        mkdir(d)?;
    }
    hide_wants()?;
    mask(GENERATOR_DIRS, "/run/systemd/system-generators")?;
    mask(
        ENV_GENERATOR_DIRS,
        "/run/systemd/system-environment-generators",
    )?;
    write(
        &format!("/run/systemd/system/{TARGET}"),
        &format!(
            "[Unit]\n\
             Description=flotilla test node {hostname}\n\
             Requires=sysinit.target\n\
             Wants=sockets.target systemd-journald.socket systemd-journald-dev-log.socket\n\
             Wants=systemd-journald.service dbus.socket dbus.service\n\
             After=sysinit.target sockets.target dbus.service systemd-journald.service\n\
             AllowIsolate=yes\n"
        ),
    )?;
    let e = Command::new("/lib/systemd/systemd")
        .args(["--system", &format!("--unit={TARGET}")])
        .env_clear()
        .env("container", "other")
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .exec();
    Err(err("exec /lib/systemd/systemd", e))
}

/// `/proc/sys` read-only (`kernel.*` sysctls are host-global), except this netns' `net.*`.
fn proc_sys() -> Result<()> {
    do_mount(
        Some("/proc/sys/net"),
        "/proc/sys/net",
        None,
        MsFlags::MS_BIND,
        None,
    )?;
    // Recursive, so the writable /proc/sys/net bind above stays on top.
    do_mount(
        Some("/proc/sys"),
        "/proc/sys",
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )?;
    remount_ro("/proc/sys")?;
    if Path::new("/proc/sysrq-trigger").exists() {
        do_mount(
            Some("/proc/sysrq-trigger"),
            "/proc/sysrq-trigger",
            None,
            MsFlags::MS_BIND,
            None,
        )?;
        remount_ro("/proc/sysrq-trigger")?;
    }
    Ok(())
}

/// Read-only sysfs of this netns (udev and friends skip themselves) with the node's own cgroup2
/// on top: the cgroup namespace makes its root the node's cgroup directory.
fn sys() -> Result<()> {
    detach_under("/sys")?;
    let ro = MsFlags::MS_RDONLY | nosuid_nodev() | MsFlags::MS_NOEXEC;
    do_mount(Some("sysfs"), "/sys", Some("sysfs"), ro, None)?;
    let rw = nosuid_nodev() | MsFlags::MS_NOEXEC;
    do_mount(Some("cgroup2"), "/sys/fs/cgroup", Some("cgroup2"), rw, None)
}

/// Private `/dev`: basic device nodes, own devpts, shm, and `/dev/console` = the node's log file.
fn dev(console_log: &Path) -> Result<()> {
    detach_under("/dev")?;
    do_mount(
        Some("tmpfs"),
        "/dev",
        Some("tmpfs"),
        MsFlags::MS_NOSUID,
        Some("mode=755,size=16m"),
    )?;
    let chars: &[(&str, u64, u64)] = &[
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
        ("/dev/fuse", 10, 229),
        ("/dev/net/tun", 10, 200),
    ];
    mkdir("/dev/net")?;
    for &(path, major, minor) in chars {
        mknod(
            path,
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o666),
            makedev(major, minor),
        )
        .map_err(|e| err(format!("mknod {path}"), e))?;
        // mknod's mode is filtered by the umask.
        fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o666))
            .map_err(|e| err(format!("chmod {path}"), e))?;
    }
    for d in ["/dev/pts", "/dev/shm", "/dev/mqueue"] {
        mkdir(d)?;
    }
    do_mount(
        Some("devpts"),
        "/dev/pts",
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620,gid=5"),
    )?;
    do_mount(
        Some("tmpfs"),
        "/dev/shm",
        Some("tmpfs"),
        nosuid_nodev(),
        Some("mode=1777"),
    )?;
    for (link, target) in [
        ("/dev/ptmx", "pts/ptmx"),
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
    ] {
        symlink(target, link).map_err(|e| err(format!("symlink {link}"), e))?;
    }
    write("/dev/console", "")?;
    let log = console_log
        .to_str()
        .ok_or_else(|| InitError("console log path is not utf-8".into()))?;
    do_mount(Some(log), "/dev/console", None, MsFlags::MS_BIND, None)
}

/// Remove the host's `*.wants` / `*.requires` links: only what our target lists gets started.
/// `/etc` and `/usr` are overlays here, so this only writes whiteouts into the node's upper dirs.
fn hide_wants() -> Result<()> {
    for dir in UNIT_DIRS {
        for path in entries(dir)? {
            let name = path.file_name().and_then(OsStr::to_str).unwrap_or_default();
            if path.is_dir() && (name.ends_with(".wants") || name.ends_with(".requires")) {
                fs::remove_dir_all(&path)
                    .map_err(|e| err(format!("remove {}", path.display()), e))?;
            }
        }
    }
    Ok(())
}

/// Mask every generator found in `dirs` by a `/dev/null` symlink of the same name in `mask_dir`.
fn mask(dirs: &[&str], mask_dir: &str) -> Result<()> {
    mkdir(mask_dir)?;
    for dir in dirs {
        for path in entries(dir)? {
            let Some(name) = path.file_name() else {
                continue;
            };
            let masked = Path::new(mask_dir).join(name);
            if !masked.exists() {
                symlink("/dev/null", &masked)
                    .map_err(|e| err(format!("mask {}", masked.display()), e))?;
            }
        }
    }
    Ok(())
}

/// Lazily unmount every mount at or below `dir` (deepest first), so the host's mounts there are
/// neither shown to the node's systemd nor kept alive by this namespace.
fn detach_under(dir: &str) -> Result<()> {
    let info = fs::read_to_string("/proc/self/mountinfo").map_err(|e| err("read mountinfo", e))?;
    let prefix = format!("{dir}/");
    let mut targets: Vec<String> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape)
        .filter(|t| t == dir || t.starts_with(&prefix))
        .collect();
    targets.sort_by_key(|t| std::cmp::Reverse(t.len()));
    targets.dedup();
    for t in targets {
        // A parent detached first takes its children with it: EINVAL/ENOENT are expected.
        let _ = umount2(t.as_str(), MntFlags::MNT_DETACH);
    }
    Ok(())
}

/// Undo mountinfo's octal escapes (`\040` for a space, ...).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn nosuid_nodev() -> MsFlags {
    MsFlags::MS_NOSUID | MsFlags::MS_NODEV
}

fn do_mount(
    src: Option<&str>,
    target: &str,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<()> {
    mount(src, target, fstype, flags, data)
        .map_err(|e| err(format!("mount {} on {target}", src.unwrap_or("none")), e))
}

fn remount_ro(target: &str) -> Result<()> {
    let flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY;
    mount(None::<&str>, target, None::<&str>, flags, None::<&str>)
        .map_err(|e| err(format!("remount {target} read-only"), e))
}

fn mkdir(dir: &str) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| err(format!("create {dir}"), e))
}

fn write(path: &str, content: &str) -> Result<()> {
    let mut f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(|e| err(format!("create {path}"), e))?;
    f.write_all(content.as_bytes())
        .map_err(|e| err(format!("write {path}"), e))
}

/// Entries of `dir`, or none if it does not exist.
fn entries(dir: &str) -> Result<Vec<PathBuf>> {
    match fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.map(|e| e.path()))
            .collect::<io::Result<_>>()
            .map_err(|e| err(format!("read {dir}"), e)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(err(format!("read {dir}"), e)),
    }
}
