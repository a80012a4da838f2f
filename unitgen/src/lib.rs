//! Unit files for flotilla.
