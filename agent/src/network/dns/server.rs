//! The resolver's sockets: UDP and TCP (messages with a 2-byte length prefix) on port 53 of
//! each network's gateway, answering from the table and relaying other queries to the
//! upstreams. Runs inside a tokio runtime; [`Server::load`] (re)reads the table and binds or
//! unbinds the networks that appeared or went.
//!
//! Sockets are bound with `IP_FREEBIND`, so a network's resolver can listen before its bridge
//! has the gateway address. A forwarded query goes to each upstream in turn, over the
//! transport it came on, each given [`UPSTREAM_PATIENCE`]; the first answer is relayed as it
//! is, and SERVFAIL goes back when none came.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::socket::{
    bind, listen, setsockopt, socket, sockopt, AddressFamily, Backlog, SockFlag, SockType,
    SockaddrIn,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::answer::{answer, server_failure, Decision, Transport};
use super::table::{self, Table};
use crate::records::RecordError;

/// The port resolvers listen on.
pub const PORT: u16 = 53;
/// How long an upstream gets to answer.
pub const UPSTREAM_PATIENCE: Duration = Duration::from_secs(2);
/// How long a TCP client may stay silent before its connection is closed.
const TCP_IDLE: Duration = Duration::from_secs(10);
/// The largest DNS message.
const MAX_MESSAGE: usize = 65535;
/// Pending TCP connections per network.
const BACKLOG: i32 = 64;

/// Why the resolver could not read its table or listen on a network.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Table(#[from] RecordError),
    #[error("cannot listen on {address}/{protocol} for network {network}: {source}")]
    Listen {
        network: String,
        address: SocketAddrV4,
        protocol: &'static str,
        source: io::Error,
    },
}

/// What a [`Server::load`] found.
#[derive(Debug)]
pub struct Loaded {
    /// The networks in the table.
    pub networks: usize,
    /// The networks that could not be listened on (tried again at the next load).
    pub failures: Vec<ServerError>,
}

/// The resolver: the table it serves and the sockets it listens on.
#[derive(Debug)]
pub struct Server {
    path: PathBuf,
    table: watch::Sender<Arc<Table>>,
    /// The listening tasks of each network, by name and gateway; dropped to unbind.
    bound: HashMap<(String, Ipv4Addr), JoinSet<()>>,
}

impl Server {
    /// A resolver serving the table at `path`, listening nowhere until [`Server::load`].
    pub fn new(path: PathBuf) -> Server {
        Server {
            path,
            table: watch::Sender::new(Arc::default()),
            bound: HashMap::new(),
        }
    }

    /// Reads the table again: serves its names from now on, stops listening for the networks
    /// that went and starts for the new ones. Must run inside a tokio runtime.
    pub fn load(&mut self) -> Result<Loaded, ServerError> {
        let table = Arc::new(table::read(&self.path)?);
        let wanted: Vec<(String, Ipv4Addr)> = table
            .networks
            .iter()
            .map(|network| (network.name.clone(), network.gateway))
            .collect();
        self.bound.retain(|key, _| wanted.contains(key));
        self.table.send_replace(Arc::clone(&table));
        let mut failures = Vec::new();
        for key in wanted {
            if !self.bound.contains_key(&key) {
                match self.listen(&key.0, key.1) {
                    Ok(tasks) => {
                        self.bound.insert(key, tasks);
                    }
                    Err(failure) => failures.push(failure),
                }
            }
        }
        Ok(Loaded {
            networks: table.networks.len(),
            failures,
        })
    }

    /// Listens for `network` on `gateway`:53, UDP and TCP.
    fn listen(&self, network: &str, gateway: Ipv4Addr) -> Result<JoinSet<()>, ServerError> {
        let address = SocketAddrV4::new(gateway, PORT);
        let failed = |protocol| {
            move |source| ServerError::Listen {
                network: network.to_owned(),
                address,
                protocol,
                source,
            }
        };
        let udp = bound_socket(address, SockType::Datagram)
            .and_then(|fd| UdpSocket::from_std(fd.into()))
            .map_err(failed("udp"))?;
        let tcp = bound_socket(address, SockType::Stream)
            .and_then(|fd| {
                listen(&fd, Backlog::new(BACKLOG)?)?;
                TcpListener::from_std(fd.into())
            })
            .map_err(failed("tcp"))?;
        let mut tasks = JoinSet::new();
        tasks.spawn(serve_udp(
            Arc::new(udp),
            network.to_owned(),
            self.table.subscribe(),
        ));
        tasks.spawn(serve_tcp(tcp, network.to_owned(), self.table.subscribe()));
        Ok(tasks)
    }
}

/// A non-blocking IPv4 socket of `kind` bound to `address`, whether or not the address is on
/// an interface yet.
fn bound_socket(address: SocketAddrV4, kind: SockType) -> io::Result<OwnedFd> {
    let fd = socket(
        AddressFamily::Inet,
        kind,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )?;
    setsockopt(&fd, sockopt::IpFreebind, &true)?;
    if kind == SockType::Stream {
        setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    }
    bind(fd.as_raw_fd(), &SockaddrIn::from(address))?;
    Ok(fd)
}

/// Answers the datagrams that come to `socket`, for `network`.
async fn serve_udp(socket: Arc<UdpSocket>, network: String, table: watch::Receiver<Arc<Table>>) {
    let mut buffer = vec![0; MAX_MESSAGE];
    loop {
        let Ok((length, client)) = socket.recv_from(&mut buffer).await else {
            continue;
        };
        let query = buffer[..length].to_vec();
        let table = table.borrow().clone();
        let (socket, network) = (Arc::clone(&socket), network.clone());
        tokio::spawn(async move {
            if let Some(reply) = respond(&table, &network, &query, Transport::Udp).await {
                // A client that went away is no error of ours.
                let _ = socket.send_to(&reply, client).await;
            }
        });
    }
}

/// Accepts the TCP connections that come to `listener`, for `network`.
async fn serve_tcp(listener: TcpListener, network: String, table: watch::Receiver<Arc<Table>>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(serve_connection(stream, network.clone(), table.clone()));
            }
            // Out of descriptors, most likely: give the other connections time to end.
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Answers the queries of one TCP connection, one after the other, until it ends or idles.
async fn serve_connection(
    mut stream: TcpStream,
    network: String,
    table: watch::Receiver<Arc<Table>>,
) {
    while let Ok(Ok(query)) = tokio::time::timeout(TCP_IDLE, read_frame(&mut stream)).await {
        let current = table.borrow().clone();
        if let Some(reply) = respond(&current, &network, &query, Transport::Tcp).await {
            if write_frame(&mut stream, &reply).await.is_err() {
                return;
            }
        }
    }
}

/// The reply to `query` on `network` (`None` to drop it), forwarding it when it is not ours.
async fn respond(
    table: &Table,
    network: &str,
    query: &[u8],
    transport: Transport,
) -> Option<Vec<u8>> {
    match answer(table.network(network)?, query, transport) {
        Decision::Reply(reply) => Some(reply),
        Decision::Drop => None,
        Decision::Forward => match forward(&table.upstreams, query, transport).await {
            Some(reply) => Some(reply),
            None => server_failure(query),
        },
    }
}

/// The first upstream's answer to `query`, asked over `transport`; `None` when none answered.
async fn forward(upstreams: &[SocketAddr], query: &[u8], transport: Transport) -> Option<Vec<u8>> {
    for &upstream in upstreams {
        let attempt = async {
            if transport == Transport::Tcp {
                let mut stream = TcpStream::connect(upstream).await?;
                write_frame(&mut stream, query).await?;
                read_frame(&mut stream).await
            } else {
                ask_udp(upstream, query).await
            }
        };
        if let Ok(Ok(reply)) = tokio::time::timeout(UPSTREAM_PATIENCE, attempt).await {
            return Some(reply);
        }
    }
    None
}

/// `upstream`'s answer to `query` over UDP: the first datagram from it with the query's ID.
async fn ask_udp(upstream: SocketAddr, query: &[u8]) -> io::Result<Vec<u8>> {
    let local: SocketAddr = match upstream {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(upstream).await?;
    socket.send(query).await?;
    let mut buffer = vec![0; MAX_MESSAGE];
    loop {
        let length = socket.recv(&mut buffer).await?;
        if length >= 2 && query.len() >= 2 && buffer[..2] == query[..2] {
            buffer.truncate(length);
            return Ok(buffer);
        }
    }
}

/// One DNS message from a TCP stream (2-byte big-endian length, then the message).
async fn read_frame(stream: &mut (impl AsyncRead + Unpin)) -> io::Result<Vec<u8>> {
    let length = stream.read_u16().await?;
    let mut message = vec![0; usize::from(length)];
    stream.read_exact(&mut message).await?;
    Ok(message)
}

/// Writes one DNS message to a TCP stream, with its length before it.
async fn write_frame(stream: &mut (impl AsyncWrite + Unpin), message: &[u8]) -> io::Result<()> {
    let length = u16::try_from(message.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "dns message too long"))?;
    let mut frame = Vec::with_capacity(message.len() + 2);
    frame.extend_from_slice(&length.to_be_bytes());
    frame.extend_from_slice(message);
    stream.write_all(&frame).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_carry_their_length_first() {
        let mut written = Vec::new();
        write_frame(&mut written, b"abc").await.unwrap();
        assert_eq!(written, b"\x00\x03abc");
        assert_eq!(read_frame(&mut &written[..]).await.unwrap(), b"abc");
        assert!(read_frame(&mut &b"\x00\x05ab"[..]).await.is_err());
    }
}
