//! Boot test of the host image (os/): `disk.qcow2` boots under qemu (KVM, or TCG where KVM does
//! not work) with the first-boot configuration the Vagrantfile gives core-01
//! (`vagrant/node-config.sh`) on a config drive made by `vagrant/config-drive.sh`; the test reads
//! the serial console until the agent has joined the cluster (etcd run by first boot on the VM
//! itself) and `flotctl list-machines` lists the machine, and checks that `/usr` is read-only.
//! An invalid configuration must stop the boot with the offending key on the console.
//!
//! The VM's network cards are qemu's user-mode network with `restrict=on`: no packet leaves qemu.
//! The image is built by tests/test.sh (`os/build.sh` with the binaries under test); a missing
//! one is built here.

use flotilla_tests::os_image::{self, run, workspace};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One VM at a time: the machines running the tests have two cores.
static ONE_VM: Mutex<()> = Mutex::new(());

/// How long a boot to a registered agent may take (with TCG about two minutes).
const BOOT_TIMEOUT: Duration = Duration::from_secs(600);

/// The built image, building it (with the binaries under test) when it is missing.
fn image() -> PathBuf {
    os_image::output().join("disk.qcow2")
}

/// KVM when `/dev/kvm` opens and the CPU offers hardware virtualization to this machine, else
/// software emulation (`FLOTILLA_QEMU_ACCEL` overrides). A `/dev/kvm` without `vmx`/`svm` in
/// the CPU flags (a nested hypervisor that hides them) runs real-mode code (the BIOS, GRUB, the
/// kernel's setup) so slowly that a boot takes many minutes; TCG boots in about one.
fn accelerator() -> String {
    if let Ok(accel) = std::env::var("FLOTILLA_QEMU_ACCEL") {
        return accel;
    }
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let hardware = cpuinfo
        .lines()
        .filter(|line| line.starts_with("flags"))
        .any(|line| {
            line.split_whitespace()
                .any(|flag| flag == "vmx" || flag == "svm")
        });
    let kvm = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm");
    match (kvm, hardware) {
        (Ok(_), true) => "kvm".to_owned(),
        (Ok(_), false) => {
            eprintln!("os_boot: /dev/kvm opens but the CPU shows no vmx/svm flag: using TCG");
            "tcg".to_owned()
        }
        (Err(e), _) => {
            eprintln!("os_boot: /dev/kvm: {e}: using TCG");
            "tcg".to_owned()
        }
    }
}

/// A running VM; killed when dropped.
struct Vm {
    child: Child,
    console: PathBuf,
    _dir: tempfile::TempDir,
}

/// eth0 and eth1 as under Vagrant (management network, private network): each is qemu's
/// user-mode network restricted to the VM (nothing leaves), or eth1 is a multicast socket on the
/// loopback of a network namespace of the test's own (the VMs of one test share it).
const ISOLATED: &[&str] = &[
    "user,restrict=on,model=virtio-net-pci",
    "user,restrict=on,model=virtio-net-pci",
];

impl Vm {
    /// Boots a copy-on-write overlay of `disk` with `config` on a config drive, with `nics`
    /// (`-nic` values), in the network namespace of process `netns` when given.
    fn boot(disk: &Path, config: &str, nics: &[&str], netns: Option<u32>) -> Vm {
        let dir = tempfile::tempdir().expect("temporary directory");
        let overlay = dir.path().join("overlay.qcow2");
        run(Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"])
            .arg(disk)
            .arg(&overlay));
        let toml = dir.path().join("flotilla.toml");
        fs::write(&toml, config).expect("write the configuration");
        let drive = dir.path().join("config.img");
        run(Command::new(workspace().join("vagrant/config-drive.sh"))
            .arg(&toml)
            .arg(&drive));
        let console = dir.path().join("console.log");
        let mut command = match netns {
            Some(pid) => {
                let mut command = Command::new("nsenter");
                command.args(["-t", &pid.to_string(), "-n", "--", "qemu-system-x86_64"]);
                command
            }
            None => Command::new("qemu-system-x86_64"),
        };
        let cpus = if netns.is_some() { "1" } else { "2" };
        command
            .args(["-accel", &accelerator(), "-m", "1024", "-smp", cpus])
            .args(["-display", "none", "-monitor", "none", "-no-reboot"])
            .arg("-serial")
            .arg(format!("file:{}", console.display()))
            .arg("-drive")
            .arg(format!("file={},if=virtio,format=qcow2", overlay.display()))
            .arg("-drive")
            .arg(format!(
                "file={},if=virtio,format=raw,readonly=on",
                drive.display()
            ));
        for nic in nics {
            command.args(["-nic", nic]);
        }
        let child = command
            .stdin(Stdio::null())
            .spawn()
            .expect("qemu-system-x86_64 starts (Debian's qemu-system-x86)");
        Vm {
            child,
            console,
            _dir: dir,
        }
    }

    fn console(&self) -> String {
        String::from_utf8_lossy(&fs::read(&self.console).unwrap_or_default()).into_owned()
    }

    /// Waits until every one of `wanted` is on the console; panics with the console on timeout
    /// or when `fatal` shows up first.
    fn wait_for(&mut self, wanted: &[&str], fatal: &[&str]) -> String {
        let started = Instant::now();
        loop {
            let console = self.console();
            if wanted.iter().all(|line| console.contains(line)) {
                return console;
            }
            if let Some(line) = fatal.iter().find(|line| console.contains(*line)) {
                panic!("the console shows {line:?}:\n{console}");
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("qemu exited ({status}) before {wanted:?} showed:\n{console}");
            }
            assert!(
                started.elapsed() < BOOT_TIMEOUT,
                "no {wanted:?} on the console within {BOOT_TIMEOUT:?}:\n{console}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Core-01's configuration from the Vagrantfile's generator, plus units that report what the
/// test checks on the console.
fn core01_with_probes() -> String {
    let mut config = run(Command::new(workspace().join("vagrant/node-config.sh")).args(["1", "1"]));
    config.push_str(
        r#"
[[units]]
name = "probe-usr.service"
contents = """
[Service]
Type=oneshot
ExecStart=/bin/sh -c 'if touch /usr/probe 2>/dev/null; then echo "PROBE usr writable"; else echo "PROBE usr refused a write: $(touch /usr/probe 2>&1)"; fi; echo "PROBE usr mount: $(findmnt -no FSTYPE /usr) $(findmnt -no OPTIONS /usr)"'
StandardOutput=journal+console
"""

[[units]]
name = "probe-agent.service"
contents = """
[Unit]
After=flotilla.service
[Service]
ExecStart=/bin/sh -c 'journalctl -f -n all -o cat -u flotilla.service | sed -u "s/^/PROBE agent: /" & until flotctl list-machines 2>/dev/null | grep -q 10.240.8.101; do sleep 1; done; flotctl list-machines | sed "s/^/PROBE list-machines: /"; wait'
StandardOutput=journal+console
"""
"#,
    );
    config
}

#[test]
fn the_image_boots_into_a_registered_agent_with_a_read_only_usr() {
    let _one = ONE_VM.lock().unwrap_or_else(|e| e.into_inner());
    let disk = image();
    let started = Instant::now();
    let mut vm = Vm::boot(&disk, &core01_with_probes(), ISOLATED, None);
    let console = vm.wait_for(
        &[
            "PROBE agent: joined the cluster: machine",
            // the machine's line of `flotctl list-machines`, after its header
            "disk=ssd,name=core-01,role=etcd",
            "PROBE usr mount: ",
        ],
        &["reboot: System halted", "PROBE usr writable"],
    );
    eprintln!(
        "os_boot: booted to a registered agent in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        console.contains("flotilla-firstboot: applied") && console.contains("hostname core-01"),
        "first boot did not say what it applied:\n{console}"
    );
    assert!(
        console.contains(
            "PROBE usr refused a write: touch: cannot touch '/usr/probe': Read-only file system"
        ),
        "{console}"
    );
    assert!(console.contains("PROBE usr mount: erofs ro"), "{console}");
    // The root partition ships /etc with fstab alone: the rest came from /usr at this first boot.
    assert!(
        console.contains("flotilla: /etc made from /usr/share/flotilla/factory/etc"),
        "the initramfs did not make /etc:\n{console}"
    );
    let listed = console
        .lines()
        .find(|line| line.contains("PROBE list-machines: ") && line.contains("10.240.8.101"))
        .unwrap_or_else(|| panic!("core-01 is not in flotctl list-machines:\n{console}"));
    assert!(
        listed.contains("disk=ssd") && listed.contains("role=etcd"),
        "{listed}"
    );
}

/// Byte offset of the partition called `name` in the raw disk `disk` (`sfdisk --dump`).
fn partition_offset(disk: &Path, name: &str) -> u64 {
    let table = run(Command::new("sfdisk").arg("--dump").arg(disk));
    let line = table
        .lines()
        .find(|line| line.contains(&format!("name=\"{name}\"")))
        .unwrap_or_else(|| panic!("no partition {name} in {}:\n{table}", disk.display()));
    let start = line
        .split(',')
        .find_map(|field| field.split_once("start=").map(|(_, n)| n.trim()))
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no start in {line}"));
    start * 512
}

#[test]
fn the_root_partition_ships_only_fstab_in_etc() {
    let disk = image().with_file_name("disk.raw");
    let offset = partition_offset(&disk, "flotilla-root");
    let listing = run(Command::new("debugfs")
        .args(["-R", "ls -p /etc"])
        .arg(format!("{}?offset={offset}", disk.display())));
    // `ls -p`: /inode/mode/uid/gid/name/size/ per entry.
    let mut names: Vec<&str> = listing
        .lines()
        .filter_map(|line| line.split('/').nth(5))
        .collect();
    names.sort_unstable();
    assert_eq!(names, [".", "..", "fstab"], "{listing}");
    let usr = run(Command::new("debugfs")
        .args(["-R", "ls -p /usr"])
        .arg(format!("{}?offset={offset}", disk.display())));
    assert_eq!(
        usr.lines().filter_map(|l| l.split('/').nth(5)).count(),
        2,
        "{usr}"
    );
}

#[test]
fn an_invalid_configuration_stops_the_boot_naming_the_key() {
    let _one = ONE_VM.lock().unwrap_or_else(|e| e.into_inner());
    let disk = image();
    let config = core01_with_probes().replace("role = \"member\"", "role = \"memer\"");
    let mut vm = Vm::boot(&disk, &config, ISOLATED, None);
    let console = vm.wait_for(
        &[
            "etcd.role: unknown role \"memer\" (member|client)",
            "reboot: System halted",
        ],
        &["PROBE agent: "],
    );
    assert!(
        !console.contains("PROBE usr mount"),
        "units ran after first boot failed:\n{console}"
    );
}

/// A network namespace of the test's own, held by a sleeping process: only loopback, with
/// multicast on, so qemu's multicast sockets there form one private Ethernet segment.
struct Netns {
    holder: Child,
}

impl Netns {
    fn new() -> Netns {
        let holder = Command::new("unshare")
            .args(["--net", "--", "sh", "-c"])
            .arg(
                "ip link set lo up && ip link set lo multicast on && \
                 ip route add 224.0.0.0/4 dev lo && touch /dev/null && exec sleep 3600",
            )
            .stdin(Stdio::null())
            .spawn()
            .expect("unshare (util-linux) starts");
        let netns = Netns { holder };
        let started = Instant::now();
        while !run(Command::new("nsenter").args([
            "-t",
            &netns.holder.id().to_string(),
            "-n",
            "ip",
            "route",
            "show",
            "table",
            "main",
        ]))
        .contains("224.0.0.0/4")
        {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the namespace's route never came"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        netns
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// `printf` of `text` into `path` inside a unit's `ExecStart=` (systemd's `%` doubled).
fn write_file_command(path: &str, text: &str) -> String {
    let lines: Vec<String> = text.lines().map(|line| format!("'{line}'")).collect();
    format!("printf '%%s\\n' {} > {path}", lines.join(" "))
}

/// Core-01's probe in a cluster of three: waits for three machines, loads the seed units of
/// DESIGN.md §1 (again while the agent does not answer in time: three emulated machines on two
/// cores can keep it waiting past `flotctl`'s 3 s) and prints `flotctl list-machines` and
/// `list-units`.
fn cluster_probe() -> String {
    let mongo = include_str!("../units/mongo.service");
    let employees = include_str!("../units/employees.service");
    format!(
        r#"
[[units]]
name = "probe-cluster.service"
contents = '''
[Unit]
After=flotilla.service
[Service]
Type=oneshot
ExecStart=/bin/sh -c "until [ $$(flotctl list-machines 2>/dev/null | grep -c 10.240.8.10) = 3 ]; do sleep 2; done; flotctl list-machines | sed 's/^/PROBE machines: /'; {}; {}; cd /root && until flotctl load mongo.service employees.service >load.log 2>&1; do sed 's/^/PROBE load, again: /' load.log; sleep 2; done; sed 's/^/PROBE load: /' load.log; until flotctl list-units >units.log 2>&1; do sleep 2; done; sed 's/^/PROBE units: /' units.log"
StandardOutput=journal+console
'''
"#,
        write_file_command("/root/mongo.service", mongo),
        write_file_command("/root/employees.service", employees),
    )
}

#[test]
fn three_machines_form_a_cluster_and_the_seed_units_land_together() {
    let _one = ONE_VM.lock().unwrap_or_else(|e| e.into_inner());
    let disk = image();
    let netns = Netns::new();
    let started = Instant::now();
    let mut vms: Vec<Vm> = (1..=3)
        .map(|i| {
            let mut config = run(Command::new(workspace().join("vagrant/node-config.sh"))
                .args([i.to_string(), "3".to_owned()]));
            if i == 1 {
                config.push_str(&cluster_probe());
            }
            let private = format!(
                "socket,mcast=230.0.8.1:18080,localaddr=127.0.0.1,model=virtio-net-pci,mac=52:54:00:0a:08:{i:02x}"
            );
            Vm::boot(
                &disk,
                &config,
                &[ISOLATED[0], &private],
                Some(netns.holder.id()),
            )
        })
        .collect();
    let console = vms[0].wait_for(
        &[
            "PROBE units: employees.service",
            "PROBE units: mongo.service",
        ],
        &["reboot: System halted"],
    );
    eprintln!(
        "os_boot: three machines and the seed units in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    for ip in ["10.240.8.101", "10.240.8.102", "10.240.8.103"] {
        assert!(
            console
                .lines()
                .any(|line| line.contains("PROBE machines: ") && line.contains(ip)),
            "{ip} is not in flotctl list-machines:\n{console}"
        );
    }
    let machine_of = |unit: &str| {
        console
            .lines()
            .find_map(|line| {
                let fields: Vec<&str> = line
                    .split("PROBE units: ")
                    .nth(1)?
                    .split_whitespace()
                    .collect();
                (fields.first() == Some(&unit)).then(|| fields.get(1).map(|m| m.to_string()))?
            })
            .unwrap_or_else(|| panic!("{unit} is not in flotctl list-units:\n{console}"))
    };
    let mongo = machine_of("mongo.service");
    assert!(
        mongo.contains("10.240.8.10"),
        "mongo.service has no machine: {mongo}"
    );
    assert_eq!(
        machine_of("employees.service"),
        mongo,
        "X-ConditionMachineOf=mongo.service"
    );
    drop(vms.drain(..));
}
