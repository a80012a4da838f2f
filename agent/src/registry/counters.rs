//! A cheap count of the etcd requests this process sent, by kind, so a benchmark can report
//! etcd requests per placement and an operator can see what the agent costs etcd.
//!
//! Every try counts, retries included: it is what etcd sees.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// The kinds of etcd request the registry sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RequestKind {
    /// A range read (`get`).
    Range,
    /// A plain put.
    Put,
    /// A plain delete.
    Delete,
    /// A transaction (guarded writes and consistent multi-range reads).
    Txn,
    /// A lease grant.
    LeaseGrant,
    /// A lease revoke.
    LeaseRevoke,
    /// One lease keep-alive sent on a keep-alive stream.
    LeaseKeepAlive,
    /// A watch created (each reconnect creates one).
    Watch,
}

impl RequestKind {
    /// Every kind, in counter order.
    pub const ALL: [RequestKind; 8] = [
        RequestKind::Range,
        RequestKind::Put,
        RequestKind::Delete,
        RequestKind::Txn,
        RequestKind::LeaseGrant,
        RequestKind::LeaseRevoke,
        RequestKind::LeaseKeepAlive,
        RequestKind::Watch,
    ];

    /// The kind's name, as etcd's metrics call the method.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestKind::Range => "range",
            RequestKind::Put => "put",
            RequestKind::Delete => "delete",
            RequestKind::Txn => "txn",
            RequestKind::LeaseGrant => "lease-grant",
            RequestKind::LeaseRevoke => "lease-revoke",
            RequestKind::LeaseKeepAlive => "lease-keepalive",
            RequestKind::Watch => "watch",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for RequestKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The live counters, one atomic per kind.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    counts: [AtomicU64; RequestKind::ALL.len()],
}

impl Counters {
    /// Counts one request of `kind`.
    pub(crate) fn count(&self, kind: RequestKind) {
        self.counts[kind.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// The counts now.
    pub(crate) fn snapshot(&self) -> RequestCounts {
        RequestCounts(
            RequestKind::ALL
                .iter()
                .map(|&kind| (kind, self.counts[kind.index()].load(Ordering::Relaxed)))
                .collect(),
        )
    }
}

/// The requests sent so far, by kind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestCounts(BTreeMap<RequestKind, u64>);

impl RequestCounts {
    /// The requests of `kind`.
    pub fn get(&self, kind: RequestKind) -> u64 {
        self.0.get(&kind).copied().unwrap_or(0)
    }

    /// All requests.
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// The requests sent since `earlier` (a snapshot taken before this one).
    pub fn since(&self, earlier: &RequestCounts) -> RequestCounts {
        RequestCounts(
            self.0
                .iter()
                .map(|(&kind, &n)| (kind, n.saturating_sub(earlier.get(kind))))
                .collect(),
        )
    }
}

impl fmt::Display for RequestCounts {
    /// `range=3 txn=1 …`, kinds with no request left out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (kind, n) in self.0.iter().filter(|(_, &n)| n > 0) {
            if !first {
                f.write_str(" ")?;
            }
            write!(f, "{kind}={n}")?;
            first = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_kind_and_differences() {
        let counters = Counters::default();
        counters.count(RequestKind::Txn);
        let before = counters.snapshot();
        counters.count(RequestKind::Txn);
        counters.count(RequestKind::Range);
        let after = counters.snapshot();
        assert_eq!(after.get(RequestKind::Txn), 2);
        assert_eq!(after.total(), 3);
        let delta = after.since(&before);
        assert_eq!(delta.total(), 2);
        assert_eq!(delta.to_string(), "range=1 txn=1");
    }

    #[test]
    fn every_kind_has_its_own_counter() {
        for (position, kind) in RequestKind::ALL.iter().enumerate() {
            assert_eq!(kind.index(), position);
        }
    }
}
