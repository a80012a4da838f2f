//! How docker shows containers: `ps`'s STATUS words, its table row and `--format json` line,
//! `inspect`'s `ContainerJSON` object, and the wording of times they share (go-units'
//! `HumanDuration`, RFC 3339 and Go's `time.Time.String`).
//!
//! Pure: the clock comes in as `now`, the container's directory as a path; nothing is read.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use oci_spec::runtime::Spec;
use serde_json::{json, Value};

use super::container::{Container, Endpoint, MountKind, MountPoint, Status};
use super::image_config::ImageConfig;
use super::options::{RunOptions, VolumeSource};
use super::restart::RestartPolicy;
use crate::network::files::{ExtraHost, HostAddress};
use crate::network::ports::inspect_ports;

/// Go's zero `time.Time` as docker's JSON prints an unset time.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// How wide docker's `ps` lets COMMAND be without `--no-trunc`.
const COMMAND_WIDTH: usize = 20;
/// How wide docker's `ps` lets a mount's name be without `--no-trunc`.
const MOUNT_WIDTH: usize = 15;

/// A duration in docker's words (go-units `HumanDuration`): `Less than a second`, `1 second`,
/// `About a minute`, `5 minutes`, `About an hour`, `30 hours`, `3 days`, `2 weeks`,
/// `13 months`, `2 years`.
pub fn human_duration(duration: Duration) -> String {
    let seconds = duration.as_secs();
    let minutes = seconds / 60;
    // go-units rounds hours to the nearest one.
    let hours = (seconds + 1800) / 3600;
    match () {
        () if seconds < 1 => "Less than a second".to_owned(),
        () if seconds == 1 => "1 second".to_owned(),
        () if seconds < 60 => format!("{seconds} seconds"),
        () if minutes == 1 => "About a minute".to_owned(),
        () if minutes < 60 => format!("{minutes} minutes"),
        () if hours == 1 => "About an hour".to_owned(),
        () if hours < 48 => format!("{hours} hours"),
        () if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        () if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        () if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        () => format!("{} years", seconds / 3600 / 24 / 365),
    }
}

/// How long before `now` `then` was: `3 minutes ago` (a time in the future reads as now).
pub fn ago(then: SystemTime, now: SystemTime) -> String {
    format!("{} ago", human_duration(since(then, now)))
}

fn since(then: SystemTime, now: SystemTime) -> Duration {
    now.duration_since(then).unwrap_or_default()
}

/// A time as Go's RFC3339Nano in UTC, as docker's JSON has it: `2024-05-01T12:00:00.5Z`
/// (trailing zeros of the fraction dropped, no fraction for whole seconds).
pub fn rfc3339_nano(time: SystemTime) -> String {
    let text = humantime::format_rfc3339_nanos(time).to_string();
    match text.split_once('.') {
        Some((seconds, fraction)) => {
            let digits = fraction.trim_end_matches('Z').trim_end_matches('0');
            if digits.is_empty() {
                format!("{seconds}Z")
            } else {
                format!("{seconds}.{digits}Z")
            }
        }
        None => text,
    }
}

/// An optional time as docker's JSON prints it: [`ZERO_TIME`] when unset.
pub fn docker_time(time: Option<SystemTime>) -> String {
    time.map_or_else(|| ZERO_TIME.to_owned(), rfc3339_nano)
}

/// A time to the second as Go's `time.Time.String` in UTC, docker's `CreatedAt`:
/// `2024-05-01 12:00:00 +0000 UTC`.
pub fn created_at(time: SystemTime) -> String {
    let text = humantime::format_rfc3339_seconds(time).to_string();
    let (date, clock) = text.split_once('T').unwrap_or((&text, ""));
    format!("{date} {} +0000 UTC", clock.trim_end_matches('Z'))
}

/// docker's `ps` STATUS of a container: `Created`, `Up 5 minutes`, `Restarting (1) 2 seconds
/// ago`, `Exited (0) 3 minutes ago`, `Removal In Progress` (moby `container.State.String`).
pub fn status_text(container: &Container, now: SystemTime) -> String {
    let state = &container.state;
    let ended = |finished: SystemTime| format!("({}) {}", state.exit_code, ago(finished, now));
    match state.status {
        Status::Created => "Created".to_owned(),
        Status::Running => format!(
            "Up {}",
            human_duration(
                state
                    .started_at
                    .map_or(Duration::ZERO, |started| since(started, now))
            )
        ),
        Status::Restarting => format!("Restarting {}", ended(state.finished_at.unwrap_or(now))),
        Status::Removing => "Removal In Progress".to_owned(),
        // A container whose first start failed never ran: docker still calls it created.
        Status::Exited if state.started_at.is_none() => "Created".to_owned(),
        Status::Exited => state.finished_at.map_or_else(String::new, |finished| {
            format!("Exited {}", ended(finished))
        }),
    }
}

/// One line of docker's `ps` table, truncated as docker does without `--no-trunc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PsRow {
    /// CONTAINER ID: the 12-digit short ID.
    pub id: String,
    /// IMAGE: as the user named it.
    pub image: String,
    /// COMMAND: quoted as Go's `strconv.Quote`, at most 20 characters inside the quotes.
    pub command: String,
    /// CREATED: `5 minutes ago`.
    pub created: String,
    /// STATUS: [`status_text`].
    pub status: String,
    /// PORTS: published ports (none: flotilla publishes no ports).
    pub ports: String,
    /// NAMES.
    pub names: String,
}

impl PsRow {
    /// docker's column titles, in order.
    pub const HEADER: [&'static str; 7] = [
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ];

    /// The row's cells in the order of [`PsRow::HEADER`].
    pub fn cells(&self) -> [&str; 7] {
        [
            &self.id,
            &self.image,
            &self.command,
            &self.created,
            &self.status,
            &self.ports,
            &self.names,
        ]
    }
}

/// The `ps` table row of a container.
pub fn ps_row(container: &Container, now: SystemTime) -> PsRow {
    PsRow {
        id: container.short_id().to_owned(),
        image: container.image.clone(),
        command: go_quote(&ellipsis(&command_line(container), COMMAND_WIDTH)),
        created: ago(container.created, now),
        status: status_text(container, now),
        ports: ps_ports(container),
        names: container.name.clone(),
    }
}

/// docker's `ps --format json` object of a container (printed one per line).
pub fn ps_json(container: &Container, now: SystemTime) -> Value {
    let row = ps_row(container, now);
    let mounts: Vec<String> = container
        .mounts
        .iter()
        .map(|m| ellipsis(m.name.as_deref().unwrap_or(&m.source), MOUNT_WIDTH))
        .collect();
    let local_volumes = container
        .mounts
        .iter()
        .filter(|m| m.kind == MountKind::Volume)
        .count();
    json!({
        "Command": row.command,
        "CreatedAt": created_at(container.created),
        "ID": row.id,
        "Image": row.image,
        "Labels": "",
        "LocalVolumes": local_volumes.to_string(),
        "Mounts": mounts.join(","),
        "Names": row.names,
        "Networks": network_names(container),
        "Ports": row.ports,
        "RunningFor": row.created,
        "Size": "0B",
        "State": container.state.status.as_str(),
        "Status": row.status,
    })
}

/// docker's `inspect` object (`ContainerJSON`) of a container made from `image`'s config,
/// with runtime configuration `spec`, kept in the directory `dir`; what flotilla knows beyond
/// docker is under `Flotilla`.
pub fn inspect(container: &Container, spec: &Spec, image: &ImageConfig, dir: &Path) -> Value {
    let state = &container.state;
    let options = &container.options;
    let path_in = |name: &str| dir.join(name).display().to_string();
    let network = options.network.mode();
    json!({
        "Id": container.id,
        "Created": rfc3339_nano(container.created),
        "Path": container.path,
        "Args": container.args,
        "State": {
            "Status": state.status.as_str(),
            "Running": container.is_active(),
            "Paused": false,
            "Restarting": state.status == Status::Restarting,
            "OOMKilled": state.oom_killed,
            "Dead": false,
            "Pid": state.pid,
            "ExitCode": state.exit_code,
            "Error": state.error,
            "StartedAt": docker_time(state.started_at),
            "FinishedAt": docker_time(state.finished_at),
        },
        "Image": container.image_id,
        "ResolvConfPath": path_in("resolv.conf"),
        "HostnamePath": path_in("hostname"),
        "HostsPath": path_in("hosts"),
        "LogPath": container.log.as_ref().and_then(|l| l.path.clone()).unwrap_or_default(),
        "Name": format!("/{}", container.name),
        "RestartCount": container.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": null,
        "HostConfig": {
            "Binds": binds(container),
            "NetworkMode": network,
            "PortBindings": port_bindings(options),
            "Links": (!options.links.is_empty()).then(|| options
                .links
                .iter()
                .map(|l| format!("/{}:/{}/{}", l.name, container.name, l.alias))
                .collect::<Vec<_>>()),
            "Dns": options.dns.servers,
            "DnsSearch": options.dns.search,
            "DnsOptions": options.dns.options,
            "ExtraHosts": (!options.extra_hosts.is_empty()).then(|| options
                .extra_hosts
                .iter()
                .map(extra_host)
                .collect::<Vec<_>>()),
            "RestartPolicy": restart_policy(options.restart),
            "AutoRemove": options.remove,
            "LogConfig": {
                "Type": container.log.as_ref().map_or("none", |l| l.driver.as_str()),
                "Config": {},
            },
            "Privileged": false,
            "PublishAllPorts": options.publish_all,
            "ReadonlyRootfs": options.read_only,
            "ShmSize": 64 << 20,
            "Memory": options.memory.unwrap_or(0),
            "NanoCpus": options.nano_cpus.unwrap_or(0),
            "PidsLimit": options.pids_limit,
        },
        "GraphDriver": {
            "Name": "overlay2",
            "Data": {
                "UpperDir": path_in("upper"),
                "WorkDir": path_in("work"),
                "MergedDir": spec.root().as_ref().map_or_else(
                    || path_in("merged"),
                    |root| root.path().display().to_string(),
                ),
            },
        },
        "Mounts": container.mounts.iter().map(mount).collect::<Vec<_>>(),
        "Config": config(container, spec, image),
        "NetworkSettings": network_settings(container),
        "Flotilla": {
            "ConfigPath": path_in("config.json"),
            "Supervisor": { "Pid": state.shim_pid },
            "Systemd": container.systemd,
        },
    })
}

/// `inspect`'s `Config`: what the container was configured with, docker's way.
fn config(container: &Container, spec: &Spec, image: &ImageConfig) -> Value {
    let options = &container.options;
    let process = spec.process().as_ref();
    let (entrypoint, cmd) = match options.entrypoint.as_deref() {
        Some("") => (None, None),
        Some(entrypoint) => (Some(vec![entrypoint.to_owned()]), None),
        None => (image.entrypoint.clone(), image.cmd.clone()),
    };
    let cmd = Some(options.command.clone())
        .filter(|c| !c.is_empty())
        .or(cmd);
    let user = options.user.clone().unwrap_or_else(|| {
        process.map_or_else(String::new, |p| match (p.user().uid(), p.user().gid()) {
            (0, 0) => String::new(),
            (uid, gid) => format!("{uid}:{gid}"),
        })
    });
    let volumes: BTreeMap<&str, Value> = options
        .volumes
        .iter()
        .filter(|v| v.source == VolumeSource::Anonymous)
        .map(|v| (v.destination.as_str(), json!({})))
        .collect();
    json!({
        "Hostname": spec.hostname().clone().unwrap_or_default(),
        "Domainname": "",
        "User": user,
        "AttachStdin": false,
        "AttachStdout": false,
        "AttachStderr": false,
        "ExposedPorts": image.exposed_ports,
        "Tty": options.tty,
        "OpenStdin": false,
        "StdinOnce": false,
        "Env": process.and_then(|p| p.env().clone()).unwrap_or_default(),
        "Cmd": cmd,
        "Image": container.image,
        "Volumes": Some(volumes).filter(|v| !v.is_empty()),
        "WorkingDir": process.map(|p| p.cwd().display().to_string()).unwrap_or_default(),
        "Entrypoint": entrypoint,
        "OnBuild": null,
        "Labels": image.labels.clone().unwrap_or_default(),
        "StopSignal": container.stop_signal,
        "StopTimeout": options.stop_timeout,
    })
}

/// `HostConfig.Binds`: the `-v` mounts with a source, as typed (anonymous volumes are not
/// binds).
fn binds(container: &Container) -> Vec<String> {
    container
        .options
        .volumes
        .iter()
        .filter_map(|volume| {
            let source = match &volume.source {
                VolumeSource::Bind(path) => path.display().to_string(),
                VolumeSource::Named(name) => name.clone(),
                VolumeSource::Anonymous => return None,
            };
            let mode = if volume.read_only { ":ro" } else { "" };
            Some(format!("{source}:{}{mode}", volume.destination))
        })
        .collect()
}

/// `HostConfig.RestartPolicy`.
fn restart_policy(policy: RestartPolicy) -> Value {
    let (name, count) = match policy {
        RestartPolicy::No => ("no", 0),
        RestartPolicy::Always => ("always", 0),
        RestartPolicy::UnlessStopped => ("unless-stopped", 0),
        RestartPolicy::OnFailure { max_retries } => ("on-failure", max_retries.unwrap_or(0)),
    };
    json!({ "Name": name, "MaximumRetryCount": count })
}

/// One of `inspect`'s `Mounts`: volumes have a name and docker's `local` driver.
fn mount(mount: &MountPoint) -> Value {
    let mut value = json!({
        "Type": "bind",
        "Source": mount.source,
        "Destination": mount.destination,
        "Mode": if mount.read_write { "" } else { "ro" },
        "RW": mount.read_write,
        "Propagation": "rprivate",
    });
    if mount.kind == MountKind::Volume {
        value["Type"] = "volume".into();
        value["Name"] = json!(mount.name);
        value["Driver"] = "local".into();
        value["Mode"] = if mount.read_write { "z" } else { "ro" }.into();
        value["Propagation"] = "".into();
    }
    value
}

/// `inspect`'s `NetworkSettings`: the address on the default bridge at the top (docker's
/// legacy fields), one entry per network joined, the published ports while it runs.
fn network_settings(container: &Container) -> Value {
    let endpoint_json = |e: Option<&Endpoint>| {
        json!({
            "IPAMConfig": null,
            "Links": null,
            "Aliases": null,
            "NetworkID": e.map_or("", |e| e.network_id.as_str()),
            "EndpointID": "",
            "Gateway": e.map_or(String::new(), |e| e.gateway.to_string()),
            "IPAddress": e.map_or(String::new(), |e| e.address.to_string()),
            "IPPrefixLen": e.map_or(0, |e| e.prefix),
            "MacAddress": e.map_or("", |e| e.mac.as_str()),
        })
    };
    let networks: serde_json::Map<String, Value> = if container.endpoints.is_empty() {
        [(container.options.network.mode(), endpoint_json(None))]
            .into_iter()
            .collect()
    } else {
        container
            .endpoints
            .iter()
            .map(|e| (e.network.clone(), endpoint_json(Some(e))))
            .collect()
    };
    let default = container
        .endpoints
        .iter()
        .find(|e| e.network == crate::network::store::DEFAULT_NETWORK);
    let running = container.is_active();
    json!({
        "Bridge": "",
        "SandboxID": "",
        "Ports": if running {
            json!(inspect_ports(&container.ports, &container.exposed))
        } else {
            json!({})
        },
        "IPAddress": default.map_or(String::new(), |e| e.address.to_string()),
        "IPPrefixLen": default.map_or(0, |e| e.prefix),
        "Gateway": default.map_or(String::new(), |e| e.gateway.to_string()),
        "MacAddress": default.map_or("", |e| e.mac.as_str()),
        "Networks": networks,
    })
}

/// `ps`'s NETWORKS: the networks joined, by commas, else the mode.
fn network_names(container: &Container) -> String {
    if container.endpoints.is_empty() {
        return container.options.network.mode();
    }
    let names: Vec<&str> = container
        .endpoints
        .iter()
        .map(|e| e.network.as_str())
        .collect();
    names.join(",")
}

/// `ps`'s PORTS while it runs: `0.0.0.0:8080->80/tcp` for each published port, then the
/// exposed ports not published (`443/tcp`), by commas.
fn ps_ports(container: &Container) -> String {
    if !container.is_active() {
        return String::new();
    }
    let mut parts: Vec<String> = container
        .ports
        .iter()
        .map(|b| format!("{}->{}", b.host_address(), b.container()))
        .collect();
    parts.extend(
        container
            .exposed
            .iter()
            .filter(|port| !container.ports.iter().any(|b| b.container() == **port))
            .map(ToString::to_string),
    );
    parts.join(", ")
}

/// `HostConfig.PortBindings`: the `-p` values as docker keeps them (`"80/tcp":
/// [{"HostIp": "", "HostPort": "8080"}]`, an empty string where the value named none).
fn port_bindings(options: &RunOptions) -> Value {
    let mut bindings: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for spec in &options.publish {
        for (index, port) in spec.container_ports.ports().enumerate() {
            let host_port = spec.host_ports.map_or(String::new(), |range| {
                if range.count() == spec.container_ports.count() {
                    (range.start + index as u16).to_string()
                } else {
                    range.to_string()
                }
            });
            bindings
                .entry(format!("{port}/{}", spec.protocol))
                .or_default()
                .push(json!({
                    "HostIp": spec.host_ip.map_or(String::new(), |ip| ip.to_string()),
                    "HostPort": host_port,
                }));
        }
    }
    json!(bindings)
}

/// One `HostConfig.ExtraHosts` entry, `NAME:ADDRESS` as given.
fn extra_host(host: &ExtraHost) -> String {
    let address = match host.address {
        HostAddress::Ip(ip) => ip.to_string(),
        HostAddress::HostGateway => crate::network::files::HOST_GATEWAY.to_owned(),
    };
    format!("{}:{address}", host.name)
}

/// The command as docker's container list has it: the path, then the arguments, by spaces.
fn command_line(container: &Container) -> String {
    std::iter::once(container.path.as_str())
        .chain(container.args.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ")
}

/// docker's `Ellipsis`: `text` cut to `width` characters, the last one `…`, if longer.
fn ellipsis(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// `text` in double quotes with Go's `strconv.Quote` escapes.
fn go_quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\t' => quoted.push_str("\\t"),
            '\r' => quoted.push_str("\\r"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                quoted.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => quoted.push_str(&format!("\\u{:04x}", c as u32)),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::engine::container::{LogTarget, State};
    use crate::engine::options::Volume;
    use crate::engine::spec::{runtime_spec, Host, Ids};

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    /// 2024-05-01T12:00:00Z.
    const T0: u64 = 1_714_564_800;

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(T0 + seconds)
    }

    fn container() -> Container {
        Container {
            args: vec!["-c".to_owned(), "while true; do sleep 1; done".to_owned()],
            ..Container::example(at(0))
        }
    }

    fn with_state(
        status: Status,
        exit_code: i32,
        started: Option<u64>,
        finished: Option<u64>,
    ) -> Container {
        let mut c = container();
        c.state = State {
            status,
            exit_code,
            started_at: started.map(at),
            finished_at: finished.map(at),
            ..State::default()
        };
        c
    }

    #[test]
    fn durations_read_like_go_units() {
        let table: [(u64, &str); 16] = [
            (0, "Less than a second"),
            (1, "1 second"),
            (59, "59 seconds"),
            (60, "About a minute"),
            (119, "About a minute"),
            (120, "2 minutes"),
            (3599, "59 minutes"),
            (3600, "About an hour"),
            (5399, "About an hour"),
            (5400, "2 hours"),
            (47 * 3600, "47 hours"),
            (48 * 3600, "2 days"),
            (14 * 86_400, "2 weeks"),
            (60 * 86_400, "2 months"),
            (400 * 86_400, "13 months"),
            (800 * 86_400, "2 years"),
        ];
        for (seconds, words) in table {
            assert_eq!(
                human_duration(Duration::from_secs(seconds)),
                words,
                "{seconds}s"
            );
        }
        assert_eq!(
            human_duration(Duration::from_millis(999)),
            "Less than a second"
        );
        assert_eq!(ago(at(10), at(0)), "Less than a second ago");
    }

    #[test]
    fn status_reads_like_docker_ps() {
        let table = [
            (with_state(Status::Created, 0, None, None), 50, "Created"),
            (
                with_state(Status::Exited, 127, None, Some(1)),
                50,
                "Created",
            ),
            (
                with_state(Status::Running, 0, Some(10), None),
                310,
                "Up 5 minutes",
            ),
            (
                with_state(Status::Running, 0, Some(10), None),
                10,
                "Up Less than a second",
            ),
            (
                with_state(Status::Restarting, 1, Some(10), Some(20)),
                22,
                "Restarting (1) 2 seconds ago",
            ),
            (
                with_state(Status::Exited, 0, Some(10), Some(20)),
                200,
                "Exited (0) 3 minutes ago",
            ),
            (
                with_state(Status::Exited, 137, Some(10), Some(20)),
                20 + 3 * 86_400,
                "Exited (137) 3 days ago",
            ),
            (
                with_state(Status::Removing, 0, Some(10), Some(20)),
                30,
                "Removal In Progress",
            ),
        ];
        for (c, now, text) in table {
            assert_eq!(
                status_text(&c, at(now)),
                text,
                "{:?} at {now}",
                c.state.status
            );
        }
    }

    #[test]
    fn times_print_as_docker_json_and_go() {
        assert_eq!(rfc3339_nano(at(0)), "2024-05-01T12:00:00Z");
        assert_eq!(
            rfc3339_nano(at(0) + Duration::from_millis(500)),
            "2024-05-01T12:00:00.5Z"
        );
        assert_eq!(
            rfc3339_nano(at(0) + Duration::from_nanos(123_456_789)),
            "2024-05-01T12:00:00.123456789Z"
        );
        assert_eq!(docker_time(None), "0001-01-01T00:00:00Z");
        assert_eq!(
            created_at(at(0) + Duration::from_millis(700)),
            "2024-05-01 12:00:00 +0000 UTC"
        );
    }

    #[test]
    fn ps_row_truncates_the_command_and_names_the_columns() {
        let c = with_state(Status::Running, 0, Some(5), None);
        let row = ps_row(&c, at(300));
        assert_eq!(
            row.cells(),
            [
                "0123456789ab",
                "busybox",
                "\"sh -c while true; d…\"",
                "5 minutes ago",
                "Up 4 minutes",
                "",
                "web",
            ]
        );
        let mut short = c.clone();
        short.args = vec!["say \"hi\"".to_owned()];
        assert_eq!(ps_row(&short, at(300)).command, r#""sh say \"hi\"""#);
    }

    #[test]
    fn ps_json_has_docker_keys() {
        let mut c = with_state(Status::Exited, 2, Some(5), Some(60));
        c.mounts = vec![
            MountPoint {
                kind: MountKind::Volume,
                name: Some("a-rather-long-volume-name".to_owned()),
                source: "/var/lib/flotilla/volumes/data/_data".to_owned(),
                destination: "/data".to_owned(),
                read_write: true,
                anonymous: false,
            },
            MountPoint {
                kind: MountKind::Bind,
                name: None,
                source: "/srv".to_owned(),
                destination: "/srv".to_owned(),
                read_write: false,
                anonymous: false,
            },
        ];
        let line = ps_json(&c, at(120));
        assert_eq!(
            line,
            json!({
                "Command": "\"sh -c while true; d…\"",
                "CreatedAt": "2024-05-01 12:00:00 +0000 UTC",
                "ID": "0123456789ab",
                "Image": "busybox",
                "Labels": "",
                "LocalVolumes": "1",
                "Mounts": "a-rather-long-…,/srv",
                "Names": "web",
                "Networks": "bridge",
                "Ports": "",
                "RunningFor": "2 minutes ago",
                "Size": "0B",
                "State": "exited",
                "Status": "Exited (2) About a minute ago",
            })
        );
    }

    fn inspected() -> Value {
        let mut c = with_state(Status::Exited, 3, Some(5), Some(60));
        c.restart_count = 2;
        c.systemd = true;
        c.state.shim_pid = 0;
        c.log = Some(LogTarget {
            driver: "json-file".to_owned(),
            path: Some("/d/c/web-json.log".to_owned()),
        });
        c.options.env = vec![("GREETING".to_owned(), "hi".to_owned())];
        c.options.restart = RestartPolicy::OnFailure {
            max_retries: Some(10),
        };
        c.options.memory = Some(64 << 20);
        c.options.tty = true;
        c.options.volumes = vec![
            Volume {
                source: VolumeSource::Named("data".to_owned()),
                destination: "/data".to_owned(),
                read_only: false,
            },
            Volume {
                source: VolumeSource::Anonymous,
                destination: "/cache".to_owned(),
                read_only: false,
            },
            Volume {
                source: VolumeSource::Bind(PathBuf::from("/srv")),
                destination: "/srv".to_owned(),
                read_only: true,
            },
        ];
        c.mounts = vec![MountPoint {
            kind: MountKind::Volume,
            name: Some("data".to_owned()),
            source: "/d/volumes/data/_data".to_owned(),
            destination: "/data".to_owned(),
            read_write: true,
            anonymous: false,
        }];
        let image = ImageConfig {
            cmd: Some(vec!["sh".to_owned()]),
            env: Some(vec!["PATH=/bin".to_owned()]),
            ..ImageConfig::default()
        };
        c.options.publish =
            vec![crate::network::ports::parse_publish("127.0.0.1:8080:80").unwrap()];
        c.options.links = vec![crate::network::links::parse_link("db:mongo").unwrap()];
        c.options.dns.servers = vec!["10.0.0.53".parse().unwrap()];
        c.options.extra_hosts =
            vec![crate::network::files::parse_add_host("gw:host-gateway").unwrap()];
        c.endpoints = vec![Endpoint {
            network: "bridge".to_owned(),
            network_id: "n1".to_owned(),
            address: "10.222.0.2".parse().unwrap(),
            prefix: 16,
            gateway: "10.222.0.1".parse().unwrap(),
            mac: "02:42:0a:de:00:02".to_owned(),
            host_interface: "fv0123456789ab00".to_owned(),
        }];
        let ids = Ids {
            container_id: ID,
            name: "web",
            volumes_root: Path::new("/d/volumes"),
            network: crate::engine::spec::NetworkSetup {
                netns: Some(Path::new("/d/c/netns")),
                files: Path::new("/d/c"),
                link_env: &[],
            },
        };
        let host = Host {
            nofile_hard: 1024,
            hostname: "node",
        };
        let spec = runtime_spec(&image, &c.options, Path::new("/d/c/rootfs"), &ids, &host).unwrap();
        inspect(&c, &spec, &image, Path::new("/d/c"))
    }

    #[test]
    fn inspect_answers_what_docker_scripts_ask() {
        let v = inspected();
        let table: [(&str, Value); 14] = [
            ("/Id", json!(ID)),
            ("/Name", json!("/web")),
            ("/Created", json!("2024-05-01T12:00:00Z")),
            ("/State/Status", json!("exited")),
            ("/State/Running", json!(false)),
            ("/State/ExitCode", json!(3)),
            ("/State/StartedAt", json!("2024-05-01T12:00:05Z")),
            ("/RestartCount", json!(2)),
            (
                "/HostConfig/RestartPolicy",
                json!({"Name": "on-failure", "MaximumRetryCount": 10}),
            ),
            ("/HostConfig/Binds", json!(["data:/data", "/srv:/srv:ro"])),
            ("/HostConfig/Memory", json!(64 << 20)),
            (
                "/Config/Env",
                json!([
                    "HOSTNAME=0123456789ab",
                    "PATH=/bin",
                    "GREETING=hi",
                    "TERM=xterm"
                ]),
            ),
            ("/Mounts/0/Source", json!("/d/volumes/data/_data")),
            ("/Config/Volumes", json!({"/cache": {}})),
        ];
        for (pointer, expected) in table {
            assert_eq!(v.pointer(pointer), Some(&expected), "{pointer}");
        }
    }

    #[test]
    fn inspect_snapshot() {
        let v = inspected();
        let hostconfig = json!({
            "Binds": ["data:/data", "/srv:/srv:ro"],
            "NetworkMode": "bridge",
            "PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]},
            "Links": ["/db:/web/mongo"],
            "Dns": ["10.0.0.53"],
            "DnsSearch": [],
            "DnsOptions": [],
            "ExtraHosts": ["gw:host-gateway"],
            "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 10},
            "AutoRemove": false,
            "LogConfig": {"Type": "json-file", "Config": {}},
            "Privileged": false,
            "PublishAllPorts": false,
            "ReadonlyRootfs": false,
            "ShmSize": 67_108_864,
            "Memory": 67_108_864,
            "NanoCpus": 0,
            "PidsLimit": null,
        });
        let config = json!({
            "Hostname": "0123456789ab",
            "Domainname": "",
            "User": "",
            "AttachStdin": false,
            "AttachStdout": false,
            "AttachStderr": false,
            "ExposedPorts": null,
            "Tty": true,
            "OpenStdin": false,
            "StdinOnce": false,
            "Env": ["HOSTNAME=0123456789ab", "PATH=/bin", "GREETING=hi", "TERM=xterm"],
            "Cmd": ["sh"],
            "Image": "busybox",
            "Volumes": {"/cache": {}},
            "WorkingDir": "/",
            "Entrypoint": null,
            "OnBuild": null,
            "Labels": {},
            "StopSignal": "SIGTERM",
            "StopTimeout": null,
        });
        let networksettings = json!({
            "Bridge": "", "SandboxID": "", "Ports": {}, "IPAddress": "10.222.0.2",
            "IPPrefixLen": 16, "Gateway": "10.222.0.1", "MacAddress": "02:42:0a:de:00:02",
            "Networks": {"bridge": {
                "IPAMConfig": null, "Links": null, "Aliases": null, "NetworkID": "n1",
                "EndpointID": "", "Gateway": "10.222.0.1", "IPAddress": "10.222.0.2",
                "IPPrefixLen": 16, "MacAddress": "02:42:0a:de:00:02",
            }},
        });
        let expected = json!({
            "Id": ID,
            "Created": "2024-05-01T12:00:00Z",
            "Path": "sh",
            "Args": ["-c", "while true; do sleep 1; done"],
            "State": {
                "Status": "exited", "Running": false, "Paused": false, "Restarting": false,
                "OOMKilled": false, "Dead": false, "Pid": 0, "ExitCode": 3, "Error": "",
                "StartedAt": "2024-05-01T12:00:05Z", "FinishedAt": "2024-05-01T12:01:00Z",
            },
            "Image": "sha256:aaaa",
            "ResolvConfPath": "/d/c/resolv.conf",
            "HostnamePath": "/d/c/hostname",
            "HostsPath": "/d/c/hosts",
            "LogPath": "/d/c/web-json.log",
            "Name": "/web",
            "RestartCount": 2,
            "Driver": "overlay2",
            "Platform": "linux",
            "MountLabel": "",
            "ProcessLabel": "",
            "AppArmorProfile": "",
            "ExecIDs": null,
            "HostConfig": hostconfig,
            "GraphDriver": {
                "Name": "overlay2",
                "Data": {
                    "UpperDir": "/d/c/upper",
                    "WorkDir": "/d/c/work",
                    "MergedDir": "/d/c/rootfs",
                },
            },
            "Mounts": [{
                "Type": "volume", "Name": "data", "Source": "/d/volumes/data/_data",
                "Destination": "/data", "Driver": "local", "Mode": "z", "RW": true,
                "Propagation": "",
            }],
            "Config": config,
            "NetworkSettings": networksettings,
            "Flotilla": {
                "ConfigPath": "/d/c/config.json",
                "Supervisor": {"Pid": 0},
                "Systemd": true,
            },
        });
        assert_eq!(v, expected);
    }

    #[test]
    fn a_bind_mount_has_no_name_and_a_restarting_container_is_running() {
        let mut c = with_state(Status::Restarting, 1, Some(5), Some(6));
        c.mounts = vec![MountPoint {
            kind: MountKind::Bind,
            name: None,
            source: "/srv".to_owned(),
            destination: "/srv".to_owned(),
            read_write: false,
            anonymous: false,
        }];
        let spec = Spec::default();
        let v = inspect(&c, &spec, &ImageConfig::default(), Path::new("/d/c"));
        assert_eq!(
            v["Mounts"][0],
            json!({"Type": "bind", "Source": "/srv", "Destination": "/srv", "Mode": "ro",
                   "RW": false, "Propagation": "rprivate"})
        );
        assert_eq!(
            (&v["State"]["Running"], &v["State"]["Restarting"]),
            (&json!(true), &json!(true))
        );
    }
}
