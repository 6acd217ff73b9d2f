//! Listening sockets: TCP (with SO_REUSEPORT, so a new pggat can start
//! beside the old one for a zero-downtime restart) and unix sockets.

use std::net::SocketAddr;
use std::path::PathBuf;

use fed::Stream;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, UnixListener};

/// A bound listening socket.
pub enum Listener {
    /// TCP.
    Tcp(TcpListener),
    /// Unix socket at this path (removed on drop).
    Unix(UnixListener, PathBuf),
}

/// Where a listener is bound.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Bound {
    /// A TCP address.
    Tcp(SocketAddr),
    /// A unix socket path.
    Unix(PathBuf),
}

impl Listener {
    /// Binds every socket `addr` stands for: an empty host means all
    /// interfaces (IPv4 and, when available, IPv6); a name binds each address
    /// it resolves to.
    pub async fn bind(addr: &gat::ListenAddr) -> std::io::Result<Vec<Listener>> {
        match addr {
            gat::ListenAddr::Tcp { host, port } => {
                let addrs: Vec<SocketAddr> = if host.is_empty() {
                    vec![
                        SocketAddr::from(([0, 0, 0, 0], *port)),
                        SocketAddr::from(([0u16; 8], *port)),
                    ]
                } else {
                    tokio::net::lookup_host((host.as_str(), *port))
                        .await?
                        .collect()
                };
                let mut out = Vec::new();
                let mut first_err = None;
                for a in addrs {
                    // Port 0 asks for a free port: bind just one address, or
                    // the families would get different ports.
                    if *port == 0 && !out.is_empty() {
                        break;
                    }
                    match bind_tcp(a) {
                        Ok(l) => out.push(Listener::Tcp(l)),
                        Err(e) if host.is_empty() && a.is_ipv6() => {
                            tracing::debug!(error = %e, "no IPv6 listener");
                        }
                        Err(e) => {
                            first_err.get_or_insert(e);
                        }
                    }
                }
                match (out.is_empty(), first_err) {
                    (true, Some(e)) => Err(e),
                    _ => Ok(out),
                }
            }
            gat::ListenAddr::Unix(path) => {
                if path.exists() && std::os::unix::net::UnixStream::connect(path).is_err() {
                    // A stale socket left by a crash.
                    std::fs::remove_file(path)?;
                }
                let l = UnixListener::bind(path)?;
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o777))?;
                Ok(vec![Listener::Unix(l, path.clone())])
            }
        }
    }

    /// The bound address.
    pub fn bound(&self) -> Bound {
        match self {
            Listener::Tcp(l) => Bound::Tcp(l.local_addr().expect("bound socket has an address")),
            Listener::Unix(_, p) => Bound::Unix(p.clone()),
        }
    }

    /// Waits for the next client.
    pub async fn accept(&self) -> std::io::Result<Stream> {
        match self {
            Listener::Tcp(l) => {
                let (s, _) = l.accept().await?;
                s.set_nodelay(true)?;
                Ok(Stream::from(s))
            }
            Listener::Unix(l, _) => {
                let (s, _) = l.accept().await?;
                Ok(Stream::from(s))
            }
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn bind_tcp(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}
