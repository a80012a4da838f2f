//! docker's confirmation prompt for destructive commands (`image prune`, `volume prune`).

use std::io::{self, BufRead, IsTerminal, Write};

/// Asks `WARNING! This will remove WHAT.`; true for yes. With no answer on a standard input
/// that is not a terminal, says how to go on without asking (`--force`).
pub fn confirm(command: &str, what: &str) -> anyhow::Result<bool> {
    print!("WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] ");
    io::stdout().flush()?;
    let mut answer = String::new();
    io::stdin().lock().read_line(&mut answer)?;
    if !io::stdin().is_terminal() && answer.is_empty() {
        eprintln!(
            "flotilla {command}: no answer on standard input; use --force to prune without asking"
        );
    }
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}
