//! First boot's I/O: finding the machine's configuration (kernel command line, config drive,
//! well-known path), carrying out a [`Plan`] under a root directory, and the stamp that makes it
//! happen once.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::plan::Plan;

/// The kernel command line parameter that points at the configuration file.
pub const CMDLINE_KEY: &str = "flotilla.config";
/// The file system labels of a config drive.
pub const DRIVE_LABELS: &[&str] = &["FLOTILLA", "cidata"];
/// The configuration's name on a config drive.
pub const DRIVE_FILE: &str = "flotilla.toml";
/// Where a configuration may be put by hand (or by an image tool) before the first boot.
pub const WELL_KNOWN_PATH: &str = "/var/lib/flotilla/firstboot.toml";
/// Exists once first boot has run.
pub const STAMP_PATH: &str = "/var/lib/flotilla/firstboot.done";
/// Where a config drive is mounted while it is read.
const DRIVE_MOUNT: &str = "/run/flotilla/firstboot-drive";

/// Why first boot could not do its work.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// A file could not be read or written.
    #[error("cannot {what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A command could not be run or failed.
    #[error("{command}: {problem}")]
    Command {
        /// The command line.
        command: String,
        /// What happened.
        problem: String,
    },
    /// The current `flotilla.toml` is not TOML.
    #[error("{}: {source}", path.display())]
    CurrentConfig {
        /// The file.
        path: PathBuf,
        /// Why.
        source: toml::de::Error,
    },
}

fn io_error(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> ApplyError {
    let path = path.to_owned();
    move |source| ApplyError::Io { what, path, source }
}

/// The value of `flotilla.config=` in a kernel command line.
pub fn cmdline_pointer(cmdline: &str) -> Option<PathBuf> {
    cmdline
        .split_whitespace()
        .find_map(|word| word.strip_prefix(CMDLINE_KEY)?.strip_prefix('='))
        .map(PathBuf::from)
}

/// A found configuration: where it came from and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// A description of its origin (a path, or `LABEL=FLOTILLA:flotilla.toml`).
    pub origin: String,
    /// Its text.
    pub text: String,
}

fn read(path: &Path) -> Result<String, ApplyError> {
    fs::read_to_string(path).map_err(io_error("read", path))
}

/// Runs a command, failing with its standard error.
pub fn run(program: &str, args: &[&str]) -> Result<String, ApplyError> {
    let command = format!("{program} {}", args.join(" "));
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| ApplyError::Command {
            command: command.clone(),
            problem: e.to_string(),
        })?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(ApplyError::Command {
            command,
            problem: format!(
                "{}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        })
    }
}

/// The configuration of this machine: the kernel command line's pointer, else a config drive,
/// else the well-known path; `None` when there is none (the machine keeps the image's defaults).
pub fn locate() -> Result<Option<Found>, ApplyError> {
    let cmdline = read(Path::new("/proc/cmdline"))?;
    if let Some(path) = cmdline_pointer(&cmdline) {
        let text = read(&path)?;
        let origin = path.display().to_string();
        return Ok(Some(Found { origin, text }));
    }
    for label in DRIVE_LABELS {
        // blkid exits 2 when no device has the label.
        let Ok(device) = run(
            "blkid",
            &["-l", "-o", "device", "-t", &format!("LABEL={label}")],
        ) else {
            continue;
        };
        let device = device.trim();
        if device.is_empty() {
            continue;
        }
        fs::create_dir_all(DRIVE_MOUNT).map_err(io_error("create", Path::new(DRIVE_MOUNT)))?;
        run("mount", &["-o", "ro", device, DRIVE_MOUNT])?;
        let text = read(&Path::new(DRIVE_MOUNT).join(DRIVE_FILE));
        run("umount", &[DRIVE_MOUNT])?;
        let origin = format!("{device} (LABEL={label}):{DRIVE_FILE}");
        return Ok(Some(Found {
            origin,
            text: text?,
        }));
    }
    let path = Path::new(WELL_KNOWN_PATH);
    if path.exists() {
        let text = read(path)?;
        return Ok(Some(Found {
            origin: WELL_KNOWN_PATH.to_owned(),
            text,
        }));
    }
    Ok(None)
}

/// The top-level table of the `flotilla.toml` at `path` (empty when there is none).
pub fn current_flotilla_toml(path: &Path) -> Result<toml::Table, ApplyError> {
    match fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text).map_err(|source| ApplyError::CurrentConfig {
            path: path.to_owned(),
            source,
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(toml::Table::new()),
        Err(e) => Err(io_error("read", path)(e)),
    }
}

/// `path` (absolute on the machine) under `root`.
pub fn under(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

/// Writes `contents` to `path` with `mode`: a temporary file, fsync, rename.
pub fn write_atomic(path: &Path, contents: &str, mode: u32) -> Result<(), ApplyError> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    fs::create_dir_all(dir).map_err(io_error("create", dir))?;
    let temporary = dir.join(format!(
        ".{}.firstboot",
        path.file_name().unwrap_or_default().to_string_lossy()
    ));
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&temporary)
        .map_err(io_error("create", &temporary))?;
    file.write_all(contents.as_bytes())
        .and_then(|()| file.set_permissions(fs::Permissions::from_mode(mode)))
        .and_then(|()| file.sync_all())
        .map_err(io_error("write", &temporary))?;
    fs::rename(&temporary, path).map_err(io_error("rename into place", path))
}

/// Carries out `plan` on the machine whose root is `root`. The host name, commands and units are
/// applied only when `root` is `/` (a running machine); under another root only files are written.
pub fn apply(plan: &Plan, root: &Path) -> Result<(), ApplyError> {
    let live = root == Path::new("/");
    for file in &plan.files {
        write_atomic(&under(root, &file.path), &file.contents, file.mode)?;
    }
    if !live {
        return Ok(());
    }
    if let Some(name) = &plan.hostname {
        nix::unistd::sethostname(name).map_err(|errno| ApplyError::Command {
            command: format!("sethostname {name}"),
            problem: errno.to_string(),
        })?;
    }
    for command in &plan.commands {
        let args: Vec<&str> = command[1..].iter().map(String::as_str).collect();
        run(&command[0], &args)?;
    }
    if !plan.start.is_empty() {
        run("systemctl", &["daemon-reload"])?;
        let units: Vec<&str> = plan.start.iter().map(String::as_str).collect();
        run("systemctl", &[&["enable", "--quiet"][..], &units].concat())?;
        run(
            "systemctl",
            &[&["start", "--no-block"][..], &units].concat(),
        )?;
    }
    Ok(())
}

/// Records that first boot ran, and from what.
pub fn stamp(root: &Path, origin: &str) -> Result<(), ApplyError> {
    write_atomic(
        &under(root, Path::new(STAMP_PATH)),
        &format!("{origin}\n"),
        0o644,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_command_line_points_at_a_file() {
        assert_eq!(
            cmdline_pointer("root=/dev/vda3 flotilla.config=/boot/node.toml quiet"),
            Some(PathBuf::from("/boot/node.toml"))
        );
        assert_eq!(cmdline_pointer("root=/dev/vda3 flotilla.configx=/a"), None);
        assert_eq!(cmdline_pointer("flotilla.config"), None);
    }

    #[test]
    fn files_are_written_under_the_root_with_their_mode() {
        let root = tempfile::tempdir().unwrap();
        let plan = Plan {
            files: vec![super::super::plan::File {
                path: PathBuf::from("/root/.ssh/authorized_keys"),
                contents: "ssh-ed25519 AAAA\n".into(),
                mode: 0o600,
            }],
            hostname: Some("ignored-off-line".into()),
            ..Plan::default()
        };
        apply(&plan, root.path()).unwrap();
        let path = root.path().join("root/.ssh/authorized_keys");
        assert_eq!(fs::read_to_string(&path).unwrap(), "ssh-ed25519 AAAA\n");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        stamp(root.path(), "test").unwrap();
        assert!(root.path().join("var/lib/flotilla/firstboot.done").exists());
        assert!(current_flotilla_toml(&root.path().join("missing"))
            .unwrap()
            .is_empty());
    }
}
