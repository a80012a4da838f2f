//! The I/O edge of the firewall: `nft -j` lists flotilla's table and applies batches (`nft -j -f
//! -`, through the `nftables` crate's helpers), in the network namespace of the calling thread
//! (a child process inherits its creator thread's namespaces).
//!
//! Only flotilla's table is ever listed or written: its existence is checked with `list tables
//! ip` rather than by listing the ruleset, and a listing is read only for what the plan needs
//! (chains, rule handles and comments), so rules of any shape someone adds to it cannot make it
//! unreadable.

use nftables::helper::{self, NftablesError, DEFAULT_ARGS, DEFAULT_NFT};
use nftables::schema::{NfCmd, NfObject, Nftables};
use serde_json::Value;

use super::plan::{Installed, InstalledRule, TABLE};

/// Why nft could not be run or refused.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    /// The `nft` program is not installed.
    #[error("nft not found: install nftables (flotilla's firewall rules are applied with nft)")]
    Missing,
    /// nft refused a command.
    #[error("nft cannot {action}: {stderr}")]
    Refused {
        /// What was being done.
        action: &'static str,
        /// What nft said.
        stderr: String,
    },
    /// nft could not be run, or printed something unreadable.
    #[error("nft cannot {action}: {source}")]
    Run {
        /// What was being done.
        action: &'static str,
        /// Why.
        source: NftablesError,
    },
    /// A listing is not the JSON nft prints.
    #[error("cannot read nft's listing of table ip flotilla: {0}")]
    Listing(serde_json::Error),
}

const LIST_RULESET: &str = "list the ruleset of family ip";
const APPLY: &str = "change table ip flotilla";

/// flotilla's table as the kernel has it now: one listing of the family's ruleset, which
/// also says whether the table exists (listing a missing table is an error).
pub fn installed() -> Result<Installed, NftError> {
    parse_listing(&run_list(LIST_RULESET, &["list", "ruleset", "ip"])?)
}

/// Applies `batch` in one transaction: all of it or nothing.
pub fn apply(batch: Vec<NfCmd<'static>>) -> Result<(), NftError> {
    let document = Nftables {
        objects: batch.into_iter().map(NfObject::CmdObject).collect(),
    };
    helper::apply_ruleset_with_args(&document, DEFAULT_NFT, DEFAULT_ARGS)
        .map_err(|error| nft_error(APPLY, error))
}

/// Reads flotilla's table, its chains and rules, out of `nft -j list ruleset` output (objects
/// of other tables are skipped).
pub fn parse_listing(json: &str) -> Result<Installed, NftError> {
    let mut installed = Installed::default();
    for object in objects(json)? {
        let ours = |kind: &str| object.get(kind).filter(|o| o["table"] == TABLE);
        if object.get("table").is_some_and(|t| t["name"] == TABLE) {
            installed.table = true;
        }
        if let Some(name) = ours("chain").and_then(|chain| chain["name"].as_str()) {
            installed.chains.push(name.to_owned());
        }
        if let Some(rule) = ours("rule") {
            let (Some(chain), Some(handle)) = (rule["chain"].as_str(), rule["handle"].as_u64())
            else {
                continue;
            };
            installed.rules.push(InstalledRule {
                chain: chain.to_owned(),
                handle: u32::try_from(handle).unwrap_or(u32::MAX),
                comment: rule["comment"].as_str().map(str::to_owned),
            });
        }
    }
    Ok(installed)
}

/// The objects of an nft JSON document.
fn objects(json: &str) -> Result<Vec<Value>, NftError> {
    #[derive(serde::Deserialize)]
    struct Document {
        nftables: Vec<Value>,
    }
    serde_json::from_str::<Document>(json)
        .map(|document| document.nftables)
        .map_err(NftError::Listing)
}

fn run_list(action: &'static str, args: &[&str]) -> Result<String, NftError> {
    helper::get_current_ruleset_raw(DEFAULT_NFT, args).map_err(|error| nft_error(action, error))
}

fn nft_error(action: &'static str, error: NftablesError) -> NftError {
    match error {
        NftablesError::NftExecution { inner, .. }
            if inner.kind() == std::io::ErrorKind::NotFound =>
        {
            NftError::Missing
        }
        NftablesError::NftFailed { stderr, .. } => NftError::Refused {
            action,
            stderr: stderr.trim().to_owned(),
        },
        source => NftError::Run { action, source },
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;

    #[test]
    fn a_listing_gives_the_chains_and_the_rules_handles_and_comments() {
        let listing = r#"{"nftables": [
            {"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}},
            {"table": {"family": "ip", "name": "flotilla", "handle": 1}},
            {"chain": {"family": "ip", "table": "flotilla", "name": "prerouting", "handle": 1, "type": "nat", "hook": "prerouting", "prio": -100, "policy": "accept"}},
            {"chain": {"family": "ip", "table": "flotilla", "name": "publish", "handle": 3}},
            {"rule": {"family": "ip", "table": "flotilla", "chain": "prerouting", "handle": 9, "comment": "base #0123456789abcdef", "expr": [{"jump": {"target": "publish"}}]}},
            {"rule": {"family": "ip", "table": "flotilla", "chain": "publish", "handle": 11, "expr": [{"xt": null}]}},
            {"table": {"family": "ip", "name": "nat", "handle": 2}},
            {"chain": {"family": "ip", "table": "nat", "name": "DOCKER", "handle": 1}},
            {"rule": {"family": "ip", "table": "nat", "chain": "DOCKER", "handle": 4, "comment": "base #0123456789abcdef", "expr": []}}
        ]}"#;
        let installed = parse_listing(listing).unwrap();
        assert!(installed.table);
        assert_eq!(installed.chains, ["prerouting", "publish"]);
        assert_eq!(
            installed.rules,
            [
                InstalledRule {
                    chain: "prerouting".to_owned(),
                    handle: 9,
                    comment: Some("base #0123456789abcdef".to_owned()),
                },
                InstalledRule {
                    chain: "publish".to_owned(),
                    handle: 11,
                    comment: None,
                },
            ]
        );
        let others_only = r#"{"nftables": [
            {"table": {"family": "ip", "name": "nat", "handle": 2}},
            {"chain": {"family": "ip", "table": "nat", "name": "publish", "handle": 1}}
        ]}"#;
        assert_eq!(parse_listing(others_only).unwrap(), Installed::default());
        assert!(matches!(
            parse_listing("Error: no such table"),
            Err(NftError::Listing(_))
        ));
    }

    #[test]
    fn a_missing_nft_is_named() {
        let missing = NftablesError::NftExecution {
            program: "nft".into(),
            inner: io::Error::from(io::ErrorKind::NotFound),
        };
        assert_eq!(
            nft_error(APPLY, missing).to_string(),
            "nft not found: install nftables (flotilla's firewall rules are applied with nft)"
        );
        let refused = NftablesError::NftFailed {
            program: "nft".into(),
            hint: "applying ruleset".to_owned(),
            stdout: String::new(),
            stderr: "Error: Could not process rule: No such file or directory\n".to_owned(),
        };
        assert_eq!(
            nft_error(APPLY, refused).to_string(),
            "nft cannot change table ip flotilla: Error: Could not process rule: No such file or directory"
        );
    }
}
