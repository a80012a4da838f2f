//! `flotilla logs [-f] [--tail N] [--since T] [--until T] [-t] CONTAINER`: the container's
//! output read back from where its supervisor wrote it (the journal or the json-file log),
//! stdout lines to our stdout and stderr lines to our stderr, as docker does.

use std::io;
use std::process::ExitCode;
use std::time::SystemTime;

use super::Context;
use crate::containers::store::ContainerStore;
use crate::logs::reader::{read_logs, LogQuery, LogSource};
use crate::logs::time::parse_since;

/// `flotilla logs`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Times for --since and --until: RFC 3339 (2026-11-24T10:00:00Z; without a \
    zone, UTC), Unix seconds (1732442400.5), or a duration ago (10m, 1h30m).\n\
    With a journal the lines are also in `journalctl CONTAINER_NAME=NAME`."
)]
pub struct LogsArgs {
    /// Keep printing new output until the container stops.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Only the last N lines ("all" for every line).
    #[arg(short = 'n', long, default_value = "all", value_parser = parse_tail)]
    pub tail: Tail,
    /// Only output since this time.
    #[arg(long)]
    pub since: Option<String>,
    /// Only output before this time.
    #[arg(long)]
    pub until: Option<String>,
    /// Prefix each line with its time.
    #[arg(short = 't', long)]
    pub timestamps: bool,
    /// The container (name or ID).
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

/// `--tail`: a count, or every line.
#[derive(Debug, Clone, Copy)]
pub struct Tail(Option<usize>);

fn parse_tail(text: &str) -> Result<Tail, String> {
    if text == "all" {
        return Ok(Tail(None));
    }
    text.parse::<i64>()
        .map(|n| Tail(usize::try_from(n).ok()))
        .map_err(|_| format!("{text:?} is neither a number of lines nor \"all\""))
}

/// Runs `flotilla logs`.
pub fn run(context: &Context, args: &LogsArgs) -> anyhow::Result<ExitCode> {
    let store = ContainerStore::open(&context.data_root)?;
    let id = store.resolve(&args.container)?;
    let record = store.read(&id)?;
    let now = SystemTime::now();
    let time = |value: &Option<String>| {
        value
            .as_deref()
            .map(|text| parse_since(text, now, 0))
            .transpose()
    };
    let query = LogQuery {
        tail: args.tail.0,
        since: time(&args.since)?,
        until: time(&args.until)?,
        follow: args.follow,
        timestamps: args.timestamps,
    };
    let source = match record.log {
        Some(target) if target.driver == "journald" => LogSource::Journal {
            container_id: id.clone(),
            directory: None,
        },
        Some(target) => match target.path {
            Some(path) => LogSource::JsonFile(path.into()),
            None => return Ok(ExitCode::SUCCESS),
        },
        // Never started: nothing was logged.
        None => return Ok(ExitCode::SUCCESS),
    };
    let stop = || store.read(&id).map_or(true, |c| !c.is_active());
    read_logs(
        &source,
        &query,
        &mut io::stdout().lock(),
        &mut io::stderr().lock(),
        &stop,
    )?;
    Ok(ExitCode::SUCCESS)
}
