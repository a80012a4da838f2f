//! A real etcd (Debian's `/usr/bin/etcd`, 3.4) for the registry tests: one or more members on
//! 127.0.0.1 with free ports and data in a temporary directory, killed and removed on drop; or
//! one member serving TLS with client certificates from a CA made here with `openssl`.
//! A test that fails prints the tail of every member's log.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use agent::registry::{Registry, RegistryConfig, TlsFiles};
use tempfile::TempDir;

const ETCD: &str = "/usr/bin/etcd";

/// A running etcd cluster.
pub struct Etcd {
    members: Vec<Member>,
    /// Set when the members serve TLS.
    certs: Option<Certs>,
    /// Removed on drop, after the members are killed.
    dir: TempDir,
}

struct Member {
    client_url: String,
    child: Option<Child>,
    log: PathBuf,
}

/// PEM files of a test CA, a server certificate for 127.0.0.1 and a client certificate.
pub struct Certs {
    ca: PathBuf,
    server: (PathBuf, PathBuf),
    client: (PathBuf, PathBuf),
}

fn free_port(held: &mut Vec<TcpListener>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("cannot bind a port on 127.0.0.1");
    let port = listener.local_addr().unwrap().port();
    held.push(listener);
    port
}

fn openssl(dir: &Path, args: &str) {
    let output = Command::new("openssl")
        .current_dir(dir)
        .args(args.split_whitespace())
        .output()
        .expect("cannot run openssl (Debian's openssl package)");
    assert!(
        output.status.success(),
        "openssl {args}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

impl Certs {
    /// Makes a CA and a server and a client certificate it signs, in `dir`.
    fn make(dir: &Path) -> Certs {
        let key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
        openssl(
            dir,
            &format!("req -x509 {key} -keyout ca.key -out ca.pem -days 1 -subj /CN=test-ca"),
        );
        std::fs::write(
            dir.join("ext.cnf"),
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n",
        )
        .unwrap();
        for name in ["server", "client"] {
            openssl(
                dir,
                &format!("req {key} -keyout {name}.key -out {name}.csr -subj /CN=test-{name}"),
            );
            openssl(
                dir,
                &format!(
                    "x509 -req -in {name}.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
                     -out {name}.pem -days 1 -extfile ext.cnf"
                ),
            );
        }
        let pair = |name: &str| {
            (
                dir.join(format!("{name}.pem")),
                dir.join(format!("{name}.key")),
            )
        };
        Certs {
            ca: dir.join("ca.pem"),
            server: pair("server"),
            client: pair("client"),
        }
    }

    /// TLS files for the registry: the CA, and the client certificate when `with_client`.
    pub fn files(&self, with_client: bool) -> TlsFiles {
        TlsFiles {
            ca: Some(self.ca.clone()),
            cert: with_client.then(|| self.client.0.clone()),
            key: with_client.then(|| self.client.1.clone()),
        }
    }
}

impl Etcd {
    /// Starts a plain-HTTP etcd cluster of `size` members and waits until every member serves.
    pub async fn start(size: usize) -> Etcd {
        Etcd::launch(size, false).await
    }

    /// Starts one member that serves TLS and asks clients for a certificate signed by its CA.
    pub async fn start_tls() -> Etcd {
        Etcd::launch(1, true).await
    }

    async fn launch(size: usize, tls: bool) -> Etcd {
        assert!(
            Path::new(ETCD).exists(),
            "{ETCD} is missing: install Debian's etcd-server (tests/deps.sh does)"
        );
        // Data on tmpfs when there is one: etcd fsyncs every write.
        let mut builder = tempfile::Builder::new();
        builder.prefix("flotilla-etcd-");
        let dir = match Path::new("/dev/shm").is_dir() {
            true => builder.tempdir_in("/dev/shm"),
            false => builder.tempdir(),
        }
        .expect("cannot make a temporary directory for etcd");
        let certs = tls.then(|| Certs::make(dir.path()));
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
        let scheme = if tls { "https" } else { "http" };
        let members = ports
            .iter()
            .enumerate()
            .map(|(i, (client, peer))| {
                let client_url = format!("{scheme}://127.0.0.1:{client}");
                let peer_url = format!("http://127.0.0.1:{peer}");
                let log = dir.path().join(format!("m{i}.log"));
                let log_file = std::fs::File::create(&log).unwrap();
                let mut command = Command::new(ETCD);
                command
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
                    .args(["--logger", "zap", "--log-outputs", "stderr"]);
                if let Some(certs) = &certs {
                    command
                        .arg("--cert-file")
                        .arg(&certs.server.0)
                        .arg("--key-file")
                        .arg(&certs.server.1)
                        .arg("--trusted-ca-file")
                        .arg(&certs.ca)
                        .arg("--client-cert-auth");
                }
                let child = command
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
        let etcd = Etcd {
            members,
            certs,
            dir,
        };
        for index in 0..size {
            etcd.wait_serving(index).await;
        }
        etcd
    }

    /// Waits until member `index` answers a read (etcd needs its quorum for that).
    async fn wait_serving(&self, index: usize) {
        let mut config = self.config(vec![self.endpoint(index)]);
        config.request_timeout = Duration::from_millis(500);
        config.tls = self.certs.as_ref().map(|certs| certs.files(true));
        for _ in 0..60 {
            if Registry::connect(&config).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "etcd member {index} at {} did not serve",
            self.endpoint(index)
        );
    }

    /// Every member's client URL.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(|m| m.client_url.clone()).collect()
    }

    /// Member `index`'s client URL.
    pub fn endpoint(&self, index: usize) -> String {
        self.members[index].client_url.clone()
    }

    /// The certificates of a TLS member.
    pub fn certs(&self) -> &Certs {
        self.certs.as_ref().expect("etcd was started without TLS")
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

    /// A plain etcd-client on member `index` (with the client certificate on a TLS member),
    /// for what the registry does not do (compaction, revoking a lease behind an agent's back,
    /// member status, turning auth on).
    pub async fn client(&self, index: usize) -> etcd_client::Client {
        let options = self.certs.as_ref().map(|certs| {
            let read = |path: &Path| std::fs::read(path).unwrap();
            etcd_client::ConnectOptions::new().with_tls(
                etcd_client::TlsOptions::new()
                    .ca_certificate(etcd_client::Certificate::from_pem(read(&certs.ca)))
                    .identity(etcd_client::Identity::from_pem(
                        read(&certs.client.0),
                        read(&certs.client.1),
                    )),
            )
        });
        etcd_client::Client::connect([self.endpoint(index)], options)
            .await
            .unwrap()
    }

    /// The index of the member that is the raft leader.
    pub async fn leader(&self) -> usize {
        let leader = self.client(0).await.status().await.unwrap().leader();
        for index in 0..self.members.len() {
            let status = self.client(index).await.status().await.unwrap();
            if status.header().unwrap().member_id() == leader {
                return index;
            }
        }
        panic!("no member is the leader {leader:x}");
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
                let lines: Vec<&str> = log.lines().collect();
                eprintln!("--- {} (last 20 lines)", member.log.display());
                for line in &lines[lines.len().saturating_sub(20)..] {
                    eprintln!("{line}");
                }
            }
            eprintln!("(etcd's data was in {})", self.dir.path().display());
        }
    }
}
