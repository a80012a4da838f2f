//! `cat`, `status` and `journal`: a unit's file from the cluster, and its systemd status and journal
//! from the machine that runs it (through that machine's agent; no SSH).

use std::io::Write;
use std::process::ExitCode;

use http_body_util::BodyExt;
use hyper::StatusCode;

use super::files::argument;
use super::{Journal, Names, Result};
use crate::api::client::{Client, ClientError};
use crate::api::types::{file_of, unit_path, StatusReport, Unit};

fn not_found(name: &str) -> impl Fn(ClientError) -> anyhow::Error + '_ {
    move |e| match e.status() {
        Some(StatusCode::NOT_FOUND) => anyhow::anyhow!("Unit {name} does not exist."),
        _ => e.into(),
    }
}

/// `cat`: the normalized unit file of each unit.
pub async fn cat(client: &Client, names: &Names) -> Result<ExitCode> {
    for (index, arg) in names.units.iter().enumerate() {
        let name = argument(arg).name;
        let unit: Unit = client
            .get(&unit_path(&name))
            .await
            .map_err(not_found(&name))?;
        if index > 0 {
            println!();
        }
        print!("{}", file_of(&name, &unit.options).normalized());
    }
    Ok(ExitCode::SUCCESS)
}

/// `status`: `systemctl status -l` from the unit's machine; for a unit that is not placed, why.
/// The exit status is systemctl's (the last unit's).
pub async fn status(client: &Client, names: &Names) -> Result<ExitCode> {
    let mut code = 0;
    for arg in &names.units {
        let name = argument(arg).name;
        let report: StatusReport = client
            .get(&format!("{}/status", unit_path(&name)))
            .await
            .map_err(not_found(&name))?;
        print!("{}", report.output);
        code = report.exit_code;
    }
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}

/// `journal`: the unit's journal, streamed from its machine.
pub async fn journal(client: &Client, journal: &Journal) -> Result<ExitCode> {
    let name = argument(&journal.unit).name;
    let path = format!(
        "{}/journal?lines={}&follow={}&output={}",
        unit_path(&name),
        journal.lines,
        journal.follow,
        journal.output
    );
    let mut body = client.stream(&path).await.map_err(not_found(&name))?;
    let mut stdout = std::io::stdout();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| anyhow::anyhow!("journal of {name}: {e}"))?;
        if let Some(data) = frame.data_ref() {
            stdout.write_all(data)?;
            stdout.flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
