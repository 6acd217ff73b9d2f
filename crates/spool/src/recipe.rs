//! Recipes: how to reach and log in to one PostgreSQL server.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Where a server listens.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Address {
    /// TCP host and port.
    Tcp {
        /// Host name or IP literal.
        host: String,
        /// Port.
        port: u16,
    },
    /// A unix socket: the socket file itself, or a directory holding
    /// `.s.PGSQL.5432`.
    Unix(PathBuf),
}

impl Address {
    /// The socket file to connect to, for unix addresses.
    pub fn socket_path(&self) -> Option<PathBuf> {
        match self {
            Address::Unix(p) if p.is_dir() => Some(p.join(".s.PGSQL.5432")),
            Address::Unix(p) => Some(p.clone()),
            Address::Tcp { .. } => None,
        }
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Address::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            Address::Tcp { host, port } => write!(f, "{host}:{port}"),
            Address::Unix(p) => write!(f, "{}", p.display()),
        }
    }
}

/// How to use TLS towards a server, after libpq's `sslmode`. Whether the
/// certificate is verified (verify-ca, verify-full) is the client
/// configuration's business; this says when TLS is used at all.
#[derive(Clone, Debug)]
pub struct ServerTls {
    /// When to use it.
    pub when: TlsWhen,
    /// The rustls client configuration (its verifier decides what is
    /// trusted).
    pub config: Arc<rustls::ClientConfig>,
    /// The name the certificate must carry (checked by verify-full only).
    pub server_name: rustls::pki_types::ServerName<'static>,
}

/// When TLS is used towards a server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsWhen {
    /// Plain first; TLS only when the server refuses the plain login
    /// (`allow`).
    IfRequired,
    /// TLS if the server offers it, else plain (`prefer`).
    IfOffered,
    /// TLS or no connection (`require`, `verify-ca`, `verify-full`).
    Always,
}

/// Everything needed to dial and log in to one server.
#[derive(Clone, Debug)]
pub struct Recipe {
    /// Where.
    pub address: Address,
    /// Role to log in as.
    pub user: String,
    /// How to answer the server's authentication request; built once, so
    /// SCRAM's PBKDF2 is not redone per connection.
    pub credentials: Arc<auth::ClientCredentials>,
    /// Database to connect to.
    pub database: String,
    /// Startup parameters sent with every login (besides user and database).
    pub parameters: Vec<(String, String)>,
    /// Deadline for the TCP/unix connect.
    pub connect_timeout: Duration,
    /// Deadline for the login exchange, from connect to ReadyForQuery.
    pub login_timeout: Duration,
    /// Most prepared statements kept on one server (eqp's LRU).
    pub max_prepared_statements: usize,
    /// TLS towards the server; `None` is sslmode=disable. Never used over
    /// unix sockets, as in libpq.
    pub tls: Option<ServerTls>,
    /// Run once after every login, before the server is handed out
    /// (PgBouncer's `connect_query`). Its errors are logged and otherwise
    /// ignored, as PgBouncer does.
    pub connect_query: Option<String>,
}
