//! Unit files for flotilla: the systemd unit syntax, fleet's `[X-Fleet]` placement constraints,
//! template units and `%` specifiers, and the `[Container]` section that expands into a service.
//!
//! Everything here is pure: no file system, no clock, no network. The one exception is the
//! `flotilla-generator` binary, which reads unit directories and writes generated services.
//!
//! The layers, bottom up:
//! - [`syntax`]: lossless parse/serialize of unit files, with a location for every value;
//! - [`words`]: systemd's word splitting and quoting; [`glob`]: fleet's glob patterns;
//! - [`name`]: unit names, templates and instances; [`specifier`]: `%n %i %I …`;
//! - [`fleet`]: `[X-Fleet]` → [`fleet::Constraints`]; [`container`]: `[Container]` → service;
//! - [`unit`]: a whole unit checked at once (what `flotctl verify` reports), its content hash;
//! - [`diag`]: the located diagnostics all of the above report.

pub mod container;
pub mod diag;
pub mod fleet;
pub mod glob;
pub mod name;
pub mod specifier;
pub mod syntax;
pub mod unit;
pub mod words;
