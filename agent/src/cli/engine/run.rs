//! `flotilla run` and `flotilla create`: docker's flags, the image pulled when missing, and
//! run-or-start: `run --name N` of an existing N with the same configuration starts it (or
//! leaves it running); a different configuration is an error naming what differs, unless
//! `--replace` recreates it.

use std::process::ExitCode;

use anyhow::Context as _;

use super::attach;
use super::Context;
use crate::containers::create::{create, Outcome};
use crate::containers::launch::{self, Attach, Started};
use crate::containers::store::ContainerStore;
use crate::containers::{control, supervisor, ContainersError};
use crate::engine::container::{differences, Container};
use crate::engine::options::{self, RunOptions};
use crate::engine::restart::RestartPolicy;
use crate::network::files::{self, Dns, ExtraHost};
use crate::network::links::{self, Link};
use crate::network::ports::{self, PortSpec};

/// docker's `run`/`create` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct CreateArgs {
    /// Print help (-h is --hostname, as in docker).
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// Assign a name to the container.
    #[arg(long)]
    pub name: Option<String>,
    /// Set environment variables (KEY=VALUE, or KEY to copy it from this environment).
    #[arg(short = 'e', long = "env", value_name = "KEY[=VALUE]")]
    pub env: Vec<String>,
    /// Read environment variables from a file (one KEY=VALUE per line).
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<std::path::PathBuf>,
    /// Mount a host path, a named volume or an anonymous volume.
    #[arg(short = 'v', long = "volume", value_name = "[SRC:]DST[:ro|rw]")]
    pub volume: Vec<String>,
    /// The working directory inside the container.
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<String>,
    /// The user (name or UID) and group to run as.
    #[arg(short = 'u', long, value_name = "USER[:GROUP]")]
    pub user: Option<String>,
    /// Overwrite the image's ENTRYPOINT (one word; "" clears it).
    #[arg(long, allow_hyphen_values = true)]
    pub entrypoint: Option<String>,
    /// The container's host name.
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Mount the container's root file system read-only.
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// When to restart the container after it exits.
    #[arg(
        long,
        default_value = "no",
        value_name = "no|always|on-failure[:N]|unless-stopped"
    )]
    pub restart: RestartPolicy,
    /// Memory limit (e.g. 64m, 1g).
    #[arg(short = 'm', long, value_parser = options::parse_memory)]
    pub memory: Option<u64>,
    /// Number of CPUs (e.g. 0.5).
    #[arg(long)]
    pub cpus: Option<String>,
    /// Maximum number of processes (0 or -1: unlimited).
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<String>,
    /// Seconds to wait for the stop signal to work before SIGKILL (default 10).
    #[arg(long = "stop-timeout", value_parser = options::parse_stop_timeout)]
    pub stop_timeout: Option<u32>,
    /// The signal that stops the container (default: the image's, else SIGTERM).
    #[arg(long = "stop-signal", value_parser = options::parse_stop_signal)]
    pub stop_signal: Option<String>,
    /// The network: bridge (the default network), a network made with `network create`,
    /// host (the host's own), none (loopback only) or container:NAME (another container's).
    #[arg(
        long,
        alias = "net",
        default_value = "bridge",
        value_name = "bridge|NAME|host|none|container:NAME",
        value_parser = options::parse_network
    )]
    pub network: options::Network,
    /// Publish a container port on the host: -p 8080:80, -p 127.0.0.1:8080:80/udp,
    /// -p 8000-8009:8000-8009, -p 80 (a free host port).
    #[arg(
        short = 'p',
        long = "publish",
        value_name = "[IP:][HOST:]CONTAINER[/tcp|udp]",
        value_parser = ports::parse_publish
    )]
    pub publish: Vec<PortSpec>,
    /// Publish every port the image exposes on free host ports (see `flotilla port`).
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Link to another container: ALIAS resolves to it and ALIAS_PORT_… variables describe it.
    #[arg(long = "link", value_name = "NAME[:ALIAS]", value_parser = links::parse_link)]
    pub link: Vec<Link>,
    /// A DNS server for the container (instead of the host's).
    #[arg(long = "dns", value_name = "IP", value_parser = files::parse_dns)]
    pub dns: Vec<std::net::IpAddr>,
    /// A DNS search domain ("." for none).
    #[arg(long = "dns-search", value_name = "DOMAIN", value_parser = files::parse_dns_search)]
    pub dns_search: Vec<String>,
    /// A resolv.conf option (e.g. ndots:2).
    #[arg(long = "dns-option", alias = "dns-opt", value_name = "OPTION")]
    pub dns_option: Vec<String>,
    /// Add a line to /etc/hosts (IP may be host-gateway, the host as the container sees it).
    #[arg(long = "add-host", value_name = "HOST:IP", value_parser = files::parse_add_host)]
    pub add_host: Vec<ExtraHost>,
    /// Keep standard input open (pass this terminal's input to the container).
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Give the container a terminal (its stdout and stderr become one stream).
    #[arg(short = 't', long)]
    pub tty: bool,
    /// The image.
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// The command and its arguments (replace the image's CMD).
    #[arg(
        value_name = "COMMAND",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<String>,
}

/// `flotilla run`: `create` flags plus how to run it.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    flotilla run --rm busybox echo hello\n  \
    flotilla run -d --name web --restart=always -m 64m busybox httpd -f\n  \
    flotilla run -d --name web busybox httpd -f    (again: nothing to do, web runs)\n  \
    flotilla run -it --rm busybox sh\n  \
    flotilla run -d --name db mongo && flotilla run -d -p 3000:3000 --link db:mongo app\n\n\
    Exit status: the container's, or 125 when flotilla failed, 126 when the command cannot \
    be run, 127 when it does not exist.")]
pub struct RunArgs {
    /// Run in the background and print the container's ID.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Remove the container when it exits.
    #[arg(long = "rm")]
    pub remove: bool,
    /// Run as a systemd service's main process: output to the journal, READY=1 once running,
    /// SIGTERM stops the container, its exit code is the service's; never restarts by itself.
    #[arg(long)]
    pub systemd: bool,
    /// If the named container exists with another configuration, remove and recreate it.
    #[arg(long)]
    pub replace: bool,
    #[command(flatten)]
    pub create: CreateArgs,
}

impl CreateArgs {
    /// The flags as [`RunOptions`]; `remove` is `--rm`.
    fn to_options(&self, remove: bool) -> anyhow::Result<RunOptions> {
        let host = |key: &str| std::env::var(key).ok();
        let mut env = Vec::new();
        for file in &self.env_file {
            let contents = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read --env-file {}", file.display()))?;
            env.extend(options::parse_env_file(&contents, &host)?);
        }
        for entry in &self.env {
            env.extend(options::parse_env(entry, &host)?);
        }
        let options = RunOptions {
            name: self.name.clone(),
            env,
            volumes: self
                .volume
                .iter()
                .map(|v| options::parse_volume(v))
                .collect::<Result<_, _>>()?,
            workdir: self
                .workdir
                .as_deref()
                .map(options::parse_workdir)
                .transpose()?,
            user: self.user.clone(),
            entrypoint: self.entrypoint.clone(),
            hostname: self.hostname.clone(),
            read_only: self.read_only,
            restart: self.restart,
            memory: self.memory,
            nano_cpus: self
                .cpus
                .as_deref()
                .map(options::parse_cpus)
                .transpose()?
                .flatten(),
            pids_limit: self
                .pids_limit
                .as_deref()
                .map(options::parse_pids_limit)
                .transpose()?
                .flatten(),
            stop_timeout: self.stop_timeout,
            stop_signal: self.stop_signal.clone(),
            network: self.network.clone(),
            publish: self.publish.clone(),
            publish_all: self.publish_all,
            links: self.link.clone(),
            dns: Dns {
                servers: self.dns.clone(),
                search: self.dns_search.clone(),
                options: self.dns_option.clone(),
            },
            extra_hosts: self.add_host.clone(),
            remove,
            tty: self.tty,
            image: self.image.clone(),
            command: self.command.clone(),
        };
        options.check()?;
        Ok(options)
    }
}

/// Makes the container (pulling its image if missing), or finds the existing one of its
/// name; the image's ID comes with it, for run-or-start's comparison.
fn create_or_find(
    context: &Context,
    options: &RunOptions,
    systemd: bool,
) -> anyhow::Result<(Outcome, String)> {
    if options.network.bridge_network().is_some() {
        context.networks()?;
    }
    let images = context.store()?;
    let image = match images.resolve(&options.image) {
        Ok(image) => image,
        Err(_) => {
            super::pull::pull_missing(context, &options.image)?;
            images.resolve(&options.image)?
        }
    };
    let outcome = create(&context.data_root, &images, &image, options, systemd)?;
    Ok((outcome, image.id.to_string()))
}

/// Runs `flotilla create`.
pub fn run_create(context: &Context, args: &CreateArgs) -> anyhow::Result<ExitCode> {
    let options = args.to_options(false)?;
    match create_or_find(context, &options, false)?.0 {
        Outcome::Created(record) => {
            println!("{}", record.id);
            Ok(ExitCode::SUCCESS)
        }
        Outcome::Existing(existing) => Err(crate::containers::store::StoreError::NameInUse {
            name: existing.name.clone(),
            id: existing.short_id().to_owned(),
        }
        .into()),
    }
}

/// Runs `flotilla run`. A failure is reported here, with docker's exit status: 127 when the
/// command does not exist, 126 when it cannot be run, 125 for anything else.
pub fn run(context: &Context, args: &RunArgs) -> anyhow::Result<ExitCode> {
    run_container(context, args).or_else(|error| {
        eprintln!("flotilla run: {error:#}");
        let code = error
            .downcast_ref::<ContainersError>()
            .map_or(125, ContainersError::exit_code);
        Ok(ExitCode::from(u8::try_from(code).unwrap_or(125)))
    })
}

fn run_container(context: &Context, args: &RunArgs) -> anyhow::Result<ExitCode> {
    let options = args.create.to_options(args.remove)?;
    let store = ContainerStore::open(&context.data_root)?;
    let record = match create_or_find(context, &options, args.systemd)? {
        (Outcome::Created(record), _) => record,
        (Outcome::Existing(existing), image_id) => {
            let changed = differences(&existing, &options, &image_id);
            if changed.is_empty() {
                existing
            } else if args.replace {
                control::stop(&store, &existing.id, None)?;
                control::remove(&context.data_root, &store, &existing.id, true, true)?;
                match create_or_find(context, &options, args.systemd)?.0 {
                    Outcome::Created(record) | Outcome::Existing(record) => record,
                }
            } else {
                anyhow::bail!(
                    "container {:?} exists with a different configuration ({}); remove it, or run with --replace to recreate it",
                    existing.name,
                    changed.join("; ")
                );
            }
        }
    };
    if args.systemd {
        return run_under_systemd(context, &store, &record);
    }
    if args.detach {
        launch::start(&context.data_root, &store, &record.id, Attach::default())?;
        println!("{}", record.id);
        return Ok(ExitCode::SUCCESS);
    }
    let (attach, ends) = attach::pipes(args.create.interactive, args.create.tty)?;
    match launch::start(&context.data_root, &store, &record.id, attach)? {
        Started::AlreadyRunning => {
            println!("{}", record.id);
            Ok(ExitCode::SUCCESS)
        }
        Started::Now { status, .. } => attach::follow(&store, &record.id, ends, status),
    }
}

/// `run --systemd`: this process becomes the container's supervisor, the service's main
/// process. A supervisor already running the container (started by hand) is stopped first.
fn run_under_systemd(
    context: &Context,
    store: &ContainerStore,
    record: &Container,
) -> anyhow::Result<ExitCode> {
    let lock_path = store.supervisor_lock_path(&record.id);
    if store.supervisor_alive(&record.id)? {
        control::stop(store, &record.id, None)?;
    }
    let _lock = crate::containers::supervisor_lock::SupervisorLock::take(&lock_path)
        .with_context(|| format!("cannot lock {}", lock_path.display()))?;
    store.update(&record.id, |c| c.systemd = true)?;
    let code = supervisor::supervise(&context.data_root, &record.id, supervisor::Mode::Systemd)?;
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}
