//! The resolver process (`flotilla dns-serve`): one per data root, alive while it holds
//! `dns.lock`. It serves the table, re-reads it on SIGHUP, stops on SIGTERM, and exits once
//! the table has no network left, checked again under `dns.start.lock` so that a network
//! added meanwhile by a caller of [`super::launch::reload`] is never left without its
//! resolver.

use std::fs::File;
use std::io;
use std::path::Path;

use nix::fcntl::Flock;
use tokio::signal::unix::{signal, SignalKind};

use super::lock::{self, LockError};
use super::server::{Server, ServerError};
use super::{table, Paths};
use crate::records::RecordError;

/// Why the resolver could not run.
#[derive(Debug, thiserror::Error)]
pub enum ResolverError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Table(#[from] RecordError),
    #[error("cannot start the resolver's runtime: {0}")]
    Runtime(io::Error),
    #[error("cannot unblock signals: {0}")]
    Signals(nix::errno::Errno),
    #[error("cannot handle {signal}: {source}")]
    Signal {
        signal: &'static str,
        source: io::Error,
    },
}

/// Runs the resolver of `data_root` until it is told to stop or has nothing left to serve;
/// returns at once when another one runs. Problems with single networks (a port taken) go
/// to `report` and the others are served.
pub fn run(data_root: &Path, report: &mut dyn FnMut(&ServerError)) -> Result<(), ResolverError> {
    let paths = Paths::new(data_root);
    // Whoever started us may have had signals blocked (a supervisor reads its own on a
    // signalfd): SIGHUP and SIGTERM must reach the handlers below.
    nix::sys::signal::SigSet::all()
        .thread_unblock()
        .map_err(ResolverError::Signals)?;
    let Some(running) = lock::lock(&paths.lock, false)? else {
        return Ok(());
    };
    // A pid file left by a resolver that was killed names no resolver.
    lock::remove_pid(&paths.pid)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ResolverError::Runtime)?;
    let start = runtime.block_on(serve(&paths, report))?;
    lock::remove_pid(&paths.pid)?;
    // Gone before the start lock is: whoever takes it next sees no resolver and starts one.
    drop(running);
    drop(start);
    Ok(())
}

/// Serves until SIGTERM or an empty table; in the second case, returns the start lock, to be
/// held until the resolver is gone.
async fn serve(
    paths: &Paths,
    report: &mut dyn FnMut(&ServerError),
) -> Result<Option<Flock<File>>, ResolverError> {
    let handle = |name: &'static str, kind| {
        signal(kind).map_err(|source| ResolverError::Signal {
            signal: name,
            source,
        })
    };
    let mut hangup = handle("SIGHUP", SignalKind::hangup())?;
    let mut terminate = handle("SIGTERM", SignalKind::terminate())?;
    let mut server = Server::new(paths.table.clone());
    loop {
        match server.load() {
            Ok(loaded) => {
                loaded.failures.iter().for_each(&mut *report);
                // The callers waiting for this resolver go on once the pid is written anew.
                lock::write_pid(&paths.pid)?;
                if loaded.networks == 0 {
                    if let Some(start) = nothing_to_serve(paths)? {
                        return Ok(Some(start));
                    }
                }
            }
            // A damaged table: keep serving the last good one until the next SIGHUP.
            Err(error) => {
                report(&error);
                lock::write_pid(&paths.pid)?;
            }
        }
        tokio::select! {
            _ = hangup.recv() => {}
            _ = terminate.recv() => return Ok(None),
        }
    }
}

/// The start lock if the table is still empty, read again while no one starts or signals a
/// resolver; `None` when networks came meanwhile.
fn nothing_to_serve(paths: &Paths) -> Result<Option<Flock<File>>, ResolverError> {
    let start = lock::lock(&paths.start, true)?;
    Ok(table::read(&paths.table)?
        .networks
        .is_empty()
        .then_some(start)
        .flatten())
}
