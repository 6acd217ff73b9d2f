//! Listen addresses: the keys of a server block.

use std::fmt;
use std::path::PathBuf;

use crate::error::Span;

/// One listener of a server block.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listen {
    /// What is spoken on it.
    pub scheme: Scheme,
    /// Where.
    pub addr: ListenAddr,
    /// Where the key is written.
    #[serde(skip)]
    pub span: Span,
}

/// What a listener speaks, from the key's optional `scheme://` prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scheme {
    /// PostgreSQL wire protocol (no prefix, or `postgres://`).
    Postgres,
    /// Plain TCP proxying (`tcp://`). Not supported yet: the parser refuses it.
    Tcp,
    /// HTTP reverse proxying (`http://`). Not supported yet: the parser refuses it.
    Http,
}

/// A socket to listen on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListenAddr {
    /// A TCP socket. `host` is as written, without IPv6 brackets; empty means all interfaces.
    Tcp {
        /// Host name or IP address; `""` for all interfaces.
        host: String,
        /// Port; `0` asks the OS for a free one (tests).
        port: u16,
    },
    /// A unix socket at this path (the socket file itself, e.g. `/run/pggat/.s.PGSQL.5433`).
    Unix(PathBuf),
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            ListenAddr::Tcp { host, port } => write!(f, "{host}:{port}"),
            ListenAddr::Unix(path) => write!(f, "{}", path.display()),
        }
    }
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.scheme {
            Scheme::Postgres => write!(f, "{}", self.addr),
            Scheme::Tcp => write!(f, "tcp://{}", self.addr),
            Scheme::Http => write!(f, "http://{}", self.addr),
        }
    }
}
