//! A fuzzer for the unit parsers that runs on stable Rust: no coverage feedback, but seeded with
//! every golden fixture (`tests/golden/`) and a long run away.
//!
//! Each case takes a fixture's bytes and applies a few mutations — bit flips, insertions of the
//! characters the grammars care about (`[ ] = \ % " # ;` and line breaks), deletions, truncation,
//! and line splices from other fixtures — or starts from arbitrary bytes. The result goes to
//! `UnitFile::parse_bytes` (which must give back valid UTF-8 input byte for byte), `Unit::check`
//! under several names, and `container::generate`. Nothing may panic.
//!
//! By default it runs a few seconds' worth of cases so that it is part of every `cargo test`;
//! `FLOTILLA_FUZZ_CASES=N` sets the number of cases for a long run (see tests/golden/README.md).

use std::path::Path;
use std::sync::OnceLock;

use proptest::prelude::*;
use proptest::sample::Index;
use unitgen::container;
use unitgen::name::UnitName;
use unitgen::syntax::UnitFile;
use unitgen::unit::Unit;

/// Cases per run unless `FLOTILLA_FUZZ_CASES` says otherwise.
const DEFAULT_CASES: u32 = 6000;

/// Bytes the unit grammars give a meaning to.
const INTERESTING: &[u8] = b"[]=\\\n\r%\"'#; @*?-:$\t";

/// (file name, bytes) of every golden fixture.
fn fixtures() -> &'static [(String, Vec<u8>)] {
    static FIXTURES: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
        let mut fixtures: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
            .expect("tests/golden exists")
            .map(|entry| {
                let path = entry.expect("readable directory entry").path();
                let name = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .expect("UTF-8 fixture name")
                    .to_owned();
                let bytes = std::fs::read(&path).expect("readable fixture");
                (name, bytes)
            })
            .filter(|(name, _)| name != "README.md")
            .collect();
        fixtures.sort();
        assert!(!fixtures.is_empty(), "no fixtures in {}", dir.display());
        fixtures
    })
}

fn cases() -> u32 {
    match std::env::var("FLOTILLA_FUZZ_CASES") {
        Ok(value) => value
            .parse()
            .expect("FLOTILLA_FUZZ_CASES is a number of cases"),
        Err(_) => DEFAULT_CASES,
    }
}

#[derive(Clone, Debug)]
enum Mutation {
    /// Flip one bit of one byte.
    Flip(Index, u8),
    /// Insert an interesting byte.
    Insert(Index, Index),
    /// Insert any byte.
    InsertAny(Index, u8),
    /// Remove a run of up to 8 bytes.
    Delete(Index, usize),
    /// Cut the file short.
    Truncate(Index),
    /// Copy a line of another fixture to the start of a line of this one.
    Splice { from: Index, line: Index, to: Index },
    /// Repeat a line.
    DuplicateLine(Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        1 => (any::<Index>(), 0..8u8).prop_map(|(at, bit)| Mutation::Flip(at, bit)),
        3 => (any::<Index>(), any::<Index>()).prop_map(|(at, which)| Mutation::Insert(at, which)),
        1 => (any::<Index>(), any::<u8>()).prop_map(|(at, byte)| Mutation::InsertAny(at, byte)),
        1 => (any::<Index>(), 1..8usize).prop_map(|(at, len)| Mutation::Delete(at, len)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        2 => (any::<Index>(), any::<Index>(), any::<Index>())
            .prop_map(|(from, line, to)| Mutation::Splice { from, line, to }),
        1 => any::<Index>().prop_map(Mutation::DuplicateLine),
    ]
}

/// Start offsets of the lines of `bytes` (always at least `[0]`).
fn line_starts(bytes: &[u8]) -> Vec<usize> {
    std::iter::once(0)
        .chain(
            bytes
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == b'\n')
                .map(|(i, _)| i + 1),
        )
        .filter(|start| *start <= bytes.len())
        .collect()
}

/// The line starting at `start`, with its newline.
fn line_at(bytes: &[u8], start: usize) -> &[u8] {
    let end = bytes[start..]
        .iter()
        .position(|b| *b == b'\n')
        .map_or(bytes.len(), |i| start + i + 1);
    &bytes[start..end]
}

fn apply(bytes: &mut Vec<u8>, mutation: &Mutation) {
    let fixtures = fixtures();
    match mutation {
        Mutation::Flip(at, bit) => {
            if !bytes.is_empty() {
                let i = at.index(bytes.len());
                bytes[i] ^= 1 << bit;
            }
        }
        Mutation::Insert(at, which) => {
            let byte = INTERESTING[which.index(INTERESTING.len())];
            bytes.insert(at.index(bytes.len() + 1), byte);
        }
        Mutation::InsertAny(at, byte) => bytes.insert(at.index(bytes.len() + 1), *byte),
        Mutation::Delete(at, len) => {
            if !bytes.is_empty() {
                let start = at.index(bytes.len());
                let end = (start + len).min(bytes.len());
                bytes.drain(start..end);
            }
        }
        Mutation::Truncate(at) => bytes.truncate(at.index(bytes.len() + 1)),
        Mutation::Splice { from, line, to } => {
            let (_, other) = &fixtures[from.index(fixtures.len())];
            let starts = line_starts(other);
            let piece = line_at(other, starts[line.index(starts.len())]).to_vec();
            let targets = line_starts(bytes);
            let at = targets[to.index(targets.len())];
            bytes.splice(at..at, piece);
        }
        Mutation::DuplicateLine(line) => {
            let starts = line_starts(bytes);
            let start = starts[line.index(starts.len())];
            let piece = line_at(bytes, start).to_vec();
            bytes.splice(start..start, piece);
        }
    }
}

/// A fixture, mutated; or arbitrary bytes under a fixture's name.
fn input() -> impl Strategy<Value = (String, Vec<u8>)> {
    prop_oneof![
        4 => (any::<Index>(), prop::collection::vec(mutation(), 0..6)).prop_map(
            |(which, mutations)| {
                let (name, bytes) = &fixtures()[which.index(fixtures().len())];
                let mut bytes = bytes.clone();
                for mutation in &mutations {
                    apply(&mut bytes, mutation);
                }
                (name.clone(), bytes)
            }
        ),
        1 => (any::<Index>(), prop::collection::vec(any::<u8>(), 0..256)).prop_map(
            |(which, bytes)| (fixtures()[which.index(fixtures().len())].0.clone(), bytes)
        ),
    ]
}

/// Everything the crate does with untrusted unit text.
fn exercise(name: &str, bytes: &[u8]) -> Result<(), TestCaseError> {
    let (parsed, _) = UnitFile::parse_bytes(name, bytes);
    if let Ok(text) = std::str::from_utf8(bytes) {
        prop_assert_eq!(parsed.to_string(), text, "round trip of {:?}", text);
    }
    let _ = parsed.normalized();

    for unit_name in [
        name,
        "fuzz.service",
        "fuzz.container",
        "fuzz@i.service",
        "fuzz@.service",
    ] {
        if let Ok(unit) = Unit::check(unit_name, unit_name, bytes) {
            let _ = unit.systemd_unit().to_string();
            let _ = unit.hash().short();
        }
    }
    for service in ["fuzz.service", "fuzz@i.service", "fuzz@.service"] {
        let service = UnitName::parse(service).expect("valid service name");
        if let Ok(generated) = container::generate(&parsed, &service) {
            let _ = generated.to_string();
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        max_shrink_iters: 4096,
        ..ProptestConfig::default()
    })]

    #[test]
    fn parsers_survive_mutated_fixtures((name, bytes) in input()) {
        exercise(&name, &bytes)?;
    }
}

#[test]
fn fixtures_themselves_are_exercised() {
    for (name, bytes) in fixtures() {
        exercise(name, bytes)
            .unwrap_or_else(|error| panic!("fixture {name} fails the fuzz checks: {error}"));
    }
}
