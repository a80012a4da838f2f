//! A whole unit: its name, its parsed file, its constraints, checked together.
//!
//! [`Unit::check`] is what `flotctl verify`, `flotilla-generator` and (later) the agent's API run
//! on every unit they accept. It is stricter than systemd on purpose: what systemd would log and
//! ignore (a key outside any section, a malformed header, an unknown section, a bad specifier)
//! is an error here, so an operator learns about it before the unit reaches a machine.
//!
//! A `.container` file (the generator's input) is checked as the service it becomes:
//! `web.container` is the unit `web.service`.

use std::fmt;
use std::sync::Arc;

use sha1::{Digest, Sha1};

use crate::container;
use crate::diag::{Diagnostics, Location};
use crate::fleet::{self, Constraints};
use crate::name::{NameError, UnitName};
use crate::specifier;
use crate::syntax::UnitFile;

/// The file suffix of declarative container units.
pub const CONTAINER_SUFFIX: &str = ".container";

/// Sections every unit may have.
const COMMON_SECTIONS: &[&str] = &["Unit", "Install"];

/// The type-specific section systemd knows for each unit type.
const TYPE_SECTIONS: &[(&str, &str)] = &[
    ("service", "Service"),
    ("socket", "Socket"),
    ("timer", "Timer"),
    ("path", "Path"),
    ("mount", "Mount"),
    ("automount", "Automount"),
    ("swap", "Swap"),
    ("slice", "Slice"),
    ("scope", "Scope"),
];

/// A unit that passed every check.
#[derive(Clone, Debug)]
pub struct Unit {
    name: UnitName,
    file: UnitFile,
    constraints: Constraints,
    /// What systemd loads: `file` itself, or the service its `[Container]` expands into.
    systemd: UnitFile,
}

impl Unit {
    /// Parses and checks `text`, labelled `file` in diagnostics, as the unit called `name`
    /// (a unit name such as `web.service`, or a generator input such as `web.container`).
    pub fn check(file: impl Into<Arc<str>>, name: &str, text: &[u8]) -> Result<Unit, Diagnostics> {
        let file = file.into();
        let (parsed, mut diagnostics) = UnitFile::parse_bytes(Arc::clone(&file), text);
        let name = match unit_name(name) {
            Ok(name) => name,
            Err(error) => {
                diagnostics.push(Location::new(&file, 1, 1), error);
                return Err(diagnostics);
            }
        };
        check_sections(&parsed, &name, &mut diagnostics);
        check_specifiers(&parsed, &mut diagnostics);
        let (constraints, fleet_diagnostics) = fleet::constraints(&parsed, &name);
        diagnostics.extend(fleet_diagnostics);
        let systemd = if container::is_container(&parsed) {
            container::generate(&parsed, &name).map_err(|container_diagnostics| {
                diagnostics.extend(container_diagnostics);
            })
        } else {
            Ok(parsed.clone())
        };
        match systemd {
            Ok(systemd) if diagnostics.is_empty() => Ok(Unit {
                name,
                file: parsed,
                constraints,
                systemd,
            }),
            _ => Err(diagnostics),
        }
    }

    /// The unit's name (for a `.container` input, the service it becomes).
    pub fn name(&self) -> &UnitName {
        &self.name
    }

    /// The parsed file, exactly as written.
    pub fn file(&self) -> &UnitFile {
        &self.file
    }

    /// Where the unit may run.
    pub fn constraints(&self) -> &Constraints {
        &self.constraints
    }

    /// The content hash of the normalized unit.
    pub fn hash(&self) -> ContentHash {
        ContentHash::of(&self.file)
    }

    /// The unit systemd loads: `[Container]` expanded into a service, otherwise the file as is.
    pub fn systemd_unit(&self) -> &UnitFile {
        &self.systemd
    }
}

/// The unit name a file stands for: `x.container` stands for `x.service`.
fn unit_name(name: &str) -> Result<UnitName, NameError> {
    match name.strip_suffix(CONTAINER_SUFFIX) {
        Some(stem) => UnitName::parse(&format!("{stem}.service")),
        None => UnitName::parse(name),
    }
}

/// Which sections a unit of this type may have.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SectionError {
    /// A section systemd does not know for this unit type and that is not an `X-` extension.
    #[error("unknown section [{section}] in a .{unit_type} unit{hint}")]
    Unknown {
        /// The section name.
        section: String,
        /// The unit type.
        unit_type: String,
        /// Advice, starting with "; ".
        hint: String,
    },
}

fn check_sections(unit: &UnitFile, name: &UnitName, diagnostics: &mut Diagnostics) {
    let own = TYPE_SECTIONS
        .iter()
        .find(|(t, _)| *t == name.unit_type())
        .map(|(_, s)| *s);
    for section in unit.sections() {
        let section_name = section.name();
        let known = COMMON_SECTIONS.contains(&section_name)
            || Some(section_name) == own
            || section_name == fleet::SECTION
            || (section_name == container::SECTION && name.unit_type() == "service");
        let case_slip = [fleet::SECTION, container::SECTION]
            .into_iter()
            .chain(COMMON_SECTIONS.iter().copied())
            .chain(own)
            .find(|wanted| wanted.eq_ignore_ascii_case(section_name) && *wanted != section_name);
        if known || (section_name.starts_with("X-") && case_slip.is_none()) {
            continue;
        }
        let hint = match case_slip {
            Some(wanted) => {
                format!("; did you mean [{wanted}]? (section names are case-sensitive)")
            }
            None if section_name == container::SECTION => {
                "; [Container] is only valid in a .service or .container unit".to_owned()
            }
            None => String::new(),
        };
        let error = SectionError::Unknown {
            section: section_name.to_owned(),
            unit_type: name.unit_type().to_owned(),
            hint,
        };
        let location = section
            .location()
            .cloned()
            .unwrap_or_else(|| Location::new(unit.file(), 1, 1));
        diagnostics.push(location, error);
    }
}

/// systemd resolves `%` specifiers in the sections it reads; `X-` sections are ours
/// (`[X-Fleet]` has fleet's own substitution, `[Container]` is checked by [`container`]).
fn check_specifiers(unit: &UnitFile, diagnostics: &mut Diagnostics) {
    let sections = unit
        .sections()
        .iter()
        .filter(|s| !s.name().starts_with("X-") && s.name() != container::SECTION);
    for entry in sections.flat_map(|s| s.entries()) {
        if let Err(error) = specifier::check(entry.value()) {
            let location = entry
                .location_of(error.column())
                .unwrap_or_else(|| entry.report_location(unit.file()));
            diagnostics.push(location, error);
        }
    }
}

/// The identity of a unit's content: SHA-1 of its normalized form, as fleet computes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentHash([u8; 20]);

impl ContentHash {
    /// The hash of `unit`'s normalized form ([`UnitFile::normalized`]): comments, blank lines and
    /// layout do not change it; any key, value, or section order does.
    pub fn of(unit: &UnitFile) -> ContentHash {
        ContentHash(Sha1::digest(unit.normalized().as_bytes()).into())
    }

    /// The first 7 hex digits, as `flotctl list-unit-files` shows them.
    pub fn short(&self) -> String {
        self.to_string()[..7].to_owned()
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(name: &str, text: &str) -> Vec<String> {
        match Unit::check(name, name, text.as_bytes()) {
            Ok(_) => Vec::new(),
            Err(d) => d.sorted().iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn hash_ignores_layout_but_not_content() {
        let a = Unit::check(
            "a",
            "a.service",
            b"# comment\n[Unit]\nDescription=x\n\n[Service]\nExecStart=/bin/true\n",
        )
        .expect("valid");
        let b = Unit::check(
            "b",
            "a.service",
            b"[Unit]\n  Description = x\n[Service]\nExecStart=/bin/true",
        )
        .expect("valid");
        let c = Unit::check(
            "c",
            "a.service",
            b"[Unit]\nDescription=y\n[Service]\nExecStart=/bin/true\n",
        )
        .expect("valid");
        assert_eq!(a.hash(), b.hash());
        assert_ne!(a.hash(), c.hash());
        // SHA-1 (checked with Python's hashlib) of "[Unit]\nDescription=x\n\n[Service]\nExecStart=/bin/true\n", as fleet computes it.
        assert_eq!(
            a.hash().to_string(),
            "7ff43b741fbdb60185c33324e6179bb18ec06f91"
        );
        assert_eq!(a.hash().short(), "7ff43b7");
    }

    #[test]
    fn unknown_and_misspelled_sections() {
        assert_eq!(
            errors("a.service", "[Unit]\n[Servcie]\nA=1\n[X-fleet]\nMachineID=1\n[X-Mine]\nZ=1\n"),
            [
                "a.service:2:1: error: unknown section [Servcie] in a .service unit",
                "a.service:4:1: error: unknown section [X-fleet] in a .service unit; did you mean [X-Fleet]? (section names are case-sensitive)",
            ]
        );
        assert_eq!(
            errors("a.socket", "[Container]\nImage=x\n"),
            ["a.socket:1:1: error: unknown section [Container] in a .socket unit; [Container] is only valid in a .service or .container unit"]
        );
    }

    #[test]
    fn names_and_specifiers() {
        assert_eq!(
            errors("a.bogus", "[Unit]\n"),
            ["a.bogus:1:1: error: invalid unit type: \"bogus\""]
        );
        assert_eq!(
            errors("a.service", "[Service]\nExecStart=/bin/echo %z\n"),
            ["a.service:2:21: error: unknown specifier \"%z\""]
        );
        assert!(errors("a.service", "[X-Fleet]\nMachineOf=100%.service\n").is_empty());
    }

    #[test]
    fn container_files_are_checked_as_their_service() {
        let unit = Unit::check(
            "web.container",
            "web.container",
            b"[Container]\nImage=nginx\n",
        )
        .expect("valid");
        assert_eq!(unit.name().as_str(), "web.service");
        assert!(unit
            .systemd_unit()
            .to_string()
            .contains("ExecStart=/usr/bin/flotilla run --name web "));
    }
}
