//! Units as the API writes them: `units/<name>`, created, replaced, started and stopped
//! (desired state), destroyed, read and listed, each returned with its etcd mod revision.
//!
//! Every desired-state change rewrites the record even when the state does not change, so its
//! mod revision moves: a `start` of a unit that is already `launched` (and has since failed) is
//! a new revision the scheduler passes on, and the agent starts the unit again.

use etcd_client::{Compare, CompareOp, GetOptions, Txn, TxnOp};

use crate::cluster::model::{DesiredState, UnitRecord};

use super::client::Registry;
use super::error::{RegistryError, Result};
use super::keys::is_segment;
use super::kv::{decode, encode, first_kv, revision_of, Versioned};

/// Read-modify-write tries before [`RegistryError::Contended`].
const TRIES: usize = 16;

/// Units read at one etcd revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitList {
    /// The revision they were read at.
    pub revision: i64,
    /// The units, by name.
    pub units: Vec<Versioned<UnitRecord>>,
}

fn check_unit_name(name: &str) -> Result<()> {
    if is_segment(name) {
        Ok(())
    } else {
        Err(RegistryError::InvalidName {
            what: "unit name",
            name: name.to_owned(),
        })
    }
}

impl Registry {
    /// Stores a new unit; [`RegistryError::UnitExists`] if one of that name exists. Returns the
    /// record's mod revision.
    pub async fn create_unit(&self, unit: &UnitRecord) -> Result<i64> {
        check_unit_name(&unit.name)?;
        let key = self.keys().unit(&unit.name);
        let txn = Txn::new()
            .when([Compare::create_revision(key.as_str(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key.as_str(), encode(unit), None)]);
        let response = self.txn(&key, txn).await?;
        if !response.succeeded() {
            return Err(RegistryError::UnitExists {
                name: unit.name.clone(),
            });
        }
        Ok(revision_of(response.header()))
    }

    /// Stores `unit`, created or overwritten, with the desired state it carries. Returns the
    /// record's mod revision.
    pub async fn replace_unit(&self, unit: &UnitRecord) -> Result<i64> {
        check_unit_name(&unit.name)?;
        let key = self.keys().unit(&unit.name);
        let response = self.put(&key, encode(unit), None).await?;
        Ok(revision_of(response.header()))
    }

    /// Sets a unit's desired state, rewriting the record even when the state is unchanged (see
    /// the module's documentation); [`RegistryError::UnitNotFound`] if it does not exist. Each
    /// write is guarded by the mod revision it was read at, so a concurrent replace is never
    /// overwritten with the old contents.
    pub async fn set_desired_state(
        &self,
        name: &str,
        state: DesiredState,
    ) -> Result<Versioned<UnitRecord>> {
        check_unit_name(name)?;
        let key = self.keys().unit(name);
        let mut current = self.get_one(&key).await?;
        for _ in 0..TRIES {
            let Some(kv) = current else {
                return Err(RegistryError::UnitNotFound {
                    name: name.to_owned(),
                });
            };
            let mut unit: Versioned<UnitRecord> = decode(&kv)?;
            unit.value.desired_state = state;
            let txn = Txn::new()
                .when([Compare::mod_revision(
                    key.as_str(),
                    CompareOp::Equal,
                    kv.mod_revision(),
                )])
                .and_then([TxnOp::put(key.as_str(), encode(&unit.value), None)])
                .or_else([TxnOp::get(key.as_str(), None)]);
            let response = self.txn(&key, txn).await?;
            if response.succeeded() {
                unit.mod_revision = revision_of(response.header());
                return Ok(unit);
            }
            current = first_kv(&response);
        }
        Err(RegistryError::Contended { key, tries: TRIES })
    }

    /// Deletes a unit; `false` if there was none.
    pub async fn destroy_unit(&self, name: &str) -> Result<bool> {
        check_unit_name(name)?;
        let response = self.delete(&self.keys().unit(name), None).await?;
        Ok(response.deleted() > 0)
    }

    /// One unit, if it exists.
    pub async fn unit(&self, name: &str) -> Result<Option<Versioned<UnitRecord>>> {
        check_unit_name(name)?;
        self.get_one(&self.keys().unit(name))
            .await?
            .map(|kv| decode(&kv))
            .transpose()
    }

    /// Every unit, sorted by name, read at one revision.
    pub async fn units(&self) -> Result<UnitList> {
        let mut response = self
            .range(&self.keys().units(), Some(GetOptions::new().with_prefix()))
            .await?;
        Ok(UnitList {
            revision: revision_of(response.header()),
            units: response
                .take_kvs()
                .iter()
                .map(decode)
                .collect::<Result<_>>()?,
        })
    }
}
