//! What a relay keeps so a transaction can be moved to another server after
//! it started: the client's messages as sent, and how many responses the
//! client has already been given.
//!
//! A hybrid pool starts a read-write client's transaction on a replica. When
//! the replica refuses a write (SQLSTATE 25006) or dies, or fails in a way
//! that replication lag explains before the client saw any of its data (an
//! object created on the primary a moment ago and not replayed yet), the
//! transaction is replayed on another server: the recorded messages are put back in front
//! of whatever the client sent since and relayed again, and the responses the
//! client already has are dropped by position, not by content (the new server
//! may return other rows).
//!
//! Positions are a [`Tally`]: ReadyForQuery messages delivered, then the
//! messages that answer one client message each (ParseComplete, a
//! CommandComplete, an error...) since the last of them. Rows, notices,
//! parameter reports and notifications are not counted, so a replay whose
//! SELECT returns more rows still lines up.

use bytes::{Bytes, BytesMut};

use crate::conn::Conn;
use crate::messages::backend::ErrorResponse;

/// Most bytes of client messages recorded per transaction. A transaction
/// that sends more is not replayable: a write in it reaches the client as
/// the replica's error.
pub const RECORD_LIMIT: usize = 1024 * 1024;

/// A position in a stream of responses; see the module docs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Tally {
    /// ReadyForQuery messages.
    batches: u64,
    /// Counted messages since the last ReadyForQuery.
    answers: u64,
}

impl Tally {
    /// Whether a message with this tag is counted as an answer.
    fn counts(tag: u8) -> bool {
        !matches!(tag, b'D' | b'd' | b'N' | b'S' | b'A')
    }

    /// Moves past one delivered message.
    pub fn count(&mut self, tag: u8) {
        match tag {
            b'Z' => {
                self.batches += 1;
                self.answers = 0;
            }
            t if Tally::counts(t) => self.answers += 1,
            _ => {}
        }
    }
}

/// The client's messages of one transaction, as sent to its first server,
/// and the responses it was given.
#[derive(Debug, Default)]
pub struct Recording {
    chunks: Vec<Bytes>,
    bytes: usize,
    delivered: Tally,
    overflowed: bool,
    /// A response was cut off mid-message: the client's stream cannot be
    /// resumed at a message boundary.
    torn: bool,
    /// Whether a read-only refusal ends the relay (else it is forwarded:
    /// the client asked for a read-only server).
    catch_read_only: bool,
    /// Rows were delivered since the last counted answer: a replay could not
    /// tell which of its rows the client already has.
    mid_rows: bool,
    /// Whether an error that lag can cause ends the relay (see
    /// [`crate::Outcome::Lagging`]).
    catch_lag: bool,
    /// The client was given data read on this server (rows, or a row count):
    /// a lag error no longer moves the transaction, whose reads the client
    /// has seen.
    shown: bool,
}

impl Recording {
    /// Starts an empty recording of a transaction that moves to the
    /// primary if it writes (or to another server if its server fails).
    pub fn new() -> Recording {
        Recording {
            catch_read_only: true,
            ..Recording::default()
        }
    }

    /// Starts an empty recording of a transaction that moves only if its
    /// server fails.
    pub fn failover_only() -> Recording {
        Recording::default()
    }

    /// Also stops at an error that replication lag can cause (an undefined
    /// table, column, function, schema or object) while the client has seen
    /// none of the transaction's data, so the caller can tell lag from a
    /// mistake and replay the transaction on the primary.
    pub fn catching_lag(mut self) -> Recording {
        self.catch_lag = true;
        self
    }

    /// Whether the transaction can be replayed elsewhere.
    fn replayable(&self) -> bool {
        !self.overflowed && !self.torn
    }

    /// Whether the transaction should move to the primary rather than let
    /// the client see a read-only refusal or stay pinned to a replica (see
    /// [`crate::Outcome::NeedsPrimary`]).
    pub(crate) fn moves_to_primary(&self) -> bool {
        self.catch_read_only && self.replayable()
    }

    /// Whether a lag error should end the relay (see [`Recording::catching_lag`]).
    pub(crate) fn moves_for_lag(&self) -> bool {
        self.catch_lag && !self.shown && self.replayable()
    }

    /// Whether the client's stream is at a point a replay can resume from:
    /// not in the middle of a statement's rows.
    pub fn resumable(&self) -> bool {
        self.replayable() && !self.mid_rows
    }

    /// Notes client bytes forwarded to the server (zero-copy: the bytes are
    /// shared with what was sent).
    pub(crate) fn sent(&mut self, bytes: &Bytes) {
        if self.overflowed {
            return;
        }
        self.bytes += bytes.len();
        if self.bytes > RECORD_LIMIT {
            self.overflowed = true;
            self.chunks = Vec::new();
        } else {
            self.chunks.push(bytes.clone());
        }
    }

    /// Notes a whole response delivered to the client.
    pub(crate) fn delivered_whole(&mut self, tag: u8, body: &[u8]) {
        if tag == b'C' && reports_data(body) {
            self.shown = true;
        }
        self.delivered(tag);
    }

    /// Notes a response delivered to the client (its start only, for a
    /// large one streamed through).
    pub(crate) fn delivered(&mut self, tag: u8) {
        self.delivered.count(tag);
        match tag {
            b'D' | b'd' => {
                self.mid_rows = true;
                self.shown = true;
            }
            t if Tally::counts(t) => self.mid_rows = false,
            _ => {}
        }
    }

    /// Notes that the server's stream ended inside a message already partly
    /// forwarded.
    pub(crate) fn tear(&mut self) {
        self.torn = true;
    }

    /// Puts the recorded messages back in front of what the client sent
    /// since, to be relayed to another server, and returns how many of that
    /// server's responses the client already has.
    pub fn rewind(self, client: &mut Conn) -> Tally {
        let rest = client.rbuf_mut();
        let mut buf = BytesMut::with_capacity(self.bytes + rest.len());
        for chunk in &self.chunks {
            buf.extend_from_slice(chunk);
        }
        buf.extend_from_slice(rest);
        *rest = buf;
        self.delivered
    }
}

/// Whether a CommandComplete tag tells the client something it read: how many
/// rows a query returned, fetched, skipped or copied out (even none).
fn reports_data(body: &[u8]) -> bool {
    [&b"SELECT"[..], b"FETCH", b"MOVE", b"COPY"]
        .iter()
        .any(|word| body.starts_with(word))
}

/// Drops a replayed transaction's responses up to the position the client
/// has already seen.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Skip {
    target: Tally,
    seen: Tally,
}

impl Skip {
    pub(crate) fn new(target: Tally) -> Skip {
        Skip {
            target,
            seen: Tally::default(),
        }
    }

    /// Whether the next response, with this tag, was already delivered.
    pub(crate) fn drops(&mut self, tag: u8) -> bool {
        let before = self.seen;
        self.seen.count(tag);
        if Tally::counts(tag) {
            self.seen <= self.target
        } else {
            before < self.target
        }
    }

    /// Whether every response the client had is behind.
    pub(crate) fn done(&self) -> bool {
        self.seen > self.target
    }
}

/// What an ErrorResponse means to a recording relay.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ErrorKind {
    /// A write refused on a read-only server (25006
    /// read_only_sql_transaction).
    ReadOnly,
    /// The server is ending the session (FATAL or PANIC), with this message.
    Fatal(String),
    /// An object the statement names does not exist: on a replica, perhaps
    /// only not yet.
    Lag,
    /// An error the client should see.
    Other,
}

/// Classifies an ErrorResponse body.
pub(crate) fn error_kind(body: &[u8]) -> ErrorKind {
    let Ok(e) = ErrorResponse::decode(body) else {
        return ErrorKind::Other;
    };
    let severity = e.fields.field(b'V').or(e.fields.field(b'S'));
    if matches!(severity, Some(b"FATAL" | b"PANIC")) {
        let message = e.fields.field(b'M').unwrap_or_default();
        return ErrorKind::Fatal(String::from_utf8_lossy(message).into_owned());
    }
    use crate::sqlstate::SqlState;
    let Some(code) = e.fields.field(b'C') else {
        return ErrorKind::Other;
    };
    if code == SqlState::READ_ONLY_SQL_TRANSACTION.as_str().as_bytes() {
        return ErrorKind::ReadOnly;
    }
    if LAG_ERRORS.iter().any(|s| code == s.as_str().as_bytes()) {
        return ErrorKind::Lag;
    }
    ErrorKind::Other
}

/// What a replica says when it has not replayed the DDL that made what a
/// statement names: undefined table, column, function, schema, object.
const LAG_ERRORS: [crate::sqlstate::SqlState; 5] = [
    crate::sqlstate::SqlState::UNDEFINED_TABLE,
    crate::sqlstate::SqlState::UNDEFINED_COLUMN,
    crate::sqlstate::SqlState::UNDEFINED_FUNCTION,
    crate::sqlstate::SqlState::INVALID_SCHEMA_NAME,
    crate::sqlstate::SqlState::UNDEFINED_OBJECT,
];

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(tags: &[u8]) -> Tally {
        let mut t = Tally::default();
        for &tag in tags {
            t.count(tag);
        }
        t
    }

    fn kept(target: &[u8], replay: &[u8]) -> Vec<u8> {
        let mut skip = Skip::new(tally(target));
        replay.iter().copied().filter(|&t| !skip.drops(t)).collect()
    }

    /// `SELECT 1; INSERT ...` as one Query: the client saw the SELECT's
    /// result before the INSERT failed on the replica.
    #[test]
    fn a_simple_query_resumes_after_the_result_already_sent() {
        assert_eq!(kept(b"TDC", b"TDDCCZ"), b"CZ");
    }

    /// Earlier batches are skipped whole, even when the primary returns
    /// other rows and notices than the replica did.
    #[test]
    fn finished_batches_are_skipped_whatever_their_rows() {
        assert_eq!(kept(b"CZTDCZ12", b"CNZTDDDCZ12CZ"), b"CZ");
        assert_eq!(kept(b"CZ", b"CZNCZ"), b"NCZ");
    }

    /// Nothing seen: everything passes.
    #[test]
    fn an_empty_target_keeps_everything() {
        assert_eq!(kept(b"", b"NCZ"), b"NCZ");
        let mut skip = Skip::new(Tally::default());
        assert!(!skip.drops(b'C'));
        assert!(skip.done());
    }

    #[test]
    fn rows_before_a_refusal_make_it_unresumable() {
        let mut r = Recording::new();
        for &t in b"TDC" {
            r.delivered(t);
        }
        assert!(r.resumable());
        for &t in b"TD" {
            r.delivered(t);
        }
        assert!(
            !r.resumable(),
            "the client has some of this statement's rows"
        );
    }

    #[test]
    fn read_only_errors_are_recognised_by_sqlstate() {
        use crate::messages::Severity;
        use crate::sqlstate::SqlState;
        // An ErrorResponse's body.
        let error = |severity, code, message| {
            let mut b = BytesMut::new();
            crate::messages::backend::ErrorResponse::encode_parts(
                &mut b, severity, code, message, None, None,
            );
            b.split_off(5)
        };
        let read_only = error(
            Severity::Error,
            SqlState::READ_ONLY_SQL_TRANSACTION,
            "cannot execute INSERT in a read-only transaction",
        );
        assert_eq!(error_kind(&read_only), ErrorKind::ReadOnly);
        let other = error(Severity::Error, SqlState::DUPLICATE_PSTATEMENT, "x");
        assert_eq!(error_kind(&other), ErrorKind::Other);
        let fatal = error(
            Severity::Fatal,
            SqlState::ADMIN_SHUTDOWN,
            "terminating connection due to administrator command",
        );
        assert!(matches!(error_kind(&fatal), ErrorKind::Fatal(_)));
        for code in LAG_ERRORS {
            assert_eq!(
                error_kind(&error(Severity::Error, code, "x")),
                ErrorKind::Lag
            );
        }
        let typo = error(Severity::Error, SqlState::SYNTAX_ERROR, "x");
        assert_eq!(error_kind(&typo), ErrorKind::Other);
        // No SQLSTATE at all (CVE-2025-6666's class): an error like any
        // other, a FATAL one still ends the session; garbage is no panic.
        assert_eq!(error_kind(b"SERROR\0Mx\0\0"), ErrorKind::Other);
        assert!(matches!(error_kind(b"SFATAL\0Mx\0\0"), ErrorKind::Fatal(_)));
        for garbage in [&b""[..], b"C", b"C42P01", b"\0\0\0"] {
            let _ = error_kind(garbage);
        }
    }

    #[test]
    fn lag_moves_a_transaction_only_until_the_client_saw_its_data() {
        let fresh = || Recording::failover_only().catching_lag();
        assert!(!Recording::new().moves_for_lag(), "only when asked");

        // BEGIN, SET, a Parse and a Bind show nothing read.
        let mut r = fresh();
        r.delivered_whole(b'C', b"BEGIN\0");
        r.delivered_whole(b'C', b"SET\0");
        r.delivered_whole(b'1', b"");
        r.delivered_whole(b'2', b"");
        assert!(r.moves_for_lag());

        // Rows, or a count of none, do.
        let mut r = fresh();
        r.delivered_whole(b'C', b"SELECT 0\0");
        assert!(
            !r.moves_for_lag(),
            "the client knows the query found nothing"
        );
        let mut r = fresh();
        r.delivered(b'D');
        r.delivered_whole(b'C', b"FETCH 1\0");
        assert!(!r.moves_for_lag());
        let mut r = fresh();
        r.delivered_whole(b'C', b"COPY 3\0");
        assert!(!r.moves_for_lag());
    }
}
