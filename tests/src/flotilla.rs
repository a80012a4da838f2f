//! [`Flotilla`]: the `flotilla` binary with a data root and configuration file of a test's own,
//! and the checks tests make of what it prints.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use tempfile::TempDir;

use crate::built_binary;

/// A data root (`DIR/data`) and configuration file (`DIR/flotilla.toml`, empty until
/// [`Flotilla::configure`]) in a temporary directory, which is also `$HOME` for the commands, so
/// no credentials file of the machine is read.
///
/// Made by [`Flotilla::with_own_network`], its commands (and so its containers' supervisors)
/// run in a network namespace of their own, `flotilla-<pid>-engine<n>` (with `lo` up): its
/// bridges, addresses and firewall table are the test's alone, and the namespace is "the host"
/// its published ports are reached from.
#[derive(Debug)]
pub struct Flotilla {
    dir: TempDir,
    netns: Option<String>,
}

/// Numbers the network namespaces of this process's [`Flotilla`]s.
static NEXT_NETNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl Default for Flotilla {
    fn default() -> Flotilla {
        Flotilla::new()
    }
}

impl Flotilla {
    /// A new, empty data root.
    ///
    /// # Panics
    /// If the temporary directory or the configuration file cannot be made.
    pub fn new() -> Flotilla {
        let flotilla = Flotilla {
            dir: TempDir::new().expect("a temporary directory"),
            netns: None,
        };
        flotilla.configure("");
        flotilla
    }

    /// A new, empty data root whose commands run in a network namespace of their own.
    ///
    /// # Panics
    /// If the namespace cannot be made.
    pub fn with_own_network() -> Flotilla {
        let name = format!(
            "{}{}-engine{}",
            crate::node::NETNS_PREFIX,
            std::process::id(),
            NEXT_NETNS.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        );
        for args in [
            vec!["netns", "add", name.as_str()],
            vec!["-n", name.as_str(), "link", "set", "lo", "up"],
        ] {
            let status = Command::new("ip").args(&args).status().expect("run ip");
            assert!(status.success(), "ip {args:?} failed");
        }
        let flotilla = Flotilla {
            dir: TempDir::new().expect("a temporary directory"),
            netns: Some(name),
        };
        flotilla.configure("");
        flotilla
    }

    /// The network namespace's name ([`Flotilla::with_own_network`]).
    pub fn netns(&self) -> Option<&str> {
        self.netns.as_deref()
    }

    /// `program ARGS` in this data root's network namespace (or the host's).
    pub fn host_command(&self, program: &str) -> Command {
        match &self.netns {
            Some(name) => {
                let mut command = Command::new("nsenter");
                command
                    .arg(format!("--net=/run/netns/{name}"))
                    .arg("--")
                    .arg(program);
                command
            }
            None => Command::new(program),
        }
    }

    /// Replaces the configuration file's text.
    ///
    /// # Panics
    /// If it cannot be written.
    pub fn configure(&self, toml: &str) {
        std::fs::write(self.dir.path().join("flotilla.toml"), toml).expect("write flotilla.toml");
    }

    /// The temporary directory holding the data root and the configuration.
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_owned()
    }

    /// The data root.
    pub fn data_root(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// `flotilla --data-root … --config … ARGS` with a clean environment for credentials.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = self.host_command(&built_binary("flotilla").display().to_string());
        command
            .arg("--data-root")
            .arg(self.data_root())
            .arg("--config")
            .arg(self.dir.path().join("flotilla.toml"))
            .args(args)
            .env_remove("REGISTRY_AUTH_FILE")
            .env_remove("XDG_RUNTIME_DIR")
            .env("HOME", self.dir.path())
            .stdin(Stdio::null());
        command
    }

    /// Runs a command and returns what it did.
    ///
    /// # Panics
    /// If the binary cannot be run.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run flotilla")
    }

    /// Runs a command that must succeed; returns its standard output.
    ///
    /// # Panics
    /// If it fails, with its standard error.
    pub fn ok(&self, args: &[&str]) -> String {
        succeeded(self.run(args), args)
    }

    /// Runs a command with `input` on standard input (closed after it).
    ///
    /// # Panics
    /// If the binary cannot be run.
    pub fn run_with_input(&self, args: &[&str], input: &[u8]) -> Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run flotilla");
        let mut stdin = child.stdin.take().expect("piped standard input");
        let input = input.to_vec();
        let writer = std::thread::spawn(move || stdin.write_all(&input));
        let output = child.wait_with_output().expect("wait for flotilla");
        writer
            .join()
            .expect("the writer thread")
            .expect("write standard input");
        output
    }

    /// Runs a command with `input` on standard input; it must succeed.
    ///
    /// # Panics
    /// If it fails, with its standard error.
    pub fn ok_with_input(&self, args: &[&str], input: &[u8]) -> String {
        succeeded(self.run_with_input(args, input), args)
    }

    /// Runs a command that must fail with exit status 1; returns its standard error.
    ///
    /// # Panics
    /// If it succeeds or exits otherwise.
    pub fn fails(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert_eq!(
            output.status.code(),
            Some(1),
            "flotilla {args:?} should fail with status 1: {output:?}"
        );
        String::from_utf8(output.stderr).expect("UTF-8 standard error")
    }

    /// `flotilla image inspect NAME`, the one object of the array.
    ///
    /// # Panics
    /// If the image does not exist or the output is not JSON.
    pub fn inspect(&self, name: &str) -> Value {
        let json: Value = serde_json::from_str(&self.ok(&["image", "inspect", name]))
            .expect("image inspect prints JSON");
        json[0].clone()
    }

    /// The image's unpacked layers as `image inspect` gives them (GraphDriver LowerDir), top
    /// layer first.
    pub fn lower_dirs(&self, name: &str) -> Vec<PathBuf> {
        self.inspect(name)["GraphDriver"]["Data"]["LowerDir"]
            .as_str()
            .unwrap_or_default()
            .split(':')
            .map(PathBuf::from)
            .collect()
    }
}

/// The users of [`Flotilla::busybox`]'s image: root, `app` (1000:1000, also in group `staff`
/// 50) and nobody.
const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
const GROUP: &str = "root:x:0:\nstaff:x:50:app\napp:x:1000:\nnogroup:x:65534:\n";

impl Flotilla {
    /// Imports a busybox image as `name` ([`busybox_tarball`]) with `CMD ["sh"]` and the given
    /// `--change` instructions.
    ///
    /// # Panics
    /// If busybox-static is missing or the import fails.
    pub fn busybox(&self, name: &str, changes: &[&str]) {
        let tarball = busybox_tarball(
            &self
                .dir
                .path()
                .join(format!("rootfs-{}", name.replace(['/', ':'], "_"))),
            &[],
        );
        let mut args = vec![
            "import".to_owned(),
            "--change".to_owned(),
            "CMD [\"sh\"]".to_owned(),
        ];
        for change in changes {
            args.push("--change".to_owned());
            args.push((*change).to_owned());
        }
        args.push(tarball.display().to_string());
        args.push(name.to_owned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.ok(&args);
    }

    /// Kills and removes every container of this data root (what a failed test left running).
    pub fn remove_all_containers(&self) {
        let Ok(output) = self.command(&["ps", "-aq", "--no-trunc"]).output() else {
            return;
        };
        for id in String::from_utf8_lossy(&output.stdout).split_whitespace() {
            let _ = self.command(&["rm", "-f", id]).output();
        }
    }
}

impl Drop for Flotilla {
    fn drop(&mut self) {
        if self.data_root().join("containers").exists() {
            self.remove_all_containers();
        }
        if let Some(name) = &self.netns {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

/// Builds a busybox root file system in `root` and tars it as `root.tar`: `/bin/busybox` of
/// busybox-static with every applet linked, `/etc/passwd` and `/etc/group` ([`PASSWD`]), a
/// 1777 `/tmp`, and `scripts` (absolute path, contents) as executable files.
///
/// # Panics
/// If busybox-static is missing or a step fails.
pub fn busybox_tarball(root: &Path, scripts: &[(&str, &str)]) -> PathBuf {
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).expect("make the image's /bin");
    std::fs::copy("/bin/busybox", bin.join("busybox"))
        .expect("/bin/busybox (Debian's busybox-static) is needed for the engine's test images");
    let list = Command::new("/bin/busybox")
        .arg("--list")
        .output()
        .expect("busybox --list");
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).expect("link an applet");
        }
    }
    for dir in ["etc", "tmp", "root", "home/app", "proc", "sys", "dev"] {
        std::fs::create_dir_all(root.join(dir)).expect("make an image directory");
    }
    std::fs::write(root.join("etc/passwd"), PASSWD).expect("write /etc/passwd");
    std::fs::write(root.join("etc/group"), GROUP).expect("write /etc/group");
    for (path, contents) in scripts {
        let file = root.join(path.trim_start_matches('/'));
        std::fs::write(&file, contents).expect("write a script");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755))
            .expect("chmod a script");
    }
    std::fs::set_permissions(root.join("tmp"), std::fs::Permissions::from_mode(0o1777))
        .expect("chmod /tmp");
    let status = Command::new("chown")
        .arg("1000:1000")
        .arg(root.join("home/app"))
        .status();
    assert!(status.is_ok_and(|s| s.success()), "chown /home/app");
    let tarball = root.with_extension("tar");
    let status = Command::new("tar")
        .arg("-C")
        .arg(root)
        .arg("-cf")
        .arg(&tarball)
        .arg(".")
        .status();
    assert!(status.is_ok_and(|s| s.success()), "tar the busybox root");
    tarball
}

/// The diff IDs `image inspect` lists (`RootFS.Layers`), base first.
pub fn diff_ids(inspect: &Value) -> Vec<String> {
    inspect["RootFS"]["Layers"]
        .as_array()
        .map(|layers| {
            layers
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn succeeded(output: Output, args: &[&str]) -> String {
    assert!(
        output.status.success(),
        "flotilla {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8(output.stdout).expect("UTF-8 standard output")
}
