//! Container logs as docker keeps them: the shim splits each output stream into lines
//! ([`lines`]) and writes them with a [`driver`] to the journal ([`journal`]) or a json-file;
//! `flotilla logs` reads them back ([`reader`]); [`time`] holds docker's time formats and the
//! `--since` parser; [`agent`] sends the agent's own `tracing` output to the journal.

pub mod agent;
pub mod driver;
pub mod journal;
pub mod lines;
pub mod reader;
pub mod time;

pub use agent::init_agent_logging;
