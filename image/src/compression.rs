//! Whole-stream compression as archives and layers use it: gzip, zstd or none, told apart by
//! the first bytes, and the matching decoder.

use std::io::{self, Cursor, Read};

use crate::media_types;

/// How a stream is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip (RFC 1952), possibly several members.
    Gzip,
    /// zstd frames.
    Zstd,
}

/// The bytes [`Compression::detect`] and [`unsupported`] look at.
pub const MAGIC_LEN: usize = 6;

/// The name of a compression that streams may use but we refuse (bzip2, xz), from the first
/// bytes of a stream.
pub fn unsupported(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(b"BZh") {
        Some("bzip2")
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Some("xz")
    } else {
        None
    }
}

impl Compression {
    /// Tells the compression from the first bytes of a stream.
    ///
    /// ```
    /// use image::compression::Compression;
    ///
    /// assert_eq!(Compression::detect(&[0x1f, 0x8b, 8, 0]), Compression::Gzip);
    /// assert_eq!(Compression::detect(b"bin/"), Compression::None);
    /// ```
    pub fn detect(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    /// A reader of the decompressed stream.
    pub fn decoder<'a>(self, reader: impl Read + 'a) -> io::Result<Box<dyn Read + 'a>> {
        Ok(match self {
            Compression::None => Box::new(reader),
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(reader)),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(reader)?),
        })
    }

    /// The OCI layer media type of a layer blob compressed this way.
    pub fn oci_layer_type(self) -> &'static str {
        match self {
            Compression::None => media_types::OCI_LAYER,
            Compression::Gzip => media_types::OCI_LAYER_GZIP,
            Compression::Zstd => media_types::OCI_LAYER_ZSTD,
        }
    }

    /// The Docker schema 2 layer media type of a layer blob compressed this way.
    pub fn docker_layer_type(self) -> &'static str {
        match self {
            Compression::None => media_types::DOCKER_LAYER,
            Compression::Gzip => media_types::DOCKER_LAYER_GZIP,
            Compression::Zstd => media_types::DOCKER_LAYER_ZSTD,
        }
    }
}

/// A stream whose first bytes were read to sniff it, put back in front.
pub type Sniffed<R> = io::Chain<Cursor<Vec<u8>>, R>;

/// Reads the first bytes of `reader` and gives back its compression together with a reader of
/// the whole, unchanged stream.
pub fn sniff<R: Read>(mut reader: R) -> io::Result<(Compression, Sniffed<R>)> {
    let mut head = [0u8; MAGIC_LEN];
    let mut len = 0;
    while len < head.len() {
        match reader.read(&mut head[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let compression = Compression::detect(&head[..len]);
    Ok((compression, Cursor::new(head[..len].to_vec()).chain(reader)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing_keeps_every_byte() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        io::Write::write_all(&mut gz, b"hello").unwrap();
        let gz = gz.finish().unwrap();
        let (compression, stream) = sniff(&gz[..]).unwrap();
        assert_eq!(compression, Compression::Gzip);
        let mut out = String::new();
        compression
            .decoder(stream)
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "hello");
        let (compression, mut stream) = sniff(&b"ab"[..]).unwrap();
        assert_eq!(compression, Compression::None);
        let mut out = String::new();
        stream.read_to_string(&mut out).unwrap();
        assert_eq!(out, "ab");
        let zst = zstd::encode_all(&b"x"[..], 1).unwrap();
        assert_eq!(Compression::detect(&zst), Compression::Zstd);
    }
}
