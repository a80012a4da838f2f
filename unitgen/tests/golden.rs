//! Golden fixtures: every file in `tests/golden/` (except `README.md`) is a unit file that
//! carries its own assertions in `## assert-VERB ARGS…` comment lines (podman quadlet's style).
//!
//! One test walks the directory, so a fixture cannot be forgotten: a file without assertions or
//! with an unknown verb fails. `.container` files and units with a `[Container]` section go
//! through the real `flotilla-generator --dry-run`; every other unit goes through
//! `Unit::check`. `README.md` in the directory documents the verbs.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use unitgen::syntax::UnitFile;
use unitgen::unit::Unit;
use unitgen::words;

/// A floor on the number of fixtures, so that a wrong path cannot pass vacuously.
const MIN_FIXTURES: usize = 60;

#[test]
fn golden_fixtures() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("tests/golden exists")
        .map(|entry| {
            let entry = entry.expect("readable directory entry");
            entry
                .file_name()
                .into_string()
                .expect("fixture names are UTF-8")
        })
        .filter(|name| name != "README.md")
        .collect();
    names.sort();

    let mut failures = Vec::new();
    for name in &names {
        // A panic in the library is a finding about one fixture, not the end of the run.
        let problems = std::panic::catch_unwind(|| run_fixture(&dir, name))
            .unwrap_or_else(|panic| vec![format!("panicked: {}", panic_message(&*panic))]);
        for problem in problems {
            failures.push(format!("{name}: {problem}"));
        }
    }
    failures.extend(check_batch(&dir, &names));
    assert!(
        failures.is_empty(),
        "{} problem(s) in {} golden fixtures:\n  {}",
        failures.len(),
        names.len(),
        failures.join("\n  ")
    );
    assert!(
        names.len() >= MIN_FIXTURES,
        "only {} fixtures found in {}",
        names.len(),
        dir.display()
    );
}

/// One generator run over every generated fixture at once must print exactly what the runs
/// one by one printed, in order, and fail when any of them failed.
fn check_batch(dir: &Path, names: &[String]) -> Vec<String> {
    let mut kept = Vec::new();
    let (mut stdout, mut stderr, mut any_failed) = (String::new(), String::new(), false);
    for name in names {
        let generated = name.ends_with(".container")
            || std::fs::read_to_string(dir.join(name)).is_ok_and(|text| {
                UnitFile::parse(name.as_str(), &text)
                    .0
                    .has_section("Container")
            });
        if !generated {
            continue;
        }
        // Crashes are reported for the fixture itself; leave it out of the batch.
        if let Ok((Some(status @ (0 | 1)), out, err)) = invoke_generator(dir, name) {
            kept.push(name.as_str());
            stdout.push_str(&out);
            stderr.push_str(&err);
            any_failed |= status == 1;
        }
    }
    let expected_status = Some(i32::from(any_failed));
    match invoke_generator_on(dir, &kept) {
        Err(problem) => vec![format!("(all {} at once): {problem}", kept.len())],
        Ok((status, out, err)) => {
            let mut problems = Vec::new();
            if status != expected_status {
                problems.push(format!(
                    "exit status {status:?}, expected {expected_status:?}"
                ));
            }
            if out != stdout {
                problems.push(format!(
                    "stdout differs from the runs one by one at byte {}",
                    first_difference(&out, &stdout)
                ));
            }
            if err != stderr {
                problems.push(format!(
                    "stderr differs from the runs one by one at byte {}",
                    first_difference(&err, &stderr)
                ));
            }
            problems
                .into_iter()
                .map(|p| {
                    format!(
                        "flotilla-generator --dry-run (all {} at once): {p}",
                        kept.len()
                    )
                })
                .collect()
        }
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "(no message)".to_owned())
}

/// Every verb, documented in `tests/golden/README.md`.
const VERBS: &[&str] = &[
    "assert-failed",
    "assert-error",
    "assert-key-is",
    "assert-key-missing",
    "assert-section-missing",
    "assert-sections",
    "assert-engine-args",
    "assert-engine-final-args",
    "assert-no-engine-arg",
    "assert-name",
    "assert-hash",
    "assert-machine-id",
    "assert-no-machine-id",
    "assert-machine-of",
    "assert-metadata",
    "assert-metadata-keys",
    "assert-metadata-matches",
    "assert-metadata-rejects",
    "assert-conflicts",
    "assert-conflicts-with",
    "assert-not-conflicts-with",
    "assert-global",
    "assert-replaces",
    "assert-replaces-unit",
    "assert-not-replaces-unit",
];

/// One `## assert-VERB ARGS…` line.
#[derive(Debug)]
struct Assertion {
    /// 1-based line in the fixture.
    line: usize,
    verb: String,
    args: Vec<String>,
}

impl Assertion {
    fn describe(&self) -> String {
        let args: Vec<String> = self.args.iter().map(|a| format!("{a:?}")).collect();
        format!("line {}: {} {}", self.line, self.verb, args.join(" "))
    }
}

/// A diagnostic as printed: `FILE:LINE:COL: error: MESSAGE`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Reported {
    line: u32,
    column: u32,
    message: String,
}

impl std::fmt::Display for Reported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

/// What checking a fixture produced.
struct Outcome {
    /// The generated service, or for units without `[Container]` the unit itself.
    output: Option<UnitFile>,
    /// The library's view of the input (constraints, hash, name); `None` when it failed.
    unit: Option<Unit>,
    /// Every diagnostic reported.
    errors: Vec<Reported>,
}

fn run_fixture(dir: &Path, name: &str) -> Vec<String> {
    let path = dir.join(name);
    if !path.is_file() {
        return vec!["not a regular file (fixtures are flat files)".into()];
    }
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) => return vec![format!("cannot read as UTF-8: {error}")],
    };
    let assertions = match parse_assertions(&text) {
        Ok(assertions) if assertions.is_empty() => {
            return vec!["no `## assert-…` line: every fixture must assert something".into()]
        }
        Ok(assertions) => assertions,
        Err(problem) => return vec![problem],
    };

    let mut problems = Vec::new();
    let (parsed, _) = UnitFile::parse(name, &text);
    let written = parsed.to_string();
    if written != text {
        problems.push(format!(
            "does not round-trip through UnitFile::parse + to_string: first difference at byte {}",
            first_difference(&written, &text)
        ));
    }

    let library = Unit::check(name, name, text.as_bytes());
    let library_errors: Vec<Reported> = match &library {
        Ok(_) => Vec::new(),
        Err(diagnostics) => diagnostics
            .clone()
            .sorted()
            .iter()
            .map(|d| {
                let line = d.to_string();
                parse_reported(name, &line).unwrap_or(Reported {
                    line: 0,
                    column: 0,
                    message: format!("diagnostic not in FILE:LINE:COL form: {line:?}"),
                })
            })
            .collect(),
    };
    let outcome = if name.ends_with(".container") || parsed.has_section("Container") {
        let generated = match run_generator(dir, name) {
            Ok(outcome) => outcome,
            Err(problem) => {
                problems.push(problem);
                return problems;
            }
        };
        // The binary runs the same checks as the library: both must report the same.
        if generated.errors != library_errors {
            problems.push(format!(
                "flotilla-generator reported [{}] but Unit::check reported [{}]",
                joined(&generated.errors),
                joined(&library_errors)
            ));
        }
        Outcome {
            unit: library.ok(),
            ..generated
        }
    } else {
        Outcome {
            output: library
                .as_ref()
                .ok()
                .map(|unit| unit.systemd_unit().clone()),
            unit: library.ok(),
            errors: library_errors,
        }
    };
    problems.extend(check_assertions(name, &assertions, &outcome));
    problems
}

fn joined(errors: &[Reported]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Byte offset where two texts start to differ.
fn first_difference(a: &str, b: &str) -> usize {
    a.bytes()
        .zip(b.bytes())
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()))
}

/// Checks the output of `flotilla-generator --dry-run NAME`.
fn run_generator(dir: &Path, name: &str) -> Result<Outcome, String> {
    let (status, stdout, stderr) = invoke_generator(dir, name)?;
    let errors = stderr
        .lines()
        .map(|line| parse_reported(name, line))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|line| {
            format!("generator stderr line is not FILE:LINE:COL: error: MESSAGE: {line:?}")
        })?;
    match status {
        Some(0) if errors.is_empty() => {}
        Some(1) if !errors.is_empty() => {
            if !stdout.is_empty() {
                return Err(format!(
                    "generator failed but printed a service: {stdout:?}"
                ));
            }
            return Ok(Outcome {
                output: None,
                unit: None,
                errors,
            });
        }
        status => {
            return Err(format!(
                "generator exited with {status:?} and stderr {stderr:?}"
            ))
        }
    }
    let service = match name.strip_suffix(".container") {
        Some(stem) => format!("{stem}.service"),
        None => name.to_owned(),
    };
    let header = format!("---{service}---\n");
    let body = stdout
        .strip_prefix(&header)
        .ok_or_else(|| format!("generator output does not start with {header:?}: {stdout:?}"))?;
    let (output, diagnostics) = UnitFile::parse(service.as_str(), body);
    if !diagnostics.is_empty() {
        return Err(format!(
            "generated service does not parse cleanly: {:?}",
            diagnostics.sorted()
        ));
    }
    // The generated service is itself a unit flotilla accepts.
    if let Err(diagnostics) = Unit::check(service.as_str(), &service, body.as_bytes()) {
        let messages: Vec<String> = diagnostics
            .sorted()
            .iter()
            .map(ToString::to_string)
            .collect();
        return Err(format!("generated service fails Unit::check: {messages:?}"));
    }
    Ok(Outcome {
        output: Some(output),
        unit: None,
        errors: Vec::new(),
    })
}

/// Parses `FILE:LINE:COL: error: MESSAGE` for `file`; the unparsed line on failure.
fn parse_reported(file: &str, line: &str) -> Result<Reported, String> {
    let parse = || {
        let rest = line.strip_prefix(file)?.strip_prefix(':')?;
        let (number, rest) = rest.split_once(':')?;
        let (column, rest) = rest.split_once(':')?;
        let message = rest.strip_prefix(" error: ")?;
        Some(Reported {
            line: number.parse().ok()?,
            column: column.parse().ok()?,
            message: message.to_owned(),
        })
    };
    parse().ok_or_else(|| line.to_owned())
}

/// Every `## …` line of the fixture, as assertions.
fn parse_assertions(text: &str) -> Result<Vec<Assertion>, String> {
    let mut assertions = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let Some(rest) = line.strip_prefix("##") else {
            continue;
        };
        let mut words = shell_split(rest).map_err(|e| format!("line {}: {e}", index + 1))?;
        if words.is_empty() {
            return Err(format!("line {}: empty `##` line", index + 1));
        }
        let verb = words.remove(0);
        if !VERBS.contains(&verb.as_str()) {
            return Err(format!(
                "line {}: unknown verb {verb:?} (`##` lines are assertions, see README.md; use `#` for prose)",
                index + 1
            ));
        }
        assertions.push(Assertion {
            line: index + 1,
            verb,
            args: words,
        });
    }
    Ok(assertions)
}

/// Splits assertion arguments like a shell: white space separates, `"…"` groups (with `\"` and
/// `\\` escapes), `'…'` groups literally, `\x` outside quotes is `x`.
fn shell_split(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        None => return Err("unbalanced \" in assertion".into()),
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("unbalanced \" in assertion".into()),
                        },
                        Some(c) => word.push(c),
                    }
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        None => return Err("unbalanced ' in assertion".into()),
                        Some('\'') => break,
                        Some(c) => word.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                word.push(chars.next().ok_or("trailing \\ in assertion")?);
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// Runs every assertion against the outcome; returns what failed.
fn check_assertions(name: &str, assertions: &[Assertion], outcome: &Outcome) -> Vec<String> {
    let mut problems = Vec::new();
    let expect_failure = assertions.iter().any(|a| a.verb == "assert-failed");
    let mut expected_errors = Vec::new();
    for assertion in assertions {
        let result = match assertion.verb.as_str() {
            "assert-failed" => arity(assertion, 0, Some(0)),
            "assert-error" => parse_expected_error(assertion).map(|e| expected_errors.push(e)),
            _ if expect_failure => Err(
                "only assert-error can go with assert-failed (the unit produces no output)"
                    .to_owned(),
            ),
            _ => match (&outcome.output, &outcome.unit) {
                (Some(output), Some(unit)) => check_success(name, assertion, output, unit),
                _ => Err("the unit failed, so this cannot be checked".to_owned()),
            },
        };
        if let Err(problem) = result {
            problems.push(format!("{}: {problem}", assertion.describe()));
        }
    }
    if expect_failure && expected_errors.is_empty() {
        problems.push("assert-failed needs at least one assert-error".into());
    }
    if !expect_failure && !expected_errors.is_empty() {
        problems.push("assert-error needs assert-failed".into());
    }

    // The reported diagnostics must be exactly the asserted ones.
    let mut unmatched: Vec<&Reported> = outcome.errors.iter().collect();
    for (line, column, substring, at) in &expected_errors {
        match unmatched.iter().position(|r| {
            r.line == *line && r.column == *column && r.message.contains(substring.as_str())
        }) {
            Some(index) => {
                unmatched.remove(index);
            }
            None => problems.push(format!(
                "line {at}: expected error {line}:{column} {substring:?} was not reported; reported: [{}]",
                joined(&outcome.errors)
            )),
        }
    }
    for reported in unmatched {
        problems.push(format!("unexpected error {reported}"));
    }
    problems
}

/// `assert-error LINE:COL "substring"` → (line, column, substring, assertion line).
fn parse_expected_error(assertion: &Assertion) -> Result<(u32, u32, String, usize), String> {
    arity(assertion, 2, Some(2))?;
    let (line, column) = assertion.args[0]
        .split_once(':')
        .and_then(|(l, c)| Some((l.parse().ok()?, c.parse().ok()?)))
        .ok_or("expected LINE:COL as the first argument")?;
    Ok((line, column, assertion.args[1].clone(), assertion.line))
}

fn arity(assertion: &Assertion, min: usize, max: Option<usize>) -> Result<(), String> {
    let n = assertion.args.len();
    if n < min || max.is_some_and(|max| n > max) {
        let wanted = match max {
            Some(max) if max == min => format!("{min}"),
            Some(max) => format!("{min} to {max}"),
            None => format!("at least {min}"),
        };
        return Err(format!("takes {wanted} argument(s), got {n}"));
    }
    Ok(())
}

fn check_success(
    name: &str,
    assertion: &Assertion,
    output: &UnitFile,
    unit: &Unit,
) -> Result<(), String> {
    let args = &assertion.args;
    let constraints = unit.constraints();
    let own_name = unit.name().as_str();
    match assertion.verb.as_str() {
        // --- the generated service (or the unit itself) ---
        "assert-key-is" => {
            arity(assertion, 3, None)?;
            let actual = values(output, &args[0], &args[1]);
            equal(&actual, &args[2..])
        }
        "assert-key-missing" => {
            arity(assertion, 2, Some(2))?;
            let actual = values(output, &args[0], &args[1]);
            equal(&actual, &[])
        }
        "assert-section-missing" => {
            arity(assertion, 1, Some(1))?;
            if output.has_section(&args[0]) {
                return Err(format!("section [{}] is present", args[0]));
            }
            Ok(())
        }
        "assert-sections" => {
            arity(assertion, 1, None)?;
            let actual: Vec<String> = output
                .sections()
                .iter()
                .map(|s| s.name().to_owned())
                .collect();
            equal(&actual, args)
        }
        "assert-engine-args" => {
            arity(assertion, 1, None)?;
            let argv = exec_start(output)?;
            if argv
                .windows(args.len())
                .any(|window| window == args.as_slice())
            {
                Ok(())
            } else {
                Err(format!("not found contiguously in ExecStart {argv:?}"))
            }
        }
        "assert-engine-final-args" => {
            arity(assertion, 1, None)?;
            let argv = exec_start(output)?;
            if argv.ends_with(args) {
                Ok(())
            } else {
                Err(format!("ExecStart {argv:?} does not end so"))
            }
        }
        "assert-no-engine-arg" => {
            arity(assertion, 1, None)?;
            let argv = exec_start(output)?;
            match args.iter().find(|arg| argv.contains(arg)) {
                Some(arg) => Err(format!("{arg:?} is in ExecStart {argv:?}")),
                None => Ok(()),
            }
        }
        // --- the input unit ---
        "assert-name" => {
            arity(assertion, 1, Some(1))?;
            equal(&[own_name.to_owned()], args)
        }
        "assert-hash" => {
            arity(assertion, 1, Some(1))?;
            equal(&[unit.hash().short()], args)
        }
        // --- [X-Fleet] constraints ---
        "assert-machine-id" => {
            arity(assertion, 1, Some(1))?;
            match &constraints.machine_id {
                Some(id) => equal(std::slice::from_ref(id), args),
                None => Err("no machine ID".into()),
            }
        }
        "assert-no-machine-id" => {
            arity(assertion, 0, Some(0))?;
            match &constraints.machine_id {
                Some(id) => Err(format!("machine ID is {id:?}")),
                None => Ok(()),
            }
        }
        "assert-machine-of" => equal_sets(&constraints.machine_of, args),
        "assert-metadata" => {
            arity(assertion, 2, None)?;
            let actual: Vec<String> = constraints
                .machine_metadata
                .get(&args[0])
                .map(|set| set.iter().cloned().collect())
                .unwrap_or_default();
            equal_sets(&actual, &args[1..])
        }
        "assert-metadata-keys" => {
            let actual: Vec<String> = constraints.machine_metadata.keys().cloned().collect();
            equal_sets(&actual, args)
        }
        "assert-metadata-matches" | "assert-metadata-rejects" => {
            let machine = machine_metadata(args)?;
            let wanted = assertion.verb == "assert-metadata-matches";
            if constraints.metadata_matches(&machine) == wanted {
                Ok(())
            } else {
                Err(format!(
                    "metadata {:?} {} a machine with {machine:?}",
                    constraints.machine_metadata,
                    if wanted { "does not match" } else { "matches" }
                ))
            }
        }
        "assert-conflicts" => {
            let actual: Vec<String> = constraints
                .conflicts
                .iter()
                .map(|g| g.as_str().to_owned())
                .collect();
            equal_sets(&actual, args)
        }
        "assert-conflicts-with" | "assert-not-conflicts-with" => {
            arity(assertion, 1, None)?;
            let wanted = assertion.verb == "assert-conflicts-with";
            match args
                .iter()
                .find(|other| constraints.conflicts_with(own_name, other) != wanted)
            {
                Some(other) => Err(format!(
                    "{own_name} {} {other}",
                    if wanted {
                        "does not conflict with"
                    } else {
                        "conflicts with"
                    }
                )),
                None => Ok(()),
            }
        }
        "assert-global" => {
            arity(assertion, 1, Some(1))?;
            let wanted = match args[0].as_str() {
                "true" => true,
                "false" => false,
                other => return Err(format!("expected true or false, got {other:?}")),
            };
            if constraints.global == wanted {
                Ok(())
            } else {
                Err(format!("Global is {}", constraints.global))
            }
        }
        "assert-replaces" => {
            let actual: Vec<String> = constraints
                .replaces
                .iter()
                .map(|g| g.as_str().to_owned())
                .collect();
            equal_sets(&actual, args)
        }
        "assert-replaces-unit" | "assert-not-replaces-unit" => {
            arity(assertion, 1, None)?;
            let wanted = assertion.verb == "assert-replaces-unit";
            match args
                .iter()
                .find(|other| constraints.replaces.iter().any(|glob| glob.matches(other)) != wanted)
            {
                Some(other) => Err(format!(
                    "{own_name} {} {other}",
                    if wanted {
                        "does not replace"
                    } else {
                        "replaces"
                    }
                )),
                None => Ok(()),
            }
        }
        verb => Err(format!("verb {verb:?} is not implemented for {name}")),
    }
}

/// Every value of `key` in every section called `section`, in order.
fn values(unit: &UnitFile, section: &str, key: &str) -> Vec<String> {
    unit.entries(section, key)
        .map(|entry| entry.value().to_owned())
        .collect()
}

/// The words of the last `ExecStart=` in `[Service]`.
fn exec_start(unit: &UnitFile) -> Result<Vec<String>, String> {
    let entry = unit
        .last("Service", "ExecStart")
        .ok_or("no ExecStart= in [Service]")?;
    words::split(entry.value()).map_err(|error| format!("ExecStart does not split: {error}"))
}

fn machine_metadata(args: &[String]) -> Result<BTreeMap<String, String>, String> {
    args.iter()
        .map(|pair| {
            pair.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| format!("expected KEY=VALUE, got {pair:?}"))
        })
        .collect()
}

fn equal(actual: &[String], expected: &[String]) -> Result<(), String> {
    if actual == expected {
        Ok(())
    } else {
        Err(format!("actual {actual:?}"))
    }
}

fn equal_sets(actual: &[String], expected: &[String]) -> Result<(), String> {
    let mut actual = actual.to_vec();
    let mut expected = expected.to_vec();
    actual.sort();
    expected.sort();
    equal(&actual, &expected)
}

/// Runs `flotilla-generator --dry-run NAME` in the fixture directory, so that diagnostics and
/// the `---NAME.service---` header use the bare file name: (exit status, stdout, stderr).
fn invoke_generator(dir: &Path, name: &str) -> Result<(Option<i32>, String, String), String> {
    invoke_generator_on(dir, &[name])
}

/// `flotilla-generator --dry-run NAME…`: (exit status, stdout, stderr).
fn invoke_generator_on(
    dir: &Path,
    names: &[&str],
) -> Result<(Option<i32>, String, String), String> {
    let run = Command::new(env!("CARGO_BIN_EXE_flotilla-generator"))
        .arg("--dry-run")
        .args(names)
        .current_dir(dir)
        .output()
        .map_err(|error| format!("cannot run flotilla-generator: {error}"))?;
    let stdout = String::from_utf8(run.stdout).map_err(|_| "generator stdout is not UTF-8")?;
    let stderr = String::from_utf8(run.stderr).map_err(|_| "generator stderr is not UTF-8")?;
    Ok((run.status.code(), stdout, stderr))
}
