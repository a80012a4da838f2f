//! Helpers shared by the agent's kernel-facing tests (each test file is a crate of its own and
//! takes this module with `mod common;`).

pub mod netns;
