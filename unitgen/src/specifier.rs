//! `%` specifiers in unit file values: fleet's `[X-Fleet]` substitution and systemd's.
//!
//! A unit file can refer to its own name with specifiers such as `%i` (the instance of
//! `web@8080.service`, `8080`). Two different substitutions exist and flotilla needs
//! both:
//!
//! - [`expand_fleet`]: what fleet applies to `[X-Fleet]` values before scheduling
//!   (`job/job.go: unitPrintf`). Only `%n %N %p %i`, by plain sequential string
//!   replacement in that order, with no `%%` handling and no unescaping; any other
//!   `%x` stays literal. The quirks are kept on purpose, for compatibility.
//! - [`expand`] and [`check`]: systemd's rules (`specifier_printf`, systemd.unit(5) of
//!   systemd 252) for the rest of the unit file. One left-to-right pass, `%%` is a
//!   literal `%`, every letter of [`SYSTEMD_SPECIFIERS`] is accepted, and anything
//!   else is an error. Specifiers that only the node's systemd can resolve (`%h`,
//!   `%t`, ...) are left in place.
//!
//! Unescaping (`%I`, `%P`, `%J`) is systemd's `unit_name_unescape`: `-` becomes `/`
//! and `\xNN` becomes the byte `0xNN`.

use std::borrow::Cow;

use crate::name::UnitName;

/// Every specifier letter systemd 252 accepts in unit files (systemd.unit(5), table
/// "Specifiers available in unit files"), besides `%%`.
pub const SYSTEMD_SPECIFIERS: &str = "aAbBCdEfgGhHiIjJlLmMnNopPqsStTuUvVwWyY";

/// A `%` specifier problem in a value. `column` is the 0-based byte offset of the `%`
/// within the value, for the caller to turn into a file position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecifierError {
    /// `%` followed by a character that is not a systemd specifier.
    #[error("unknown specifier \"%{}\"", .specifier.escape_debug())]
    Unknown {
        /// The character after the `%`.
        specifier: char,
        /// Byte offset of the `%` in the value.
        column: usize,
    },
    /// The value ends with a single `%`.
    #[error("lone \"%\" at end of value (write \"%%\" for a literal percent)")]
    TrailingPercent {
        /// Byte offset of the `%` in the value.
        column: usize,
    },
    /// The text to unescape for `%I`, `%P` or `%J` has a `\` not followed by `x` and
    /// two hex digits.
    #[error("cannot expand \"%{specifier}\": malformed escape in \"{text}\" (expected \"\\xNN\")")]
    MalformedEscape {
        /// The specifier letter (`I`, `P` or `J`).
        specifier: char,
        /// The escaped text (instance or prefix).
        text: String,
        /// Byte offset of the `%` in the value.
        column: usize,
    },
    /// The text to unescape for `%I`, `%P` or `%J` unescapes to bytes that are not
    /// UTF-8.
    #[error("cannot expand \"%{specifier}\": \"{text}\" does not unescape to UTF-8")]
    NotUtf8 {
        /// The specifier letter (`I`, `P` or `J`).
        specifier: char,
        /// The escaped text (instance or prefix).
        text: String,
        /// Byte offset of the `%` in the value.
        column: usize,
    },
}

impl SpecifierError {
    /// The 0-based byte offset of the offending `%` within the value.
    pub fn column(&self) -> usize {
        match self {
            Self::Unknown { column, .. }
            | Self::TrailingPercent { column }
            | Self::MalformedEscape { column, .. }
            | Self::NotUtf8 { column, .. } => *column,
        }
    }
}

/// What [`expand`] knows when it generates a unit: the unit's name and, when the
/// target node is known, its machine ID and host name.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The unit whose file is being expanded (`%n %N %p %P %i %I %j %J`).
    pub unit: &'a UnitName,
    /// The node's machine ID (`%m`); `None` leaves `%m` for systemd.
    pub machine_id: Option<&'a str>,
    /// The node's host name (`%H`); `None` leaves `%H` for systemd.
    pub hostname: Option<&'a str>,
}

impl<'a> Context<'a> {
    /// A context that knows only the unit name: `%m` and `%H` are left for systemd.
    pub fn new(unit: &'a UnitName) -> Self {
        Self {
            unit,
            machine_id: None,
            hostname: None,
        }
    }
}

/// fleet's `[X-Fleet]` substitution: replaces every `%n`, then every `%N`, then every
/// `%p`, then every `%i`, as plain string replacements.
///
/// Kept exactly as fleet does it, quirks included: `%%` is not an escape, so `%%n`
/// becomes `%` followed by the name; a replacement can form a new specifier with the
/// text after it and be replaced by a later step; every other `%x` stays literal.
/// `%i` is empty for names without an instance.
///
/// ```
/// use unitgen::name::UnitName;
/// use unitgen::specifier::expand_fleet;
///
/// let unit = UnitName::parse("pin@0123abcd.service").unwrap();
/// assert_eq!(expand_fleet("%i", &unit), "0123abcd");
/// assert_eq!(expand_fleet("%p.socket %H", &unit), "pin.socket %H");
/// ```
pub fn expand_fleet(value: &str, unit: &UnitName) -> String {
    value
        .replace("%n", unit.as_str())
        .replace("%N", unit.without_suffix())
        .replace("%p", unit.prefix())
        .replace("%i", unit.instance().unwrap_or(""))
}

/// systemd's specifier expansion, for what can be resolved when flotilla generates a
/// unit.
///
/// One left-to-right pass (text produced by a specifier is never expanded again):
///
/// | specifier | value |
/// |---|---|
/// | `%%` | `%` |
/// | `%n` | full name, `foo@bar.service` |
/// | `%N` | name without type, `foo@bar` |
/// | `%p`, `%P` | prefix, `foo`; escaped / unescaped |
/// | `%i`, `%I` | instance, `bar`, empty when there is none; escaped / unescaped |
/// | `%j`, `%J` | the prefix after its last `-` (whole prefix if none); escaped / unescaped |
/// | `%m` | [`Context::machine_id`], left as `%m` when `None` |
/// | `%H` | [`Context::hostname`], left as `%H` when `None` |
///
/// Every other letter of [`SYSTEMD_SPECIFIERS`] (`%h`, `%t`, `%u`, ...) depends on the
/// node's systemd and is left untouched for it to resolve. Anything else after a `%`,
/// or a `%` ending the value, is an error (see [`check`]).
///
/// Note that the result is the *final* value: `%%` has become `%`. If it is written
/// back into a unit file that systemd reads again, that `%` is read as a specifier
/// (`%%h` would become `%h`, then the home directory).
///
/// ```
/// use unitgen::name::UnitName;
/// use unitgen::specifier::{expand, Context};
///
/// let unit = UnitName::parse("mnt@data-disk1.service").unwrap();
/// let ctx = Context::new(&unit);
/// assert_eq!(expand("/%I in %h, 100%%", &ctx).unwrap(), "/data/disk1 in %h, 100%");
/// ```
pub fn expand(value: &str, ctx: &Context<'_>) -> Result<String, SpecifierError> {
    let unit = ctx.unit;
    let mut out = String::with_capacity(value.len());
    for piece in Scanner::new(value) {
        let (specifier, column) = match piece? {
            Piece::Literal(text) => {
                out.push_str(text);
                continue;
            }
            Piece::Specifier { specifier, column } => (specifier, column),
        };
        let unescaped = |text: &str| {
            unescape(text).map_err(|problem| match problem {
                Unescape::Malformed => SpecifierError::MalformedEscape {
                    specifier,
                    text: text.to_owned(),
                    column,
                },
                Unescape::NotUtf8 => SpecifierError::NotUtf8 {
                    specifier,
                    text: text.to_owned(),
                    column,
                },
            })
        };
        let resolved: Option<Cow<'_, str>> = match specifier {
            'n' => Some(unit.as_str().into()),
            'N' => Some(unit.without_suffix().into()),
            'p' => Some(unit.prefix().into()),
            'P' => Some(unescaped(unit.prefix())?.into()),
            'i' => Some(unit.instance().unwrap_or("").into()),
            'I' => Some(unescaped(unit.instance().unwrap_or(""))?.into()),
            'j' => Some(last_component(unit.prefix()).into()),
            'J' => Some(unescaped(last_component(unit.prefix()))?.into()),
            'm' => ctx.machine_id.map(Cow::from),
            'H' => ctx.hostname.map(Cow::from),
            _ => None,
        };
        match resolved {
            Some(text) => out.push_str(&text),
            None => {
                out.push('%');
                out.push(specifier);
            }
        }
    }
    Ok(out)
}

/// Checks a value's specifiers against systemd's rules without expanding them: every
/// `%` must be followed by `%` or a letter of [`SYSTEMD_SPECIFIERS`]. Returns the
/// first problem.
///
/// ```
/// use unitgen::specifier::{check, SpecifierError};
///
/// assert!(check("%h/%i 100%%").is_ok());
/// assert_eq!(check("x %z"), Err(SpecifierError::Unknown { specifier: 'z', column: 2 }));
/// ```
pub fn check(value: &str) -> Result<(), SpecifierError> {
    Scanner::new(value).try_for_each(|piece| piece.map(drop))
}

/// A piece of a value: text to copy as is, or a valid specifier to resolve.
enum Piece<'a> {
    /// Literal text (`%%` yields its first `%`).
    Literal(&'a str),
    /// `%` followed by a letter of [`SYSTEMD_SPECIFIERS`].
    Specifier { specifier: char, column: usize },
}

/// Splits a value into [`Piece`]s, stopping at the first error.
struct Scanner<'a> {
    value: &'a str,
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn new(value: &'a str) -> Self {
        Self { value, pos: 0 }
    }
}

impl<'a> Iterator for Scanner<'a> {
    type Item = Result<Piece<'a>, SpecifierError>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = &self.value[self.pos..];
        if rest.is_empty() {
            return None;
        }
        let Some(offset) = rest.find('%') else {
            self.pos = self.value.len();
            return Some(Ok(Piece::Literal(rest)));
        };
        if offset > 0 {
            self.pos += offset;
            return Some(Ok(Piece::Literal(&rest[..offset])));
        }
        let column = self.pos;
        let Some(specifier) = rest[1..].chars().next() else {
            self.pos = self.value.len();
            return Some(Err(SpecifierError::TrailingPercent { column }));
        };
        self.pos += 1 + specifier.len_utf8();
        Some(if specifier == '%' {
            Ok(Piece::Literal(&rest[..1]))
        } else if SYSTEMD_SPECIFIERS.contains(specifier) {
            Ok(Piece::Specifier { specifier, column })
        } else {
            self.pos = self.value.len();
            Err(SpecifierError::Unknown { specifier, column })
        })
    }
}

/// `%j`: the part of the prefix after its last `-`, or the whole prefix.
fn last_component(prefix: &str) -> &str {
    prefix.rfind('-').map_or(prefix, |dash| &prefix[dash + 1..])
}

/// Why [`unescape`] failed.
enum Unescape {
    Malformed,
    NotUtf8,
}

/// systemd's `unit_name_unescape`: `-` becomes `/`, `\xNN` becomes the byte `0xNN`
/// (either hex case), and any other `\` is an error.
fn unescape(text: &str) -> Result<String, Unescape> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'-' => out.push(b'/'),
            b'\\' => {
                if bytes.next() != Some(b'x') {
                    return Err(Unescape::Malformed);
                }
                let hi = bytes
                    .next()
                    .and_then(hex_value)
                    .ok_or(Unescape::Malformed)?;
                let lo = bytes
                    .next()
                    .and_then(hex_value)
                    .ok_or(Unescape::Malformed)?;
                out.push((hi << 4) | lo);
            }
            _ => out.push(b),
        }
    }
    String::from_utf8(out).map_err(|_| Unescape::NotUtf8)
}

fn hex_value(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(name: &str) -> UnitName {
        UnitName::parse(name).expect(name)
    }

    /// The letters `expand` resolves itself (given a full context).
    const RESOLVED: &str = "nNpPiIjJmH";

    #[test]
    fn systemd_specifier_list_is_systemd_252() {
        // systemd.unit(5), systemd 252: 38 letters, no duplicates.
        let mut letters: Vec<char> = SYSTEMD_SPECIFIERS.chars().collect();
        letters.sort_unstable();
        letters.dedup();
        assert_eq!(letters.len(), 38);
        assert_eq!(SYSTEMD_SPECIFIERS.len(), 38);
        for gone in ['c', 'r', 'R', 'e', 'k', 'K', 'x', 'z'] {
            assert!(!SYSTEMD_SPECIFIERS.contains(gone), "{gone}");
        }
    }

    #[test]
    fn expand_each_resolved_specifier() {
        // (unit, value, expected)
        let cases: &[(&str, &str, &str)] = &[
            ("foo@bar.service", "%n", "foo@bar.service"),
            ("foo@bar.service", "%N", "foo@bar"),
            ("foo@bar.service", "%p", "foo"),
            ("foo@bar.service", "%i", "bar"),
            ("foo@bar.service", "%I", "bar"),
            ("foo@bar.service", "%P", "foo"),
            ("foo@bar.service", "%j", "foo"),
            ("foo@bar.service", "%J", "foo"),
            ("foo@bar.service", "%m", "0123456789abcdef0123456789abcdef"),
            ("foo@bar.service", "%H", "node1.example"),
            ("foo@bar.service", "%%", "%"),
            ("foo@bar.service", "%%%%", "%%"),
            ("foo@bar.service", "100%%", "100%"),
            ("foo@bar.service", "", ""),
            ("foo@bar.service", "no specifiers", "no specifiers"),
            ("foo@bar.service", "é%ié", "ébaré"),
            ("foo@bar.service", "%p-%i.socket", "foo-bar.socket"),
            // Unescaping: '-' is '/', \xNN is a byte.
            ("foo@a-b\\x2dc.service", "%i", "a-b\\x2dc"),
            ("foo@a-b\\x2dc.service", "%I", "a/b-c"),
            ("foo@caf\\xc3\\xA9.service", "%I", "café"),
            (
                "dev-disk-by\\x2dlabel@x.service",
                "%p",
                "dev-disk-by\\x2dlabel",
            ),
            ("dev-disk-by\\x2dlabel@x.service", "%P", "dev/disk/by-label"),
            ("dev-disk-by\\x2dlabel@x.service", "%j", "by\\x2dlabel"),
            ("dev-disk-by\\x2dlabel@x.service", "%J", "by-label"),
            ("a-b-.service", "%j", ""),
            // Plain names: prefix is the whole stem, instance is empty.
            (
                "foo.bar.socket",
                "%n|%N|%p|%i|%I|%j",
                "foo.bar.socket|foo.bar|foo.bar|||foo.bar",
            ),
            // Templates: empty instance too.
            ("foo@.service", "[%i][%I]%N", "[][]foo@"),
            // A single pass: text produced by a specifier is not expanded again.
            ("foo@\\x25n.service", "%I", "%n"),
            ("foo@\\x25n.service", "%i", "\\x25n"),
            ("ip@eth0.service", "%%p", "%p"),
            ("ipv6@x.service", "%%n", "%n"),
        ];
        for (name, value, want) in cases {
            let unit = unit(name);
            let ctx = Context {
                unit: &unit,
                machine_id: Some("0123456789abcdef0123456789abcdef"),
                hostname: Some("node1.example"),
            };
            assert_eq!(
                expand(value, &ctx).as_deref(),
                Ok(*want),
                "{name}: {value:?}"
            );
        }
    }

    #[test]
    fn expand_leaves_unknown_context_to_systemd() {
        let unit = unit("web@1.service");
        let ctx = Context::new(&unit);
        assert_eq!(expand("%m %H %i", &ctx).as_deref(), Ok("%m %H 1"));
        let only_host = Context {
            hostname: Some("h"),
            ..ctx
        };
        assert_eq!(expand("%m %H", &only_host).as_deref(), Ok("%m h"));

        // Every systemd specifier not resolved at generation time stays as is.
        let runtime: Vec<char> = SYSTEMD_SPECIFIERS
            .chars()
            .filter(|c| !RESOLVED.contains(*c))
            .collect();
        assert_eq!(runtime.len(), SYSTEMD_SPECIFIERS.len() - RESOLVED.len());
        for c in [
            'h', 'u', 't', 'S', 'C', 'L', 'E', 'T', 'V', 'b', 'B', 'o', 'w', 'W', 'l', 'a',
        ]
        .into_iter()
        .chain(['A', 'v', 'g', 'G', 'U', 'y', 'Y', 'd', 'f', 's', 'M', 'q'])
        {
            assert!(runtime.contains(&c), "%{c} should be left for systemd");
        }
        let full = Context {
            unit: &unit,
            machine_id: Some("m"),
            hostname: Some("h"),
        };
        for c in runtime {
            let value = format!("x%{c}y");
            assert_eq!(expand(&value, &full), Ok(value.clone()));
            assert_eq!(check(&value), Ok(()));
        }
    }

    #[test]
    fn expand_and_check_errors() {
        let cases: &[(&str, SpecifierError, &str)] = &[
            (
                "%z",
                SpecifierError::Unknown {
                    specifier: 'z',
                    column: 0,
                },
                "unknown specifier \"%z\"",
            ),
            (
                "ab %z",
                SpecifierError::Unknown {
                    specifier: 'z',
                    column: 3,
                },
                "unknown specifier \"%z\"",
            ),
            (
                "é%1",
                SpecifierError::Unknown {
                    specifier: '1',
                    column: 2,
                },
                "unknown specifier \"%1\"",
            ),
            (
                "%%%c",
                SpecifierError::Unknown {
                    specifier: 'c',
                    column: 2,
                },
                "unknown specifier \"%c\"",
            ),
            (
                "%é",
                SpecifierError::Unknown {
                    specifier: 'é',
                    column: 0,
                },
                "unknown specifier \"%é\"",
            ),
            (
                "%\n",
                SpecifierError::Unknown {
                    specifier: '\n',
                    column: 0,
                },
                "unknown specifier \"%\\n\"",
            ),
            (
                "% ",
                SpecifierError::Unknown {
                    specifier: ' ',
                    column: 0,
                },
                "unknown specifier \"% \"",
            ),
            // The first problem wins.
            (
                "%x %",
                SpecifierError::Unknown {
                    specifier: 'x',
                    column: 0,
                },
                "unknown specifier \"%x\"",
            ),
            (
                "%",
                SpecifierError::TrailingPercent { column: 0 },
                "lone \"%\" at end of value (write \"%%\" for a literal percent)",
            ),
            (
                "100%",
                SpecifierError::TrailingPercent { column: 3 },
                "lone \"%\" at end of value (write \"%%\" for a literal percent)",
            ),
            (
                "%%%",
                SpecifierError::TrailingPercent { column: 2 },
                "lone \"%\" at end of value (write \"%%\" for a literal percent)",
            ),
        ];
        let unit = unit("foo@bar.service");
        let ctx = Context::new(&unit);
        for (value, want, message) in cases {
            assert_eq!(check(value).as_ref(), Err(want), "{value:?}");
            assert_eq!(expand(value, &ctx).as_ref(), Err(want), "{value:?}");
            assert_eq!(want.to_string(), *message);
        }
    }

    #[test]
    fn column_accessor() {
        let errors = [
            SpecifierError::Unknown {
                specifier: 'z',
                column: 1,
            },
            SpecifierError::TrailingPercent { column: 2 },
            SpecifierError::MalformedEscape {
                specifier: 'I',
                text: "\\".into(),
                column: 3,
            },
            SpecifierError::NotUtf8 {
                specifier: 'P',
                text: "\\xff".into(),
                column: 4,
            },
        ];
        let columns: Vec<usize> = errors.iter().map(SpecifierError::column).collect();
        assert_eq!(columns, [1, 2, 3, 4]);
    }

    #[test]
    fn every_unknown_ascii_character_is_rejected() {
        for c in (0u8..=0x7f).map(char::from) {
            let value = format!("a%{c}");
            let got = check(&value);
            if c == '%' || SYSTEMD_SPECIFIERS.contains(c) {
                assert_eq!(got, Ok(()), "{value:?}");
            } else {
                assert_eq!(
                    got,
                    Err(SpecifierError::Unknown {
                        specifier: c,
                        column: 1
                    })
                );
            }
        }
        assert_eq!(check(""), Ok(()));
        assert_eq!(check("%%z"), Ok(()));
    }

    #[test]
    fn unescape_errors() {
        // (unit, value, error, message)
        let cases: &[(&str, &str, SpecifierError, &str)] = &[
            (
                "foo@a\\b.service",
                "x%I",
                SpecifierError::MalformedEscape {
                    specifier: 'I',
                    text: "a\\b".into(),
                    column: 1,
                },
                "cannot expand \"%I\": malformed escape in \"a\\b\" (expected \"\\xNN\")",
            ),
            (
                "foo@a\\x2.service",
                "%I",
                SpecifierError::MalformedEscape {
                    specifier: 'I',
                    text: "a\\x2".into(),
                    column: 0,
                },
                "cannot expand \"%I\": malformed escape in \"a\\x2\" (expected \"\\xNN\")",
            ),
            (
                "foo@a\\xzz.service",
                "%I",
                SpecifierError::MalformedEscape {
                    specifier: 'I',
                    text: "a\\xzz".into(),
                    column: 0,
                },
                "cannot expand \"%I\": malformed escape in \"a\\xzz\" (expected \"\\xNN\")",
            ),
            (
                "f\\@x.service",
                "%P",
                SpecifierError::MalformedEscape {
                    specifier: 'P',
                    text: "f\\".into(),
                    column: 0,
                },
                "cannot expand \"%P\": malformed escape in \"f\\\" (expected \"\\xNN\")",
            ),
            (
                "a-b\\q.service",
                "%J",
                SpecifierError::MalformedEscape {
                    specifier: 'J',
                    text: "b\\q".into(),
                    column: 0,
                },
                "cannot expand \"%J\": malformed escape in \"b\\q\" (expected \"\\xNN\")",
            ),
            (
                "foo@\\xff.service",
                "%%%I",
                SpecifierError::NotUtf8 {
                    specifier: 'I',
                    text: "\\xff".into(),
                    column: 2,
                },
                "cannot expand \"%I\": \"\\xff\" does not unescape to UTF-8",
            ),
        ];
        for (name, value, want, message) in cases {
            let unit = unit(name);
            let got = expand(value, &Context::new(&unit));
            assert_eq!(got.as_ref(), Err(want), "{name}: {value:?}");
            assert_eq!(want.to_string(), *message);
            // The escaped forms themselves are fine, and check() does not look at names.
            assert_eq!(expand("%i%p%j", &Context::new(&unit)).map(drop), Ok(()));
            assert_eq!(check(value), Ok(()));
        }
    }

    #[test]
    fn fleet_substitution() {
        // (unit, value, expected)
        let cases: &[(&str, &str, &str)] = &[
            ("foo@bar.service", "%n", "foo@bar.service"),
            ("foo@bar.service", "%N", "foo@bar"),
            ("foo@bar.service", "%p", "foo"),
            ("foo@bar.service", "%i", "bar"),
            ("foo@bar.service", "%p.socket", "foo.socket"),
            ("pin@0123abcd.service", "%i", "0123abcd"),
            ("metadata@x.service", "hostname=%i", "hostname=x"),
            ("foo.service", "[%i]%p", "[]foo"),
            ("foo@.service", "[%i]%N", "[]foo@"),
            // Everything else stays literal, %% included, and nothing is unescaped.
            (
                "foo@bar.service",
                "%H %m %I %P %j %z %%",
                "%H %m %I %P %j %z %%",
            ),
            ("foo@a-b\\x2dc.service", "%i", "a-b\\x2dc"),
            ("foo@bar.service", "100%", "100%"),
            // %% is no escape: "%%n" contains "%n".
            ("foo@bar.service", "%%n", "%foo@bar.service"),
            // Sequential replacement: "%%p" -> "%ip" after the %p step, whose "%i" the
            // %i step then replaces. systemd's single pass gives "%p" instead.
            ("ip@eth0.service", "%%p", "eth0p"),
            ("ipv6@x.service", "%%n", "xpv6@x.service"),
            ("ipv6@x.service", "%%N", "xpv6@x"),
            // %n runs before %p, so the name's own text is not touched by later steps
            // unless it forms a new specifier with a preceding '%'.
            ("pp@q.service", "%n%p", "pp@q.servicepp"),
        ];
        for (name, value, want) in cases {
            assert_eq!(expand_fleet(value, &unit(name)), *want, "{name}: {value:?}");
        }
        // Contrast with systemd's single pass on the same inputs.
        let ip = unit("ip@eth0.service");
        assert_eq!(expand("%%p", &Context::new(&ip)).as_deref(), Ok("%p"));
    }
}
