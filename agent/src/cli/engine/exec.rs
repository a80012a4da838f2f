//! `flotilla exec [-i] [-t] [-e K=V] [-u USER] [-w DIR] CONTAINER COMMAND…`: run a command
//! inside a running container (its namespaces, cgroups, capabilities and environment), with our
//! standard streams, and exit with its exit code.
//!
//! With `-t` the command gets a terminal of its own, sized as ours: we relay its output to our
//! stdout (stdout and stderr are one stream there) and, with `-i`, our stdin into it, with our
//! terminal in raw mode; SIGWINCH resizes it, and SIGINT, SIGTERM, SIGHUP and SIGQUIT are
//! passed on to the command.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::process::ExitCode;

use anyhow::Context as _;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use oci_spec::runtime::Process;

use super::terminal::{self, RawMode};
use super::Context;
use crate::containers::console::{self, Chunk, InputPump};
use crate::containers::control;
use crate::containers::launch::dev_null;
use crate::containers::store::ContainerStore;
use crate::engine::options::parse_env;
use crate::engine::spec::add_default_term;
use crate::engine::user::{numeric_user, resolve_user};
use crate::runtime::cgroups::CgroupMembership;
use crate::runtime::{self, Stdio};

/// `flotilla exec`.
#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    /// Keep standard input open (it is passed to the command).
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Give the command a terminal (its output and errors become one stream).
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Set environment variables.
    #[arg(short = 'e', long = "env", value_name = "KEY[=VALUE]")]
    pub env: Vec<String>,
    /// The user (name or UID) and group to run as.
    #[arg(short = 'u', long, value_name = "USER[:GROUP]")]
    pub user: Option<String>,
    /// The working directory inside the container.
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<String>,
    /// The container (name or ID).
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// The command and its arguments.
    #[arg(
        required = true,
        value_name = "COMMAND",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<String>,
}

/// Runs `flotilla exec`.
pub fn run(context: &Context, args: &ExecArgs) -> anyhow::Result<ExitCode> {
    let store = ContainerStore::open(&context.data_root)?;
    let id = store.resolve(&args.container)?;
    let record = store.read(&id)?;
    if record.state.pid <= 0 || !record.is_active() {
        anyhow::bail!("container {} is not running", record.short_id());
    }
    let init = Pid::from_raw(record.state.pid);
    let spec = store.spec(&id)?;
    let mut process = spec
        .process()
        .clone()
        .context("the container's config.json has no process")?;
    process.set_args(Some(args.command.clone()));
    let mut env = process.env().clone().unwrap_or_default();
    let host = |key: &str| std::env::var(key).ok();
    for entry in &args.env {
        if let Some((key, value)) = parse_env(entry, &host)? {
            env.retain(|e| e.split_once('=').is_none_or(|(k, _)| k != key));
            env.push(format!("{key}={value}"));
        }
    }
    if args.tty {
        add_default_term(&mut env);
    }
    process.set_env(Some(env));
    // The container's own process may have a terminal; this one has one only with -t.
    process.set_terminal(Some(args.tty));
    process.set_console_size(None);
    if let Some(user) = &args.user {
        let resolved = match numeric_user(user) {
            Some(user) => user,
            None => {
                let root = format!("/proc/{init}/root/etc");
                let read = |file: &str| {
                    std::fs::read_to_string(format!("{root}/{file}")).unwrap_or_default()
                };
                resolve_user(&read("passwd"), &read("group"), user)?
            }
        };
        process.set_user(resolved);
    }
    if let Some(dir) = &args.workdir {
        process.set_cwd(dir.into());
    }
    let cgroups: CgroupMembership = control::saved_cgroups(&record)
        .map(|saved| saved.membership().clone())
        .unwrap_or_default();
    if args.tty {
        return run_with_terminal(init, process, &cgroups, args.interactive);
    }
    let stdin = if args.interactive {
        io::stdin().as_fd().try_clone_to_owned()?
    } else {
        dev_null()?
    };
    let pid = runtime::exec(
        init,
        &process,
        &cgroups,
        Stdio {
            stdin,
            stdout: io::stdout().as_fd().try_clone_to_owned()?,
            stderr: io::stderr().as_fd().try_clone_to_owned()?,
        },
    )?;
    Ok(exit_code(waitpid(pid, None)?))
}

/// The exit code of a command that ended so: its own, or 128 + the signal that killed it.
fn exit_code(status: WaitStatus) -> ExitCode {
    let code = match status {
        WaitStatus::Exited(_, code) => code,
        WaitStatus::Signaled(_, signal, _) => 128 + signal as i32,
        _ => 1,
    };
    ExitCode::from(u8::try_from(code).unwrap_or(255))
}

/// `exec -t`: runs `process` with a terminal sized as ours and relays it until the command
/// has exited and its output is read.
fn run_with_terminal(
    init: Pid,
    mut process: Process,
    cgroups: &CgroupMembership,
    interactive: bool,
) -> anyhow::Result<ExitCode> {
    // Blocked before the command starts, so its SIGCHLD cannot be missed (the runtime unblocks
    // every signal in the command itself).
    let mut mask = terminal::relayed_signals();
    mask.add(Signal::SIGCHLD);
    mask.add(Signal::SIGWINCH);
    mask.thread_block()?;
    let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)?;
    // After SIGWINCH is blocked: a resize from now on is not missed.
    if let Some(size) = terminal::window_size() {
        size.set_on(&mut process)?;
    }
    let _raw = if interactive {
        RawMode::on_stdin()?
    } else {
        None
    };
    // The command's stdio becomes its terminal: these are only placeholders.
    let stdio = Stdio {
        stdin: dev_null()?,
        stdout: dev_null()?,
        stderr: dev_null()?,
    };
    let started = runtime::exec_with_terminal(init, &process, cgroups, stdio)?;
    let pid = started.pid;
    let controller = started
        .terminal
        .context("the runtime gave the command no terminal")?;
    let mut input = if interactive {
        let stdin = io::stdin().as_fd().try_clone_to_owned()?;
        Some(InputPump::new(stdin, controller.as_fd())?)
    } else {
        None
    };
    let mut output = Some(File::from(controller.try_clone()?));
    let mut status = None;
    let mut buffer = vec![0u8; 64 * 1024];
    let mut stdout = io::stdout();
    while let Some(file) = &mut output {
        // Once the command has exited, what it wrote may still be on its way through the
        // terminal: wait for that a little, not for what it left running with the terminal open.
        let timeout = if status.is_some() {
            PollTimeout::from(100u16)
        } else {
            PollTimeout::NONE
        };
        let mut fds = vec![
            PollFd::new(signals.as_fd(), PollFlags::POLLIN),
            PollFd::new(file.as_fd(), PollFlags::POLLIN),
        ];
        if status.is_none() {
            fds.extend(input.as_ref().and_then(InputPump::poll_fd));
        }
        match poll(&mut fds, timeout) {
            Ok(0) => break,
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
        let ready = console::ready(fds);
        if ready[1] {
            match console::read_output(file, &mut buffer) {
                Chunk::Bytes(n) => {
                    stdout.write_all(&buffer[..n])?;
                    stdout.flush()?;
                }
                Chunk::Nothing => {}
                Chunk::Closed => output = None,
            }
        }
        if ready.get(2) == Some(&true) {
            if let Some(input) = &mut input {
                input.ready();
            }
        }
        if ready[0] {
            while let Ok(Some(info)) = signals.read_signal() {
                match Signal::try_from(info.ssi_signo as i32) {
                    Ok(Signal::SIGCHLD) | Err(_) => {}
                    Ok(Signal::SIGWINCH) => {
                        if let Some(size) = terminal::window_size() {
                            let _ = size.apply(&controller);
                        }
                    }
                    Ok(signal) => {
                        // Not reaped yet, so the PID is still the command's.
                        if status.is_none() {
                            let _ = kill(pid, signal);
                        }
                    }
                }
            }
        }
        if status.is_none() {
            status = match waitpid(pid, Some(WaitPidFlag::WNOHANG))? {
                WaitStatus::StillAlive => None,
                ended => Some(ended),
            };
        }
    }
    let status = match status {
        Some(status) => status,
        None => waitpid(pid, None)?,
    };
    Ok(exit_code(status))
}
