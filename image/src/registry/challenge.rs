//! Parses a `WWW-Authenticate` header (RFC 7235) into the [`Challenge`] a registry poses.
//!
//! Only what registries send is understood: `Bearer` with `realm`, `service` and `scope`, and
//! `Basic`. Parameter values may be tokens or quoted strings holding commas and `\"` escapes.

/// Why a `WWW-Authenticate` header could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    /// Neither `Bearer` nor `Basic`.
    #[error("unsupported authentication scheme {scheme:?} in WWW-Authenticate {header:?}")]
    UnsupportedScheme {
        /// The scheme named by the header.
        scheme: String,
        /// The whole header.
        header: String,
    },
    /// A `Bearer` challenge without `realm`.
    #[error("bearer challenge without a realm in WWW-Authenticate {header:?}")]
    MissingRealm {
        /// The whole header.
        header: String,
    },
    /// A parameter that is not `name=value`, or a quoted string that never ends.
    #[error("malformed WWW-Authenticate {header:?}: {what}")]
    Malformed {
        /// The whole header.
        header: String,
        /// What is wrong.
        what: &'static str,
    },
}

/// What a registry asks for before it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// Fetch a token from `realm` and send it as `Authorization: Bearer`.
    Bearer {
        /// The token server's URL.
        realm: String,
        /// The `service` to name in the token request.
        service: Option<String>,
        /// The `scope` the registry suggested, if any.
        scope: Option<String>,
    },
    /// Send `Authorization: Basic base64(user:password)`.
    Basic {
        /// The realm, for messages only.
        realm: Option<String>,
    },
}

impl Challenge {
    /// Parses one `WWW-Authenticate` header value.
    ///
    /// ```
    /// use image::registry::challenge::Challenge;
    ///
    /// let header = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io""#;
    /// assert_eq!(
    ///     Challenge::parse(header).unwrap(),
    ///     Challenge::Bearer {
    ///         realm: "https://auth.docker.io/token".into(),
    ///         service: Some("registry.docker.io".into()),
    ///         scope: None,
    ///     },
    /// );
    /// ```
    pub fn parse(header: &str) -> Result<Challenge, ChallengeError> {
        let trimmed = header.trim();
        let (scheme, rest) = trimmed
            .split_once(|c: char| c.is_ascii_whitespace())
            .unwrap_or((trimmed, ""));
        let params = parse_params(rest).map_err(|what| ChallengeError::Malformed {
            header: header.to_owned(),
            what,
        })?;
        let param = |name: &str| {
            params
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
                .map(|(_, value)| value.clone())
        };
        if scheme.eq_ignore_ascii_case("bearer") {
            Ok(Challenge::Bearer {
                realm: param("realm").ok_or_else(|| ChallengeError::MissingRealm {
                    header: header.to_owned(),
                })?,
                service: param("service"),
                scope: param("scope"),
            })
        } else if scheme.eq_ignore_ascii_case("basic") {
            Ok(Challenge::Basic {
                realm: param("realm"),
            })
        } else {
            Err(ChallengeError::UnsupportedScheme {
                scheme: scheme.to_owned(),
                header: header.to_owned(),
            })
        }
    }
}

/// `name=value, name="quoted, \"value\""` → pairs.
fn parse_params(mut rest: &str) -> Result<Vec<(String, String)>, &'static str> {
    let mut params = Vec::new();
    loop {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_ascii_whitespace());
        if rest.is_empty() {
            return Ok(params);
        }
        let (name, after) = rest.split_once('=').ok_or("parameter without '='")?;
        let name = name.trim();
        if name.is_empty() || name.contains(|c: char| c.is_ascii_whitespace() || c == ',') {
            return Err("parameter without a name");
        }
        let after = after.trim_start();
        let (value, remainder) = if let Some(quoted) = after.strip_prefix('"') {
            parse_quoted(quoted)?
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_owned(), &after[end..])
        };
        params.push((name.to_owned(), value));
        rest = remainder;
    }
}

/// The text after an opening `"` → the unescaped value and what follows the closing `"`.
fn parse_quoted(text: &str) -> Result<(String, &str), &'static str> {
    let mut value = String::new();
    let mut chars = text.char_indices();
    while let Some((index, c)) = chars.next() {
        match c {
            '"' => return Ok((value, &text[index + 1..])),
            '\\' => value.push(chars.next().ok_or("unterminated quoted string")?.1),
            c => value.push(c),
        }
    }
    Err("unterminated quoted string")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bearer(realm: &str, service: Option<&str>, scope: Option<&str>) -> Challenge {
        Challenge::Bearer {
            realm: realm.into(),
            service: service.map(Into::into),
            scope: scope.map(Into::into),
        }
    }

    #[test]
    fn parses_what_registries_send() {
        let cases = [
            (
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
                bearer(
                    "https://auth.docker.io/token",
                    Some("registry.docker.io"),
                    Some("repository:library/busybox:pull"),
                ),
            ),
            (
                r#"bearer  realm="http://127.0.0.1:1/token" , scope="repository:a/b:pull,push""#,
                bearer(
                    "http://127.0.0.1:1/token",
                    None,
                    Some("repository:a/b:pull,push"),
                ),
            ),
            (
                r#"Bearer realm=http://x/token,service=svc"#,
                bearer("http://x/token", Some("svc"), None),
            ),
            (
                r#"Bearer REALM="a\"b\\c",Service="s""#,
                bearer(r#"a"b\c"#, Some("s"), None),
            ),
            (
                r#"Basic realm="Registry Realm""#,
                Challenge::Basic {
                    realm: Some("Registry Realm".into()),
                },
            ),
            ("Basic", Challenge::Basic { realm: None }),
        ];
        for (header, expected) in cases {
            assert_eq!(Challenge::parse(header), Ok(expected), "{header}");
        }
    }

    #[test]
    fn refuses_what_it_cannot_use() {
        let cases = [
            (
                r#"Digest realm="x""#,
                r#"unsupported authentication scheme "Digest" in WWW-Authenticate "Digest realm=\"x\"""#,
            ),
            (
                r#"Bearer service="x""#,
                r#"bearer challenge without a realm in WWW-Authenticate "Bearer service=\"x\"""#,
            ),
            (
                r#"Bearer realm="x"#,
                r#"malformed WWW-Authenticate "Bearer realm=\"x": unterminated quoted string"#,
            ),
            (
                "Bearer realm",
                r#"malformed WWW-Authenticate "Bearer realm": parameter without '='"#,
            ),
            (
                "Bearer =x",
                r#"malformed WWW-Authenticate "Bearer =x": parameter without a name"#,
            ),
        ];
        for (header, message) in cases {
            assert_eq!(Challenge::parse(header).unwrap_err().to_string(), message);
        }
    }
}
