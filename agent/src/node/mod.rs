//! The node side of the cluster: what the agent on one machine does with the units assigned to
//! it.
//!
//! [`plan`] turns this machine's assignments and what its units directory and systemd hold into
//! ordered tasks, and defines the unit files the agent writes (a `# flotilla-hash:` line, then
//! the unit as systemd loads it). No I/O here: the agent's runner reads the directory and
//! systemd's states, and carries out the tasks over D-Bus.

pub mod plan;
