//! A unit's `status` and `journal`, from the machine that runs it: this machine answers from its
//! own systemd and journal; for a unit elsewhere, the request goes to that machine's agent over
//! mutual TLS (no SSH, unlike fleetctl).

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::Response;
use axum::Json;
use futures_util::stream;
use serde::Deserialize;
use tokio::io::AsyncReadExt;
use tokio::process::Command;

use super::client::{Client, Endpoint};
use super::server::{ApiError, ApiState};
use super::types::{unit_path, StatusReport};
use crate::cluster::model::short_machine_id;

use crate::registry::ClusterSnapshot;

fn unplaced_status(snapshot: &ClusterSnapshot, unit: &str) -> String {
    let (view, _) = snapshot.view();
    let addresses = snapshot
        .machines
        .iter()
        .map(|(id, machine)| (id.clone(), machine.record.public_ip.clone()))
        .collect();
    super::view::unplaced_status(&view, unit, &addresses)
}

/// Where a unit's status and journal come from.
enum Source {
    /// This machine.
    Here,
    /// Another machine's agent.
    There(Client),
}

fn unit_not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "unit does not exist")
}

/// The machine running `name`: this one when it has the unit (a global unit has one assignment
/// per machine, and is answered only where it runs), else the one it is assigned to.
fn placement(
    state: &ApiState,
    snapshot: &ClusterSnapshot,
    name: &str,
) -> Result<Option<String>, ApiError> {
    if !snapshot.units.contains_key(name) {
        return Err(unit_not_found());
    }
    let here = state.machine_id();
    if snapshot
        .assignments
        .contains_key(&(here.to_owned(), name.to_owned()))
    {
        return Ok(Some(here.to_owned()));
    }
    let machines: Vec<&String> = snapshot
        .assignments
        .keys()
        .filter(|(_, unit)| unit == name)
        .map(|(machine, _)| machine)
        .collect();
    match machines.as_slice() {
        [] => Ok(None),
        [machine] => Ok(Some((*machine).clone())),
        _ => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "Unable to retrieve the status or journal of global unit {name} from here: \
                 ask a machine that runs it (flotctl --endpoint https://ADDRESS)"
            ),
        )),
    }
}

fn source(state: &ApiState, snapshot: &ClusterSnapshot, machine: &str) -> Result<Source, ApiError> {
    if machine == state.machine_id() {
        return Ok(Source::Here);
    }
    let record = snapshot
        .machines
        .get(machine)
        .map(|m| &m.record)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                format!(
                    "machine {} is not in the cluster any more",
                    short_machine_id(machine)
                ),
            )
        })?;
    let unreachable = |why: String| {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            format!(
                "the unit runs on machine {}/{}, {why}",
                short_machine_id(machine),
                record.public_ip
            ),
        )
    };
    let address = record
        .api_address
        .as_deref()
        .ok_or_else(|| unreachable("which serves no TCP API (api_listen)".into()))?;
    let peers = state.peers().ok_or_else(|| {
        unreachable("and this machine has no API certificates (api_cafile, api_certfile, api_keyfile) to ask it".into())
    })?;
    let endpoint: Endpoint = format!("https://{address}")
        .parse()
        .map_err(|e| unreachable(format!("whose API address is unusable: {e}")))?;
    Ok(Source::There(peers.with_endpoint(endpoint)))
}

fn forward_error(error: super::client::ClientError) -> ApiError {
    match error.status() {
        Some(status) => ApiError::new(status, error.to_string()),
        None => ApiError::new(StatusCode::BAD_GATEWAY, error.to_string()),
    }
}

/// `GET /units/{name}/status`: `systemctl status -l` on the unit's machine; for a unit no machine
/// runs, why each machine cannot.
pub async fn status(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> Result<Json<StatusReport>, ApiError> {
    let snapshot = state.registry()?.snapshot_cluster().await?;
    let Some(machine) = placement(&state, &snapshot, &name)? else {
        return Ok(Json(StatusReport {
            machine_id: String::new(),
            output: unplaced_status(&snapshot, &name),
            exit_code: 1,
        }));
    };
    match source(&state, &snapshot, &machine)? {
        Source::There(client) => client
            .get(&format!("{}/status", unit_path(&name)))
            .await
            .map(Json)
            .map_err(forward_error),
        Source::Here => {
            let output = Command::new("systemctl")
                .args(["status", "-l", "--no-pager", "--full", "--", &name])
                .output()
                .await
                .map_err(|e| {
                    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("systemctl: {e}"))
                })?;
            let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&output.stderr));
            Ok(Json(StatusReport {
                machine_id: machine,
                output: text,
                exit_code: output.status.code().unwrap_or(1),
            }))
        }
    }
}

/// The options of `GET /units/{name}/journal`.
#[derive(Debug, Deserialize)]
pub struct JournalQuery {
    #[serde(default = "default_lines")]
    lines: u32,
    #[serde(default)]
    follow: bool,
    #[serde(default = "default_output")]
    output: String,
}

fn default_lines() -> u32 {
    10
}

fn default_output() -> String {
    "short".to_owned()
}

/// journalctl's output modes; anything else is refused before it reaches a command line.
const OUTPUT_MODES: &[&str] = &[
    "short",
    "short-full",
    "short-iso",
    "short-iso-precise",
    "short-precise",
    "short-monotonic",
    "short-unix",
    "verbose",
    "export",
    "json",
    "json-pretty",
    "json-sse",
    "json-seq",
    "cat",
    "with-unit",
];

/// `GET /units/{name}/journal?lines=N&follow=true&output=MODE`: the unit's journal from its
/// machine, streamed as it is read.
pub async fn journal(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    Query(query): Query<JournalQuery>,
) -> Result<Response, ApiError> {
    if !OUTPUT_MODES.contains(&query.output.as_str()) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "invalid journal output mode {:?} (one of: {})",
                query.output,
                OUTPUT_MODES.join(", ")
            ),
        ));
    }
    let snapshot = state.registry()?.snapshot_cluster().await?;
    let Some(machine) = placement(&state, &snapshot, &name)? else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("Unit {name} does not appear to be running: no machine has it"),
        ));
    };
    let body = match source(&state, &snapshot, &machine)? {
        Source::There(client) => {
            let path = format!(
                "{}/journal?lines={}&follow={}&output={}",
                unit_path(&name),
                query.lines,
                query.follow,
                query.output
            );
            Body::new(client.stream(&path).await.map_err(forward_error)?)
        }
        Source::Here => local_journal(&name, &query)?,
    };
    Ok(Response::builder()
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(body)
        .expect("a response with a valid header"))
}

/// `journalctl --unit NAME` on this machine as a body; the process ends when the client leaves.
fn local_journal(name: &str, query: &JournalQuery) -> Result<Body, ApiError> {
    let mut command = Command::new("journalctl");
    command
        .args(["--no-pager", "--unit", name, "--lines"])
        .arg(query.lines.to_string())
        .args(["--output", &query.output])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    if query.follow {
        command.arg("--follow");
    }
    let mut child = command.spawn().map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("journalctl: {e}"),
        )
    })?;
    let stdout = child.stdout.take().expect("stdout is piped");
    // The child rides along with the stream, so a client that leaves kills journalctl.
    let chunks = stream::unfold(Some((child, stdout)), |state| async move {
        let (child, mut stdout) = state?;
        let mut buffer = vec![0u8; 16 * 1024];
        match stdout.read(&mut buffer).await {
            Ok(0) => None,
            Ok(n) => {
                buffer.truncate(n);
                Some((Ok::<_, std::io::Error>(buffer), Some((child, stdout))))
            }
            Err(e) => Some((Err(e), None)),
        }
    });
    Ok(Body::from_stream(chunks))
}
