//! What the container verbs share: naming containers as users typed them and going on past
//! one that fails, as docker does (`Error response: …` per name, exit 1 at the end).

use std::process::ExitCode;

use crate::containers::store::ContainerStore;

/// Runs `action` on every container named, printing `flotilla COMMAND: NAME: error` for each
/// failure; succeeds only if every one did.
pub fn each(
    store: &ContainerStore,
    command: &str,
    names: &[String],
    mut action: impl FnMut(&str, &str) -> anyhow::Result<()>,
) -> anyhow::Result<ExitCode> {
    let mut failed = false;
    for name in names {
        let result = store
            .resolve(name)
            .map_err(anyhow::Error::from)
            .and_then(|id| action(name, &id));
        if let Err(error) = result {
            eprintln!("flotilla {command}: {name}: {error:#}");
            failed = true;
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
