//! A real etcd (Debian's `/usr/bin/etcd`, 3.4) for the registry tests: one or more members on
//! 127.0.0.1 with free ports and data in a temporary directory, killed and removed on drop.
//! A test that fails prints the tail of every member's log.

use std::io::Read;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use agent::registry::RegistryConfig;
use tempfile::TempDir;

const ETCD: &str = "/usr/bin/etcd";

/// A running etcd cluster.
pub struct Etcd {
    members: Vec<Member>,
    /// Removed on drop, after the members are killed.
    _dir: TempDir,
}

struct Member {
    client_url: String,
    child: Option<Child>,
    log: PathBuf,
}

fn free_port(held: &mut Vec<TcpListener>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("cannot bind a port on 127.0.0.1");
    let port = listener.local_addr().unwrap().port();
    held.push(listener);
    port
}

impl Etcd {
    /// Starts an etcd cluster of `size` members and waits until every member serves.
    pub async fn start(size: usize) -> Etcd {
        assert!(
            std::path::Path::new(ETCD).exists(),
            "{ETCD} is missing: install Debian's etcd-server (tests/deps.sh does)"
        );
        // Data on tmpfs when there is one: etcd fsyncs every write.
        let dir = match std::path::Path::new("/dev/shm").is_dir() {
            true => tempfile::Builder::new()
                .prefix("flotilla-etcd-")
                .tempdir_in("/dev/shm"),
            false => tempfile::Builder::new().prefix("flotilla-etcd-").tempdir(),
        }
        .expect("cannot make a temporary directory for etcd");
        let mut held = Vec::new();
        let ports: Vec<(u16, u16)> = (0..size)
            .map(|_| (free_port(&mut held), free_port(&mut held)))
            .collect();
        drop(held);
        let initial_cluster = ports
            .iter()
            .enumerate()
            .map(|(i, (_, peer))| format!("m{i}=http://127.0.0.1:{peer}"))
            .collect::<Vec<_>>()
            .join(",");
        let token = format!("flotilla-test-{}-{}", std::process::id(), ports[0].0);
        let members = ports
            .iter()
            .enumerate()
            .map(|(i, (client, peer))| {
                let client_url = format!("http://127.0.0.1:{client}");
                let peer_url = format!("http://127.0.0.1:{peer}");
                let log = dir.path().join(format!("m{i}.log"));
                let log_file = std::fs::File::create(&log).unwrap();
                let child = Command::new(ETCD)
                    .args(["--name", &format!("m{i}")])
                    .arg("--data-dir")
                    .arg(dir.path().join(format!("m{i}")))
                    .args(["--listen-client-urls", &client_url])
                    .args(["--advertise-client-urls", &client_url])
                    .args(["--listen-peer-urls", &peer_url])
                    .args(["--initial-advertise-peer-urls", &peer_url])
                    .args(["--initial-cluster", &initial_cluster])
                    .args(["--initial-cluster-state", "new"])
                    .args(["--initial-cluster-token", &token])
                    .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
                    .args(["--logger", "zap", "--log-outputs", "stderr"])
                    .stdin(Stdio::null())
                    .stdout(log_file.try_clone().unwrap())
                    .stderr(log_file)
                    .spawn()
                    .expect("cannot start etcd");
                Member {
                    client_url,
                    child: Some(child),
                    log,
                }
            })
            .collect();
        let etcd = Etcd { members, _dir: dir };
        for index in 0..size {
            etcd.wait_serving(index).await;
        }
        etcd
    }

    /// Waits until member `index` answers a read (etcd needs its quorum for that).
    async fn wait_serving(&self, index: usize) {
        let url = &self.members[index].client_url;
        for _ in 0..300 {
            let options = etcd_client::ConnectOptions::new()
                .with_timeout(Duration::from_millis(500))
                .with_require_leader(true);
            if let Ok(mut client) = etcd_client::Client::connect([url], Some(options)).await {
                if client.get("health", None).await.is_ok() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("etcd member {index} at {url} did not serve within 30 s");
    }

    /// Every member's client URL.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(|m| m.client_url.clone()).collect()
    }

    /// Member `index`'s client URL.
    pub fn endpoint(&self, index: usize) -> String {
        self.members[index].client_url.clone()
    }

    /// A registry configuration for these endpoints (in this order), with a short per-try
    /// timeout and the prefix `/test/`.
    pub fn config(&self, endpoints: Vec<String>) -> RegistryConfig {
        RegistryConfig {
            endpoints,
            request_timeout: Duration::from_secs(2),
            key_prefix: "/test/".to_owned(),
            ..RegistryConfig::default()
        }
    }

    /// The index of the member that is the raft leader.
    pub async fn leader(&self) -> usize {
        let mut client = etcd_client::Client::connect(self.endpoints(), None)
            .await
            .unwrap();
        let leader = client.status().await.unwrap().leader();
        for (index, member) in self.members.iter().enumerate() {
            let mut client = etcd_client::Client::connect([&member.client_url], None)
                .await
                .unwrap();
            let status = client.status().await.unwrap();
            if status.header().unwrap().member_id() == leader {
                return index;
            }
        }
        panic!("no member is the leader {leader:x}");
    }

    /// A plain etcd-client on member `index`, for what the registry does not do (compaction).
    pub async fn client(&self, index: usize) -> etcd_client::Client {
        etcd_client::Client::connect([self.endpoint(index)], None)
            .await
            .unwrap()
    }

    /// Kills member `index` (SIGKILL) and reaps it.
    pub fn kill(&mut self, index: usize) {
        if let Some(mut child) = self.members[index].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for index in 0..self.members.len() {
            self.kill(index);
        }
        if std::thread::panicking() {
            for member in &self.members {
                let mut log = String::new();
                if let Ok(mut file) = std::fs::File::open(&member.log) {
                    let _ = file.read_to_string(&mut log);
                }
                let tail: Vec<&str> = log.lines().rev().take(20).collect();
                eprintln!("--- {} (last lines, newest first)", member.log.display());
                for line in tail {
                    eprintln!("{line}");
                }
            }
        }
    }
}
