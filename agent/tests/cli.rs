//! The binaries as a user meets them: help, version, exit codes, `flotctl verify` output.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn run(binary: &str, args: &[&str]) -> Output {
    Command::new(binary)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {binary}: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const BINARIES: &[&str] = &[
    env!("CARGO_BIN_EXE_flotillad"),
    env!("CARGO_BIN_EXE_flotctl"),
    env!("CARGO_BIN_EXE_flotilla"),
];

fn seed_units() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/units")
}

#[test]
fn every_binary_has_help_and_version() {
    for binary in BINARIES {
        let help = run(binary, &["--help"]);
        assert!(help.status.success(), "{binary} --help: {help:?}");
        assert!(
            text(&help.stdout).contains("Usage:"),
            "{binary} --help:\n{}",
            text(&help.stdout)
        );
        let version = run(binary, &["--version"]);
        assert!(version.status.success(), "{binary} --version: {version:?}");
        assert!(
            text(&version.stdout).contains(env!("CARGO_PKG_VERSION")),
            "{binary} --version"
        );
    }
}

#[test]
fn flotctl_without_an_agent_says_where_it_looked() {
    let output = run(
        env!("CARGO_BIN_EXE_flotctl"),
        &[
            "--endpoint",
            "unix:///nonexistent/flotilla.sock",
            "list-units",
        ],
    );
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert_eq!(
        text(&output.stderr),
        "Error: cannot reach the agent at unix:///nonexistent/flotilla.sock: \
         No such file or directory (os error 2) (is flotilla.service running on this machine?)\n"
    );
    let output = run(env!("CARGO_BIN_EXE_flotctl"), &["list-units", "--colour"]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "unknown flags are errors: {output:?}"
    );
    assert!(text(&output.stderr).contains("unexpected argument '--colour'"));
}

#[test]
fn verify_accepts_the_seed_units() {
    let dir = seed_units();
    let files = [
        "mongo.service",
        "employees.service",
        "mongo-declarative.container",
    ]
    .map(|name| dir.join(name).display().to_string());
    let args: Vec<&str> = std::iter::once("verify")
        .chain(files.iter().map(String::as_str))
        .collect();
    let output = run(env!("CARGO_BIN_EXE_flotctl"), &args);
    assert!(
        output.status.success(),
        "{}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    assert_eq!(text(&output.stdout), "");
    assert_eq!(
        text(&output.stderr),
        "3 unit file(s) verified, no problems\n"
    );
}

#[test]
fn verify_reports_every_problem_of_every_file() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let bad = dir.path().join("web.service");
    std::fs::write(
        &bad,
        "Stray=1\n[Service]\nExecStart=/bin/echo %z\n[X-Fleet]\nMachineId=abc\nGlobal=sure\n",
    )
    .expect("write unit");
    let worse = dir.path().join("bad name!.service");
    std::fs::write(&worse, "[Unit]\n").expect("write unit");
    let missing = dir.path().join("missing.service");
    let args = [
        "verify",
        bad.to_str().expect("utf-8"),
        worse.to_str().expect("utf-8"),
        missing.to_str().expect("utf-8"),
    ];
    let output = run(env!("CARGO_BIN_EXE_flotctl"), &args);
    assert_eq!(output.status.code(), Some(1));
    let (bad, worse, missing) = (bad.display(), worse.display(), missing.display());
    assert_eq!(
        text(&output.stdout),
        format!(
            "{bad}:1:1: error: assignment \"Stray\" outside of any section\n\
             {bad}:3:21: error: unknown specifier \"%z\"\n\
             {bad}:5:1: error: unrecognized requirement in [X-Fleet] section: \"MachineId\"\n\
             {bad}:6:1: error: invalid Global value \"sure\": expected true/false, yes/no, on/off, 1/0\n\
             {worse}:1:1: error: invalid character ' ' in unit name\n\
             {missing}: error: cannot read unit file: No such file or directory (os error 2)\n"
        )
    );
    assert_eq!(
        text(&output.stderr),
        "6 problem(s) in 3 of 3 unit file(s)\n"
    );
}
