//! Word lists as systemd reads them, and quoting to write them back.
//!
//! Many settings (`ExecStart=`, `Environment=`, and in flotilla `Exec=`, `EngineArgs=`…) hold a
//! list of words. systemd splits them with `extract_first_word(…, EXTRACT_UNQUOTE |
//! EXTRACT_CUNESCAPE)`: white space separates words, `"…"` and `'…'` group (also in the middle of
//! a word), and backslash escapes are C escapes (`\n`, `\t`, `\x41`, `\\`, `\"` …). [`split`] does
//! exactly that; [`quote`] is its inverse, so `split(&join(words)) == words` for any words.

/// What can be wrong with a word list.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WordsError {
    /// A `"` or `'` that is never closed.
    #[error("unbalanced quote {quote:?} starting at byte {offset}")]
    UnbalancedQuote {
        /// The quote character.
        quote: char,
        /// Byte offset of the opening quote in the value.
        offset: usize,
    },
    /// A backslash escape systemd does not accept.
    #[error("invalid escape sequence {sequence:?} at byte {offset}")]
    InvalidEscape {
        /// The escape as written.
        sequence: String,
        /// Byte offset of the backslash in the value.
        offset: usize,
    },
}

impl WordsError {
    /// Byte offset in the value the problem starts at.
    pub fn offset(&self) -> usize {
        match self {
            WordsError::UnbalancedQuote { offset, .. }
            | WordsError::InvalidEscape { offset, .. } => *offset,
        }
    }
}

fn is_separator(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// Splits `value` into words as systemd does for command lines.
///
/// ```
/// assert_eq!(unitgen::words::split(r#"run "a b" c\x41"#).unwrap(), ["run", "a b", "cA"]);
/// ```
pub fn split(value: &str) -> Result<Vec<String>, WordsError> {
    let mut words = Vec::new();
    let mut chars = value.char_indices().peekable();
    loop {
        while chars.next_if(|(_, c)| is_separator(*c)).is_some() {}
        if chars.peek().is_none() {
            return Ok(words);
        }
        let mut word = String::new();
        let mut quote: Option<(char, usize)> = None;
        while let Some((offset, c)) = chars.next() {
            match (quote, c) {
                (None, c) if is_separator(c) => break,
                (None, '"' | '\'') => quote = Some((c, offset)),
                (Some((open, _)), c) if c == open => quote = None,
                (_, '\\') => word.push(unescape(value, offset, &mut chars)?),
                (_, c) => word.push(c),
            }
        }
        if let Some((quote, offset)) = quote {
            return Err(WordsError::UnbalancedQuote { quote, offset });
        }
        words.push(word);
    }
}

/// Reads the escape after the backslash at `offset` (C escapes, as systemd's `cunescape_one`).
fn unescape(
    value: &str,
    offset: usize,
    chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>,
) -> Result<char, WordsError> {
    let invalid = |len: usize| WordsError::InvalidEscape {
        sequence: value[offset..].chars().take(len).collect(),
        offset,
    };
    let Some((_, c)) = chars.next() else {
        return Err(invalid(1));
    };
    let simple = match c {
        'a' => Some('\u{7}'),
        'b' => Some('\u{8}'),
        'f' => Some('\u{c}'),
        'n' => Some('\n'),
        'r' => Some('\r'),
        't' => Some('\t'),
        'v' => Some('\u{b}'),
        '\\' | '"' | '\'' | ' ' => Some(c),
        's' => Some(' '),
        _ => None,
    };
    if let Some(simple) = simple {
        return Ok(simple);
    }
    let (digits, radix, len) = match c {
        'x' => (2, 16, 4),
        'u' => (4, 16, 6),
        'U' => (8, 16, 10),
        '0'..='7' => (2, 8, 4),
        _ => return Err(invalid(2)),
    };
    let mut number = if radix == 8 {
        c.to_digit(8).unwrap_or(0)
    } else {
        0
    };
    for _ in 0..digits {
        let digit = chars
            .next()
            .and_then(|(_, d)| d.to_digit(radix))
            .ok_or_else(|| invalid(len))?;
        number = number * radix + digit;
    }
    // systemd refuses NUL in words.
    char::from_u32(number)
        .filter(|c| *c != '\0')
        .ok_or_else(|| invalid(len))
}

/// Quotes one word so that [`split`] reads it back unchanged: plain words stay as they are,
/// anything else is written in double quotes with C escapes. Words with `;` are always quoted:
/// in `ExecStart=` an unquoted lone `;` separates commands, so a container's `;` argument would
/// otherwise become a second command run outside the container.
///
/// ```
/// assert_eq!(unitgen::words::quote("plain"), "plain");
/// assert_eq!(unitgen::words::quote("two words"), "\"two words\"");
/// ```
pub fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '"' | '\'' | '\\' | ';'));
    if plain {
        return word.to_owned();
    }
    let mut out = String::with_capacity(word.len() + 2);
    out.push('"');
    for c in word.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Joins words into one value, quoting each as needed.
pub fn join<S: AsRef<str>>(words: &[S]) -> String {
    words
        .iter()
        .map(|word| quote(word.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn splits_like_systemd() {
        let cases: &[(&str, &[&str])] = &[
            ("", &[]),
            ("   ", &[]),
            ("a b  c", &["a", "b", "c"]),
            (r#""a b" 'c d'"#, &["a b", "c d"]),
            (r#"x"a b"y"#, &["xa by"]),
            (r"a\ b", &["a b"]),
            (r#""say \"hi\"""#, &["say \"hi\""]),
            (r"\x41\102\n", &["AB\n"]),
            (r"'it''s'", &["its"]),
            ("\"\"", &[""]),
        ];
        for (input, expected) in cases {
            assert_eq!(split(input).expect("splits"), *expected, "split({input:?})");
        }
    }

    #[test]
    fn reports_bad_quoting_and_escapes_with_offsets() {
        assert_eq!(
            split("a \"b c"),
            Err(WordsError::UnbalancedQuote {
                quote: '"',
                offset: 2
            })
        );
        assert_eq!(
            split(r"a \q"),
            Err(WordsError::InvalidEscape {
                sequence: r"\q".into(),
                offset: 2
            })
        );
        assert_eq!(
            split(r"\x4"),
            Err(WordsError::InvalidEscape {
                sequence: r"\x4".into(),
                offset: 0
            })
        );
        assert_eq!(split(r"\x00").map_err(|e| e.offset()), Err(0));
    }

    #[test]
    fn semicolons_are_always_quoted() {
        assert_eq!(quote(";"), "\";\"");
        assert_eq!(join(&["sh", "-c", "a", ";", "b"]), "sh -c a \";\" b");
        assert_eq!(split("a\\").map_err(|e| e.offset()), Err(1));
    }

    proptest! {
        #[test]
        fn quote_is_the_inverse_of_split(words in proptest::collection::vec("[^\u{0}]{0,12}", 0..6)) {
            prop_assert_eq!(split(&join(&words)).unwrap(), words);
        }

        #[test]
        fn split_never_panics(value in any::<String>()) {
            let _ = split(&value);
        }
    }
}
