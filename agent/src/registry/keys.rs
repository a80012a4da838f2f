//! The etcd key layout under one prefix, defined once: building every key flotilla writes and
//! parsing a key back into what it names.
//!
//! ```text
//! P/units/<name>                 the unit record (API)
//! P/machines/<id>                a machine's registration (its agent, under its lease)
//! P/metadata/<id>                a machine's dynamic metadata (API, no lease)
//! P/schedule/<machine>/<unit>    an assignment (the elected scheduler only)
//! P/states/<machine>/<unit>      a reported state (that machine's agent, under its lease)
//! P/leader                       the scheduler leader (under the leader's lease)
//! ```
//! Pure: no I/O.

/// The key families, as the path segment after the prefix.
const UNITS: &str = "units/";
const MACHINES: &str = "machines/";
const METADATA: &str = "metadata/";
const SCHEDULE: &str = "schedule/";
const STATES: &str = "states/";
const LEADER: &str = "leader";

/// What a key names.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Key {
    /// `units/<name>`.
    Unit(String),
    /// `machines/<id>`.
    Machine(String),
    /// `metadata/<id>`.
    Metadata(String),
    /// `schedule/<machine>/<unit>`.
    Assignment {
        /// The machine the unit is assigned to.
        machine: String,
        /// The unit's name.
        unit: String,
    },
    /// `states/<machine>/<unit>`.
    State {
        /// The machine reporting.
        machine: String,
        /// The unit's name.
        unit: String,
    },
    /// `leader`.
    Leader,
}

/// The key layout for one prefix (default `/flotilla/`), always ending in `/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// The layout under `prefix`; a `/` is appended when it does not end in one.
    pub fn new(prefix: &str) -> Keys {
        let mut prefix = prefix.to_owned();
        if !prefix.ends_with('/') {
            prefix.push('/');
        }
        Keys { prefix }
    }

    /// The normalized prefix (ends in `/`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn join(&self, parts: &[&str]) -> String {
        let mut key = self.prefix.clone();
        for part in parts {
            key.push_str(part);
        }
        key
    }

    /// `P/units/`.
    pub fn units(&self) -> String {
        self.join(&[UNITS])
    }

    /// `P/units/<name>`.
    pub fn unit(&self, name: &str) -> String {
        self.join(&[UNITS, name])
    }

    /// `P/machines/`.
    pub fn machines(&self) -> String {
        self.join(&[MACHINES])
    }

    /// `P/machines/<id>`.
    pub fn machine(&self, id: &str) -> String {
        self.join(&[MACHINES, id])
    }

    /// `P/metadata/`.
    pub fn metadata_all(&self) -> String {
        self.join(&[METADATA])
    }

    /// `P/metadata/<id>`.
    pub fn metadata(&self, id: &str) -> String {
        self.join(&[METADATA, id])
    }

    /// `P/schedule/`: every machine's assignments.
    pub fn schedule(&self) -> String {
        self.join(&[SCHEDULE])
    }

    /// `P/schedule/<machine>/`: the prefix one agent watches.
    pub fn schedule_of(&self, machine: &str) -> String {
        self.join(&[SCHEDULE, machine, "/"])
    }

    /// `P/schedule/<machine>/<unit>`.
    pub fn assignment(&self, machine: &str, unit: &str) -> String {
        self.join(&[SCHEDULE, machine, "/", unit])
    }

    /// `P/states/`: every machine's reported states.
    pub fn states(&self) -> String {
        self.join(&[STATES])
    }

    /// `P/states/<machine>/`.
    pub fn states_of(&self, machine: &str) -> String {
        self.join(&[STATES, machine, "/"])
    }

    /// `P/states/<machine>/<unit>`.
    pub fn state(&self, machine: &str, unit: &str) -> String {
        self.join(&[STATES, machine, "/", unit])
    }

    /// `P/leader`.
    pub fn leader(&self) -> String {
        self.join(&[LEADER])
    }

    /// What `key` names, or `None` for a key outside the layout (another prefix, an extra or
    /// empty path segment).
    pub fn parse(&self, key: &str) -> Option<Key> {
        let rest = key.strip_prefix(self.prefix.as_str())?;
        if rest == LEADER {
            return Some(Key::Leader);
        }
        if let Some(name) = rest.strip_prefix(UNITS) {
            return segment(name).map(Key::Unit);
        }
        if let Some(id) = rest.strip_prefix(MACHINES) {
            return segment(id).map(Key::Machine);
        }
        if let Some(id) = rest.strip_prefix(METADATA) {
            return segment(id).map(Key::Metadata);
        }
        if let Some(pair) = rest.strip_prefix(SCHEDULE) {
            let (machine, unit) = pair_of(pair)?;
            return Some(Key::Assignment { machine, unit });
        }
        if let Some(pair) = rest.strip_prefix(STATES) {
            let (machine, unit) = pair_of(pair)?;
            return Some(Key::State { machine, unit });
        }
        None
    }
}

/// Whether `name` can be one path segment of a key: non-empty, no `/`.
pub fn is_segment(name: &str) -> bool {
    !name.is_empty() && !name.contains('/')
}

fn segment(name: &str) -> Option<String> {
    is_segment(name).then(|| name.to_owned())
}

fn pair_of(rest: &str) -> Option<(String, String)> {
    let (machine, unit) = rest.split_once('/')?;
    Some((segment(machine)?, segment(unit)?))
}

/// The end of the range of every key starting with `prefix` (etcd's `range_end`): the prefix
/// with its last byte that is not 0xff incremented and the rest dropped; `\0` (every key) when
/// there is none.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_is_normalized_to_end_in_a_slash() {
        assert_eq!(Keys::new("/flotilla").prefix(), "/flotilla/");
        assert_eq!(Keys::new("/flotilla/").prefix(), "/flotilla/");
        assert_eq!(Keys::new("").prefix(), "/");
    }

    #[test]
    fn keys_follow_the_layout() {
        let keys = Keys::new("/flotilla/");
        assert_eq!(keys.unit("web.service"), "/flotilla/units/web.service");
        assert_eq!(keys.machine("m1"), "/flotilla/machines/m1");
        assert_eq!(keys.metadata("m1"), "/flotilla/metadata/m1");
        assert_eq!(keys.schedule_of("m1"), "/flotilla/schedule/m1/");
        assert_eq!(
            keys.assignment("m1", "web.service"),
            "/flotilla/schedule/m1/web.service"
        );
        assert_eq!(keys.states_of("m1"), "/flotilla/states/m1/");
        assert_eq!(
            keys.state("m1", "web.service"),
            "/flotilla/states/m1/web.service"
        );
        assert_eq!(keys.leader(), "/flotilla/leader");
    }

    #[test]
    fn every_built_key_parses_back() {
        let keys = Keys::new("/p/");
        let table = [
            (keys.unit("a@1.service"), Key::Unit("a@1.service".into())),
            (keys.machine("m"), Key::Machine("m".into())),
            (keys.metadata("m"), Key::Metadata("m".into())),
            (
                keys.assignment("m", "u.service"),
                Key::Assignment {
                    machine: "m".into(),
                    unit: "u.service".into(),
                },
            ),
            (
                keys.state("m", "u.service"),
                Key::State {
                    machine: "m".into(),
                    unit: "u.service".into(),
                },
            ),
            (keys.leader(), Key::Leader),
        ];
        for (key, expected) in table {
            assert_eq!(keys.parse(&key), Some(expected), "{key}");
        }
    }

    #[test]
    fn keys_outside_the_layout_do_not_parse() {
        let keys = Keys::new("/p/");
        for key in [
            "/other/units/a.service",
            "/p/units/",
            "/p/units/a/b",
            "/p/schedule/m",
            "/p/schedule/m/",
            "/p/schedule//u",
            "/p/states/m/u/x",
            "/p/leaderx",
            "/p/unknown/x",
        ] {
            assert_eq!(keys.parse(key), None, "{key}");
        }
    }

    #[test]
    fn segments_are_non_empty_without_slashes() {
        assert!(is_segment("web.service"));
        assert!(!is_segment(""));
        assert!(!is_segment("a/b"));
    }

    #[test]
    fn prefix_end_covers_exactly_the_prefix() {
        assert_eq!(prefix_end(b"/p/units/"), b"/p/units0".to_vec());
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_end(b"\xff\xff"), vec![0]);
    }
}
