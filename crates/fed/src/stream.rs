//! The byte streams pggat speaks PostgreSQL over: TCP, unix sockets, and TLS
//! on top of either, in both roles (we terminate client TLS and originate
//! server TLS).
//!
//! An enum rather than `Box<dyn AsyncRead + AsyncWrite>` so the relay's hot
//! path dispatches with a match instead of a virtual call, and so the TLS
//! state of a connection can be asked for (the `ssl` matcher needs it).

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};

/// A plain socket.
#[derive(Debug)]
pub enum Plain {
    /// TCP.
    Tcp(TcpStream),
    /// Unix domain socket.
    Unix(UnixStream),
}

/// A connection's byte stream, possibly encrypted.
#[derive(Debug)]
pub enum Stream {
    /// No TLS.
    Plain(Plain),
    /// TLS we terminated for a client.
    TlsServer(Box<tokio_rustls::server::TlsStream<Plain>>),
    /// TLS we originated towards a PostgreSQL server.
    TlsClient(Box<tokio_rustls::client::TlsStream<Plain>>),
}

impl Stream {
    /// Whether traffic on this stream is encrypted.
    pub fn is_tls(&self) -> bool {
        !matches!(self, Stream::Plain(_))
    }

    /// The local address the connection was accepted on or made from:
    /// `ip:port` (`[v6]:port`) for TCP, the socket path for unix sockets.
    pub fn local_address(&self) -> Option<String> {
        let plain = match self {
            Stream::Plain(p) => p,
            Stream::TlsServer(t) => t.get_ref().0,
            Stream::TlsClient(t) => t.get_ref().0,
        };
        match plain {
            Plain::Tcp(s) => s.local_addr().ok().map(|a| a.to_string()),
            Plain::Unix(s) => s
                .local_addr()
                .ok()
                .and_then(|a| a.as_pathname().map(|p| p.display().to_string())),
        }
    }

    /// The remote address of a TCP connection; `None` for unix sockets.
    pub fn peer_address(&self) -> Option<std::net::SocketAddr> {
        let plain = match self {
            Stream::Plain(p) => p,
            Stream::TlsServer(t) => t.get_ref().0,
            Stream::TlsClient(t) => t.get_ref().0,
        };
        match plain {
            Plain::Tcp(s) => s.peer_addr().ok(),
            Plain::Unix(_) => None,
        }
    }

    /// The user id of the process at the other end of a unix socket (from
    /// the kernel: SO_PEERCRED), for peer authentication; `None` over TCP.
    pub fn peer_uid(&self) -> Option<u32> {
        match self {
            Stream::Plain(Plain::Unix(s)) => s.peer_cred().ok().map(|c| c.uid()),
            _ => None,
        }
    }

    /// Takes the plain socket back out, for a TLS upgrade. `None` when the
    /// stream is already encrypted.
    pub fn into_plain(self) -> Option<Plain> {
        match self {
            Stream::Plain(p) => Some(p),
            _ => None,
        }
    }

    /// Tries to read without waiting. Used to tell whether an idle pooled
    /// connection is still healthy: a healthy idle server sends nothing, so
    /// data or EOF here means it is dead or out of sync.
    ///
    /// Returns `Ok(0)` on EOF, `Ok(n)` for bytes read, and
    /// `Err(WouldBlock)` when nothing is pending (the healthy case).
    pub fn try_read_now(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut rb = ReadBuf::new(buf);
        match Pin::new(self).poll_read(&mut cx, &mut rb) {
            Poll::Ready(Ok(())) => Ok(rb.filled().len()),
            Poll::Ready(Err(e)) => Err(e),
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl From<TcpStream> for Stream {
    fn from(s: TcpStream) -> Self {
        Stream::Plain(Plain::Tcp(s))
    }
}

impl From<UnixStream> for Stream {
    fn from(s: UnixStream) -> Self {
        Stream::Plain(Plain::Unix(s))
    }
}

macro_rules! delegate {
    ($self:ident, $s:ident => $e:expr) => {
        match $self.get_mut() {
            Stream::Plain(Plain::Tcp($s)) => {
                let $s = Pin::new($s);
                $e
            }
            Stream::Plain(Plain::Unix($s)) => {
                let $s = Pin::new($s);
                $e
            }
            Stream::TlsServer($s) => {
                let $s = Pin::new(&mut **$s);
                $e
            }
            Stream::TlsClient($s) => {
                let $s = Pin::new(&mut **$s);
                $e
            }
        }
    };
}

macro_rules! delegate_plain {
    ($self:ident, $s:ident => $e:expr) => {
        match $self.get_mut() {
            Plain::Tcp($s) => {
                let $s = Pin::new($s);
                $e
            }
            Plain::Unix($s) => {
                let $s = Pin::new($s);
                $e
            }
        }
    };
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_read(cx, buf))
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, s => s.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, s => s.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(Plain::Tcp(s)) => s.is_write_vectored(),
            Stream::Plain(Plain::Unix(s)) => s.is_write_vectored(),
            Stream::TlsServer(s) => s.is_write_vectored(),
            Stream::TlsClient(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_shutdown(cx))
    }
}

impl AsyncRead for Plain {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        delegate_plain!(self, s => s.poll_read(cx, buf))
    }
}

impl AsyncWrite for Plain {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        delegate_plain!(self, s => s.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        delegate_plain!(self, s => s.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Plain::Tcp(s) => s.is_write_vectored(),
            Plain::Unix(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate_plain!(self, s => s.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate_plain!(self, s => s.poll_shutdown(cx))
    }
}
