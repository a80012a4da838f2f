//! The end every container process shares, init or `docker exec`: rlimits, OOM score, user,
//! capabilities, no_new_privs, working directory, default signal dispositions, then execve of
//! `args[0]`, looked up in the process's own `PATH` inside the container when it has no slash
//! (as runc does).

use std::convert::Infallible;
use std::ffi::{CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::prctl::{set_keepcaps, set_no_new_privs};
use nix::sys::stat::{umask, Mode};
use nix::unistd::{chdir, execve, setgid, setgroups, setuid, Gid, Uid};
use oci_spec::runtime::Process;

use super::{capabilities, process, rlimits, Step, StepError};

/// The umask of a container process whose spec gives none (runc's).
const DEFAULT_UMASK: u32 = 0o022;

/// Applies `process`'s settings to the calling process and executes its program.
pub fn finish(process: &Process) -> Result<Infallible, StepError> {
    let args = process.args().as_deref().unwrap_or(&[]);
    let Some(program) = args.first() else {
        return Err(StepError {
            step: "exec: the process has no args".to_owned(),
            errno: Errno::EINVAL,
        });
    };
    let env = process.env().as_deref().unwrap_or(&[]);
    rlimits::apply(process.rlimits().as_deref().unwrap_or(&[]))?;
    if let Some(score) = process.oom_score_adj() {
        std::fs::write("/proc/self/oom_score_adj", score.to_string())
            .step(|| format!("set oom_score_adj {score}"))?;
    }
    if let Some(capabilities) = process.capabilities() {
        capabilities::limit_bounding(capabilities)?;
    }
    change_user(process)?;
    if let Some(capabilities) = process.capabilities() {
        capabilities::apply(capabilities)?;
    }
    if process.no_new_privileges().unwrap_or(false) {
        set_no_new_privs().step(|| "set no_new_privs".to_owned())?;
    }
    let cwd = process.cwd();
    chdir(cwd).step(|| format!("change directory to {cwd:?}"))?;
    let path = lookup(program, env)?;
    let args = c_strings(args, "argument")?;
    let env = c_strings(env, "environment variable")?;
    let path_c = CString::new(path.as_os_str().as_bytes()).map_err(|_| nul_in(&path))?;
    // The process never outlives the one that started it (the supervisor, or `exec`'s CLI),
    // so a record whose supervisor died truthfully says exited. Set last: changing
    // credentials clears it.
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).map_err(|errno| {
        StepError {
            step: "set the parent-death signal".to_owned(),
            errno,
        }
    })?;
    process::reset_signals()?;
    process::close_on_exec_above_stdio()?;
    let Err(errno) = execve(&path_c, &args, &env);
    Err(StepError {
        step: format!("exec {:?}", path.display().to_string()),
        errno,
    })
}

fn change_user(process: &Process) -> Result<(), StepError> {
    let user = process.user();
    umask(Mode::from_bits_truncate(
        user.umask().unwrap_or(DEFAULT_UMASK),
    ));
    let groups: Vec<Gid> = user
        .additional_gids()
        .iter()
        .flatten()
        .map(|gid| Gid::from_raw(*gid))
        .collect();
    setgroups(&groups).step(|| format!("set additional groups {groups:?}"))?;
    set_keepcaps(true).step(|| "keep capabilities across the user change".to_owned())?;
    let gid = user.gid();
    setgid(Gid::from_raw(gid)).step(|| format!("set group {gid}"))?;
    let uid = user.uid();
    setuid(Uid::from_raw(uid)).step(|| format!("set user {uid}"))?;
    set_keepcaps(false).step(|| "reset keep capabilities".to_owned())
}

/// The file to execute for `program`: itself if it has a slash, else the first executable
/// file of that name in the `PATH` of `env`.
fn lookup(program: &str, env: &[String]) -> Result<PathBuf, StepError> {
    if program.contains('/') {
        return Ok(PathBuf::from(program));
    }
    let search = env
        .iter()
        .rev()
        .find_map(|entry| entry.strip_prefix("PATH="))
        .unwrap_or("");
    candidates(program, search)
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| StepError {
            step: format!("exec {program:?}: executable file not found in $PATH"),
            errno: Errno::ENOENT,
        })
}

/// Where `program` may be, for a `PATH` of `search` (an empty entry is the working directory).
fn candidates<'a>(program: &'a str, search: &'a str) -> impl Iterator<Item = PathBuf> + 'a {
    search.split(':').map(move |dir| {
        let dir = if dir.is_empty() { "." } else { dir };
        Path::new(dir).join(program)
    })
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

fn c_strings(items: &[String], what: &str) -> Result<Vec<CString>, StepError> {
    items
        .iter()
        .map(|item| {
            CString::new(item.as_bytes()).map_err(|_| StepError {
                step: format!("{what} {item:?} holds a NUL byte"),
                errno: Errno::EINVAL,
            })
        })
        .collect()
}

fn nul_in(path: &Path) -> StepError {
    StepError {
        step: format!("path {:?} holds a NUL byte", OsStr::new(path)),
        errno: Errno::EINVAL,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_name_is_searched_in_each_path_entry_in_order() {
        let found: Vec<_> = candidates("sh", "/usr/bin::/bin").collect();
        assert_eq!(
            found,
            [
                PathBuf::from("/usr/bin/sh"),
                PathBuf::from("./sh"),
                PathBuf::from("/bin/sh")
            ]
        );
    }

    #[test]
    fn a_name_not_in_path_says_so() {
        let error = lookup("nope", &["PATH=/nonexistent".to_owned()]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "exec \"nope\": executable file not found in $PATH: no such file or directory"
        );
    }
}
