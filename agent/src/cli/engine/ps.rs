//! `flotilla ps [-a] [-q] [--no-trunc] [--format table|json]`: docker's container listing
//! (running containers, or all with `-a`), newest first.

use std::process::ExitCode;
use std::time::SystemTime;

use super::Context;
use crate::containers::store::ContainerStore;
use crate::engine::present::{ps_json, ps_row, PsRow};

/// `flotilla ps`.
#[derive(Debug, clap::Args)]
pub struct PsArgs {
    /// Show every container (by default only running ones).
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Print only IDs.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Do not truncate IDs and commands.
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// `table` (docker's columns) or `json` (one object per line).
    #[arg(long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
}

/// Runs `flotilla ps`.
pub fn run(context: &Context, args: &PsArgs) -> anyhow::Result<ExitCode> {
    let store = ContainerStore::open(&context.data_root)?;
    let now = SystemTime::now();
    let mut containers: Vec<_> = store
        .list()?
        .into_iter()
        .filter(|c| args.all || c.is_active())
        .collect();
    containers.reverse();
    if args.quiet {
        for c in &containers {
            println!("{}", if args.no_trunc { &c.id } else { c.short_id() });
        }
    } else if args.format == "json" {
        for c in &containers {
            println!("{}", ps_json(c, now));
        }
    } else {
        let mut table = vec![PsRow::HEADER.map(str::to_owned).to_vec()];
        for c in &containers {
            let mut row = ps_row(c, now);
            if args.no_trunc {
                row.id.clone_from(&c.id);
                row.command = format!(
                    "\"{}\"",
                    std::iter::once(&c.path)
                        .chain(&c.args)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(" ")
                );
            }
            table.push(row.cells().map(str::to_owned).to_vec());
        }
        super::table::print(&table);
    }
    Ok(ExitCode::SUCCESS)
}
