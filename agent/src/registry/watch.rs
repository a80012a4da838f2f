//! Watching a key family from a revision, without gaps: typed events in revision order,
//! reconnecting (on another endpoint if need be) from the revision after the last event
//! delivered, and telling the consumer to resync when etcd cancels the watch or has compacted
//! the history it needs. Never an event silently skipped.
//!
//! The consumer's pattern: read a snapshot at revision R, watch from R + 1, apply events; on
//! [`WatchUpdate::Resync`] (or an error), read a new snapshot and watch again from it.

use std::collections::BTreeMap;

use etcd_client::{EventType, WatchOptions, WatchStream};

use crate::cluster::model::{Assignment, MachineRecord, ReportedState, UnitRecord};

use super::client::Registry;
use super::counters::RequestKind;
use super::election::LeaderRecord;
use super::error::Result;
use super::keys::{prefix_end, Key};
use super::kv::{decode, key_text, Versioned, MAX_RESPONSE};

/// A change to one key, typed by its family; `None` is a deletion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// `units/<name>`.
    Unit {
        /// The unit.
        name: String,
        /// The record with its revisions.
        record: Option<Versioned<UnitRecord>>,
    },
    /// `machines/<id>`.
    Machine {
        /// The machine.
        id: String,
        /// Its registration (without dynamic metadata) and the lease it is under.
        record: Option<(MachineRecord, i64)>,
    },
    /// `metadata/<id>`: the whole dynamic metadata of a machine (empty once deleted).
    Metadata {
        /// The machine.
        id: String,
        /// Its dynamic metadata.
        metadata: BTreeMap<String, String>,
    },
    /// `schedule/<machine>/<unit>`.
    Assignment {
        /// The machine.
        machine: String,
        /// The unit.
        unit: String,
        /// The assignment.
        assignment: Option<Assignment>,
    },
    /// `states/<machine>/<unit>`.
    State {
        /// The machine.
        machine: String,
        /// The unit.
        unit: String,
        /// The state reported.
        state: Option<ReportedState>,
    },
    /// `leader`: the machine ID of the leader.
    Leader {
        /// The leader.
        machine: Option<String>,
    },
    /// A key under the prefix that is not in the layout, or a value that is not its record.
    Malformed {
        /// The key.
        key: String,
        /// What is wrong with it.
        problem: String,
    },
}

/// One change at one revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// The revision of the change.
    pub revision: i64,
    /// The change.
    pub change: Change,
}

/// What a watch delivers next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchUpdate {
    /// Events, in revision order, with no gap since the previous ones.
    Events(Vec<Event>),
    /// The watch is over: read a new snapshot and watch again from it.
    Resync(Resync),
}

/// Why a watch ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resync {
    /// etcd compacted the revisions the watch needs; the oldest it still has is this.
    Compacted {
        /// etcd's compact revision.
        compact_revision: i64,
    },
    /// etcd cancelled the watch.
    Cancelled {
        /// etcd's reason.
        reason: String,
    },
}

/// A watch on a key prefix that survives broken connections; see the module's documentation.
pub struct Watch {
    registry: Registry,
    prefix: String,
    next_revision: i64,
    stream: Option<(usize, WatchStream)>,
    ended: Option<Resync>,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch")
            .field("prefix", &self.prefix)
            .field("next_revision", &self.next_revision)
            .field("connected", &self.stream.is_some())
            .field("ended", &self.ended)
            .finish()
    }
}

impl Registry {
    /// Watches every key starting with `prefix` (one of [`Registry::keys`]'s), from
    /// `start_revision` (inclusive: a snapshot's revision + 1).
    pub async fn watch(&self, prefix: &str, start_revision: i64) -> Result<Watch> {
        let mut watch = Watch {
            registry: self.clone(),
            prefix: prefix.to_owned(),
            next_revision: start_revision,
            stream: None,
            ended: None,
        };
        watch.open().await?;
        Ok(watch)
    }
}

impl Watch {
    /// The revision the next event will be at or after.
    pub fn next_revision(&self) -> i64 {
        self.next_revision
    }

    /// The next events, or the end of the watch. A broken connection is reopened from
    /// [`Watch::next_revision`]; an error means no endpoint could reopen it.
    pub async fn next(&mut self) -> Result<WatchUpdate> {
        loop {
            if let Some(resync) = &self.ended {
                return Ok(WatchUpdate::Resync(resync.clone()));
            }
            let Some((index, stream)) = &mut self.stream else {
                self.open().await?;
                continue;
            };
            let index = *index;
            match stream.message().await {
                Ok(Some(response)) if response.canceled() => {
                    let resync = if response.compact_revision() > 0 {
                        Resync::Compacted {
                            compact_revision: response.compact_revision(),
                        }
                    } else {
                        Resync::Cancelled {
                            reason: response.cancel_reason().to_owned(),
                        }
                    };
                    self.stream = None;
                    self.ended = Some(resync);
                }
                Ok(Some(response)) => {
                    let events: Vec<Event> = response
                        .events()
                        .iter()
                        .filter_map(|event| self.event(event))
                        .collect();
                    if let Some(last) = events.last() {
                        self.next_revision = last.revision + 1;
                        return Ok(WatchUpdate::Events(events));
                    }
                }
                Ok(None) | Err(_) => {
                    tracing::debug!(prefix = %self.prefix, revision = self.next_revision, "watch broke; reopening");
                    self.registry.failed(index);
                    self.stream = None;
                }
            }
        }
    }

    async fn open(&mut self) -> Result<()> {
        let options = WatchOptions::new()
            .with_range(prefix_end(self.prefix.as_bytes()))
            .with_start_revision(self.next_revision);
        let prefix = self.prefix.as_str();
        let opened = self
            .registry
            .call_indexed(RequestKind::Watch, prefix, |client| {
                let options = options.clone();
                async move {
                    client
                        .watch_client()
                        .max_decoding_message_size(MAX_RESPONSE)
                        .watch(prefix, Some(options))
                        .await
                }
            })
            .await?;
        let (stream, index) = opened;
        self.stream = Some((index, stream));
        Ok(())
    }

    /// The typed event, or `None` for an event without a key (etcd always sends one).
    fn event(&self, event: &etcd_client::Event) -> Option<Event> {
        let kv = event.kv()?;
        let revision = kv.mod_revision();
        let key = key_text(kv);
        let put = event.event_type() == EventType::Put;
        let change = match self.registry.keys().parse(&key) {
            Some(parsed) => {
                typed(parsed, put.then_some(kv)).unwrap_or_else(|error| Change::Malformed {
                    key,
                    problem: error.to_string(),
                })
            }
            None => Change::Malformed {
                key,
                problem: "not a key of flotilla's layout".to_owned(),
            },
        };
        Some(Event { revision, change })
    }
}

/// The change a put of `kv` (or a deletion, `None`) at `key` is.
fn typed(key: Key, kv: Option<&etcd_client::KeyValue>) -> Result<Change> {
    Ok(match key {
        Key::Unit(name) => Change::Unit {
            name,
            record: kv.map(decode).transpose()?,
        },
        Key::Machine(id) => Change::Machine {
            id,
            record: kv
                .map(|kv| decode(kv).map(|record| (record.value, kv.lease())))
                .transpose()?,
        },
        Key::Metadata(id) => Change::Metadata {
            id,
            metadata: kv
                .map(|kv| decode(kv).map(|record| record.value))
                .transpose()?
                .unwrap_or_default(),
        },
        Key::Assignment { machine, unit } => Change::Assignment {
            machine,
            unit,
            assignment: kv.map(|kv| decode(kv).map(|a| a.value)).transpose()?,
        },
        Key::State { machine, unit } => Change::State {
            machine,
            unit,
            state: kv.map(|kv| decode(kv).map(|s| s.value)).transpose()?,
        },
        Key::Leader => Change::Leader {
            machine: kv
                .map(|kv| decode::<LeaderRecord>(kv).map(|leader| leader.value.machine_id))
                .transpose()?,
        },
    })
}
