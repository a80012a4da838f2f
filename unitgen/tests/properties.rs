//! Property tests for unit files: any well-formed unit round-trips byte for byte and reads back
//! the keys and values it was built from, and nothing — parser or whole-unit check — panics on
//! arbitrary input.
//!
//! (`words::split(words::join(x)) == x` is covered next to the code, in `src/words.rs`.)

use proptest::prelude::*;
use unitgen::syntax::UnitFile;
use unitgen::unit::Unit;

/// A blank or comment line.
#[derive(Clone, Debug)]
enum Trivia {
    /// White space only.
    Blank(String),
    /// Leading white space, `#` or `;`, and the text after it.
    Comment(String, char, String),
}

impl Trivia {
    fn write(&self) -> String {
        match self {
            Trivia::Blank(space) => space.clone(),
            Trivia::Comment(lead, mark, text) => format!("{lead}{mark}{text}"),
        }
    }
}

/// One `Key=Value` assignment, possibly continued over several physical lines.
#[derive(Clone, Debug)]
struct Assignment {
    /// White space before the key, around the `=`.
    lead: String,
    key: String,
    before_equals: String,
    after_equals: String,
    /// The physical pieces of the value; all but the last end in a continuing `\`.
    pieces: Vec<String>,
    /// Comment lines written between the pieces (after piece `i`), skipped by the parser.
    comments: Vec<Option<Trivia>>,
}

impl Assignment {
    fn write(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let last = self.pieces.len() - 1;
        for (index, piece) in self.pieces.iter().enumerate() {
            let mut line = if index == 0 {
                format!(
                    "{}{}{}={}{piece}",
                    self.lead, self.key, self.before_equals, self.after_equals
                )
            } else {
                piece.clone()
            };
            if index < last {
                line.push('\\');
            }
            lines.push(line);
            if index < last {
                if let Some(Some(comment)) = self.comments.get(index) {
                    lines.push(comment.write());
                }
            }
        }
        lines
    }

    /// The value as systemd reads it: each continuing backslash becomes a space, the whole is
    /// stripped of surrounding white space.
    fn logical_value(&self) -> String {
        let joined = format!("{}{}", self.after_equals, self.pieces.join(" "));
        joined.trim_matches([' ', '\t', '\n', '\r']).to_owned()
    }
}

#[derive(Clone, Debug)]
enum Line {
    Trivia(Trivia),
    Assignment(Assignment),
}

#[derive(Clone, Debug)]
struct Section {
    lead: String,
    name: String,
    trail: String,
    lines: Vec<Line>,
}

#[derive(Clone, Debug)]
struct Model {
    preamble: Vec<Trivia>,
    sections: Vec<Section>,
    crlf: bool,
    final_newline: bool,
}

impl Model {
    fn write(&self) -> String {
        let mut lines: Vec<String> = self.preamble.iter().map(Trivia::write).collect();
        for section in &self.sections {
            lines.push(format!(
                "{}[{}]{}",
                section.lead, section.name, section.trail
            ));
            for line in &section.lines {
                match line {
                    Line::Trivia(trivia) => lines.push(trivia.write()),
                    Line::Assignment(assignment) => lines.extend(assignment.write()),
                }
            }
        }
        let eol = if self.crlf { "\r\n" } else { "\n" };
        let mut text = lines.join(eol);
        if self.final_newline && !lines.is_empty() {
            text.push_str(eol);
        }
        text
    }

    /// (section, key, logical value) for every assignment, in file order.
    fn entries(&self) -> Vec<(String, String, String)> {
        self.sections
            .iter()
            .flat_map(|section| {
                section.lines.iter().filter_map(|line| match line {
                    Line::Assignment(a) => {
                        Some((section.name.clone(), a.key.clone(), a.logical_value()))
                    }
                    Line::Trivia(_) => None,
                })
            })
            .collect()
    }
}

fn space() -> impl Strategy<Value = String> {
    "[ \t]{0,2}"
}

fn trivia() -> impl Strategy<Value = Trivia> {
    prop_oneof![
        space().prop_map(Trivia::Blank),
        // Comment text may even end in a backslash: comments never continue.
        (space(), prop_oneof![Just('#'), Just(';')], "[ -~]{0,20}")
            .prop_map(|(lead, mark, text)| Trivia::Comment(lead, mark, text)),
    ]
}

/// A piece of a value: words, quotes, `%%`, `=`, `#`, escaped backslashes; never a lone
/// trailing backslash (that would continue the line).
fn value_piece() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        "[A-Za-z0-9/._:-]{1,8}",
        Just(" ".to_owned()),
        Just("  ".to_owned()),
        Just("\t".to_owned()),
        Just("\"".to_owned()),
        Just("'".to_owned()),
        Just("%%".to_owned()),
        Just("%i".to_owned()),
        Just("=".to_owned()),
        Just("#".to_owned()),
        Just(";".to_owned()),
        Just("[x]".to_owned()),
        Just("\\\\".to_owned()),
        Just("é€".to_owned()),
    ];
    prop::collection::vec(token, 0..6).prop_map(|tokens| tokens.concat())
}

/// A continuation piece must not look like a comment (the parser would skip it).
fn continuation_piece() -> impl Strategy<Value = String> {
    value_piece().prop_filter("not a comment line", |piece| {
        !matches!(
            piece.trim_start_matches([' ', '\t']).chars().next(),
            Some('#' | ';')
        )
    })
}

fn assignment() -> impl Strategy<Value = Assignment> {
    (
        space(),
        "[A-Za-z][A-Za-z0-9_-]{0,12}",
        space(),
        space(),
        value_piece(),
        prop::collection::vec(continuation_piece(), 0..3),
        prop::collection::vec(prop::option::of(trivia_comment()), 0..3),
    )
        .prop_map(
            |(lead, key, before_equals, after_equals, first, rest, comments)| {
                let mut pieces = vec![first];
                pieces.extend(rest);
                Assignment {
                    lead,
                    key,
                    before_equals,
                    after_equals,
                    pieces,
                    comments,
                }
            },
        )
}

fn trivia_comment() -> impl Strategy<Value = Trivia> {
    (space(), prop_oneof![Just('#'), Just(';')], "[ -~]{0,12}")
        .prop_map(|(lead, mark, text)| Trivia::Comment(lead, mark, text))
}

/// A reset (`Key=`) of one of a few list keys, so that resets and repeats meet.
fn reset_or_repeat() -> impl Strategy<Value = Assignment> {
    (
        prop_oneof![Just("Environment"), Just("After"), Just("PublishPort")],
        prop_oneof![Just(String::new()), "[a-z0-9=]{1,6}"],
    )
        .prop_map(|(key, value)| Assignment {
            lead: String::new(),
            key: key.to_owned(),
            before_equals: String::new(),
            after_equals: String::new(),
            pieces: vec![value],
            comments: Vec::new(),
        })
}

fn section() -> impl Strategy<Value = Section> {
    let line = prop_oneof![
        1 => trivia().prop_map(Line::Trivia),
        3 => assignment().prop_map(Line::Assignment),
        2 => reset_or_repeat().prop_map(Line::Assignment),
    ];
    (
        space(),
        prop_oneof![
            Just("Unit".to_owned()),
            Just("Service".to_owned()),
            Just("X-Fleet".to_owned()),
            "[A-Za-z][A-Za-z0-9 ._-]{0,10}",
        ],
        space(),
        prop::collection::vec(line, 0..8),
    )
        .prop_map(|(lead, name, trail, lines)| Section {
            lead,
            name,
            trail,
            lines,
        })
}

fn model() -> impl Strategy<Value = Model> {
    (
        prop::collection::vec(trivia(), 0..3),
        prop::collection::vec(section(), 0..5),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(preamble, sections, crlf, final_newline)| Model {
            preamble,
            sections,
            crlf,
            final_newline,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn well_formed_units_round_trip_and_read_back(model in model()) {
        let text = model.write();
        let (unit, diagnostics) = UnitFile::parse("p.service", &text);
        prop_assert!(diagnostics.is_empty(), "diagnostics {:?} for {:?}", diagnostics.sorted(), text);
        prop_assert_eq!(unit.to_string(), text.clone(), "round trip");

        let names: Vec<&str> = unit.sections().iter().map(|s| s.name()).collect();
        let expected_names: Vec<&str> = model.sections.iter().map(|s| s.name.as_str()).collect();
        prop_assert_eq!(names, expected_names, "section names of {:?}", text);

        let entries: Vec<(String, String, String)> = unit
            .sections()
            .iter()
            .flat_map(|s| {
                s.entries()
                    .map(|e| (s.name().to_owned(), e.key().to_owned(), e.value().to_owned()))
            })
            .collect();
        let expected = model.entries();
        prop_assert_eq!(&entries, &expected, "entries of {:?}", text);

        // Resets: what is in force for each list key is what follows its last `Key=`.
        for (section, key, _) in &expected {
            let all: Vec<&str> = expected
                .iter()
                .filter(|(s, k, _)| s == section && k == key)
                .map(|(_, _, v)| v.as_str())
                .collect();
            let start = all.iter().rposition(|v| v.is_empty()).map_or(0, |i| i + 1);
            let in_force: Vec<&str> = unit
                .entries_after_reset(section, key)
                .iter()
                .map(|e| e.value())
                .collect();
            prop_assert_eq!(in_force, all[start..].to_vec(), "{}/{} in {:?}", section, key, text);
        }
    }

    #[test]
    fn parser_never_panics_and_round_trips_utf8(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let (unit, _) = UnitFile::parse_bytes("p.service", &bytes);
        if let Ok(text) = std::str::from_utf8(&bytes) {
            prop_assert_eq!(unit.to_string(), text);
        }
        let _ = unit.normalized();
    }

    #[test]
    fn unit_check_never_panics(
        name in prop_oneof![
            "\\PC{0,20}",
            "[a-z@%.!-]{0,10}\\.(service|container|socket|timer|mount|bogus)",
        ],
        bytes in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..512),
            model().prop_map(|m| m.write().into_bytes()),
            unitish_text().prop_map(String::into_bytes),
        ],
    ) {
        if let Ok(unit) = Unit::check(name.as_str(), &name, &bytes) {
            let _ = unit.systemd_unit().to_string();
            let _ = unit.hash().short();
        }
    }
}

/// Lines that look like the units people write, including the sections and keys this crate
/// interprets, with values that are sometimes wrong.
fn unitish_text() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        Just("[Unit]".to_owned()),
        Just("[Service]".to_owned()),
        Just("[Container]".to_owned()),
        Just("[X-Fleet]".to_owned()),
        Just("[Install]".to_owned()),
        (
            prop_oneof![
                Just("Image"),
                Just("Exec"),
                Just("Restart"),
                Just("PublishPort"),
                Just("Volume"),
                Just("Memory"),
                Just("CPUs"),
                Just("PidsLimit"),
                Just("StopTimeout"),
                Just("Environment"),
                Just("Name"),
                Just("ReadOnly"),
                Just("EngineArgs"),
                Just("ExecStart"),
                Just("MachineID"),
                Just("MachineOf"),
                Just("MachineMetadata"),
                Just("Conflicts"),
                Just("Global"),
                Just("Replaces"),
            ],
            "[ -~]{0,24}",
        )
            .prop_map(|(key, value)| format!("{key}={value}")),
    ];
    prop::collection::vec(line, 0..16).prop_map(|lines| lines.join("\n"))
}
