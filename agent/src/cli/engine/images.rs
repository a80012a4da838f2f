//! `flotilla images` (and `flotilla image ls`): list images.

use std::collections::BTreeSet;
use std::process::ExitCode;

use image::reference::Reference;
use image::store::{ImageLayer, Store};

use super::{human, Context};

/// `flotilla images [-a] [-q] [--digests] [--format json] [REPOSITORY[:TAG]]`
#[derive(Debug, clap::Args)]
pub struct ImagesArgs {
    /// Show all images (there are no intermediate images: the same as without).
    #[arg(short, long)]
    pub all: bool,
    /// Only show image IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Show digests.
    #[arg(long)]
    pub digests: bool,
    /// Print one JSON object per line instead of the table.
    #[arg(long, value_name = "json")]
    pub format: Option<OutputFormat>,
    /// Show only images of this repository (and tag).
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub filter: Option<String>,
}

/// Output formats besides the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// One JSON object per line, with docker's field names.
    Json,
}

/// One line of the listing.
struct Row {
    repository: String,
    tag: String,
    digest: String,
    id: String,
    created: i64,
    size: u64,
}

/// Runs `flotilla images`.
pub fn run(context: &Context, args: &ImagesArgs) -> anyhow::Result<ExitCode> {
    let store = context.store()?;
    let rows = rows(&store, args.filter.as_deref())?;
    if args.quiet {
        let mut seen = BTreeSet::new();
        for row in &rows {
            if seen.insert(row.id.clone()) {
                println!("{}", &row.id[7..19]);
            }
        }
    } else if args.format == Some(OutputFormat::Json) {
        for row in &rows {
            let line = serde_json::json!({
                "Containers": "N/A",
                "CreatedAt": human::timestamp(row.created),
                "CreatedSince": human::ago(row.created),
                "Digest": row.digest,
                "ID": &row.id[7..19],
                "Repository": row.repository,
                "SharedSize": "N/A",
                "Size": human::size(row.size),
                "Tag": row.tag,
                "UniqueSize": "N/A",
                "VirtualSize": human::size(row.size),
            });
            println!("{line}");
        }
    } else {
        print_table(&rows, args.digests);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_table(rows: &[Row], digests: bool) {
    let mut table: Vec<Vec<String>> = vec![{
        let mut header = vec!["REPOSITORY".to_owned(), "TAG".to_owned()];
        if digests {
            header.push("DIGEST".to_owned());
        }
        header.extend(["IMAGE ID", "CREATED", "SIZE"].map(str::to_owned));
        header
    }];
    for row in rows {
        let mut line = vec![row.repository.clone(), row.tag.clone()];
        if digests {
            line.push(row.digest.clone());
        }
        line.extend([
            row.id[7..19].to_owned(),
            human::ago(row.created),
            human::size(row.size),
        ]);
        table.push(line);
    }
    super::table::print(&table);
}

/// The listing's rows: one per tag, or one `<none>` row for an untagged image.
fn rows(store: &Store, filter: Option<&str>) -> anyhow::Result<Vec<Row>> {
    let wanted = filter.map(Reference::parse).transpose()?;
    let explicit_tag =
        filter.is_some_and(|f| f.rsplit('/').next().is_some_and(|last| last.contains(':')));
    let mut rows = Vec::new();
    for image in store.images()? {
        let contents = store.contents(&image)?;
        let size = image_size(store, &contents.layers)?;
        let created = created(&contents.config);
        let digest = image
            .entry
            .repo_digests
            .iter()
            .next()
            .and_then(|d| d.rsplit_once('@'))
            .map_or_else(|| "<none>".to_owned(), |(_, d)| d.to_owned());
        let mut names: Vec<(String, String)> = image
            .tags
            .iter()
            .filter_map(|t| Reference::parse(t).ok())
            .filter(|r| {
                wanted
                    .as_ref()
                    .is_none_or(|w| w.name() == r.name() && (!explicit_tag || w.tag() == r.tag()))
            })
            .map(|r| {
                let familiar = r.familiar();
                let (repository, tag) = familiar
                    .rsplit_once(':')
                    .map_or((familiar.clone(), "<none>".to_owned()), |(n, t)| {
                        (n.to_owned(), t.to_owned())
                    });
                (repository, tag)
            })
            .collect();
        if image.tags.is_empty() && wanted.is_none() {
            names.push(("<none>".to_owned(), "<none>".to_owned()));
        }
        for (repository, tag) in names {
            rows.push(Row {
                repository,
                tag,
                digest: digest.clone(),
                id: image.id.to_string(),
                created,
                size,
            });
        }
    }
    Ok(rows)
}

/// The unpacked size of an image: the sum of its layers' file contents.
pub fn image_size(store: &Store, layers: &[ImageLayer]) -> anyhow::Result<u64> {
    let mut total = 0;
    for layer in layers {
        total += store.layer_size(&layer.chain_id)?;
    }
    Ok(total)
}

/// When the image was built, from its config's `created` (0 when absent or unreadable).
fn created(config: &[u8]) -> i64 {
    serde_json::from_slice::<serde_json::Value>(config)
        .ok()
        .and_then(|config| {
            config
                .get("created")
                .and_then(|c| c.as_str())
                .and_then(human::parse_rfc3339)
        })
        .unwrap_or(0)
}
