//! `flotctl verify FILE…`: check unit files before they reach a machine.

use std::path::Path;
use std::process::ExitCode;

use unitgen::unit::Unit;

/// Checks every file, prints every problem as `FILE:LINE:COL: error: MESSAGE` on stdout and a
/// summary on stderr. Exit status 0 when all files are clean, 1 otherwise.
pub fn run(files: &[impl AsRef<Path>]) -> ExitCode {
    let mut failed = 0usize;
    let mut problems = 0usize;
    for path in files {
        let path = path.as_ref();
        let label = path.display().to_string();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let outcome = std::fs::read(path)
            .map_err(|error| vec![format!("{label}: error: cannot read unit file: {error}")])
            .and_then(|bytes| {
                Unit::check(label.as_str(), &name, &bytes).map_err(|diagnostics| {
                    diagnostics
                        .sorted()
                        .iter()
                        .map(ToString::to_string)
                        .collect()
                })
            });
        if let Err(lines) = outcome {
            failed += 1;
            problems += lines.len();
            for line in lines {
                println!("{line}");
            }
        }
    }
    let total = files.len();
    if failed == 0 {
        eprintln!("{total} unit file(s) verified, no problems");
        ExitCode::SUCCESS
    } else {
        eprintln!("{problems} problem(s) in {failed} of {total} unit file(s)");
        ExitCode::FAILURE
    }
}
