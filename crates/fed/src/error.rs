//! fed's error type.

use crate::codec::DecodeError;

/// Everything that can go wrong while reading or writing the wire protocol.
///
/// I/O errors are kept separate from protocol violations so that callers can
/// tell a peer that vanished (close quietly) from a peer that misbehaved
/// (answer 08P01 where possible, then close).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The socket failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The peer closed the connection cleanly, between two messages.
    #[error("connection closed by peer")]
    Closed,
    /// The peer closed the connection with part of a message buffered.
    #[error("connection closed in the middle of a message")]
    UnexpectedEof,
    /// A length prefix announced a message larger than the configured limit.
    /// Raised before any buffer space is reserved for it.
    #[error("message of {len} bytes exceeds the limit of {max} bytes")]
    TooLong {
        /// Announced length, including the length field itself.
        len: usize,
        /// The limit in force.
        max: usize,
    },
    /// A length prefix smaller than the length field itself.
    #[error("invalid message length {0}")]
    BadLength(i32),
    /// A message body did not match its type's layout.
    #[error("malformed message: {0}")]
    Decode(#[from] DecodeError),
    /// A well-formed message arrived where the protocol does not allow it.
    #[error("unexpected message {tag:?} {context}")]
    Unexpected {
        /// The message's tag, as a character.
        tag: char,
        /// Where it arrived, e.g. "during startup".
        context: &'static str,
    },
    /// A TLS handshake or session failed.
    #[error("tls: {0}")]
    Tls(String),
    /// The server ended the session with a FATAL or PANIC error (shown to
    /// nobody: a recording relay moves the transaction elsewhere).
    #[error("server ended the session: {0}")]
    Fatal(String),
    /// An operation did not finish within its deadline.
    #[error("{0} timed out")]
    Timeout(&'static str),
}

impl Error {
    /// True when the peer went away rather than misbehaved: callers log these
    /// at a lower level and never try to answer.
    pub fn is_disconnect(&self) -> bool {
        match self {
            Error::Closed | Error::UnexpectedEof => true,
            Error::Io(e) => matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::UnexpectedEof
            ),
            _ => false,
        }
    }
}

/// fed's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
