//! The built `flotilla-generator` run by a real systemd: `*.container` files in
//! `/etc/flotilla/units` become loadable `.service` units under `/run/systemd/generator` that
//! `systemd-analyze verify` accepts, and a bad file produces no unit but an error naming the file,
//! the line and the key.
//!
//! systemd 252 connects a generator's stderr to PID 1's, which is `/dev/null`; its own journal entry
//! for a failing generator is only "… failed with exit status N". So the test checks that entry,
//! then runs the installed generator once more as a transient unit, whose stderr goes to the node's
//! journal, and checks the error there.

use flotilla_tests::{built_binary, Node, NodeConfig};

const GENERATOR: &str = "/usr/lib/systemd/system-generators/flotilla-generator";

const MONGO: &str = "\
[Unit]
Description=mongo database
[Container]
Image=mongo
Name=mongo-ins
PublishPort=27017:27017
Restart=on-failure:10
[X-Fleet]
MachineMetadata=disk=ssd
[Install]
WantedBy=multi-user.target
";

/// `Bogus=1` on line 3 is not a `[Container]` key.
const BAD: &str = "[Container]\nImage=x\nBogus=1\n";

/// The `KEY=value` lines of `systemctl show -p …` as (key, value) pairs.
fn show(node: &Node, unit: &str, props: &str) -> Vec<(String, String)> {
    let out = node
        .exec_ok(&["systemctl", "show", "-p", props, unit])
        .unwrap();
    out.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn prop<'a>(props: &'a [(String, String)], key: &str) -> &'a str {
    props
        .iter()
        .find(|(k, _)| k == key)
        .map_or("", |(_, v)| v.as_str())
}

#[test]
fn generator_turns_container_files_into_units_and_reports_bad_ones() {
    let generator = built_binary("flotilla-generator");
    let flotilla = built_binary("flotilla");
    let node = Node::boot(NodeConfig::new("flotilla-gen-test")).expect("node boots");

    node.install_generator(&generator, "flotilla-generator")
        .unwrap();
    // `systemd-analyze verify` checks that ExecStart's binary exists and is executable.
    node.install(&flotilla, "/usr/bin/flotilla", 0o755).unwrap();
    node.write("/etc/flotilla/units/mongo.container", MONGO)
        .unwrap();
    node.write("/etc/flotilla/units/bad.container", BAD)
        .unwrap();
    node.exec_ok(&["systemctl", "daemon-reload"]).unwrap();

    // The good file became a loaded, generated service.
    let props = show(&node, "mongo.service", "LoadState,FragmentPath");
    assert_eq!(
        prop(&props, "LoadState"),
        "loaded",
        "mongo.service: {props:?}"
    );
    let fragment = prop(&props, "FragmentPath");
    assert!(
        fragment.starts_with("/run/systemd/generator/"),
        "mongo.service from {fragment:?}"
    );
    let unit = node
        .exec_ok(&["systemctl", "cat", "mongo.service"])
        .unwrap();
    assert!(
        unit.contains("ExecStart=/usr/bin/flotilla run"),
        "mongo.service:\n{unit}"
    );
    assert!(unit.contains("--name mongo-ins"), "mongo.service:\n{unit}");
    let verify = node.exec(&["systemd-analyze", "verify", fragment]).unwrap();
    assert!(
        verify.status.success(),
        "systemd-analyze verify {fragment} failed ({}):\n{}{}",
        verify.status,
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr),
    );

    // The bad file produced no service, and systemd saw the generator fail.
    let props = show(&node, "bad.service", "LoadState");
    assert_eq!(
        prop(&props, "LoadState"),
        "not-found",
        "bad.service: {props:?}"
    );
    let journal = node.journal(&["-b"]).unwrap();
    assert!(
        journal.contains(&format!("{GENERATOR} failed with exit status")),
        "systemd did not report the generator's failure:\n{journal}"
    );

    // What the generator says about it, through the journal of a transient unit.
    node.exec_ok(&[
        "mkdir",
        "-p",
        "/tmp/gen/normal",
        "/tmp/gen/early",
        "/tmp/gen/late",
    ])
    .unwrap();
    let rerun = node
        .exec(&[
            "systemd-run",
            "--wait",
            "--unit=flotilla-generator-rerun",
            GENERATOR,
            "/tmp/gen/normal",
            "/tmp/gen/early",
            "/tmp/gen/late",
        ])
        .unwrap();
    assert!(
        !rerun.status.success(),
        "the generator exited 0 despite bad.container"
    );
    let errors = node
        .journal(&["-u", "flotilla-generator-rerun", "-o", "cat"])
        .unwrap();
    assert!(
        errors.contains("/etc/flotilla/units/bad.container:3"),
        "no error naming bad.container:3 in the journal:\n{errors}"
    );
    assert!(
        errors.contains("Bogus"),
        "no error naming Bogus in the journal:\n{errors}"
    );
    // A bad file does not stop the good ones.
    node.exec_ok(&["test", "-s", "/tmp/gen/normal/mongo.service"])
        .unwrap();

    node.shutdown().unwrap();
}
