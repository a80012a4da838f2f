//! Pull progress as docker shows it: one bar per layer on a terminal, one line per event
//! otherwise (logs and pipes get no control characters), nothing with `--quiet`.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::{Mutex, MutexGuard, PoisonError};

use image::digest::Digest;
use image::manifest::Descriptor;
use image::pull::PullProgress;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How pull progress is shown.
#[derive(Debug)]
pub enum Progress {
    /// Per-layer bars on a terminal.
    Bars {
        /// The bars' common drawing target.
        multi: MultiProgress,
        /// Each layer's bar.
        bars: Mutex<HashMap<Digest, ProgressBar>>,
        /// Drawn on standard error.
        stderr: bool,
    },
    /// A line per layer event, on standard error if `stderr`.
    Lines { stderr: bool },
    /// Nothing.
    Quiet,
}

impl Progress {
    /// Bars when the output (standard error if `stderr`, else standard output) is a terminal,
    /// lines otherwise, nothing when `quiet`.
    pub fn new(quiet: bool, stderr: bool) -> Progress {
        let terminal = if stderr {
            std::io::stderr().is_terminal()
        } else {
            std::io::stdout().is_terminal()
        };
        if quiet {
            Progress::Quiet
        } else if terminal {
            let target = if stderr {
                ProgressDrawTarget::stderr()
            } else {
                ProgressDrawTarget::stdout()
            };
            Progress::Bars {
                multi: MultiProgress::with_draw_target(target),
                bars: Mutex::new(HashMap::new()),
                stderr,
            }
        } else {
            Progress::Lines { stderr }
        }
    }

    /// Ends the display: the bars stay on screen and what follows starts on a new line.
    pub fn finish(&self) {
        if let Progress::Bars { bars, stderr, .. } = self {
            if !lock(bars).is_empty() {
                if *stderr {
                    eprintln!();
                } else {
                    println!();
                }
            }
        }
    }

    /// The bar of layer `digest`, if bars are shown.
    fn bar(&self, digest: &Digest) -> Option<ProgressBar> {
        match self {
            Progress::Bars { bars, .. } => lock(bars).get(digest).cloned(),
            Progress::Lines { .. } | Progress::Quiet => None,
        }
    }

    /// Says that layer `digest` is done (`Already exists`, `Pull complete`): its bar ends with
    /// the message, or a line says it.
    fn done(&self, digest: &Digest, message: &'static str) {
        match self {
            Progress::Bars { .. } => {
                if let Some(bar) = self.bar(digest) {
                    bar.set_style(style("{prefix}: {msg}"));
                    bar.finish_with_message(message);
                }
            }
            Progress::Lines { stderr } => line(*stderr, digest, message),
            Progress::Quiet => {}
        }
    }
}

/// Prints `DIGEST12: what`; progress is best effort, so a closed stdout must not fail the pull.
fn line(stderr: bool, digest: &Digest, what: &str) {
    let text = format!("{}: {what}\n", short(digest));
    let _ = if stderr {
        std::io::stderr().write_all(text.as_bytes())
    } else {
        std::io::stdout().write_all(text.as_bytes())
    };
}

/// The bars, even if a thread panicked while holding them (the map stays consistent).
fn lock(
    bars: &Mutex<HashMap<Digest, ProgressBar>>,
) -> MutexGuard<'_, HashMap<Digest, ProgressBar>> {
    bars.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A bar style from a template known to be valid.
fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// The 12 hex digits docker names layers by.
fn short(digest: &Digest) -> &str {
    &digest.hex()[..12.min(digest.hex().len())]
}

impl PullProgress for Progress {
    fn layers(&self, layers: &[(Descriptor, bool)]) {
        for (layer, present) in layers {
            match self {
                Progress::Bars { multi, bars, .. } => {
                    let bar = multi.add(ProgressBar::new(layer.size));
                    bar.set_style(
                        style(
                            "{prefix}: {msg:<16} [{bar:30}] {decimal_bytes}/{decimal_total_bytes}",
                        )
                        .progress_chars("=> "),
                    );
                    bar.set_prefix(short(&layer.digest).to_owned());
                    bar.set_message("Downloading");
                    lock(bars).insert(layer.digest.clone(), bar);
                }
                Progress::Lines { stderr } if !present => {
                    line(*stderr, &layer.digest, "Pulling fs layer");
                }
                Progress::Lines { .. } | Progress::Quiet => {}
            }
            if *present {
                self.done(&layer.digest, "Already exists");
            }
        }
    }

    fn advanced(&self, digest: &Digest, bytes: u64) {
        if let Some(bar) = self.bar(digest) {
            bar.inc(bytes);
        }
    }

    fn finished(&self, digest: &Digest) {
        self.done(digest, "Pull complete");
    }
}
