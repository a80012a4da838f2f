//! `flotilla-bench`: pull+unpack, save and load of a ~200 MB, 5-layer image, flotilla side by
//! side with its peers (skopeo copy + umoci unpack, podman pull/save/load), in one run on this
//! machine. It prints numbers and ratios; it asserts nothing about time.
//!
//! ```text
//! cargo build --release --workspace --bins
//! cargo run --release -p flotilla-tests --bin flotilla-bench [-- --layers 5 --layer-mb 40 --runs 3]
//! ```
//!
//! Every run starts from an empty store (a new flotilla data root, a new podman root, a new OCI
//! layout), so nothing is cached between runs; the registry is Debian's docker-registry on
//! 127.0.0.1. The median of the runs is reported.

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use flotilla_tests::bench::{median, timed};
use flotilla_tests::built_binary;
use flotilla_tests::registry::{Auth, Registry};
use flotilla_tests::test_image::{Format, TestImage};
use tempfile::TempDir;

/// The benchmark's settings, from `--layers N --layer-mb M --runs R`.
struct Settings {
    layers: usize,
    layer_mb: usize,
    runs: usize,
}

fn settings() -> Settings {
    let mut settings = Settings {
        layers: 5,
        layer_mb: 40,
        runs: 3,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let value = pair.get(1).and_then(|v| v.parse().ok());
        match (pair[0].as_str(), value) {
            ("--layers", Some(v)) => settings.layers = v,
            ("--layer-mb", Some(v)) => settings.layer_mb = v,
            ("--runs", Some(v)) => settings.runs = v.max(1),
            _ => {
                eprintln!("usage: flotilla-bench [--layers N] [--layer-mb M] [--runs R]");
                std::process::exit(2);
            }
        }
    }
    settings
}

/// One measured operation of one tool.
struct Row {
    operation: &'static str,
    tool: &'static str,
    seconds: f64,
    megabytes: f64,
}

fn flotilla(data_root: &Path) -> Command {
    let mut command = Command::new(built_binary("flotilla"));
    command
        .arg("--data-root")
        .arg(data_root)
        .arg("--config")
        .arg("/dev/null");
    command
}

fn podman(root: &Path) -> Command {
    let mut command = Command::new("podman");
    command
        .arg("--root")
        .arg(root.join("root"))
        .arg("--runroot")
        .arg(root.join("run"))
        .args([
            "--storage-driver",
            "overlay",
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "none",
        ]);
    command
}

/// Measures `run` `runs` times, each in a fresh temporary directory.
fn measure(runs: usize, mut run: impl FnMut(&Path) -> Duration) -> Duration {
    median(
        (0..runs)
            .map(|_| {
                let dir = TempDir::new().unwrap();
                run(dir.path())
            })
            .collect(),
    )
}

fn main() {
    let settings = settings();
    eprintln!(
        "building a {}-layer image of ~{} MB…",
        settings.layers + 3,
        settings.layers * settings.layer_mb
    );
    let image = TestImage::builder()
        .big_layers(settings.layers, settings.layer_mb)
        .build()
        .unwrap();
    let registry = Registry::start(Auth::None).unwrap();
    image.push(&registry, "bench:1", Format::Oci).unwrap();
    let name = format!("{}/bench:1", registry.host());
    let compressed: u64 = image.layers.iter().map(|l| l.blob.size).sum();
    #[allow(clippy::cast_precision_loss)] // a report
    let megabytes = compressed as f64 / 1e6;
    if std::env::var_os("FLOTILLA_BENCH_SERVE").is_some() {
        // For profiling by hand: keep the registry up and say what to pull.
        println!("{name}");
        std::thread::sleep(Duration::from_secs(3600));
    }
    let mut rows = Table::default();
    let runs = settings.runs;
    println!(
        "image: {} layers, {megabytes:.1} MB compressed; median of {runs} runs; MB/s = megabytes moved / seconds",
        image.layers.len(),
    );
    println!(
        "{:<22} {:<28} {:>9} {:>9} {:>10} {:>18}",
        "operation", "tool", "MB", "seconds", "MB/s", "flotilla speed-up"
    );

    let docker = Docker::start();
    let file_mb = |path: &Path| fs::metadata(path).map_or(0.0, |m| m.len() as f64 / 1e6);

    eprintln!("pull + unpack…");
    let t = measure(runs, |dir| timed(flotilla(dir).args(["pull", "-q", &name])));
    rows.add("pull+unpack", "flotilla pull", t, megabytes);
    let t = measure(runs, |dir| {
        let layout = dir.join("layout");
        let copy = timed(
            Command::new("skopeo")
                .args(["copy", "--src-tls-verify=false"])
                .arg(format!("docker://{name}"))
                .arg(format!("oci:{}:bench", layout.display())),
        );
        copy + timed(
            Command::new("umoci")
                .args(["unpack", "--image"])
                .arg(format!("{}:bench", layout.display()))
                .arg(dir.join("bundle")),
        )
    });
    rows.add("pull+unpack", "skopeo copy + umoci unpack", t, megabytes);
    let t = measure(runs, |dir| {
        timed(podman(dir).args(["pull", "-q", "--tls-verify=false", &name]))
    });
    rows.add("pull+unpack", "podman pull", t, megabytes);
    if let Some(docker) = &docker {
        let t = measure(runs, |_| {
            let pull = timed(docker.command().args(["pull", "-q", &name]));
            timed(docker.command().args(["rmi", "-f", &name]));
            pull
        });
        rows.add("pull+unpack", "docker pull", t, megabytes);
    }

    // Save and load from stores that already hold the image.
    let flotilla_store = TempDir::new().unwrap();
    timed(flotilla(flotilla_store.path()).args(["pull", "-q", &name]));
    let podman_store = TempDir::new().unwrap();
    timed(podman(podman_store.path()).args(["pull", "-q", "--tls-verify=false", &name]));
    let archives = TempDir::new().unwrap();
    for format in ["docker-archive", "oci-archive"] {
        eprintln!("save and load, {format}…");
        let save_op = leak(format!("save {format}"));
        let load_op = leak(format!("load {format}"));
        let ours = archives.path().join(format!("flotilla-{format}.tar"));
        let theirs = archives.path().join(format!("podman-{format}.tar"));
        let t = measure(runs, |_| {
            let _ = fs::remove_file(&ours);
            timed(
                flotilla(flotilla_store.path())
                    .args(["save", "--format", format, "-o"])
                    .arg(&ours)
                    .arg(&name),
            )
        });
        rows.add(save_op, "flotilla save", t, file_mb(&ours));
        let t = measure(runs, |_| {
            let _ = fs::remove_file(&theirs);
            timed(
                podman(podman_store.path())
                    .args(["save", "--format", format, "-o"])
                    .arg(&theirs)
                    .arg(&name),
            )
        });
        rows.add(save_op, "podman save", t, file_mb(&theirs));
        // docker 20.10 saves and loads docker-archive only.
        let docker_archive = archives.path().join("docker.tar");
        if let (Some(docker), "docker-archive") = (&docker, format) {
            timed(docker.command().args(["pull", "-q", &name]));
            let t = measure(runs, |_| {
                timed(
                    docker
                        .command()
                        .args(["save", "-o"])
                        .arg(&docker_archive)
                        .arg(&name),
                )
            });
            rows.add(save_op, "docker save", t, file_mb(&docker_archive));
        }

        let t = measure(runs, |dir| {
            timed(flotilla(dir).args(["load", "-q", "-i"]).arg(&ours))
        });
        rows.add(load_op, "flotilla load", t, file_mb(&ours));
        let t = measure(runs, |dir| {
            timed(podman(dir).args(["load", "-q", "-i"]).arg(&theirs))
        });
        rows.add(load_op, "podman load", t, file_mb(&theirs));
        if let (Some(docker), "docker-archive") = (&docker, format) {
            let t = measure(runs, |_| {
                timed(docker.command().args(["rmi", "-f", &name]));
                timed(
                    docker
                        .command()
                        .args(["load", "-q", "-i"])
                        .arg(&docker_archive),
                )
            });
            rows.add(load_op, "docker load", t, file_mb(&docker_archive));
        }
    }
}

/// Debian's dockerd (package docker.io) on a socket and data root of its own, with no bridge
/// and no iptables rules; killed on drop. `None` (and a note) when it is not installed.
struct Docker {
    daemon: Child,
    dir: TempDir,
}

impl Docker {
    fn start() -> Option<Docker> {
        if !Path::new(DOCKERD).exists() {
            eprintln!("{DOCKERD} is not installed (apt-get install docker.io): no docker rows");
            return None;
        }
        let dir = TempDir::new().unwrap();
        let daemon = Command::new(DOCKERD)
            .arg("--data-root")
            .arg(dir.path().join("data"))
            .arg("--exec-root")
            .arg(dir.path().join("exec"))
            .arg("--pidfile")
            .arg(dir.path().join("dockerd.pid"))
            .arg("--host")
            .arg(format!(
                "unix://{}",
                dir.path().join("docker.sock").display()
            ))
            .args(["--bridge=none", "--iptables=false", "--ip6tables=false"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let docker = Docker { daemon, dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if docker
                .command()
                .arg("info")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
            {
                return Some(docker);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        eprintln!("{DOCKERD} did not answer within 30 s: no docker rows");
        None
    }

    fn command(&self) -> Command {
        let mut command = Command::new("docker");
        command.arg("--host").arg(format!(
            "unix://{}",
            self.dir.path().join("docker.sock").display()
        ));
        command
    }
}

impl Drop for Docker {
    fn drop(&mut self) {
        // Best effort: the daemon may already be gone.
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

const DOCKERD: &str = "/usr/sbin/dockerd";

/// Operation names live for the whole run.
fn leak(text: String) -> &'static str {
    Box::leak(text.into_boxed_str())
}

/// The result table, printed row by row as measurements come in.
#[derive(Default)]
struct Table {
    rows: Vec<Row>,
}

impl Table {
    /// Adds and prints a measurement.
    fn add(&mut self, operation: &'static str, tool: &'static str, time: Duration, megabytes: f64) {
        self.push(Row {
            operation,
            tool,
            seconds: time.as_secs_f64(),
            megabytes,
        });
    }

    /// Prints `row` with its ratio to flotilla's row of the same operation (measured first).
    fn push(&mut self, row: Row) {
        let ours = self
            .rows
            .iter()
            .find(|r| r.operation == row.operation && r.tool.starts_with("flotilla"));
        let ratio = ours.map_or_else(
            || "-".to_owned(),
            |o| format!("{:.2}x", row.seconds / o.seconds),
        );
        println!(
            "{:<22} {:<28} {:>9.1} {:>9.2} {:>10.1} {:>18}",
            row.operation,
            row.tool,
            row.megabytes,
            row.seconds,
            row.megabytes / row.seconds,
            ratio
        );
        self.rows.push(row);
    }
}
