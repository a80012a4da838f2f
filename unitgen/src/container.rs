//! The `[Container]` section: a container described declaratively, expanded into a service.
//!
//! Like podman's quadlet, [`generate`] is a pure function from a unit with a `[Container]`
//! section to a complete service unit whose main process is the engine in the foreground:
//!
//! ```text
//! ExecStart=/usr/bin/flotilla run --name NAME --systemd --replace [flags…] IMAGE [ARGS…]
//! ```
//!
//! - `--systemd` makes the engine the service's main process: the container's output goes to
//!   the journal, its exit code is the unit's result, and SIGTERM from `systemctl stop` stops it
//!   within its stop timeout. Under `--systemd` the engine never restarts a container itself:
//!   `Restart=` (docker's policy names) is mapped onto systemd's `Restart=` and start limits, so
//!   there is exactly one supervisor.
//! - `--replace` makes every start run-or-start: the same configuration starts the existing
//!   container, a changed unit recreates it.
//! - `[Unit]`, `[Service]` and `[Install]` keys the user wrote are kept and win over generated
//!   defaults; `ExecStart=` next to `[Container]` is an error. The original section is kept as
//!   `[X-Container]` so the output can be traced back to its input.
//!
//! Keys are a closed table ([`KEYS`]): an unknown key is an error naming file, line, section and
//! key. Every problem in the section is reported, not only the first.

use crate::diag::{Diagnostics, Location};
use crate::name::UnitName;
use crate::specifier;
use crate::syntax::{Entry, Section, UnitFile};
use crate::words;

/// The section this module expands.
pub const SECTION: &str = "Container";
/// The name the original section is kept under in the output.
pub const TRACE_SECTION: &str = "X-Container";
/// The engine binary generated services run.
pub const ENGINE: &str = "/usr/bin/flotilla";

/// What can be wrong in `[Container]`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ContainerError {
    /// A key that is not in [`KEYS`].
    #[error("unknown key {key:?} in section [{section}]")]
    UnknownKey {
        /// The section.
        section: String,
        /// The key as written.
        key: String,
    },
    /// `Image=` is missing.
    #[error("[Container] needs Image=")]
    MissingImage,
    /// A value that does not have the form the key needs.
    #[error("invalid {key}={value:?}: {reason}")]
    InvalidValue {
        /// The key.
        key: &'static str,
        /// The value as written.
        value: String,
        /// What form was expected.
        reason: &'static str,
    },
    /// `[Service]` sets something the container section generates.
    #[error("{key}= in [Service] cannot be combined with a [Container] section{hint}")]
    ServiceConflict {
        /// The key in `[Service]`.
        key: String,
        /// Advice, starting with "; ".
        hint: &'static str,
    },
}

/// How a key's value becomes engine arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Form {
    /// One value, last wins: `--flag VALUE`.
    Single(&'static str),
    /// Repeated: `--flag VALUE` per value, `Key=` resets.
    Each(&'static str),
    /// Repeated word lists: `--flag WORD` per word, `Key=` resets.
    EachWord(&'static str),
    /// Boolean: `--flag` when true.
    Switch(&'static str),
    /// Handled by dedicated code (image, command, restart, raw arguments).
    Special,
}

/// A `[Container]` key: its name, how it maps to engine arguments, and how it is checked.
#[derive(Clone, Copy, Debug)]
pub struct Key {
    /// The key as written in the unit.
    pub name: &'static str,
    form: Form,
    check: Check,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Check {
    NonEmpty,
    AbsolutePath,
    Port,
    Volume,
    ContainerName,
    Size,
    Cpus,
    PidsLimit,
    Seconds,
    Pull,
    Boolean,
    Restart,
    Words,
}

const fn key(name: &'static str, form: Form, check: Check) -> Key {
    Key { name, form, check }
}

/// Every key `[Container]` accepts, in the order their arguments are generated.
pub const KEYS: &[Key] = &[
    key("Name", Form::Special, Check::ContainerName),
    key("Image", Form::Special, Check::NonEmpty),
    key("Pull", Form::Single("--pull"), Check::Pull),
    key("HostName", Form::Single("--hostname"), Check::NonEmpty),
    key("User", Form::Single("--user"), Check::NonEmpty),
    key("WorkingDir", Form::Single("--workdir"), Check::AbsolutePath),
    key("Entrypoint", Form::Single("--entrypoint"), Check::NonEmpty),
    key("Environment", Form::EachWord("--env"), Check::Words),
    key("EnvironmentFile", Form::Each("--env-file"), Check::NonEmpty),
    key("Network", Form::Single("--network"), Check::NonEmpty),
    key("PublishPort", Form::Each("--publish"), Check::Port),
    key("Link", Form::Each("--link"), Check::NonEmpty),
    key("DNS", Form::Each("--dns"), Check::NonEmpty),
    key("DNSSearch", Form::Each("--dns-search"), Check::NonEmpty),
    key("DNSOption", Form::Each("--dns-option"), Check::NonEmpty),
    key("AddHost", Form::Each("--add-host"), Check::NonEmpty),
    key("Volume", Form::Each("--volume"), Check::Volume),
    key("ReadOnly", Form::Switch("--read-only"), Check::Boolean),
    key("Memory", Form::Single("--memory"), Check::Size),
    key("CPUs", Form::Single("--cpus"), Check::Cpus),
    key("PidsLimit", Form::Single("--pids-limit"), Check::PidsLimit),
    key(
        "StopTimeout",
        Form::Single("--stop-timeout"),
        Check::Seconds,
    ),
    key("Restart", Form::Special, Check::Restart),
    key("EngineArgs", Form::Special, Check::Words),
    key("Exec", Form::Special, Check::Words),
];

/// Generated `[Service]` defaults; a key the user set in `[Service]` wins.
const SERVICE_DEFAULTS: &[(&str, &str)] = &[
    ("Type", "notify"),
    ("NotifyAccess", "main"),
    ("KillMode", "mixed"),
    ("Delegate", "yes"),
    // Pulling an image can take a while; fleet-era units used TimeoutStartSec=0 for the same.
    ("TimeoutStartSec", "900"),
];

/// Seconds systemd waits beyond the container's stop timeout before it kills the engine.
const STOP_MARGIN_SECONDS: u64 = 5;
/// docker's default stop timeout.
const DEFAULT_STOP_TIMEOUT_SECONDS: u64 = 10;

/// True when `unit` has a `[Container]` section.
pub fn is_container(unit: &UnitFile) -> bool {
    unit.has_section(SECTION)
}

/// Expands `unit`'s `[Container]` section into a service called `service` (a `.service` name).
pub fn generate(unit: &UnitFile, service: &UnitName) -> Result<UnitFile, Diagnostics> {
    let mut diagnostics = Diagnostics::default();
    let section_location = unit
        .sections()
        .iter()
        .find(|s| s.name() == SECTION)
        .and_then(Section::location)
        .cloned()
        .unwrap_or_else(|| Location::new(unit.file(), 1, 1));

    for entry in unit
        .sections()
        .iter()
        .filter(|s| s.name() == SECTION)
        .flat_map(Section::entries)
    {
        match KEYS.iter().find(|k| k.name == entry.key()) {
            None => diagnostics.push(
                entry.report_location(unit.file()),
                ContainerError::UnknownKey {
                    section: SECTION.into(),
                    key: entry.key().into(),
                },
            ),
            Some(key) => check_value(unit, key, entry, &mut diagnostics),
        }
    }
    for key in ["ExecStart", "Restart"] {
        if let Some(entry) = unit.last("Service", key) {
            let hint = if key == "Restart" {
                "; set Restart= in [Container] (docker's policy names)"
            } else {
                "; use Exec= in [Container] for the container's command"
            };
            diagnostics.push(
                entry.report_location(unit.file()),
                ContainerError::ServiceConflict {
                    key: key.into(),
                    hint,
                },
            );
        }
    }
    let image = unit
        .last(SECTION, "Image")
        .filter(|e| !e.value().is_empty());
    let Some(image) = image else {
        diagnostics.push(section_location, ContainerError::MissingImage);
        return Err(diagnostics);
    };
    if !diagnostics.is_empty() {
        return Err(diagnostics);
    }

    let argv = engine_argv(unit, service, image.value());
    let mut out = unit.clone();
    for section in out
        .sections_mut()
        .iter_mut()
        .filter(|s| s.name() == SECTION)
    {
        *section = rename(section, TRACE_SECTION);
    }
    if unit.file().starts_with('/') && unit.last("Unit", "SourcePath").is_none() {
        out.section_mut("Unit")
            .push("SourcePath", unit.file().to_string());
    }
    let restart = unit
        .last(SECTION, "Restart")
        .map(Entry::value)
        .unwrap_or("no");
    for (key, value) in restart_settings(restart) {
        let section = if key.starts_with("StartLimit") {
            "Unit"
        } else {
            "Service"
        };
        if unit.last(section, key).is_none() {
            out.section_mut(section).push(key, value);
        }
    }
    let stop_timeout = unit
        .last(SECTION, "StopTimeout")
        .and_then(|e| e.value().parse::<u32>().ok())
        .map_or(DEFAULT_STOP_TIMEOUT_SECONDS, u64::from);
    // systemd expands `$NAME` in ExecStart=; container settings are literal, as with docker, so
    // every `$` is doubled. `%` specifiers are left for systemd to resolve on purpose.
    let argv: Vec<String> = argv.iter().map(|word| word.replace('$', "$$")).collect();
    let service_section = out.section_mut("Service");
    service_section.push("ExecStart", words::join(&argv));
    for (key, value) in SERVICE_DEFAULTS {
        if unit.last("Service", key).is_none() {
            service_section.push(*key, *value);
        }
    }
    if unit.last("Service", "TimeoutStopSec").is_none() {
        service_section.push(
            "TimeoutStopSec",
            (stop_timeout + STOP_MARGIN_SECONDS).to_string(),
        );
    }
    out.sections_mut()
        .sort_by_key(|section| section_rank(section.name()));
    Ok(out)
}

/// Output order: `[Unit]`, `[Service]`, `[Install]`, other sections, then `X-` sections (a
/// stable sort, so the user's own order is kept within each rank).
fn section_rank(name: &str) -> u8 {
    match name {
        "Unit" => 0,
        "Service" => 1,
        "Install" => 2,
        _ if name.starts_with("X-") => 4,
        _ => 3,
    }
}

fn rename(section: &Section, name: &str) -> Section {
    let mut renamed = Section::new(name);
    for entry in section.entries() {
        renamed.push(entry.key(), entry.value());
    }
    renamed
}

/// The container name when `Name=` is not given: the service name without its suffix; for a
/// template or instance `PREFIX-INSTANCE` (container names cannot contain `@`).
fn default_name(service: &UnitName) -> String {
    if service.is_template() {
        "%p-%i".to_owned()
    } else if let Some(instance) = service.instance() {
        format!("{}-{instance}", service.prefix())
    } else {
        service.without_suffix().to_owned()
    }
}

fn engine_argv(unit: &UnitFile, service: &UnitName, image: &str) -> Vec<String> {
    let name = unit
        .last(SECTION, "Name")
        .map_or_else(|| default_name(service), |e| e.value().to_owned());
    let mut argv: Vec<String> = vec![
        ENGINE.into(),
        "run".into(),
        "--name".into(),
        name,
        "--systemd".into(),
        "--replace".into(),
    ];
    for key in KEYS {
        match key.form {
            Form::Single(flag) => {
                if let Some(entry) = unit.last(SECTION, key.name).filter(|e| !e.is_reset()) {
                    argv.extend([flag.to_owned(), entry.value().to_owned()]);
                }
            }
            Form::Each(flag) => {
                for entry in unit.entries_after_reset(SECTION, key.name) {
                    argv.extend([flag.to_owned(), entry.value().to_owned()]);
                }
            }
            Form::EachWord(flag) => {
                for word in words_of(unit, key.name) {
                    argv.extend([flag.to_owned(), word]);
                }
            }
            Form::Switch(flag) => {
                if unit
                    .last(SECTION, key.name)
                    .is_some_and(|e| parse_bool(e.value()) == Some(true))
                {
                    argv.push(flag.to_owned());
                }
            }
            Form::Special => {}
        }
    }
    argv.extend(words_of(unit, "EngineArgs"));
    argv.push(image.to_owned());
    if let Some(exec) = unit.last(SECTION, "Exec") {
        argv.extend(words::split(exec.value()).unwrap_or_default());
    }
    argv
}

/// Every word of a repeatable word-list key, after the last reset (values were checked before).
fn words_of(unit: &UnitFile, key: &str) -> Vec<String> {
    unit.entries_after_reset(SECTION, key)
        .into_iter()
        .flat_map(|entry| words::split(entry.value()).unwrap_or_default())
        .collect()
}

/// docker restart policy → systemd settings. `on-failure:N` allows N restarts in all: the first
/// start plus N restarts, with an infinite start-limit interval.
fn restart_settings(policy: &str) -> Vec<(&'static str, String)> {
    let (name, count) = policy
        .split_once(':')
        .map_or((policy, None), |(n, c)| (n, Some(c)));
    let mut settings = match name {
        "always" | "unless-stopped" => vec![("Restart", "always".to_owned())],
        "on-failure" => vec![("Restart", "on-failure".to_owned())],
        _ => vec![("Restart", "no".to_owned())],
    };
    if name != "no" {
        settings.push(("RestartSec", "1".to_owned()));
    }
    if let Some(count) = count.and_then(|c| c.parse::<u32>().ok()) {
        settings.push(("StartLimitIntervalSec", "infinity".to_owned()));
        settings.push(("StartLimitBurst", count.saturating_add(1).to_string()));
    }
    settings
}

fn parse_bool(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "yes" | "y" | "true" | "t" | "on" => Some(true),
        "0" | "no" | "n" | "false" | "f" | "off" => Some(false),
        _ => None,
    }
}

fn check_value(unit: &UnitFile, key: &Key, entry: &Entry, diagnostics: &mut Diagnostics) {
    let value = entry.value();
    if let Err(error) = specifier::check(value) {
        let location = entry
            .location_of(error.column())
            .unwrap_or_else(|| entry.report_location(unit.file()));
        diagnostics.push(location, error);
        return;
    }
    // A value with a specifier (`%i`, not `%%`) only gets its final form when systemd expands it;
    // its shape is checked by the engine at run time.
    let has_specifier = value.replace("%%", "").contains('%');
    let reason = match key.check {
        _ if value.is_empty() && matches!(key.form, Form::Each(_) | Form::EachWord(_)) => None,
        Check::Words => return check_words(unit, key, entry, diagnostics),
        _ if has_specifier => None,
        Check::NonEmpty => value.is_empty().then_some("a value is required"),
        Check::AbsolutePath => (!value.starts_with('/')).then_some("expected an absolute path"),
        Check::Port => check_port(value).err(),
        Check::Volume => check_volume(value).err(),
        Check::ContainerName => check_container_name(value).err(),
        Check::Size => check_size(value).err(),
        Check::Cpus => match value.parse::<f64>() {
            Ok(cpus) if cpus > 0.0 && cpus.is_finite() => None,
            _ => Some("expected a positive number of CPUs such as 0.5 or 2"),
        },
        Check::PidsLimit => match value.parse::<i64>() {
            Ok(limit) if limit == -1 || limit > 0 => None,
            _ => Some("expected a positive number of processes, or -1 for no limit"),
        },
        Check::Seconds => value
            .parse::<u32>()
            .is_err()
            .then_some("expected a whole number of seconds (at most 4294967295)"),
        Check::Pull => (!matches!(value, "missing" | "always" | "never"))
            .then_some("expected missing, always or never"),
        Check::Boolean => parse_bool(value)
            .is_none()
            .then_some("expected a boolean (yes/no)"),
        Check::Restart => check_restart(value).err(),
    };
    if let Some(reason) = reason {
        let error = ContainerError::InvalidValue {
            key: key.name,
            value: value.to_owned(),
            reason,
        };
        diagnostics.push(
            entry
                .value_location()
                .cloned()
                .unwrap_or_else(|| entry.report_location(unit.file())),
            error,
        );
    }
}

fn check_words(unit: &UnitFile, key: &Key, entry: &Entry, diagnostics: &mut Diagnostics) {
    let at = |offset: usize| {
        entry
            .location_of(offset)
            .unwrap_or_else(|| entry.report_location(unit.file()))
    };
    match words::split(entry.value()) {
        Err(error) => diagnostics.push(at(error.offset()), error),
        Ok(list) if key.name == "Environment" => {
            for word in list {
                let valid = word.split_once('=').is_some_and(|(name, _)| {
                    !name.is_empty()
                        && !name.starts_with(|c: char| c.is_ascii_digit())
                        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                });
                if !valid {
                    let error = ContainerError::InvalidValue {
                        key: "Environment",
                        value: word,
                        reason: "expected NAME=VALUE with NAME of letters, digits and _",
                    };
                    diagnostics.push(at(0), error);
                }
            }
        }
        Ok(_) => {}
    }
}

fn check_restart(value: &str) -> Result<(), &'static str> {
    const REASON: &str = "expected no, always, unless-stopped, on-failure or on-failure:N";
    match value.split_once(':') {
        None if matches!(value, "no" | "always" | "unless-stopped" | "on-failure") => Ok(()),
        Some(("on-failure", count))
            if count.parse::<u32>().is_ok_and(|n| n > 0 && n < u32::MAX) =>
        {
            Ok(())
        }
        _ => Err(REASON),
    }
}

fn check_container_name(value: &str) -> Result<(), &'static str> {
    const REASON: &str = "a container name is a letter or digit followed by letters, digits, _ . -";
    let mut chars = value.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if first_ok && rest_ok {
        Ok(())
    } else {
        Err(REASON)
    }
}

/// docker's memory sizes: a number and an optional unit b, k, m or g (any case).
fn check_size(value: &str) -> Result<(), &'static str> {
    const REASON: &str = "expected a size such as 512m or 2g (units b, k, m, g)";
    let digits =
        value.trim_end_matches(|c: char| matches!(c.to_ascii_lowercase(), 'b' | 'k' | 'm' | 'g'));
    let suffix = &value[digits.len()..];
    match (digits.parse::<u64>(), suffix.len()) {
        (Ok(n), 0 | 1) if n > 0 => Ok(()),
        _ => Err(REASON),
    }
}

fn check_port_number(text: &str) -> bool {
    let (low, high) = text.split_once('-').unwrap_or((text, text));
    match (low.parse::<u16>(), high.parse::<u16>()) {
        (Ok(low), Ok(high)) => low > 0 && low <= high,
        _ => false,
    }
}

/// docker's `-p`: `[[IP:][HOST]:]CONTAINER[/tcp|udp|sctp]`, ports or ranges, IPv6 in brackets.
fn check_port(value: &str) -> Result<(), &'static str> {
    const REASON: &str = "expected [[IP:][HOST_PORT]:]CONTAINER_PORT[/tcp|udp|sctp]";
    let (spec, protocol) = value.rsplit_once('/').unwrap_or((value, "tcp"));
    if !matches!(protocol, "tcp" | "udp" | "sctp") {
        return Err(REASON);
    }
    let (address, ports) = match spec.strip_prefix('[') {
        Some(rest) => {
            let (address, ports) = rest.split_once("]:").ok_or(REASON)?;
            (Some(address), ports)
        }
        None => match spec.matches(':').count() {
            0 | 1 => (None, spec),
            2 => spec
                .split_once(':')
                .map(|(a, p)| (Some(a), p))
                .ok_or(REASON)?,
            _ => return Err(REASON),
        },
    };
    if address.is_some_and(|a| a.parse::<std::net::IpAddr>().is_err()) {
        return Err(REASON);
    }
    let valid = match ports.split_once(':') {
        None => check_port_number(ports),
        Some((host, container)) => {
            (host.is_empty() || check_port_number(host)) && check_port_number(container)
        }
    };
    if valid {
        Ok(())
    } else {
        Err(REASON)
    }
}

/// docker's `-v`: `SOURCE:DEST[:OPTIONS]` with an absolute DEST, or `DEST` alone (anonymous).
fn check_volume(value: &str) -> Result<(), &'static str> {
    const REASON: &str = "expected [SOURCE:]/DEST[:OPTIONS] with an absolute container path";
    let parts: Vec<&str> = value.split(':').collect();
    let destination = match parts.as_slice() {
        [destination] => destination,
        [source, destination] | [source, destination, _] if !source.is_empty() => destination,
        _ => return Err(REASON),
    };
    if destination.starts_with('/') {
        Ok(())
    } else {
        Err(REASON)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generate_text(name: &str, text: &str) -> Result<String, Vec<String>> {
        let (unit, syntax) = UnitFile::parse(name, text);
        assert!(syntax.is_empty(), "{syntax:?}");
        let service = UnitName::parse(name).expect("valid name");
        generate(&unit, &service)
            .map(|unit| unit.to_string())
            .map_err(|d| d.sorted().iter().map(ToString::to_string).collect())
    }

    #[test]
    fn name_resolution_keys_become_the_engines_flags() {
        let out = generate_text(
            "web.service",
            "[Container]\nImage=web\nDNS=10.0.0.53\nDNSSearch=corp.example\nDNSOption=ndots:2\nAddHost=db:10.0.0.7\nAddHost=gw:host-gateway\n",
        )
        .expect("generates");
        assert!(
            out.contains("--dns 10.0.0.53 --dns-search corp.example --dns-option ndots:2 --add-host db:10.0.0.7 --add-host gw:host-gateway web\n"),
            "{out}"
        );
    }

    #[test]
    fn the_declarative_seed_unit() {
        let out = generate_text(
            "mongo.service",
            "[Container]\nImage=mongo\nName=mongo-ins\nPublishPort=27017:27017\nRestart=on-failure:10\n[X-Fleet]\nMachineMetadata=disk=ssd\n",
        )
        .expect("generates");
        assert_eq!(
            out,
            "[Unit]\nStartLimitIntervalSec=infinity\nStartLimitBurst=11\n\
             [Service]\nRestart=on-failure\nRestartSec=1\n\
             ExecStart=/usr/bin/flotilla run --name mongo-ins --systemd --replace --publish 27017:27017 mongo\n\
             Type=notify\nNotifyAccess=main\nKillMode=mixed\nDelegate=yes\nTimeoutStartSec=900\nTimeoutStopSec=15\n\
             [X-Container]\nImage=mongo\nName=mongo-ins\nPublishPort=27017:27017\nRestart=on-failure:10\n\
             [X-Fleet]\nMachineMetadata=disk=ssd\n"
        );
    }

    #[test]
    fn user_service_keys_win_and_exec_start_is_refused() {
        let out = generate_text("web.service", "[Service]\nKillMode=control-group\n[Container]\nImage=nginx\nExec=nginx -g \"daemon off;\"\n")
            .expect("generates");
        assert!(
            out.contains("KillMode=control-group\n") && !out.contains("KillMode=mixed"),
            "{out}"
        );
        assert!(
            out.contains("--name web --systemd --replace nginx nginx -g \"daemon off;\"\n"),
            "{out}"
        );
        let errors = generate_text(
            "web.service",
            "[Service]\nExecStart=/bin/true\n[Container]\nImage=x\n",
        )
        .expect_err("refused");
        assert_eq!(
            errors,
            ["web.service:2:1: error: ExecStart= in [Service] cannot be combined with a [Container] section; use Exec= in [Container] for the container's command"]
        );
    }

    #[test]
    fn dollars_are_literal_and_specifiers_pass_through() {
        let out = generate_text(
            "app@3.service",
            "[Container]\nImage=x\nEnvironment=\"PRICE=$5 each\" HOST=%H\n",
        )
        .expect("generates");
        assert!(
            out.contains("--env \"PRICE=$$5 each\" --env HOST=%H x\n"),
            "{out}"
        );
    }

    #[test]
    fn default_names_follow_the_unit_name() {
        let out = generate_text("app@3.service", "[Container]\nImage=x\n").expect("generates");
        assert!(out.contains("--name app-3 "), "{out}");
        let out = generate_text("app@.service", "[Container]\nImage=x\n").expect("generates");
        assert!(out.contains("--name %p-%i "), "{out}");
    }

    #[test]
    fn every_problem_is_reported_with_its_position() {
        let errors = generate_text(
            "bad.service",
            "[Container]\nBogus=1\nPublishPort=http\nMemory=lots\nRestart=sometimes\nEnvironment=A=1 2B=x\n",
        )
        .expect_err("refused");
        assert_eq!(
            errors,
            [
                "bad.service:1:1: error: [Container] needs Image=",
                "bad.service:2:1: error: unknown key \"Bogus\" in section [Container]",
                "bad.service:3:13: error: invalid PublishPort=\"http\": expected [[IP:][HOST_PORT]:]CONTAINER_PORT[/tcp|udp|sctp]",
                "bad.service:4:8: error: invalid Memory=\"lots\": expected a size such as 512m or 2g (units b, k, m, g)",
                "bad.service:5:9: error: invalid Restart=\"sometimes\": expected no, always, unless-stopped, on-failure or on-failure:N",
                "bad.service:6:13: error: invalid Environment=\"2B=x\": expected NAME=VALUE with NAME of letters, digits and _",
            ]
        );
    }

    #[test]
    fn port_and_volume_forms() {
        for ok in [
            "80",
            "8080:80",
            "127.0.0.1:8080:80",
            "127.0.0.1::80",
            "[::1]:8080:80/udp",
            "7000-7010:7000-7010",
        ] {
            assert_eq!(check_port(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "http",
            "0",
            "80/icmp",
            "a:b:c:d",
            "300.1.1.1:80:80",
            "9-1",
        ] {
            assert!(check_port(bad).is_err(), "{bad}");
        }
        for ok in ["/data", "vol:/data", "/srv:/data:ro"] {
            assert_eq!(check_volume(ok), Ok(()), "{ok}");
        }
        for bad in ["data", "vol:data", ":/data", "a:b:c:d"] {
            assert!(check_volume(bad).is_err(), "{bad}");
        }
    }
}
