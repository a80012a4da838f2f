//! The agent's own logs: `tracing` events go to the journal (via `tracing-journald`, the
//! tokio-rs maintained layer) when its socket exists, else to stderr.

use std::path::Path;

use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

use super::journal::JOURNAL_SOCKET;

/// Errors setting up the agent's logging.
#[derive(Debug, thiserror::Error)]
pub enum AgentLogError {
    #[error("connect to the journal at {JOURNAL_SOCKET}: {0}")]
    Journal(std::io::Error),
    #[error("install the tracing subscriber: {0}")]
    Install(#[from] tracing_subscriber::util::TryInitError),
}

/// Where [`init_agent_logging`] sent the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentLogTarget {
    Journal,
    Stderr,
}

/// Sends this process's `tracing` events at INFO and above to the journal with
/// `SYSLOG_IDENTIFIER=name`, or to stderr when there is no journal; call once, early.
pub fn init_agent_logging(name: &str) -> Result<AgentLogTarget, AgentLogError> {
    let registry = tracing_subscriber::registry();
    if Path::new(JOURNAL_SOCKET).exists() {
        let journal = tracing_journald::layer()
            .map_err(AgentLogError::Journal)?
            .with_syslog_identifier(name.to_owned());
        registry
            .with(journal.with_filter(LevelFilter::INFO))
            .try_init()?;
        return Ok(AgentLogTarget::Journal);
    }
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false);
    registry
        .with(stderr.with_filter(LevelFilter::INFO))
        .try_init()?;
    Ok(AgentLogTarget::Stderr)
}
