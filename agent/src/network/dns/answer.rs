//! How the resolver answers one query that arrived on one network, pure: from the table and
//! the query's bytes to the reply's bytes, or the decision to forward it upstream.
//!
//! A name of the network's containers (any of an entry's names, in any case, with or without
//! the trailing dot or a `.NETWORK` suffix) gets its addresses for A (and ANY), and an empty
//! NOERROR for the other types (containers have no IPv6: an AAAA query must not fail the
//! lookup). A reverse query (PTR, `in-addr.arpa`) for a container's address gets its first
//! name. Only the network's own entries are seen: a container on another network is a name
//! like any other, forwarded. Everything else goes upstream; a message that is not a query
//! is dropped. A UDP reply larger than the client takes (512 bytes, or its EDNS size) goes
//! back truncated, without answers, for the client to ask again over TCP.

use std::net::{IpAddr, Ipv4Addr};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, PTR};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use super::table::Network;

/// How long a client may keep an answer: containers come and go.
const TTL: u32 = 10;

/// What to do with a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Send these bytes back.
    Reply(Vec<u8>),
    /// Not ours: ask the upstreams.
    Forward,
    /// Not a query (garbage or a response): no answer.
    Drop,
}

/// How a query came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// The decision for `query`, which arrived on `network` over `transport`.
pub fn answer(network: &Network, query: &[u8], transport: Transport) -> Decision {
    let Ok(query) = Message::from_vec(query) else {
        return Decision::Drop;
    };
    if query.metadata.message_type != MessageType::Query {
        return Decision::Drop;
    }
    if query.metadata.op_code != OpCode::Query {
        return reply(&query, ResponseCode::NotImp, Vec::new(), transport);
    }
    let [question] = query.queries.as_slice() else {
        return reply(&query, ResponseCode::FormErr, Vec::new(), transport);
    };
    if question.query_class() != DNSClass::IN {
        return Decision::Forward;
    }
    let name = question.name();
    let answers = match question.query_type() {
        RecordType::PTR => match reverse(network, name) {
            Some(target) => vec![Record::from_rdata(
                name.clone(),
                TTL,
                RData::PTR(PTR(target)),
            )],
            None => return Decision::Forward,
        },
        kind => match addresses(network, name) {
            Some(addresses) if matches!(kind, RecordType::A | RecordType::ANY) => addresses
                .into_iter()
                .map(|ip| Record::from_rdata(name.clone(), TTL, RData::A(A(ip))))
                .collect(),
            Some(_) => Vec::new(),
            None => return Decision::Forward,
        },
    };
    reply(&query, ResponseCode::NoError, answers, transport)
}

/// SERVFAIL for `query` (when no upstream answered); `None` when it is not a query.
pub fn server_failure(query: &[u8]) -> Option<Vec<u8>> {
    let query = Message::from_vec(query).ok()?;
    match reply(&query, ResponseCode::ServFail, Vec::new(), Transport::Tcp) {
        Decision::Reply(bytes) => Some(bytes),
        _ => None,
    }
}

/// The addresses of the entries `name` names on `network`; `None` when it names none.
fn addresses(network: &Network, name: &Name) -> Option<Vec<Ipv4Addr>> {
    let text = name.to_ascii().to_ascii_lowercase();
    let text = text.strip_suffix('.').unwrap_or(&text);
    let suffix = format!(".{}", network.name.to_ascii_lowercase());
    let short = text.strip_suffix(suffix.as_str());
    let mut found = None;
    for entry in &network.entries {
        let named = entry.names.iter().any(|entry_name| {
            let entry_name = entry_name.strip_suffix('.').unwrap_or(entry_name);
            entry_name.eq_ignore_ascii_case(text)
                || short.is_some_and(|short| entry_name.eq_ignore_ascii_case(short))
        });
        if named {
            found.get_or_insert_with(Vec::new).extend(&entry.addresses);
        }
    }
    found
}

/// The name of the entry whose address `name` (`D.C.B.A.in-addr.arpa.`) is.
fn reverse(network: &Network, name: &Name) -> Option<Name> {
    let mut name = name.clone();
    name.set_fqdn(true);
    let net = name.parse_arpa_name().ok()?;
    let IpAddr::V4(ip) = net.addr() else {
        return None;
    };
    if net.prefix_len() != 32 {
        return None;
    }
    let entry = network
        .entries
        .iter()
        .find(|entry| entry.addresses.contains(&ip))?;
    let mut target = Name::from_ascii(entry.names.first()?).ok()?;
    target.set_fqdn(true);
    Some(target)
}

/// The response to `query` with `code` and `answers`, truncated if it is too large for UDP.
fn reply(
    query: &Message,
    code: ResponseCode,
    answers: Vec<Record>,
    transport: Transport,
) -> Decision {
    let mut response = Message::response(query.metadata.id, query.metadata.op_code);
    response.metadata.response_code = code;
    response.metadata.authoritative = code == ResponseCode::NoError;
    response.metadata.recursion_desired = query.metadata.recursion_desired;
    response.metadata.recursion_available = true;
    response.add_queries(query.queries.iter().cloned());
    response.add_answers(answers);
    if query.edns.is_some() {
        response.set_edns(Edns::new());
    }
    let encoded = response.to_vec().and_then(|bytes| {
        if transport == Transport::Udp && bytes.len() > usize::from(query.max_payload()) {
            response.truncate().to_vec()
        } else {
            Ok(bytes)
        }
    });
    match encoded {
        Ok(bytes) => Decision::Reply(bytes),
        Err(_) => Decision::Drop,
    }
}

#[cfg(test)]
mod tests {
    use hickory_proto::op::Query;

    use super::super::table::Entry;
    use super::*;

    fn network() -> Network {
        Network {
            name: "backend".into(),
            gateway: Ipv4Addr::new(10, 223, 1, 1),
            entries: vec![
                Entry {
                    names: vec!["db".into(), "0123456789ab".into(), "mongo".into()],
                    addresses: vec![Ipv4Addr::new(10, 223, 1, 2)],
                },
                Entry {
                    names: vec!["web".into(), "ba9876543210".into(), "mongo".into()],
                    addresses: vec![Ipv4Addr::new(10, 223, 1, 3)],
                },
            ],
        }
    }

    fn query(name: &str, kind: RecordType) -> Vec<u8> {
        let mut message = Message::new(4242, MessageType::Query, OpCode::Query);
        message.metadata.recursion_desired = true;
        message.add_query(Query::query(Name::from_ascii(name).unwrap(), kind));
        message.to_vec().unwrap()
    }

    fn answer_udp(network: &Network, query: &[u8]) -> Decision {
        answer(network, query, Transport::Udp)
    }

    fn response(decision: Decision) -> Message {
        match decision {
            Decision::Reply(bytes) => Message::from_vec(&bytes).unwrap(),
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    fn a_records(message: &Message) -> Vec<Ipv4Addr> {
        message
            .answers
            .iter()
            .map(|record| match &record.data {
                RData::A(A(ip)) => *ip,
                other => panic!("not an A record: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_container_name_gets_its_address_in_any_case_with_or_without_the_dot() {
        for name in ["db", "DB.", "0123456789ab", "db.backend", "Db.Backend."] {
            let message = response(answer_udp(&network(), &query(name, RecordType::A)));
            assert_eq!(message.metadata.id, 4242);
            assert_eq!(message.metadata.message_type, MessageType::Response);
            assert_eq!(message.metadata.response_code, ResponseCode::NoError);
            assert!(message.metadata.recursion_desired && message.metadata.authoritative);
            assert_eq!(message.queries.len(), 1);
            assert_eq!(
                a_records(&message),
                [Ipv4Addr::new(10, 223, 1, 2)],
                "{name}"
            );
        }
    }

    #[test]
    fn an_alias_shared_by_two_containers_gets_both_addresses() {
        let message = response(answer_udp(&network(), &query("mongo", RecordType::A)));
        assert_eq!(
            a_records(&message),
            [Ipv4Addr::new(10, 223, 1, 2), Ipv4Addr::new(10, 223, 1, 3)]
        );
    }

    #[test]
    fn a_reply_too_large_for_udp_is_truncated_and_whole_over_tcp() {
        let mut many = network();
        many.entries[0].addresses = (1..=40)
            .map(|host| Ipv4Addr::new(10, 223, 2, host))
            .collect();
        let udp = response(answer_udp(&many, &query("db", RecordType::A)));
        assert!(udp.metadata.truncation && udp.answers.is_empty());
        assert_eq!(udp.metadata.id, 4242);
        let tcp = response(answer(&many, &query("db", RecordType::A), Transport::Tcp));
        assert!(!tcp.metadata.truncation);
        assert_eq!(a_records(&tcp).len(), 40);
        let mut large = Message::from_vec(&query("db", RecordType::A)).unwrap();
        let mut edns = Edns::new();
        edns.set_max_payload(4096);
        large.set_edns(edns);
        let udp = response(answer_udp(&many, &large.to_vec().unwrap()));
        assert_eq!(a_records(&udp).len(), 40, "the client takes 4096 bytes");
    }

    #[test]
    fn aaaa_for_a_container_is_an_empty_success() {
        let message = response(answer_udp(&network(), &query("web", RecordType::AAAA)));
        assert_eq!(message.metadata.response_code, ResponseCode::NoError);
        assert!(message.answers.is_empty());
    }

    #[test]
    fn other_names_are_forwarded() {
        for name in ["example.org.", "db.frontend", "dbx", "backend"] {
            assert_eq!(
                answer_udp(&network(), &query(name, RecordType::A)),
                Decision::Forward,
                "{name}"
            );
        }
        assert_eq!(
            answer_udp(&network(), &query("example.org.", RecordType::AAAA)),
            Decision::Forward
        );
    }

    #[test]
    fn another_networks_containers_are_not_seen() {
        let mut other = network();
        other.name = "frontend".into();
        other.entries.remove(0);
        assert_eq!(
            answer_udp(&other, &query("db", RecordType::A)),
            Decision::Forward
        );
    }

    #[test]
    fn a_containers_address_resolves_back_to_its_name() {
        let message = response(answer_udp(
            &network(),
            &query("3.1.223.10.in-addr.arpa.", RecordType::PTR),
        ));
        let names: Vec<String> = message
            .answers
            .iter()
            .map(|record| match &record.data {
                RData::PTR(PTR(name)) => name.to_ascii(),
                other => panic!("not a PTR record: {other:?}"),
            })
            .collect();
        assert_eq!(names, ["web."]);
        assert_eq!(
            answer_udp(
                &network(),
                &query("9.1.223.10.in-addr.arpa.", RecordType::PTR)
            ),
            Decision::Forward
        );
    }

    #[test]
    fn garbage_and_responses_are_dropped() {
        assert_eq!(answer_udp(&network(), b"\x01\x02"), Decision::Drop);
        let mut message = Message::from_vec(&query("db", RecordType::A)).unwrap();
        message.metadata.message_type = MessageType::Response;
        assert_eq!(
            answer_udp(&network(), &message.to_vec().unwrap()),
            Decision::Drop
        );
    }

    #[test]
    fn other_operations_are_not_implemented() {
        let mut message = Message::from_vec(&query("db", RecordType::A)).unwrap();
        message.metadata.op_code = OpCode::Status;
        let reply = response(answer_udp(&network(), &message.to_vec().unwrap()));
        assert_eq!(reply.metadata.response_code, ResponseCode::NotImp);
    }

    #[test]
    fn edns_in_the_query_is_answered_with_edns() {
        let mut message = Message::from_vec(&query("db", RecordType::A)).unwrap();
        message.set_edns(Edns::new());
        let reply = response(answer_udp(&network(), &message.to_vec().unwrap()));
        assert!(reply.edns.is_some());
    }

    #[test]
    fn server_failure_answers_the_query_with_servfail() {
        let reply =
            Message::from_vec(&server_failure(&query("example.org.", RecordType::A)).unwrap())
                .unwrap();
        assert_eq!(reply.metadata.id, 4242);
        assert_eq!(reply.metadata.response_code, ResponseCode::ServFail);
        assert_eq!(reply.queries.len(), 1);
        assert_eq!(server_failure(b"\x00"), None);
    }
}
