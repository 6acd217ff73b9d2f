//! The `pool` handler: where the servers are, how many, and how clients share them.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::duration::{serde_duration, serde_opt_duration};
use crate::error::Span;

use super::required;

/// A pool of connections to one PostgreSQL server, and the policies for sharing them.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pool {
    /// Where the server is.
    pub address: Address,
    /// The role servers log in as; `None` means the client's own user name.
    #[serde(deserialize_with = "required")]
    pub username: Option<String>,
    /// The secret servers log in with (plain, `md5...` or a SCRAM verifier, as written). Unless a
    /// `password` route matched, it is also what clients must present.
    #[serde(deserialize_with = "required")]
    pub password: Option<String>,
    /// The database servers connect to; `None` means the client's own database.
    #[serde(deserialize_with = "required")]
    pub database: Option<String>,
    /// Replica addresses (`replica ADDRESS` lines), for `pool hybrid` only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replicas: Vec<Address>,
    /// TLS towards the server (`ssl MODE`). Default prefer, as pggat and libpq.
    pub ssl_mode: SslMode,
    /// CA certificates (PEM) that verify-ca and verify-full trust (`ssl_root_cert FILE`, libpq's
    /// `sslrootcert`). Required by those modes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_root_cert: Option<PathBuf>,
    /// Startup parameters sent to every server (`parameter k=v`).
    pub parameters: BTreeMap<String, String>,
    /// Servers kept open even when idle. Default 0.
    pub min_connections: u32,
    /// Most servers open at once. Default 20 (PgBouncer's `default_pool_size`); never unlimited.
    pub max_connections: u32,
    /// How long a client waits for a server before it gets an error; `None` waits forever.
    /// Default 120s (PgBouncer's `query_wait_timeout`).
    #[serde(with = "serde_opt_duration")]
    pub client_acquire_timeout: Option<Duration>,
    /// How long dialing a server (TCP/unix connect and TLS) may take. Default 5s.
    #[serde(with = "serde_duration")]
    pub server_connect_timeout: Duration,
    /// How long a server's startup and authentication may take once connected. Default 10s.
    #[serde(with = "serde_duration")]
    pub server_login_timeout: Duration,
    /// Longest a query may run before it is cancelled; `None` (default) never.
    #[serde(with = "serde_opt_duration")]
    pub query_timeout: Option<Duration>,
    /// Longest a client may sit idle inside a transaction before it is disconnected; `None` (default)
    /// never.
    #[serde(with = "serde_opt_duration")]
    pub idle_transaction_timeout: Option<Duration>,
    /// Longest a client may sit idle outside a transaction before it is disconnected; `None` (default)
    /// never.
    #[serde(with = "serde_opt_duration")]
    pub client_idle_timeout: Option<Duration>,
    /// Servers older than this are closed when they come back idle; `None` never. Default 1h.
    #[serde(with = "serde_opt_duration")]
    pub server_lifetime: Option<Duration>,
    /// A server idle longer than this is checked with `server_check_query` before it is handed out;
    /// `Some(0)` checks every time, `None` (`off`) never. Default 30s.
    #[serde(with = "serde_opt_duration")]
    pub server_check_delay: Option<Duration>,
    /// The health check query. Default `;`, an empty statement: the server answers it without parsing
    /// or planning anything, and the EmptyQueryResponse + ReadyForQuery it sends back prove the
    /// connection is alive and in sync (PgBouncer's default for the same reason).
    pub server_check_query: String,
    /// Run once on every new server connection before any client gets it (PgBouncer's
    /// `connect_query`), e.g. to set planner settings; its errors are logged, not fatal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_query: Option<String>,
    /// How clients share the servers.
    pub kind: PoolKind,
    /// Where the `pool` line is.
    #[serde(skip)]
    pub span: Span,
}

impl Pool {
    /// A pool of `address` with every default: a basic transaction pool of up to 20 servers.
    pub fn new(address: Address) -> Pool {
        Pool {
            address,
            username: None,
            password: None,
            database: None,
            ssl_mode: SslMode::Prefer,
            ssl_root_cert: None,
            replicas: Vec::new(),
            parameters: BTreeMap::new(),
            min_connections: 0,
            max_connections: 20,
            client_acquire_timeout: Some(Duration::from_secs(120)),
            server_connect_timeout: Duration::from_secs(5),
            server_login_timeout: Duration::from_secs(10),
            query_timeout: None,
            idle_transaction_timeout: None,
            client_idle_timeout: None,
            server_lifetime: Some(Duration::from_secs(3600)),
            server_check_delay: Some(Duration::from_secs(30)),
            server_check_query: ";".to_owned(),
            connect_query: None,
            kind: PoolKind::Basic(BasicPool::new(PoolMode::Transaction)),
            span: Span::default(),
        }
    }
}

/// Where a PostgreSQL server is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Address {
    /// TCP. `host` is as written, without IPv6 brackets.
    Tcp {
        /// Host name or IP address.
        host: String,
        /// Port; 5432 when the address did not say.
        port: u16,
    },
    /// A unix socket path as written: either the socket file itself or the directory holding
    /// `.s.PGSQL.5432` (the binary decides which by looking).
    Unix(PathBuf),
}

impl Address {
    /// A TCP address.
    pub fn tcp(host: &str, port: u16) -> Address {
        Address::Tcp {
            host: host.to_owned(),
            port,
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            Address::Tcp { host, port } => write!(f, "{host}:{port}"),
            Address::Unix(path) => write!(f, "{}", path.display()),
        }
    }
}

/// How clients share a pool's servers (`pool basic ...` or `pool hybrid ...` inside the pool block).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PoolKind {
    /// One set of servers shared in session or transaction mode.
    Basic(BasicPool),
    /// `pool hybrid [{ ... }]`: the pool's `address` is the primary, its `replica` lines the replicas;
    /// writes go to the primary, reads to replicas (always transaction pooling).
    Hybrid(HybridPool),
}

impl PoolKind {
    /// The sharing settings (a hybrid pool's apply to both its sides).
    pub fn basic(&self) -> &BasicPool {
        match self {
            PoolKind::Basic(b) => b,
            PoolKind::Hybrid(h) => &h.basic,
        }
    }
}

/// `pool hybrid { ... }`: every `pool basic transaction` directive, plus the read/write split's own.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HybridPool {
    /// Transaction pooling settings, used on the primary and the replicas.
    pub basic: BasicPool,
    /// Read your writes: where a client's reads go after its write commits. Default 1s.
    pub primary_stickiness: Stickiness,
    /// Start read-write transactions on a replica and replay them on the primary when they write
    /// (`hybrid_replay on`, default); `off` sends every explicit read-write transaction to the primary.
    pub replay: bool,
}

impl HybridPool {
    /// The defaults.
    pub fn new() -> HybridPool {
        HybridPool {
            basic: BasicPool::new(PoolMode::Transaction),
            primary_stickiness: Stickiness::For(Duration::from_secs(1)),
            replay: true,
        }
    }
}

/// `primary_stickiness DUR | lsn`: how a hybrid pool lets a client read what it just wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stickiness {
    /// The client's reads stay on the primary this long after its write (zero: not at all).
    For(Duration),
    /// The client's reads go to a replica only once it has replayed the client's last commit (its WAL
    /// position, read on the primary as the write transaction ends); to the primary until then.
    Lsn,
}

/// In JSON: a duration string, or `"lsn"`.
impl serde::Serialize for Stickiness {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Stickiness::For(d) => serializer.serialize_str(&crate::duration::format(*d)),
            Stickiness::Lsn => serializer.serialize_str("lsn"),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Stickiness {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let text = String::deserialize(deserializer)?;
        if text == "lsn" {
            return Ok(Stickiness::Lsn);
        }
        crate::duration::parse(&text)
            .map(Stickiness::For)
            .ok_or_else(|| {
                D::Error::custom(format!(
                    "invalid primary_stickiness {text:?}, expected {}, or lsn",
                    crate::duration::EXPECTED
                ))
            })
    }
}

impl Default for HybridPool {
    fn default() -> HybridPool {
        HybridPool::new()
    }
}

/// A critic (`penalize ...`): scores servers, lower is better. Scores are cached for `validity`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Critic {
    /// `penalize query_latency` (alias `latency`): the time of `SELECT 0`, divided by `threshold`.
    QueryLatency {
        /// The time that scores 1. Default 300ms.
        #[serde(with = "serde_duration")]
        threshold: Duration,
        /// How long a score is reused. Default 5m.
        #[serde(with = "serde_duration")]
        validity: Duration,
    },
    /// `penalize replication_latency`: a standby's replay lag, divided by `threshold`.
    ReplicationLatency {
        /// The lag that scores 1. Default 3s.
        #[serde(with = "serde_duration")]
        threshold: Duration,
        /// How long a score is reused. Default 5m.
        #[serde(with = "serde_duration")]
        validity: Duration,
        /// A replica lagging more than this serves nothing until it catches up; `None` (default) has
        /// no limit.
        #[serde(with = "serde_opt_duration")]
        max_lag: Option<Duration>,
    },
}

/// `pool basic [session|transaction] { ... }`.
///
/// The defaults are pggat's presets for the mode: session pools keep a client's server for the whole
/// session and reset it with `DISCARD ALL` afterwards; transaction pools hand servers back after every
/// transaction and so must sync parameters and prepared statements onto the next server.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicPool {
    /// Session or transaction pooling. Default transaction.
    pub mode: PoolMode,
    /// Which waiting client gets a released server. Default rob (fair; pggat uses lifo for session
    /// pools, but our rob already hands idle servers out last-in-first-out, so it is the better default
    /// for both).
    pub pooler: Pooler,
    /// Run on a server when a client releases it; `None` runs nothing. Default `DISCARD ALL` in session
    /// mode, `None` in transaction mode.
    #[serde(deserialize_with = "required")]
    pub reset_query: Option<String>,
    /// How long the reset query may take before the server is closed instead. Default 5s.
    #[serde(with = "serde_duration")]
    pub reset_query_timeout: Duration,
    /// Idle servers above `min_connections` are closed after this; `None` (`off`, `0`) never.
    /// Default 5m.
    #[serde(with = "serde_opt_duration")]
    pub idle_timeout: Option<Duration>,
    /// First wait before redialing a server that failed, and the least time between two probes that
    /// newly waiting clients start. Default 100ms (pggat's 5s left a pool down for seconds after
    /// PostgreSQL was back).
    #[serde(with = "serde_duration")]
    pub reconnect_initial: Duration,
    /// The backoff doubles per failed round of dials up to this, jittered. Default 1s, so a pool is
    /// back within a second of its server.
    #[serde(with = "serde_duration")]
    pub reconnect_max: Duration,
    /// Release the server after every transaction even in session-like use, for better balancing.
    /// Default: true in transaction mode, false in session mode.
    pub release_after_transaction: bool,
    /// How server-reported parameters are kept in step with the client. Default: dynamic in transaction
    /// mode, initial in session mode.
    pub parameter_status_sync: ParameterStatusSync,
    /// Track prepared statements and portals and re-create them on the next server. Default: true in
    /// transaction mode, false in session mode.
    pub extended_query_sync: bool,
    /// Parameters synced with `SET` when a client moves to another server. Names are compared
    /// case-insensitively. Default: client_encoding, DateStyle, TimeZone, IntervalStyle,
    /// standard_conforming_strings, application_name, search_path; any `track` line replaces the list.
    pub track: Vec<String>,
    /// Whether session state that cannot move between servers (temp tables, LISTEN, session advisory
    /// locks, WITH HOLD cursors, SQL PREPARE) pins a client to its server (`on`, default) or is refused
    /// with an error (`off`). Only matters in transaction mode.
    pub pin_session_state: bool,
    /// Most prepared statements kept per server connection; the least recently used is closed to make
    /// room. Default 1000.
    pub max_prepared_statements: u32,
    /// Critics scoring this pool's servers (`penalize` lines), in file order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub penalize: Vec<Critic>,
}

/// The parameters tracked when a pool has no `track` lines.
pub const DEFAULT_TRACKED: &[&str] = &[
    "client_encoding",
    "DateStyle",
    "TimeZone",
    "IntervalStyle",
    "standard_conforming_strings",
    "application_name",
    "search_path",
];

impl BasicPool {
    /// The defaults for a mode.
    pub fn new(mode: PoolMode) -> BasicPool {
        let session = mode == PoolMode::Session;
        BasicPool {
            mode,
            pooler: Pooler::Rob,
            reset_query: session.then(|| "DISCARD ALL".to_owned()),
            reset_query_timeout: Duration::from_secs(5),
            idle_timeout: Some(Duration::from_secs(300)),
            reconnect_initial: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(1),
            release_after_transaction: !session,
            parameter_status_sync: if session {
                ParameterStatusSync::Initial
            } else {
                ParameterStatusSync::Dynamic
            },
            extended_query_sync: !session,
            track: DEFAULT_TRACKED.iter().map(|s| (*s).to_owned()).collect(),
            pin_session_state: true,
            max_prepared_statements: 1000,
            penalize: Vec::new(),
        }
    }
}

/// Session or transaction pooling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PoolMode {
    /// A client keeps its server until it disconnects.
    Session,
    /// A client holds a server only for the length of a transaction.
    Transaction,
    /// A client holds a server for one statement (or one pipelined batch):
    /// autocommit only; a client that opens a transaction block is refused
    /// and disconnected, as PgBouncer's statement pooling does.
    Statement,
}

/// The scheduler that picks which waiting client gets a released server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pooler {
    /// Fair scheduling by accumulated server time (the `rob` crate).
    Rob,
    /// Plain queueing: waiters are served in arrival order, without rob's
    /// accounting (idle servers still go out most recently used first).
    Lifo,
}

/// How ParameterStatus is kept consistent when clients share servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParameterStatusSync {
    /// No syncing.
    None,
    /// Assume client and server both start from their initial parameters (session pools).
    Initial,
    /// Track every change and sync on each acquire (transaction pools).
    Dynamic,
}

/// libpq's `sslmode`, for connections to servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    /// Never TLS.
    Disable,
    /// Plain first; TLS only if the server insists.
    Allow,
    /// TLS when the server offers it, without verifying its certificate.
    Prefer,
    /// TLS always, without verifying the certificate.
    Require,
    /// TLS always, the certificate verified against the trusted roots.
    VerifyCa,
    /// TLS always, the certificate verified and its name matched to the host.
    VerifyFull,
}
