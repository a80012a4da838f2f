//! The machines of the cluster as the scheduler and `flotctl list-machines` see them: each
//! registration joined with its dynamic metadata (`metadata/<id>`, set through the API and kept
//! without a lease), and changes to that dynamic metadata.

use std::collections::BTreeMap;

use etcd_client::{Compare, CompareOp, GetOptions, KeyValue, Txn, TxnOp};

use crate::cluster::model::{effective_metadata, MachineRecord};

use super::client::Registry;
use super::error::{RegistryError, Result};
use super::keys::{is_segment, Key};
use super::kv::{decode, encode, first_kv, key_text, ranges_of, revision_of};

/// Read-modify-write tries before [`RegistryError::Contended`].
const TRIES: usize = 16;

/// A registered machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Machine {
    /// Its registration.
    pub record: MachineRecord,
    /// Its dynamic metadata (`metadata/<id>`), as set through the API.
    pub dynamic: BTreeMap<String, String>,
    /// The metadata `MachineMetadata=` matches: configured with dynamic laid over it.
    pub metadata: BTreeMap<String, String>,
    /// The lease the registration is under.
    pub lease: i64,
}

/// Machines read at one etcd revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MachineList {
    /// The revision they were read at.
    pub revision: i64,
    /// The machines, by ID.
    pub machines: Vec<Machine>,
}

/// Joins registrations with dynamic metadata (both as read from etcd, under `registry`'s keys).
/// Dynamic metadata of a machine that is not registered is ignored.
pub(crate) fn join_machines(
    registry: &Registry,
    machines: &[KeyValue],
    metadata: &[KeyValue],
) -> Result<Vec<Machine>> {
    let mut dynamic: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for kv in metadata {
        if let Some(Key::Metadata(id)) = registry.keys().parse(&key_text(kv)) {
            dynamic.insert(id, decode(kv)?.value);
        }
    }
    machines
        .iter()
        .map(|kv| {
            let record: MachineRecord = decode(kv)?.value;
            let dynamic = dynamic.remove(&record.id).unwrap_or_default();
            Ok(Machine {
                metadata: effective_metadata(&record.metadata, &dynamic),
                dynamic,
                record,
                lease: kv.lease(),
            })
        })
        .collect()
}

fn check_machine_id(id: &str) -> Result<()> {
    if is_segment(id) {
        Ok(())
    } else {
        Err(RegistryError::InvalidName {
            what: "machine id",
            name: id.to_owned(),
        })
    }
}

impl Registry {
    /// Every registered machine with its effective metadata, read at one revision (one
    /// transaction of two ranges).
    pub async fn machines(&self) -> Result<MachineList> {
        let prefix = GetOptions::new().with_prefix();
        let txn = Txn::new().and_then([
            TxnOp::get(self.keys().machines(), Some(prefix.clone())),
            TxnOp::get(self.keys().metadata_all(), Some(prefix)),
        ]);
        let response = self.txn(&self.keys().machines(), txn).await?;
        let mut ranges = ranges_of(&response).into_iter();
        let machines = ranges.next().unwrap_or_default();
        let metadata = ranges.next().unwrap_or_default();
        Ok(MachineList {
            revision: revision_of(response.header()),
            machines: join_machines(self, &machines, &metadata)?,
        })
    }

    /// Sets `key` to `value` in machine `id`'s dynamic metadata (an empty value hides a
    /// configured key, as in fleet).
    pub async fn set_metadata(&self, id: &str, key: &str, value: &str) -> Result<()> {
        self.edit_metadata(id, |metadata| {
            metadata.insert(key.to_owned(), value.to_owned()) != Some(value.to_owned())
        })
        .await
        .map(|_| ())
    }

    /// Removes `key` from machine `id`'s dynamic metadata (the configured value, if any, shows
    /// again); `false` if it was not there.
    pub async fn remove_metadata(&self, id: &str, key: &str) -> Result<bool> {
        self.edit_metadata(id, |metadata| metadata.remove(key).is_some())
            .await
    }

    /// Read-modify-write of `metadata/<id>`, guarded by its mod revision; `edit` says whether it
    /// changed anything. An emptied object is deleted.
    async fn edit_metadata(
        &self,
        id: &str,
        edit: impl Fn(&mut BTreeMap<String, String>) -> bool,
    ) -> Result<bool> {
        check_machine_id(id)?;
        let key = self.keys().metadata(id);
        let mut current = self.get_one(&key).await?;
        for _ in 0..TRIES {
            let (mut metadata, revision) = match &current {
                Some(kv) => (decode(kv)?.value, kv.mod_revision()),
                None => (BTreeMap::new(), 0),
            };
            if !edit(&mut metadata) {
                return Ok(false);
            }
            let write = if metadata.is_empty() {
                TxnOp::delete(key.as_str(), None)
            } else {
                TxnOp::put(key.as_str(), encode(&metadata), None)
            };
            let txn = Txn::new()
                .when([Compare::mod_revision(
                    key.as_str(),
                    CompareOp::Equal,
                    revision,
                )])
                .and_then([write])
                .or_else([TxnOp::get(key.as_str(), None)]);
            let response = self.txn(&key, txn).await?;
            if response.succeeded() {
                return Ok(true);
            }
            current = first_kv(&response);
        }
        Err(RegistryError::Contended { key, tries: TRIES })
    }
}
