//! The supervisor ("shim"): the one process that owns a container while it runs.
//!
//! It holds the container's `supervisor.lock` for its whole life, starts the container's init
//! through the runtime, sends every line of its output to the log driver (and, while someone is
//! attached, the raw bytes to them), records each state change, applies the restart policy with
//! docker's back-off, and on SIGTERM or SIGINT stops the container (its stop signal, then
//! SIGKILL after its stop timeout). The container's init gets SIGKILL if the supervisor dies, so a
//! record whose supervisor is gone is truthfully reported as exited.
//!
//! Two modes: detached (`flotilla run -d`, `start`: forked by the CLI, in a session of its own,
//! reporting `started`/`failed`/`exited` on a pipe the CLI reads) and `--systemd` (the service's
//! main process: it notifies `READY=1`, never restarts the container itself and exits with its
//! exit code). One thread: signals arrive on a signalfd, polled with the output pipes.
//!
//! With a terminal (`-t`) the supervisor holds its controller: the container's output is one
//! stream, logged as stdout and sent to the attached CLI's stdout pipe; with `-i` our standard
//! input is copied into the terminal ([`InputPump`]); an attached CLI's window sizes (on its
//! resize pipe) size the terminal, the latest one before the container starts.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitid, waitpid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::console::{self, Chunk, InputPump, SizeReceiver};
use super::launch::{self, Report};
use super::networking::{self, Plumbing};
use super::output::ContainerOutput;
use super::store::ContainerStore;
use super::ContainersError;
use crate::engine::container::Container;
use crate::engine::restart::{decide, Backoff, Decision, ExitCause};
use crate::logs::driver::Stream;
use crate::runtime::cgroups::Cgroups;
use crate::runtime::{self, Launch, RootFs, Stdio};

/// How the supervisor talks to whoever started it.
#[derive(Debug)]
pub enum Mode {
    /// Started by the CLI: reports on `status`; `attach` gets the raw output while it listens;
    /// `stdin` is the container's standard input (`-i`), else /dev/null; `resize` brings an
    /// attached CLI's window sizes for the container's terminal.
    Detached {
        status: File,
        attach: Option<(File, File)>,
        stdin: Option<OwnedFd>,
        resize: Option<SizeReceiver>,
    },
    /// A systemd service's main process.
    Systemd,
}

/// Everything one supervisor keeps between the container's runs.
struct Supervisor {
    data_root: PathBuf,
    store: ContainerStore,
    id: String,
    mode: Mode,
    signals: SignalFd,
    backoff: Backoff,
    stop_requested: Option<Instant>,
    first_run: bool,
    /// The container's network while the supervisor lives: made before the first run, kept
    /// across restarts, taken down when the container stays stopped.
    plumbing: Option<Plumbing>,
}

/// Where one run's output comes from and where its input goes.
struct RunIo {
    /// What the container writes, with the stream it is logged as; `None` once closed.
    outputs: Vec<(Stream, Option<File>)>,
    /// The container's terminal (`-t`), to resize.
    terminal: Option<OwnedFd>,
    /// `-i` with a terminal: our standard input on its way into it.
    input: Option<InputPump>,
}

/// What `poll` watches in [`Supervisor::watch`].
#[derive(Clone, Copy)]
enum Source {
    Signals,
    Output(usize),
    Input,
    Resize,
}

/// How one run of the container ended.
struct RunEnd {
    cause: ExitCause,
    oom_killed: bool,
}

/// Supervises the container `id` until it stays stopped; returns its last exit code.
/// `data_root` locates the stores; the caller holds the supervisor lock (its descriptor is
/// inherited or held by this process) for as long as this runs.
pub fn supervise(
    data_root: &std::path::Path,
    id: &str,
    mode: Mode,
) -> Result<i32, ContainersError> {
    let store = ContainerStore::open(data_root)?;
    let mut mask = SigSet::empty();
    for signal in [
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
    ] {
        mask.add(signal);
    }
    mask.thread_block().map_err(ContainersError::Signals)?;
    let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(ContainersError::Signals)?;
    let mut supervisor = Supervisor {
        data_root: data_root.to_owned(),
        store,
        id: id.to_owned(),
        mode,
        signals,
        backoff: Backoff::default(),
        stop_requested: None,
        first_run: true,
        plumbing: None,
    };
    supervisor.run()
}

impl Supervisor {
    fn run(&mut self) -> Result<i32, ContainersError> {
        loop {
            let mut prepared = match launch::prepare(&self.data_root, &self.store, &self.id) {
                Ok(prepared) => prepared,
                Err(error) => return self.failed(&error),
            };
            if self.plumbing.is_none() {
                let record = self.store.read_raw(&self.id)?;
                match networking::plumb(&self.data_root, &self.store, &record) {
                    Ok(plumbing) => self.plumbing = Some(plumbing),
                    Err(error) => return self.failed(&error.into()),
                }
            }
            let terminal = prepared
                .spec
                .process()
                .as_ref()
                .and_then(|p| p.terminal())
                .unwrap_or(false);
            let stdin = match &mut self.mode {
                Mode::Detached { stdin, .. } => stdin.take(),
                Mode::Systemd => None,
            };
            let mut output = match ContainerOutput::open(&prepared.log, terminal) {
                Ok(output) => output,
                Err(error) => return self.failed(&ContainersError::Log(error)),
            };
            self.remove_stale_cgroups()?;
            let cgroups = match Cgroups::create(
                &prepared.cgroup_parent,
                &self.id,
                prepared
                    .spec
                    .linux()
                    .as_ref()
                    .and_then(|l| l.resources().as_ref()),
            ) {
                Ok(cgroups) => cgroups,
                Err(error) => return self.failed(&ContainersError::Cgroups(error)),
            };
            let (pid, io) = match self.spawn(&mut prepared, &cgroups, stdin, terminal) {
                Ok(started) => started,
                Err(error) => {
                    let _ = cgroups.remove();
                    return self.failed(&error);
                }
            };
            let saved = serde_json::to_value(&cgroups).ok();
            let target = output.target();
            self.store.update(&self.id, |c| {
                c.started(pid.as_raw(), std::process::id() as i32, SystemTime::now());
                c.cgroups = saved;
                c.log = Some(target);
            })?;
            if self.first_run {
                self.report(&Report::Started { pid: pid.as_raw() });
                if matches!(self.mode, Mode::Systemd) {
                    crate::notify::container_ready(pid.as_raw());
                }
            }
            let end = self.watch(pid, io, &mut output, &cgroups, &prepared)?;
            let _ = cgroups.remove();
            let now = SystemTime::now();
            let systemd = matches!(self.mode, Mode::Systemd);
            let (record, decision) = self.store.update(&self.id, |c| {
                let decision = if systemd || self.stop_requested.is_some() {
                    Decision::Stay
                } else {
                    decide(
                        c.options.restart,
                        end.cause,
                        c.restart_count,
                        c.manually_stopped,
                    )
                };
                let restarting = decision == Decision::Restart;
                c.ended(end.cause, end.oom_killed, restarting, now);
                if restarting {
                    c.restart_count += 1;
                }
                decision
            })?;
            let code = end.cause.exit_code();
            if decision == Decision::Stay {
                self.finish(&record)?;
                self.report(&Report::Exited { code });
                return Ok(code);
            }
            if self.first_run {
                self.report(&Report::Exited { code });
            }
            self.first_run = false;
            let delay = self.backoff.next_delay(record.ran_for(now));
            if self.sleep(delay)? {
                // Asked to stop while waiting: it stays exited.
                let (record, ()) = self.store.update(&self.id, |c| {
                    c.ended(end.cause, end.oom_killed, false, SystemTime::now());
                    c.manually_stopped = true;
                })?;
                self.finish(&record)?;
                return Ok(code);
            }
        }
    }

    /// Starts the container's init: with pipes for its output, or with a terminal (sized as
    /// the attached CLI's, if one sent a size) and our input copied into it.
    fn spawn(
        &mut self,
        prepared: &mut launch::Prepared,
        cgroups: &Cgroups,
        stdin: Option<OwnedFd>,
        terminal: bool,
    ) -> Result<(Pid, RunIo), ContainersError> {
        if !terminal {
            let (out_read, out_write) = launch::pipe()?;
            let (err_read, err_write) = launch::pipe()?;
            let stdin = match stdin {
                Some(fd) => fd,
                None => launch::dev_null()?,
            };
            let stdio = Stdio {
                stdin,
                stdout: out_write,
                stderr: err_write,
            };
            let pid = runtime::spawn(launch_of(prepared, cgroups, stdio))?;
            let io = RunIo {
                outputs: vec![
                    (Stream::Stdout, Some(File::from(out_read))),
                    (Stream::Stderr, Some(File::from(err_read))),
                ],
                terminal: None,
                input: None,
            };
            return Ok((pid, io));
        }
        if let (Some(size), Some(mut process)) =
            (self.receive_size().0, prepared.spec.process().clone())
        {
            size.set_on(&mut process)?;
            prepared.spec.set_process(Some(process));
        }
        // The container's stdio becomes its terminal: these are only placeholders.
        let stdio = Stdio {
            stdin: launch::dev_null()?,
            stdout: launch::dev_null()?,
            stderr: launch::dev_null()?,
        };
        let started = runtime::spawn_with_terminal(launch_of(prepared, cgroups, stdio))?;
        let controller = started
            .terminal
            .ok_or(runtime::RuntimeError::MissingField("terminal"))?;
        let input = stdin
            .map(|stdin| InputPump::new(stdin, controller.as_fd()))
            .transpose()?;
        let output = File::from(
            controller
                .try_clone()
                .map_err(|source| ContainersError::Io {
                    path: PathBuf::from("the container's terminal"),
                    source,
                })?,
        );
        let io = RunIo {
            outputs: vec![(Stream::Stdout, Some(output))],
            terminal: Some(controller),
            input,
        };
        Ok((started.pid, io))
    }

    /// The newest window size an attached CLI sent, and whether it still sends.
    fn receive_size(&mut self) -> (Option<console::WindowSize>, bool) {
        match &mut self.mode {
            Mode::Detached {
                resize: Some(receiver),
                ..
            } => receiver.receive(),
            _ => (None, false),
        }
    }

    /// Kills and removes the cgroups a previous supervisor of this container left behind when
    /// it died with its container (a crash, a reboot without a clean stop).
    fn remove_stale_cgroups(&self) -> Result<(), ContainersError> {
        super::control::discard_cgroups(&self.store.read_raw(&self.id)?)
    }

    /// Pumps output, input and signals until the container's init is reaped and its output
    /// closed.
    fn watch(
        &mut self,
        pid: Pid,
        mut io: RunIo,
        log: &mut ContainerOutput,
        cgroups: &Cgroups,
        prepared: &launch::Prepared,
    ) -> Result<RunEnd, ContainersError> {
        let mut status = None;
        let mut buffer = vec![0u8; 64 * 1024];
        while status.is_none() || io.outputs.iter().any(|(_, file)| file.is_some()) {
            let timeout = self.stop_deadline_timeout(prepared.stop_timeout);
            let mut sources = vec![Source::Signals];
            let mut fds = vec![PollFd::new(self.signals.as_fd(), PollFlags::POLLIN)];
            for (index, (_, file)) in io.outputs.iter().enumerate() {
                if let Some(file) = file {
                    sources.push(Source::Output(index));
                    fds.push(PollFd::new(file.as_fd(), PollFlags::POLLIN));
                }
            }
            if let Some(fd) = io.input.as_ref().and_then(InputPump::poll_fd) {
                sources.push(Source::Input);
                fds.push(fd);
            }
            if let (
                Some(_),
                Mode::Detached {
                    resize: Some(r), ..
                },
            ) = (&io.terminal, &self.mode)
            {
                sources.push(Source::Resize);
                fds.push(r.poll_fd());
            }
            match poll(&mut fds, timeout) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(ContainersError::Signals(e)),
            }
            let ready: Vec<Source> = fds
                .iter()
                .zip(&sources)
                .filter(|(fd, _)| fd.revents().is_some_and(|r| !r.is_empty()))
                .map(|(_, source)| *source)
                .collect();
            drop(fds);
            for source in ready {
                match source {
                    Source::Signals => {
                        while let Ok(Some(info)) = self.signals.read_signal() {
                            if let Ok(Signal::SIGTERM | Signal::SIGINT) =
                                Signal::try_from(info.ssi_signo as i32)
                            {
                                self.request_stop(pid, prepared);
                            }
                        }
                    }
                    Source::Output(index) => {
                        let (stream, pipe) = &mut io.outputs[index];
                        let chunk = pipe.as_mut().map_or(Chunk::Closed, |file| {
                            console::read_output(file, &mut buffer)
                        });
                        match chunk {
                            Chunk::Bytes(n) => {
                                log.write(*stream, &buffer[..n]);
                                self.attach(*stream, &buffer[..n]);
                            }
                            Chunk::Nothing => {}
                            Chunk::Closed => {
                                log.finish(*stream);
                                *pipe = None;
                            }
                        }
                    }
                    Source::Input => {
                        if let Some(input) = &mut io.input {
                            input.ready();
                        }
                    }
                    Source::Resize => self.resize(io.terminal.as_ref()),
                }
            }
            if status.is_none() {
                status = self.reap_if_exited(pid)?;
            }
            if status.is_none() && self.stop_overdue(prepared.stop_timeout) {
                let _ = kill(pid, Signal::SIGKILL);
                let _ = cgroups.kill_all(Signal::SIGKILL);
            }
        }
        let cause = status.unwrap_or(ExitCause::Signaled(9));
        Ok(RunEnd {
            cause,
            oom_killed: cgroups.oom_killed().unwrap_or(false),
        })
    }

    /// Gives the container's terminal the newest size the attached CLI sent; forgets a CLI
    /// that is gone.
    fn resize(&mut self, terminal: Option<&OwnedFd>) {
        let (size, open) = self.receive_size();
        if let (Some(size), Some(terminal)) = (size, terminal) {
            let _ = size.apply(terminal);
        }
        if let (false, Mode::Detached { resize, .. }) = (open, &mut self.mode) {
            *resize = None;
        }
    }

    /// If the init exited, reaps it and clears its PID under the record lock (a CLI signals
    /// the PID only under that lock, so never a process that reused it).
    fn reap_if_exited(&self, pid: Pid) -> Result<Option<ExitCause>, ContainersError> {
        let peek = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
        match waitid(Id::Pid(pid), peek) {
            Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) => {}
            _ => return Ok(None),
        }
        let lock = self.store.record_lock(&self.id)?;
        let cause = match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => ExitCause::Exited(u8::try_from(code).unwrap_or(255)),
            Ok(WaitStatus::Signaled(_, signal, _)) => ExitCause::Signaled(signal as i32),
            _ => ExitCause::Signaled(Signal::SIGKILL as i32),
        };
        self.store
            .update_locked(&lock, &self.id, |c| c.state.pid = 0)?;
        Ok(Some(cause))
    }

    /// SIGTERM or SIGINT reached the supervisor: stop the container (a user's stop).
    fn request_stop(&mut self, pid: Pid, prepared: &launch::Prepared) {
        if self.stop_requested.is_some() {
            return;
        }
        self.stop_requested = Some(Instant::now());
        let _ = self.store.update(&self.id, |c| c.manually_stopped = true);
        if matches!(self.mode, Mode::Systemd) {
            crate::notify::stopping();
        }
        let _ = kill(pid, prepared.stop_signal);
    }

    fn stop_overdue(&self, timeout: Duration) -> bool {
        self.stop_requested
            .is_some_and(|since| since.elapsed() >= timeout)
    }

    /// How long `poll` may wait: until the stop timeout runs out, or for ever.
    fn stop_deadline_timeout(&self, timeout: Duration) -> PollTimeout {
        match self.stop_requested {
            None => PollTimeout::NONE,
            Some(since) => {
                let left = timeout.saturating_sub(since.elapsed());
                PollTimeout::try_from(left.as_millis().min(60_000) as i32 + 1)
                    .unwrap_or(PollTimeout::MAX)
            }
        }
    }

    /// Waits `delay` before a restart; true if a stop was asked for meanwhile.
    fn sleep(&mut self, delay: Duration) -> Result<bool, ContainersError> {
        let until = Instant::now() + delay;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            let mut fds = [PollFd::new(self.signals.as_fd(), PollFlags::POLLIN)];
            let millis = i32::try_from(left.as_millis()).unwrap_or(i32::MAX).max(1);
            match poll(
                &mut fds,
                PollTimeout::try_from(millis).unwrap_or(PollTimeout::MAX),
            ) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(ContainersError::Signals(e)),
            }
            while let Ok(Some(info)) = self.signals.read_signal() {
                if matches!(
                    Signal::try_from(info.ssi_signo as i32),
                    Ok(Signal::SIGTERM | Signal::SIGINT)
                ) {
                    return Ok(true);
                }
            }
            if self.store.read_raw(&self.id)?.manually_stopped {
                return Ok(true);
            }
        }
    }

    /// Sends the raw output to an attached client; a client that went away is forgotten.
    fn attach(&mut self, stream: Stream, bytes: &[u8]) {
        if let Mode::Detached { attach, .. } = &mut self.mode {
            let failed = match attach {
                Some((out, err)) => {
                    let target = if stream == Stream::Stdout { out } else { err };
                    target.write_all(bytes).is_err()
                }
                None => false,
            };
            if failed {
                *attach = None;
            }
        }
    }

    fn report(&mut self, report: &Report) {
        if let Mode::Detached { status, .. } = &mut self.mode {
            let _ = status.write_all(report.to_line().as_bytes());
        }
    }

    /// A start failed before the container ran: record it, tell the caller, end.
    fn failed(&mut self, error: &ContainersError) -> Result<i32, ContainersError> {
        let code = error.exit_code();
        let message = error.to_string();
        let (record, ()) = self.store.update(&self.id, |c| {
            c.failed_to_start(message.clone(), code, SystemTime::now());
        })?;
        // `--rm` removes it before the CLI hears of the failure, so it is gone once the CLI ends.
        let removed = self.finish(&record);
        self.report(&Report::Failed {
            code,
            message: message.clone(),
        });
        removed?;
        if matches!(self.mode, Mode::Systemd) {
            return Err(launch::start_failed(message, code));
        }
        Ok(code)
    }

    /// The container stays stopped: its network goes; `--rm` removes it.
    fn finish(&mut self, record: &Container) -> Result<(), ContainersError> {
        let unplumbed = networking::unplumb(&self.data_root, &self.store, record);
        self.plumbing = None;
        unplumbed?;
        if record.options.remove {
            super::control::remove_stopped(&self.data_root, &self.store, record, true)?;
        }
        Ok(())
    }
}

/// What the runtime needs to start one run of the container.
fn launch_of<'a>(prepared: &'a launch::Prepared, cgroups: &'a Cgroups, stdio: Stdio) -> Launch<'a> {
    Launch {
        spec: &prepared.spec,
        rootfs: RootFs::Overlay {
            lower: &prepared.lower,
            upper: &prepared.upper,
            work: &prepared.work,
        },
        cgroups: cgroups.membership(),
        stdio,
    }
}
