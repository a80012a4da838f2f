//! Random identifiers: container IDs and the names of unnamed volumes, 64 hex digits (256 bits
//! from the kernel's random source), as docker makes them.

use std::fs::File;
use std::io::{self, Read};

/// 64 random lower-case hex digits.
pub fn hex_id() -> io::Result<String> {
    let mut bytes = [0u8; 32];
    File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
