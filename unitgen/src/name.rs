//! Unit names: validation, templates and instances, and fleetctl's name mangling.
//!
//! A unit name has the form `prefix.type` or `prefix@instance.type`:
//!
//! - the *type* (suffix) is everything after the **last** `.` and must be one of
//!   [`UNIT_TYPES`];
//! - a name containing `@` is a *template* (`foo@.service`, empty instance) or an
//!   *instance* (`foo@bar.service`) and its type must be one of
//!   [`TEMPLATE_UNIT_TYPES`];
//! - the *prefix* is everything before the **first** `@` (or the whole name without
//!   its type when there is no `@`), and the *instance* is everything between that
//!   `@` and the last `.`.
//!
//! Validation follows fleet's `ValidateName` (`api/units.go`) rule for rule, and the
//! [`NameError`] messages are fleet's exact strings: clients match on them, so they
//! are a compatibility contract and must not be reworded.
//!
//! One deliberate difference from fleet: fleet has two type lists, the API's and a
//! shorter one (`unit.RecognizedUnitType`) used by fleetctl's name mangling and by the
//! agent when it lists its unit directory. A unit the API accepted as `foo.target` was
//! therefore never seen as "current" by the agent. flotilla uses [`UNIT_TYPES`]
//! everywhere, [`mangle`] included.

use std::fmt;
use std::str::FromStr;

/// Maximum length of a unit name, in bytes (fleet and systemd: 256).
pub const MAX_NAME_LEN: usize = 256;

/// Every unit type (name suffix, without the dot) a unit may have.
///
/// This is fleet's API list. flotilla uses it everywhere: name validation,
/// [`mangle`], and the agent's view of its unit directory.
pub const UNIT_TYPES: &[&str] = &[
    "automount",
    "busname",
    "device",
    "mount",
    "path",
    "scope",
    "service",
    "slice",
    "snapshot",
    "socket",
    "swap",
    "target",
    "timer",
];

/// The unit types that may be templated: any name containing `@` must use one.
pub const TEMPLATE_UNIT_TYPES: &[&str] = &["path", "service", "socket", "target", "timer"];

/// Why a string is not a valid unit name, or a template could not be instantiated.
///
/// The first eight messages are fleet's exact strings (a compatibility contract);
/// `invalid unit type` and `invalid character` quote their argument the way Go's
/// `%q` does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name is the empty string.
    #[error("unit name cannot be empty")]
    Empty,
    /// The name is longer than [`MAX_NAME_LEN`] bytes.
    #[error("unit name exceeds maximum length ({MAX_NAME_LEN})")]
    TooLong {
        /// Length of the rejected name, in bytes.
        len: usize,
    },
    /// The name has no `.`, so it has no type.
    #[error("unit name must contain \".\"")]
    NoDot,
    /// The name ends in `.`, so its type is empty.
    #[error("unit name cannot end in \".\"")]
    EndsInDot,
    /// The type is not one of [`UNIT_TYPES`].
    #[error("invalid unit type: {}", go_quote_str(.unit_type))]
    InvalidType {
        /// The rejected type, everything after the last `.`.
        unit_type: String,
    },
    /// The name contains `@` but its type is not one of [`TEMPLATE_UNIT_TYPES`].
    #[error("invalid unit type for template: {}", go_quote_str(.unit_type))]
    InvalidTemplateType {
        /// The rejected type, everything after the last `.`.
        unit_type: String,
    },
    /// A character before the last `.` is outside `[A-Za-z0-9:_.@\-\\]`.
    #[error("invalid character {} in unit name", go_quote_char(*.character))]
    InvalidCharacter {
        /// The first offending character.
        character: char,
        /// Its byte offset in the name.
        offset: usize,
    },
    /// The name starts with `@` (empty prefix).
    #[error("unit name cannot start in \"@\"")]
    StartsWithAt,
    /// [`UnitName::instantiate`] was called on a name that is not a template.
    #[error("unit {} is not a template (expected a name like \"foo@.service\")", go_quote_str(.name))]
    NotATemplate {
        /// The name that was asked to instantiate.
        name: String,
    },
    /// [`UnitName::instantiate`] was given an empty instance.
    #[error("instance name for template {} cannot be empty", go_quote_str(.template))]
    EmptyInstance {
        /// The template that was asked to instantiate.
        template: String,
    },
}

/// A valid unit name, such as `web.service`, `web@.service` or `web@8080.service`.
///
/// Construct one with [`UnitName::parse`] (or [`str::parse`]); every accessor borrows
/// from the stored name. Ordering, equality and hashing are those of the full name.
///
/// ```
/// use unitgen::name::UnitName;
///
/// let unit = UnitName::parse("web@8080.service").unwrap();
/// assert_eq!(unit.prefix(), "web");
/// assert_eq!(unit.instance(), Some("8080"));
/// assert_eq!(unit.template_name().unwrap().as_str(), "web@.service");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UnitName {
    // `name` comes first so that the derived `Ord` is the order of the names; the
    // indices are functions of `name`, so they never change equality or ordering.
    /// The full name.
    name: String,
    /// Byte index of the first `@`, if any (always before `dot`).
    at: Option<usize>,
    /// Byte index of the last `.`.
    dot: usize,
}

impl UnitName {
    /// Validates `name` with fleet's rules and returns the parsed name.
    ///
    /// Checks run in this order and the first failure is returned: empty, length,
    /// contains `.`, ends in `.`, type, template type, characters, starts with `@`.
    /// fleet's `ValidateName` fixes the order of all but the template-type check;
    /// flotilla runs that one right after the type check because both are about the
    /// suffix, so `@x.mount` reports the bad suffix before the missing prefix.
    pub fn parse(name: &str) -> Result<Self, NameError> {
        if name.is_empty() {
            return Err(NameError::Empty);
        }
        // Go's len(): bytes, not characters.
        if name.len() > MAX_NAME_LEN {
            return Err(NameError::TooLong { len: name.len() });
        }
        let dot = name.rfind('.').ok_or(NameError::NoDot)?;
        if dot == name.len() - 1 {
            return Err(NameError::EndsInDot);
        }
        let unit_type = &name[dot + 1..];
        if !UNIT_TYPES.contains(&unit_type) {
            return Err(NameError::InvalidType {
                unit_type: unit_type.to_owned(),
            });
        }
        // No valid type contains '@', so any '@' lies before `dot`.
        let at = name.find('@');
        if at.is_some() && !TEMPLATE_UNIT_TYPES.contains(&unit_type) {
            return Err(NameError::InvalidTemplateType {
                unit_type: unit_type.to_owned(),
            });
        }
        if let Some((offset, character)) = name[..dot]
            .char_indices()
            .find(|&(_, c)| !is_valid_name_char(c))
        {
            return Err(NameError::InvalidCharacter { character, offset });
        }
        if at == Some(0) {
            return Err(NameError::StartsWithAt);
        }
        Ok(Self {
            name: name.to_owned(),
            at,
            dot,
        })
    }

    /// The full name, e.g. `foo@bar.service` (systemd's `%n`).
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// The type: the suffix after the last `.`, without the dot, e.g. `service`.
    pub fn unit_type(&self) -> &str {
        &self.name[self.dot + 1..]
    }

    /// The name without its `.type` suffix, e.g. `foo@bar` (systemd's `%N`).
    pub fn without_suffix(&self) -> &str {
        &self.name[..self.dot]
    }

    /// The part before the first `@`, or the whole name without its suffix when there
    /// is no `@`, e.g. `foo` for `foo@bar.service` and `foo.bar` for `foo.bar.service`
    /// (systemd's `%p`).
    pub fn prefix(&self) -> &str {
        &self.name[..self.at.unwrap_or(self.dot)]
    }

    /// The instance, between the first `@` and the last `.`, e.g. `bar` for
    /// `foo@bar.service`.
    ///
    /// `None` for plain names and for templates: never `Some("")`.
    pub fn instance(&self) -> Option<&str> {
        let at = self.at?;
        Some(&self.name[at + 1..self.dot]).filter(|instance| !instance.is_empty())
    }

    /// Whether this is a template: it has an `@` and an empty instance (`foo@.service`).
    pub fn is_template(&self) -> bool {
        self.at.is_some_and(|at| at + 1 == self.dot)
    }

    /// Whether this is an instance of a template: it has an `@` and a non-empty
    /// instance (`foo@bar.service`).
    pub fn is_instance(&self) -> bool {
        self.at.is_some_and(|at| at + 1 < self.dot)
    }

    /// For an instance, the template it comes from (`foo@.service` for
    /// `foo@bar.service`); `None` for templates and plain names.
    pub fn template_name(&self) -> Option<Self> {
        if !self.is_instance() {
            return None;
        }
        let at = self.at?;
        // Valid by construction: a prefix and a type already accepted, so no parse.
        let name = format!("{}@.{}", self.prefix(), self.unit_type());
        Some(Self {
            name,
            at: Some(at),
            dot: at + 1,
        })
    }

    /// Instantiates a template: `foo@.service` with `bar` gives `foo@bar.service`.
    ///
    /// The result is validated like any name, so an instance with characters outside
    /// the allowed set, or one that makes the name too long, is rejected with the
    /// corresponding fleet error.
    pub fn instantiate(&self, instance: &str) -> Result<Self, NameError> {
        if !self.is_template() {
            return Err(NameError::NotATemplate {
                name: self.name.clone(),
            });
        }
        if instance.is_empty() {
            return Err(NameError::EmptyInstance {
                template: self.name.clone(),
            });
        }
        Self::parse(&format!(
            "{}@{instance}.{}",
            self.prefix(),
            self.unit_type()
        ))
    }
}

impl FromStr for UnitName {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for UnitName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl AsRef<str> for UnitName {
    fn as_ref(&self) -> &str {
        &self.name
    }
}

/// Turns a command-line argument into a unit name the way fleetctl's
/// `unitNameMangle` does: take the last element of the path (Go's `path.Base`), and
/// append `.service` unless it already ends in `.` followed by one of
/// [`UNIT_TYPES`].
///
/// The result is not validated; pass it to [`UnitName::parse`].
///
/// Unlike fleetctl, which only recognizes `service socket timer path device mount
/// automount` here, flotilla recognizes every type in [`UNIT_TYPES`], so `foo.target`
/// stays `foo.target` instead of becoming `foo.target.service`.
///
/// ```
/// use unitgen::name::mangle;
///
/// assert_eq!(mangle("foo"), "foo.service");
/// assert_eq!(mangle("units/foo.socket"), "foo.socket");
/// ```
pub fn mangle(arg: &str) -> String {
    let base = go_path_base(arg);
    let recognized = UNIT_TYPES
        .iter()
        .any(|t| base.strip_suffix(t).is_some_and(|rest| rest.ends_with('.')));
    if recognized {
        base.to_owned()
    } else {
        format!("{base}.service")
    }
}

/// Go's `path.Base`: the last slash-separated element, trailing slashes ignored;
/// `"."` for the empty string and `"/"` for a path of only slashes.
fn go_path_base(path: &str) -> &str {
    if path.is_empty() {
        return ".";
    }
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return "/";
    }
    trimmed
        .rfind('/')
        .map_or(trimmed, |slash| &trimmed[slash + 1..])
}

/// The characters fleet allows before the last `.`: `[A-Za-z0-9:_.@\-\\]`.
fn is_valid_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, ':' | '-' | '_' | '.' | '\\' | '@')
}

/// Go's `%q` for a string (`strconv.Quote`), so messages match fleet byte for byte.
fn go_quote_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        push_go_escaped(&mut out, c, '"');
    }
    out.push('"');
    out
}

/// Go's `%q` for a rune (`strconv.QuoteRune`).
fn go_quote_char(c: char) -> String {
    let mut out = String::with_capacity(8);
    out.push('\'');
    push_go_escaped(&mut out, c, '\'');
    out.push('\'');
    out
}

/// One character as Go's `strconv` quoting writes it inside `quote` delimiters.
///
/// Go keeps "printable" characters (`unicode.IsPrint`) as they are. Rust has no such
/// predicate; this treats control characters and every white space other than
/// U+0020 as non-printable, which matches Go for all characters a unit name or a
/// type is realistically made of.
fn push_go_escaped(out: &mut String, c: char, quote: char) {
    use fmt::Write as _;

    match c {
        _ if c == quote || c == '\\' => {
            out.push('\\');
            out.push(c);
        }
        '\u{7}' => out.push_str("\\a"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{b}' => out.push_str("\\v"),
        ' ' => out.push(' '),
        _ if c.is_control() || c.is_whitespace() => {
            let code = u32::from(c);
            // Writing to a String cannot fail.
            let _ = if code < 0x80 {
                write!(out, "\\x{code:02x}")
            } else if code < 0x1_0000 {
                write!(out, "\\u{code:04x}")
            } else {
                write!(out, "\\U{code:08x}")
            };
        }
        _ => out.push(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every fleet error string, with an input that triggers it.
    #[test]
    fn fleet_error_strings() {
        let long = format!(
            "{}.service",
            "a".repeat(MAX_NAME_LEN - ".service".len() + 1)
        );
        let cases: &[(&str, &str)] = &[
            ("", "unit name cannot be empty"),
            (&long, "unit name exceeds maximum length (256)"),
            ("foo", "unit name must contain \".\""),
            ("foo.", "unit name cannot end in \".\""),
            ("foo.x", "invalid unit type: \"x\""),
            ("foo@bar.mount", "invalid unit type for template: \"mount\""),
            ("foo/bar.service", "invalid character '/' in unit name"),
            ("@foo.service", "unit name cannot start in \"@\""),
        ];
        for (input, want) in cases {
            let err = UnitName::parse(input).expect_err(input);
            assert_eq!(err.to_string(), *want, "input {input:?}");
        }
    }

    #[test]
    fn error_variants_and_check_order() {
        let exactly_max = format!("{}.service", "a".repeat(MAX_NAME_LEN - ".service".len()));
        assert_eq!(exactly_max.len(), MAX_NAME_LEN);
        assert!(UnitName::parse(&exactly_max).is_ok());

        let too_long = format!("{exactly_max}x");
        let cases: &[(&str, NameError)] = &[
            (
                &too_long,
                NameError::TooLong {
                    len: MAX_NAME_LEN + 1,
                },
            ),
            // Length is counted in bytes, like Go's len().
            (&"é".repeat(129), NameError::TooLong { len: 258 }),
            // The type is what follows the *last* dot.
            (
                "foo.service.x",
                NameError::InvalidType {
                    unit_type: "x".into(),
                },
            ),
            (
                "foo.Service",
                NameError::InvalidType {
                    unit_type: "Service".into(),
                },
            ),
            (".", NameError::EndsInDot),
            ("foo.service.", NameError::EndsInDot),
            // Type before characters and before the leading '@'.
            (
                "b/d@.x",
                NameError::InvalidType {
                    unit_type: "x".into(),
                },
            ),
            (
                "@x.mount",
                NameError::InvalidTemplateType {
                    unit_type: "mount".into(),
                },
            ),
            // Characters before the leading '@'.
            (
                "@a b.service",
                NameError::InvalidCharacter {
                    character: ' ',
                    offset: 2,
                },
            ),
            ("@.service", NameError::StartsWithAt),
            ("@bar.service", NameError::StartsWithAt),
            // First offending character wins.
            (
                "a%b/c.service",
                NameError::InvalidCharacter {
                    character: '%',
                    offset: 1,
                },
            ),
            (
                "café.service",
                NameError::InvalidCharacter {
                    character: 'é',
                    offset: 3,
                },
            ),
        ];
        for (input, want) in cases {
            assert_eq!(
                UnitName::parse(input).as_ref(),
                Err(want),
                "input {input:?}"
            );
        }
    }

    /// Go's `%q` quoting of the offending character and type.
    #[test]
    fn go_quoting_in_messages() {
        let cases: &[(&str, &str)] = &[
            ("a b.service", "invalid character ' ' in unit name"),
            ("a\tb.service", "invalid character '\\t' in unit name"),
            ("a\u{1b}b.service", "invalid character '\\x1b' in unit name"),
            ("a'b.service", "invalid character '\\'' in unit name"),
            ("a\"b.service", "invalid character '\"' in unit name"),
            ("aéb.service", "invalid character 'é' in unit name"),
            (
                "a\u{a0}b.service",
                "invalid character '\\u00a0' in unit name",
            ),
            ("foo.a\"b", "invalid unit type: \"a\\\"b\""),
            ("foo.a'b", "invalid unit type: \"a'b\""),
            ("foo.a\\b", "invalid unit type: \"a\\\\b\""),
            ("foo.serv ice", "invalid unit type: \"serv ice\""),
            ("foo.a\nb", "invalid unit type: \"a\\nb\""),
        ];
        for (input, want) in cases {
            let err = UnitName::parse(input).expect_err(input);
            assert_eq!(err.to_string(), *want, "input {input:?}");
        }
    }

    #[test]
    fn every_suffix_allowed_and_template_capable() {
        for unit_type in UNIT_TYPES {
            let plain = format!("foo.{unit_type}");
            let parsed = UnitName::parse(&plain).expect(&plain);
            assert_eq!(parsed.unit_type(), *unit_type);

            let template_capable = TEMPLATE_UNIT_TYPES.contains(unit_type);
            for name in [format!("foo@.{unit_type}"), format!("foo@bar.{unit_type}")] {
                let got = UnitName::parse(&name);
                if template_capable {
                    assert!(got.is_ok(), "{name}: {got:?}");
                } else {
                    assert_eq!(
                        got,
                        Err(NameError::InvalidTemplateType {
                            unit_type: (*unit_type).into()
                        }),
                        "{name}"
                    );
                }
            }
        }
        // The exact split, spelled out.
        let denied_for_templates = [
            "automount",
            "busname",
            "device",
            "mount",
            "scope",
            "slice",
            "snapshot",
            "swap",
        ];
        for unit_type in denied_for_templates {
            assert!(UNIT_TYPES.contains(&unit_type));
            assert!(!TEMPLATE_UNIT_TYPES.contains(&unit_type));
        }
        for unit_type in TEMPLATE_UNIT_TYPES {
            assert!(UNIT_TYPES.contains(unit_type));
        }
        assert_eq!(
            UNIT_TYPES.len(),
            denied_for_templates.len() + TEMPLATE_UNIT_TYPES.len()
        );
    }

    #[test]
    fn denied_suffixes() {
        for unit_type in [
            "",
            "x",
            "services",
            "servic",
            "SERVICE",
            "conf",
            "network",
            "container",
        ] {
            let name = format!("foo.{unit_type}");
            let got = UnitName::parse(&name);
            if unit_type.is_empty() {
                assert_eq!(got, Err(NameError::EndsInDot));
            } else {
                assert_eq!(
                    got,
                    Err(NameError::InvalidType {
                        unit_type: unit_type.into()
                    })
                );
            }
        }
    }

    #[test]
    fn every_allowed_character() {
        let allowed = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:_.@-\\";
        let name = format!("x{allowed}.service");
        assert!(UnitName::parse(&name).is_ok());
        for c in (0u8..=0x7f)
            .map(char::from)
            .filter(|c| !allowed.contains(*c))
        {
            let name = format!("x{c}.service");
            assert_eq!(
                UnitName::parse(&name),
                Err(NameError::InvalidCharacter {
                    character: c,
                    offset: 1
                }),
                "{name:?}"
            );
        }
    }

    /// (name, prefix, instance, without_suffix, template?, instance?, template_name)
    #[test]
    fn parts_templates_and_instances() {
        type Row = (
            &'static str,
            &'static str,
            Option<&'static str>,
            &'static str,
            bool,
            bool,
            Option<&'static str>,
        );
        let cases: &[Row] = &[
            ("foo.service", "foo", None, "foo", false, false, None),
            (
                "foo.bar.service",
                "foo.bar",
                None,
                "foo.bar",
                false,
                false,
                None,
            ),
            ("foo@.service", "foo", None, "foo@", true, false, None),
            (
                "foo@bar.service",
                "foo",
                Some("bar"),
                "foo@bar",
                false,
                true,
                Some("foo@.service"),
            ),
            (
                "foo@bar.baz.socket",
                "foo",
                Some("bar.baz"),
                "foo@bar.baz",
                false,
                true,
                Some("foo@.socket"),
            ),
            (
                "a@b@c.timer",
                "a",
                Some("b@c"),
                "a@b@c",
                false,
                true,
                Some("a@.timer"),
            ),
            (
                "a.b@c.target",
                "a.b",
                Some("c"),
                "a.b@c",
                false,
                true,
                Some("a.b@.target"),
            ),
            (
                "x@@.path",
                "x",
                Some("@"),
                "x@@",
                false,
                true,
                Some("x@.path"),
            ),
            (
                "sys-a\\x2db@-.service",
                "sys-a\\x2db",
                Some("-"),
                "sys-a\\x2db@-",
                false,
                true,
                Some("sys-a\\x2db@.service"),
            ),
        ];
        for &(name, prefix, instance, stem, template, is_instance, template_name) in cases {
            let unit = UnitName::parse(name).expect(name);
            assert_eq!(unit.as_str(), name);
            assert_eq!(unit.to_string(), name);
            assert_eq!(unit.prefix(), prefix, "{name}");
            assert_eq!(unit.instance(), instance, "{name}");
            assert_eq!(unit.without_suffix(), stem, "{name}");
            assert_eq!(unit.is_template(), template, "{name}");
            assert_eq!(unit.is_instance(), is_instance, "{name}");
            assert_eq!(
                unit.template_name().as_ref().map(UnitName::as_str),
                template_name
            );
            if let Some(t) = unit.template_name() {
                // Built without parsing: must equal what parsing gives.
                assert_eq!(Ok(&t), UnitName::parse(t.as_str()).as_ref());
                assert!(t.is_template());
            }
        }
    }

    #[test]
    fn instantiate() {
        let template = UnitName::parse("web@.service").unwrap();
        let ok: &[(&str, &str)] = &[
            ("8080", "web@8080.service"),
            ("a.b", "web@a.b.service"),
            ("x@y", "web@x@y.service"),
        ];
        for (instance, want) in ok {
            let unit = template.instantiate(instance).unwrap();
            assert_eq!(unit.as_str(), *want);
            assert_eq!(unit.instance(), Some(*instance));
            assert_eq!(unit.template_name(), Some(template.clone()));
        }

        let plain = UnitName::parse("web.service").unwrap();
        let instance = UnitName::parse("web@1.service").unwrap();
        let long = "a".repeat(MAX_NAME_LEN);
        let errs: &[(&UnitName, &str, &str)] = &[
            (
                &plain,
                "1",
                "unit \"web.service\" is not a template (expected a name like \"foo@.service\")",
            ),
            (
                &instance,
                "2",
                "unit \"web@1.service\" is not a template (expected a name like \"foo@.service\")",
            ),
            (
                &template,
                "",
                "instance name for template \"web@.service\" cannot be empty",
            ),
            (&template, "a/b", "invalid character '/' in unit name"),
            (&template, &long, "unit name exceeds maximum length (256)"),
        ];
        for (unit, instance, want) in errs {
            assert_eq!(unit.instantiate(instance).unwrap_err().to_string(), *want);
        }
    }

    #[test]
    fn from_str_ord_and_display() {
        let mut names: Vec<UnitName> = ["b.service", "a@2.service", "a@.service", "a.socket"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        names.sort();
        let sorted: Vec<String> = names.iter().map(ToString::to_string).collect();
        assert_eq!(
            sorted,
            ["a.socket", "a@.service", "a@2.service", "b.service"]
        );
        assert_eq!("".parse::<UnitName>(), Err(NameError::Empty));
    }

    #[test]
    fn mangle_like_fleetctl() {
        let cases: &[(&str, &str)] = &[
            ("foo", "foo.service"),
            ("foo.service", "foo.service"),
            ("units/foo.socket", "foo.socket"),
            ("/abs/dir/foo@1", "foo@1.service"),
            ("dir/foo@.timer", "foo@.timer"),
            ("foo/", "foo.service"),
            ("a.service/foo", "foo.service"),
            ("foo.path", "foo.path"),
            ("foo.device", "foo.device"),
            ("foo.mount", "foo.mount"),
            ("foo.automount", "foo.automount"),
            ("foo.bar", "foo.bar.service"),
            ("fooservice", "fooservice.service"),
            // Go's path.Base edge cases.
            ("", "..service"),
            ("/", "/.service"),
            // flotilla: one type list everywhere (fleetctl would append .service).
            ("foo.target", "foo.target"),
            ("foo.slice", "foo.slice"),
            ("foo.swap", "foo.swap"),
            ("foo.scope", "foo.scope"),
            ("foo.busname", "foo.busname"),
            ("foo.snapshot", "foo.snapshot"),
        ];
        for (arg, want) in cases {
            assert_eq!(mangle(arg), *want, "arg {arg:?}");
        }
        for unit_type in UNIT_TYPES {
            assert_eq!(
                mangle(&format!("x/y.{unit_type}")),
                format!("y.{unit_type}")
            );
        }
    }
}
