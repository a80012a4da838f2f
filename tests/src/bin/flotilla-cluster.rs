//! `flotilla-cluster`: a local test cluster by hand, and the cleaner for what killed test
//! processes left behind.
//!
//! - `flotilla-cluster up [--nodes N] [--etcd-members M] [--agents]` boots a [`Cluster`] (with
//!   `--agents`, the freshly built flotilla agent running on every node), prints its etcd endpoints
//!   and how to enter each node, and keeps it up until SIGTERM, SIGINT or SIGHUP.
//! - `flotilla-cluster down [PID]` stops the running `up` (or every one), waits until it has torn
//!   its cluster down, then cleans as below.
//! - `flotilla-cluster clean` removes the leftovers of dead test processes (nodes, netns,
//!   bridges, cgroups, state dirs, etcd processes) and says what it removed.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use flotilla_tests::clean;
use flotilla_tests::cluster::{Cluster, ClusterConfig};
use nix::sys::signal::{kill, SigSet, Signal};
use nix::unistd::Pid;

/// How long `down` waits for an `up` to tear its cluster down.
const DOWN_TIMEOUT: Duration = Duration::from_secs(120);

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "flotilla-cluster",
    about = "A local flotilla test cluster: systemd nodes in namespaces on a bridge, etcd on the host"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Boot a cluster and keep it up until `flotilla-cluster down`, Ctrl-C or SIGTERM.
    Up {
        /// Number of nodes.
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        /// Number of etcd members (1 to 3).
        #[arg(long, default_value_t = 1)]
        etcd_members: usize,
        /// Install and start the freshly built agent (flotillad, flotctl, flotilla) on every node.
        #[arg(long)]
        agents: bool,
        /// The agents' TTL: how long a silent machine keeps its units.
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        agent_ttl: Duration,
    },
    /// Stop the running `flotilla-cluster up` (PID, or every one), then clean.
    Down {
        /// Pid of the `flotilla-cluster up` to stop.
        pid: Option<u32>,
    },
    /// Remove what dead test processes left behind, saying what.
    Clean,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Up {
            nodes,
            etcd_members,
            agents,
            agent_ttl,
        } => up(nodes, etcd_members, agents.then_some(agent_ttl)),
        Command::Down { pid } => down(pid).and_then(|()| clean()),
        Command::Clean => clean(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flotilla-cluster: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn up(nodes: usize, etcd_members: usize, agents: Option<Duration>) -> anyhow::Result<()> {
    // Blocked before any thread exists, so every thread inherits the mask and the signals wait
    // for `wait` below (children get an empty mask from std::process).
    let mut signals = SigSet::empty();
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        signals.add(signal);
    }
    signals.thread_block().context("block signals")?;
    let mut config = ClusterConfig::new(nodes);
    config.etcd_members = etcd_members;
    if let Some(ttl) = agents {
        config.agent_ttl = ttl;
    }
    let cluster = Cluster::boot(config).context("boot the cluster")?;
    if agents.is_some() {
        cluster.start_agents().context("start the agents")?;
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "subnet: {}", cluster.subnet())?;
    writeln!(out, "bridge: {}", cluster.bridge())?;
    writeln!(out, "state: {}", cluster.state_dir().display())?;
    writeln!(out, "etcd (nodes): {}", cluster.etcd_endpoints().join(","))?;
    writeln!(
        out,
        "etcd (host): {}",
        cluster.etcd_loopback_endpoints().join(",")
    )?;
    for node in cluster.nodes() {
        writeln!(
            out,
            "{} {} machine-id {} pid {}: enter with `nsenter -t {} -a bash`",
            node.hostname(),
            node.address().map(|a| a.to_string()).unwrap_or_default(),
            node.machine_id(),
            node.pid(),
            node.pid(),
        )?;
    }
    writeln!(
        out,
        "up (pid {}): stop with `flotilla-cluster down` or Ctrl-C",
        std::process::id()
    )?;
    out.flush()?;
    drop(out);
    let signal = signals.wait().context("wait for a signal")?;
    // Whoever read the report may be gone by now: teardown must not depend on stdout.
    let _ = writeln!(std::io::stdout(), "{signal}: tearing down");
    drop(cluster);
    let _ = writeln!(std::io::stdout(), "down");
    Ok(())
}

fn down(pid: Option<u32>) -> anyhow::Result<()> {
    let running = up_processes();
    let targets: Vec<u32> = match pid {
        Some(pid) if running.contains(&pid) => vec![pid],
        Some(pid) => bail!("pid {pid} is not a running `flotilla-cluster up`"),
        None => running,
    };
    if targets.is_empty() {
        println!("no `flotilla-cluster up` is running");
    }
    for pid in targets {
        kill(Pid::from_raw(pid as i32), Signal::SIGTERM)
            .with_context(|| format!("signal pid {pid}"))?;
        let deadline = Instant::now() + DOWN_TIMEOUT;
        while is_up_process(pid) {
            if Instant::now() > deadline {
                bail!(
                    "`flotilla-cluster up` (pid {pid}) still runs {DOWN_TIMEOUT:?} after SIGTERM"
                );
            }
            sleep(Duration::from_millis(50));
        }
        println!("stopped the cluster of pid {pid}");
    }
    Ok(())
}

fn clean() -> anyhow::Result<()> {
    let leftovers = clean::find().context("look for leftovers")?;
    if leftovers.is_empty() {
        println!("nothing to clean");
    }
    let mut failed = 0;
    for leftover in &leftovers {
        match clean::remove(leftover) {
            Ok(()) => println!("removed {leftover}"),
            Err(e) => {
                failed += 1;
                eprintln!("cannot remove {leftover}: {e}");
            }
        }
    }
    if failed > 0 {
        bail!("{failed} leftovers could not be removed");
    }
    Ok(())
}

/// Pids of running (not zombie) `flotilla-cluster up` processes other than this one.
fn up_processes() -> Vec<u32> {
    let mut pids: Vec<u32> = fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|pid| *pid != std::process::id() && is_up_process(*pid))
        .collect();
    pids.sort_unstable();
    pids
}

/// Whether `pid` runs `flotilla-cluster up` and is not a zombie.
fn is_up_process(pid: u32) -> bool {
    let Ok(raw) = fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    // A zombie's cmdline is empty.
    let mut args = raw.split(|b| *b == 0).map(String::from_utf8_lossy);
    let is_ours = args
        .next()
        .is_some_and(|argv0| Path::new(argv0.as_ref()).ends_with("flotilla-cluster"));
    is_ours && args.next().is_some_and(|a| a == "up")
}
