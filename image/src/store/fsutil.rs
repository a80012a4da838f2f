//! The file-system steps the store is built from: unique staging names, atomic replacement of a
//! small file, and the syncs that make a rename durable.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A name no other process or thread will pick: pid, a per-process counter and the clock.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}-{}-{}-{nanos:08x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Replaces `path` with `bytes` atomically and durably: a temporary file in the same directory
/// is written, fsynced and renamed over `path`, then the directory is fsynced. A reader sees the
/// old content or the new, never a mix; a crash leaves at worst a stray temporary file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    replace(path, bytes, true)
}

/// Replaces `path` with `bytes` atomically but without syncing: a reader (or a process that
/// crashed midway) sees the old content or the new, but a crash of the host may lose the
/// change. For state that is worthless after a reboot (a `--rm` container's record).
pub fn write_atomic_volatile(path: &Path, bytes: &[u8]) -> io::Result<()> {
    replace(path, bytes, false)
}

fn replace(path: &Path, bytes: &[u8], durable: bool) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    let temporary = dir.join(unique_name(&format!(".{name}")));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&temporary)?;
        file.write_all(bytes)?;
        if durable {
            file.sync_all()?;
        }
        fs::rename(&temporary, path)?;
        if durable {
            fsync_dir(dir)?;
        }
        Ok(())
    })();
    if result.is_err() {
        // Best effort: the temporary may not even exist.
        let _ = fs::remove_file(&temporary);
    }
    result
}

/// Fsyncs a directory, making the renames and unlinks in it durable.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Flushes the whole file system holding `path` (one `syncfs(2)`): used once per image before
/// the index starts to reference new content, instead of an fsync per unpacked file.
pub fn syncfs(path: &Path) -> io::Result<()> {
    let dir = File::open(path)?;
    rustix::fs::syncfs(&dir)?;
    Ok(())
}
