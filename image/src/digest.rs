//! Content digests: the `algorithm:encoded` strings that name every blob in an image.
//!
//! The grammar is the OCI image spec's (`descriptor.md`, "Digests"):
//!
//! ```text
//! digest    ::= algorithm ":" encoded
//! algorithm ::= [a-z0-9]+ ([.+_-] [a-z0-9]+)*
//! encoded   ::= [a-zA-Z0-9=_-]+
//! ```
//!
//! Any digest matching the grammar parses, but only the algorithms we can compute are
//! checked further and can be verified: `sha256` (64 lowercase hex characters), `sha512`
//! (128) and, as Docker's `go-digest` also accepts it, `sha384` (96). For any other
//! algorithm [`Digest::is_supported`] is false and [`Verifier::new`] refuses it, so an
//! unknown digest is never silently trusted.
//!
//! Everything here is pure: bytes in, digests and verdicts out.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest as _, Sha256, Sha384, Sha512};

/// Why a digest could not be parsed or did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// The input was the empty string.
    #[error("invalid digest: empty string")]
    Empty,
    /// There is no `:` between algorithm and encoded part.
    #[error("invalid digest {0:?}: missing ':' between algorithm and encoded part")]
    MissingSeparator(String),
    /// The algorithm does not match `[a-z0-9]+([.+_-][a-z0-9]+)*`.
    #[error(
        "invalid digest {digest:?}: algorithm {algorithm:?} must match [a-z0-9]+([.+_-][a-z0-9]+)*"
    )]
    InvalidAlgorithm {
        /// The whole digest text.
        digest: String,
        /// The algorithm part.
        algorithm: String,
    },
    /// The encoded part is empty or has a character outside `[a-zA-Z0-9=_-]`.
    #[error("invalid digest {digest:?}: encoded part must match [a-zA-Z0-9=_-]+")]
    InvalidEncoded {
        /// The whole digest text.
        digest: String,
    },
    /// A known algorithm with the wrong number of hex characters.
    #[error("invalid digest {digest:?}: {algorithm} needs {expected} hex characters, got {got}")]
    WrongLength {
        /// The whole digest text.
        digest: String,
        /// The (known) algorithm.
        algorithm: &'static str,
        /// The required length.
        expected: usize,
        /// The actual length.
        got: usize,
    },
    /// A known algorithm whose encoded part is not lowercase hex.
    #[error("invalid digest {digest:?}: {algorithm} needs lowercase hex [0-9a-f], found {found:?} at offset {offset}")]
    NotLowercaseHex {
        /// The whole digest text.
        digest: String,
        /// The (known) algorithm.
        algorithm: &'static str,
        /// The first offending character.
        found: char,
        /// Its offset in the encoded part.
        offset: usize,
    },
    /// The digest is well formed but its algorithm cannot be computed here.
    #[error("unsupported digest algorithm {algorithm:?} in {digest:?} (only sha256, sha384 and sha512 can be verified)")]
    Unsupported {
        /// The whole digest text.
        digest: String,
        /// The algorithm part.
        algorithm: String,
    },
    /// The content hashed to something other than the expected digest.
    #[error("digest mismatch: expected {expected}, got {got}")]
    Mismatch {
        /// The digest the content was supposed to have.
        expected: Digest,
        /// The digest it actually has.
        got: Digest,
    },
}

/// A `Result` whose error is [`DigestError`].
pub type Result<T, E = DigestError> = std::result::Result<T, E>;

/// The algorithms we can compute, with their hex lengths.
const KNOWN: [(&str, usize); 3] = [("sha256", 64), ("sha384", 96), ("sha512", 128)];

/// A parsed, validated `algorithm:encoded` digest.
///
/// ```
/// use image::digest::Digest;
///
/// let d = Digest::sha256_of(b"hello");
/// assert_eq!(d.algorithm(), "sha256");
/// assert_eq!(d.to_string().parse::<Digest>().unwrap(), d);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    /// The whole text, `algorithm:encoded`.
    text: String,
    /// Byte offset of the `:`.
    colon: usize,
}

impl Digest {
    /// The algorithm, e.g. `sha256`.
    pub fn algorithm(&self) -> &str {
        &self.text[..self.colon]
    }

    /// The encoded part after the `:`; lowercase hex for the supported algorithms.
    pub fn hex(&self) -> &str {
        &self.text[self.colon + 1..]
    }

    /// Whether [`Verifier`] can check content against this digest.
    pub fn is_supported(&self) -> bool {
        KNOWN.iter().any(|(name, _)| *name == self.algorithm())
    }

    /// The sha256 digest of `bytes`.
    ///
    /// ```
    /// use image::digest::Digest;
    ///
    /// assert_eq!(
    ///     Digest::sha256_of(b"").to_string(),
    ///     "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    /// );
    /// ```
    pub fn sha256_of(bytes: &[u8]) -> Digest {
        Digest::from_hash("sha256", &Sha256::digest(bytes))
    }

    fn from_hash(algorithm: &str, hash: &[u8]) -> Digest {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut text = String::with_capacity(algorithm.len() + 1 + hash.len() * 2);
        text.push_str(algorithm);
        text.push(':');
        for byte in hash {
            text.push(char::from(HEX[usize::from(byte >> 4)]));
            text.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
        Digest {
            text,
            colon: algorithm.len(),
        }
    }
}

/// `[a-z0-9]+([.+_-][a-z0-9]+)*`
fn valid_algorithm(algorithm: &str) -> bool {
    !algorithm.is_empty()
        && algorithm.split(['.', '+', '_', '-']).all(|part| {
            !part.is_empty() && part.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9'))
        })
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Digest> {
        if s.is_empty() {
            return Err(DigestError::Empty);
        }
        let colon = s
            .find(':')
            .ok_or_else(|| DigestError::MissingSeparator(s.to_owned()))?;
        let (algorithm, encoded) = (&s[..colon], &s[colon + 1..]);
        if !valid_algorithm(algorithm) {
            return Err(DigestError::InvalidAlgorithm {
                digest: s.to_owned(),
                algorithm: algorithm.to_owned(),
            });
        }
        if encoded.is_empty()
            || !encoded
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'_' | b'-'))
        {
            return Err(DigestError::InvalidEncoded {
                digest: s.to_owned(),
            });
        }
        if let Some(&(known, expected)) = KNOWN.iter().find(|(name, _)| *name == algorithm) {
            if let Some((offset, found)) = encoded
                .char_indices()
                .find(|(_, c)| !matches!(c, '0'..='9' | 'a'..='f'))
            {
                return Err(DigestError::NotLowercaseHex {
                    digest: s.to_owned(),
                    algorithm: known,
                    found,
                    offset,
                });
            }
            if encoded.len() != expected {
                return Err(DigestError::WrongLength {
                    digest: s.to_owned(),
                    algorithm: known,
                    expected,
                    got: encoded.len(),
                });
            }
        }
        Ok(Digest {
            text: s.to_owned(),
            colon,
        })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Digest, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Computes the sha256 digest of streamed content, for content whose digest is not known in
/// advance (an uncompressed layer's diff ID, an imported tarball).
///
/// ```
/// use image::digest::{Digest, Sha256Digester};
///
/// let mut d = Sha256Digester::default();
/// d.update(b"hello ");
/// d.update(b"world");
/// assert_eq!(d.finish(), Digest::sha256_of(b"hello world"));
/// ```
#[derive(Debug, Clone, Default)]
pub struct Sha256Digester(Sha256);

impl Sha256Digester {
    /// Feeds the next chunk of content.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The digest of everything fed so far.
    pub fn finish(self) -> Digest {
        Digest::from_hash("sha256", &self.0.finalize())
    }
}

/// Checks streamed content against an expected digest.
///
/// ```
/// use image::digest::{Digest, Verifier};
///
/// let expected = Digest::sha256_of(b"hello world");
/// let mut v = Verifier::new(&expected).unwrap();
/// v.update(b"hello ");
/// v.update(b"world");
/// assert!(v.finish().is_ok());
/// ```
#[derive(Debug, Clone)]
pub struct Verifier {
    expected: Digest,
    hasher: Hasher,
}

#[derive(Debug, Clone)]
enum Hasher {
    Sha256(Sha256),
    Sha384(Sha384),
    Sha512(Sha512),
}

impl Verifier {
    /// A verifier for `expected`; fails with [`DigestError::Unsupported`] for an algorithm
    /// we cannot compute.
    pub fn new(expected: &Digest) -> Result<Verifier> {
        let hasher = match expected.algorithm() {
            "sha256" => Hasher::Sha256(Sha256::new()),
            "sha384" => Hasher::Sha384(Sha384::new()),
            "sha512" => Hasher::Sha512(Sha512::new()),
            other => {
                return Err(DigestError::Unsupported {
                    digest: expected.to_string(),
                    algorithm: other.to_owned(),
                })
            }
        };
        Ok(Verifier {
            expected: expected.clone(),
            hasher,
        })
    }

    /// Feeds the next chunk of content.
    pub fn update(&mut self, bytes: &[u8]) {
        match &mut self.hasher {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sha384(h) => h.update(bytes),
            Hasher::Sha512(h) => h.update(bytes),
        }
    }

    /// Whether everything fed so far hashes to the expected digest.
    pub fn finish(self) -> Result<()> {
        let got = match self.hasher {
            Hasher::Sha256(h) => Digest::from_hash("sha256", &h.finalize()),
            Hasher::Sha384(h) => Digest::from_hash("sha384", &h.finalize()),
            Hasher::Sha512(h) => Digest::from_hash("sha512", &h.finalize()),
        };
        if got == self.expected {
            Ok(())
        } else {
            Err(DigestError::Mismatch {
                expected: self.expected,
                got,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY_SHA256: &str =
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parse_table() {
        let h64 = "a".repeat(64);
        let h96 = "b".repeat(96);
        let h128 = "c".repeat(128);
        // (input, Ok(supported) or Err(message))
        let cases: Vec<(String, std::result::Result<bool, String>)> = vec![
            (EMPTY_SHA256.into(), Ok(true)),
            (format!("sha256:{h64}"), Ok(true)),
            (format!("sha384:{h96}"), Ok(true)),
            (format!("sha512:{h128}"), Ok(true)),
            ("multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8".into(), Ok(false)),
            ("sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564".into(), Ok(false)),
            ("blake3:abc=".into(), Ok(false)),
            ("".into(), Err("invalid digest: empty string".into())),
            ("sha256".into(), Err(r#"invalid digest "sha256": missing ':' between algorithm and encoded part"#.into())),
            (format!(":{h64}"), Err(format!(r#"invalid digest ":{h64}": algorithm "" must match [a-z0-9]+([.+_-][a-z0-9]+)*"#))),
            (format!("SHA256:{h64}"), Err(format!(r#"invalid digest "SHA256:{h64}": algorithm "SHA256" must match [a-z0-9]+([.+_-][a-z0-9]+)*"#))),
            ("sha256+:abc".into(), Err(r#"invalid digest "sha256+:abc": algorithm "sha256+" must match [a-z0-9]+([.+_-][a-z0-9]+)*"#.into())),
            ("sha256:".into(), Err(r#"invalid digest "sha256:": encoded part must match [a-zA-Z0-9=_-]+"#.into())),
            ("foo:a b".into(), Err(r#"invalid digest "foo:a b": encoded part must match [a-zA-Z0-9=_-]+"#.into())),
            ("sha256:abc".into(), Err(r#"invalid digest "sha256:abc": sha256 needs 64 hex characters, got 3"#.into())),
            (format!("sha512:{h64}"), Err(format!(r#"invalid digest "sha512:{h64}": sha512 needs 128 hex characters, got 64"#))),
            (format!("sha256:{}A", &h64[1..]), Err(format!(r#"invalid digest "sha256:{}A": sha256 needs lowercase hex [0-9a-f], found 'A' at offset 63"#, &h64[1..]))),
            (format!("sha256:g{}", &h64[1..]), Err(format!(r#"invalid digest "sha256:g{}": sha256 needs lowercase hex [0-9a-f], found 'g' at offset 0"#, &h64[1..]))),
        ];
        for (input, want) in cases {
            let got = input.parse::<Digest>();
            match (&got, &want) {
                (Ok(d), Ok(supported)) => {
                    assert_eq!(d.to_string(), input);
                    assert_eq!(d.is_supported(), *supported, "{input}");
                    assert_eq!(format!("{}:{}", d.algorithm(), d.hex()), input);
                }
                (Err(e), Err(msg)) => assert_eq!(&e.to_string(), msg, "{input}"),
                _ => panic!("{input:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn sha256_of_known_values() {
        assert_eq!(Digest::sha256_of(b"").to_string(), EMPTY_SHA256);
        assert_eq!(
            Digest::sha256_of(b"abc").hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn verifier_accepts_matching_content_in_chunks() {
        let data: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
        let expected = Digest::sha256_of(&data);
        let mut v = Verifier::new(&expected).unwrap();
        for chunk in data.chunks(777) {
            v.update(chunk);
        }
        v.finish().unwrap();
    }

    #[test]
    fn verifier_sha512_and_sha384() {
        // sha512("abc") and sha384("abc") from FIPS 180-2.
        let sha512: Digest =
            "sha512:ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
                              2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
                .parse()
                .unwrap();
        let sha384: Digest =
            "sha384:cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed\
                              8086072ba1e7cc2358baeca134c825a7"
                .parse()
                .unwrap();
        for d in [sha512, sha384] {
            let mut v = Verifier::new(&d).unwrap();
            v.update(b"abc");
            v.finish().unwrap();
        }
    }

    #[test]
    fn verifier_reports_mismatch() {
        let expected = Digest::sha256_of(b"hello");
        let mut v = Verifier::new(&expected).unwrap();
        v.update(b"hellO");
        let err = v.finish().unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "digest mismatch: expected {expected}, got {}",
                Digest::sha256_of(b"hellO")
            )
        );
        assert!(err
            .to_string()
            .starts_with("digest mismatch: expected sha256:"));
    }

    #[test]
    fn verifier_refuses_unknown_algorithm() {
        let d: Digest = "blake3:abc".parse().unwrap();
        assert_eq!(
            Verifier::new(&d).unwrap_err().to_string(),
            r#"unsupported digest algorithm "blake3" in "blake3:abc" (only sha256, sha384 and sha512 can be verified)"#
        );
    }
}
