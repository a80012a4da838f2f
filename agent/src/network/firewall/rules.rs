//! The rules of flotilla's table, rendered from a description: pure, no I/O.
//!
//! Every rule belongs to an [`Owner`] (the table's own plumbing, a network or a container) and
//! carries a comment naming it and a fingerprint of its owner's rules (`network bridge
//! #89ab…`). The comment is how rules are found again to be removed, and the fingerprint how a
//! rebuild tells rules that still match their description from stale ones, without parsing
//! nftables' rendering of them back.
//!
//! The chains (docker's rules, in nftables terms):
//! - `prerouting`, `output` (nat): packets to a local address go through `publish`, where each
//!   published port is a DNAT to its container, also for 127.0.0.1 (the output hook).
//! - `postrouting` (nat), per network: masquerade of the subnet's traffic leaving by another
//!   interface; masquerade of 127.0.0.0/8 sources going into the bridge (a published port
//!   reached through localhost); masquerade of DNATed traffic from the subnet back into its own
//!   bridge (a container reaching a published port of its network through the host: hairpin).
//! - `forward` (filter): established traffic passes; then `forward-in`, per network: into a
//!   bridge goes traffic from the same bridge and DNATed traffic (published ports), nothing else
//!   (so networks are isolated from each other and the outside reaches containers only through
//!   published ports); then `forward-out`, per network: traffic from a bridge goes out.
//! - `input` (filter), per network: new connections from a bridge to 127.0.0.0/8 are dropped;
//!   `route_localnet`, which publishing on 127.0.0.1 needs, would let containers reach the
//!   host's loopback services otherwise (CVE-2020-8558).
//!
//! Rules of different owners never depend on their order within a chain, and the base rules
//! have chains of their own, so an owner's rules can be replaced alone.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::net::Ipv4Addr;

use nftables::expr::{
    Expression, Fib, FibFlag, FibResult, Meta, MetaKey, NamedExpression, Payload, PayloadField,
    Prefix, CT,
};
use nftables::stmt::{JumpTarget, Match, Operator, Statement, NAT};
use nftables::types::{NfChainType, NfHook};

use super::{Network, Publication};

/// nft refuses longer rule comments.
const COMMENT_MAX: usize = 128;

/// Why a description cannot be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    /// A name too long to fit in a rule comment.
    #[error("{owner} is too long to tag firewall rules with ({len} bytes, at most {max})")]
    NameTooLong {
        /// The owner, e.g. `network NAME`.
        owner: String,
        /// Its length.
        len: usize,
        /// The longest that fits.
        max: usize,
    },
    /// A prefix length above 32.
    #[error("network {network}: invalid prefix length {prefix} (at most 32)")]
    Prefix {
        /// The network.
        network: String,
        /// The prefix length.
        prefix: u8,
    },
}

/// One chain of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainSpec {
    /// Its name.
    pub name: &'static str,
    /// Type, hook and priority, for a base chain (always with policy accept).
    pub hook: Option<(NfChainType, NfHook, i32)>,
}

const PREROUTING: &str = "prerouting";
const OUTPUT: &str = "output";
const POSTROUTING: &str = "postrouting";
const FORWARD: &str = "forward";
const INPUT: &str = "input";
const PUBLISH: &str = "publish";
const FORWARD_IN: &str = "forward-in";
const FORWARD_OUT: &str = "forward-out";

/// Priority of the nat hooks that rewrite destinations (`dstnat`).
const DSTNAT: i32 = -100;
/// Priority of the nat hook that rewrites sources (`srcnat`).
const SRCNAT: i32 = 100;
/// Priority of filtering (`filter`).
const FILTER: i32 = 0;

/// Every chain of the table, regular chains first (base rules jump to them).
pub const CHAINS: [ChainSpec; 8] = [
    regular(PUBLISH),
    regular(FORWARD_IN),
    regular(FORWARD_OUT),
    base(PREROUTING, NfChainType::NAT, NfHook::Prerouting, DSTNAT),
    base(OUTPUT, NfChainType::NAT, NfHook::Output, DSTNAT),
    base(POSTROUTING, NfChainType::NAT, NfHook::Postrouting, SRCNAT),
    base(FORWARD, NfChainType::Filter, NfHook::Forward, FILTER),
    base(INPUT, NfChainType::Filter, NfHook::Input, FILTER),
];

const fn regular(name: &'static str) -> ChainSpec {
    ChainSpec { name, hook: None }
}

const fn base(name: &'static str, kind: NfChainType, hook: NfHook, priority: i32) -> ChainSpec {
    ChainSpec {
        name,
        hook: Some((kind, hook, priority)),
    }
}

/// Whose a rule is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Owner {
    /// The table's plumbing: the jumps into `publish`, `forward-in` and `forward-out`.
    Base,
    /// A network, by name.
    Network(String),
    /// A container's published ports, by container ID.
    Container(String),
}

impl Owner {
    /// Reads an owner back from its display form.
    pub fn parse(text: &str) -> Option<Self> {
        match text.split_once(' ') {
            None if text == "base" => Some(Self::Base),
            Some(("network", name)) => Some(Self::Network(name.to_owned())),
            Some(("container", id)) => Some(Self::Container(id.to_owned())),
            _ => None,
        }
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Base => f.write_str("base"),
            Self::Network(name) => write!(f, "network {name}"),
            Self::Container(id) => write!(f, "container {id}"),
        }
    }
}

/// One rule, without its comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSpec {
    /// Its chain.
    pub chain: &'static str,
    /// Its statements.
    pub expr: Vec<Statement<'static>>,
}

/// An owner's rules, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// Whose they are.
    pub owner: Owner,
    /// The rules.
    pub rules: Vec<RuleSpec>,
    /// What each of them carries as comment: the owner and a fingerprint of the rules.
    pub comment: String,
}

impl Group {
    fn new(owner: Owner, rules: Vec<RuleSpec>) -> Result<Self, RuleError> {
        let comment = format!("{owner} #{:016x}", fingerprint(&rules));
        if comment.len() > COMMENT_MAX {
            return Err(RuleError::NameTooLong {
                max: COMMENT_MAX - (comment.len() - owner.to_string().len()),
                len: owner.to_string().len(),
                owner: owner.to_string(),
            });
        }
        Ok(Self {
            owner,
            rules,
            comment,
        })
    }
}

/// Splits a rule comment into its owner; `None` for a comment flotilla did not write.
pub fn comment_owner(comment: &str) -> Option<Owner> {
    let (owner, fingerprint) = comment.rsplit_once(" #")?;
    let well_formed = fingerprint.len() == 16 && fingerprint.bytes().all(|b| b.is_ascii_hexdigit());
    well_formed.then(|| Owner::parse(owner)).flatten()
}

/// The table's plumbing.
pub fn base_group() -> Group {
    let local = is(
        Expression::Named(NamedExpression::Fib(Fib {
            result: FibResult::Type,
            flags: HashSet::from([FibFlag::Daddr]),
        })),
        text("local"),
    );
    let rules = vec![
        rule(PREROUTING, vec![local.clone(), jump(PUBLISH)]),
        rule(OUTPUT, vec![local, jump(PUBLISH)]),
        rule(
            FORWARD,
            vec![
                has(
                    ct("state"),
                    Expression::List(vec![text("established"), text("related")]),
                ),
                Statement::Accept(None),
            ],
        ),
        rule(FORWARD, vec![jump(FORWARD_IN)]),
        rule(FORWARD, vec![jump(FORWARD_OUT)]),
    ];
    Group::new(Owner::Base, rules).expect("the base comment is short")
}

/// A network's rules: masquerading, forwarding and isolation, the loopback guard.
pub fn network_group(network: &Network) -> Result<Group, RuleError> {
    if network.prefix > 32 {
        return Err(RuleError::Prefix {
            network: network.name.clone(),
            prefix: network.prefix,
        });
    }
    let subnet = || {
        is(
            field("ip", "saddr"),
            prefix(
                network_address(network.subnet, network.prefix),
                network.prefix,
            ),
        )
    };
    let loopback = || prefix(Ipv4Addr::new(127, 0, 0, 0), 8);
    let into_bridge = || is(meta(MetaKey::Oifname), text(&network.bridge));
    let from_bridge = || is(meta(MetaKey::Iifname), text(&network.bridge));
    let dnat = || has(ct("status"), text("dnat"));
    let masquerade = || Statement::Masquerade(None);
    let rules = vec![
        rule(
            POSTROUTING,
            vec![
                subnet(),
                is_not(meta(MetaKey::Oifname), text(&network.bridge)),
                masquerade(),
            ],
        ),
        rule(
            POSTROUTING,
            vec![
                into_bridge(),
                is(field("ip", "saddr"), loopback()),
                masquerade(),
            ],
        ),
        rule(
            POSTROUTING,
            vec![into_bridge(), subnet(), dnat(), masquerade()],
        ),
        rule(
            FORWARD_IN,
            vec![into_bridge(), from_bridge(), Statement::Accept(None)],
        ),
        rule(
            FORWARD_IN,
            vec![into_bridge(), dnat(), Statement::Accept(None)],
        ),
        rule(FORWARD_IN, vec![into_bridge(), Statement::Drop(None)]),
        rule(FORWARD_OUT, vec![from_bridge(), Statement::Accept(None)]),
        rule(
            INPUT,
            vec![
                from_bridge(),
                is(field("ip", "daddr"), loopback()),
                has(ct("state"), text("new")),
                Statement::Drop(None),
            ],
        ),
    ];
    Group::new(Owner::Network(network.name.clone()), rules)
}

/// A container's published ports: one DNAT each, restricted to its host address unless that is
/// 0.0.0.0.
pub fn container_group(publication: &Publication) -> Result<Group, RuleError> {
    let rules = publication
        .ports
        .iter()
        .map(|port| {
            let mut expr = Vec::with_capacity(3);
            if !port.host_ip.is_unspecified() {
                expr.push(is(field("ip", "daddr"), text(&port.host_ip.to_string())));
            }
            expr.push(is(
                field(port.protocol.as_str(), "dport"),
                Expression::Number(port.host_port.into()),
            ));
            expr.push(Statement::DNAT(Some(NAT {
                addr: Some(text(&publication.address.to_string())),
                family: None,
                port: Some(Expression::Number(port.container_port.into())),
                flags: None,
            })));
            rule(PUBLISH, expr)
        })
        .collect();
    Group::new(Owner::Container(publication.container.clone()), rules)
}

/// `address` with its host bits cleared.
fn network_address(address: Ipv4Addr, prefix: u8) -> Ipv4Addr {
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    Ipv4Addr::from(u32::from(address) & mask)
}

/// FNV-1a over the rules' JSON: stable across builds and releases, unlike std's hasher.
fn fingerprint(rules: &[RuleSpec]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for rule in rules {
        let json = serde_json::to_string(&rule.expr).expect("statements serialize");
        for byte in rule.chain.bytes().chain([0]).chain(json.bytes()).chain([0]) {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

fn rule(chain: &'static str, expr: Vec<Statement<'static>>) -> RuleSpec {
    RuleSpec { chain, expr }
}

fn compare(
    left: Expression<'static>,
    op: Operator,
    right: Expression<'static>,
) -> Statement<'static> {
    Statement::Match(Match { left, right, op })
}

fn is(left: Expression<'static>, right: Expression<'static>) -> Statement<'static> {
    compare(left, Operator::EQ, right)
}

fn is_not(left: Expression<'static>, right: Expression<'static>) -> Statement<'static> {
    compare(left, Operator::NEQ, right)
}

/// A flag test (`ct state new`), which nft writes with the `in` operator.
fn has(left: Expression<'static>, right: Expression<'static>) -> Statement<'static> {
    compare(left, Operator::IN, right)
}

fn jump(chain: &'static str) -> Statement<'static> {
    Statement::Jump(JumpTarget {
        target: Cow::Borrowed(chain),
    })
}

fn text(value: &str) -> Expression<'static> {
    Expression::String(Cow::Owned(value.to_owned()))
}

fn meta(key: MetaKey) -> Expression<'static> {
    Expression::Named(NamedExpression::Meta(Meta { key }))
}

fn ct(key: &'static str) -> Expression<'static> {
    Expression::Named(NamedExpression::CT(CT {
        key: Cow::Borrowed(key),
        family: None,
        dir: None,
    }))
}

fn field(protocol: &'static str, name: &'static str) -> Expression<'static> {
    Expression::Named(NamedExpression::Payload(Payload::PayloadField(
        PayloadField {
            protocol: Cow::Borrowed(protocol),
            field: Cow::Borrowed(name),
        },
    )))
}

fn prefix(address: Ipv4Addr, len: u8) -> Expression<'static> {
    Expression::Named(NamedExpression::Prefix(Prefix {
        addr: Box::new(text(&address.to_string())),
        len: len.into(),
    }))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::network::firewall::{Protocol, PublishedPort};

    fn network() -> Network {
        Network {
            name: "bridge".to_owned(),
            bridge: "flotilla0".to_owned(),
            subnet: "10.222.3.4".parse().unwrap(),
            prefix: 16,
        }
    }

    fn json_of(rule: &RuleSpec) -> serde_json::Value {
        serde_json::to_value(&rule.expr).unwrap()
    }

    #[test]
    fn a_published_port_is_a_dnat_to_the_container_on_its_host_address_only() {
        let publication = Publication {
            container: "c0ffee".to_owned(),
            address: "10.222.0.2".parse().unwrap(),
            ports: vec![
                PublishedPort {
                    host_ip: Ipv4Addr::UNSPECIFIED,
                    host_port: 8080,
                    container_port: 80,
                    protocol: Protocol::Tcp,
                },
                PublishedPort {
                    host_ip: "127.0.0.1".parse().unwrap(),
                    host_port: 5353,
                    container_port: 53,
                    protocol: Protocol::Udp,
                },
            ],
        };
        let group = container_group(&publication).unwrap();
        assert!(group.rules.iter().all(|rule| rule.chain == PUBLISH));
        assert_eq!(
            json_of(&group.rules[0]),
            json!([
                {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 8080}},
                {"dnat": {"addr": "10.222.0.2", "port": 80}},
            ])
        );
        assert_eq!(
            json_of(&group.rules[1]),
            json!([
                {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "127.0.0.1"}},
                {"match": {"op": "==", "left": {"payload": {"protocol": "udp", "field": "dport"}}, "right": 5353}},
                {"dnat": {"addr": "10.222.0.2", "port": 53}},
            ])
        );
        assert!(group.comment.starts_with("container c0ffee #"));
    }

    #[test]
    fn the_subnet_is_masqueraded_when_it_leaves_by_another_interface() {
        let group = network_group(&network()).unwrap();
        let first = &group.rules[0];
        assert_eq!(first.chain, POSTROUTING);
        assert_eq!(
            json_of(first),
            json!([
                {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": {"prefix": {"addr": "10.222.0.0", "len": 16}}}},
                {"match": {"op": "!=", "left": {"meta": {"key": "oifname"}}, "right": "flotilla0"}},
                {"masquerade": null},
            ])
        );
    }

    #[test]
    fn only_same_bridge_and_dnat_traffic_enters_a_bridge() {
        let group = network_group(&network()).unwrap();
        let into: Vec<serde_json::Value> = group
            .rules
            .iter()
            .filter(|rule| rule.chain == FORWARD_IN)
            .map(|rule| json_of(rule)[rule.expr.len() - 1].clone())
            .collect();
        assert_eq!(
            into,
            [
                json!({"accept": null}),
                json!({"accept": null}),
                json!({"drop": null})
            ]
        );
    }

    #[test]
    fn comments_name_the_owner_and_change_with_the_rules() {
        let one = network_group(&network()).unwrap();
        let mut moved = network();
        moved.subnet = "10.223.0.0".parse().unwrap();
        let other = network_group(&moved).unwrap();
        assert_eq!(
            comment_owner(&one.comment),
            Some(Owner::Network("bridge".to_owned()))
        );
        assert_ne!(one.comment, other.comment);
        assert_eq!(one.comment, network_group(&network()).unwrap().comment);
        assert_eq!(comment_owner(&base_group().comment), Some(Owner::Base));
        assert_eq!(comment_owner("network x"), None);
        assert_eq!(comment_owner("someone else's #0123456789abcdef"), None);
    }

    #[test]
    fn names_too_long_for_a_comment_and_bad_prefixes_are_refused() {
        let mut long = network();
        long.name = "n".repeat(120);
        let error = network_group(&long).unwrap_err().to_string();
        assert!(
            error.starts_with(&format!("network {} is too long", long.name)),
            "{error}"
        );
        assert!(error.ends_with("(128 bytes, at most 110)"), "{error}");
        let mut wide = network();
        wide.prefix = 33;
        assert_eq!(
            network_group(&wide).unwrap_err().to_string(),
            "network bridge: invalid prefix length 33 (at most 32)"
        );
    }

    #[test]
    fn network_addresses_drop_the_host_bits() {
        let address: Ipv4Addr = "10.1.2.3".parse().unwrap();
        assert_eq!(network_address(address, 0), Ipv4Addr::UNSPECIFIED);
        assert_eq!(network_address(address, 24), Ipv4Addr::new(10, 1, 2, 0));
        assert_eq!(network_address(address, 32), address);
    }
}
