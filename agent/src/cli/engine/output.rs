//! Where `save` and `export` write: a file given with `-o` (removed again if the command
//! fails, so no truncated archive is left behind) or standard output, which must not be a
//! terminal.

use std::fs::File;
use std::io::{self, IsTerminal};
use std::os::fd::AsFd;
use std::path::Path;

/// Runs `write` on the output file (`path`, or standard output) and cleans up after a failure.
pub fn write_to<T>(
    path: Option<&Path>,
    command: &str,
    write: impl FnOnce(File) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let Some(path) = path else {
        let stdout = io::stdout();
        if stdout.is_terminal() {
            anyhow::bail!("cowardly refusing to write the {command} tarball to a terminal; use -o FILE or redirect standard output");
        }
        return write(File::from(stdout.as_fd().try_clone_to_owned()?));
    };
    let file =
        File::create(path).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", path.display()))?;
    let result = write(file);
    if result.is_err() {
        // Best effort: the error being reported matters more than a failed cleanup.
        let _ = std::fs::remove_file(path);
    }
    result
}
