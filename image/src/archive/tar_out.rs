//! Writing an archive's tar stream: headers written by hand and content copied file to file,
//! so that on Linux `std::io::copy` can move blob bytes with `copy_file_range` (to a regular
//! file) or `splice`/`sendfile` (to a pipe) instead of through user space.
//!
//! Content whose length is not known in advance (a layer being decompressed) is written after
//! a placeholder header that is rewritten in place once the length is known; when the output
//! cannot be rewritten (a pipe, or a file opened for appending) it is spooled to an anonymous
//! temporary file first.

use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use rustix::fs::OFlags;

use super::{ArchiveError, Result};

const BLOCK: u64 = 512;

/// A tar stream being written to a file, pipe or terminal.
#[derive(Debug)]
pub struct TarOut {
    out: File,
    /// Where the next header goes, when the output can be rewritten in place.
    position: Option<u64>,
    spool_dir: PathBuf,
}

impl TarOut {
    /// Starts a tar stream on `out`; content of unknown length is spooled under `spool_dir`
    /// when `out` cannot be rewritten.
    pub fn new(mut out: File, spool_dir: &Path) -> TarOut {
        let appending = rustix::fs::fcntl_getfl(&out).is_ok_and(|f| f.contains(OFlags::APPEND));
        let regular = out.metadata().is_ok_and(|m| m.is_file());
        let position = if regular && !appending {
            out.stream_position().ok()
        } else {
            None
        };
        TarOut {
            out,
            position,
            spool_dir: spool_dir.to_owned(),
        }
    }

    /// Adds a regular file holding `bytes`.
    pub fn append_bytes(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        self.write(&header(name, bytes.len() as u64)?)?;
        self.write(bytes)?;
        self.pad(bytes.len() as u64)
    }

    /// Adds a regular file with the content of `file`, copied kernel-side where possible.
    pub fn append_file(&mut self, name: &str, file: &mut File) -> Result<()> {
        let size = file.metadata().map_err(ArchiveError::Output)?.len();
        self.write(&header(name, size)?)?;
        let copied = io::copy(&mut Read::by_ref(file).take(size), &mut self.out)
            .map_err(ArchiveError::Output)?;
        if copied != size {
            return Err(ArchiveError::Output(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{name} shrank to {copied} bytes while being written"),
            )));
        }
        self.advance(size);
        self.pad(size)
    }

    /// Adds a regular file with everything `reader` gives; `reader`'s errors are reported as
    /// `source_error` makes them.
    pub fn append_stream(
        &mut self,
        name: &str,
        reader: &mut dyn Read,
        source_error: &dyn Fn(io::Error) -> ArchiveError,
    ) -> Result<()> {
        let Some(start) = self.position else {
            let mut spool =
                tempfile::tempfile_in(&self.spool_dir).map_err(|source| ArchiveError::Io {
                    path: self.spool_dir.clone(),
                    source,
                })?;
            copy_from(reader, &mut spool, source_error, &ArchiveError::Output)?;
            spool.rewind().map_err(ArchiveError::Output)?;
            return self.append_file(name, &mut spool);
        };
        self.write(&header(name, 0)?)?;
        let size = copy_from(reader, &mut self.out, source_error, &ArchiveError::Output)?;
        self.out
            .write_all_at(&header(name, size)?, start)
            .map_err(ArchiveError::Output)?;
        self.advance(size);
        self.pad(size)
    }

    /// Ends the stream with two zero blocks and flushes it to the file.
    pub fn finish(mut self) -> Result<File> {
        self.write(&[0; 2 * BLOCK as usize])?;
        self.out.flush().map_err(ArchiveError::Output)?;
        Ok(self.out)
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.out.write_all(bytes).map_err(ArchiveError::Output)?;
        self.advance(bytes.len() as u64);
        Ok(())
    }

    fn advance(&mut self, bytes: u64) {
        if let Some(position) = &mut self.position {
            *position += bytes;
        }
    }

    fn pad(&mut self, size: u64) -> Result<()> {
        let rest = (BLOCK - size % BLOCK) % BLOCK;
        self.write(&[0; BLOCK as usize][..rest as usize])
    }
}

/// Copies `reader` to `out` with a large buffer, telling read errors (`read_error`) from
/// write errors (`write_error`); returns the bytes copied.
pub(crate) fn copy_from(
    reader: &mut dyn Read,
    out: &mut File,
    read_error: &dyn Fn(io::Error) -> ArchiveError,
    write_error: &dyn Fn(io::Error) -> ArchiveError,
) -> Result<u64> {
    let mut buffer = vec![0u8; 1 << 20];
    let mut total = 0;
    loop {
        let n = match reader.read(&mut buffer) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_error(e)),
        };
        out.write_all(&buffer[..n]).map_err(write_error)?;
        total += n as u64;
    }
}

/// A ustar header for a read-only regular file named `name`, dated the epoch as podman's and
/// skopeo's archives are, so equal images give equal archives.
fn header(name: &str, size: u64) -> Result<[u8; BLOCK as usize]> {
    let mut header = tar::Header::new_ustar();
    header
        .set_path(name)
        .map_err(|e| ArchiveError::Output(io::Error::new(e.kind(), format!("{name}: {e}"))))?;
    header.set_size(size);
    header.set_mode(0o444);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    Ok(*header.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(mut file: File) -> Vec<(String, Vec<u8>)> {
        file.rewind().unwrap();
        let mut archive = tar::Archive::new(file);
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                (e.path().unwrap().display().to_string(), data)
            })
            .collect()
    }

    #[test]
    fn streams_are_sized_in_place_or_spooled() {
        let dir = tempfile::tempdir().unwrap();
        let no_error = |e| ArchiveError::Input(e);
        for seekable in [true, false] {
            let mut out = TarOut::new(tempfile::tempfile().unwrap(), dir.path());
            if !seekable {
                out.position = None;
            }
            out.append_bytes("a.json", b"{}").unwrap();
            out.append_stream("b.tar", &mut &[7u8; 700][..], &no_error)
                .unwrap();
            let mut blob = tempfile::tempfile().unwrap();
            blob.write_all(b"blob").unwrap();
            blob.rewind().unwrap();
            out.append_file("c", &mut blob).unwrap();
            let entries = listing(out.finish().unwrap());
            assert_eq!(
                entries,
                vec![
                    ("a.json".to_owned(), b"{}".to_vec()),
                    ("b.tar".to_owned(), vec![7u8; 700]),
                    ("c".to_owned(), b"blob".to_vec()),
                ]
            );
        }
    }
}
