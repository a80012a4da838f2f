//! `flotilla boot`: what the engine's boot unit runs once the host is up. Containers whose
//! supervisor died with the host come back by docker's rule (`always`, and `unless-stopped`
//! unless a user stopped it); interrupted removals are finished; what dead supervisors left of
//! their containers' networks is cleared and the firewall table rebuilt.

use std::process::ExitCode;

use super::Context;
use crate::containers::launch::{self, Attach};
use crate::containers::store::ContainerStore;
use crate::engine::restart::RestartPolicy;

/// `flotilla boot`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Run by flotilla-boot.service after every boot; safe to run again: \
    containers that run already are left alone."
)]
pub struct BootArgs {}

/// Runs `flotilla boot`.
pub fn run(context: &Context, _args: &BootArgs) -> anyhow::Result<ExitCode> {
    let store = ContainerStore::open(&context.data_root)?;
    store.sweep()?;
    crate::containers::networking::recover(&context.data_root, &store)?;
    let mut failed = false;
    for record in store.list()? {
        let wanted = match record.options.restart {
            RestartPolicy::Always => true,
            RestartPolicy::UnlessStopped => !record.manually_stopped,
            RestartPolicy::No | RestartPolicy::OnFailure { .. } => false,
        };
        if !wanted || record.is_active() || record.systemd {
            continue;
        }
        match launch::start(&context.data_root, &store, &record.id, Attach::default()) {
            Ok(_) => println!("{}", record.name),
            Err(error) => {
                eprintln!("flotilla boot: {}: {error}", record.name);
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
