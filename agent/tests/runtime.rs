//! The container runtime as a container meets it: a busybox root file system in a temporary
//! directory, a spec built with docker's defaults, and assertions made from inside the
//! container (its PID, hostname, capabilities, mounts, limits) through its captured output.
//!
//! Needs root and `/bin/busybox` (Debian's busybox-static). Tests run one at a time: each
//! clones processes from this (multi-threaded) test binary.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use agent::engine::image_config::ImageConfig;
use agent::engine::options::{RunOptions, Volume, VolumeSource};
use agent::engine::spec::{runtime_spec, Host, Ids, NetworkSetup};
use agent::runtime::{self, CgroupMembership, Launch, RootFs, RuntimeError, Stdio};
use nix::sys::resource::{getrlimit, Resource};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{pipe, Pid};
use oci_spec::runtime::Spec;
use tempfile::TempDir;

const ID: &str = "4b1d0c0ffee5eed0123456789abcdef0123456789abcdef0123456789abcdef0";

/// The open files docker gives a container.
const DOCKER_NOFILE: u64 = 1 << 20;

/// One test at a time: clone from a process whose other threads run tests is asking for a
/// lock held at the moment of the copy.
static SERIAL: Mutex<()> = Mutex::new(());

static NO_CGROUPS: CgroupMembership = CgroupMembership {
    v1: Vec::new(),
    unified: None,
    supervisor: None,
};

/// A busybox image: `/bin/busybox` and a link per applet.
fn busybox_image(dir: &Path) {
    let bin = dir.join("bin");
    fs::create_dir_all(&bin).unwrap();
    fs::create_dir_all(dir.join("etc")).unwrap();
    fs::copy("/bin/busybox", bin.join("busybox")).expect("install busybox-static");
    let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
    for applet in String::from_utf8(list.stdout).unwrap().lines() {
        if applet != "busybox" {
            symlink("busybox", bin.join(applet)).unwrap();
        }
    }
}

/// A container's files: the image (lower), the overlay's upper and work dirs, the mount point.
struct Bundle {
    dir: TempDir,
}

/// Makes `spec` join the network namespace at `path`, or with `None` create one.
fn join_network(spec: &mut Spec, path: Option<PathBuf>) {
    let mut linux = spec.linux().clone().unwrap();
    let namespaces = linux
        .namespaces()
        .clone()
        .unwrap()
        .into_iter()
        .map(|mut namespace| {
            if namespace.typ() == oci_spec::runtime::LinuxNamespaceType::Network {
                namespace.set_path(path.clone());
            }
            namespace
        })
        .collect();
    linux.set_namespaces(Some(namespaces));
    spec.set_linux(Some(linux));
}

impl Bundle {
    fn new() -> Bundle {
        let dir = tempfile::tempdir().unwrap();
        busybox_image(&dir.path().join("lower"));
        for sub in ["upper", "work", "rootfs", "volumes", "network"] {
            fs::create_dir(dir.path().join(sub)).unwrap();
        }
        for file in ["hosts", "hostname", "resolv.conf"] {
            fs::write(dir.path().join("network").join(file), "").unwrap();
        }
        Bundle { dir }
    }

    fn path(&self, sub: &str) -> PathBuf {
        self.dir.path().join(sub)
    }

    fn spec(&self, options: RunOptions) -> Spec {
        let network_files = self.path("network");
        let netns = self.path("netns");
        let ids = Ids {
            container_id: ID,
            name: "test",
            volumes_root: &self.path("volumes"),
            network: NetworkSetup {
                netns: Some(&netns),
                files: &network_files,
                link_env: &[],
            },
        };
        // docker's 1048576 open files, whatever this host allows: the runtime clamps.
        let host = Host {
            nofile_hard: DOCKER_NOFILE,
            hostname: "host",
        };
        let mut spec = runtime_spec(
            &ImageConfig::default(),
            &RunOptions {
                image: "busybox".to_owned(),
                ..options
            },
            &self.path("rootfs"),
            &ids,
            &host,
        )
        .unwrap();
        // A network namespace of its own, made by the runtime's clone (the engine binds one
        // at the path first).
        join_network(&mut spec, None);
        spec
    }

    fn lower(&self) -> Vec<PathBuf> {
        vec![self.path("lower")]
    }

    /// Starts `spec` on an overlay of the bundle's image.
    fn launch(&self, spec: &Spec, stdio: Stdio) -> Result<Pid, RuntimeError> {
        let (lower, upper, work) = (self.lower(), self.path("upper"), self.path("work"));
        runtime::spawn(Launch {
            spec,
            rootfs: RootFs::Overlay {
                lower: &lower,
                upper: &upper,
                work: &work,
            },
            cgroups: &NO_CGROUPS,
            stdio,
        })
    }
}

fn command(words: &[&str]) -> RunOptions {
    RunOptions {
        command: words.iter().map(|w| (*w).to_owned()).collect(),
        ..RunOptions::default()
    }
}

fn shell(script: &str) -> RunOptions {
    command(&["sh", "-c", script])
}

/// Standard streams whose output (stdout and stderr together) is read from the returned pipe.
fn capture() -> (Stdio, OwnedFd) {
    let (read, write) = pipe().unwrap();
    let stdio = Stdio {
        stdin: File::open("/dev/null").unwrap().into(),
        stdout: write.try_clone().unwrap(),
        stderr: write,
    };
    (stdio, read)
}

fn read_all(fd: OwnedFd) -> String {
    let mut text = String::new();
    File::from(fd).read_to_string(&mut text).unwrap();
    text
}

fn exit_code(pid: Pid) -> i32 {
    match waitpid(pid, None).unwrap() {
        WaitStatus::Exited(_, code) => code,
        other => panic!("container ended with {other:?}"),
    }
}

/// Runs a container on an overlay of the bundle's image to its end: exit code and output.
fn run(bundle: &Bundle, options: RunOptions) -> (i32, String) {
    let spec = bundle.spec(options);
    let (stdio, output) = capture();
    let pid = bundle
        .launch(&spec, stdio)
        .unwrap_or_else(|e| panic!("spawn: {e}"));
    let text = read_all(output);
    let code = exit_code(pid);
    assert_no_host_mounts(bundle);
    (code, text)
}

fn try_spawn(bundle: &Bundle, options: RunOptions) -> Result<Pid, RuntimeError> {
    let spec = bundle.spec(options);
    let (stdio, _output) = capture();
    bundle.launch(&spec, stdio)
}

/// Everything the container mounted stayed in its own mount namespace.
fn assert_no_host_mounts(bundle: &Bundle) {
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let dir = bundle.dir.path().to_str().unwrap();
    assert!(
        !mounts.contains(dir),
        "a mount under {dir} leaked: {mounts}"
    );
}

/// A container left running by a test: killed and reaped however the test ends.
struct Running(Pid);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = kill(self.0, Signal::SIGKILL);
        let _ = waitpid(self.0, None);
    }
}

fn lock() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[test]
fn init_is_pid_1_with_docker_defaults() {
    let _serial = lock();
    let bundle = Bundle::new();
    let (code, output) = run(
        &bundle,
        RunOptions {
            workdir: Some("/made/by/workdir".to_owned()),
            ..shell(
                "echo pid=$$; echo host=$(hostname); echo cwd=$(pwd); \
                 grep -E '^(CapEff|NoNewPrivs|SigBlk|SigIgn):' /proc/self/status | tr -d '\\t'; \
                 echo nofile=$(ulimit -n)/$(ulimit -Hn); \
                 echo ping=$(cat /proc/sys/net/ipv4/ping_group_range | tr '\\t' ' '); exit 3",
            )
        },
    );
    // This machine's hard limit (about 20000) is below docker's: the runtime clamps to it.
    let host_hard = getrlimit(Resource::RLIMIT_NOFILE)
        .unwrap()
        .1
        .min(DOCKER_NOFILE);
    assert_eq!(code, 3, "{output}");
    assert_eq!(
        output,
        format!(
            "pid=1\nhost={}\ncwd=/made/by/workdir\nSigBlk:0000000000000000\nSigIgn:0000000000000000\nCapEff:00000000a80425fb\nNoNewPrivs:1\n\
             nofile={host_hard}/{host_hard}\nping=0 2147483647\n",
            &ID[..12]
        )
    );
}

#[test]
fn a_numeric_user_runs_without_effective_capabilities() {
    let _serial = lock();
    let bundle = Bundle::new();
    let (code, output) = run(
        &bundle,
        RunOptions {
            user: Some("1000:1000".to_owned()),
            ..shell(
                "id; grep -E '^Cap(Eff|Bnd):' /proc/self/status | tr -d '\\t'; \
                 touch /etc/denied",
            )
        },
    );
    assert_eq!(code, 1, "{output}");
    // No supplementary groups: root's group 0 is not kept.
    assert_eq!(
        output,
        "uid=1000 gid=1000\nCapEff:0000000000000000\nCapBnd:00000000a80425fb\n\
         touch: /etc/denied: Permission denied\n"
    );
}

#[test]
fn sys_is_read_only_and_masked_paths_read_empty() {
    let _serial = lock();
    let bundle = Bundle::new();
    let (code, output) = run(
        &bundle,
        shell(
            // ip_forward belongs to the container's network namespace: harmless if written.
            "mkdir /sys/kernel/flotilla; echo timer_list=$(wc -c < /proc/timer_list); \
             echo 1 > /proc/sys/net/ipv4/ip_forward; ls /proc/acpi | wc -l",
        ),
    );
    assert_eq!(code, 0, "{output}");
    assert_eq!(
        output,
        "mkdir: can't create directory '/sys/kernel/flotilla': Read-only file system\n\
         timer_list=0\n\
         sh: can't create /proc/sys/net/ipv4/ip_forward: Read-only file system\n\
         0\n"
    );
}

#[test]
fn etc_writes_land_in_the_overlay_upper_dir() {
    let _serial = lock();
    let bundle = Bundle::new();
    let (code, output) = run(
        &bundle,
        shell("echo written > /etc/flotilla && cat /etc/flotilla"),
    );
    assert_eq!((code, output.as_str()), (0, "written\n"));
    assert_eq!(
        fs::read_to_string(bundle.path("upper/etc/flotilla")).unwrap(),
        "written\n"
    );
    assert!(!bundle.path("lower/etc/flotilla").exists());
}

#[test]
fn a_read_only_root_refuses_writes() {
    let _serial = lock();
    let bundle = Bundle::new();
    let (code, output) = run(
        &bundle,
        RunOptions {
            read_only: true,
            ..shell("touch /etc/x 2>&1; echo done")
        },
    );
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("Read-only file system"), "{output}");
    assert!(!bundle.path("upper/etc/x").exists());
}

fn bind(source: &Path, destination: &str, read_only: bool) -> Volume {
    Volume {
        source: VolumeSource::Bind(source.to_owned()),
        destination: destination.to_owned(),
        read_only,
    }
}

#[test]
fn a_read_only_bind_mount_refuses_writes() {
    let _serial = lock();
    let bundle = Bundle::new();
    let data = bundle.path("data");
    fs::create_dir(&data).unwrap();
    fs::write(data.join("marker"), "from the host\n").unwrap();
    let (code, output) = run(
        &bundle,
        RunOptions {
            volumes: vec![bind(&data, "/data", true)],
            ..shell("cat /data/marker; touch /data/new 2>&1; echo done")
        },
    );
    assert_eq!(code, 0, "{output}");
    assert!(
        output.starts_with("from the host\n") && output.contains("Read-only file system"),
        "{output}"
    );
    assert!(!data.join("new").exists());
}

#[test]
fn a_symlink_in_the_image_does_not_lead_a_mount_out_of_the_root() {
    let _serial = lock();
    let bundle = Bundle::new();
    let outside = tempfile::tempdir().unwrap();
    let escape = outside.path().join("escape");
    let volume = bundle.path("volume");
    fs::create_dir(&volume).unwrap();
    fs::write(volume.join("marker"), "volume\n").unwrap();
    symlink(
        Path::new("/../..").join(escape.strip_prefix("/").unwrap()),
        bundle.path("lower/link"),
    )
    .unwrap();
    let (code, output) = run(
        &bundle,
        RunOptions {
            volumes: vec![bind(&volume, "/link", false)],
            ..shell("cat /link/marker")
        },
    );
    assert_eq!((code, output.as_str()), (0, "volume\n"));
    assert!(
        !escape.exists(),
        "the mount destination was made on the host"
    );
}

#[test]
fn a_missing_command_says_which_error() {
    let _serial = lock();
    let bundle = Bundle::new();
    let error = try_spawn(&bundle, command(&["/nope"])).unwrap_err();
    assert_eq!(
        error.to_string(),
        "exec \"/nope\": no such file or directory"
    );
    let error = try_spawn(&bundle, command(&["nope"])).unwrap_err();
    assert_eq!(
        error.to_string(),
        "exec \"nope\": executable file not found in $PATH: no such file or directory"
    );
    let script = bundle.path("lower/script");
    fs::write(&script, "#!/bin/sh\n").unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o644)).unwrap();
    let error = try_spawn(&bundle, command(&["/script"])).unwrap_err();
    assert_eq!(error.to_string(), "exec \"/script\": permission denied");
    assert_no_host_mounts(&bundle);
}

#[test]
fn a_failing_mount_is_named() {
    let _serial = lock();
    let bundle = Bundle::new();
    let mut spec = bundle.spec(command(&["true"]));
    let mut mounts = spec.mounts().clone().unwrap();
    mounts.push(
        oci_spec::runtime::MountBuilder::default()
            .destination("/mnt/odd")
            .typ("nosuchfs")
            .source("odd")
            .build()
            .unwrap(),
    );
    spec.set_mounts(Some(mounts));
    let error = bundle.launch(&spec, capture().0).unwrap_err();
    assert_eq!(
        error.to_string(),
        "mount \"odd\" on \"/mnt/odd\": no such device"
    );
    assert_no_host_mounts(&bundle);
}

#[test]
fn exec_runs_inside_the_container() {
    let _serial = lock();
    let bundle = Bundle::new();
    let spec = bundle.spec(command(&["sleep", "60"]));
    let (stdio, _init_output) = capture();
    let init = bundle.launch(&spec, stdio).unwrap();
    let _running = Running(init);
    let mut process = spec.process().clone().unwrap();
    process.set_oom_score_adj(Some(500));
    process.set_args(Some(
        ["sh", "-c", "tr '\\0' ' ' < /proc/1/cmdline; echo; hostname; grep NoNewPrivs /proc/self/status | tr -d '\\t'; cat /proc/self/oom_score_adj"]
            .map(str::to_owned)
            .to_vec(),
    ));
    let (stdio, output) = capture();
    let exec = runtime::exec(init, &process, &NO_CGROUPS, stdio).unwrap();
    let text = read_all(output);
    let code = exit_code(exec);
    assert_eq!(code, 0, "{text}");
    assert_eq!(
        text,
        format!("sleep 60 \n{}\nNoNewPrivs:1\n500\n", &ID[..12])
    );
    assert_no_host_mounts(&bundle);
}

#[test]
fn a_namespace_with_a_path_is_joined() {
    let _serial = lock();
    let first = Bundle::new();
    let spec = first.spec(command(&["sleep", "60"]));
    let init = first.launch(&spec, capture().0).unwrap();
    let _running = Running(init);
    let second = Bundle::new();
    let mut spec = second.spec(shell("readlink /proc/self/ns/net"));
    join_network(
        &mut spec,
        Some(PathBuf::from(format!("/proc/{init}/ns/net"))),
    );
    let (stdio, output) = capture();
    let pid = second.launch(&spec, stdio).unwrap();
    let text = read_all(output);
    let code = exit_code(pid);
    let first_net = fs::read_link(format!("/proc/{init}/ns/net")).unwrap();
    let own_net = fs::read_link("/proc/self/ns/net").unwrap();
    assert_eq!(code, 0, "{text}");
    assert_eq!(text.trim_end(), first_net.to_str().unwrap());
    assert_ne!(
        first_net, own_net,
        "the first container has a network namespace of its own"
    );
}

#[test]
fn one_process_spawns_container_after_container() {
    let _serial = lock();
    let bundle = Bundle::new();
    for round in 0..3 {
        let (code, output) = run(&bundle, shell(&format!("echo $$ {round}")));
        assert_eq!((code, output), (0, format!("1 {round}\n")));
    }
}

#[test]
fn a_directory_root_file_system_is_used_in_place() {
    let _serial = lock();
    let bundle = Bundle::new();
    let spec = bundle.spec(shell("echo in place > /etc/here"));
    let mut spec = spec;
    let mut root = spec.root().clone().unwrap();
    root.set_path(bundle.path("lower"));
    spec.set_root(Some(root));
    let (stdio, output) = capture();
    let pid = runtime::spawn(Launch {
        spec: &spec,
        rootfs: RootFs::Directory,
        cgroups: &NO_CGROUPS,
        stdio,
    })
    .unwrap();
    let text = read_all(output);
    assert_eq!(exit_code(pid), 0, "{text}");
    assert_eq!(
        fs::read_to_string(bundle.path("lower/etc/here")).unwrap(),
        "in place\n"
    );
    assert_no_host_mounts(&bundle);
}

/// Everything the terminal shows until the container's side is closed.
fn read_terminal(controller: OwnedFd) -> String {
    read_until(&mut File::from(controller), None)
}

/// What the terminal shows until it has shown `marker`, or until the container's side is
/// closed.
fn read_until(file: &mut File, marker: Option<&str>) -> String {
    let mut bytes = Vec::new();
    let mut buffer = [0u8; 4096];
    while marker.is_none_or(|marker| !String::from_utf8_lossy(&bytes).ends_with(marker)) {
        match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&buffer[..n]),
            // EIO: every replica descriptor is closed.
            Err(e) if e.raw_os_error() == Some(libc::EIO) => break,
            Err(e) => panic!("read the terminal: {e}"),
        }
    }
    String::from_utf8(bytes).unwrap()
}

#[test]
fn a_terminal_comes_from_the_container_and_exec_gets_its_own() {
    let _serial = lock();
    let bundle = Bundle::new();
    let mut spec = bundle.spec(shell(
        "tty; echo $$; [ \"$(stat -c %t:%T /dev/console)\" = \"$(stat -c %t:%T /dev/pts/0)\" ] \
         && echo console; read line; echo got $line",
    ));
    let mut process = spec.process().clone().unwrap();
    process.set_terminal(Some(true));
    spec.set_process(Some(process.clone()));
    let (lower, upper, work) = (bundle.lower(), bundle.path("upper"), bundle.path("work"));
    let launch = |stdio| Launch {
        spec: &spec,
        rootfs: RootFs::Overlay {
            lower: &lower,
            upper: &upper,
            work: &work,
        },
        cgroups: &NO_CGROUPS,
        stdio,
    };
    let error = runtime::spawn(launch(capture().0)).unwrap_err();
    assert!(matches!(error, RuntimeError::TerminalNotTaken), "{error}");
    let started = runtime::spawn_with_terminal(launch(capture().0)).unwrap();
    let init_terminal = started.terminal.expect("a terminal");

    process.set_args(Some(["tty"].map(str::to_owned).to_vec()));
    let exec =
        runtime::exec_with_terminal(started.pid, &process, &NO_CGROUPS, capture().0).unwrap();
    let exec_output = read_terminal(exec.terminal.expect("a terminal for exec"));
    assert_eq!(exit_code(exec.pid), 0);
    assert_eq!(exec_output, "/dev/pts/1\r\n");

    // Typed once the shell waits for it, or the terminal's echo would come first.
    let mut init_file = File::from(init_terminal);
    let shown = read_until(&mut init_file, Some("console\r\n"));
    init_file.write_all(b"hello\n").unwrap();
    let output = shown + &read_terminal(init_file.into());
    assert_eq!(exit_code(started.pid), 0, "{output}");
    assert_eq!(
        output,
        "/dev/pts/0\r\n1\r\nconsole\r\nhello\r\ngot hello\r\n"
    );
    assert_no_host_mounts(&bundle);
}

/// A v1 pids cgroup of this test's own, removed at the end.
struct TestCgroup(PathBuf);

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let _ = fs::remove_dir(&self.0);
    }
}

#[test]
fn the_container_joins_its_cgroups_and_sees_only_them() {
    let _serial = lock();
    let bundle = Bundle::new();
    let cgroup = TestCgroup(PathBuf::from(format!(
        "/sys/fs/cgroup/pids/flotilla-runtime-test-{}",
        std::process::id()
    )));
    fs::create_dir(&cgroup.0).unwrap();
    fs::write(cgroup.0.join("pids.max"), "17").unwrap();
    let cgroups = CgroupMembership {
        v1: vec![("pids".to_owned(), cgroup.0.clone())],
        unified: None,
        supervisor: None,
    };
    let mut spec = bundle.spec(shell(
        "grep :pids: /proc/self/cgroup | cut -d: -f2-; cat /sys/fs/cgroup/pids/pids.max; ls /sys/fs/cgroup; \
         mkdir /sys/fs/cgroup/pids/sub",
    ));
    let mut linux = spec.linux().clone().unwrap();
    let mut namespaces = linux.namespaces().clone().unwrap();
    namespaces.push(
        oci_spec::runtime::LinuxNamespaceBuilder::default()
            .typ(oci_spec::runtime::LinuxNamespaceType::Cgroup)
            .build()
            .unwrap(),
    );
    linux.set_namespaces(Some(namespaces));
    spec.set_linux(Some(linux));
    let (lower, upper, work) = (bundle.lower(), bundle.path("upper"), bundle.path("work"));
    let (stdio, output) = capture();
    let pid = runtime::spawn(Launch {
        spec: &spec,
        rootfs: RootFs::Overlay {
            lower: &lower,
            upper: &upper,
            work: &work,
        },
        cgroups: &cgroups,
        stdio,
    })
    .unwrap();
    let procs = fs::read_to_string(cgroup.0.join("cgroup.procs")).unwrap();
    let text = read_all(output);
    assert_eq!(exit_code(pid), 1, "{text}");
    assert!(
        procs.lines().any(|line| line == pid.to_string()),
        "the container's init is not in its cgroup: {procs}"
    );
    // The cgroup namespace was made after joining: the container's cgroup is its root.
    assert_eq!(
        text,
        "pids:/\n17\npids\n\
         mkdir: can't create directory '/sys/fs/cgroup/pids/sub': Read-only file system\n"
    );
}
