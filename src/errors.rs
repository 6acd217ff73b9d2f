//! The one place where internal failures become what a client sees: an
//! ErrorResponse with a real SQLSTATE and a message that says what to do.

use bytes::BytesMut;
use fed::messages::backend;
use fed::sqlstate::SqlState;

/// ERROR ends the current statement; FATAL ends the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// The session goes on.
    Error,
    /// The connection is closed after sending it.
    Fatal,
}

/// An error for the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientError {
    /// ERROR or FATAL.
    pub severity: Severity,
    /// SQLSTATE.
    pub code: SqlState,
    /// Primary message.
    pub message: String,
    /// Optional detail line.
    pub detail: Option<String>,
    /// Optional hint line.
    pub hint: Option<String>,
}

impl ClientError {
    /// A FATAL error.
    pub fn fatal(code: SqlState, message: impl Into<String>) -> Self {
        ClientError {
            severity: Severity::Fatal,
            code,
            message: message.into(),
            detail: None,
            hint: None,
        }
    }

    /// An ERROR.
    pub fn error(code: SqlState, message: impl Into<String>) -> Self {
        ClientError {
            severity: Severity::Error,
            ..Self::fatal(code, message)
        }
    }

    /// Adds a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Writes the ErrorResponse.
    pub fn encode(&self, buf: &mut BytesMut) {
        let severity = match self.severity {
            Severity::Error => fed::messages::Severity::Error,
            Severity::Fatal => fed::messages::Severity::Fatal,
        };
        backend::ErrorResponse::encode_parts(
            buf,
            severity,
            self.code,
            &self.message,
            self.detail.as_deref(),
            self.hint.as_deref(),
        );
    }
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code.as_str())
    }
}

impl From<spool::Error> for ClientError {
    fn from(e: spool::Error) -> Self {
        let code = e.sqlstate();
        let unreachable = |e: &spool::Error| {
            matches!(
                e,
                spool::Error::Connect { .. } | spool::Error::Backoff { .. }
            )
        };
        let hint = match &e {
            e if unreachable(e) => Some("pggat retries the server by itself; try again shortly"),
            spool::Error::AcquireTimeout {
                last: Some(last), ..
            } if unreachable(last) => Some("pggat retries the server by itself; try again shortly"),
            _ => None,
        };
        let mut err = ClientError::fatal(code, e.to_string());
        err.hint = hint.map(str::to_owned);
        err
    }
}
