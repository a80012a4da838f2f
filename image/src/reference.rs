//! Image references: `mongo`, `user/app:v1`, `registry.local:5000/team/app@sha256:…`.
//!
//! Parsing follows Docker's `distribution/reference` `ParseNormalizedNamed` (grammar in
//! `reference/regexp.go`, defaults in `normalize.go`), then adds the `latest` tag when a
//! reference names neither tag nor digest, as `docker pull` does:
//!
//! ```text
//! reference  ::= [domain "/"] path [":" tag] ["@" digest]
//! domain     ::= host [":" [0-9]+]
//! host       ::= component ("." component)* | "[" [a-fA-F0-9:]+ "]"
//! component  ::= [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
//! path       ::= path-component ("/" path-component)*
//! path-component ::= [a-z0-9]+ (([._] | "__" | "-"+) [a-z0-9]+)*
//! tag        ::= [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
//! ```
//!
//! The first `/`-separated component is the registry only if it contains `.` or `:`, is
//! `localhost`, or has an uppercase letter (path components cannot); otherwise the registry
//! is `docker.io`, and a single-component path there gets `library/` in front. The legacy
//! `index.docker.io` is rewritten to `docker.io`. `registry/repository` may be at most 255
//! characters long, counted after normalization.
//!
//! The module is pure: strings in, values or a precise error out, never a panic.

use std::fmt;
use std::str::FromStr;

use crate::digest::{Digest, DigestError};

/// The registry used when a reference names none.
pub const DEFAULT_REGISTRY: &str = "docker.io";
/// The tag used when a reference names neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";
/// The longest `registry/repository` accepted, as in Docker.
pub const NAME_MAX_LEN: usize = 255;
/// The longest tag accepted, as in Docker.
pub const TAG_MAX_LEN: usize = 128;

const LEGACY_REGISTRY: &str = "index.docker.io";
const OFFICIAL_PREFIX: &str = "library/";

/// Why a string is not a valid image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// The input was the empty string.
    #[error("invalid reference format: empty reference")]
    Empty,
    /// A bare 64-character hex string, which Docker reserves for image IDs.
    #[error(
        "invalid reference format: {0:?} is a 64-character hex image id, not a repository name"
    )]
    HexIdentifier(String),
    /// The repository path has an uppercase letter.
    #[error("invalid reference format: repository name must be lowercase: {0:?}")]
    Uppercase(String),
    /// The registry (domain and optional port) is malformed.
    #[error("invalid reference format: invalid registry {registry:?}: {reason}")]
    InvalidRegistry {
        /// The registry text.
        registry: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The repository path is empty or has an empty component (`a//b`, `a/`, `/a`).
    #[error("invalid reference format: empty path component in repository {0:?}")]
    EmptyComponent(String),
    /// A repository path component breaks the path grammar.
    #[error("invalid reference format: invalid path component {component:?} in repository {repository:?}: {reason}")]
    InvalidComponent {
        /// The whole repository path.
        repository: String,
        /// The offending component.
        component: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The tag breaks `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
    #[error("invalid reference format: invalid tag {tag:?}: {reason}")]
    InvalidTag {
        /// The tag text.
        tag: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `registry/repository` is longer than [`NAME_MAX_LEN`].
    #[error("invalid reference format: repository name too long ({0} > 255)")]
    TooLong(usize),
    /// The part after `@` is not a digest we can use.
    #[error("invalid reference format: {0}")]
    Digest(#[from] DigestError),
}

/// A `Result` whose error is [`ReferenceError`].
pub type Result<T, E = ReferenceError> = std::result::Result<T, E>;

/// A normalized image reference.
///
/// ```
/// use image::reference::Reference;
///
/// let r = Reference::parse("mongo").unwrap();
/// assert_eq!(r.to_string(), "docker.io/library/mongo:latest");
/// assert_eq!(r.familiar(), "mongo:latest");
///
/// let r = Reference::parse("localhost:5000/team/app:v1").unwrap();
/// assert_eq!((r.registry(), r.repository(), r.tag()), ("localhost:5000", "team/app", Some("v1")));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses and normalizes `s` the way `docker pull` does.
    ///
    /// ```
    /// use image::reference::Reference;
    ///
    /// assert_eq!(
    ///     Reference::parse("Mongo").unwrap_err().to_string(),
    ///     r#"invalid reference format: repository name must be lowercase: "library/Mongo""#,
    /// );
    /// ```
    pub fn parse(s: &str) -> Result<Reference> {
        if s.is_empty() {
            return Err(ReferenceError::Empty);
        }
        if s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(ReferenceError::HexIdentifier(s.to_owned()));
        }
        let (name_and_tag, digest) = match s.split_once('@') {
            Some((name, digest)) => (name, Some(digest)),
            None => (s, None),
        };
        let (registry, rest) = split_registry(name_and_tag);
        let (path, tag) = match rest.split_once(':') {
            Some((path, tag)) => (path, Some(tag)),
            None => (rest, None),
        };
        let repository = if registry == DEFAULT_REGISTRY && !path.contains('/') {
            format!("{OFFICIAL_PREFIX}{path}")
        } else {
            path.to_owned()
        };
        // Docker checks case before anything else, so `Mongo` gets the helpful message.
        if repository.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(ReferenceError::Uppercase(repository));
        }
        check_registry(&registry)?;
        check_repository(&repository)?;
        let len = registry.len() + 1 + repository.len();
        if len > NAME_MAX_LEN {
            return Err(ReferenceError::TooLong(len));
        }
        if let Some(tag) = tag {
            check_tag(tag)?;
        }
        let digest = digest.map(parse_digest).transpose()?;
        let tag = match (tag, &digest) {
            (Some(tag), _) => Some(tag.to_owned()),
            (None, Some(_)) => None,
            (None, None) => Some(DEFAULT_TAG.to_owned()),
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The registry, e.g. `docker.io` or `localhost:5000`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path within the registry, e.g. `library/mongo`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The tag; `latest` when the reference named neither tag nor digest, `None` when it
    /// named only a digest.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if the reference pinned one.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// Docker's short form: `docker.io/` and a lone `library/` dropped, except that
    /// `docker.io/` stays when the path's first component would read as a registry.
    ///
    /// ```
    /// use image::reference::Reference;
    ///
    /// assert_eq!(Reference::parse("docker.io/user/app:v1").unwrap().familiar(), "user/app:v1");
    /// assert_eq!(Reference::parse("quay.io/a/b").unwrap().familiar(), "quay.io/a/b:latest");
    /// ```
    pub fn familiar(&self) -> String {
        let mut out = if self.registry == DEFAULT_REGISTRY {
            match self.repository.strip_prefix(OFFICIAL_PREFIX) {
                Some(short) if !short.contains('/') => short.to_owned(),
                // Unlike Docker, keep `docker.io/` when dropping it would make the first
                // path component read as a registry (`docker.io/a.b/c`), so that the short
                // form always parses back to the same reference.
                _ if split_registry(&self.repository).0 != DEFAULT_REGISTRY => self.name(),
                _ => self.repository.clone(),
            }
        } else {
            self.name()
        };
        self.push_suffix(&mut out);
        out
    }

    /// The same reference with `tag`; a pinned digest is kept, as in Docker's `WithTag`.
    ///
    /// ```
    /// use image::reference::Reference;
    ///
    /// let r = Reference::parse("mongo").unwrap().with_tag("7.0").unwrap();
    /// assert_eq!(r.to_string(), "docker.io/library/mongo:7.0");
    /// assert!(Reference::parse("mongo").unwrap().with_tag("-x").is_err());
    /// ```
    pub fn with_tag(&self, tag: &str) -> Result<Reference> {
        check_tag(tag)?;
        Ok(Reference {
            tag: Some(tag.to_owned()),
            ..self.clone()
        })
    }

    fn push_suffix(&self, out: &mut String) {
        if let Some(tag) = &self.tag {
            out.push(':');
            out.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            out.push('@');
            out.push_str(&digest.to_string());
        }
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Reference> {
        Reference::parse(s)
    }
}

impl fmt::Display for Reference {
    /// The full normalized form, `registry/repository[:tag][@digest]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = self.name();
        self.push_suffix(&mut out);
        f.write_str(&out)
    }
}

/// Docker's `splitDockerDomain`: the registry (normalized) and the rest.
fn split_registry(name: &str) -> (String, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            let registry = if first == LEGACY_REGISTRY {
                DEFAULT_REGISTRY
            } else {
                first
            };
            (registry.to_owned(), rest)
        }
        _ => (DEFAULT_REGISTRY.to_owned(), name),
    }
}

fn check_registry(registry: &str) -> Result<()> {
    let bad = |reason: String| ReferenceError::InvalidRegistry {
        registry: registry.to_owned(),
        reason,
    };
    let (host, port) = if let Some(inner) = registry.strip_prefix('[') {
        let (address, after) = inner
            .split_once(']')
            .ok_or_else(|| bad("missing ']' after ipv6 address".into()))?;
        if address.is_empty() || !address.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return Err(bad(format!(
                "ipv6 address {address:?} must match [a-fA-F0-9:]+"
            )));
        }
        let port = match after.strip_prefix(':') {
            Some(port) => Some(port),
            None if after.is_empty() => None,
            None => return Err(bad(format!("unexpected {after:?} after ']'"))),
        };
        (None, port)
    } else {
        match registry.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(registry), None),
        }
    };
    if let Some(host) = host {
        for component in host.split('.') {
            let bytes = component.as_bytes();
            let ok = !bytes.is_empty()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
                && bytes.first() != Some(&b'-')
                && bytes.last() != Some(&b'-');
            if !ok {
                return Err(bad(format!(
                    "domain component {component:?} must match [a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?"
                )));
            }
        }
    }
    if let Some(port) = port {
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(format!("port {port:?} must be one or more digits")));
        }
    }
    Ok(())
}

fn check_repository(repository: &str) -> Result<()> {
    for component in repository.split('/') {
        if component.is_empty() {
            return Err(ReferenceError::EmptyComponent(repository.to_owned()));
        }
        if let Err(reason) = check_component(component) {
            return Err(ReferenceError::InvalidComponent {
                repository: repository.to_owned(),
                component: component.to_owned(),
                reason,
            });
        }
    }
    Ok(())
}

/// `[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*`, with the reason it fails.
fn check_component(component: &str) -> std::result::Result<(), String> {
    const SEPARATORS: &str = "a separator ('.', '_', '__' or '-'s) between [a-z0-9] runs";
    if let Some((offset, c)) = component
        .char_indices()
        .find(|(_, c)| !matches!(c, 'a'..='z' | '0'..='9' | '.' | '_' | '-'))
    {
        return Err(format!("unexpected {c:?} at offset {offset}"));
    }
    let bytes = component.as_bytes();
    let is_alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !bytes.first().is_some_and(is_alnum) {
        return Err(format!("must start with [a-z0-9], not {SEPARATORS}"));
    }
    if !bytes.last().is_some_and(is_alnum) {
        return Err(format!("must end with [a-z0-9], not {SEPARATORS}"));
    }
    let mut i = 0;
    while i < bytes.len() {
        if is_alnum(&bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !is_alnum(&bytes[i]) {
            i += 1;
        }
        let run = &component[start..i];
        if !matches!(run, "." | "_" | "__") && !run.bytes().all(|b| b == b'-') {
            return Err(format!(
                "separator {run:?} at offset {start} is not {SEPARATORS}"
            ));
        }
    }
    Ok(())
}

fn check_tag(tag: &str) -> Result<()> {
    let bad = |reason: String| ReferenceError::InvalidTag {
        tag: tag.to_owned(),
        reason,
    };
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    match tag.chars().next() {
        None => return Err(bad("tag is empty".into())),
        Some(c) if !is_word(c) => {
            return Err(bad(format!("must start with [A-Za-z0-9_], not {c:?}")))
        }
        Some(_) => {}
    }
    if let Some((offset, c)) = tag
        .char_indices()
        .find(|&(_, c)| !is_word(c) && c != '.' && c != '-')
    {
        return Err(bad(format!("unexpected {c:?} at offset {offset}")));
    }
    if tag.len() > TAG_MAX_LEN {
        return Err(bad(format!("too long ({} > {TAG_MAX_LEN})", tag.len())));
    }
    Ok(())
}

/// A digest after `@`: it must parse and, as in Docker, be of an algorithm we can verify.
fn parse_digest(text: &str) -> Result<Digest> {
    let digest: Digest = text.parse()?;
    if !digest.is_supported() {
        return Err(DigestError::Unsupported {
            digest: text.to_owned(),
            algorithm: digest.algorithm().to_owned(),
        }
        .into());
    }
    Ok(digest)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    /// `Ok((display, familiar))` or `Err(message)`.
    type Want = std::result::Result<(String, String), String>;

    /// (input, what parsing it must give)
    fn cases() -> Vec<(String, Want)> {
        let ok = |input: &str, display: &str, familiar: &str| {
            (
                input.to_owned(),
                Ok((display.to_owned(), familiar.to_owned())),
            )
        };
        let err = |input: &str, msg: &str| {
            (
                input.to_owned(),
                Err(format!("invalid reference format: {msg}")),
            )
        };
        let long = "a".repeat(240);
        let hex64 = "a".repeat(64);
        vec![
            // Docker Hub normalization.
            ok("mongo", "docker.io/library/mongo:latest", "mongo:latest"),
            ok("mongo:7.0", "docker.io/library/mongo:7.0", "mongo:7.0"),
            ok("user/app", "docker.io/user/app:latest", "user/app:latest"),
            ok("user/app:v1", "docker.io/user/app:v1", "user/app:v1"),
            ok(
                "docker.io/mongo",
                "docker.io/library/mongo:latest",
                "mongo:latest",
            ),
            ok(
                "docker.io/library/mongo",
                "docker.io/library/mongo:latest",
                "mongo:latest",
            ),
            ok(
                "index.docker.io/mongo",
                "docker.io/library/mongo:latest",
                "mongo:latest",
            ),
            ok(
                "index.docker.io/user/app:v2",
                "docker.io/user/app:v2",
                "user/app:v2",
            ),
            ok(
                "library/a/b",
                "docker.io/library/a/b:latest",
                "library/a/b:latest",
            ),
            ok(
                "docker.io/a.b/c",
                "docker.io/a.b/c:latest",
                "docker.io/a.b/c:latest",
            ),
            ok(
                "docker.io/localhost/c",
                "docker.io/localhost/c:latest",
                "docker.io/localhost/c:latest",
            ),
            ok("a/b/c/d", "docker.io/a/b/c/d:latest", "a/b/c/d:latest"),
            // Registries.
            ok("localhost/x", "localhost/x:latest", "localhost/x:latest"),
            ok(
                "localhost:5000/x",
                "localhost:5000/x:latest",
                "localhost:5000/x:latest",
            ),
            ok(
                "registry.local:5000/library/mongo:latest",
                "registry.local:5000/library/mongo:latest",
                "registry.local:5000/library/mongo:latest",
            ),
            ok(
                "quay.io/coreos/etcd:v3.5.0",
                "quay.io/coreos/etcd:v3.5.0",
                "quay.io/coreos/etcd:v3.5.0",
            ),
            ok("[::1]:5000/x", "[::1]:5000/x:latest", "[::1]:5000/x:latest"),
            ok("[fe80::1]/x:t", "[fe80::1]/x:t", "[fe80::1]/x:t"),
            ok(
                "Registry.Example.COM/x",
                "Registry.Example.COM/x:latest",
                "Registry.Example.COM/x:latest",
            ),
            ok("Foo/bar", "Foo/bar:latest", "Foo/bar:latest"),
            ok(
                "my-registry.io/a",
                "my-registry.io/a:latest",
                "my-registry.io/a:latest",
            ),
            ok(
                "xn--bcher-kva.example/a",
                "xn--bcher-kva.example/a:latest",
                "xn--bcher-kva.example/a:latest",
            ),
            ok(
                "localhostx/a",
                "docker.io/localhostx/a:latest",
                "localhostx/a:latest",
            ),
            // Separators.
            ok("a__b", "docker.io/library/a__b:latest", "a__b:latest"),
            ok(
                "a.b_c---d",
                "docker.io/library/a.b_c---d:latest",
                "a.b_c---d:latest",
            ),
            ok("0/1", "docker.io/0/1:latest", "0/1:latest"),
            // Tags and digests.
            ok(
                "mongo:LATEST_1.2-rc",
                "docker.io/library/mongo:LATEST_1.2-rc",
                "mongo:LATEST_1.2-rc",
            ),
            ok("mongo:_", "docker.io/library/mongo:_", "mongo:_"),
            ok(
                &format!("mongo:{}", "t".repeat(128)),
                &format!("docker.io/library/mongo:{}", "t".repeat(128)),
                &format!("mongo:{}", "t".repeat(128)),
            ),
            ok(
                &format!("mongo@{D}"),
                &format!("docker.io/library/mongo@{D}"),
                &format!("mongo@{D}"),
            ),
            ok(
                &format!("mongo:7@{D}"),
                &format!("docker.io/library/mongo:7@{D}"),
                &format!("mongo:7@{D}"),
            ),
            ok(
                &format!("localhost:5000/a/b:t@{D}"),
                &format!("localhost:5000/a/b:t@{D}"),
                &format!("localhost:5000/a/b:t@{D}"),
            ),
            ok(
                &format!("{}/{}", "a".repeat(100), "b".repeat(144)),
                &format!("docker.io/{}/{}:latest", "a".repeat(100), "b".repeat(144)),
                &format!("{}/{}:latest", "a".repeat(100), "b".repeat(144)),
            ),
            ok(
                &"g".repeat(64),
                &format!("docker.io/library/{}:latest", "g".repeat(64)),
                &format!("{}:latest", "g".repeat(64)),
            ),
            // Errors.
            err("", "empty reference"),
            err(
                "Mongo",
                r#"repository name must be lowercase: "library/Mongo""#,
            ),
            err(
                "user/App:v1",
                r#"repository name must be lowercase: "user/App""#,
            ),
            err(
                "localhost:5000/Foo",
                r#"repository name must be lowercase: "Foo""#,
            ),
            err(":tag", r#"empty path component in repository "library/""#),
            err("mongo:", r#"invalid tag "": tag is empty"#),
            err(
                "mongo:-x",
                r#"invalid tag "-x": must start with [A-Za-z0-9_], not '-'"#,
            ),
            err(
                "mongo:a+b",
                r#"invalid tag "a+b": unexpected '+' at offset 1"#,
            ),
            err(
                "mongo:a:b",
                r#"invalid tag "a:b": unexpected ':' at offset 1"#,
            ),
            err(
                "a/b:t/c",
                r#"invalid tag "t/c": unexpected '/' at offset 1"#,
            ),
            err(
                &format!("mongo:{}", "t".repeat(129)),
                &format!(r#"invalid tag "{}": too long (129 > 128)"#, "t".repeat(129)),
            ),
            err("mongo@", "invalid digest: empty string"),
            err(
                "mongo@junk",
                r#"invalid digest "junk": missing ':' between algorithm and encoded part"#,
            ),
            err(
                "mongo@sha256:abc",
                r#"invalid digest "sha256:abc": sha256 needs 64 hex characters, got 3"#,
            ),
            err(
                &format!("mongo@{D}@{D}"),
                &format!(r#"invalid digest "{D}@{D}": encoded part must match [a-zA-Z0-9=_-]+"#),
            ),
            err(
                "mongo@md5:d41d8cd98f00b204e9800998ecf8427e",
                r#"unsupported digest algorithm "md5" in "md5:d41d8cd98f00b204e9800998ecf8427e" (only sha256, sha384 and sha512 can be verified)"#,
            ),
            err(
                &format!("{long}/{long}"),
                "repository name too long (491 > 255)",
            ),
            err(
                &format!("{}/{}", "a".repeat(100), "b".repeat(145)),
                "repository name too long (256 > 255)",
            ),
            err(
                &hex64,
                &format!(r#""{hex64}" is a 64-character hex image id, not a repository name"#),
            ),
            err(
                "localhost:abc/x",
                r#"invalid registry "localhost:abc": port "abc" must be one or more digits"#,
            ),
            err(
                "localhost:/x",
                r#"invalid registry "localhost:": port "" must be one or more digits"#,
            ),
            err(
                "localhost:50:00/x",
                r#"invalid registry "localhost:50:00": port "50:00" must be one or more digits"#,
            ),
            err(
                "-bad.io/x",
                r#"invalid registry "-bad.io": domain component "-bad" must match [a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?"#,
            ),
            err(
                "a..b/x",
                r#"invalid registry "a..b": domain component "" must match [a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?"#,
            ),
            err(
                "reg_istry.io/x",
                r#"invalid registry "reg_istry.io": domain component "reg_istry" must match [a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?"#,
            ),
            err(
                "[::1/x",
                r#"invalid registry "[::1": missing ']' after ipv6 address"#,
            ),
            err(
                "[]:5000/x",
                r#"invalid registry "[]:5000": ipv6 address "" must match [a-fA-F0-9:]+"#,
            ),
            err(
                "[::g]/x",
                r#"invalid registry "[::g]": ipv6 address "::g" must match [a-fA-F0-9:]+"#,
            ),
            err(
                "[::1]x/y",
                r#"invalid registry "[::1]x": unexpected "x" after ']'"#,
            ),
            err("a//b", r#"empty path component in repository "a//b""#),
            err("a/b/", r#"empty path component in repository "a/b/""#),
            err("/a", r#"empty path component in repository "/a""#),
            err("localhost/", r#"empty path component in repository """#),
            err(
                "a___b",
                r#"invalid path component "a___b" in repository "library/a___b": separator "___" at offset 1 is not a separator ('.', '_', '__' or '-'s) between [a-z0-9] runs"#,
            ),
            err(
                "a.-b",
                r#"invalid path component "a.-b" in repository "library/a.-b": separator ".-" at offset 1 is not a separator ('.', '_', '__' or '-'s) between [a-z0-9] runs"#,
            ),
            err(
                "a..b",
                r#"invalid path component "a..b" in repository "library/a..b": separator ".." at offset 1 is not a separator ('.', '_', '__' or '-'s) between [a-z0-9] runs"#,
            ),
            err(
                "-a",
                r#"invalid path component "-a" in repository "library/-a": must start with [a-z0-9], not a separator ('.', '_', '__' or '-'s) between [a-z0-9] runs"#,
            ),
            err(
                "a_",
                r#"invalid path component "a_" in repository "library/a_": must end with [a-z0-9], not a separator ('.', '_', '__' or '-'s) between [a-z0-9] runs"#,
            ),
            err(
                "a b",
                r#"invalid path component "a b" in repository "library/a b": unexpected ' ' at offset 1"#,
            ),
            err(
                "mongö",
                r#"invalid path component "mongö" in repository "library/mongö": unexpected 'ö' at offset 4"#,
            ),
        ]
    }

    #[test]
    fn parse_table() {
        let cases = cases();
        assert!(cases.len() >= 40);
        for (input, want) in cases {
            let got = Reference::parse(&input);
            match (&got, &want) {
                (Ok(r), Ok((display, familiar))) => {
                    assert_eq!(&r.to_string(), display, "display of {input:?}");
                    assert_eq!(&r.familiar(), familiar, "familiar of {input:?}");
                    assert_eq!(Reference::parse(display).as_ref(), Ok(r), "{input:?}");
                    assert_eq!(Reference::parse(familiar).as_ref(), Ok(r), "{input:?}");
                }
                (Err(e), Err(msg)) => assert_eq!(&e.to_string(), msg, "{input:?}"),
                _ => panic!("{input:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn getters() {
        let r = Reference::parse(&format!("registry.local:5000/library/mongo:7@{D}")).unwrap();
        assert_eq!(r.registry(), "registry.local:5000");
        assert_eq!(r.repository(), "library/mongo");
        assert_eq!(r.name(), "registry.local:5000/library/mongo");
        assert_eq!(r.tag(), Some("7"));
        assert_eq!(r.digest().map(Digest::to_string).as_deref(), Some(D));

        let pinned = Reference::parse(&format!("mongo@{D}")).unwrap();
        assert_eq!(pinned.tag(), None, "a digest alone gets no default tag");
        assert_eq!("mongo".parse::<Reference>().unwrap().tag(), Some("latest"));
    }

    #[test]
    fn with_tag_keeps_digest_and_checks_tag() {
        let r = Reference::parse(&format!("user/app@{D}")).unwrap();
        assert_eq!(
            r.with_tag("v2").unwrap().to_string(),
            format!("docker.io/user/app:v2@{D}")
        );
        assert_eq!(
            r.with_tag("v 2").unwrap_err().to_string(),
            r#"invalid reference format: invalid tag "v 2": unexpected ' ' at offset 1"#
        );
    }

    fn component() -> impl Strategy<Value = String> {
        "[a-z0-9]{1,5}(([._]|__|-{1,3})[a-z0-9]{1,5}){0,2}"
    }

    fn reference_text() -> impl Strategy<Value = String> {
        let registry = prop_oneof![
            Just(String::new()),
            Just("localhost/".to_owned()),
            Just("docker.io/".to_owned()),
            Just("index.docker.io/".to_owned()),
            Just("[::1]:5000/".to_owned()),
            "[a-zA-Z0-9]{1,6}(\\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,4}[a-zA-Z0-9])?){1,2}(:[0-9]{1,5})?/",
            "localhost:[0-9]{1,5}/",
        ];
        let tag = proptest::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,30}");
        let digest = proptest::option::of(any::<Vec<u8>>().prop_map(|b| Digest::sha256_of(&b)));
        (
            registry,
            prop::collection::vec(component(), 1..4),
            tag,
            digest,
        )
            .prop_map(|(registry, mut path, tag, digest)| {
                if registry.is_empty() {
                    // A first component with a '.' would be taken for a registry.
                    path[0] = path[0].replace('.', "_");
                }
                let mut s = format!("{registry}{}", path.join("/"));
                if let Some(tag) = tag {
                    s = format!("{s}:{tag}");
                }
                if let Some(digest) = digest {
                    s = format!("{s}@{digest}");
                }
                s
            })
    }

    proptest! {
        #[test]
        fn valid_references_round_trip(text in reference_text()) {
            let r = Reference::parse(&text).unwrap();
            prop_assert_eq!(Reference::parse(&r.to_string()).unwrap(), r.clone());
            prop_assert_eq!(Reference::parse(&r.familiar()).unwrap(), r.clone());
            prop_assert!(r.tag().is_some() || r.digest().is_some());
        }

        #[test]
        fn arbitrary_strings_never_panic(text in any::<String>()) {
            let _ = Reference::parse(&text);
        }

        #[test]
        fn reference_like_strings_never_panic(text in "[a-zA-Z0-9:/@._\\-\\[\\]]{0,80}") {
            if let Ok(r) = Reference::parse(&text) {
                prop_assert_eq!(Reference::parse(&r.to_string()).unwrap(), r);
            }
        }
    }
}
