//! `flotilla-node-init`: the first process of a test node, before systemd.
//!
//! [`flotilla_tests::Node::boot`] runs it in two stages:
//!
//! 1. `flotilla-node-init enter CGROUP_DIR NETNS STATE_DIR HOSTNAME ROOTFS` runs on the host. It
//!    starts a new session, moves itself into the node's cgroup (so that the cgroup namespace created
//!    next is rooted there), joins the node's network namespace and execs util-linux `unshare` to
//!    create the pid, mount, uts, ipc and cgroup namespaces. `unshare` forks; its child is PID 1 of
//!    the node and runs stage 2.
//! 2. `flotilla-node-init boot STATE_DIR HOSTNAME ROOTFS` runs as PID 1 inside the new namespaces.
//!    It sets the hostname and builds the node's root at `STATE_DIR/root`: an overlay of the host
//!    image's root filesystem `ROOTFS` (`os/build.sh`'s `rootfs/`, the bits the VMs boot) with this
//!    node's writes in `STATE_DIR/root.upper`; inside it fresh `/proc` (read-only `/proc/sys` but
//!    this netns' `net.*`), read-only `/sys` with the node's own cgroup2 mount, and private `/dev`,
//!    `/run` and `/tmp`. It hides the image's `*.wants` links and generators, writes the node's
//!    default target, pivots into the new root, detaches the host's tree and execs the image's
//!    systemd.
//!
//! Every mount happens in the node's own mount namespace (`unshare` makes all mounts private), and
//! after the pivot the node sees nothing of the host's file systems, so nothing here can touch the
//! host's `/etc`, `/var`, `/tmp` or cgroup root (DESIGN §5).

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
use nix::unistd::{chdir, getpid, pivot_root, sethostname, setsid};

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
        Some("enter") if args.len() == 7 => enter(&args[2], &args[3], &args[4], &args[5], &args[6]),
        Some("boot") if args.len() == 5 => boot(Path::new(&args[2]), &args[3], Path::new(&args[4])),
        _ => Err(InitError(
            "usage: flotilla-node-init enter CGROUP_DIR NETNS STATE_DIR HOSTNAME ROOTFS \
             | boot STATE_DIR HOSTNAME ROOTFS"
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
fn enter(
    cgroup_dir: &str,
    netns: &str,
    state_dir: &str,
    hostname: &str,
    rootfs: &str,
) -> Result<()> {
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
        .args(["boot", state_dir, hostname, rootfs])
        .exec();
    Err(err("exec unshare", e))
}

/// Stage 2 (PID 1 in the node): build the node's root over the image's, pivot into it and exec
/// systemd.
fn boot(state: &Path, hostname: &str, rootfs: &Path) -> Result<()> {
    sethostname(hostname).map_err(|e| err("set hostname", e))?;
    let root = state.join("root");
    overlay_root(state, rootfs, &root)?;
    let at = |path: &str| root.join(path.trim_start_matches('/'));
    do_mount(
        Some("proc"),
        &at("/proc"),
        Some("proc"),
        nosuid_nodev() | MsFlags::MS_NOEXEC,
        None,
    )?;
    proc_sys(&at("/proc"))?;
    sys(&at("/sys"))?;
    dev(&at("/dev"), &state.join("console.log"))?;
    do_mount(
        Some("tmpfs"),
        &at("/run"),
        Some("tmpfs"),
        nosuid_nodev(),
        Some("mode=755,size=256m"),
    )?;
    do_mount(
        Some("tmpfs"),
        &at("/tmp"),
        Some("tmpfs"),
        nosuid_nodev(),
        Some("mode=1777,size=1g"),
    )?;
    for d in ["/run/lock", "/run/systemd/system"] {
        mkdir(&at(d))?;
    }
    hide_wants(&root)?;
    mask(&root, GENERATOR_DIRS, "/run/systemd/system-generators")?;
    mask(
        &root,
        ENV_GENERATOR_DIRS,
        "/run/systemd/system-environment-generators",
    )?;
    write(
        &at(&format!("/run/systemd/system/{TARGET}")),
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
    pivot_into(&root)?;
    let e = Command::new("/lib/systemd/systemd")
        .args(["--system", &format!("--unit={TARGET}")])
        .env_clear()
        .env("container", "other")
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .exec();
    Err(err("exec the image's /lib/systemd/systemd", e))
}

/// The node's root at `root`: the image's tree read-only below, this node's writes in
/// `STATE/root.upper`. The image's tree must not change while nodes run (overlayfs forbids
/// changing a lower layer under a mount); `Node::boot` checked that it is one.
fn overlay_root(state: &Path, rootfs: &Path, root: &Path) -> Result<()> {
    let dirs = [
        rootfs.to_path_buf(),
        state.join("root.upper"),
        state.join("root.work"),
    ];
    if let Some(bad) = dirs
        .iter()
        .find(|d| d.to_string_lossy().contains([',', ':']))
    {
        return Err(InitError(format!(
            "{}: overlayfs options cannot hold ',' or ':'",
            bad.display()
        )));
    }
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        dirs[0].display(),
        dirs[1].display(),
        dirs[2].display()
    );
    do_mount(
        Some("overlay"),
        root,
        Some("overlay"),
        MsFlags::empty(),
        Some(&opts),
    )
}

/// Makes `root` the root of this mount namespace and drops the host's tree under it.
fn pivot_into(root: &Path) -> Result<()> {
    chdir(root).map_err(|e| err(format!("chdir {}", root.display()), e))?;
    // pivot_root(".", "."): the old root ends up stacked on ".", and is detached right away.
    pivot_root(".", ".").map_err(|e| err(format!("pivot_root into {}", root.display()), e))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| err("detach the host's root", e))?;
    chdir("/").map_err(|e| err("chdir /", e))
}

/// `/proc/sys` read-only (`kernel.*` sysctls are host-global), except this netns' `net.*`.
fn proc_sys(proc: &Path) -> Result<()> {
    let sys = proc.join("sys");
    let net = sys.join("net");
    do_mount(Some(&net), &net, None, MsFlags::MS_BIND, None)?;
    // Recursive, so the writable /proc/sys/net bind above stays on top.
    do_mount(
        Some(&sys),
        &sys,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )?;
    remount_ro(&sys)?;
    let sysrq = proc.join("sysrq-trigger");
    if sysrq.exists() {
        do_mount(Some(&sysrq), &sysrq, None, MsFlags::MS_BIND, None)?;
        remount_ro(&sysrq)?;
    }
    Ok(())
}

/// Read-only sysfs of this netns (udev and friends skip themselves) with the node's own cgroup2
/// on top: the cgroup namespace makes its root the node's cgroup directory.
fn sys(sys: &Path) -> Result<()> {
    let ro = MsFlags::MS_RDONLY | nosuid_nodev() | MsFlags::MS_NOEXEC;
    do_mount(Some("sysfs"), sys, Some("sysfs"), ro, None)?;
    let rw = nosuid_nodev() | MsFlags::MS_NOEXEC;
    do_mount(
        Some("cgroup2"),
        &sys.join("fs/cgroup"),
        Some("cgroup2"),
        rw,
        None,
    )
}

/// Private `/dev`: basic device nodes, own devpts, shm, and `/dev/console` = the node's log file.
fn dev(dev: &Path, console_log: &Path) -> Result<()> {
    do_mount(
        Some("tmpfs"),
        dev,
        Some("tmpfs"),
        MsFlags::MS_NOSUID,
        Some("mode=755,size=16m"),
    )?;
    let chars: &[(&str, u64, u64)] = &[
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
        ("fuse", 10, 229),
        ("net/tun", 10, 200),
    ];
    mkdir(&dev.join("net"))?;
    for &(name, major, minor) in chars {
        let path = dev.join(name);
        mknod(
            &path,
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o666),
            makedev(major, minor),
        )
        .map_err(|e| err(format!("mknod {}", path.display()), e))?;
        // mknod's mode is filtered by the umask.
        fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o666))
            .map_err(|e| err(format!("chmod {}", path.display()), e))?;
    }
    for d in ["pts", "shm", "mqueue"] {
        mkdir(&dev.join(d))?;
    }
    do_mount(
        Some("devpts"),
        &dev.join("pts"),
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620,gid=5"),
    )?;
    do_mount(
        Some("tmpfs"),
        &dev.join("shm"),
        Some("tmpfs"),
        nosuid_nodev(),
        Some("mode=1777"),
    )?;
    for (link, target) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        let link = dev.join(link);
        symlink(target, &link).map_err(|e| err(format!("symlink {}", link.display()), e))?;
    }
    let console = dev.join("console");
    write(&console, "")?;
    do_mount(Some(console_log), &console, None, MsFlags::MS_BIND, None)
}

/// Remove the image's `*.wants` / `*.requires` links: only what our target lists gets started.
/// The root is an overlay, so this only writes whiteouts into the node's upper dir.
fn hide_wants(root: &Path) -> Result<()> {
    for dir in UNIT_DIRS {
        for path in entries(&root.join(dir.trim_start_matches('/')))? {
            let name = path.file_name().and_then(OsStr::to_str).unwrap_or_default();
            if path.is_dir() && (name.ends_with(".wants") || name.ends_with(".requires")) {
                fs::remove_dir_all(&path)
                    .map_err(|e| err(format!("remove {}", path.display()), e))?;
            }
        }
    }
    Ok(())
}

/// Mask every generator found in `dirs` by a `/dev/null` symlink of the same name in `mask_dir`
/// (paths inside the node's root `root`).
fn mask(root: &Path, dirs: &[&str], mask_dir: &str) -> Result<()> {
    let mask_dir = root.join(mask_dir.trim_start_matches('/'));
    mkdir(&mask_dir)?;
    for dir in dirs {
        for path in entries(&root.join(dir.trim_start_matches('/')))? {
            let Some(name) = path.file_name() else {
                continue;
            };
            let masked = mask_dir.join(name);
            if fs::symlink_metadata(&masked).is_err() {
                symlink("/dev/null", &masked)
                    .map_err(|e| err(format!("mask {}", masked.display()), e))?;
            }
        }
    }
    Ok(())
}

fn nosuid_nodev() -> MsFlags {
    MsFlags::MS_NOSUID | MsFlags::MS_NODEV
}

fn do_mount(
    src: Option<&(impl AsRef<Path> + ?Sized)>,
    target: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<()> {
    let src = src.map(AsRef::as_ref);
    mount(src, target, fstype, flags, data).map_err(|e| {
        let src = src.map_or_else(|| "none".to_owned(), |s| s.display().to_string());
        err(format!("mount {src} on {}", target.display()), e)
    })
}

fn remount_ro(target: &Path) -> Result<()> {
    let flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY;
    mount(None::<&str>, target, None::<&str>, flags, None::<&str>)
        .map_err(|e| err(format!("remount {} read-only", target.display()), e))
}

fn mkdir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| err(format!("create {}", dir.display()), e))
}

fn write(path: &Path, content: &str) -> Result<()> {
    let mut f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(|e| err(format!("create {}", path.display()), e))?;
    f.write_all(content.as_bytes())
        .map_err(|e| err(format!("write {}", path.display()), e))
}

/// Entries of `dir`, or none if it does not exist.
fn entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let read_error = |e| err(format!("read {}", dir.display()), e);
    match fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.map(|e| e.path()))
            .collect::<io::Result<_>>()
            .map_err(read_error),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(read_error(e)),
    }
}
