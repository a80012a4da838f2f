//! Splitting writes (the scheduler's assignments, a machine's state reports) into transactions
//! etcd accepts: at most [`MAX_OPS`] writes and about [`MAX_BYTES`] of keys and values each
//! (etcd's defaults are 128 operations per branch, `--max-txn-ops`, and 1.5 MiB per request,
//! `--max-request-bytes`; the margin leaves room for the compares), and no key written twice
//! (etcd refuses a transaction that does). Pure.

use std::collections::BTreeSet;
use std::ops::Range;

use super::error::RegistryError;

/// Writes per transaction: with one compare per distinct unit plus the leader's, the compares
/// stay within etcd's 128 too.
pub const MAX_OPS: usize = 100;
/// Bytes of keys and values per transaction.
pub const MAX_BYTES: usize = 1 << 20;

/// One write to batch: its key and its size on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteSize<'a> {
    /// The key written.
    pub key: &'a str,
    /// Key plus value bytes.
    pub bytes: usize,
}

/// [`split`] for writes given as (key, value size; 0 for a delete), with a key written twice
/// as [`RegistryError::DuplicateOperation`].
pub(super) fn transactions<'a>(
    writes: impl IntoIterator<Item = (&'a str, usize)>,
) -> Result<Vec<Range<usize>>, RegistryError> {
    let sizes: Vec<WriteSize> = writes
        .into_iter()
        .map(|(key, value)| WriteSize {
            key,
            bytes: key.len() + value,
        })
        .collect();
    split(&sizes).map_err(|key| RegistryError::DuplicateOperation {
        key: key.to_owned(),
    })
}

/// Consecutive runs of `writes` that each fit one transaction, in order; `Err(key)` names a key
/// written twice. A write larger than [`MAX_BYTES`] gets a transaction of its own.
pub fn split<'a>(writes: &[WriteSize<'a>]) -> Result<Vec<Range<usize>>, &'a str> {
    let mut seen = BTreeSet::new();
    let mut batches = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (index, write) in writes.iter().enumerate() {
        if !seen.insert(write.key) {
            return Err(write.key);
        }
        let full = index - start == MAX_OPS || (index > start && bytes + write.bytes > MAX_BYTES);
        if full {
            batches.push(start..index);
            (start, bytes) = (index, 0);
        }
        bytes += write.bytes;
    }
    if start < writes.len() {
        batches.push(start..writes.len());
    }
    Ok(batches)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writes(keys: &[String], bytes: usize) -> Vec<WriteSize<'_>> {
        keys.iter()
            .map(|key| WriteSize {
                key: key.as_str(),
                bytes,
            })
            .collect()
    }

    fn keys(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("k{i}")).collect()
    }

    #[test]
    fn splits_by_count() {
        let keys = keys(250);
        assert_eq!(
            split(&writes(&keys, 10)).unwrap(),
            vec![0..100, 100..200, 200..250]
        );
        assert_eq!(split(&writes(&keys[..100], 10)).unwrap(), vec![0..100]);
        assert_eq!(split(&[]).unwrap(), Vec::<Range<usize>>::new());
    }

    #[test]
    fn splits_by_size_and_lets_a_huge_write_through_alone() {
        let keys = keys(5);
        let third = MAX_BYTES / 3 + 1;
        assert_eq!(
            split(&writes(&keys, third)).unwrap(),
            vec![0..2, 2..4, 4..5]
        );
        assert_eq!(
            split(&writes(&keys[..2], MAX_BYTES * 2)).unwrap(),
            vec![0..1, 1..2]
        );
    }

    #[test]
    fn a_key_written_twice_is_named() {
        let keys = vec!["a".to_owned(), "b".to_owned(), "a".to_owned()];
        assert_eq!(split(&writes(&keys, 1)), Err("a"));
    }
}
