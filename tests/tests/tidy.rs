//! Tidy checks: the rules ARCHITECTURE.md states, enforced on the source tree.

use std::fs;
use std::path::{Path, PathBuf};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_owned()
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in
            fs::read_dir(&dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

#[test]
fn every_module_explains_itself() {
    let root = workspace_root();
    let missing: Vec<String> = [
        "agent/src",
        "unitgen/src",
        "image/src",
        "tests/src",
        "tests/tests",
    ]
    .iter()
    .flat_map(|dir| rust_files(&root.join(dir)))
    .filter(|path| !read(path).trim_start().starts_with("//!"))
    .map(|path| {
        path.strip_prefix(&root)
            .unwrap_or(&path)
            .display()
            .to_string()
    })
    .collect();
    assert!(
        missing.is_empty(),
        "files without a //! module header: {missing:#?}"
    );
}

/// What a pure module must not use: files, processes, the environment, sockets, the clock.
const IO: &[&str] = &[
    "std::fs",
    "std::process",
    "std::env",
    "std::io::stdin",
    "std::io::stdout",
    "TcpStream",
    "TcpListener",
    "UdpSocket",
    "UnixStream",
    "SystemTime::now",
    "Instant::now",
];

/// Every use of [`IO`] in the Rust files under `dir` (outside `bin/`), as `file uses thing`.
fn io_uses(dir: &Path) -> Vec<String> {
    let root = workspace_root();
    rust_files(dir)
        .into_iter()
        .filter(|path| !path.components().any(|c| c.as_os_str() == "bin"))
        .flat_map(|path| {
            let text = read(&path);
            let shown = path
                .strip_prefix(&root)
                .unwrap_or(&path)
                .display()
                .to_string();
            IO.iter()
                .filter(|needle| text.contains(*needle))
                .map(|needle| format!("{shown} uses {needle}"))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn unitgen_library_does_no_io() {
    let offenders = io_uses(&workspace_root().join("unitgen/src"));
    assert!(
        offenders.is_empty(),
        "unitgen's library must stay pure: {offenders:#?}"
    );
}

#[test]
fn the_engines_configuration_core_does_no_io() {
    let offenders = io_uses(&workspace_root().join("agent/src/engine"));
    assert!(
        offenders.is_empty(),
        "agent/src/engine's rules must stay pure (ARCHITECTURE.md): {offenders:#?}"
    );
}

#[test]
fn crate_dependencies_point_one_way() {
    let root = workspace_root();
    let depends_on = |krate: &str, other: &str| {
        read(&root.join(krate).join("Cargo.toml"))
            .lines()
            .any(|line| {
                line.trim_start().starts_with(&format!("{other}.workspace"))
                    || line.trim_start().starts_with(&format!("{other} ="))
            })
    };
    for (krate, never) in [
        ("unitgen", ["image", "agent"]),
        ("image", ["unitgen", "agent"]),
    ] {
        for other in never {
            assert!(
                !depends_on(krate, other),
                "{krate} must not depend on {other} (ARCHITECTURE.md)"
            );
        }
    }
    for other in ["unitgen", "image", "agent"] {
        assert!(
            !depends_on("tests", other),
            "tests/ drives the built binaries; it must not link {other}"
        );
    }
}
