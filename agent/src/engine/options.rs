//! [`RunOptions`]: the configuration a user gives a container with docker's `run`/`create` flags.
//!
//! Each flag's value has a parser here with docker's rules and an error that names the flag
//! and the value. Reading files (`--env-file`) and the host's environment (`-e KEY`) are the
//! caller's job: the parsers take their contents.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::restart::RestartPolicy;
use crate::network::files::{Dns, ExtraHost};
use crate::network::links::Link;
use crate::network::ports::PortSpec;

/// Why a flag's value was refused; each names the flag and the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionsError {
    #[error("invalid --memory {0:?}: expected a number with an optional unit b, k, m or g")]
    Memory(String),
    #[error("invalid --memory {0:?}: the minimum memory limit is 6m")]
    MemoryTooSmall(String),
    #[error("invalid --cpus {0:?}: expected a number of CPUs such as 0.5 or 2")]
    Cpus(String),
    #[error("invalid --cpus {0:?}: at most 9 decimal places")]
    CpusTooPrecise(String),
    #[error("invalid --pids-limit {0:?}: expected a whole number (0 or -1 for no limit)")]
    PidsLimit(String),
    #[error("invalid --stop-timeout {0:?}: expected whole seconds")]
    StopTimeout(String),
    #[error(
        "invalid --stop-signal {0:?}: expected a signal name such as SIGTERM or a number 1-64"
    )]
    StopSignal(String),
    #[error("invalid --env {0:?}: the variable name is empty")]
    Env(String),
    #[error("invalid --env-file line {line} {text:?}: the variable name is empty")]
    EnvFile { line: usize, text: String },
    #[error("invalid --volume {0:?}: expected [SOURCE:]/DEST[:ro|rw]")]
    Volume(String),
    #[error("invalid --volume {spec:?}: unknown mode {mode:?} (ro or rw)")]
    VolumeMode { spec: String, mode: String },
    #[error("invalid --volume {spec:?}: the container path {destination:?} is not absolute")]
    VolumeDestination { spec: String, destination: String },
    #[error("invalid --volume {spec:?}: {origin:?} is neither an absolute host path nor a volume name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)")]
    VolumeName { spec: String, origin: String },
    #[error("invalid --workdir {0:?}: the working directory must be an absolute path")]
    Workdir(String),
    #[error(
        "invalid --network {0:?}: expected host, none, bridge, container:NAME or a network name"
    )]
    Network(String),
    #[error("conflicting options: --network {network} and {flag}")]
    NetworkConflict { network: String, flag: &'static str },
    #[error("conflicting options: --restart {0} and --rm")]
    RestartWithRm(RestartPolicy),
}

/// A `Result` whose error is [`OptionsError`].
pub type Result<T> = std::result::Result<T, OptionsError>;

/// Where a `-v` mount's content comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VolumeSource {
    /// `-v /host/path:/dest`: a host directory or file.
    Bind(PathBuf),
    /// `-v name:/dest`: a named volume under the data root.
    Named(String),
    /// `-v /dest`: a fresh volume of this container only (`rm -v` removes it).
    Anonymous,
}

/// One `-v SRC:DST[:ro|rw]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    pub source: VolumeSource,
    pub destination: String,
    pub read_only: bool,
}

/// `--network`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Network {
    /// docker's default: a network namespace of its own, on the default bridge.
    #[default]
    Bridge,
    /// The host's network namespace.
    Host,
    /// A network namespace with only loopback.
    None,
    /// A user-defined network.
    Named(String),
    /// `container:NAME`: the network namespace (and `/etc/hosts`, `/etc/resolv.conf`) of
    /// another container.
    Container(String),
}

impl Network {
    /// The name of the bridge network the container joins, if it joins one.
    pub fn bridge_network(&self) -> Option<&str> {
        match self {
            Network::Bridge => Some(crate::network::store::DEFAULT_NETWORK),
            Network::Named(name) => Some(name),
            Network::Host | Network::None | Network::Container(_) => None,
        }
    }

    /// docker's word for the mode (`HostConfig.NetworkMode`).
    pub fn mode(&self) -> String {
        match self {
            Network::Bridge => "bridge".to_owned(),
            Network::Host => "host".to_owned(),
            Network::None => "none".to_owned(),
            Network::Named(name) => name.clone(),
            Network::Container(name) => format!("container:{name}"),
        }
    }
}

/// A container's configuration from docker's `run`/`create` flags.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunOptions {
    /// `--name`.
    pub name: Option<String>,
    /// `--env-file` entries, then `-e` ones (docker's order; later wins), as `(KEY, VALUE)`.
    pub env: Vec<(String, String)>,
    /// `-v`.
    pub volumes: Vec<Volume>,
    /// `-w`.
    pub workdir: Option<String>,
    /// `-u USER[:GROUP]`, names or numbers.
    pub user: Option<String>,
    /// `--entrypoint`: one word; `Some("")` clears the image's entrypoint.
    pub entrypoint: Option<String>,
    /// `--hostname`.
    pub hostname: Option<String>,
    /// `--read-only`: the root file system is mounted read-only.
    pub read_only: bool,
    /// `--restart`.
    pub restart: RestartPolicy,
    /// `--memory`, in bytes.
    pub memory: Option<u64>,
    /// `--cpus`, in billionths of a CPU (docker's `NanoCPUs`).
    pub nano_cpus: Option<u64>,
    /// `--pids-limit`.
    pub pids_limit: Option<u64>,
    /// `--stop-timeout`, in seconds.
    pub stop_timeout: Option<u32>,
    /// `--stop-signal`, as `SIGNAME`.
    pub stop_signal: Option<String>,
    /// `--network`.
    pub network: Network,
    /// `-p`.
    #[serde(default)]
    pub publish: Vec<PortSpec>,
    /// `-P`: every port the image exposes, on ephemeral host ports.
    #[serde(default)]
    pub publish_all: bool,
    /// `--link`.
    #[serde(default)]
    pub links: Vec<Link>,
    /// `--dns`, `--dns-search`, `--dns-option`.
    #[serde(default)]
    pub dns: Dns,
    /// `--add-host`.
    #[serde(default)]
    pub extra_hosts: Vec<ExtraHost>,
    /// `--rm`: remove the container when it exits.
    pub remove: bool,
    /// `-t`: the container's process gets a terminal (its stdout and stderr are one stream).
    #[serde(default)]
    pub tty: bool,
    /// IMAGE.
    pub image: String,
    /// The arguments after IMAGE; they replace the image's `CMD`.
    pub command: Vec<String>,
}

impl RunOptions {
    /// Checks the flags against each other, as docker does before it creates anything.
    pub fn check(&self) -> Result<()> {
        if self.remove && self.restart != RestartPolicy::No {
            return Err(OptionsError::RestartWithRm(self.restart));
        }
        let conflict = |flag| {
            Err(OptionsError::NetworkConflict {
                network: self.network.mode(),
                flag,
            })
        };
        if self.network.bridge_network().is_none() {
            if !self.links.is_empty() {
                return conflict("--link");
            }
            if !self.publish.is_empty() || self.publish_all {
                return conflict("--publish");
            }
        }
        if let Network::Container(_) = self.network {
            if self.hostname.is_some() {
                return conflict("--hostname");
            }
            if self.dns != Dns::default() {
                return conflict("--dns");
            }
            if !self.extra_hosts.is_empty() {
                return conflict("--add-host");
            }
        }
        Ok(())
    }
}

const KIB: u64 = 1024;
/// docker refuses memory limits below 6 MiB (`linuxMinMemory`).
const MIN_MEMORY: u64 = 6 * KIB * KIB;

/// `--memory`: a number (a fraction allowed) and an optional unit b, k, m or g, any case, with an
/// optional trailing `b` (`64m`, `64MB`, `1.5g`), as docker's `RAMInBytes`.
pub fn parse_memory(text: &str) -> Result<u64> {
    let invalid = || OptionsError::Memory(text.to_owned());
    let lower = text.to_ascii_lowercase();
    let number_end = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (number, unit) = lower.split_at(number_end);
    let multiplier = match unit {
        "" | "b" => 1,
        "k" | "kb" => KIB,
        "m" | "mb" => KIB * KIB,
        "g" | "gb" => KIB * KIB * KIB,
        _ => return Err(invalid()),
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() || (number.contains('.') && fraction.is_empty()) {
        return Err(invalid());
    }
    let bytes = decimal_times(whole, fraction, multiplier).ok_or_else(invalid)?;
    if bytes < MIN_MEMORY {
        return Err(OptionsError::MemoryTooSmall(text.to_owned()));
    }
    Ok(bytes)
}

/// `WHOLE.FRACTION × multiplier`, rounded down; `None` on overflow or non-digits.
fn decimal_times(whole: &str, fraction: &str, multiplier: u64) -> Option<u64> {
    if !(whole.bytes().all(|b| b.is_ascii_digit()) && fraction.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let scale = 10u128.checked_pow(u32::try_from(fraction.len()).ok()?)?;
    let digits: u128 = format!("{whole}{fraction}").parse().ok()?;
    u64::try_from(digits.checked_mul(u128::from(multiplier))? / scale).ok()
}

/// One CPU in docker's `NanoCPUs`.
const NANO_PER_CPU: u64 = 1_000_000_000;

/// `--cpus`: a decimal number of CPUs; `0` means no limit, as in docker.
pub fn parse_cpus(text: &str) -> Result<Option<u64>> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() && fraction.is_empty() {
        return Err(OptionsError::Cpus(text.to_owned()));
    }
    if fraction.len() > 9 {
        return Err(OptionsError::CpusTooPrecise(text.to_owned()));
    }
    let whole = if whole.is_empty() { "0" } else { whole };
    let nano = decimal_times(whole, fraction, NANO_PER_CPU)
        .ok_or_else(|| OptionsError::Cpus(text.to_owned()))?;
    Ok(Some(nano).filter(|&n| n > 0))
}

/// `--pids-limit`: a positive limit; `0` and `-1` mean no limit, as in docker.
pub fn parse_pids_limit(text: &str) -> Result<Option<u64>> {
    match text.parse::<i64>() {
        Ok(n) if n > 0 => Ok(Some(n.unsigned_abs())),
        Ok(0 | -1) => Ok(None),
        _ => Err(OptionsError::PidsLimit(text.to_owned())),
    }
}

/// `--stop-timeout`: whole seconds.
pub fn parse_stop_timeout(text: &str) -> Result<u32> {
    text.parse()
        .map_err(|_| OptionsError::StopTimeout(text.to_owned()))
}

/// Linux's signal names, numbered from 1.
const SIGNALS: [&str; 31] = [
    "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
    "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG",
    "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
];

/// `--stop-signal` (and an image's `StopSignal`): `SIGTERM`, `TERM`, `term`, `15` or
/// `SIGRTMIN+3`-style numbers up to 64, normalized to `SIGNAME` (or the number for real-time
/// signals).
pub fn parse_stop_signal(text: &str) -> Result<String> {
    let invalid = || OptionsError::StopSignal(text.to_owned());
    if let Ok(number) = text.parse::<usize>() {
        return match number {
            1..=31 => Ok(format!("SIG{}", SIGNALS[number - 1])),
            32..=64 => Ok(number.to_string()),
            _ => Err(invalid()),
        };
    }
    let upper = text.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    SIGNALS
        .iter()
        .find(|known| **known == name)
        .map(|known| format!("SIG{known}"))
        .ok_or_else(invalid)
}

/// One environment entry: `KEY=VALUE`, or `KEY` alone to pass the host's value, which
/// `host` looks up (docker drops the variable when the host has none).
fn env_entry(
    text: &str,
    host: &dyn Fn(&str) -> Option<String>,
) -> std::result::Result<Option<(String, String)>, ()> {
    match text.split_once('=') {
        Some(("", _)) => Err(()),
        Some((key, value)) => Ok(Some((key.to_owned(), value.to_owned()))),
        None if text.is_empty() => Err(()),
        None => Ok(host(text).map(|value| (text.to_owned(), value))),
    }
}

/// `-e KEY=VALUE` or `-e KEY`.
pub fn parse_env(
    text: &str,
    host: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<(String, String)>> {
    env_entry(text, host).map_err(|()| OptionsError::Env(text.to_owned()))
}

/// The contents of an `--env-file`: one entry per line as `-e` takes it; blank lines and
/// lines starting with `#` are skipped; leading whitespace is ignored (docker's rules).
pub fn parse_env_file(
    contents: &str,
    host: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>> {
    let mut env = Vec::new();
    for (index, line) in contents.lines().enumerate() {
        let text = line.trim_start();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let entry = env_entry(text, host).map_err(|()| OptionsError::EnvFile {
            line: index + 1,
            text: line.to_owned(),
        })?;
        env.extend(entry);
    }
    Ok(env)
}

/// docker's rule for the names of containers, volumes and networks:
/// `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
pub fn is_object_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// `-v [SOURCE:]DEST[:ro|rw]`: an absolute SOURCE is a bind mount, any other SOURCE a named
/// volume, none an anonymous volume.
pub fn parse_volume(spec: &str) -> Result<Volume> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, destination, mode) = match parts.as_slice() {
        [destination] => (None, *destination, None),
        [source, destination] => (Some(*source), *destination, None),
        [source, destination, mode] => (Some(*source), *destination, Some(*mode)),
        _ => return Err(OptionsError::Volume(spec.to_owned())),
    };
    let read_only = match mode {
        None | Some("rw") => false,
        Some("ro") => true,
        Some(mode) => {
            return Err(OptionsError::VolumeMode {
                spec: spec.to_owned(),
                mode: mode.to_owned(),
            })
        }
    };
    if !destination.starts_with('/') {
        return Err(OptionsError::VolumeDestination {
            spec: spec.to_owned(),
            destination: destination.to_owned(),
        });
    }
    let source = match source {
        None => VolumeSource::Anonymous,
        Some(path) if path.starts_with('/') => VolumeSource::Bind(PathBuf::from(path)),
        Some(name) if is_object_name(name) => VolumeSource::Named(name.to_owned()),
        Some(other) => {
            return Err(OptionsError::VolumeName {
                spec: spec.to_owned(),
                origin: other.to_owned(),
            })
        }
    };
    Ok(Volume {
        source,
        destination: destination.to_owned(),
        read_only,
    })
}

/// `-w`: an absolute path.
pub fn parse_workdir(text: &str) -> Result<String> {
    if text.starts_with('/') {
        Ok(text.to_owned())
    } else {
        Err(OptionsError::Workdir(text.to_owned()))
    }
}

/// `--network host|none|bridge|NAME`.
pub fn parse_network(text: &str) -> Result<Network> {
    Ok(match text {
        "bridge" | "default" => Network::Bridge,
        "host" => Network::Host,
        "none" => Network::None,
        _ if text.starts_with("container:") => match &text["container:".len()..] {
            name if is_object_name(name) => Network::Container(name.to_owned()),
            _ => return Err(OptionsError::Network(text.to_owned())),
        },
        name if is_object_name(name) => Network::Named(name.to_owned()),
        _ => return Err(OptionsError::Network(text.to_owned())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    #[test]
    fn memory_takes_dockers_units() {
        let table = [
            ("64m", Ok(64 * MIB)),
            ("64M", Ok(64 * MIB)),
            ("64mb", Ok(64 * MIB)),
            ("6291456", Ok(6 * MIB)),
            ("6291456b", Ok(6 * MIB)),
            ("8192k", Ok(8 * MIB)),
            ("2g", Ok(2048 * MIB)),
            ("1.5g", Ok(1536 * MIB)),
            ("12q", Err(OptionsError::Memory("12q".into()))),
            ("m", Err(OptionsError::Memory("m".into()))),
            ("", Err(OptionsError::Memory("".into()))),
            ("1.m", Err(OptionsError::Memory("1.m".into()))),
            ("-5m", Err(OptionsError::Memory("-5m".into()))),
            (
                "99999999999g",
                Err(OptionsError::Memory("99999999999g".into())),
            ),
            ("5m", Err(OptionsError::MemoryTooSmall("5m".into()))),
        ];
        for (text, expected) in table {
            assert_eq!(parse_memory(text), expected, "{text:?}");
        }
        assert_eq!(
            parse_memory("12q").unwrap_err().to_string(),
            "invalid --memory \"12q\": expected a number with an optional unit b, k, m or g"
        );
    }

    #[test]
    fn cpus_are_exact_nano_cpus() {
        let table = [
            ("0.5", Ok(Some(500_000_000))),
            ("2", Ok(Some(2_000_000_000))),
            (".25", Ok(Some(250_000_000))),
            ("1.000000001", Ok(Some(1_000_000_001))),
            ("0", Ok(None)),
            ("0.0", Ok(None)),
            (
                "1.0000000001",
                Err(OptionsError::CpusTooPrecise("1.0000000001".into())),
            ),
            ("half", Err(OptionsError::Cpus("half".into()))),
            ("-1", Err(OptionsError::Cpus("-1".into()))),
            (".", Err(OptionsError::Cpus(".".into()))),
        ];
        for (text, expected) in table {
            assert_eq!(parse_cpus(text), expected, "{text:?}");
        }
    }

    #[test]
    fn pids_limit_stop_timeout_and_signals() {
        assert_eq!(parse_pids_limit("100"), Ok(Some(100)));
        assert_eq!(parse_pids_limit("0"), Ok(None));
        assert_eq!(parse_pids_limit("-1"), Ok(None));
        assert!(parse_pids_limit("-2").is_err());
        assert!(parse_pids_limit("many").is_err());
        assert_eq!(parse_stop_timeout("30"), Ok(30));
        assert_eq!(
            parse_stop_timeout("1.5").unwrap_err().to_string(),
            "invalid --stop-timeout \"1.5\": expected whole seconds"
        );
        let signals = [
            ("SIGTERM", Ok("SIGTERM".to_owned())),
            ("quit", Ok("SIGQUIT".to_owned())),
            ("9", Ok("SIGKILL".to_owned())),
            ("40", Ok("40".to_owned())),
            ("SIGNOPE", Err(OptionsError::StopSignal("SIGNOPE".into()))),
            ("0", Err(OptionsError::StopSignal("0".into()))),
            ("65", Err(OptionsError::StopSignal("65".into()))),
        ];
        for (text, expected) in signals {
            assert_eq!(parse_stop_signal(text), expected, "{text:?}");
        }
    }

    #[test]
    fn env_entries_and_files() {
        let host = |key: &str| (key == "HOME").then(|| "/root".to_owned());
        let pair = |k: &str, v: &str| Some((k.to_owned(), v.to_owned()));
        assert_eq!(parse_env("A=1=2", &host), Ok(pair("A", "1=2")));
        assert_eq!(parse_env("A=", &host), Ok(pair("A", "")));
        assert_eq!(parse_env("HOME", &host), Ok(pair("HOME", "/root")));
        assert_eq!(parse_env("UNSET", &host), Ok(None));
        assert_eq!(
            parse_env("=x", &host).unwrap_err().to_string(),
            "invalid --env \"=x\": the variable name is empty"
        );
        let file = "# settings\n\nA=1\n  B=two words\nHOME\nUNSET\n";
        assert_eq!(
            parse_env_file(file, &host).unwrap(),
            [
                ("A".to_owned(), "1".to_owned()),
                ("B".to_owned(), "two words".to_owned()),
                ("HOME".to_owned(), "/root".to_owned()),
            ]
        );
        assert_eq!(
            parse_env_file("A=1\n=oops\n", &host)
                .unwrap_err()
                .to_string(),
            "invalid --env-file line 2 \"=oops\": the variable name is empty"
        );
    }

    #[test]
    fn volumes_are_binds_named_or_anonymous() {
        let volume = |source, destination: &str, read_only| Volume {
            source,
            destination: destination.to_owned(),
            read_only,
        };
        let table = [
            (
                "/srv/data:/data:ro",
                volume(VolumeSource::Bind("/srv/data".into()), "/data", true),
            ),
            (
                "/srv/data:/data:rw",
                volume(VolumeSource::Bind("/srv/data".into()), "/data", false),
            ),
            (
                "db-data:/var/lib/db",
                volume(VolumeSource::Named("db-data".into()), "/var/lib/db", false),
            ),
            ("/cache", volume(VolumeSource::Anonymous, "/cache", false)),
        ];
        for (spec, expected) in table {
            assert_eq!(parse_volume(spec), Ok(expected), "{spec:?}");
        }
        let errors = [
            ("/a:/b:z", "invalid --volume \"/a:/b:z\": unknown mode \"z\" (ro or rw)"),
            ("/a:b", "invalid --volume \"/a:b\": the container path \"b\" is not absolute"),
            ("a:b:c:d", "invalid --volume \"a:b:c:d\": expected [SOURCE:]/DEST[:ro|rw]"),
            (
                "./rel:/b",
                "invalid --volume \"./rel:/b\": \"./rel\" is neither an absolute host path nor a volume name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)",
            ),
        ];
        for (spec, message) in errors {
            assert_eq!(parse_volume(spec).unwrap_err().to_string(), message);
        }
    }

    #[test]
    fn workdir_network_and_flag_conflicts() {
        assert_eq!(parse_workdir("/app"), Ok("/app".to_owned()));
        assert!(parse_workdir("app").is_err());
        let networks = [
            ("host", Network::Host),
            ("none", Network::None),
            ("bridge", Network::Bridge),
            ("backend", Network::Named("backend".into())),
            ("container:db", Network::Container("db".into())),
        ];
        for (text, expected) in networks {
            assert_eq!(parse_network(text), Ok(expected.clone()));
            assert_eq!(
                expected.mode(),
                if text == "bridge" { "bridge" } else { text }
            );
        }
        for bad in ["", "container:", "container:/x", "a b"] {
            assert!(parse_network(bad).is_err(), "{bad:?}");
        }
        let on = |network: Network, change: &dyn Fn(&mut RunOptions)| {
            let mut options = RunOptions {
                network,
                ..RunOptions::default()
            };
            change(&mut options);
            options.check().map_err(|e| e.to_string())
        };
        let publish = |o: &mut RunOptions| o.publish_all = true;
        let link = |o: &mut RunOptions| {
            o.links = vec![crate::network::links::parse_link("db:mongo").unwrap()]
        };
        let hostname = |o: &mut RunOptions| o.hostname = Some("h".into());
        assert_eq!(on(Network::Bridge, &publish), Ok(()));
        assert_eq!(on(Network::Named("n".into()), &link), Ok(()));
        assert_eq!(
            on(Network::Host, &publish).unwrap_err(),
            "conflicting options: --network host and --publish"
        );
        assert_eq!(
            on(Network::None, &link).unwrap_err(),
            "conflicting options: --network none and --link"
        );
        assert_eq!(
            on(Network::Container("db".into()), &hostname).unwrap_err(),
            "conflicting options: --network container:db and --hostname"
        );
        let options = RunOptions {
            remove: true,
            restart: RestartPolicy::Always,
            ..RunOptions::default()
        };
        assert_eq!(
            options.check().unwrap_err().to_string(),
            "conflicting options: --restart always and --rm"
        );
        assert_eq!(RunOptions::default().check(), Ok(()));
    }

    #[test]
    fn options_round_trip_through_json() {
        let options = RunOptions {
            name: Some("web".into()),
            env: vec![("A".into(), "1".into())],
            volumes: vec![parse_volume("data:/data:ro").unwrap()],
            restart: "on-failure:3".parse().unwrap(),
            memory: Some(parse_memory("64m").unwrap()),
            nano_cpus: parse_cpus("0.5").unwrap(),
            network: Network::Named("backend".into()),
            image: "nginx:1.27".into(),
            command: vec!["nginx".into(), "-g".into(), "daemon off;".into()],
            tty: true,
            ..RunOptions::default()
        };
        let json = serde_json::to_string(&options).unwrap();
        assert_eq!(serde_json::from_str::<RunOptions>(&json).unwrap(), options);
    }

    #[test]
    fn records_written_before_tty_existed_have_no_terminal() {
        let mut json = serde_json::to_value(RunOptions::default()).unwrap();
        json.as_object_mut().unwrap().remove("tty");
        let options: RunOptions = serde_json::from_value(json).unwrap();
        assert!(!options.tty);
    }
}
