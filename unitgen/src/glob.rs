//! Shell-style patterns with the exact meaning of Go's `path.Match`, which fleet uses for
//! `Conflicts=` and `Replaces=`: `*` is any run of characters except `/`, `?` one character
//! except `/`, `[…]` a class (`[^…]` negated, `a-z` ranges, `\` escapes inside), and `\x` a
//! literal `x`. A malformed pattern is an error here; fleet silently never matched it.

/// Why a pattern cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GlobError {
    /// `[` without `]`, an empty class, a bad range, or a trailing `\`.
    #[error("malformed pattern {pattern:?}")]
    Malformed {
        /// The pattern as written.
        pattern: String,
    },
}

/// A checked pattern, tokenized once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Glob {
    pattern: String,
    tokens: Vec<Token>,
}

impl Glob {
    /// Checks `pattern` (the whole pattern, as Go's `path.Match` would on a non-matching name).
    pub fn new(pattern: &str) -> Result<Glob, GlobError> {
        match tokenize(pattern) {
            Some(tokens) => Ok(Glob {
                pattern: pattern.to_owned(),
                tokens,
            }),
            None => Err(GlobError::Malformed {
                pattern: pattern.to_owned(),
            }),
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// True when `name` matches the whole pattern.
    pub fn matches(&self, name: &str) -> bool {
        let name: Vec<char> = name.chars().collect();
        match_tokens(&self.tokens, &name)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Literal(char),
    AnyOne,
    AnyRun,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

fn tokenize(pattern: &str) -> Option<Vec<Token>> {
    let mut tokens = Vec::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        tokens.push(match c {
            '*' => Token::AnyRun,
            '?' => Token::AnyOne,
            '\\' => Token::Literal(chars.next()?),
            '[' => {
                let negated = chars.next_if_eq(&'^').is_some();
                let mut ranges = Vec::new();
                loop {
                    let low = match chars.next()? {
                        ']' if !ranges.is_empty() => break,
                        ']' | '-' => return None,
                        '\\' => chars.next()?,
                        low => low,
                    };
                    let high = if chars.next_if_eq(&'-').is_some() {
                        match chars.next()? {
                            '\\' => chars.next()?,
                            ']' | '-' => return None,
                            high => high,
                        }
                    } else {
                        low
                    };
                    if high < low {
                        return None;
                    }
                    ranges.push((low, high));
                }
                Token::Class { negated, ranges }
            }
            c => Token::Literal(c),
        });
    }
    Some(tokens)
}

fn match_tokens(tokens: &[Token], name: &[char]) -> bool {
    match tokens.split_first() {
        None => name.is_empty(),
        Some((Token::AnyRun, rest)) => {
            let run = name.iter().take_while(|c| **c != '/').count();
            (0..=run).any(|skip| match_tokens(rest, &name[skip..]))
        }
        Some((token, rest)) => match name.split_first() {
            Some((c, name_rest)) if matches_one(token, *c) => match_tokens(rest, name_rest),
            _ => false,
        },
    }
}

fn matches_one(token: &Token, c: char) -> bool {
    match token {
        Token::Literal(literal) => *literal == c,
        Token::AnyOne => c != '/',
        Token::Class { negated, ranges } => {
            c != '/' && ranges.iter().any(|(low, high)| (*low..=*high).contains(&c)) != *negated
        }
        Token::AnyRun => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_like_go_path_match() {
        let cases = [
            ("foo*.service", "foo.service", true),
            ("foo*.service", "foo.1.service", true),
            ("foo*.service", "bar.service", false),
            ("*", "anything.service", true),
            ("*", "a/b", false),
            ("app@?.service", "app@1.service", true),
            ("app@?.service", "app@12.service", false),
            ("db[0-9].service", "db7.service", true),
            ("db[^0-9].service", "db7.service", false),
            ("db[^0-9].service", "dbx.service", true),
            ("a\\*b", "a*b", true),
            ("a\\*b", "axb", false),
            ("[\\]]", "]", true),
            ("exact.service", "exact.service", true),
            ("exact.service", "exact.socket", false),
        ];
        for (pattern, name, expected) in cases {
            let glob = Glob::new(pattern).expect("valid pattern");
            assert_eq!(glob.matches(name), expected, "{pattern:?} ~ {name:?}");
        }
    }

    #[test]
    fn refuses_malformed_patterns() {
        for pattern in ["[", "[]", "a[b", "x\\", "[z-a]", "[a-]"] {
            assert_eq!(
                Glob::new(pattern),
                Err(GlobError::Malformed {
                    pattern: pattern.into()
                }),
                "{pattern:?}"
            );
        }
    }
}
