//! A container's OCI runtime `config.json`, built from the image's config and `run` flags with
//! docker's defaults (moby `oci/defaults.go` and `daemon/oci_linux.go`).
//!
//! [`runtime_spec`] is pure: the container's ids, the root file system's path and the host's
//! limits come in as values. A user given by name is resolved beforehand with
//! [`super::user::resolve_user`] against the image's `/etc/passwd` (see [`effective_user`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder, LinuxDeviceCgroup,
    LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxMemoryBuilder, LinuxNamespaceBuilder,
    LinuxNamespaceType, LinuxPidsBuilder, LinuxResourcesBuilder, Mount, MountBuilder,
    PosixRlimitBuilder, PosixRlimitType, ProcessBuilder, RootBuilder, Spec, SpecBuilder,
};
use oci_spec::OciSpecError;

use super::image_config::ImageConfig;
use super::options::{Network, RunOptions, Volume, VolumeSource};
use super::user::numeric_user;

/// Why no runtime configuration could be built.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("no command specified: the image {image} has no ENTRYPOINT or CMD and none was given")]
    NoCommand { image: String },
    #[error("user {0:?} is a name: resolve it against the image's /etc/passwd first")]
    UnresolvedUser(String),
    #[error("cannot build the runtime configuration: {0}")]
    Build(#[from] OciSpecError),
}

/// A `Result` whose error is [`SpecError`].
pub type Result<T> = std::result::Result<T, SpecError>;

/// What names the container and where its volumes live.
#[derive(Debug, Clone, Copy)]
pub struct Ids<'a> {
    /// The full 64-hex container ID.
    pub container_id: &'a str,
    /// `--name`.
    pub name: &'a str,
    /// The directory of named volumes: `NAME/_data` is a volume's content (docker's layout).
    pub volumes_root: &'a Path,
    /// Where its network comes from.
    pub network: NetworkSetup<'a>,
}

/// Where a container's network comes from: the namespace it joins, the directory of the
/// `hosts`, `hostname` and `resolv.conf` files bind-mounted over the image's, and the
/// variables its `--link`s give it.
#[derive(Debug, Clone, Copy)]
pub struct NetworkSetup<'a> {
    /// A bind-mounted namespace file; `None` for the host's namespace (`--network host`).
    pub netns: Option<&'a Path>,
    /// The directory of the network files (another container's with `container:NAME`).
    pub files: &'a Path,
    /// `--link` variables as `KEY=VALUE`; the image's `Env` and `-e` override them.
    pub link_env: &'a [String],
}

/// The network files in [`NetworkPaths::files`], and where each is mounted.
pub const NETWORK_FILES: [(&str, &str); 3] = [
    ("hosts", "/etc/hosts"),
    ("hostname", "/etc/hostname"),
    ("resolv.conf", "/etc/resolv.conf"),
];

/// Facts about the host that docker's defaults depend on.
#[derive(Debug, Clone, Copy)]
pub struct Host<'a> {
    /// The hard `RLIMIT_NOFILE` the engine may grant (no `CAP_SYS_RESOURCE`: cannot raise it).
    pub nofile_hard: u64,
    /// The host's name, which `--network host` containers get, as in docker.
    pub hostname: &'a str,
}

/// The OCI runtime specification version written.
const OCI_VERSION: &str = "1.0.2";
/// The `PATH` docker sets when neither the image nor `-e` has one.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// docker gives containers 1048576 open files (dockerd's own `LimitNOFILE`).
const DEFAULT_NOFILE: u64 = 1_048_576;
/// The CFS period docker uses for `--cpus`, in microseconds.
const CPU_PERIOD: u64 = 100_000;
/// Annotation keys under which the spec records what it was made from.
pub const IMAGE_ANNOTATION: &str = "io.flotilla.image.name";
pub const NAME_ANNOTATION: &str = "io.flotilla.container.name";

/// docker's default capabilities (moby `oci/caps/defaults.go`).
pub const DEFAULT_CAPABILITIES: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// Paths docker hides from containers (moby `oci/defaults.go`); `/sys/devices/virtual/powercap`
/// since CVE-2020-8694.
pub const MASKED_PATHS: [&str; 12] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths docker makes read-only in containers (moby `oci/defaults.go`).
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The user a container runs as: `-u`, else the image's `USER`, else root.
pub fn effective_user<'a>(image: &'a ImageConfig, options: &'a RunOptions) -> &'a str {
    options
        .user
        .as_deref()
        .or(image.user.as_deref())
        .unwrap_or("")
}

/// The name of the `index`th anonymous volume of a container.
pub fn anonymous_volume_name(container_id: &str, index: usize) -> String {
    format!("{container_id}-{index}")
}

/// The process's arguments by docker's rules: `--entrypoint` replaces the image's
/// ENTRYPOINT and drops its CMD (an empty `--entrypoint` clears it); arguments after IMAGE
/// replace CMD.
pub fn process_args(image: &ImageConfig, options: &RunOptions) -> Vec<String> {
    let (entrypoint, image_cmd) = match options.entrypoint.as_deref() {
        Some("") => (Vec::new(), Vec::new()),
        Some(entrypoint) => (vec![entrypoint.to_owned()], Vec::new()),
        None => (
            image.entrypoint.clone().unwrap_or_default(),
            image.cmd.clone().unwrap_or_default(),
        ),
    };
    let cmd = if options.command.is_empty() {
        image_cmd
    } else {
        options.command.clone()
    };
    entrypoint.into_iter().chain(cmd).collect()
}

/// Replaces the entry of each of `overrides`' keys in `base`, or appends it (docker's
/// `ReplaceOrAppendEnvValues`).
fn replace_or_append(base: &mut Vec<String>, overrides: impl IntoIterator<Item = String>) {
    for entry in overrides {
        let key = entry.split_once('=').map_or(entry.as_str(), |(k, _)| k);
        match base
            .iter_mut()
            .find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key)
        {
            Some(existing) => *existing = entry,
            None => base.push(entry),
        }
    }
}

/// The environment by docker's rules: `--link` variables overlaid by the image's `Env`, overlaid
/// by `-e` (later wins), after
/// a default `PATH` (when neither has one) and `HOSTNAME`, which both may override; with `-t`,
/// also [`add_default_term`].
pub fn environment(
    image: &ImageConfig,
    options: &RunOptions,
    hostname: &str,
    link_env: &[String],
) -> Vec<String> {
    let mut config = link_env.to_vec();
    replace_or_append(&mut config, image.env.clone().unwrap_or_default());
    replace_or_append(
        &mut config,
        options.env.iter().map(|(k, v)| format!("{k}={v}")),
    );
    let mut env = Vec::new();
    if !config.iter().any(|e| e.starts_with("PATH=")) {
        env.push(format!("PATH={DEFAULT_PATH}"));
    }
    env.push(format!("HOSTNAME={hostname}"));
    replace_or_append(&mut env, config);
    if options.tty {
        add_default_term(&mut env);
    }
    env
}

/// Gives a process with a terminal docker's `TERM=xterm`, unless its environment has a `TERM`
/// (`run -t`, `exec -t`).
pub fn add_default_term(env: &mut Vec<String>) {
    if !env.iter().any(|entry| entry.starts_with("TERM=")) {
        env.push("TERM=xterm".to_owned());
    }
}

fn hostname(options: &RunOptions, ids: &Ids<'_>, host: &Host<'_>) -> String {
    match (&options.hostname, &options.network) {
        (Some(name), _) => name.clone(),
        (None, Network::Host) => host.hostname.to_owned(),
        (None, _) => ids.container_id.chars().take(12).collect(),
    }
}

fn mount(destination: &str, typ: &str, source: &str, options: &[&str]) -> Result<Mount> {
    Ok(MountBuilder::default()
        .destination(destination)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|o| (*o).to_owned()).collect::<Vec<_>>())
        .build()?)
}

/// docker's default mounts, then `-v` mounts (bound recursively, `ro` when asked).
fn mounts(options: &RunOptions, ids: &Ids<'_>) -> Result<Vec<Mount>> {
    let mut mounts = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        )?,
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", "ro"],
        )?,
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
        // docker's default --shm-size is 64 MiB.
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        )?,
    ];
    for (file, destination) in NETWORK_FILES {
        mounts.push(
            MountBuilder::default()
                .destination(destination)
                .typ("bind")
                .source(ids.network.files.join(file))
                .options(strings(&["rbind", "rprivate", "rw"]))
                .build()?,
        );
    }
    for (index, volume) in options.volumes.iter().enumerate() {
        mounts.push(volume_mount(volume, index, ids)?);
    }
    Ok(mounts)
}

fn volume_mount(volume: &Volume, index: usize, ids: &Ids<'_>) -> Result<Mount> {
    let source = match &volume.source {
        VolumeSource::Bind(path) => path.clone(),
        VolumeSource::Named(name) => ids.volumes_root.join(name).join("_data"),
        VolumeSource::Anonymous => ids
            .volumes_root
            .join(anonymous_volume_name(ids.container_id, index))
            .join("_data"),
    };
    let mode = if volume.read_only { "ro" } else { "rw" };
    Ok(MountBuilder::default()
        .destination(&volume.destination)
        .typ("bind")
        .source(source)
        .options(vec![
            "rbind".to_owned(),
            "rprivate".to_owned(),
            mode.to_owned(),
        ])
        .build()?)
}

fn device_rule(
    typ: LinuxDeviceType,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> Result<LinuxDeviceCgroup> {
    let mut rule = LinuxDeviceCgroupBuilder::default()
        .allow(true)
        .typ(typ)
        .access(access);
    if let Some(major) = major {
        rule = rule.major(major);
    }
    if let Some(minor) = minor {
        rule = rule.minor(minor);
    }
    Ok(rule.build()?)
}

/// Deny every device, then allow mknod and the devices every container gets (null, zero,
/// full, random, urandom, tty, ptmx, pts), as runc's and docker's defaults do.
fn device_rules() -> Result<Vec<LinuxDeviceCgroup>> {
    use LinuxDeviceType::{B, C};
    let mut rules = vec![LinuxDeviceCgroupBuilder::default()
        .allow(false)
        .access("rwm")
        .build()?];
    rules.push(device_rule(C, None, None, "m")?);
    rules.push(device_rule(B, None, None, "m")?);
    for (major, minor) in [(1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0), (5, 2)] {
        rules.push(device_rule(C, Some(major), Some(minor), "rwm")?);
    }
    rules.push(device_rule(C, Some(136), None, "rwm")?);
    Ok(rules)
}

fn resources(options: &RunOptions) -> Result<oci_spec::runtime::LinuxResources> {
    let mut resources = LinuxResourcesBuilder::default().devices(device_rules()?);
    if let Some(memory) = options.memory {
        let limit = i64::try_from(memory).unwrap_or(i64::MAX);
        // docker: without --memory-swap a container may use as much swap as memory.
        let swap = limit.saturating_mul(2);
        resources = resources.memory(
            LinuxMemoryBuilder::default()
                .limit(limit)
                .swap(swap)
                .build()?,
        );
    }
    if let Some(nano_cpus) = options.nano_cpus {
        let quota = u128::from(nano_cpus) * u128::from(CPU_PERIOD) / 1_000_000_000;
        resources = resources.cpu(
            LinuxCpuBuilder::default()
                .period(CPU_PERIOD)
                .quota(i64::try_from(quota).unwrap_or(i64::MAX))
                .build()?,
        );
    }
    if let Some(pids) = options.pids_limit {
        resources = resources.pids(
            LinuxPidsBuilder::default()
                .limit(i64::try_from(pids).unwrap_or(i64::MAX))
                .build()?,
        );
    }
    Ok(resources.build()?)
}

fn namespaces(netns: Option<&Path>) -> Result<Vec<oci_spec::runtime::LinuxNamespace>> {
    let mut namespaces = Vec::new();
    for typ in [
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Ipc,
    ] {
        namespaces.push(LinuxNamespaceBuilder::default().typ(typ).build()?);
    }
    if let Some(path) = netns {
        namespaces.push(
            LinuxNamespaceBuilder::default()
                .typ(LinuxNamespaceType::Network)
                .path(path)
                .build()?,
        );
    }
    Ok(namespaces)
}

/// docker's sysctls for a container with its own network namespace (moby 20.10+): unprivileged
/// ports from 0 and ping for every group.
fn sysctls(own_namespace: bool) -> HashMap<String, String> {
    if !own_namespace {
        return HashMap::new();
    }
    HashMap::from([
        (
            "net.ipv4.ip_unprivileged_port_start".to_owned(),
            "0".to_owned(),
        ),
        (
            "net.ipv4.ping_group_range".to_owned(),
            "0 2147483647".to_owned(),
        ),
    ])
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// The runtime configuration of a container.
pub fn runtime_spec(
    image: &ImageConfig,
    options: &RunOptions,
    rootfs: &Path,
    ids: &Ids<'_>,
    host: &Host<'_>,
) -> Result<Spec> {
    let args = process_args(image, options);
    if args.is_empty() {
        return Err(SpecError::NoCommand {
            image: options.image.clone(),
        });
    }
    let user_spec = effective_user(image, options);
    let user =
        numeric_user(user_spec).ok_or_else(|| SpecError::UnresolvedUser(user_spec.to_owned()))?;
    let hostname = hostname(options, ids, host);
    let cwd = options
        .workdir
        .as_deref()
        .or(image.working_dir.as_deref())
        .filter(|dir| !dir.is_empty())
        .unwrap_or("/");
    let capabilities = DEFAULT_CAPABILITIES
        .into_iter()
        .collect::<oci_spec::runtime::Capabilities>();
    // No inheritable set: CVE-2022-24769 (moby 20.10.14 dropped it).
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(capabilities.clone())
        .effective(capabilities.clone())
        .permitted(capabilities)
        .inheritable(oci_spec::runtime::Capabilities::new())
        .ambient(oci_spec::runtime::Capabilities::new())
        .build()?;
    let nofile = DEFAULT_NOFILE.min(host.nofile_hard);
    let process = ProcessBuilder::default()
        .terminal(options.tty)
        .user(user)
        .args(args)
        .env(environment(image, options, &hostname, ids.network.link_env))
        .cwd(cwd)
        .capabilities(capabilities)
        .rlimits(vec![PosixRlimitBuilder::default()
            .typ(PosixRlimitType::RlimitNofile)
            .hard(nofile)
            .soft(nofile)
            .build()?])
        .no_new_privileges(true)
        .build()?;
    let linux = LinuxBuilder::default()
        .namespaces(namespaces(ids.network.netns)?)
        .resources(resources(options)?)
        .sysctl(sysctls(ids.network.netns.is_some()))
        .masked_paths(strings(&MASKED_PATHS))
        .readonly_paths(strings(&READONLY_PATHS))
        .build()?;
    let annotations = HashMap::from([
        (IMAGE_ANNOTATION.to_owned(), options.image.clone()),
        (NAME_ANNOTATION.to_owned(), ids.name.to_owned()),
    ]);
    Ok(SpecBuilder::default()
        .version(OCI_VERSION)
        .process(process)
        .root(
            RootBuilder::default()
                .path(PathBuf::from(rootfs))
                .readonly(options.read_only)
                .build()?,
        )
        .hostname(hostname)
        .mounts(mounts(options, ids)?)
        .annotations(annotations)
        .linux(linux)
        .build()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn ids() -> Ids<'static> {
        Ids {
            container_id: ID,
            name: "web",
            volumes_root: Path::new("/var/lib/flotilla/volumes"),
            network: NetworkSetup {
                netns: Some(Path::new("/var/lib/flotilla/containers/c/netns")),
                files: Path::new("/var/lib/flotilla/containers/c"),
                link_env: &[],
            },
        }
    }

    const HOST: Host<'static> = Host {
        nofile_hard: u64::MAX,
        hostname: "node-1",
    };

    fn words(items: &[&str]) -> Vec<String> {
        strings(items)
    }

    fn image(entrypoint: Option<&[&str]>, cmd: Option<&[&str]>) -> ImageConfig {
        ImageConfig {
            entrypoint: entrypoint.map(words),
            cmd: cmd.map(words),
            ..ImageConfig::default()
        }
    }

    fn options() -> RunOptions {
        RunOptions {
            image: "busybox:latest".into(),
            ..RunOptions::default()
        }
    }

    fn spec(image: &ImageConfig, options: &RunOptions) -> Spec {
        runtime_spec(
            image,
            options,
            Path::new("/run/flotilla/c/rootfs"),
            &ids(),
            &HOST,
        )
        .unwrap()
    }

    type Words = &'static [&'static str];
    /// ENTRYPOINT, CMD, `--entrypoint`, arguments after IMAGE, expected arguments.
    type ArgsCase = (
        Option<Words>,
        Option<Words>,
        Option<&'static str>,
        Words,
        Words,
    );
    /// The image's `Env`, `-e` entries, the expected environment.
    type EnvCase = (Words, Vec<(String, String)>, Vec<String>);

    #[test]
    fn arguments_follow_dockers_override_rules() {
        let shell_cmd: &[&str] = &["/bin/sh", "-c", "echo hi"];
        // (ENTRYPOINT, CMD, --entrypoint, args after IMAGE, expected)
        let table: [ArgsCase; 9] = [
            (None, Some(shell_cmd), None, &[], shell_cmd),
            (None, Some(&["sh"]), None, &["ls", "-l"], &["ls", "-l"]),
            (
                Some(&["/init"]),
                Some(&["serve"]),
                None,
                &[],
                &["/init", "serve"],
            ),
            (
                Some(&["/init"]),
                Some(&["serve"]),
                None,
                &["debug"],
                &["/init", "debug"],
            ),
            (
                Some(&["/init"]),
                Some(&["serve"]),
                Some("/bin/sh"),
                &[],
                &["/bin/sh"],
            ),
            (
                Some(&["/init"]),
                Some(&["serve"]),
                Some("/bin/sh"),
                &["-c", "x"],
                &["/bin/sh", "-c", "x"],
            ),
            (
                Some(&["/init"]),
                Some(&["serve"]),
                Some(""),
                &["true"],
                &["true"],
            ),
            (Some(&["/init"]), None, None, &[], &["/init"]),
            (None, None, Some(""), &[], &[]),
        ];
        for (entrypoint, cmd, flag, args, expected) in table {
            let options = RunOptions {
                entrypoint: flag.map(str::to_owned),
                command: words(args),
                ..options()
            };
            assert_eq!(
                process_args(&image(entrypoint, cmd), &options),
                words(expected),
                "{entrypoint:?} {cmd:?} {flag:?} {args:?}"
            );
        }
        let error = runtime_spec(
            &image(None, None),
            &options(),
            Path::new("/r"),
            &ids(),
            &HOST,
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "no command specified: the image busybox:latest has no ENTRYPOINT or CMD and none was given"
        );
    }

    #[test]
    fn environment_merges_like_docker() {
        let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        // (image Env, -e, expected)
        let path = format!("PATH={DEFAULT_PATH}");
        let table: [EnvCase; 4] = [
            (&[], vec![], vec![path.clone(), "HOSTNAME=h".into()]),
            (
                &["PATH=/bin", "A=1", "B=2"],
                vec![pair("B", "3"), pair("C", "4"), pair("C", "5")],
                words(&["HOSTNAME=h", "PATH=/bin", "A=1", "B=3", "C=5"]),
            ),
            (
                &["A=1"],
                vec![pair("PATH", "/opt"), pair("HOSTNAME", "mine")],
                words(&["HOSTNAME=mine", "A=1", "PATH=/opt"]),
            ),
            (
                &["A=x=y"],
                vec![pair("A", "")],
                vec![path.clone(), "HOSTNAME=h".into(), "A=".into()],
            ),
        ];
        for (image_env, env, expected) in table {
            let image = ImageConfig {
                env: Some(words(image_env)),
                ..ImageConfig::default()
            };
            let options = RunOptions { env, ..options() };
            assert_eq!(environment(&image, &options, "h", &[]), expected);
        }
    }

    #[test]
    fn a_terminal_is_asked_for_with_dockers_term() {
        let base = image(None, Some(&["sh"]));
        let plain = spec(&base, &options());
        let process = plain.process().clone().unwrap();
        assert_eq!(process.terminal(), Some(false));
        assert!(!process
            .env()
            .clone()
            .unwrap()
            .iter()
            .any(|e| e.starts_with("TERM=")));
        let tty = RunOptions {
            tty: true,
            ..options()
        };
        let process = spec(&base, &tty).process().clone().unwrap();
        assert_eq!(process.terminal(), Some(true));
        assert!(process
            .env()
            .clone()
            .unwrap()
            .contains(&"TERM=xterm".to_owned()));
        // The image's or -e's TERM wins, as in docker.
        let own = RunOptions {
            env: vec![("TERM".into(), "vt100".into())],
            ..tty
        };
        let env = environment(&base, &own, "h", &[]);
        assert_eq!(env.iter().filter(|e| e.starts_with("TERM=")).count(), 1);
        assert!(env.contains(&"TERM=vt100".to_owned()));
    }

    #[test]
    fn hostname_cwd_and_user() {
        let base = image(None, Some(&["sh"]));
        let plain = spec(&base, &options());
        assert_eq!(plain.hostname().as_deref(), Some("0123456789ab"));
        let process = plain.process().as_ref().unwrap();
        assert_eq!(process.cwd(), Path::new("/"));
        assert_eq!((process.user().uid(), process.user().gid()), (0, 0));
        assert!(process
            .env()
            .as_ref()
            .unwrap()
            .contains(&"HOSTNAME=0123456789ab".to_owned()));

        let host_net = RunOptions {
            network: Network::Host,
            ..options()
        };
        assert_eq!(spec(&base, &host_net).hostname().as_deref(), Some("node-1"));
        let named = RunOptions {
            hostname: Some("db".into()),
            network: Network::Host,
            ..options()
        };
        assert_eq!(spec(&base, &named).hostname().as_deref(), Some("db"));

        let configured = ImageConfig {
            working_dir: Some("/srv".into()),
            user: Some("1000:1000".into()),
            ..base.clone()
        };
        let process = spec(&configured, &options()).process().clone().unwrap();
        assert_eq!(process.cwd(), Path::new("/srv"));
        assert_eq!((process.user().uid(), process.user().gid()), (1000, 1000));
        let overridden = RunOptions {
            workdir: Some("/tmp".into()),
            user: Some("7".into()),
            ..options()
        };
        let process = spec(&configured, &overridden).process().clone().unwrap();
        assert_eq!(process.cwd(), Path::new("/tmp"));
        assert_eq!((process.user().uid(), process.user().gid()), (7, 0));

        let named_user = ImageConfig {
            user: Some("nginx".into()),
            ..base
        };
        let error =
            runtime_spec(&named_user, &options(), Path::new("/r"), &ids(), &HOST).unwrap_err();
        assert_eq!(
            error.to_string(),
            "user \"nginx\" is a name: resolve it against the image's /etc/passwd first"
        );
    }

    #[test]
    fn isolation_is_dockers_default() {
        let spec = spec(&image(None, Some(&["sh"])), &options());
        let process = spec.process().as_ref().unwrap();
        assert_eq!(process.no_new_privileges(), Some(true));
        let caps = process.capabilities().as_ref().unwrap();
        let expected: oci_spec::runtime::Capabilities = DEFAULT_CAPABILITIES.into_iter().collect();
        assert_eq!(caps.bounding().as_ref(), Some(&expected));
        assert_eq!(caps.effective().as_ref(), Some(&expected));
        assert_eq!(caps.permitted().as_ref(), Some(&expected));
        assert!(caps.inheritable().as_ref().unwrap().is_empty());
        assert!(!expected.contains(&Capability::SysAdmin));

        let linux = spec.linux().as_ref().unwrap();
        let kinds: Vec<_> = linux
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .map(|n| n.typ())
            .collect();
        assert_eq!(
            kinds,
            [
                LinuxNamespaceType::Pid,
                LinuxNamespaceType::Mount,
                LinuxNamespaceType::Uts,
                LinuxNamespaceType::Ipc,
                LinuxNamespaceType::Network
            ]
        );
        let masked = linux.masked_paths().as_ref().unwrap();
        for path in [
            "/proc/kcore",
            "/proc/keys",
            "/sys/firmware",
            "/proc/timer_list",
        ] {
            assert!(masked.iter().any(|p| p == path), "{path} not masked");
        }
        assert!(linux
            .readonly_paths()
            .as_ref()
            .unwrap()
            .contains(&"/proc/sys".to_owned()));
        assert_eq!(
            linux.sysctl().as_ref().unwrap()["net.ipv4.ip_unprivileged_port_start"],
            "0"
        );

        let destinations: Vec<_> = spec
            .mounts()
            .as_ref()
            .unwrap()
            .iter()
            .map(|m| m.destination().clone())
            .collect();
        let expected: Vec<PathBuf> = [
            "/proc",
            "/dev",
            "/dev/pts",
            "/sys",
            "/sys/fs/cgroup",
            "/dev/mqueue",
            "/dev/shm",
            "/etc/hosts",
            "/etc/hostname",
            "/etc/resolv.conf",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        assert_eq!(destinations, expected);
        let sys = &spec.mounts().as_ref().unwrap()[3];
        assert!(sys.options().as_ref().unwrap().contains(&"ro".to_owned()));
        assert_eq!(spec.root().as_ref().unwrap().readonly(), Some(false));
        assert_eq!(
            spec.annotations().as_ref().unwrap()[IMAGE_ANNOTATION],
            "busybox:latest"
        );
        assert_eq!(spec.annotations().as_ref().unwrap()[NAME_ANNOTATION], "web");
    }

    #[test]
    fn host_network_shares_the_hosts_namespace() {
        let host_ids = Ids {
            network: NetworkSetup {
                netns: None,
                ..ids().network
            },
            ..ids()
        };
        let options = RunOptions {
            network: Network::Host,
            ..options()
        };
        let spec = runtime_spec(
            &image(None, Some(&["sh"])),
            &options,
            Path::new("/r"),
            &host_ids,
            &HOST,
        )
        .unwrap();
        let linux = spec.linux().as_ref().unwrap();
        let namespaces = linux.namespaces().as_ref().unwrap();
        assert_eq!(namespaces.len(), 4);
        assert!(namespaces
            .iter()
            .all(|n| n.typ() != LinuxNamespaceType::Network));
        assert!(linux.sysctl().as_ref().unwrap().is_empty());
        let own = spec_of(&options);
        let joined = own.linux().as_ref().unwrap().namespaces().as_ref().unwrap();
        let network = joined
            .iter()
            .find(|n| n.typ() == LinuxNamespaceType::Network)
            .unwrap();
        assert_eq!(
            network.path().as_deref(),
            Some(Path::new("/var/lib/flotilla/containers/c/netns"))
        );
    }

    #[test]
    fn network_files_are_mounted_before_volumes_and_links_come_first_in_the_environment() {
        let options = RunOptions {
            volumes: vec![super::super::options::parse_volume("/srv/hosts:/etc/hosts").unwrap()],
            env: vec![("DB_PORT".into(), "mine".into())],
            ..options()
        };
        let link_env = [
            "DB_PORT=tcp://10.0.0.2:27017".to_owned(),
            "DB_NAME=/web/db".to_owned(),
        ];
        let with_links = Ids {
            network: NetworkSetup {
                link_env: &link_env,
                ..ids().network
            },
            ..ids()
        };
        let spec = runtime_spec(
            &image(None, Some(&["sh"])),
            &options,
            Path::new("/r"),
            &with_links,
            &HOST,
        )
        .unwrap();
        let mounts: Vec<(String, String)> = spec
            .mounts()
            .as_ref()
            .unwrap()
            .iter()
            .filter(|m| m.destination().starts_with("/etc"))
            .map(|m| {
                (
                    m.destination().display().to_string(),
                    m.source().as_ref().unwrap().display().to_string(),
                )
            })
            .collect();
        assert_eq!(
            mounts,
            [
                ("/etc/hosts", "/var/lib/flotilla/containers/c/hosts"),
                ("/etc/hostname", "/var/lib/flotilla/containers/c/hostname"),
                (
                    "/etc/resolv.conf",
                    "/var/lib/flotilla/containers/c/resolv.conf"
                ),
                ("/etc/hosts", "/srv/hosts"),
            ]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
        );
        let env = spec.process().as_ref().unwrap().env().clone().unwrap();
        assert!(env.contains(&"DB_NAME=/web/db".to_owned()), "{env:?}");
        assert!(env.contains(&"DB_PORT=mine".to_owned()), "{env:?}");
        assert!(!env.iter().any(|e| e.starts_with("DB_PORT=tcp")), "{env:?}");
    }

    fn spec_of(options: &RunOptions) -> Spec {
        spec(&image(None, Some(&["sh"])), options)
    }

    #[test]
    fn resources_follow_the_flags() {
        let limited = RunOptions {
            memory: Some(64 << 20),
            nano_cpus: Some(500_000_000),
            pids_limit: Some(100),
            read_only: true,
            ..options()
        };
        let spec = spec_of(&limited);
        assert_eq!(spec.root().as_ref().unwrap().readonly(), Some(true));
        let resources = spec.linux().as_ref().unwrap().resources().clone().unwrap();
        let memory = resources.memory().unwrap();
        assert_eq!(memory.limit(), Some(64 << 20));
        assert_eq!(memory.swap(), Some(128 << 20));
        let cpu = resources.cpu().clone().unwrap();
        assert_eq!((cpu.period(), cpu.quota()), (Some(100_000), Some(50_000)));
        assert_eq!(resources.pids().unwrap().limit(), 100);
        let devices = resources.devices().clone().unwrap();
        assert!(!devices[0].allow() && devices[0].typ().is_none());

        let cpus = [(250_000_000, 25_000), (2_000_000_000, 200_000), (1, 0)];
        for (nano, quota) in cpus {
            let spec = spec_of(&RunOptions {
                nano_cpus: Some(nano),
                ..options()
            });
            let cpu = spec
                .linux()
                .clone()
                .unwrap()
                .resources()
                .clone()
                .unwrap()
                .cpu()
                .clone()
                .unwrap();
            assert_eq!(cpu.quota(), Some(quota), "{nano}");
        }
        let unlimited = spec_of(&options())
            .linux()
            .clone()
            .unwrap()
            .resources()
            .clone()
            .unwrap();
        assert!(
            unlimited.memory().is_none() && unlimited.cpu().is_none() && unlimited.pids().is_none()
        );
    }

    #[test]
    fn nofile_is_clamped_to_the_hosts_hard_limit() {
        // (host hard limit, granted)
        let table = [
            (u64::MAX, 1_048_576),
            (1_048_576, 1_048_576),
            (524_288, 524_288),
            (4096, 4096),
        ];
        for (hard, granted) in table {
            let host = Host {
                nofile_hard: hard,
                hostname: "h",
            };
            let spec = runtime_spec(
                &image(None, Some(&["sh"])),
                &options(),
                Path::new("/r"),
                &ids(),
                &host,
            )
            .unwrap();
            let rlimits = spec.process().clone().unwrap().rlimits().clone().unwrap();
            assert_eq!(rlimits.len(), 1);
            assert_eq!(rlimits[0].typ(), PosixRlimitType::RlimitNofile);
            assert_eq!(
                (rlimits[0].soft(), rlimits[0].hard()),
                (granted, granted),
                "{hard}"
            );
        }
    }

    #[test]
    fn volumes_become_recursive_binds() {
        let volumes = ["/srv/www:/usr/share/nginx/html:ro", "data:/data", "/cache"]
            .iter()
            .map(|spec| super::super::options::parse_volume(spec).unwrap())
            .collect();
        let spec = spec_of(&RunOptions {
            volumes,
            ..options()
        });
        let mounts = &spec.mounts().as_ref().unwrap()[10..];
        let shown: Vec<(String, String, Vec<String>)> = mounts
            .iter()
            .map(|m| {
                assert_eq!(m.typ().as_deref(), Some("bind"));
                (
                    m.source().clone().unwrap().display().to_string(),
                    m.destination().display().to_string(),
                    m.options().clone().unwrap(),
                )
            })
            .collect();
        let opts = |mode: &str| words(&["rbind", "rprivate", mode]);
        assert_eq!(
            shown,
            [
                (
                    "/srv/www".to_owned(),
                    "/usr/share/nginx/html".to_owned(),
                    opts("ro")
                ),
                (
                    "/var/lib/flotilla/volumes/data/_data".to_owned(),
                    "/data".to_owned(),
                    opts("rw")
                ),
                (
                    format!("/var/lib/flotilla/volumes/{ID}-2/_data"),
                    "/cache".to_owned(),
                    opts("rw")
                ),
            ]
        );
    }

    #[test]
    fn a_full_spec_round_trips_through_json() {
        let options = RunOptions {
            env: vec![("A".into(), "1".into())],
            memory: Some(64 << 20),
            nano_cpus: Some(1_500_000_000),
            pids_limit: Some(64),
            volumes: vec![super::super::options::parse_volume("/srv:/srv:ro").unwrap()],
            ..options()
        };
        let spec = spec_of(&options);
        let json = serde_json::to_string_pretty(&spec).unwrap();
        let back: Spec = serde_json::from_str(&json).unwrap();
        assert_eq!(back, spec);
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["ociVersion"], OCI_VERSION);
        assert_eq!(value["process"]["noNewPrivileges"], true);
        assert_eq!(value["root"]["path"], "/run/flotilla/c/rootfs");
        assert_eq!(value["linux"]["resources"]["cpu"]["quota"], 150_000);
        assert_eq!(value["process"]["rlimits"][0]["type"], "RLIMIT_NOFILE");
        assert_eq!(value["linux"]["namespaces"][0]["type"], "pid");
        assert_eq!(
            value["linux"]["maskedPaths"].as_array().unwrap().len(),
            MASKED_PATHS.len()
        );
    }
}
