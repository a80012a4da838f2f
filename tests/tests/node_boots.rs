//! A node boots the host image's systemd as its PID 1 from the image's root filesystem, is its own
//! machine (hostname, machine-id, /etc, /usr, /tmp, cgroups), sees nothing of the host's files,
//! runs transient units, and leaves nothing behind on the host or in the image when dropped.

use std::fs;
use std::path::Path;

use flotilla_tests::{Node, NodeConfig};

/// Names of the entries of `dir` on the host, sorted.
fn listing(dir: &str) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {dir}: {e}"))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn node_boots_isolated_and_leaves_nothing_behind() {
    let marker = format!("/tmp/flotilla-node-boots-marker-{}", std::process::id());
    fs::write(&marker, "host /tmp must survive node boots\n").unwrap();
    let host_hostname = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let host_machine_id = fs::read_to_string("/etc/machine-id").unwrap_or_default();
    let host_units_before = listing("/etc/systemd/system");
    let host_wants_before = listing("/usr/lib/systemd/system");
    let rootfs = flotilla_tests::os_image::os_rootfs().expect("the host image is built");
    let image_units = rootfs.join("etc/systemd/system");
    let image_units_before = listing(image_units.to_str().unwrap());

    let node = Node::boot(NodeConfig::new("flotilla-boot-test")).expect("node boots");
    eprintln!("node {} booted in {:?}", node.hostname(), node.boot_time());

    // PID 1 inside is systemd, and it is up.
    assert_eq!(
        node.exec_ok(&["cat", "/proc/1/comm"]).unwrap().trim(),
        "systemd"
    );
    let state = node
        .exec_ok(&["systemctl", "is-system-running"])
        .unwrap_or_else(|e| e.to_string());
    assert!(
        state.trim() == "running" || state.trim() == "degraded",
        "system state {state}"
    );

    // The root is the host image's (its factory /etc exists only there), and none of the host's
    // files are visible: not even the test binary running this.
    node.exec_ok(&["test", "-d", "/usr/share/flotilla/factory/etc"])
        .expect("the node runs the host image");
    let me = std::env::current_exe().unwrap();
    let host_only = node.exec(&["test", "-e", me.to_str().unwrap()]).unwrap();
    assert!(
        !host_only.status.success(),
        "{} (on the host) is visible inside the node",
        me.display()
    );

    // Own hostname and machine-id.
    let hostname = node.exec_ok(&["cat", "/proc/sys/kernel/hostname"]).unwrap();
    assert_eq!(hostname.trim(), "flotilla-boot-test");
    assert_ne!(hostname.trim(), host_hostname.trim());
    let machine_id = node.exec_ok(&["cat", "/etc/machine-id"]).unwrap();
    let machine_id = machine_id.trim();
    assert_eq!(machine_id.len(), 32, "machine-id {machine_id:?}");
    assert!(
        machine_id.bytes().all(|b| b.is_ascii_hexdigit()),
        "machine-id {machine_id:?}"
    );
    assert_ne!(machine_id, host_machine_id.trim());

    // systemd runs units, in the node's own cgroup tree.
    node.exec_ok(&["systemd-run", "--unit=hello", "--wait", "/bin/true"])
        .unwrap();
    // (On a hybrid host the v1 hierarchies are listed too; only the cgroup2 line is the node's.)
    let cgroups = node.exec_ok(&["cat", "/proc/1/cgroup"]).unwrap();
    let v2 = cgroups.lines().find(|l| l.starts_with("0::"));
    assert_eq!(v2, Some("0::/init.scope"), "/proc/1/cgroup:\n{cgroups}");

    // The node's /tmp is private, and writes to /etc and /usr stay in the node.
    let seen = node.exec(&["test", "-e", &marker]).unwrap();
    assert!(
        !seen.status.success(),
        "host /tmp marker is visible inside the node"
    );
    let etc_file = format!("/etc/flotilla-node-boots-{}", std::process::id());
    node.write(&etc_file, "node only\n").unwrap();
    let usr_file = format!("/usr/bin/flotilla-node-boots-{}", std::process::id());
    node.install(Path::new("/bin/true"), &usr_file, 0o755)
        .unwrap();
    node.exec_ok(&[&usr_file]).unwrap();
    assert!(
        !Path::new(&etc_file).exists(),
        "{etc_file} leaked to the host"
    );
    assert!(
        !Path::new(&usr_file).exists(),
        "{usr_file} leaked to the host"
    );
    for file in [&etc_file, &usr_file] {
        let in_image = rootfs.join(file.trim_start_matches('/'));
        assert!(
            !in_image.exists(),
            "{} leaked into the image",
            in_image.display()
        );
    }

    let footprint = node.footprint();
    drop(node);

    assert!(
        Path::new(&marker).exists(),
        "host /tmp marker {marker} was removed"
    );
    fs::remove_file(&marker).unwrap();
    assert_eq!(
        footprint.leftovers(),
        Vec::<String>::new(),
        "node left things behind"
    );
    // The node hid the image's *.wants links in its overlay only.
    assert_eq!(listing(image_units.to_str().unwrap()), image_units_before);
    assert_eq!(listing("/etc/systemd/system"), host_units_before);
    assert_eq!(listing("/usr/lib/systemd/system"), host_wants_before);
}
