//! What to change in the kernel: the difference between flotilla's table as installed and the
//! rules wanted, as one nft batch (applied atomically). Pure, no I/O.
//!
//! An owner's installed rules are kept when their comment (owner and fingerprint) and their
//! number match what is wanted, and are otherwise deleted by handle and added anew; rules
//! without a comment flotilla wrote and chains flotilla does not use are deleted. Owners out
//! of the [`Scope`] are left alone. When no network and no container is left, the whole table
//! goes. A table that already matches gives an empty batch, so nothing touches the kernel and
//! a rebuild is idempotent down to the rule handles.

use std::borrow::Cow;
use std::collections::BTreeMap;

use nftables::schema::{Chain, FlushObject, NfCmd, NfListObject, Rule, Table};
use nftables::types::{NfChainPolicy, NfFamily};

use super::rules::{comment_owner, ChainSpec, Group, Owner, CHAINS};

/// flotilla's table: `table ip flotilla`.
pub const FAMILY: NfFamily = NfFamily::IP;
/// Its name.
pub const TABLE: &str = "flotilla";

/// flotilla's table as the kernel has it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Installed {
    /// Whether the table exists.
    pub table: bool,
    /// Its chains.
    pub chains: Vec<String>,
    /// Its rules.
    pub rules: Vec<InstalledRule>,
}

/// A rule as the kernel has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledRule {
    /// Its chain.
    pub chain: String,
    /// Its handle.
    pub handle: u32,
    /// Its comment.
    pub comment: Option<String>,
}

/// Whose installed rules a change may touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    /// Every owner's: the wanted groups are all there should be.
    Everything,
    /// This owner's and the base rules'.
    Only(&'a Owner),
}

impl Scope<'_> {
    fn covers(self, owner: &Owner) -> bool {
        match self {
            Self::Everything => true,
            Self::Only(only) => owner == &Owner::Base || owner == only,
        }
    }
}

/// The batch that turns `installed` into `wanted` within `scope`; empty when nothing changes.
pub fn plan(installed: &Installed, wanted: &[Group], scope: Scope) -> Vec<NfCmd<'static>> {
    let mut groups: BTreeMap<Option<&str>, Vec<&InstalledRule>> = BTreeMap::new();
    for rule in &installed.rules {
        groups
            .entry(rule.comment.as_deref())
            .or_default()
            .push(rule);
    }
    let owner_of = |comment: Option<&str>| comment.and_then(comment_owner);
    let kept_users = groups.keys().any(|comment| {
        owner_of(*comment).is_some_and(|owner| owner != Owner::Base && !scope.covers(&owner))
    });
    let wanted_users = wanted
        .iter()
        .any(|group| group.owner != Owner::Base && !group.rules.is_empty());
    if !kept_users && !wanted_users {
        return if installed.table {
            vec![NfCmd::Delete(NfListObject::Table(table()))]
        } else {
            Vec::new()
        };
    }

    let mut batch = Vec::new();
    if !installed.table {
        batch.push(NfCmd::Add(NfListObject::Table(table())));
    }
    let ours = |name: &str| CHAINS.iter().any(|chain| chain.name == name);
    for chain in CHAINS
        .iter()
        .filter(|chain| !installed.chains.iter().any(|name| name == chain.name))
    {
        batch.push(NfCmd::Add(NfListObject::Chain(chain_object(chain))));
    }
    let mut satisfied = vec![false; wanted.len()];
    for (comment, rules) in &groups {
        if owner_of(*comment).is_some_and(|owner| !scope.covers(&owner)) {
            continue;
        }
        let matching = wanted.iter().position(|group| {
            Some(group.comment.as_str()) == *comment && group.rules.len() == rules.len()
        });
        match matching {
            Some(index) => satisfied[index] = true,
            None => batch.extend(
                rules
                    .iter()
                    .filter(|rule| ours(&rule.chain))
                    .map(|rule| NfCmd::Delete(NfListObject::Rule(rule_handle(rule)))),
            ),
        }
    }
    for name in installed.chains.iter().filter(|name| !ours(name)) {
        let chain = Chain {
            family: FAMILY,
            table: TABLE.into(),
            name: Cow::Owned(name.clone()),
            ..Chain::default()
        };
        batch.push(NfCmd::Flush(FlushObject::Chain(chain.clone())));
        batch.push(NfCmd::Delete(NfListObject::Chain(chain)));
    }
    for (group, _) in wanted.iter().zip(&satisfied).filter(|(_, done)| !**done) {
        batch.extend(group.rules.iter().map(|rule| {
            NfCmd::Add(NfListObject::Rule(Rule {
                family: FAMILY,
                table: TABLE.into(),
                chain: rule.chain.into(),
                expr: rule.expr.clone().into(),
                comment: Some(group.comment.clone().into()),
                ..Rule::default()
            }))
        }));
    }
    batch
}

fn table() -> Table<'static> {
    Table {
        family: FAMILY,
        name: TABLE.into(),
        handle: None,
    }
}

fn chain_object(spec: &ChainSpec) -> Chain<'static> {
    let mut chain = Chain {
        family: FAMILY,
        table: TABLE.into(),
        name: spec.name.into(),
        ..Chain::default()
    };
    if let Some((kind, hook, priority)) = spec.hook {
        chain._type = Some(kind);
        chain.hook = Some(hook);
        chain.prio = Some(priority);
        chain.policy = Some(NfChainPolicy::Accept);
    }
    chain
}

fn rule_handle(rule: &InstalledRule) -> Rule<'static> {
    Rule {
        family: FAMILY,
        table: TABLE.into(),
        chain: Cow::Owned(rule.chain.clone()),
        handle: Some(rule.handle),
        ..Rule::default()
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::super::rules::{base_group, container_group, network_group};
    use super::super::{Network, Protocol, Publication, PublishedPort};
    use super::*;

    fn network(name: &str, subnet: [u8; 4]) -> Group {
        network_group(&Network {
            name: name.to_owned(),
            bridge: format!("br-{name}"),
            subnet: Ipv4Addr::from(subnet),
            prefix: 24,
        })
        .unwrap()
    }

    fn container(id: &str, port: u16) -> Group {
        container_group(&Publication {
            container: id.to_owned(),
            address: Ipv4Addr::new(10, 0, 0, 2),
            ports: vec![PublishedPort {
                host_ip: Ipv4Addr::UNSPECIFIED,
                host_port: port,
                container_port: 80,
                protocol: Protocol::Tcp,
            }],
        })
        .unwrap()
    }

    /// The table as the kernel would have it after adding `groups` to an empty one.
    fn installed(groups: &[&Group]) -> Installed {
        let rules = groups
            .iter()
            .flat_map(|group| {
                group
                    .rules
                    .iter()
                    .map(|rule| (rule.chain, group.comment.clone()))
            })
            .zip(1..)
            .map(|((chain, comment), handle)| InstalledRule {
                chain: chain.to_owned(),
                handle,
                comment: Some(comment),
            })
            .collect();
        Installed {
            table: true,
            chains: CHAINS.iter().map(|chain| chain.name.to_owned()).collect(),
            rules,
        }
    }

    /// A batch in short: `add table`, `add chain publish`, `add rule publish <comment>`,
    /// `delete rule publish 7`…
    fn summary(batch: &[NfCmd]) -> Vec<String> {
        batch
            .iter()
            .map(|command| match command {
                NfCmd::Add(NfListObject::Table(_)) => "add table".to_owned(),
                NfCmd::Delete(NfListObject::Table(_)) => "delete table".to_owned(),
                NfCmd::Add(NfListObject::Chain(chain)) => format!("add chain {}", chain.name),
                NfCmd::Flush(FlushObject::Chain(chain)) => format!("flush chain {}", chain.name),
                NfCmd::Delete(NfListObject::Chain(chain)) => format!("delete chain {}", chain.name),
                NfCmd::Add(NfListObject::Rule(rule)) => format!(
                    "add rule {} {}",
                    rule.chain,
                    rule.comment
                        .as_deref()
                        .unwrap_or_default()
                        .split(" #")
                        .next()
                        .unwrap()
                ),
                NfCmd::Delete(NfListObject::Rule(rule)) => {
                    format!("delete rule {} {}", rule.chain, rule.handle.unwrap())
                }
                other => panic!("unexpected command {other:?}"),
            })
            .collect()
    }

    /// The deletions of the rules of `kernel` with these handles, as [`summary`] shows them.
    fn deletes(kernel: &Installed, handles: std::ops::RangeInclusive<u32>) -> Vec<String> {
        handles
            .map(|handle| {
                let rule = kernel
                    .rules
                    .iter()
                    .find(|rule| rule.handle == handle)
                    .unwrap();
                format!("delete rule {} {handle}", rule.chain)
            })
            .collect()
    }

    fn adds(group: &Group) -> Vec<String> {
        group
            .rules
            .iter()
            .map(|rule| format!("add rule {} {}", rule.chain, group.owner))
            .collect()
    }

    #[test]
    fn a_first_network_creates_the_table_its_chains_and_the_base_rules() {
        let net = network("one", [10, 0, 0, 0]);
        let batch = plan(
            &Installed::default(),
            &[base_group(), net.clone()],
            Scope::Only(&net.owner),
        );
        let mut expected = vec!["add table".to_owned()];
        expected.extend(
            CHAINS
                .iter()
                .map(|chain| format!("add chain {}", chain.name)),
        );
        expected.extend(adds(&base_group()));
        expected.extend(adds(&net));
        assert_eq!(summary(&batch), expected);
    }

    #[test]
    fn a_table_that_matches_needs_no_change() {
        let groups = [
            base_group(),
            network("one", [10, 0, 0, 0]),
            container("c1", 8080),
        ];
        let kernel = installed(&groups.iter().collect::<Vec<_>>());
        assert!(plan(&kernel, &groups, Scope::Everything).is_empty());
        assert!(plan(&kernel, &groups[..2], Scope::Only(&groups[1].owner)).is_empty());
    }

    #[test]
    fn a_changed_owner_is_replaced_and_the_others_are_left_alone() {
        let base = base_group();
        let net = network("one", [10, 0, 0, 0]);
        let old = container("c1", 8080);
        let kernel = installed(&[&base, &net, &old]);
        let new = container("c1", 9090);
        let batch = plan(&kernel, &[base, new.clone()], Scope::Only(&new.owner));
        let mut expected = deletes(&kernel, 14..=14);
        expected.extend(adds(&new));
        assert_eq!(summary(&batch), expected);
    }

    #[test]
    fn a_rebuild_removes_owners_no_longer_wanted_and_strangers() {
        let base = base_group();
        let one = network("one", [10, 0, 0, 0]);
        let two = network("two", [10, 0, 1, 0]);
        let mut kernel = installed(&[&base, &one, &two]);
        kernel.rules.push(InstalledRule {
            chain: "publish".to_owned(),
            handle: 99,
            comment: None,
        });
        kernel.chains.push("leftover".to_owned());
        let batch = plan(&kernel, &[base, one], Scope::Everything);
        let mut expected = deletes(&kernel, 99..=99);
        expected.extend(deletes(&kernel, 14..=21));
        expected.extend([
            "flush chain leftover".to_owned(),
            "delete chain leftover".to_owned(),
        ]);
        assert_eq!(summary(&batch), expected);
    }

    #[test]
    fn duplicated_rules_are_replaced_by_one_set() {
        let base = base_group();
        let net = network("one", [10, 0, 0, 0]);
        let kernel = installed(&[&base, &base, &net]);
        let batch = plan(&kernel, &[base.clone(), net], Scope::Everything);
        let mut expected = deletes(&kernel, 1..=10);
        expected.extend(adds(&base));
        assert_eq!(summary(&batch), expected);
    }

    #[test]
    fn the_table_goes_with_its_last_user() {
        let base = base_group();
        let net = network("one", [10, 0, 0, 0]);
        let ctr = container("c1", 8080);
        let kernel = installed(&[&base, &net, &ctr]);
        // The container still uses it after the network goes (out of order, but kept).
        let batch = plan(
            &kernel,
            std::slice::from_ref(&base),
            Scope::Only(&net.owner),
        );
        assert_eq!(summary(&batch), deletes(&kernel, 6..=13));
        let last = installed(&[&base, &ctr]);
        assert_eq!(
            summary(&plan(
                &last,
                std::slice::from_ref(&base),
                Scope::Only(&ctr.owner)
            )),
            ["delete table"]
        );
        assert!(plan(&Installed::default(), &[base], Scope::Only(&ctr.owner)).is_empty());
    }

    #[test]
    fn a_container_without_ports_is_no_user() {
        let base = base_group();
        let bare = container_group(&Publication {
            container: "c2".to_owned(),
            address: Ipv4Addr::new(10, 0, 0, 3),
            ports: Vec::new(),
        })
        .unwrap();
        assert!(plan(
            &Installed::default(),
            &[base, bare.clone()],
            Scope::Only(&bare.owner)
        )
        .is_empty());
    }
}
