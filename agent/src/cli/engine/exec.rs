//! `flotilla exec [-i] [-e K=V] [-u USER] [-w DIR] CONTAINER COMMAND…`: run a command inside a
//! running container (its namespaces, cgroups, capabilities and environment), with our
//! standard streams, and exit with its exit code.

use std::io;
use std::os::fd::AsFd;
use std::process::ExitCode;

use anyhow::Context as _;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

use super::Context;
use crate::containers::control;
use crate::containers::store::ContainerStore;
use crate::engine::options::parse_env;
use crate::engine::user::{numeric_user, resolve_user};
use crate::runtime::cgroups::CgroupMembership;
use crate::runtime::{self, Stdio};

/// `flotilla exec`.
#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    /// Keep standard input open (it is passed to the command).
    #[arg(short = 'i', long)]
    pub interactive: bool,
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
    process.set_env(Some(env));
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
    let stdin = if args.interactive {
        io::stdin().as_fd().try_clone_to_owned()?
    } else {
        std::fs::File::open("/dev/null")?.into()
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
    let code = match waitpid(pid, None)? {
        WaitStatus::Exited(_, code) => code,
        WaitStatus::Signaled(_, signal, _) => 128 + signal as i32,
        _ => 1,
    };
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(255)))
}
