//! Reading the unit states the machines report (`states/<machine>/<unit>`): all of them, one
//! machine's, or one unit's on every machine. Writing them is [`super::Presence`]'s, under the
//! machine's lease.

use etcd_client::{GetOptions, KeyValue};

use crate::cluster::model::ReportedState;

use super::client::Registry;
use super::error::{RegistryError, Result};
use super::keys::{is_segment, Key};
use super::kv::{decode, key_text, revision_of};

/// Which reported states to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateFilter<'a> {
    /// Every machine's.
    All,
    /// One machine's.
    Machine(&'a str),
    /// One unit's, on every machine that reports it.
    Unit(&'a str),
}

/// A state a machine reports for a unit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateEntry {
    /// The machine reporting.
    pub machine: String,
    /// The unit.
    pub unit: String,
    /// What systemd says of it there.
    pub state: ReportedState,
}

/// Reported states read at one etcd revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateList {
    /// The revision they were read at.
    pub revision: i64,
    /// The states, by machine then unit.
    pub states: Vec<StateEntry>,
}

impl Registry {
    /// The reported states `filter` selects.
    pub async fn states(&self, filter: StateFilter<'_>) -> Result<StateList> {
        let prefix = match filter {
            StateFilter::Machine(machine) => {
                if !is_segment(machine) {
                    return Err(RegistryError::InvalidName {
                        what: "machine id",
                        name: machine.to_owned(),
                    });
                }
                self.keys().states_of(machine)
            }
            StateFilter::All | StateFilter::Unit(_) => self.keys().states(),
        };
        let mut response = self
            .range(&prefix, Some(GetOptions::new().with_prefix()))
            .await?;
        let mut states = Vec::new();
        for kv in response.take_kvs() {
            if let Some(entry) = self.state_entry(&kv)? {
                if !matches!(filter, StateFilter::Unit(unit) if unit != entry.unit) {
                    states.push(entry);
                }
            }
        }
        Ok(StateList {
            revision: revision_of(response.header()),
            states,
        })
    }

    /// The state `kv` holds, or `None` for a key outside the layout.
    fn state_entry(&self, kv: &KeyValue) -> Result<Option<StateEntry>> {
        let Some(Key::State { machine, unit }) = self.keys().parse(&key_text(kv)) else {
            return Ok(None);
        };
        Ok(Some(StateEntry {
            machine,
            unit,
            state: decode(kv)?.value,
        }))
    }
}
