//! The engine end to end through the `flotilla` CLI on this host: containers from a busybox
//! image the test imports, run with real namespaces, overlayfs and cgroups. What a user would
//! notice: output and exit codes, isolation seen from inside the container, limits enforced,
//! run-or-start, restart policies, state after a supervisor is killed, volumes and logs.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use flotilla_tests::flotilla::Flotilla;
use flotilla_tests::registry::{Auth, Registry};
use flotilla_tests::test_image::{Format, TestImage};
use serde_json::Value;

/// A data root with the busybox image `bb` (CMD sh, `StopSignal` SIGTERM), in a network
/// namespace of its own.
fn engine() -> Flotilla {
    let flotilla = Flotilla::with_own_network();
    flotilla.busybox("bb", &[]);
    flotilla
}

/// `flotilla inspect C`, the one object of the array.
fn inspect(flotilla: &Flotilla, container: &str) -> Value {
    let json: Value =
        serde_json::from_str(&flotilla.ok(&["inspect", container])).expect("inspect prints JSON");
    json[0].clone()
}

/// Runs a command and returns (exit code, stdout, stderr).
fn outcome(flotilla: &Flotilla, args: &[&str]) -> (i32, String, String) {
    described(flotilla.run(args))
}

/// [`outcome`] of a command with `input` on its standard input (closed after it).
fn outcome_with_input(flotilla: &Flotilla, args: &[&str], input: &[u8]) -> (i32, String, String) {
    described(flotilla.run_with_input(args, input))
}

/// An output as (exit code, stdout, stderr).
fn described(output: std::process::Output) -> (i32, String, String) {
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Waits until `check` holds, at most `seconds`; panics with `what` otherwise.
fn eventually(seconds: u64, what: &str, mut check: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(seconds);
    while !check() {
        assert!(Instant::now() < until, "timed out waiting: {what}");
        sleep(Duration::from_millis(50));
    }
}

fn status_of(flotilla: &Flotilla, container: &str) -> String {
    inspect(flotilla, container)["State"]["Status"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn process_alive(pid: i64) -> bool {
    pid > 0 && std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn run_prints_the_output_and_returns_the_exit_code() {
    let f = engine();
    assert_eq!(f.ok(&["run", "--rm", "bb", "echo", "hello"]), "hello\n");
    let (code, out, err) = outcome(
        &f,
        &[
            "run",
            "--rm",
            "bb",
            "sh",
            "-c",
            "echo out; echo err >&2; exit 3",
        ],
    );
    assert_eq!((code, out.as_str(), err.as_str()), (3, "out\n", "err\n"));
    let (code, _, err) = outcome(&f, &["run", "--rm", "bb", "/nope"]);
    assert_eq!(code, 127, "{err}");
    assert!(
        err.contains("/nope") && err.contains("no such file"),
        "{err}"
    );
    // --rm left nothing behind.
    assert_eq!(f.ok(&["ps", "-aq"]), "");
}

#[test]
fn containers_are_isolated_as_dockers_are() {
    let f = engine();
    let script = "echo pid=$$; hostname; grep -E '^(CapEff|NoNewPrivs)' /proc/self/status; \
                  grep ' / ' /proc/mounts | cut -d' ' -f3; grep ' /sys ' /proc/mounts | cut -d' ' -f4 | cut -d, -f1; \
                  touch /sys/x 2>/dev/null || echo sys-read-only; wc -c < /proc/timer_list; \
                  ls /dev; ip link 2>/dev/null | grep -c mtu";
    let out = f.ok(&["run", "--rm", "--hostname", "box", "bb", "sh", "-c", script]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "pid=1", "{out}");
    assert_eq!(lines[1], "box", "{out}");
    assert!(lines.contains(&"CapEff:\t00000000a80425fb"), "{out}");
    assert!(lines.contains(&"NoNewPrivs:\t1"), "{out}");
    assert!(lines.contains(&"overlay"), "{out}");
    assert!(lines.contains(&"ro"), "{out}");
    assert!(lines.contains(&"sys-read-only"), "{out}");
    assert!(lines.contains(&"0"), "/proc/timer_list is masked: {out}");
    for device in ["null", "zero", "urandom", "tty", "pts", "shm"] {
        assert!(lines.contains(&device), "/dev/{device}: {out}");
    }
    // The host's name is not the container's by default: the short ID is.
    let id = f.ok(&["create", "bb", "hostname"]).trim().to_owned();
    assert_eq!(f.ok(&["start", "-a", &id]), format!("{}\n", &id[..12]));
    // A user by name from the image's /etc/passwd, with its groups.
    assert_eq!(
        f.ok(&["run", "--rm", "-u", "app", "bb", "id"]),
        "uid=1000(app) gid=1000(app) groups=50(staff)\n"
    );
}

#[test]
fn memory_and_pids_limits_are_enforced() {
    let f = engine();
    let (code, _, err) = outcome(
        &f,
        &[
            "run",
            "--name",
            "hog",
            "-m",
            "8m",
            "bb",
            "sh",
            "-c",
            "x=$(head -c 64m /dev/zero | tr '\\0' a); echo survived",
        ],
    );
    assert_eq!(code, 137, "the hog is killed: {err}");
    assert_eq!(inspect(&f, "hog")["State"]["OOMKilled"], Value::Bool(true));
    // Eight background sleeps need nine processes: with at most five, the shell cannot fork.
    let fork_eight = "for i in 1 2 3 4 5 6 7 8; do sleep 1 & done; wait; echo forked";
    let (code, out, err) = outcome(
        &f,
        &[
            "run",
            "--rm",
            "--pids-limit",
            "5",
            "bb",
            "sh",
            "-c",
            fork_eight,
        ],
    );
    assert!(
        code != 0 && !out.contains("forked") && err.contains("fork"),
        "{code} {out} {err}"
    );
    assert_eq!(
        f.ok(&["run", "--rm", "bb", "sh", "-c", fork_eight]),
        "forked\n"
    );
    let memory = inspect(&f, "hog")["HostConfig"]["Memory"].clone();
    assert_eq!(memory, Value::from(8 * 1024 * 1024));
}

#[test]
fn detached_containers_show_in_ps_and_stop() {
    let f = engine();
    let id = f
        .ok(&["run", "-d", "--name", "web", "bb", "sleep", "300"])
        .trim()
        .to_owned();
    assert_eq!(id.len(), 64, "{id}");
    let ps = f.ok(&["ps"]);
    assert!(ps.starts_with("CONTAINER ID   IMAGE"), "{ps}");
    assert!(
        ps.contains(&id[..12]) && ps.contains("Up ") && ps.contains("web"),
        "{ps}"
    );
    let state = inspect(&f, "web");
    assert_eq!(state["State"]["Running"], Value::Bool(true));
    let pid = state["State"]["Pid"].as_i64().unwrap();
    assert!(process_alive(pid));
    let started = Instant::now();
    assert_eq!(f.ok(&["stop", "-t", "1", "web"]), "web\n");
    // sleep as PID 1 ignores SIGTERM: SIGKILL follows after the timeout.
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(4),
        "{took:?}"
    );
    let state = inspect(&f, "web");
    assert_eq!(state["State"]["Status"], "exited");
    assert!(!process_alive(pid));
    assert_eq!(f.ok(&["ps", "-q"]), "");
    assert!(f.ok(&["ps", "-a"]).contains("Exited ("));
    assert_eq!(f.ok(&["rm", "web"]), "web\n");
    assert!(f.fails(&["inspect", "web"]).contains("no such object: web"));
}

#[test]
fn run_with_a_name_is_run_or_start() {
    let f = engine();
    let first = f
        .ok(&["run", "-d", "--name", "db", "bb", "sleep", "300"])
        .trim()
        .to_owned();
    // Running: nothing to do.
    assert_eq!(
        f.ok(&["run", "-d", "--name", "db", "bb", "sleep", "300"])
            .trim(),
        first
    );
    let pid = inspect(&f, "db")["State"]["Pid"].clone();
    f.ok(&["stop", "-t", "0", "db"]);
    // Stopped: started again, same container.
    assert_eq!(
        f.ok(&["run", "-d", "--name", "db", "bb", "sleep", "300"])
            .trim(),
        first
    );
    assert_eq!(status_of(&f, "db"), "running");
    assert_ne!(inspect(&f, "db")["State"]["Pid"], pid);
    // Another configuration: refused with what differs, unless --replace.
    let (code, _, err) = outcome(
        &f,
        &[
            "run", "-d", "--name", "db", "-m", "64m", "bb", "sleep", "300",
        ],
    );
    assert_eq!(code, 125, "docker's status for a refused run: {err}");
    assert!(
        err.contains("--memory") && err.contains("--replace"),
        "{err}"
    );
    let replaced = f.ok(&[
        "run",
        "-d",
        "--replace",
        "--name",
        "db",
        "-m",
        "64m",
        "bb",
        "sleep",
        "300",
    ]);
    assert_ne!(replaced.trim(), first);
    assert_eq!(f.ok(&["ps", "-aq"]).lines().count(), 1);
}

#[test]
fn concurrent_runs_of_one_name_make_one_container() {
    let f = engine();
    let children: Vec<_> = (0..4)
        .map(|_| {
            f.command(&["run", "-d", "--name", "once", "bb", "sleep", "300"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let ids: Vec<String> = children
        .into_iter()
        .map(|child| {
            let output = child.wait_with_output().unwrap();
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            String::from_utf8_lossy(&output.stdout).trim().to_owned()
        })
        .collect();
    assert!(ids.iter().all(|id| id == &ids[0]), "{ids:?}");
    assert_eq!(f.ok(&["ps", "-aq"]).lines().count(), 1);
    assert_eq!(status_of(&f, "once"), "running");
}

#[test]
fn on_failure_restarts_up_to_its_limit_and_keeps_the_id() {
    let f = engine();
    let id = f
        .ok(&[
            "run",
            "-d",
            "--name",
            "flaky",
            "--restart",
            "on-failure:3",
            "bb",
            "false",
        ])
        .trim()
        .to_owned();
    eventually(30, "flaky ends after 3 restarts", || {
        let state = inspect(&f, "flaky");
        state["State"]["Status"] == "exited" && state["RestartCount"] == 3
    });
    let state = inspect(&f, "flaky");
    assert_eq!(state["Id"], Value::from(id.as_str()));
    assert_eq!(state["State"]["ExitCode"], 1);
    assert!(f.ok(&["ps", "-a"]).contains("Exited (1)"));
}

#[test]
fn always_restarts_until_stopped() {
    let f = engine();
    f.ok(&[
        "run",
        "-d",
        "--name",
        "loop",
        "--restart",
        "always",
        "bb",
        "sh",
        "-c",
        "sleep 0.2; exit 2",
    ]);
    let mut saw_restarting = false;
    eventually(20, "two restarts", || {
        let state = inspect(&f, "loop");
        saw_restarting |= f.ok(&["ps"]).contains("Restarting (2)");
        state["RestartCount"].as_u64().unwrap_or(0) >= 2
    });
    assert!(saw_restarting || status_of(&f, "loop") == "running");
    f.ok(&["stop", "loop"]);
    let count = inspect(&f, "loop")["RestartCount"].clone();
    sleep(Duration::from_millis(800));
    assert_eq!(status_of(&f, "loop"), "exited");
    assert_eq!(
        inspect(&f, "loop")["RestartCount"],
        count,
        "a stopped container stays stopped"
    );
}

#[test]
fn a_killed_supervisor_leaves_a_consistent_state() {
    let f = engine();
    f.ok(&["run", "-d", "--name", "orphan", "bb", "sleep", "300"]);
    let state = inspect(&f, "orphan");
    let pid = state["State"]["Pid"].as_i64().unwrap();
    let shim = state["Flotilla"]["Supervisor"]["Pid"].as_i64().unwrap();
    assert!(process_alive(shim), "{state}");
    Command::new("kill")
        .args(["-9", &shim.to_string()])
        .status()
        .unwrap();
    eventually(5, "the container dies with its supervisor", || {
        !process_alive(pid)
    });
    assert_eq!(status_of(&f, "orphan"), "exited");
    assert!(!f.ok(&["ps"]).contains("orphan"));
    f.ok(&["start", "orphan"]);
    assert_eq!(status_of(&f, "orphan"), "running");
    f.ok(&["rm", "-f", "orphan"]);
    assert_eq!(f.ok(&["ps", "-aq"]), "");
}

#[test]
fn volumes_outlive_containers_and_binds_can_be_read_only() {
    let f = engine();
    f.ok(&[
        "run",
        "--rm",
        "-v",
        "data:/data",
        "bb",
        "sh",
        "-c",
        "echo kept > /data/file",
    ]);
    assert_eq!(
        f.ok(&["run", "--rm", "-v", "data:/data", "bb", "cat", "/data/file"]),
        "kept\n"
    );
    let host = f.dir().join("bind");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("in"), "from host").unwrap();
    let bind = format!("{}:/host:ro", host.display());
    let (code, out, _) = outcome(
        &f,
        &[
            "run",
            "--rm",
            "-v",
            &bind,
            "bb",
            "sh",
            "-c",
            "cat /host/in; echo; touch /host/new || echo refused",
        ],
    );
    assert_eq!((code, out.as_str()), (0, "from host\nrefused\n"));
    assert!(!host.join("new").exists());
    // An anonymous volume goes with `rm -v`.
    f.ok(&["run", "--name", "anon", "-v", "/scratch", "bb", "true"]);
    let source = inspect(&f, "anon")["Mounts"][0]["Source"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(std::path::Path::new(&source).exists());
    f.ok(&["rm", "-v", "anon"]);
    assert!(!std::path::Path::new(&source).exists());
}

#[test]
fn logs_come_back_without_a_journal() {
    let f = engine();
    f.ok(&[
        "run",
        "--name",
        "talker",
        "bb",
        "sh",
        "-c",
        "echo one; echo two >&2; sleep 0.2; echo three",
    ]);
    let output = f.run(&["logs", "talker"]);
    assert_eq!(String::from_utf8_lossy(&output.stdout), "one\nthree\n");
    assert_eq!(String::from_utf8_lossy(&output.stderr), "two\n");
    assert_eq!(f.ok(&["logs", "--tail", "1", "talker"]), "three\n");
    let state = inspect(&f, "talker");
    assert_eq!(
        state["HostConfig"]["LogConfig"]["Type"], "json-file",
        "{state}"
    );
}

#[test]
fn start_attach_wait_and_exec() {
    let f = engine();
    let id = f
        .ok(&[
            "create",
            "--name",
            "job",
            "bb",
            "sh",
            "-c",
            "echo ran; exit 4",
        ])
        .trim()
        .to_owned();
    assert_eq!(status_of(&f, &id), "created");
    let (code, out, _) = outcome(&f, &["start", "-a", "job"]);
    assert_eq!((code, out.as_str()), (4, "ran\n"));
    assert_eq!(f.ok(&["wait", "job"]), "4\n");
    f.ok(&["run", "-d", "--name", "svc", "bb", "sleep", "300"]);
    assert_eq!(
        f.ok(&[
            "exec",
            "svc",
            "sh",
            "-c",
            "echo $$ > /dev/null; cat /proc/1/cmdline | tr '\\0' ' '"
        ]),
        "sleep 300 "
    );
    let (code, _, _) = outcome(&f, &["exec", "svc", "sh", "-c", "exit 7"]);
    assert_eq!(code, 7);
}

#[test]
fn boot_brings_back_always_and_unless_stopped_containers() {
    let f = engine();
    for (name, policy) in [
        ("always", "always"),
        ("unless", "unless-stopped"),
        ("stopped", "unless-stopped"),
        ("plain", "no"),
    ] {
        f.ok(&[
            "run",
            "-d",
            "--name",
            name,
            "--restart",
            policy,
            "bb",
            "sleep",
            "300",
        ]);
    }
    f.ok(&["stop", "-t", "0", "stopped"]);
    // The host "crashes": every supervisor dies at once.
    for name in ["always", "unless", "plain"] {
        let shim = inspect(&f, name)["Flotilla"]["Supervisor"]["Pid"]
            .as_i64()
            .unwrap();
        Command::new("kill")
            .args(["-9", &shim.to_string()])
            .status()
            .unwrap();
    }
    eventually(5, "all exited", || {
        ["always", "unless", "plain"]
            .iter()
            .all(|n| status_of(&f, n) == "exited")
    });
    f.ok(&["boot"]);
    assert_eq!(status_of(&f, "always"), "running");
    assert_eq!(status_of(&f, "unless"), "running");
    assert_eq!(status_of(&f, "stopped"), "exited");
    assert_eq!(status_of(&f, "plain"), "exited");
}

#[test]
fn images_in_use_are_not_removed() {
    let f = engine();
    f.ok(&["create", "--name", "user", "bb", "true"]);
    let err = f.fails(&["rmi", "bb"]);
    assert!(err.contains("used by container"), "{err}");
    f.ok(&["image", "prune", "-a", "-f"]);
    assert!(
        f.ok(&["images", "-q"]).lines().count() == 1,
        "prune keeps it"
    );
    assert_eq!(f.ok(&["start", "-a", "user"]), "");
    // Another tag of it can go: that only untags.
    f.ok(&["tag", "bb", "bb:other"]);
    assert!(f.ok(&["rmi", "bb:other"]).contains("Untagged"));
    f.ok(&["rm", "user"]);
    assert!(f.ok(&["rmi", "bb"]).contains("Deleted"));
}

#[test]
fn a_killed_cli_leaves_its_container_running() {
    let f = engine();
    let mut cli = f
        .command(&["run", "--name", "fg", "bb", "sleep", "300"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    eventually(10, "fg runs", || {
        f.run(&["inspect", "fg"]).status.success() && status_of(&f, "fg") == "running"
    });
    cli.kill().unwrap();
    cli.wait().unwrap();
    sleep(Duration::from_millis(300));
    assert_eq!(status_of(&f, "fg"), "running");
    assert!(process_alive(
        inspect(&f, "fg")["State"]["Pid"].as_i64().unwrap()
    ));
}

#[test]
fn run_pulls_a_missing_image_first() {
    let registry = Registry::start(Auth::None).unwrap();
    let image = TestImage::build().unwrap();
    image.push(&registry, "app:1", Format::Oci).unwrap();
    let f = Flotilla::new();
    let name = format!("{}/app:1", registry.host());
    // The registry listens on the host's loopback: the container runs in the host's network.
    let (code, out, err) = outcome(
        &f,
        &[
            "run",
            "--rm",
            "--network",
            "host",
            &name,
            "echo",
            "pulled and ran",
        ],
    );
    assert_eq!((code, out.as_str()), (0, "pulled and ran\n"), "{err}");
    assert!(
        err.contains(&format!("Unable to find image '{name}' locally")),
        "{err}"
    );
    assert!(err.contains("Downloaded newer image"), "{err}");
}

#[test]
fn a_cpu_limit_is_the_containers_cfs_quota() {
    let f = engine();
    // The container sees its own cgroups, read-only, at /sys/fs/cgroup/<controller>.
    let out = f.ok(&[
        "run", "--rm", "--cpus", "0.5", "bb", "sh", "-c",
        "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us; echo 1 > /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || echo read-only",
    ]);
    assert_eq!(out, "50000\n100000\nread-only\n");
}

#[test]
fn run_with_a_terminal_prints_one_stream_with_crlf_line_ends() {
    let f = engine();
    assert_eq!(f.ok(&["run", "--rm", "-t", "bb", "tty"]), "/dev/pts/0\r\n");
    let script = "test -t 0 && test -t 1 && echo terminal $TERM; echo err >&2; exit 3";
    let (code, out, err) = outcome(&f, &["run", "--rm", "-t", "bb", "sh", "-c", script]);
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (3, "terminal xterm\r\nerr\r\n", "")
    );
    // -i without a terminal of our own: the input still reaches the container's terminal,
    // which echoes it, and its end ends `cat`.
    let (code, out, _) = outcome_with_input(&f, &["run", "-i", "-t", "--rm", "bb", "cat"], b"hi\n");
    assert_eq!((code, out.as_str()), (0, "hi\r\nhi\r\n"));
    let (code, out, _) = outcome_with_input(
        &f,
        &[
            "run",
            "-it",
            "--rm",
            "bb",
            "sh",
            "-c",
            "read word; echo got $word; exit 4",
        ],
        b"go\n",
    );
    assert_eq!((code, out.as_str()), (4, "go\r\ngot go\r\n"));
    // create -t, then start -a: the terminal is part of the container's configuration.
    let id = f.ok(&["create", "-t", "bb", "tty"]).trim().to_owned();
    assert_eq!(f.ok(&["start", "-a", &id]), "/dev/pts/0\r\n");
    assert_eq!(f.ok(&["ps", "-aq"]), format!("{}\n", &id[..12]));
}

#[test]
fn exec_with_a_terminal() {
    let f = engine();
    f.ok(&["run", "-d", "--name", "svc", "bb", "sleep", "300"]);
    assert_eq!(f.ok(&["exec", "-t", "svc", "tty"]), "/dev/pts/0\r\n");
    let script = "test -t 0 && echo terminal $TERM; echo err >&2; exit 5";
    let (code, out, err) = outcome(&f, &["exec", "-t", "svc", "sh", "-c", script]);
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (5, "terminal xterm\r\nerr\r\n", "")
    );
    let (code, out, _) = outcome_with_input(&f, &["exec", "-i", "-t", "svc", "cat"], b"hi\n");
    assert_eq!((code, out.as_str()), (0, "hi\r\nhi\r\n"));
    // Without -t, no terminal, and plain line ends.
    assert_eq!(
        f.ok(&["exec", "svc", "sh", "-c", "test -t 1 || echo none"]),
        "none\n"
    );
}

#[test]
fn a_detached_terminal_is_logged_as_stdout_lines() {
    let f = engine();
    let script = "echo one; echo two >&2; printf 'three'; sleep 300";
    f.ok(&[
        "run", "-d", "-t", "--name", "talker", "bb", "sh", "-c", script,
    ]);
    eventually(10, "the output is logged", || {
        f.ok(&["logs", "talker"]) == "one\ntwo\n"
    });
    let output = f.run(&["logs", "talker"]);
    assert_eq!(String::from_utf8_lossy(&output.stderr), "");
    let state = inspect(&f, "talker");
    assert_eq!(state["Config"]["Tty"], true, "{state}");
    assert!(
        state["Config"]["Env"]
            .as_array()
            .is_some_and(|env| env.contains(&Value::from("TERM=xterm"))),
        "{state}"
    );
    // An exec without -t into it has no terminal; with -t, one of its own.
    assert_eq!(
        f.ok(&["exec", "talker", "sh", "-c", "test -t 1 || echo none"]),
        "none\n"
    );
    assert_eq!(f.ok(&["exec", "-t", "talker", "tty"]), "/dev/pts/1\r\n");
    // Run-or-start: a terminal is part of the configuration.
    let (code, _, err) = outcome(&f, &["run", "--name", "talker", "bb", "sh", "-c", script]);
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("--tty: true → false"), "{err}");
    // The unterminated last line is logged when the container ends.
    f.ok(&["kill", "talker"]);
    eventually(10, "the last line is logged", || {
        f.ok(&["logs", "talker"]) == "one\ntwo\nthree\n"
    });
}

/// `script -qec COMMAND /dev/null`: COMMAND (sh) runs on a terminal of its own, as a user's
/// shell would; `FLOTILLA` in it stands for this data root's command line. `input` is typed once
/// the terminal shows `prompt`. Returns what the terminal showed.
fn on_a_terminal(flotilla: &Flotilla, command: &str, prompt: &str, input: &[u8]) -> String {
    let template = flotilla.command(&[]);
    let quote =
        |word: &std::ffi::OsStr| format!("'{}'", word.to_string_lossy().replace('\'', "'\\''"));
    let mut line: Vec<String> = vec![quote(template.get_program())];
    line.extend(template.get_args().map(quote));
    let command = command.replace("FLOTILLA", &line.join(" "));
    let mut script = Command::new("timeout");
    script.args(["60", "script", "-qec", &command, "/dev/null"]);
    for (key, value) in template.get_envs() {
        match value {
            Some(value) => script.env(key, value),
            None => script.env_remove(key),
        };
    }
    let mut child = script
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("util-linux script (Debian's bsdutils)");
    let mut stdin = child.stdin.take().expect("piped standard input");
    let mut stdout = child.stdout.take().expect("piped standard output");
    let mut shown = Vec::new();
    let mut buffer = [0u8; 4096];
    while !String::from_utf8_lossy(&shown).contains(prompt) {
        match stdout.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => shown.extend_from_slice(&buffer[..n]),
            Err(e) => panic!("read what the terminal showed: {e}"),
        }
    }
    stdin.write_all(input).expect("write standard input");
    stdout
        .read_to_end(&mut shown)
        .expect("read what the terminal showed");
    // Open until the end, so script never types an end of file of its own.
    drop(stdin);
    let status = child.wait().expect("wait for script");
    let shown = String::from_utf8_lossy(&shown).into_owned();
    assert!(
        status.success(),
        "script {command:?} failed: {status}\n{shown}"
    );
    shown
}

#[test]
fn run_it_on_a_real_terminal_is_raw_sized_and_restored() {
    let f = engine();
    f.ok(&["run", "-d", "--name", "svc", "bb", "sleep", "300"]);
    let waits_for = |size: &str| {
        format!("until [ \"$(stty size)\" = {size:?} ]; do sleep 0.05; done; echo resized")
    };
    let command = format!(
        "stty rows 30 cols 100; saved=$(stty -g); \
         FLOTILLA run -it --rm bb sh -c 'stty size; echo waiting; read line; echo got $line; exit 3'; \
         echo code=$?; [ \"$(stty -g)\" = \"$saved\" ] && echo restored; \
         (sleep 1; stty rows 40 cols 120 </dev/tty) & \
         FLOTILLA run -it --rm bb sh -c '{}'; \
         (sleep 1; stty rows 50 cols 130 </dev/tty) & \
         FLOTILLA exec -it svc sh -c 'stty size; {}; exit 6'; \
         echo code=$?; [ \"$(stty -g)\" = \"$saved\" ] && echo restored; \
         FLOTILLA run -it --rm bb sh -c 'trap \"exit 7\" TERM; while :; do sleep 0.05; done' \
           </dev/tty & \
         until [ $(FLOTILLA ps -q | wc -l) = 2 ]; do sleep 0.05; done; kill $!; wait $!; \
         echo code=$?; [ \"$(stty -g)\" = \"$saved\" ] && echo restored",
        waits_for("40 120"),
        waits_for("50 130"),
    );
    let shown = on_a_terminal(&f, &command, "waiting", b"hello\n");
    // Our size at the start, our input through (echoed by the container's terminal only: ours
    // is raw), the container's exit code ours, our terminal's settings back as they were.
    assert!(shown.contains("30 100\r\n"), "{shown}");
    assert!(
        shown.contains("waiting\r\nhello\r\ngot hello\r\n"),
        "{shown}"
    );
    assert!(shown.contains("code=3\r\nrestored\r\n"), "{shown}");
    // A resize (SIGWINCH) reaches the container's terminal, run's and exec's.
    assert_eq!(shown.matches("resized\r\n").count(), 2, "{shown}");
    assert!(
        shown.contains("40 120\r\n"),
        "exec starts at our size: {shown}"
    );
    assert!(shown.contains("code=6\r\nrestored\r\n"), "{shown}");
    // SIGTERM to us is passed on; the container's exit ends us, restoring our terminal.
    assert!(shown.ends_with("code=7\r\nrestored\r\n"), "{shown}");
}

/// The entry names of a tarball.
fn tar_names(bytes: &[u8]) -> Vec<String> {
    tar::Archive::new(bytes)
        .entries()
        .expect("a tarball")
        .map(|entry| {
            let entry = entry.expect("a tar entry");
            String::from_utf8_lossy(&entry.path_bytes()).into_owned()
        })
        .collect()
}

/// Whether this process's mount table mentions `path`.
/// The file systems mounted under `path`, but for the running containers' network namespaces
/// (an nsfs bind mount each, which lives as long as its container runs).
fn mounted_under(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|line| line.contains(path.to_str().unwrap()) && !line.contains(" - nsfs "))
        .map(str::to_owned)
        .collect()
}

#[test]
fn export_writes_what_the_container_sees_and_import_runs_it() {
    let f = engine();
    f.ok(&[
        "run",
        "--name",
        "changed",
        "-v",
        "/vol",
        "bb",
        "sh",
        "-c",
        "mkdir /data && echo written > /data/x && rm /etc/group && echo v > /vol/v",
    ]);
    let tarball = f.dir().join("changed.tar");
    f.ok(&["export", "-o", tarball.to_str().unwrap(), "changed"]);
    let names = tar_names(&std::fs::read(&tarball).unwrap());
    for present in ["data/x", "etc/passwd", "bin/busybox", "proc/", "dev/"] {
        assert!(names.iter().any(|n| n == present), "{present} in {names:?}");
    }
    for absent in ["etc/group", "vol/v"] {
        assert!(!names.iter().any(|n| n == absent), "{absent} in {names:?}");
    }
    assert!(
        !names.iter().any(|n| n.starts_with("proc/") && n != "proc/"),
        "the container's /proc is not exported: {names:?}"
    );

    // The tarball is an image of the container's file system.
    f.ok(&[
        "import",
        "--change",
        "CMD [\"sh\"]",
        tarball.to_str().unwrap(),
        "snap",
    ]);
    assert_eq!(
        f.ok(&[
            "run",
            "--rm",
            "snap",
            "sh",
            "-c",
            "cat /data/x; test -e /etc/group || echo no-group"
        ]),
        "written\nno-group\n"
    );

    // A running container, by ID prefix, to standard output.
    let id = f
        .ok(&[
            "run",
            "-d",
            "bb",
            "sh",
            "-c",
            "echo up > /up; exec sleep 1000",
        ])
        .trim()
        .to_owned();
    eventually(10, "the container wrote /up", || {
        outcome(&f, &["exec", &id, "cat", "/up"]).1 == "up\n"
    });
    let output = f.command(&["export", &id[..8]]).output().unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(tar_names(&output.stdout).contains(&"up".to_owned()));
    assert_eq!(status_of(&f, &id), "running");

    // Nothing of it stays mounted here, and a missing container is named.
    assert_eq!(mounted_under(&f.data_root()), Vec::<String>::new());
    let err = f.fails(&[
        "export",
        "-o",
        f.dir().join("no.tar").to_str().unwrap(),
        "nope",
    ]);
    assert!(err.contains("no such container: nope"), "{err}");
    assert!(!f.dir().join("no.tar").exists());
    f.ok(&["rm", "-f", &id]);
}
