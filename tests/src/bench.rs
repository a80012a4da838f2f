//! What the benchmark binaries share: timing a command that must succeed, and the median of
//! the samples.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `command` (no input, output discarded) and returns how long it took.
///
/// # Panics
/// If it cannot run or fails, with its standard error: a failed run measures nothing.
pub fn timed(command: &mut Command) -> Duration {
    let start = Instant::now();
    let output = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    let elapsed = start.elapsed();
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    elapsed
}

/// The median of `samples`.
///
/// # Panics
/// If there are none.
pub fn median<T: PartialOrd>(mut samples: Vec<T>) -> T {
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    samples.swap_remove(samples.len() / 2)
}
