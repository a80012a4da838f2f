//! `submit`, `load`, `start`, `stop`, `unload`, `destroy` and `restart`: each changes desired
//! states through the API (creating what is missing first), then waits as fleetctl does.

use std::future::Future;
use std::process::ExitCode;

use futures_util::stream::{self, StreamExt};
use hyper::{Method, StatusCode};

use super::files::{self, Argument};
use super::wait::{self, Goal, Target};
use super::{Blocking, Change, Result, Submit, Transition};
use crate::api::client::Client;
use crate::api::types::{options_of, unit_path, PutUnit, Unit};
use crate::cluster::model::DesiredState;

/// Requests in flight at once: etcd commits concurrent writes with one fsync, so a hundred units
/// cost a few round trips instead of a hundred; more would only crowd the agent.
const IN_FLIGHT: usize = 16;

/// `request` for every item, [`IN_FLIGHT`] at a time; the answers in the items' order.
async fn each<T, R, F>(items: impl IntoIterator<Item = T>, request: impl FnMut(T) -> F) -> Vec<R>
where
    F: Future<Output = R>,
{
    stream::iter(items)
        .map(request)
        .buffered(IN_FLIGHT)
        .collect()
        .await
}

async fn get_unit(client: &Client, name: &str) -> Result<Option<Unit>> {
    match client.get::<Unit>(&unit_path(name)).await {
        Ok(unit) => Ok(Some(unit)),
        Err(e) if e.status() == Some(StatusCode::NOT_FOUND) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

async fn put(client: &Client, name: &str, body: &PutUnit) -> Result<()> {
    client
        .send_json(Method::PUT, &unit_path(name), body)
        .await
        .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    Ok(())
}

/// fleetctl's rule for `--replace`: `submit` replaces only inactive units, `load` inactive or
/// loaded ones, `start` any.
fn may_replace(command_state: DesiredState, current: DesiredState) -> bool {
    current <= command_state
}

/// Makes sure every argument's unit is in the cluster with desired state `state`: creates missing
/// ones (from local files or templates), replaces changed ones with `--replace`, and sets the state
/// of the others. Every unit is read and checked before the first write, so a missing file or a
/// bad unit changes nothing. Returns what to wait for.
async fn put_units(
    client: &Client,
    args: &[String],
    replace: bool,
    state: DesiredState,
) -> Result<Vec<Target>> {
    let arguments: Vec<Argument> = args.iter().map(|arg| files::argument(arg)).collect();
    let found = each(&arguments, |argument| get_unit(client, &argument.name)).await;
    let mut finder = files::Finder::new(client);
    let mut units = Vec::new();
    let mut writes = Vec::new();
    for (argument, existing) in arguments.into_iter().zip(found) {
        let existing = existing?;
        let (body, global) = match &existing {
            None => {
                let found = finder.find(&argument).await?;
                let body = PutUnit {
                    name: Some(argument.name.clone()),
                    desired_state: Some(state),
                    options: Some(options_of(found.unit.file())),
                };
                (body, found.unit.constraints().global)
            }
            Some(unit) => (changed_body(&argument, unit, replace, state)?, unit.global),
        };
        let unchanged_submit =
            existing.is_some() && state == DesiredState::Inactive && body.options.is_none();
        if !unchanged_submit {
            writes.push((argument.name.clone(), body));
        }
        units.push(Target {
            name: argument.name,
            global,
        });
    }
    let written = each(&writes, |(name, body)| put(client, name, body)).await;
    written.into_iter().collect::<Result<()>>()?;
    Ok(units)
}

/// The request for a unit already in the cluster: its new desired state, and its new content
/// when `--replace` is given and allowed and the local file differs.
fn changed_body(
    argument: &Argument,
    unit: &Unit,
    replace: bool,
    state: DesiredState,
) -> Result<PutUnit> {
    let mut body = PutUnit {
        name: Some(argument.name.clone()),
        desired_state: Some(state),
        options: None,
    };
    let Some(local) = files::local(argument)? else {
        return Ok(body);
    };
    if local.unit.hash().to_string() == unit.hash {
        return Ok(body);
    }
    if !replace {
        eprintln!(
            "WARNING: Unit {} in registry differs from local unit file {}. Add --replace to override.",
            argument.name, local.origin
        );
    } else if !may_replace(state, unit.desired_state) {
        eprintln!(
            "Warning: can not replace Unit({}) in state '{}', use the appropriate command",
            argument.name, unit.desired_state
        );
    } else {
        body.options = Some(options_of(local.unit.file()));
    }
    Ok(body)
}

/// `submit`.
pub async fn submit(client: &Client, submit: &Submit) -> Result<ExitCode> {
    let units = put_units(
        client,
        &submit.units,
        submit.replace,
        DesiredState::Inactive,
    )
    .await?;
    for unit in &units {
        println!("Unit {} inactive", unit.name);
    }
    Ok(ExitCode::SUCCESS)
}

/// `load`.
pub async fn load(client: &Client, change: &Change) -> Result<ExitCode> {
    let units = put_units(client, &change.units, change.replace, DesiredState::Loaded).await?;
    wait::until(client, &units, (Goal::Loaded, "load"), change.blocking).await
}

/// `start`.
pub async fn start(client: &Client, change: &Change) -> Result<ExitCode> {
    let units = put_units(
        client,
        &change.units,
        change.replace,
        DesiredState::Launched,
    )
    .await?;
    wait::until(client, &units, (Goal::Running, "start"), change.blocking).await
}

/// The units named that exist; says so for the others. `None` when none exists (fleetctl then
/// says `Units not found in registry` and exits 0).
async fn existing(client: &Client, args: &[String]) -> Result<Option<Vec<Unit>>> {
    let names: Vec<String> = args.iter().map(|arg| files::argument(arg).name).collect();
    let found = each(&names, |name| get_unit(client, name)).await;
    let mut units = Vec::new();
    for (name, unit) in names.iter().zip(found) {
        match unit? {
            Some(unit) => units.push(unit),
            None => eprintln!("Unit {name} does not exist."),
        }
    }
    if units.is_empty() {
        eprintln!("Units not found in registry");
        return Ok(None);
    }
    Ok(Some(units))
}

async fn set_states(client: &Client, units: &[Unit], state: DesiredState) -> Result<()> {
    let body = |unit: &Unit| PutUnit {
        name: Some(unit.name.clone()),
        desired_state: Some(state),
        options: None,
    };
    let written = each(units, |unit| async move {
        put(client, &unit.name, &body(unit)).await
    })
    .await;
    written.into_iter().collect()
}

fn targets(units: &[Unit]) -> Vec<Target> {
    units.iter().map(Target::of).collect()
}

fn names(units: &[Unit]) -> String {
    let names: Vec<&str> = units.iter().map(|u| u.name.as_str()).collect();
    format!("[{}]", names.join(" "))
}

/// `stop`: launched units become loaded; an inactive unit is an error, a loaded one is skipped.
pub async fn stop(client: &Client, transition: &Transition) -> Result<ExitCode> {
    let Some(units) = existing(client, &transition.units).await? else {
        return Ok(ExitCode::SUCCESS);
    };
    let mut failed = false;
    let mut stopping = Vec::new();
    for unit in units {
        match (unit.global, unit.current_state.as_str()) {
            (false, "inactive" | "") => {
                eprintln!("Unable to stop unit {} in state inactive", unit.name);
                failed = true;
            }
            (false, "loaded") if unit.desired_state == DesiredState::Loaded => {}
            _ => stopping.push(unit),
        }
    }
    set_states(client, &stopping, DesiredState::Loaded).await?;
    let code = wait::until(
        client,
        &targets(&stopping),
        (Goal::Loaded, "stop"),
        transition.blocking,
    )
    .await?;
    if code == ExitCode::SUCCESS && !stopping.is_empty() {
        eprintln!("Successfully stopped units {}.", names(&stopping));
    }
    Ok(if failed { ExitCode::FAILURE } else { code })
}

/// `unload`: units become inactive, unscheduled.
pub async fn unload(client: &Client, transition: &Transition) -> Result<ExitCode> {
    let Some(units) = existing(client, &transition.units).await? else {
        return Ok(ExitCode::SUCCESS);
    };
    set_states(client, &units, DesiredState::Inactive).await?;
    let code = wait::until(
        client,
        &targets(&units),
        (Goal::Inactive, "unload"),
        transition.blocking,
    )
    .await?;
    if code == ExitCode::SUCCESS {
        eprintln!("Successfully unloaded units {}.", names(&units));
    }
    Ok(code)
}

/// `destroy`: units leave the cluster; their machines stop and unload them.
pub async fn destroy(client: &Client, transition: &Transition) -> Result<ExitCode> {
    let names: Vec<String> = transition
        .units
        .iter()
        .map(|arg| files::argument(arg).name)
        .collect();
    let deleted = each(&names, |name| async move {
        client.delete(&unit_path(name)).await
    })
    .await;
    let mut first_error = None;
    for (name, deleted) in names.iter().zip(deleted) {
        match deleted {
            Ok(_) => println!("Destroyed {name}"),
            Err(e) if e.status() == Some(StatusCode::NOT_FOUND) => {}
            Err(e) => {
                first_error.get_or_insert_with(|| anyhow::anyhow!("{name}: {e}"));
            }
        }
    }
    if let Some(error) = first_error {
        return Err(error);
    }
    if !transition.blocking.no_block {
        wait::until_gone(client, &transition.units, transition.blocking).await?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `restart`: stop (wait until loaded), then start (wait until systemd runs it).
pub async fn restart(client: &Client, transition: &Transition) -> Result<ExitCode> {
    let Some(units) = existing(client, &transition.units).await? else {
        return Ok(ExitCode::SUCCESS);
    };
    let (inactive, restarting): (Vec<Unit>, Vec<Unit>) = units
        .into_iter()
        .partition(|u| !u.global && matches!(u.current_state.as_str(), "inactive" | ""));
    for unit in &inactive {
        eprintln!("Unable to restart unit {} in state inactive", unit.name);
    }
    let blocking = Blocking {
        no_block: false,
        ..transition.blocking
    };
    set_states(client, &restarting, DesiredState::Loaded).await?;
    let code = wait::until(
        client,
        &targets(&restarting),
        (Goal::Loaded, "stop"),
        blocking,
    )
    .await?;
    if code != ExitCode::SUCCESS {
        return Ok(code);
    }
    set_states(client, &restarting, DesiredState::Launched).await?;
    let code = wait::until(
        client,
        &targets(&restarting),
        (Goal::Running, "start"),
        transition.blocking,
    )
    .await?;
    Ok(if inactive.is_empty() {
        code
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_follows_fleetctls_rule() {
        use DesiredState::*;
        assert!(may_replace(Inactive, Inactive));
        assert!(!may_replace(Inactive, Loaded));
        assert!(may_replace(Loaded, Loaded));
        assert!(!may_replace(Loaded, Launched));
        assert!(may_replace(Launched, Launched));
    }
}
