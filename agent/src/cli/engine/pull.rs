//! `flotilla pull`: bring an image from a registry into the store.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context as _;
use image::manifest::Platform;
use image::reference::Reference;
use image::registry::Client;

use super::progress::Progress;
use super::Context;

/// `flotilla pull [--platform OS/ARCH[/VARIANT]] [-q] NAME[:TAG|@DIGEST]`
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    flotilla pull busybox\n  \
    flotilla pull --platform linux/arm64 registry.local:5000/team/app:v2\n  \
    flotilla pull busybox@sha256:…\n\n\
    Registries on loopback addresses and those listed under [engine] insecure_registries \
    in the configuration file are reached over plain HTTP when HTTPS fails; docker.io goes \
    through [engine] registry_mirrors first. Credentials come from a docker-style auth.json \
    ([engine] auth_file, $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json or \
    ~/.docker/config.json).")]
pub struct PullArgs {
    /// The platform to pick from a multi-platform image (default: this machine's).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]", value_parser = parse_platform)]
    pub platform: Option<Platform>,
    /// Print only the image's name when done.
    #[arg(short, long)]
    pub quiet: bool,
    /// The image.
    #[arg(value_name = "NAME[:TAG|@DIGEST]")]
    pub image: String,
}

fn parse_platform(text: &str) -> Result<Platform, String> {
    Platform::parse(text).ok_or_else(|| {
        format!("{text:?} is not OS/ARCH[/VARIANT], e.g. linux/amd64 or linux/arm64/v8")
    })
}

/// Runs `flotilla pull`.
pub fn run(context: &Context, args: &PullArgs) -> anyhow::Result<ExitCode> {
    pull(context, args, &mut std::io::stdout(), false)?;
    Ok(ExitCode::SUCCESS)
}

/// Pulls an image `run` or `create` needs and does not find, reporting on standard error as
/// docker does.
pub fn pull_missing(context: &Context, image: &str) -> anyhow::Result<()> {
    eprintln!("Unable to find image '{image}' locally");
    let args = PullArgs {
        platform: None,
        quiet: false,
        image: image.to_owned(),
    };
    pull(context, &args, &mut std::io::stderr(), true)
}

/// Pulls `args.image`, writing docker's status lines to `out` (not a held lock of standard
/// output: the layers' progress lines are printed from other threads meanwhile).
fn pull(
    context: &Context,
    args: &PullArgs,
    out: &mut dyn Write,
    to_stderr: bool,
) -> anyhow::Result<()> {
    let reference = Reference::parse(&args.image)?;
    let config = context.config()?;
    let client = Client::new(&config.engine.registry())?;
    let store = context.store()?;
    let platform = args.platform.clone().unwrap_or_else(Platform::host);
    let progress = Progress::new(args.quiet, to_stderr);
    if !args.quiet {
        if reference.digest().is_none() && !args.image.contains(':') {
            writeln!(out, "Using default tag: latest")?;
        }
        let what = reference.tag().map_or_else(
            || {
                reference
                    .digest()
                    .map(ToString::to_string)
                    .unwrap_or_default()
            },
            str::to_owned,
        );
        writeln!(out, "{what}: Pulling from {}", reference.repository())?;
    }
    let pulled = image::pull::pull(&client, &store, &reference, &platform, &progress)
        .with_context(|| format!("cannot pull {}", reference.familiar()))?;
    progress.finish();
    if args.quiet {
        writeln!(out, "{reference}")?;
    } else {
        writeln!(out, "Digest: {}", pulled.digest)?;
        if pulled.up_to_date {
            writeln!(
                out,
                "Status: Image is up to date for {}",
                reference.familiar()
            )?;
        } else {
            writeln!(
                out,
                "Status: Downloaded newer image for {}",
                reference.familiar()
            )?;
        }
        writeln!(out, "{reference}")?;
    }
    Ok(())
}
