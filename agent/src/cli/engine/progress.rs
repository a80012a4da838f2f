//! Pull progress as docker shows it: one bar per layer on a terminal, one line per event
//! otherwise (logs and pipes get no control characters), nothing with `--quiet`.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;

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
    },
    /// A line per layer event.
    Lines,
    /// Nothing.
    Quiet,
}

impl Progress {
    /// Bars when standard output is a terminal, lines otherwise, nothing when `quiet`.
    pub fn new(quiet: bool) -> Progress {
        if quiet {
            Progress::Quiet
        } else if std::io::stdout().is_terminal() {
            Progress::Bars {
                multi: MultiProgress::with_draw_target(ProgressDrawTarget::stdout()),
                bars: Mutex::new(HashMap::new()),
            }
        } else {
            Progress::Lines
        }
    }

    /// Ends the display: the bars stay on screen and what follows starts on a new line.
    pub fn finish(&self) {
        if let Progress::Bars { bars, .. } = self {
            let bars = bars
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if !bars.is_empty() {
                println!();
            }
        }
    }

    fn line(&self, digest: &Digest, what: &str) {
        if matches!(self, Progress::Lines) {
            let mut out = std::io::stdout().lock();
            // Progress is best effort: a closed stdout must not fail the pull.
            let _ = writeln!(out, "{}: {what}", short(digest));
        }
    }
}

/// The 12 hex digits docker names layers by.
fn short(digest: &Digest) -> &str {
    &digest.hex()[..12.min(digest.hex().len())]
}

impl PullProgress for Progress {
    fn layers(&self, layers: &[(Descriptor, bool)]) {
        for (layer, present) in layers {
            match self {
                Progress::Bars { multi, bars } => {
                    let bar = multi.add(ProgressBar::new(layer.size));
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{prefix}: {msg:<16} [{bar:30}] {decimal_bytes}/{decimal_total_bytes}",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                    );
                    bar.set_prefix(short(&layer.digest).to_owned());
                    if *present {
                        bar.set_style(
                            ProgressStyle::with_template("{prefix}: {msg}")
                                .unwrap_or_else(|_| ProgressStyle::default_bar()),
                        );
                        bar.finish_with_message("Already exists");
                    } else {
                        bar.set_message("Downloading");
                    }
                    bars.lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .insert(layer.digest.clone(), bar);
                }
                Progress::Lines => self.line(
                    &layer.digest,
                    if *present {
                        "Already exists"
                    } else {
                        "Pulling fs layer"
                    },
                ),
                Progress::Quiet => {}
            }
        }
    }

    fn advanced(&self, digest: &Digest, bytes: u64) {
        if let Progress::Bars { bars, .. } = self {
            if let Some(bar) = bars
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(digest)
            {
                bar.inc(bytes);
            }
        }
    }

    fn finished(&self, digest: &Digest) {
        match self {
            Progress::Bars { bars, .. } => {
                if let Some(bar) = bars
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .get(digest)
                {
                    bar.set_style(
                        ProgressStyle::with_template("{prefix}: {msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_bar()),
                    );
                    bar.finish_with_message("Pull complete");
                }
            }
            Progress::Lines => self.line(digest, "Pull complete"),
            Progress::Quiet => {}
        }
    }
}
