//! Where the unit a `flotctl` argument names comes from: a local file, or a template in the
//! cluster or beside the argument (fleetctl's order), checked before anything is sent.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use unitgen::name::{mangle, UnitName};
use unitgen::unit::Unit;

use super::Result;
use crate::api::client::Client;
use crate::api::types::{file_of, unit_path, Unit as ApiUnit};

/// The unit an argument names and the local file that may hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Argument {
    /// The unit's name in the cluster: `web.service` for `web`, `units/web.service` or
    /// `web.container`.
    pub name: String,
    /// The file the argument points at (`web` means `web.service`), whether or not it exists.
    pub path: PathBuf,
}

/// fleetctl's reading of an argument; a `.container` file names the service it becomes.
pub fn argument(arg: &str) -> Argument {
    if let Some(stem) = arg.strip_suffix(".container") {
        let base = Path::new(stem)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        return Argument {
            name: format!("{base}.service"),
            path: PathBuf::from(arg),
        };
    }
    let name = mangle(arg);
    let path = if arg.ends_with(&name) {
        PathBuf::from(arg)
    } else {
        PathBuf::from(format!("{arg}.service"))
    };
    Argument { name, path }
}

/// A unit file found for an argument, checked.
#[derive(Debug, Clone)]
pub struct Found {
    /// The checked unit.
    pub unit: Unit,
    /// Where it came from, for messages.
    pub origin: String,
}

fn check(label: &str, name: &str, text: &[u8]) -> Result<Unit> {
    Unit::check(label, name, text).map_err(|diagnostics| {
        let lines: Vec<String> = diagnostics
            .sorted()
            .iter()
            .map(ToString::to_string)
            .collect();
        anyhow::anyhow!("unit {name} is not valid:\n{}", lines.join("\n"))
    })
}

/// The local file of `argument`, checked, if it exists.
pub fn local(argument: &Argument) -> Result<Option<Found>> {
    let text = match std::fs::read(&argument.path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => anyhow::bail!("cannot read unit file {}: {e}", argument.path.display()),
    };
    let label = argument.path.display().to_string();
    let file_name = argument
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let input_name = if file_name.ends_with(".container") {
        file_name
    } else {
        argument.name.clone()
    };
    Ok(Some(Found {
        unit: check(&label, &input_name, &text)?,
        origin: label,
    }))
}

/// Finds the units to create, asking the cluster for each template once however many of its
/// instances are started.
pub struct Finder<'a> {
    client: &'a Client,
    /// A template's text in the cluster, `None` when the cluster has no such template.
    templates: HashMap<String, Option<String>>,
}

impl<'a> Finder<'a> {
    /// A finder asking `client`.
    pub fn new(client: &'a Client) -> Finder<'a> {
        Finder {
            client,
            templates: HashMap::new(),
        }
    }

    /// The unit to create for `argument`: its local file; or, for an instance `app@1.service`,
    /// the template `app@.service` from the cluster, else from beside the argument.
    pub async fn find(&mut self, argument: &Argument) -> Result<Found> {
        if let Some(found) = local(argument)? {
            return Ok(found);
        }
        let name = UnitName::parse(&argument.name)
            .map_err(|e| anyhow::anyhow!("invalid unit name {:?}: {e}", argument.name))?;
        let Some(template) = name.template_name() else {
            anyhow::bail!(
                "unit {} is not in the cluster and there is no unit file {}",
                argument.name,
                argument.path.display()
            );
        };
        if let Some(text) = self.cluster_template(template.as_str()).await? {
            let origin = format!("template {template} in the cluster");
            return Ok(Found {
                unit: check(&origin, &argument.name, text.as_bytes())?,
                origin,
            });
        }
        template_beside(argument, template.as_str())
    }

    async fn cluster_template(&mut self, template: &str) -> Result<Option<&String>> {
        if !self.templates.contains_key(template) {
            let text = match self.client.get::<ApiUnit>(&unit_path(template)).await {
                Ok(unit) => Some(file_of(template, &unit.options).normalized()),
                Err(e) if e.status() == Some(hyper::StatusCode::NOT_FOUND) => None,
                Err(e) => return Err(e.into()),
            };
            self.templates.insert(template.to_owned(), text);
        }
        Ok(self.templates[template].as_ref())
    }
}

/// The template `template` of `argument`'s instance, from the file beside the argument.
fn template_beside(argument: &Argument, template: &str) -> Result<Found> {
    let beside = argument
        .path
        .parent()
        .unwrap_or(Path::new(""))
        .join(template);
    match std::fs::read(&beside) {
        Ok(text) => {
            let origin = beside.display().to_string();
            Ok(Found {
                unit: check(&origin, &argument.name, &text)?,
                origin,
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => anyhow::bail!(
            "unable to find template {template} in the cluster or on the filesystem (looked for {})",
            beside.display()
        ),
        Err(e) => anyhow::bail!("cannot read unit file {}: {e}", beside.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_name_units_as_fleetctl_does() {
        assert_eq!(
            argument("web"),
            Argument {
                name: "web.service".into(),
                path: "web.service".into()
            }
        );
        assert_eq!(
            argument("units/app@1.service"),
            Argument {
                name: "app@1.service".into(),
                path: "units/app@1.service".into()
            }
        );
        assert_eq!(
            argument("units/mongo.container"),
            Argument {
                name: "mongo.service".into(),
                path: "units/mongo.container".into()
            }
        );
        assert_eq!(argument("db.socket").name, "db.socket");
    }
}
