//! The engine's commands (`flotilla pull`, `images`, `save`, …): one module per verb, each with
//! its clap arguments and a `run` function; shared here are the context every command gets and
//! how a failure is reported.

pub mod boot;
pub mod containers;
pub mod dns_serve;
pub mod exec;
pub mod export;
pub mod image_commands;
pub mod images;
pub mod import;
pub mod inspect;
pub mod kill;
pub mod load;
pub mod logs;
pub mod network;
pub mod port;
pub mod ps;
pub mod pull;
pub mod rm;
pub mod rmi;
pub mod run;
pub mod save;
pub mod start;
pub mod stop;
pub mod supervise;
pub mod tag;
pub mod volume;
pub mod wait;

mod attach;
mod confirm;
mod human;
mod in_use;
mod output;
mod progress;
mod table;
mod terminal;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use image::store::Store;

use crate::config::Config;
use crate::network::store::NetworkStore;

/// What every engine command gets from the global options.
#[derive(Debug, Clone)]
pub struct Context {
    /// `--data-root`.
    pub data_root: PathBuf,
    /// `--config`.
    pub config: PathBuf,
}

impl Context {
    /// Opens the image store under the data root.
    pub fn store(&self) -> anyhow::Result<Store> {
        Store::open(&self.data_root).with_context(|| {
            format!(
                "cannot open the image store under {}",
                self.data_root.display()
            )
        })
    }

    /// Reads the configuration file.
    pub fn config(&self) -> anyhow::Result<Config> {
        Ok(Config::load(&self.config)?)
    }

    /// Opens the network store with the default network on the configured subnet.
    pub fn networks(&self) -> anyhow::Result<NetworkStore> {
        let networks = NetworkStore::open(&self.data_root)?;
        let subnet = self
            .config()?
            .engine
            .bridge_subnet
            .unwrap_or(crate::network::store::DEFAULT_SUBNET);
        networks.ensure_default(subnet)?;
        Ok(networks)
    }
}

/// Prints a failed command's error chain as `flotilla COMMAND: error: cause` and picks the exit
/// status: 0 on success, 1 on failure (a command may choose another status by returning it).
pub fn finish(command: &str, result: anyhow::Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("flotilla {command}: {error:#}");
            ExitCode::FAILURE
        }
    }
}
