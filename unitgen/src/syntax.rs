//! Lossless systemd unit-file syntax.
//!
//! A unit file is a sequence of lines: blank lines, comments (`#` or `;` first), section headers
//! (`[Name]`) and assignments (`Key=Value`). A line whose last unescaped character is `\`
//! continues on the next line; systemd replaces that backslash by a space, skips comment lines
//! inside the continuation and strips white space around key and value. This module reads a file
//! the way systemd 252 does, but keeps every byte: [`UnitFile::to_string`] of a parsed file gives
//! back the input exactly, and every key and value knows the file, line and column it came from.
//!
//! Parsing never fails. What systemd would log and ignore (an assignment outside any section, a
//! malformed section header, a line without `=`) is kept verbatim in the tree and reported as a
//! [`SyntaxError`] diagnostic, so callers decide whether it is fatal (`flotctl verify` says it is).
//!
//! The meaning of a value (quoting, word splitting, `%` specifiers) depends on the key and lives
//! elsewhere: [`crate::words`], [`crate::specifier`].

use std::fmt;
use std::sync::Arc;

use crate::diag::{Diagnostics, Location};

/// What can be wrong with the syntax of a unit file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SyntaxError {
    /// The file is not UTF-8.
    #[error("invalid UTF-8 in unit file")]
    InvalidUtf8,
    /// `Key=Value` before the first section header.
    #[error("assignment \"{key}\" outside of any section")]
    AssignmentOutsideSection {
        /// The key of the stray assignment.
        key: String,
    },
    /// A line starting with `[` that is not a well-formed `[Name]`.
    #[error("malformed section header {line:?}: expected \"[Name]\"")]
    MalformedSectionHeader {
        /// The offending line, trimmed.
        line: String,
    },
    /// A section name with characters systemd refuses (control characters, quotes, brackets).
    #[error("invalid section name {name:?}")]
    InvalidSectionName {
        /// The offending name.
        name: String,
    },
    /// A line that is neither blank, a comment, a header nor an assignment.
    #[error("line {line:?} is not a comment, a section header or a Key=Value assignment")]
    MissingEquals {
        /// The offending line, trimmed.
        line: String,
    },
    /// `=Value` with nothing before the `=`.
    #[error("missing key name before \"=\"")]
    MissingKey,
    /// A key with characters that cannot appear in a key.
    #[error("invalid key name {key:?}")]
    InvalidKey {
        /// The offending key.
        key: String,
    },
}

/// A parsed unit file that remembers every byte of its source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitFile {
    file: Arc<str>,
    /// Lines before the first section header.
    preamble: Vec<Line>,
    sections: Vec<Section>,
}

/// One `[Name]` section and the lines that follow it up to the next header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    name: String,
    /// The header line as written (with its line ending), `None` when built in code.
    raw_header: Option<String>,
    location: Option<Location>,
    lines: Vec<Line>,
}

/// A line (or, for continued assignments, a group of lines) inside a section or the preamble.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Line {
    /// Blank lines and comments, kept as written.
    Trivia(String),
    /// A `Key=Value` assignment.
    Entry(Entry),
    /// A line systemd would ignore with a warning, kept as written.
    Invalid {
        /// The line as written.
        raw: String,
        /// Where it starts.
        location: Location,
    },
}

/// A `Key=Value` assignment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    key: String,
    value: String,
    /// The physical lines as written, `None` when built in code.
    raw: Option<String>,
    key_location: Option<Location>,
    /// Where each physical piece of the value starts: (byte offset in `value`, location).
    value_spans: Vec<(usize, Location)>,
}

impl Entry {
    /// An assignment built in code (not from a file).
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Entry {
        Entry {
            key: key.into(),
            value: value.into(),
            raw: None,
            key_location: None,
            value_spans: Vec::new(),
        }
    }

    /// The key, trimmed.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The logical value: continuations joined, surrounding white space stripped, nothing
    /// unquoted or unescaped.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// True for `Key=` (which resets list-valued settings in systemd).
    pub fn is_reset(&self) -> bool {
        self.value.is_empty()
    }

    /// Where the key starts, if the entry came from a file.
    pub fn key_location(&self) -> Option<&Location> {
        self.key_location.as_ref()
    }

    /// Where the value starts (for an empty value: just after the `=`).
    pub fn value_location(&self) -> Option<&Location> {
        self.value_spans.first().map(|(_, location)| location)
    }

    /// Where byte `offset` of [`Entry::value`] was written, following continuation lines.
    pub fn location_of(&self, offset: usize) -> Option<Location> {
        let (start, at) = self
            .value_spans
            .iter()
            .rev()
            .find(|(start, _)| *start <= offset)?;
        let column_shift = self.value[*start..offset.min(self.value.len())]
            .chars()
            .count();
        let mut location = at.clone();
        location.column += u32::try_from(column_shift).unwrap_or(u32::MAX - location.column);
        Some(location)
    }

    /// The location to report a problem with this entry at: its key, else a placeholder in `file`.
    pub fn report_location(&self, file: &Arc<str>) -> Location {
        self.key_location
            .clone()
            .unwrap_or_else(|| Location::new(file, 0, 0))
    }
}

impl Section {
    /// An empty section built in code.
    pub fn new(name: impl Into<String>) -> Section {
        Section {
            name: name.into(),
            raw_header: None,
            location: None,
            lines: Vec::new(),
        }
    }

    /// The section name, without brackets.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where the header is, if the section came from a file.
    pub fn location(&self) -> Option<&Location> {
        self.location.as_ref()
    }

    /// Every line of the section, trivia included.
    pub fn lines(&self) -> &[Line] {
        &self.lines
    }

    /// The assignments of the section, in order.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.lines.iter().filter_map(|line| match line {
            Line::Entry(entry) => Some(entry),
            _ => None,
        })
    }

    /// Appends `Key=Value`.
    pub fn push(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Section {
        self.lines.push(Line::Entry(Entry::new(key, value)));
        self
    }

    /// Appends an existing entry (keeps its raw text and locations).
    pub fn push_entry(&mut self, entry: Entry) {
        self.lines.push(Line::Entry(entry));
    }

    /// Removes every assignment of `key`.
    pub fn remove(&mut self, key: &str) {
        self.lines
            .retain(|line| !matches!(line, Line::Entry(entry) if entry.key == key));
    }
}

impl UnitFile {
    /// An empty unit file labelled `file`.
    pub fn new(file: impl Into<Arc<str>>) -> UnitFile {
        UnitFile {
            file: file.into(),
            preamble: Vec::new(),
            sections: Vec::new(),
        }
    }

    /// Parses `text` the way systemd does, keeping every byte. `file` labels locations.
    pub fn parse(file: impl Into<Arc<str>>, text: &str) -> (UnitFile, Diagnostics) {
        Parser::new(file.into()).run(text)
    }

    /// Parses bytes: invalid UTF-8 is replaced (and reported at the first bad line).
    pub fn parse_bytes(file: impl Into<Arc<str>>, bytes: &[u8]) -> (UnitFile, Diagnostics) {
        let file = file.into();
        match std::str::from_utf8(bytes) {
            Ok(text) => UnitFile::parse(file, text),
            Err(error) => {
                let line = bytes[..error.valid_up_to()]
                    .iter()
                    .filter(|b| **b == b'\n')
                    .count();
                let text = String::from_utf8_lossy(bytes);
                let (unit, mut diagnostics) = UnitFile::parse(Arc::clone(&file), &text);
                let line = u32::try_from(line + 1).unwrap_or(u32::MAX);
                diagnostics.push(Location::new(&file, line, 1), SyntaxError::InvalidUtf8);
                (unit, diagnostics)
            }
        }
    }

    /// The label given at parse time (usually the path).
    pub fn file(&self) -> &Arc<str> {
        &self.file
    }

    /// Every section in file order (a name may appear more than once; systemd merges them).
    pub fn sections(&self) -> &[Section] {
        &self.sections
    }

    /// Mutable access to the sections.
    pub fn sections_mut(&mut self) -> &mut Vec<Section> {
        &mut self.sections
    }

    /// Lines before the first section header.
    pub fn preamble(&self) -> &[Line] {
        &self.preamble
    }

    /// True when a section called `name` exists.
    pub fn has_section(&self, name: &str) -> bool {
        self.sections.iter().any(|section| section.name == name)
    }

    /// Every assignment of `key` in every section called `section`, in file order.
    pub fn entries<'a, 'k>(
        &'a self,
        section: &'k str,
        key: &'k str,
    ) -> impl Iterator<Item = &'a Entry> + use<'a, 'k> {
        self.sections
            .iter()
            .filter(move |s| s.name == section)
            .flat_map(Section::entries)
            .filter(move |entry| entry.key == key)
    }

    /// The assignments of a list-valued `key` that are in force: those after the last `Key=`.
    pub fn entries_after_reset(&self, section: &str, key: &str) -> Vec<&Entry> {
        let all: Vec<&Entry> = self.entries(section, key).collect();
        let start = all
            .iter()
            .rposition(|entry| entry.is_reset())
            .map_or(0, |i| i + 1);
        all[start..].to_vec()
    }

    /// The last assignment of a single-valued `key` (systemd: the last one wins).
    pub fn last(&self, section: &str, key: &str) -> Option<&Entry> {
        self.entries(section, key).last()
    }

    /// The first section called `name`, created at the end if missing.
    pub fn section_mut(&mut self, name: &str) -> &mut Section {
        let index = match self.sections.iter().position(|s| s.name == name) {
            Some(index) => index,
            None => {
                self.sections.push(Section::new(name));
                self.sections.len() - 1
            }
        };
        &mut self.sections[index]
    }

    /// Removes every section called `name` and returns them.
    pub fn take_sections(&mut self, name: &str) -> Vec<Section> {
        let (taken, kept) = std::mem::take(&mut self.sections)
            .into_iter()
            .partition(|s| s.name == name);
        self.sections = kept;
        taken
    }

    /// Appends a section.
    pub fn push_section(&mut self, section: Section) {
        self.sections.push(section);
    }

    /// The normalized form: sections merged by name in order of first appearance, one `Key=Value`
    /// line per assignment, no comments, a blank line between sections. This is the form the unit
    /// is stored and hashed in (go-systemd's `Serialize`, as fleet does).
    pub fn normalized(&self) -> String {
        let mut names: Vec<&str> = Vec::new();
        for section in &self.sections {
            if !names.contains(&section.name.as_str()) {
                names.push(&section.name);
            }
        }
        let mut out = String::new();
        for (index, name) in names.iter().enumerate() {
            if index > 0 {
                out.push('\n');
            }
            out.push('[');
            out.push_str(name);
            out.push_str("]\n");
            for section in self.sections.iter().filter(|s| s.name == *name) {
                for entry in section.entries() {
                    out.push_str(&entry.key);
                    out.push('=');
                    out.push_str(&entry.value);
                    out.push('\n');
                }
            }
        }
        out
    }
}

impl fmt::Display for UnitFile {
    /// Writes the file back: parsed parts byte-for-byte, parts built in code as `Key=Value` lines.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = Writer { f, ends_line: true };
        for line in &self.preamble {
            out.line(line)?;
        }
        for section in &self.sections {
            match &section.raw_header {
                Some(raw) => out.raw(raw)?,
                None => out.generated(&format!("[{}]", section.name))?,
            }
            for line in &section.lines {
                out.line(line)?;
            }
        }
        Ok(())
    }
}

/// Serializer state: whether what was written so far ends a line.
struct Writer<'a, 'b> {
    f: &'a mut fmt::Formatter<'b>,
    ends_line: bool,
}

impl Writer<'_, '_> {
    fn raw(&mut self, raw: &str) -> fmt::Result {
        if !raw.is_empty() {
            self.ends_line = raw.ends_with('\n');
        }
        self.f.write_str(raw)
    }

    fn generated(&mut self, text: &str) -> fmt::Result {
        if !self.ends_line {
            self.f.write_str("\n")?;
        }
        self.ends_line = true;
        self.f.write_str(text)?;
        self.f.write_str("\n")
    }

    fn line(&mut self, line: &Line) -> fmt::Result {
        match line {
            Line::Trivia(raw) | Line::Invalid { raw, .. } => self.raw(raw),
            Line::Entry(entry) => match &entry.raw {
                Some(raw) => self.raw(raw),
                None => self.generated(&format!("{}={}", entry.key, entry.value)),
            },
        }
    }
}

/// systemd's white space for unit files (`WHITESPACE`: space, tab, newline, carriage return).
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

fn is_comment(line: &str) -> bool {
    matches!(
        line.trim_start_matches(is_space).chars().next(),
        Some('#' | ';')
    )
}

/// True when `text` ends in a backslash that is not itself escaped.
fn ends_in_continuation(text: &str) -> bool {
    text.chars().rev().take_while(|c| *c == '\\').count() % 2 == 1
}

/// A physical line: its text without the line ending, the line ending, its 1-based number.
struct Physical<'a> {
    text: &'a str,
    raw: &'a str,
    number: u32,
}

fn physical_lines(text: &str) -> impl Iterator<Item = Physical<'_>> {
    text.split_inclusive('\n').zip(1u32..).map(|(raw, number)| {
        let text = raw.strip_suffix('\n').unwrap_or(raw);
        let text = text.strip_suffix('\r').unwrap_or(text);
        Physical { text, raw, number }
    })
}

fn column_of(text: &str, byte: usize) -> u32 {
    u32::try_from(text[..byte].chars().count() + 1).unwrap_or(u32::MAX)
}

struct Parser {
    file: Arc<str>,
    unit: UnitFile,
    diagnostics: Diagnostics,
}

/// An assignment whose lines are being gathered.
struct Pending {
    raw: String,
    pieces: Vec<Piece>,
}

/// One physical line's part of a logical line.
struct Piece {
    /// What it adds to the logical line (a continuing backslash already replaced by a space).
    text: String,
    /// Its 1-based line number.
    number: u32,
    /// The physical line as written, without its line ending.
    written: String,
}

impl Piece {
    fn new(physical: &Physical<'_>) -> Piece {
        Piece {
            text: physical.text.to_owned(),
            number: physical.number,
            written: physical.text.to_owned(),
        }
    }
}

impl Parser {
    fn new(file: Arc<str>) -> Parser {
        Parser {
            unit: UnitFile::new(Arc::clone(&file)),
            file,
            diagnostics: Diagnostics::default(),
        }
    }

    fn run(mut self, text: &str) -> (UnitFile, Diagnostics) {
        let mut pending: Option<Pending> = None;
        for physical in physical_lines(text) {
            if let Some(gathering) = pending.as_mut() {
                gathering.raw.push_str(physical.raw);
                if is_comment(physical.text) {
                    continue;
                }
                gathering.pieces.push(Piece::new(&physical));
            } else if physical.text.trim_matches(is_space).is_empty() || is_comment(physical.text) {
                self.push_line(Line::Trivia(physical.raw.to_owned()));
                continue;
            } else {
                pending = Some(Pending {
                    raw: physical.raw.to_owned(),
                    pieces: vec![Piece::new(&physical)],
                });
            }
            let logical: String = pending
                .as_ref()
                .map(|p| p.pieces.iter().map(|piece| piece.text.as_str()).collect())
                .unwrap_or_default();
            if !ends_in_continuation(&logical) {
                if let Some(done) = pending.take() {
                    self.finish(done);
                }
            } else if let Some(gathering) = pending.as_mut() {
                // systemd replaces the continuing backslash with a space.
                if let Some(last) = gathering.pieces.last_mut() {
                    last.text.pop();
                    last.text.push(' ');
                }
            }
        }
        if let Some(done) = pending.take() {
            self.finish(done);
        }
        (self.unit, self.diagnostics)
    }

    fn push_line(&mut self, line: Line) {
        match self.unit.sections.last_mut() {
            Some(section) => section.lines.push(line),
            None => self.unit.preamble.push(line),
        }
    }

    fn location(&self, line: u32, column: u32) -> Location {
        Location::new(&self.file, line, column)
    }

    /// Interprets one logical line (possibly several physical lines).
    fn finish(&mut self, pending: Pending) {
        let first = &pending.pieces[0];
        let first_text = first.written.as_str();
        let first_number = first.number;
        let lead = first_text.len() - first_text.trim_start_matches(is_space).len();
        let trimmed_first = first_text.trim_matches(is_space);

        if trimmed_first.starts_with('[') && pending.pieces.len() == 1 {
            self.section_header(&pending.raw, trimmed_first, first_number, lead);
            return;
        }

        let logical: String = pending
            .pieces
            .iter()
            .map(|piece| piece.text.as_str())
            .collect();
        let start = self.location(first_number, column_of(first_text, lead));
        let Some(equals) = logical.find('=') else {
            let line = logical.trim_matches(is_space).to_owned();
            self.diagnostics
                .push(start.clone(), SyntaxError::MissingEquals { line });
            self.push_line(Line::Invalid {
                raw: pending.raw,
                location: start,
            });
            return;
        };
        let key = logical[..equals].trim_matches(is_space).to_owned();
        if key.is_empty() {
            self.diagnostics
                .push(start.clone(), SyntaxError::MissingKey);
            self.push_line(Line::Invalid {
                raw: pending.raw,
                location: start,
            });
            return;
        }
        if key.chars().any(|c| c.is_control() || c == '[' || c == ']') {
            self.diagnostics
                .push(start.clone(), SyntaxError::InvalidKey { key });
            self.push_line(Line::Invalid {
                raw: pending.raw,
                location: start,
            });
            return;
        }
        if self.unit.sections.is_empty() {
            self.diagnostics.push(
                start.clone(),
                SyntaxError::AssignmentOutsideSection { key: key.clone() },
            );
        }

        let raw_value = &logical[equals + 1..];
        let value_lead = raw_value.len() - raw_value.trim_start_matches(is_space).len();
        let value = raw_value.trim_matches(is_space).to_owned();
        let value_start = equals + 1 + value_lead;
        let value_spans = self.value_spans(&pending, value_start, value.len());

        self.push_line(Line::Entry(Entry {
            key,
            value,
            raw: Some(pending.raw),
            key_location: Some(start),
            value_spans,
        }));
    }

    /// Maps the value (bytes `value_start..value_start+len` of the logical line) back onto the
    /// physical lines it was written on.
    fn value_spans(
        &self,
        pending: &Pending,
        value_start: usize,
        len: usize,
    ) -> Vec<(usize, Location)> {
        let mut spans = Vec::new();
        let mut logical_offset = 0;
        for piece in &pending.pieces {
            let piece_end = logical_offset + piece.text.len();
            let begins = value_start.max(logical_offset);
            if begins < piece_end || (spans.is_empty() && begins == piece_end) {
                let in_piece = begins - logical_offset;
                let column = column_of(&piece.written, in_piece.min(piece.written.len()));
                let offset_in_value = begins - value_start;
                if offset_in_value <= len {
                    spans.push((offset_in_value, self.location(piece.number, column)));
                }
            }
            logical_offset = piece_end;
        }
        if spans.is_empty() {
            let first = &pending.pieces[0];
            spans.push((
                0,
                self.location(first.number, column_of(&first.written, first.written.len())),
            ));
        }
        spans
    }

    fn section_header(&mut self, raw: &str, trimmed: &str, number: u32, lead: usize) {
        let location = self.location(number, u32::try_from(lead + 1).unwrap_or(u32::MAX));
        let name = trimmed
            .strip_prefix('[')
            .and_then(|rest| rest.strip_suffix(']'));
        let valid = name.filter(|name| {
            !name.is_empty() && !name.contains(['[', ']']) && !name.chars().any(char::is_control)
        });
        match (name, valid) {
            (Some(name), Some(_)) => self.unit.sections.push(Section {
                name: name.to_owned(),
                raw_header: Some(raw.to_owned()),
                location: Some(location),
                lines: Vec::new(),
            }),
            (Some(name), None) if trimmed.ends_with(']') && !name.is_empty() => {
                // Keep the lines that follow attached to *some* section so they are not
                // misreported as being outside of any section.
                let name = name.to_owned();
                self.diagnostics.push(
                    location.clone(),
                    SyntaxError::InvalidSectionName { name: name.clone() },
                );
                self.unit.sections.push(Section {
                    name,
                    raw_header: Some(raw.to_owned()),
                    location: Some(location),
                    lines: Vec::new(),
                });
            }
            _ => {
                let line = trimmed.to_owned();
                self.diagnostics.push(
                    location.clone(),
                    SyntaxError::MalformedSectionHeader { line },
                );
                self.push_line(Line::Invalid {
                    raw: raw.to_owned(),
                    location,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (UnitFile, Vec<String>) {
        let (unit, diagnostics) = UnitFile::parse("t.service", text);
        let messages = diagnostics
            .sorted()
            .iter()
            .map(ToString::to_string)
            .collect();
        (unit, messages)
    }

    fn values(unit: &UnitFile, section: &str, key: &str) -> Vec<String> {
        unit.entries(section, key)
            .map(|e| e.value().to_owned())
            .collect()
    }

    #[test]
    fn round_trips_byte_for_byte() {
        let inputs = [
            "",
            "\n\n",
            "[Unit]\nDescription=x\n",
            "# lead\n[Unit]\n  Description = spaced out  \n\n; semi\n[Service]\nExecStart=/bin/a \\\n  b\n",
            "[Unit]\r\nDescription=crlf\r\n",
            "[Unit]\nDescription=no final newline",
            "[Unit]\nA=1 \\\n# comment inside continuation\n  2\nB=\\\n",
            "junk line\n[ broken\n=nokey\n[Unit]\nkey only\n",
        ];
        for input in inputs {
            let (unit, _) = parse(input);
            assert_eq!(unit.to_string(), input, "round trip of {input:?}");
        }
    }

    #[test]
    fn keys_values_and_positions() {
        let (unit, diagnostics) = parse("[Unit]\n  Description =  hello world \nAfter=a.service\n");
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        let entry = unit.last("Unit", "Description").expect("description");
        assert_eq!(entry.value(), "hello world");
        let key = entry.key_location().expect("key location");
        assert_eq!((key.line, key.column), (2, 3));
        let value = entry.value_location().expect("value location");
        assert_eq!((value.line, value.column), (2, 18));
        assert_eq!(values(&unit, "Unit", "After"), ["a.service"]);
    }

    #[test]
    fn continuation_joins_with_a_space_and_skips_comments() {
        let (unit, diagnostics) = parse(
            "[Service]\nExecStart=/bin/echo \\\n# not part of it\n    two \\\n; nor this\nthree\n",
        );
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        // The written space and the replaced backslash both stay, as in systemd.
        let joined = "/bin/echo      two  three";
        assert_eq!(values(&unit, "Service", "ExecStart"), [joined]);
        let entry = unit.last("Service", "ExecStart").expect("exec");
        let at = entry.location_of(joined.find("three").expect("three"));
        assert_eq!(at.map(|l| (l.line, l.column)), Some((6, 1)));
        let at = entry.location_of(joined.find("two").expect("two"));
        assert_eq!(at.map(|l| (l.line, l.column)), Some((4, 5)));
    }

    #[test]
    fn escaped_backslash_does_not_continue() {
        let (unit, _) = parse("[Service]\nA=x\\\\\nB=y\n");
        assert_eq!(values(&unit, "Service", "A"), ["x\\\\"]);
        assert_eq!(values(&unit, "Service", "B"), ["y"]);
    }

    #[test]
    fn continuation_at_end_of_file_keeps_what_was_read() {
        let (unit, diagnostics) = parse("[Service]\nA=x \\");
        assert!(diagnostics.is_empty());
        assert_eq!(values(&unit, "Service", "A"), ["x"]);
    }

    #[test]
    fn repeated_keys_and_resets() {
        let (unit, _) = parse("[Service]\nEnvironment=A=1\nEnvironment=\nEnvironment=B=2\n[Service]\nEnvironment=C=3\n");
        assert_eq!(
            values(&unit, "Service", "Environment"),
            ["A=1", "", "B=2", "C=3"]
        );
        let in_force: Vec<&str> = unit
            .entries_after_reset("Service", "Environment")
            .iter()
            .map(|e| e.value())
            .collect();
        assert_eq!(in_force, ["B=2", "C=3"]);
    }

    #[test]
    fn problems_systemd_would_ignore_are_reported_with_positions() {
        let (_, messages) = parse("Stray=1\n[Unit]\nno equals here\n=value\n[Bro ken\n[a]b]\n");
        assert_eq!(
            messages,
            [
                "t.service:1:1: error: assignment \"Stray\" outside of any section",
                "t.service:3:1: error: line \"no equals here\" is not a comment, a section header or a Key=Value assignment",
                "t.service:4:1: error: missing key name before \"=\"",
                "t.service:5:1: error: malformed section header \"[Bro ken\": expected \"[Name]\"",
                "t.service:6:1: error: invalid section name \"a]b\"",
            ]
        );
    }

    #[test]
    fn normalized_form_merges_sections_and_drops_trivia() {
        let (unit, _) = parse("# c\n[Unit]\nA=1\n\n[Service]\nB=x \\\n y\n[Unit]\nC=3\n");
        assert_eq!(
            unit.normalized(),
            "[Unit]\nA=1\nC=3\n\n[Service]\nB=x   y\n"
        );
    }

    #[test]
    fn built_in_code_serializes_as_key_value_lines() {
        let (mut unit, _) = parse("[Unit]\nDescription=x");
        unit.section_mut("Service").push("ExecStart", "/bin/true");
        unit.section_mut("Unit").push("After", "b.service");
        assert_eq!(
            unit.to_string(),
            "[Unit]\nDescription=x\nAfter=b.service\n[Service]\nExecStart=/bin/true\n"
        );
    }

    #[test]
    fn invalid_utf8_is_reported_on_its_line() {
        let (_, diagnostics) = UnitFile::parse_bytes("t.service", b"[Unit]\nA=\xff\n");
        let messages: Vec<String> = diagnostics
            .sorted()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            messages,
            ["t.service:2:1: error: invalid UTF-8 in unit file"]
        );
    }
}
