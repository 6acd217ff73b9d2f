//! Small hand-written conveniences on generated views: named values for
//! single-byte fields, and parsing of command tags and protocol versions.

use super::backend::{CommandComplete, ReadyForQuery};
use super::frontend::{Close, Describe};
use super::startup::StartupMessage;

impl ReadyForQuery {
    /// Status: not in a transaction block.
    pub const IDLE: u8 = b'I';
    /// Status: in a transaction block.
    pub const IN_TRANSACTION: u8 = b'T';
    /// Status: in a failed transaction block (queries are rejected until it
    /// ends).
    pub const FAILED: u8 = b'E';

    /// Whether the session is outside any transaction block: the point at
    /// which a transaction-mode pooler may release the server.
    pub fn is_idle(&self) -> bool {
        self.status == Self::IDLE
    }
}

impl Close<'_> {
    /// `kind` of a prepared statement.
    pub const STATEMENT: u8 = b'S';
    /// `kind` of a portal.
    pub const PORTAL: u8 = b'P';
}

impl Describe<'_> {
    /// `kind` of a prepared statement.
    pub const STATEMENT: u8 = b'S';
    /// `kind` of a portal.
    pub const PORTAL: u8 = b'P';
}

impl<'a> CommandComplete<'a> {
    /// The whole command tag, e.g. `INSERT 0 5` or `DISCARD ALL`.
    pub fn tag(&self) -> &'a [u8] {
        self.tag
    }

    /// The tag without its trailing counts: `INSERT`, `SELECT`, `DISCARD ALL`.
    pub fn command(&self) -> &'a [u8] {
        let mut t = self.tag;
        while let Some(space) = t.iter().rposition(|&b| b == b' ') {
            if !is_number(&t[space + 1..]) {
                break;
            }
            t = &t[..space];
        }
        t
    }

    /// The row count that ends the tags of INSERT, UPDATE, DELETE, MERGE,
    /// SELECT, MOVE, FETCH and COPY.
    pub fn rows(&self) -> Option<u64> {
        let space = self.tag.iter().rposition(|&b| b == b' ')?;
        let last = &self.tag[space + 1..];
        if !is_number(last) {
            return None;
        }
        std::str::from_utf8(last).ok()?.parse().ok()
    }
}

fn is_number(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(u8::is_ascii_digit)
}

impl<'a> StartupMessage<'a> {
    /// Protocol 3.0, the version this crate speaks: `3 << 16`.
    pub const PROTOCOL_3_0: i32 = 3 << 16;

    /// The requested major protocol version (3).
    pub fn major(&self) -> i32 {
        self.protocol_version >> 16
    }

    /// The requested minor protocol version; above 0 calls for a
    /// NegotiateProtocolVersion answer.
    pub fn minor(&self) -> i32 {
        self.protocol_version & 0xffff
    }

    /// The value of parameter `key` (the first one, if repeated).
    pub fn parameter(&self, key: &[u8]) -> Option<&'a [u8]> {
        self.parameters.value(key)
    }
}
