//! The `[X-Fleet]` section: where a unit may run.
//!
//! fleet's grammar is kept exactly, quirks included, because unit files written for fleet must
//! schedule the same way here:
//! - a value that starts **and** ends with `"` is a list of quoted words split on spaces outside
//!   quotes (`MachineMetadata="a=b" "c=d"`); any other value is one word;
//! - only `%n %N %p %i` are substituted, by plain sequential replacement (after splitting);
//! - `MachineID` takes the first value, preferring `MachineID` over `X-ConditionMachineID` over
//!   `X-ConditionMachineBootID`; `MachineOf`, `MachineMetadata`, `Replaces` take every value of the
//!   modern and the legacy key; `Conflicts` values are also split on white space; for `Global`
//!   the last value wins;
//! - invalid combinations are refused with fleet's own messages.
//!
//! Where fleet silently ignored a mistake, flotilla refuses it (see ARCHITECTURE.md, "fleet
//! behaviour we changed"): an unknown key, a `MachineMetadata` value that is not `key=value`, a
//! `Global` value that is not a boolean, and a malformed glob pattern are errors.

use std::collections::{BTreeMap, BTreeSet};

use crate::diag::Diagnostics;
use crate::glob::{Glob, GlobError};
use crate::name::UnitName;
use crate::specifier;
use crate::syntax::{Entry, UnitFile};

/// The section name, matched case-sensitively as fleet does.
pub const SECTION: &str = "X-Fleet";

/// Every key fleet accepts in `[X-Fleet]` (its `validRequirements`).
pub const KEYS: &[&str] = &[
    "MachineID",
    "X-ConditionMachineID",
    "X-ConditionMachineBootID",
    "MachineOf",
    "X-ConditionMachineOf",
    "MachineMetadata",
    "X-ConditionMachineMetadata",
    "Conflicts",
    "X-Conflicts",
    "Global",
    "Replaces",
];

/// What can be wrong in `[X-Fleet]`. Messages that fleet also produces keep fleet's wording.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FleetError {
    /// A key fleet does not know (fleet only warned).
    #[error("unrecognized requirement in [X-Fleet] section: {key:?}")]
    UnknownKey {
        /// The key as written.
        key: String,
    },
    /// A `MachineMetadata` word that is not `key=value` (fleet silently ignored it).
    #[error("invalid MachineMetadata {value:?}: expected key=value with a non-empty key and value{hint}")]
    InvalidMetadata {
        /// The offending word.
        value: String,
        /// Extra advice, starting with "; " when present.
        hint: &'static str,
    },
    /// A `Global` value that is not a boolean.
    #[error("invalid Global value {value:?}: expected true/false, yes/no, on/off, 1/0")]
    InvalidGlobal {
        /// The value as written.
        value: String,
    },
    /// An empty value where one is needed.
    #[error("{key} needs a value")]
    EmptyValue {
        /// The key.
        key: String,
    },
    /// A `Conflicts`/`Replaces` pattern that is not a valid glob.
    #[error("invalid {key} pattern: {source}")]
    BadPattern {
        /// The key.
        key: String,
        /// Why the pattern is malformed.
        source: GlobError,
    },
    /// A `MachineOf` peer that its own unit's `Conflicts` would exclude.
    #[error("unresolvable requirements: peer {peer:?} matches conflict {pattern:?}")]
    PeerMatchesConflict {
        /// The peer.
        peer: String,
        /// The matching pattern.
        pattern: String,
    },
    /// A `MachineOf` peer that its own unit's `Replaces` would evict.
    #[error("unresolvable requirements: peer {peer:?} matches replace {pattern:?}")]
    PeerMatchesReplace {
        /// The peer.
        peer: String,
        /// The matching pattern.
        pattern: String,
    },
    /// Two options that cannot be combined (fleet's wording: "MachineID cannot be used with Peers").
    #[error("{first} cannot be used with {second}")]
    Incompatible {
        /// fleet's name of the first option.
        first: &'static str,
        /// fleet's name of the second option.
        second: &'static str,
    },
}

/// Where a unit may run, as `[X-Fleet]` says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Constraints {
    /// The machine the unit must run on: a full machine ID or a unique prefix (fleet matches the
    /// full ID or its first 8 characters).
    pub machine_id: Option<String>,
    /// Units that must already be scheduled on the same machine (all of them).
    pub machine_of: Vec<String>,
    /// Metadata the machine must have: every key, with a value among the set for that key.
    pub machine_metadata: BTreeMap<String, BTreeSet<String>>,
    /// Units that must not share the machine (glob patterns, symmetric).
    pub conflicts: Vec<Glob>,
    /// Run on every machine that qualifies.
    pub global: bool,
    /// Units this one evicts from its machine (glob patterns).
    pub replaces: Vec<Glob>,
}

impl Constraints {
    /// True when the machine's metadata satisfies `MachineMetadata` (AND across keys, OR within).
    pub fn metadata_matches(&self, machine: &BTreeMap<String, String>) -> bool {
        self.machine_metadata
            .iter()
            .all(|(key, wanted)| machine.get(key).is_some_and(|value| wanted.contains(value)))
    }

    /// True when this unit's `Conflicts` patterns match `other` (one direction; fleet checks
    /// both directions between two units, and never a unit against itself).
    pub fn conflicts_with(&self, own_name: &str, other: &str) -> bool {
        own_name != other && self.conflicts.iter().any(|glob| glob.matches(other))
    }
}

/// fleet's `parseMultivalueLine`: a value starting and ending with `"` is split on spaces outside
/// quotes, with the quotes dropped; any other value is a single word.
///
/// ```
/// use unitgen::fleet::split_multivalue;
/// assert_eq!(split_multivalue(r#""a=b" "c=d""#), ["a=b", "c=d"]);
/// assert_eq!(split_multivalue("a=b c=d"), ["a=b c=d"]);
/// ```
pub fn split_multivalue(value: &str) -> Vec<String> {
    if !(value.starts_with('"') && value.ends_with('"')) {
        return vec![value.to_owned()];
    }
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in value.chars() {
        match c {
            '"' => quoted = !quoted,
            ' ' if !quoted => words.push(std::mem::take(&mut word)),
            c => word.push(c),
        }
    }
    words.push(word);
    words
}

/// One `[X-Fleet]` word with where it came from.
struct Word<'a> {
    value: String,
    entry: &'a Entry,
}

/// Reads `[X-Fleet]` of `unit` (named `name`) into [`Constraints`], reporting every problem.
pub fn constraints(unit: &UnitFile, name: &UnitName) -> (Constraints, Diagnostics) {
    Reader {
        unit,
        name,
        diagnostics: Diagnostics::default(),
    }
    .read()
}

struct Reader<'a> {
    unit: &'a UnitFile,
    name: &'a UnitName,
    diagnostics: Diagnostics,
}

impl<'a> Reader<'a> {
    fn read(mut self) -> (Constraints, Diagnostics) {
        for section in self.unit.sections().iter().filter(|s| s.name() == SECTION) {
            for entry in section.entries() {
                if !KEYS.contains(&entry.key()) {
                    let key = entry.key().to_owned();
                    self.report(entry, FleetError::UnknownKey { key });
                }
            }
        }

        let machine_id = [
            "MachineID",
            "X-ConditionMachineID",
            "X-ConditionMachineBootID",
        ]
        .into_iter()
        .find_map(|key| self.words(&[key]).into_iter().next());
        let machine_of = self.words(&["X-ConditionMachineOf", "MachineOf"]);
        let metadata = self.words(&["X-ConditionMachineMetadata", "MachineMetadata"]);
        let conflicts: Vec<Word<'a>> = self
            .words(&["X-Conflicts", "Conflicts"])
            .into_iter()
            .flat_map(|word| {
                let entry = word.entry;
                word.value
                    .split_whitespace()
                    .map(|value| Word {
                        value: value.to_owned(),
                        entry,
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        let replaces = self.words(&["Replaces"]);
        let global = self.words(&["Global"]).pop();

        for word in machine_id.iter().chain(&machine_of) {
            self.require_value(word);
        }
        let constraints = Constraints {
            machine_id: machine_id.as_ref().map(|word| word.value.clone()),
            machine_of: machine_of.iter().map(|word| word.value.clone()).collect(),
            machine_metadata: self.metadata(&metadata),
            conflicts: self.globs(&conflicts),
            global: global.as_ref().is_some_and(|word| self.boolean(word)),
            replaces: self.globs(&replaces),
        };
        self.check_peers(&machine_of, &constraints);
        self.check_combinations(
            &constraints,
            &machine_id,
            &machine_of,
            &conflicts,
            &replaces,
        );
        (constraints, self.diagnostics)
    }

    fn report(&mut self, entry: &Entry, error: FleetError) {
        let location = entry.report_location(self.unit.file());
        self.diagnostics.push(location, error);
    }

    /// Every word of the given keys, in key order then file order, with specifiers substituted.
    fn words(&self, keys: &[&str]) -> Vec<Word<'a>> {
        let unit: &'a UnitFile = self.unit;
        keys.iter()
            .flat_map(|key| unit.entries(SECTION, key).collect::<Vec<_>>())
            .flat_map(|entry| {
                split_multivalue(entry.value())
                    .into_iter()
                    .map(|value| Word {
                        value: specifier::expand_fleet(&value, self.name),
                        entry,
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    fn require_value(&mut self, word: &Word<'_>) {
        if word.value.is_empty() && !self.name.is_template() {
            let key = word.entry.key().to_owned();
            self.report(word.entry, FleetError::EmptyValue { key });
        }
    }

    fn metadata(&mut self, words: &[Word<'_>]) -> BTreeMap<String, BTreeSet<String>> {
        let mut metadata: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for word in words {
            match word.value.split_once('=') {
                Some((key, value))
                    if !key.is_empty() && !value.is_empty() && !value.contains('=') =>
                {
                    metadata
                        .entry(key.to_owned())
                        .or_default()
                        .insert(value.to_owned());
                }
                _ if self.name.is_template() && word.value.is_empty() => {}
                _ => {
                    let hint = if word.value.matches('=').count() > 1 && word.value.contains(' ') {
                        "; quote each pair: MachineMetadata=\"a=b\" \"c=d\""
                    } else {
                        ""
                    };
                    let value = word.value.clone();
                    self.report(word.entry, FleetError::InvalidMetadata { value, hint });
                }
            }
        }
        metadata
    }

    fn globs(&mut self, words: &[Word<'_>]) -> Vec<Glob> {
        let mut globs = Vec::new();
        for word in words {
            if word.value.is_empty() {
                self.require_value(word);
                continue;
            }
            match Glob::new(&word.value) {
                Ok(glob) => globs.push(glob),
                Err(source) => {
                    let key = word.entry.key().to_owned();
                    self.report(word.entry, FleetError::BadPattern { key, source });
                }
            }
        }
        globs
    }

    /// fleet's truthy words are true; systemd's false words are false; anything else is an error.
    fn boolean(&mut self, word: &Word<'_>) -> bool {
        match word.value.to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" | "on" | "t" => true,
            "false" | "no" | "0" | "off" | "f" | "n" => false,
            _ => {
                let value = word.value.clone();
                self.report(word.entry, FleetError::InvalidGlobal { value });
                false
            }
        }
    }

    fn check_peers(&mut self, peers: &[Word<'_>], constraints: &Constraints) {
        for peer in peers {
            if let Some(glob) = constraints
                .conflicts
                .iter()
                .find(|g| g.matches(&peer.value))
            {
                let error = FleetError::PeerMatchesConflict {
                    peer: peer.value.clone(),
                    pattern: glob.as_str().to_owned(),
                };
                self.report(peer.entry, error);
            }
            if let Some(glob) = constraints.replaces.iter().find(|g| g.matches(&peer.value)) {
                let error = FleetError::PeerMatchesReplace {
                    peer: peer.value.clone(),
                    pattern: glob.as_str().to_owned(),
                };
                self.report(peer.entry, error);
            }
        }
    }

    /// fleet's mutually exclusive options, in fleet's order; every violation is reported at the
    /// second option's first line.
    fn check_combinations(
        &mut self,
        constraints: &Constraints,
        machine_id: &Option<Word<'a>>,
        peers: &[Word<'a>],
        conflicts: &[Word<'a>],
        replaces: &[Word<'a>],
    ) {
        let global = self
            .unit
            .entries(SECTION, "Global")
            .last()
            .filter(|_| constraints.global);
        let first_of = |words: &[Word<'a>]| words.first().map(|word| word.entry);
        let options: [(&'static str, Option<&Entry>); 5] = [
            ("MachineID", machine_id.as_ref().map(|word| word.entry)),
            ("Peers", first_of(peers)),
            ("Conflicts", first_of(conflicts)),
            ("Global", global),
            ("Replaces", first_of(replaces)),
        ];
        let pairs = [
            ("MachineID", "Peers"),
            ("MachineID", "Conflicts"),
            ("MachineID", "Global"),
            ("MachineID", "Replaces"),
            ("Global", "Peers"),
            ("Global", "Replaces"),
            ("Conflicts", "Replaces"),
        ];
        let find = |wanted: &str| {
            options
                .iter()
                .find(|(name, _)| *name == wanted)
                .and_then(|o| o.1)
        };
        for (first, second) in pairs {
            if let (Some(_), Some(at)) = (find(first), find(second)) {
                self.report(at, FleetError::Incompatible { first, second });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(name: &str, body: &str) -> (Constraints, Vec<String>) {
        let text = format!("[Unit]\nDescription=t\n[X-Fleet]\n{body}");
        let (unit, syntax) = UnitFile::parse(name, &text);
        assert!(syntax.is_empty(), "{syntax:?}");
        let name = UnitName::parse(name).expect("valid name");
        let (constraints, diagnostics) = constraints(&unit, &name);
        (
            constraints,
            diagnostics
                .sorted()
                .iter()
                .map(|d| d.problem.to_string())
                .collect(),
        )
    }

    fn set(values: &[&str]) -> BTreeSet<String> {
        values.iter().map(|v| (*v).to_owned()).collect()
    }

    #[test]
    fn multivalue_quirks_match_fleet() {
        let cases: &[(&str, &[&str])] = &[
            ("foo", &["foo"]),
            ("a=b c=d", &["a=b c=d"]),
            (r#""a=b" "c=d""#, &["a=b", "c=d"]),
            (r#""bar" ""#, &["bar", ""]),
            (r#""foo\"bar""#, &["foo\\bar"]),
            (r#""a b""#, &["a b"]),
        ];
        for (input, expected) in cases {
            assert_eq!(split_multivalue(input), *expected, "{input:?}");
        }
    }

    #[test]
    fn machine_id_takes_the_first_value_of_the_preferred_key() {
        let (c, errors) = read(
            "a.service",
            "X-ConditionMachineBootID=boot\nX-ConditionMachineID=legacy\nMachineID=first\nMachineID=second\n",
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(c.machine_id.as_deref(), Some("first"));
        let (c, _) = read(
            "a.service",
            "X-ConditionMachineBootID=boot\nX-ConditionMachineID=legacy\n",
        );
        assert_eq!(c.machine_id.as_deref(), Some("legacy"));
        let (c, _) = read("a.service", "X-ConditionMachineBootID=boot\n");
        assert_eq!(c.machine_id.as_deref(), Some("boot"));
    }

    #[test]
    fn metadata_is_and_across_keys_or_within() {
        let (c, errors) = read(
            "a.service",
            "MachineMetadata=\"region=e\" \"job=foo\"\nX-ConditionMachineMetadata=\"region=w\" \"job=bar\"\n",
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(c.machine_metadata["region"], set(&["e", "w"]));
        assert_eq!(c.machine_metadata["job"], set(&["foo", "bar"]));
        let machine = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        assert!(c.metadata_matches(&machine(&[("region", "w"), ("job", "foo"), ("x", "y")])));
        assert!(!c.metadata_matches(&machine(&[("region", "w")])));
        assert!(!c.metadata_matches(&machine(&[("region", "n"), ("job", "foo")])));
    }

    #[test]
    fn malformed_metadata_is_an_error_unlike_fleet() {
        let (_, errors) = read(
            "a.service",
            "MachineMetadata=a=b c=d\nMachineMetadata=foo=\nMachineMetadata=\"x\"\n",
        );
        assert_eq!(
            errors,
            [
                "invalid MachineMetadata \"a=b c=d\": expected key=value with a non-empty key and value; quote each pair: MachineMetadata=\"a=b\" \"c=d\"",
                "invalid MachineMetadata \"foo=\": expected key=value with a non-empty key and value",
                "invalid MachineMetadata \"x\": expected key=value with a non-empty key and value",
            ]
        );
    }

    #[test]
    fn conflicts_split_on_white_space_and_are_globs() {
        let (c, errors) = read(
            "foo.1.service",
            "Conflicts=foo*.service bar.service\nX-Conflicts=\"baz?.service\"\n",
        );
        assert!(errors.is_empty(), "{errors:?}");
        let patterns: Vec<&str> = c.conflicts.iter().map(Glob::as_str).collect();
        assert_eq!(patterns, ["baz?.service", "foo*.service", "bar.service"]);
        assert!(
            !c.conflicts_with("foo.1.service", "foo.1.service"),
            "never with itself"
        );
        assert!(c.conflicts_with("foo.1.service", "foo.2.service"));
        assert!(c.conflicts_with("foo.1.service", "baz1.service"));
    }

    #[test]
    fn global_last_value_wins() {
        let (c, errors) = read("a.service", "Global=true\nGlobal=false\n");
        assert!(errors.is_empty() && !c.global);
        for truthy in ["true", "YES", "1", "on", "t"] {
            assert!(
                read("a.service", &format!("Global=false\nGlobal={truthy}\n"))
                    .0
                    .global,
                "{truthy}"
            );
        }
        assert_eq!(
            read("a.service", "Global=maybe\n").1,
            ["invalid Global value \"maybe\": expected true/false, yes/no, on/off, 1/0"]
        );
    }

    #[test]
    fn specifiers_are_substituted_after_splitting() {
        let (c, errors) = read(
            "pin@abc.service",
            "MachineID=%i\nMachineMetadata=hostname=%i\n",
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(c.machine_id.as_deref(), Some("abc"));
        assert_eq!(c.machine_metadata["hostname"], set(&["abc"]));
        let (c, errors) = read("pin@abc.service", "MachineOf=%p.socket\n");
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(c.machine_of, ["pin.socket"]);
        let (c, _) = read("a.service", "MachineOf=%H.service\n");
        assert_eq!(
            c.machine_of,
            ["%H.service"],
            "other specifiers stay literal, as in fleet"
        );
    }

    #[test]
    fn unknown_keys_are_errors() {
        assert_eq!(
            read("a.service", "MachineId=x\n").1,
            ["unrecognized requirement in [X-Fleet] section: \"MachineId\""]
        );
    }

    #[test]
    fn invalid_combinations_use_fleets_messages() {
        let cases: &[(&str, &[&str])] = &[
            (
                "MachineID=a\nMachineOf=b.service\n",
                &["MachineID cannot be used with Peers"],
            ),
            (
                "MachineID=a\nConflicts=b*\n",
                &["MachineID cannot be used with Conflicts"],
            ),
            (
                "MachineID=a\nGlobal=true\n",
                &["MachineID cannot be used with Global"],
            ),
            (
                "MachineID=a\nReplaces=b.service\n",
                &["MachineID cannot be used with Replaces"],
            ),
            (
                "Global=true\nMachineOf=b.service\n",
                &["Global cannot be used with Peers"],
            ),
            (
                "Global=true\nReplaces=b.service\n",
                &["Global cannot be used with Replaces"],
            ),
            (
                "Conflicts=a*\nReplaces=b.service\n",
                &["Conflicts cannot be used with Replaces"],
            ),
            ("Global=false\nMachineID=a\n", &[]),
            ("Global=true\nMachineMetadata=a=b\nConflicts=x*\n", &[]),
            (
                "MachineOf=db.service\nConflicts=d*\n",
                &["unresolvable requirements: peer \"db.service\" matches conflict \"d*\""],
            ),
            (
                "MachineOf=db.service\nReplaces=db.*\n",
                &["unresolvable requirements: peer \"db.service\" matches replace \"db.*\""],
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(read("a.service", body).1, *expected, "{body:?}");
        }
    }

    #[test]
    fn bad_patterns_and_empty_values_are_errors() {
        assert_eq!(
            read("a.service", "Conflicts=db[.service\nMachineOf=\n").1,
            [
                "invalid Conflicts pattern: malformed pattern \"db[.service\"",
                "MachineOf needs a value"
            ]
        );
        assert!(
            read("a@.service", "MachineID=%i\n").1.is_empty(),
            "templates may leave it empty"
        );
    }
}
