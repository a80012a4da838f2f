//! `flotilla-bench-run`: the time to run `/bin/true` in a container, flotilla side by side with
//! its peers in one run on this machine, on the same busybox root file system: `crun run` and
//! `runc run` of an OCI bundle, `podman run --rm` and `flotilla run --rm` of an image made from
//! it; then `start -a` of an existing stopped container, podman against flotilla. It prints
//! medians and ratios; it asserts nothing about time.
//!
//! ```text
//! cargo build --release --workspace --bins
//! target/release/flotilla-bench-run [--runs 30]
//! ```
//!
//! The peers are Debian's `crun`, `runc` and `podman` (installed if missing). crun refuses this
//! machine's hybrid cgroup2 mount, so it runs in a private mount namespace with
//! `/sys/fs/cgroup/unified` unmounted; podman uses a throwaway vfs store, runc (its crun refuses
//! hybrid cgroups) and nofile/nproc ulimits below this machine's hard limits. The engine rows run
//! with `--network none`, then with their default bridge and a published port (`-p` rows); the
//! whole benchmark runs in a network namespace of its own.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use flotilla_tests::bench::{median, timed};
use flotilla_tests::built_binary;
use flotilla_tests::flotilla::busybox_tarball;
use tempfile::TempDir;

fn measure(runs: usize, mut run: impl FnMut(usize) -> Duration) -> Duration {
    run(usize::MAX); // warm-up: caches, first-use setup
    median((0..runs).map(&mut run).collect())
}

fn ensure_packages(packages: &[&str]) {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| {
            !Command::new("sh")
                .arg("-c")
                .arg(format!("command -v {p}"))
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .collect();
    if !missing.is_empty() {
        eprintln!("installing {}", missing.join(" "));
        let status = Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "apt-get install {missing:?}"
        );
    }
}

/// An OCI bundle of `rootfs` whose process is `/bin/true`, from `runc spec`'s defaults.
fn bundle(dir: &Path, rootfs: &Path) {
    fs::create_dir_all(dir).unwrap();
    let status = Command::new("runc").args(["spec", "-b"]).arg(dir).status();
    assert!(status.is_ok_and(|s| s.success()), "runc spec");
    let path = dir.join("config.json");
    let mut spec: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    spec["process"]["terminal"] = false.into();
    spec["process"]["args"] = serde_json::json!(["/bin/true"]);
    spec["root"]["path"] = rootfs.display().to_string().into();
    spec["root"]["readonly"] = false.into();
    fs::write(&path, serde_json::to_vec_pretty(&spec).unwrap()).unwrap();
}

fn podman(root: &Path) -> Command {
    let mut command = Command::new("podman");
    command
        .args(["--root"])
        .arg(root.join("root"))
        .args(["--runroot"])
        .arg(root.join("run"))
        .args([
            "--storage-driver",
            "vfs",
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "none",
            "--runtime",
            "runc",
        ]);
    command
}

/// `podman VERB… NETWORK… bb /bin/true` with rlimits below this machine's hard limits.
fn podman_container(root: &Path, verb: &[&str], network: &[&str]) -> Command {
    let mut command = podman(root);
    command.args(verb).args(network).args([
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=1024:1024",
        "bb",
        "/bin/true",
    ]);
    command
}

/// The network of the plain rows: none, so that they measure the container alone.
const NO_NETWORK: &[&str] = &["--network", "none"];
/// The network of the `-p` rows: each engine's default bridge, with one published port.
const PUBLISHED: &[&str] = &["-p", "18080:80"];

/// Moves this process (and so every engine it runs) into a network namespace of its own with
/// `lo` up: the bridges, veths and firewall rules of both engines are made there, not on the
/// host.
fn own_network_namespace() {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
        .expect("a network namespace for the benchmark");
    let up = Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status();
    assert!(up.is_ok_and(|s| s.success()), "ip link set lo up");
}

fn main() {
    let runs: usize = match std::env::args().skip(1).collect::<Vec<_>>().as_slice() {
        [] => 30,
        [flag, n] if flag == "--runs" => n.parse().unwrap_or(30),
        _ => {
            eprintln!("usage: flotilla-bench-run [--runs N]");
            std::process::exit(2);
        }
    };
    ensure_packages(&["crun", "runc", "podman"]);
    own_network_namespace();
    let scratch = TempDir::new().unwrap();
    let tarball = busybox_tarball(&scratch.path().join("rootfs"), &[]);
    let rootfs = scratch.path().join("rootfs");
    let data_root = scratch.path().join("flotilla");
    let flotilla = || {
        let mut command = Command::new(built_binary("flotilla"));
        command.arg("--data-root").arg(&data_root);
        command
    };
    timed(
        flotilla()
            .args(["import", "--change", "CMD [\"sh\"]"])
            .arg(&tarball)
            .arg("bb"),
    );
    let podman_root = scratch.path().join("podman");
    timed(
        podman(&podman_root)
            .args(["import", "--change", "CMD [\"sh\"]"])
            .arg(&tarball)
            .arg("bb"),
    );
    let bundle_dir = scratch.path().join("bundle");
    bundle(&bundle_dir, &rootfs);

    let mut rows: Vec<(&str, Duration)> = Vec::new();
    rows.push((
        "crun run",
        measure(runs, |i| {
            timed(Command::new("unshare").args(["-m", "sh", "-c"]).arg(format!(
                "mount --make-rprivate / && umount /sys/fs/cgroup/unified 2>/dev/null; exec crun run -b {} bench-crun-{i}",
                bundle_dir.display()
            )))
        }),
    ));
    rows.push((
        "runc run",
        measure(runs, |i| {
            timed(
                Command::new("runc")
                    .args(["run", "-b"])
                    .arg(&bundle_dir)
                    .arg(format!("bench-runc-{i}")),
            )
        }),
    ));
    rows.push((
        "podman run --rm",
        measure(runs, |_| {
            timed(&mut podman_container(
                &podman_root,
                &["run", "--rm"],
                NO_NETWORK,
            ))
        }),
    ));
    rows.push((
        "flotilla run --rm",
        measure(runs, |_| {
            timed(
                flotilla()
                    .args(["run", "--rm"])
                    .args(NO_NETWORK)
                    .args(["bb", "/bin/true"]),
            )
        }),
    ));
    rows.push((
        "podman run -p",
        measure(runs, |_| {
            timed(&mut podman_container(
                &podman_root,
                &["run", "--rm"],
                PUBLISHED,
            ))
        }),
    ));
    rows.push((
        "flotilla run -p",
        measure(runs, |_| {
            timed(
                flotilla()
                    .args(["run", "--rm"])
                    .args(PUBLISHED)
                    .args(["bb", "/bin/true"]),
            )
        }),
    ));
    timed(&mut podman_container(
        &podman_root,
        &["create", "--name", "stopped"],
        NO_NETWORK,
    ));
    timed(
        flotilla()
            .args(["create", "--name", "stopped"])
            .args(NO_NETWORK)
            .args(["bb", "/bin/true"]),
    );
    rows.push((
        "podman start -a",
        measure(runs, |_| {
            timed(podman(&podman_root).args(["start", "-a", "stopped"]))
        }),
    ));
    rows.push((
        "flotilla start -a",
        measure(runs, |_| timed(flotilla().args(["start", "-a", "stopped"]))),
    ));
    let _ = Command::new("rm").arg("-rf").arg(&podman_root).status();

    println!("median of {runs} runs of /bin/true (busybox root), this machine, one run:");
    for (name, time) in &rows {
        println!("  {name:<20} {:>8.1} ms", time.as_secs_f64() * 1000.0);
    }
    let get = |name: &str| {
        rows.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| t.as_secs_f64())
            .unwrap_or(f64::NAN)
    };
    let ours = get("flotilla run --rm");
    println!("ratios (peer / flotilla, above 1 means flotilla is faster):");
    for peer in ["crun run", "runc run", "podman run --rm"] {
        println!("  {peer:<20} {:>6.2}x", get(peer) / ours);
    }
    for (peer, flotilla) in [
        ("podman run -p", "flotilla run -p"),
        ("podman start -a", "flotilla start -a"),
    ] {
        println!("  {peer:<20} {:>6.2}x", get(peer) / get(flotilla));
    }
}
