//! The key-value requests every part of the registry sends (range, put, delete, txn), each
//! through [`Registry::call`] so it is counted and fails over, and the JSON records they carry.

use etcd_client::{
    DeleteOptions, DeleteResponse, GetOptions, GetResponse, KeyValue, KvClient, PutOptions,
    PutResponse, Txn, TxnOpResponse, TxnResponse,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::client::Registry;
use super::counters::RequestKind;
use super::error::{RegistryError, Result};

/// The largest response the registry accepts: a whole-cluster snapshot is one response, and
/// etcd sends up to 2 GiB; tonic's default (4 MiB) would cap the cluster at a few thousand units.
pub(crate) const MAX_RESPONSE: usize = 1 << 30;

/// A record with the etcd revisions of the key it was read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Versioned<T> {
    /// The record.
    pub value: T,
    /// The revision of the key's last change.
    pub mod_revision: i64,
    /// The revision the key was created at.
    pub create_revision: i64,
}

/// A KV client that accepts large responses.
pub(crate) fn kv(client: &etcd_client::Client) -> KvClient {
    client.kv_client().max_decoding_message_size(MAX_RESPONSE)
}

/// The record `kv` holds, with its revisions.
pub(crate) fn decode<T: DeserializeOwned>(kv: &KeyValue) -> Result<Versioned<T>> {
    let value = serde_json::from_slice(kv.value()).map_err(|source| RegistryError::Decode {
        key: key_text(kv),
        source,
    })?;
    Ok(Versioned {
        value,
        mod_revision: kv.mod_revision(),
        create_revision: kv.create_revision(),
    })
}

/// The JSON of a record.
pub(crate) fn encode<T: Serialize>(record: &T) -> Vec<u8> {
    // The records are structs of strings, numbers and string-keyed maps: serializing them
    // cannot fail.
    serde_json::to_vec(record).expect("registry records always serialize to JSON")
}

/// `key` as text (keys are written by this module, always UTF-8; others are shown lossily).
pub(crate) fn key_text(kv: &KeyValue) -> String {
    String::from_utf8_lossy(kv.key()).into_owned()
}

impl Registry {
    /// A range read.
    pub(crate) async fn range(
        &self,
        key: &str,
        options: Option<GetOptions>,
    ) -> Result<GetResponse> {
        self.call(RequestKind::Range, key, |client| {
            let options = options.clone();
            async move { kv(&client).get(key, options).await }
        })
        .await
    }

    /// The one key `key`, if it exists.
    pub(crate) async fn get_one(&self, key: &str) -> Result<Option<KeyValue>> {
        let mut response = self.range(key, None).await?;
        Ok(response.take_kvs().into_iter().next())
    }

    /// A put.
    pub(crate) async fn put(
        &self,
        key: &str,
        value: Vec<u8>,
        options: Option<PutOptions>,
    ) -> Result<PutResponse> {
        self.call(RequestKind::Put, key, |client| {
            let (value, options) = (value.clone(), options.clone());
            async move { kv(&client).put(key, value, options).await }
        })
        .await
    }

    /// A delete.
    pub(crate) async fn delete(
        &self,
        key: &str,
        options: Option<DeleteOptions>,
    ) -> Result<DeleteResponse> {
        self.call(RequestKind::Delete, key, |client| {
            let options = options.clone();
            async move { kv(&client).delete(key, options).await }
        })
        .await
    }

    /// A transaction; `key` names what it is about, for errors.
    pub(crate) async fn txn(&self, key: &str, txn: Txn) -> Result<TxnResponse> {
        self.call(RequestKind::Txn, key, |client| {
            let txn = txn.clone();
            async move { kv(&client).txn(txn).await }
        })
        .await
    }
}

/// The revision a response was served at (0 if etcd sent no header, which it always does).
pub(crate) fn revision_of(header: Option<&etcd_client::ResponseHeader>) -> i64 {
    header.map_or(0, |header| header.revision())
}

/// The keys each range of a transaction returned, in order.
pub(crate) fn ranges_of(response: &TxnResponse) -> Vec<Vec<KeyValue>> {
    response
        .op_responses()
        .into_iter()
        .filter_map(|op| match op {
            TxnOpResponse::Get(mut get) => Some(get.take_kvs()),
            _ => None,
        })
        .collect()
}

/// The first key the transaction's ranges returned.
pub(crate) fn first_kv(response: &TxnResponse) -> Option<KeyValue> {
    ranges_of(response).into_iter().flatten().next()
}
