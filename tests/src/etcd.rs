//! A real etcd (Debian's `etcd-server`, 3.4) for a test cluster, run on the host as child
//! processes: one member, or several for tests where a member fails.
//!
//! Member m (numbered from 1) is called `etcdm`, keeps its data in `<dir>/etcdm` and its log in
//! `<dir>/etcdm.log`, serves clients on `<address>:<base+2(m-1)>` (what nodes use) and on
//! `127.0.0.1` at the same port (what the host uses), and talks to its peers on
//! `<address>:<base+2(m-1)+1>`. Members run in their own process group, so a Ctrl-C in the terminal
//! reaches only the harness, which then stops them in order. Dropping an [`Etcd`] kills every
//! member; its directory is the caller's to remove.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// How long members may take to elect a leader and answer `/health`.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(30);
/// Lines of a member's log quoted in errors and failure reports.
const LOG_TAIL_LINES: usize = 30;

/// Why etcd could not be started or controlled.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    /// A directory or log file could not be created.
    #[error("cannot {what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The etcd binary could not be run.
    #[error("cannot run etcd for member {member} (apt-get install etcd-server): {source}")]
    Spawn {
        /// The member's name.
        member: String,
        /// Why.
        source: io::Error,
    },
    /// A member exited while it was expected to serve.
    #[error("etcd member {member} exited ({status}); log tail:\n{log}")]
    Exited {
        /// The member's name.
        member: String,
        /// Its exit status.
        status: ExitStatus,
        /// The last lines of its log.
        log: String,
    },
    /// A member did not report itself healthy in time.
    #[error("etcd member {member} not healthy within {timeout:?}; log tail:\n{log}")]
    Unhealthy {
        /// The member's name.
        member: String,
        /// How long it was given.
        timeout: Duration,
        /// The last lines of its log.
        log: String,
    },
    /// A member number out of range.
    #[error("no etcd member {member}: members are numbered 1..={members}")]
    NoMember {
        /// The number asked for.
        member: usize,
        /// How many members there are.
        members: usize,
    },
}

/// Result of this module.
pub type Result<T> = std::result::Result<T, EtcdError>;

/// How to run etcd.
#[derive(Debug, Clone)]
pub struct EtcdConfig {
    /// Number of members.
    pub members: usize,
    /// The address members listen on besides 127.0.0.1 (the bridge's).
    pub address: Ipv4Addr,
    /// Client port of member 1; member m uses `base_port + 2(m-1)` and the next port for peers.
    pub base_port: u16,
    /// Where data dirs and logs go.
    pub dir: PathBuf,
    /// The initial cluster token, unique per cluster.
    pub token: String,
}

/// The running members.
#[derive(Debug)]
pub struct Etcd {
    config: EtcdConfig,
    /// Index m-1: member m's process, `None` while killed.
    children: Vec<Option<Child>>,
}

impl Etcd {
    /// Starts every member and waits until each answers `/health` with `true` (a leader exists).
    ///
    /// # Errors
    /// [`EtcdError`] naming the member, with its log tail when it exited or stayed unhealthy;
    /// members already started are killed.
    ///
    /// ```no_run
    /// use flotilla_tests::etcd::{Etcd, EtcdConfig};
    /// let etcd = Etcd::start(EtcdConfig {
    ///     members: 1,
    ///     address: "127.0.0.1".parse().unwrap(),
    ///     base_port: 23790,
    ///     dir: "/tmp/my-etcd".into(),
    ///     token: "my-etcd".into(),
    /// })
    /// .unwrap();
    /// println!("{:?}", etcd.endpoints());
    /// ```
    pub fn start(config: EtcdConfig) -> Result<Etcd> {
        fs::create_dir_all(&config.dir).map_err(|source| EtcdError::Io {
            what: "create",
            path: config.dir.clone(),
            source,
        })?;
        let mut etcd = Etcd {
            children: (0..config.members).map(|_| None).collect(),
            config,
        };
        for m in 1..=etcd.config.members {
            etcd.spawn(m)?;
        }
        for m in 1..=etcd.config.members {
            etcd.wait_healthy(m)?;
        }
        Ok(etcd)
    }

    /// Client URLs as seen from the nodes (`http://<address>:<port>`), one per member.
    pub fn endpoints(&self) -> Vec<String> {
        self.urls(&self.config.address.to_string())
    }

    /// Client URLs on the host's loopback (`http://127.0.0.1:<port>`), one per member.
    pub fn loopback_endpoints(&self) -> Vec<String> {
        self.urls("127.0.0.1")
    }

    /// Host pids of the running members.
    pub fn pids(&self) -> Vec<u32> {
        self.children.iter().flatten().map(Child::id).collect()
    }

    /// Kills member `m` with SIGKILL (a crash) and reaps it.
    ///
    /// # Errors
    /// [`EtcdError::NoMember`] if there is no member `m`.
    pub fn kill_member(&mut self, m: usize) -> Result<()> {
        let slot = self.slot(m)?;
        if let Some(mut child) = self.children[slot].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        Ok(())
    }

    /// Starts member `m` again on its data and waits until it is healthy; a running member is
    /// left as it is.
    ///
    /// # Errors
    /// As [`Etcd::start`], or [`EtcdError::NoMember`].
    pub fn restart_member(&mut self, m: usize) -> Result<()> {
        let slot = self.slot(m)?;
        if self.children[slot].is_none() {
            self.spawn(m)?;
        }
        self.wait_healthy(m)
    }

    /// The last `lines` lines of member `m`'s log (empty if there is no such member or log).
    pub fn log_tail(&self, m: usize, lines: usize) -> String {
        let log = fs::read_to_string(self.log_path(m)).unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Prints the tail of every member's log to stderr (for failure reports).
    pub fn dump_logs(&self) {
        for m in 1..=self.config.members {
            eprintln!("===== log tail of etcd member {} =====", name(m));
            eprintln!("{}", self.log_tail(m, LOG_TAIL_LINES));
        }
        eprintln!("===== end of etcd logs =====");
    }

    fn spawn(&mut self, m: usize) -> Result<()> {
        let ip = self.config.address;
        let client = self.client_port(m);
        let peer = client + 1;
        let cluster: Vec<String> = (1..=self.config.members)
            .map(|i| format!("{}=http://{ip}:{}", name(i), self.client_port(i) + 1))
            .collect();
        let log = self.open_log(m)?;
        let log2 = log.try_clone().map_err(|source| EtcdError::Io {
            what: "open",
            path: self.log_path(m),
            source,
        })?;
        let args = [
            format!("--name={}", name(m)),
            format!("--data-dir={}", self.config.dir.join(name(m)).display()),
            format!("--listen-client-urls=http://{ip}:{client},http://127.0.0.1:{client}"),
            format!("--advertise-client-urls=http://{ip}:{client}"),
            format!("--listen-peer-urls=http://{ip}:{peer}"),
            format!("--initial-advertise-peer-urls=http://{ip}:{peer}"),
            format!("--initial-cluster={}", cluster.join(",")),
            format!("--initial-cluster-token={}", self.config.token),
            "--initial-cluster-state=new".to_owned(),
            "--logger=zap".to_owned(),
            "--log-outputs=stderr".to_owned(),
        ];
        let child = Command::new("etcd")
            .args(&args)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .current_dir(&self.config.dir)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|source| EtcdError::Spawn {
                member: name(m),
                source,
            })?;
        self.children[m - 1] = Some(child);
        Ok(())
    }

    fn wait_healthy(&mut self, m: usize) -> Result<()> {
        let deadline = Instant::now() + HEALTH_TIMEOUT;
        let addr = SocketAddr::from(([127, 0, 0, 1], self.client_port(m)));
        loop {
            if let Some(status) = self.children[m - 1]
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.children[m - 1] = None;
                return Err(EtcdError::Exited {
                    member: name(m),
                    status,
                    log: self.log_tail(m, LOG_TAIL_LINES),
                });
            }
            if get_health(addr).is_some_and(|r| is_healthy(&r)) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(EtcdError::Unhealthy {
                    member: name(m),
                    timeout: HEALTH_TIMEOUT,
                    log: self.log_tail(m, LOG_TAIL_LINES),
                });
            }
            sleep(Duration::from_millis(50));
        }
    }

    fn slot(&self, m: usize) -> Result<usize> {
        if (1..=self.config.members).contains(&m) {
            Ok(m - 1)
        } else {
            Err(EtcdError::NoMember {
                member: m,
                members: self.config.members,
            })
        }
    }

    fn client_port(&self, m: usize) -> u16 {
        let offset = u16::try_from(2 * (m - 1)).unwrap_or(u16::MAX);
        self.config.base_port.saturating_add(offset)
    }

    fn urls(&self, host: &str) -> Vec<String> {
        (1..=self.config.members)
            .map(|m| format!("http://{host}:{}", self.client_port(m)))
            .collect()
    }

    fn log_path(&self, m: usize) -> PathBuf {
        self.config.dir.join(format!("{}.log", name(m)))
    }

    fn open_log(&self, m: usize) -> Result<File> {
        let path = self.log_path(m);
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|source| EtcdError::Io {
                what: "open",
                path,
                source,
            })
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for mut child in self.children.drain(..).flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The data dir of an etcd command line (`/proc/PID/cmdline` split at NULs) as this module
/// starts members; finds the members of a cluster whose harness died.
pub fn data_dir(cmdline: &[String]) -> Option<&Path> {
    cmdline
        .iter()
        .find_map(|a| a.strip_prefix("--data-dir="))
        .map(Path::new)
}

/// Member m's name.
fn name(m: usize) -> String {
    format!("etcd{m}")
}

/// The raw answer of `GET /health`, or `None` if the member does not answer.
fn get_health(addr: SocketAddr) -> Option<String> {
    let timeout = Duration::from_millis(500);
    let mut stream = TcpStream::connect_timeout(&addr, timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    stream.set_write_timeout(Some(timeout)).ok()?;
    stream
        .write_all(b"GET /health HTTP/1.0\r\nHost: etcd\r\n\r\n")
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response)
}

/// Whether an HTTP answer to `GET /health` says `{"health":"true"}`.
fn is_healthy(response: &str) -> bool {
    let Some((head, body)) = response.split_once("\r\n\r\n") else {
        return false;
    };
    let ok = head
        .lines()
        .next()
        .is_some_and(|status| status.split_whitespace().nth(1) == Some("200"));
    let body: serde_json::Value = serde_json::from_str(body.trim()).unwrap_or_default();
    ok && body["health"] == "true"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_answers() {
        let ok = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n{\"health\":\"true\"}";
        assert!(is_healthy(ok));
        let no_leader = "HTTP/1.0 503 Service Unavailable\r\n\r\n{\"health\":\"false\"}";
        assert!(!is_healthy(no_leader));
        assert!(!is_healthy("HTTP/1.0 200 OK\r\n\r\nnot json"));
        assert!(!is_healthy(""));
    }

    #[test]
    fn members_are_found_by_data_dir() {
        let cmdline: Vec<String> = [
            "etcd",
            "--name=etcd1",
            "--data-dir=/tmp/x/cluster-1-0/etcd1",
        ]
        .map(str::to_owned)
        .to_vec();
        assert_eq!(
            data_dir(&cmdline),
            Some(Path::new("/tmp/x/cluster-1-0/etcd1"))
        );
        assert_eq!(data_dir(&cmdline[..2]), None);
    }
}
