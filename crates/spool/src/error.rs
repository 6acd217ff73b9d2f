//! spool's error type.

use std::sync::Arc;
use std::time::Duration;

use fed::sqlstate::SqlState;

/// Fields of an ErrorResponse a server sent, kept for the client's benefit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerError {
    /// Severity (ERROR, FATAL, PANIC).
    pub severity: String,
    /// SQLSTATE.
    pub code: String,
    /// Primary message.
    pub message: String,
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} ({})", self.severity, self.message, self.code)
    }
}

/// What went wrong getting or using a server connection. Every variant says
/// where it came from, so the client's error names the server or the setting.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// TCP/unix connect failed or timed out.
    #[error("could not connect to server {addr}: {reason}")]
    Connect {
        /// The recipe's address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// TLS could not be set up as the recipe requires.
    #[error("TLS with server {addr}: {reason}")]
    Tls {
        /// The recipe's address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The server refused our login (bad credentials, unknown database...).
    #[error("server {addr} refused login: {error}")]
    LoginRefused {
        /// The recipe's address.
        addr: String,
        /// What the server said.
        error: ServerError,
    },
    /// Our side of the authentication exchange failed.
    #[error("cannot log in to server {addr}: {source}")]
    Auth {
        /// The recipe's address.
        addr: String,
        /// The auth state machine's error.
        source: auth::Error,
    },
    /// The server broke the protocol or the connection.
    #[error("server {addr}: {source}")]
    Protocol {
        /// The recipe's address.
        addr: String,
        /// What failed.
        source: fed::Error,
    },
    /// No server became free in time.
    #[error(
        "no server connection available in pool \"{pool}\" after {waited:.1?}: {}",
        match last {
            Some(e) => format!("the server's last answer: {e}"),
            None => "raise max_connections or client_acquire_timeout".to_owned(),
        }
    )]
    AcquireTimeout {
        /// The pool's name.
        pool: String,
        /// How long the client waited.
        waited: Duration,
        /// Why no server could be dialled meanwhile, if one could not.
        last: Option<Arc<Error>>,
    },
    /// The pool is shutting down or was removed by a reload.
    #[error("pool \"{0}\" is closed")]
    Closed(String),
    /// A server command failed (reset query, health check, parameter sync).
    #[error("server {addr} failed \"{query}\": {error}")]
    Query {
        /// The recipe's address.
        addr: String,
        /// The statement.
        query: String,
        /// What the server said.
        error: ServerError,
    },
    /// Reconnecting is backing off after failures; carries the last one.
    #[error("{last} (retrying in {retry_in:?})")]
    Backoff {
        /// The failure that started the backoff.
        last: Arc<Error>,
        /// Until the next attempt.
        retry_in: Duration,
    },
    /// A step did not finish in time.
    #[error("server {addr}: {what} timed out after {after:?}")]
    Timeout {
        /// The recipe's address.
        addr: String,
        /// Which step (connect, login, reset query...).
        what: &'static str,
        /// The deadline.
        after: Duration,
    },
}

impl Error {
    /// The SQLSTATE a client should see for this error.
    pub fn sqlstate(&self) -> SqlState {
        match self {
            Error::Connect { .. } | Error::Timeout { .. } | Error::Tls { .. } => {
                SqlState::CONNECTION_FAILURE
            }
            Error::LoginRefused { error, .. } => {
                SqlState::from_code(error.code.as_bytes()).unwrap_or(SqlState::CONNECTION_FAILURE)
            }
            Error::Auth { .. } => SqlState::SQLSERVER_REJECTED_ESTABLISHMENT_OF_SQLCONNECTION,
            Error::Protocol { .. } => SqlState::CONNECTION_FAILURE,
            Error::AcquireTimeout { last: Some(e), .. } => e.sqlstate(),
            Error::AcquireTimeout { last: None, .. } => SqlState::TOO_MANY_CONNECTIONS,
            Error::Closed(_) => SqlState::ADMIN_SHUTDOWN,
            Error::Query { error, .. } => {
                SqlState::from_code(error.code.as_bytes()).unwrap_or(SqlState::INTERNAL_ERROR)
            }
            Error::Backoff { last, .. } => last.sqlstate(),
        }
    }
}

impl Error {
    /// Whether waiting cannot cure this dial failure: the server refused
    /// our credentials or the database, or TLS cannot be had as the recipe
    /// demands. Clients are told at once rather than at their timeout
    /// (dials are still retried, in case the server's configuration changes).
    /// A server that is down, starting, in recovery or full is transient.
    pub fn is_permanent(&self) -> bool {
        match self {
            Error::LoginRefused { error, .. } => {
                let code = error.code.as_bytes();
                // 28: invalid authorization; 3D000: no such database;
                // 42501: no CONNECT privilege.
                code.starts_with(b"28") || code == b"3D000" || code == b"42501"
            }
            Error::Auth { .. } | Error::Tls { .. } => true,
            Error::Backoff { last, .. } => last.is_permanent(),
            _ => false,
        }
    }
}

/// spool's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
