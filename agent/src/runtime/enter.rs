//! `docker exec`: a new process inside a running container, created in the container's pid
//! namespace; it joins the container's cgroups and its other namespaces (the mount namespace
//! last), then ends like init ([`super::exec::finish`]).

use std::os::fd::AsFd;

use nix::sched::CloneFlags;
use nix::unistd::Pid;
use oci_spec::runtime::Process;

use super::{exec, namespaces, process, terminal, CgroupMembership, Result, Started, Stdio};

/// Starts `process` in the container whose init is `init`; see [`super::exec()`].
pub fn start(
    init: Pid,
    process: &Process,
    cgroups: &CgroupMembership,
    stdio: Stdio,
) -> Result<Started> {
    let namespaces = namespaces::of_process(init)?;
    let terminal = terminal::channel_if_wanted(process)?;
    let pid = process::start(
        CloneFlags::empty(),
        namespaces.pid.as_ref().map(AsFd::as_fd),
        || {
            terminal::attach(&stdio)?;
            namespaces::enter(&namespaces, cgroups)?;
            if let Some(channel) = &terminal {
                terminal::create(channel, false)?;
            }
            exec::finish(process)
        },
    )?;
    Ok(Started {
        pid,
        terminal: terminal.map(terminal::receive).transpose()?,
    })
}
