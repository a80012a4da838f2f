//! `flotilla volume …` as a user meets it: create, ls, inspect, rm, prune, their output and
//! exit statuses, against a scratch data root.

use std::path::Path;
use std::process::Output;
use std::time::SystemTime;

use agent::engine::container::{Container, MountKind, MountPoint, State, RECORD_VERSION};
use agent::engine::options::RunOptions;

const USER_ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn flotilla(data_root: &Path, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_flotilla"))
        .arg("--data-root")
        .arg(data_root)
        .args(args)
        .output()
        .expect("cannot run flotilla")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs a command that must succeed and returns its standard output.
fn ok(data_root: &Path, args: &[&str]) -> String {
    let output = flotilla(data_root, args);
    assert!(output.status.success(), "{args:?}: {}", stderr(&output));
    stdout(&output)
}

/// Writes the record of a container that mounts the volume `volume`.
fn container_using(data_root: &Path, volume: &str) {
    let container = Container {
        version: RECORD_VERSION,
        id: USER_ID.to_owned(),
        name: "web".to_owned(),
        created: SystemTime::now(),
        image: "busybox".to_owned(),
        image_id: "sha256:aaaa".to_owned(),
        options: RunOptions::default(),
        path: "sh".to_owned(),
        args: vec![],
        mounts: vec![MountPoint {
            kind: MountKind::Volume,
            name: Some(volume.to_owned()),
            source: format!("{}/volumes/{volume}/_data", data_root.display()),
            destination: "/data".to_owned(),
            read_write: true,
            anonymous: false,
        }],
        state: State::default(),
        restart_count: 0,
        manually_stopped: false,
        systemd: false,
        stop_signal: "SIGTERM".to_owned(),
        log: None,
        cgroups: None,
        endpoints: vec![],
        exposed: vec![],
        ports: vec![],
    };
    let dir = data_root.join("containers").join(USER_ID);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("container.json"),
        serde_json::to_vec(&container).unwrap(),
    )
    .unwrap();
}

#[test]
fn create_ls_inspect_rm() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    assert_eq!(
        ok(root, &["volume", "create", "--label", "team=db", "data"]),
        "data\n"
    );
    assert_eq!(ok(root, &["volume", "create", "data"]), "data\n");
    let random = ok(root, &["volume", "create"]);
    let random = random.trim();
    assert_eq!(random.len(), 64, "{random}");
    assert!(root.join("volumes/data/_data").is_dir());

    let table = ok(root, &["volume", "ls"]);
    let mut expected = vec![format!("local     {random}"), "local     data".to_owned()];
    expected.sort();
    expected.insert(0, "DRIVER    VOLUME NAME".to_owned());
    assert_eq!(table.lines().collect::<Vec<_>>(), expected);
    let quiet = ok(root, &["volume", "ls", "-q"]);
    assert!(quiet.lines().any(|l| l == "data"), "{quiet}");
    let json = ok(root, &["volume", "ls", "--format", "json"]);
    let lines: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let data = lines.iter().find(|l| l["Name"] == "data").unwrap();
    assert_eq!(
        (&data["Driver"], &data["Labels"]),
        (&"local".into(), &"team=db".into())
    );

    let inspected: serde_json::Value =
        serde_json::from_str(&ok(root, &["volume", "inspect", "data"])).unwrap();
    let volume = &inspected[0];
    let mut keys: Vec<&str> = volume
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "CreatedAt",
            "Driver",
            "Labels",
            "Mountpoint",
            "Name",
            "Options",
            "Scope"
        ]
    );
    assert_eq!(volume["Name"], "data");
    assert_eq!(volume["Scope"], "local");
    assert_eq!(volume["Labels"], serde_json::json!({"team": "db"}));
    assert_eq!(
        volume["Mountpoint"],
        root.join("volumes/data/_data").display().to_string()
    );

    assert_eq!(
        ok(root, &["volume", "rm", "data", random]),
        format!("data\n{random}\n")
    );
    assert!(!root.join("volumes/data").exists());
    assert_eq!(ok(root, &["volume", "ls", "-q"]), "");
}

#[test]
fn missing_volumes_fail_precisely() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    ok(root, &["volume", "create", "kept"]);
    let rm = flotilla(root, &["volume", "rm", "nope", "kept"]);
    assert_eq!(rm.status.code(), Some(1));
    assert_eq!(
        stderr(&rm),
        "flotilla volume rm: get nope: no such volume\n"
    );
    assert_eq!(stdout(&rm), "kept\n");
    let forced = flotilla(root, &["volume", "rm", "-f", "nope"]);
    assert!(forced.status.success(), "{}", stderr(&forced));

    let inspect = flotilla(root, &["volume", "inspect", "nope"]);
    assert_eq!(inspect.status.code(), Some(1));
    assert_eq!(stdout(&inspect), "[]\n");
    assert_eq!(
        stderr(&inspect),
        "flotilla volume inspect: get nope: no such volume\n"
    );
}

#[test]
fn names_are_checked_by_docker_rule() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    for bad in ["-x", "a/b", "../etc", "_x"] {
        let create = flotilla(root, &["volume", "create", "--", bad]);
        assert_eq!(create.status.code(), Some(1), "{bad}");
        assert!(
            stderr(&create).contains(&format!(
                "invalid volume name {bad:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-]* are allowed"
            )),
            "{bad}: {}",
            stderr(&create)
        );
    }
    assert_eq!(ok(root, &["volume", "ls", "-q"]), "");
    assert_eq!(ok(root, &["volume", "create", "a.b_c-1"]), "a.b_c-1\n");
}

#[test]
fn a_volume_in_use_is_kept() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    ok(root, &["volume", "create", "data"]);
    ok(root, &["volume", "create", "spare"]);
    container_using(root, "data");
    let rm = flotilla(root, &["volume", "rm", "data"]);
    assert_eq!(rm.status.code(), Some(1));
    assert_eq!(
        stderr(&rm),
        format!("flotilla volume rm: remove data: volume is in use - [{USER_ID}]\n")
    );
    let pruned = ok(root, &["volume", "prune", "--all", "--force"]);
    assert_eq!(
        pruned,
        "Deleted Volumes:\nspare\n\nTotal reclaimed space: 0B\n"
    );
    assert_eq!(ok(root, &["volume", "ls", "-q"]), "data\n");
}

#[test]
fn prune_without_all_removes_only_anonymous_volumes() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    ok(root, &["volume", "create", "named"]);
    // An anonymous volume as `run -v /dest` leaves it: docker's anonymous label marks it.
    let anonymous = "f".repeat(64);
    let store = agent::volumes::VolumeStore::open(root).unwrap();
    let volume = store.ensure(&anonymous, true).unwrap();
    std::fs::write(volume.mountpoint.join("file"), "12345").unwrap();
    let inspected: serde_json::Value =
        serde_json::from_str(&ok(root, &["volume", "inspect", &anonymous])).unwrap();
    assert_eq!(
        inspected[0]["Labels"],
        serde_json::json!({"com.docker.volume.anonymous": ""})
    );
    let pruned = ok(root, &["volume", "prune", "-f"]);
    assert_eq!(
        pruned,
        format!("Deleted Volumes:\n{anonymous}\n\nTotal reclaimed space: 5B\n")
    );
    assert_eq!(ok(root, &["volume", "ls", "-q"]), "named\n");
}
