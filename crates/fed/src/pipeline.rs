//! What a server still owes: a FIFO of the responses due for the messages it
//! was sent, advanced by the tags of what it sends back.
//!
//! The pooler needs exact answers to "is this server idle?" (transaction mode
//! releases it then), "does it owe the client anything?" (a client that
//! vanished mid-pipeline leaves responses to drain before the server can be
//! reset), and "is it in a transaction?". Counting Syncs against
//! ReadyForQuery is not enough: an error in the extended protocol makes the
//! server skip everything up to the next Sync, and a Sync that reaches the
//! server during COPY FROM STDIN is ignored. This tracker models both, from
//! message tags alone (only ReadyForQuery's status byte is read).
//!
//! Middlewares that rewrite the conversation use two more kinds of entry:
//! messages the pooler injected (their success response is swallowed, never
//! shown to the client) and synthetic responses (the answer to a client
//! message the pooler handled itself, released to the client in order, when
//! everything the server owed before it has been forwarded).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

/// A response the server owes, by the kind of message that asked for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pending {
    /// Simple query: answered up to and including ReadyForQuery.
    Query,
    /// FunctionCall: answered up to and including ReadyForQuery.
    FunctionCall,
    /// Sync: answered by ReadyForQuery.
    Sync,
    /// Parse: ParseComplete.
    Parse,
    /// Bind: BindComplete.
    Bind,
    /// Describe: RowDescription or NoData (after ParameterDescription for a statement).
    Describe,
    /// Execute: CommandComplete, EmptyQueryResponse or PortalSuspended.
    Execute,
    /// Close: CloseComplete.
    Close,
    /// Marks where the client ended a COPY FROM STDIN (CopyDone/CopyFail);
    /// owes nothing, but tells which queued Syncs the server will ignore.
    CopyEnd,
    /// A response the pooler made up for a message it did not forward; the
    /// server owes nothing for it.
    Synthetic,
}

/// Which responses to a message the client must not see.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Swallow {
    /// The client's own message: show everything.
    Nothing,
    /// Injected by the pooler: hide success; an error is shown in place of
    /// the response to the client's next message.
    Success,
    /// Injected to fail on purpose: hide the error too.
    All,
}

/// One queued response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    pending: Pending,
    swallow: Swallow,
}

impl Entry {
    fn owed(self) -> bool {
        !matches!(self.pending, Pending::CopyEnd | Pending::Synthetic)
    }
}

impl Pending {
    fn is_extended(self) -> bool {
        matches!(
            self,
            Pending::Parse | Pending::Bind | Pending::Describe | Pending::Execute | Pending::Close
        )
    }
}

/// Transaction status from the last ReadyForQuery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxStatus {
    /// 'I': not in a transaction block.
    Idle,
    /// 'T': in a transaction block.
    InTransaction,
    /// 'E': in a failed transaction block.
    Failed,
}

impl TxStatus {
    /// From ReadyForQuery's status byte.
    pub fn from_byte(b: u8) -> Option<TxStatus> {
        match b {
            b'I' => Some(TxStatus::Idle),
            b'T' => Some(TxStatus::InTransaction),
            b'E' => Some(TxStatus::Failed),
            _ => None,
        }
    }

    /// The status byte.
    pub fn as_byte(self) -> u8 {
        match self {
            TxStatus::Idle => b'I',
            TxStatus::InTransaction => b'T',
            TxStatus::Failed => b'E',
        }
    }
}

/// The server-side protocol state of one connection, as seen by the pooler.
#[derive(Clone, Debug)]
pub struct Pipeline {
    queue: VecDeque<Entry>,
    /// Bytes of the `Synthetic` entries, in queue order.
    synthetic: VecDeque<Bytes>,
    /// Query, FunctionCall and Sync messages sent, and ReadyForQuery
    /// received: batch numbers for middlewares that must know which batch an
    /// error belongs to.
    batches_sent: u64,
    batches_done: u64,
    status: TxStatus,
    /// Extended-protocol messages sent since the last Sync: the server is in
    /// an implicit transaction until that Sync.
    unsynced: bool,
    /// After an error in the extended protocol the server discards messages
    /// until a Sync; set when that Sync has not been sent yet.
    skip_until_sync: bool,
    copy_in: bool,
    copy_end_sent: bool,
    copy_out: bool,
    desync: bool,
    usage: Usage,
    /// When the query being answered began, and the transaction.
    busy_since: Option<Instant>,
    xact_since: Option<Instant>,
}

/// What a server has done, for statistics: counted as it goes, read as
/// differences between two samples.
///
/// Counted as PgBouncer counts: a query runs from a message sent when
/// nothing was owed to the ReadyForQuery that leaves nothing owed, so
/// batches a client pipelines count once together; a transaction ends at
/// such a ReadyForQuery with status 'I'.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Queries answered.
    pub queries: u64,
    /// Transactions ended (an autocommit statement is one).
    pub xacts: u64,
    /// Time in queries, summed.
    pub query_time: Duration,
    /// Time in transactions, summed.
    pub xact_time: Duration,
    /// Named prepared statements clients created (Parse), with eqp on.
    pub client_parses: u64,
    /// Named prepared statements parsed on the server by eqp, for a
    /// client's Parse or to ready one the server did not have.
    pub server_parses: u64,
    /// Binds of named prepared statements, with eqp on.
    pub binds: u64,
}

/// A prepared-statement event, counted into [`Usage`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prepared {
    /// See [`Usage::client_parses`].
    ClientParse,
    /// See [`Usage::server_parses`].
    ServerParse,
    /// See [`Usage::binds`].
    Bind,
}

impl Usage {
    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &Usage) -> Usage {
        Usage {
            queries: self.queries.saturating_sub(earlier.queries),
            xacts: self.xacts.saturating_sub(earlier.xacts),
            query_time: self.query_time.saturating_sub(earlier.query_time),
            xact_time: self.xact_time.saturating_sub(earlier.xact_time),
            client_parses: self.client_parses.saturating_sub(earlier.client_parses),
            server_parses: self.server_parses.saturating_sub(earlier.server_parses),
            binds: self.binds.saturating_sub(earlier.binds),
        }
    }
}

impl Default for Pipeline {
    fn default() -> Self {
        Pipeline {
            queue: VecDeque::with_capacity(8),
            synthetic: VecDeque::new(),
            batches_sent: 0,
            batches_done: 0,
            status: TxStatus::Idle,
            unsynced: false,
            skip_until_sync: false,
            copy_in: false,
            copy_end_sent: false,
            copy_out: false,
            desync: false,
            usage: Usage::default(),
            busy_since: None,
            xact_since: None,
        }
    }
}

impl Pipeline {
    /// A server that just sent ReadyForQuery 'I' after login.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a message sent to the server.
    #[inline]
    pub fn client_sent(&mut self, tag: u8) {
        self.sent(tag, Swallow::Nothing);
    }

    /// Records every whole message in `frames` (encoded by the pooler, not
    /// forwarded), with which of their responses the client must not see.
    pub fn record_sent(&mut self, frames: &[u8], swallow: Swallow) {
        for (tag, _) in crate::frame::messages(frames) {
            self.sent(tag, swallow);
        }
    }

    /// The number of the batch (up to and including the next Query,
    /// FunctionCall or Sync) the next message sent belongs to.
    pub fn batch_sending(&self) -> u64 {
        self.batches_sent
    }

    /// What this server has done so far.
    pub fn usage(&self) -> Usage {
        self.usage
    }

    /// Counts a prepared-statement event (the eqp middleware's).
    pub fn count_prepared(&mut self, event: Prepared) {
        let n = match event {
            Prepared::ClientParse => &mut self.usage.client_parses,
            Prepared::ServerParse => &mut self.usage.server_parses,
            Prepared::Bind => &mut self.usage.binds,
        };
        *n += 1;
    }

    /// A ReadyForQuery with nothing more owed: the batch, and with status
    /// 'I' the transaction, is over.
    fn count_ready(&mut self) {
        let now = Instant::now();
        if let Some(t) = self.busy_since.take() {
            self.usage.queries += 1;
            self.usage.query_time += now.saturating_duration_since(t);
        }
        if self.status == TxStatus::Idle
            && let Some(t) = self.xact_since.take()
        {
            self.usage.xacts += 1;
            self.usage.xact_time += now.saturating_duration_since(t);
        }
    }

    /// The number of the batch the server is answering now.
    pub fn batch_answering(&self) -> u64 {
        self.batches_done
    }

    /// Queues `bytes` as the client's response to a message the pooler
    /// answered itself (an extended-protocol message: the batch stays open
    /// until its Sync). Returns false when the server is skipping to the next
    /// Sync after an error, as PostgreSQL would then have ignored the
    /// message: nothing is queued.
    pub fn push_synthetic(&mut self, bytes: Bytes) -> bool {
        self.unsynced = true;
        if self.skip_until_sync {
            return false;
        }
        self.queue.push_back(Entry {
            pending: Pending::Synthetic,
            swallow: Swallow::Nothing,
        });
        self.synthetic.push_back(bytes);
        true
    }

    /// Queues `bytes` as the whole answer to a simple Query the pooler
    /// answered itself, ReadyForQuery included: unlike
    /// [`Pipeline::push_synthetic`] it opens no batch. Ignored, as
    /// PostgreSQL ignores the Query, while the server skips to a Sync.
    pub fn push_answer(&mut self, bytes: Bytes) {
        if self.skip_until_sync {
            return;
        }
        self.queue.push_back(Entry {
            pending: Pending::Synthetic,
            swallow: Swallow::Nothing,
        });
        self.synthetic.push_back(bytes);
    }

    /// Whether a synthetic response is due now: the server owes nothing
    /// before it (cheap; the relay asks after every message it handled, and
    /// breaks its forwarded run only then).
    #[inline]
    pub fn synthetic_due(&self) -> bool {
        !self.synthetic.is_empty()
            && self
                .queue
                .iter()
                .find(|e| e.pending != Pending::CopyEnd)
                .is_some_and(|e| e.pending == Pending::Synthetic)
    }

    /// The synthetic response at the head of the queue, if it is there: all
    /// the server owed before it has been forwarded, so it is due now.
    pub fn take_synthetic(&mut self) -> Option<Bytes> {
        self.drop_copy_ends();
        if self.queue.front().map(|e| e.pending) == Some(Pending::Synthetic) {
            self.queue.pop_front();
            return self.synthetic.pop_front();
        }
        None
    }

    #[inline]
    fn sent(&mut self, tag: u8, swallow: Swallow) {
        if self.busy_since.is_none() {
            let now = Instant::now();
            self.busy_since = Some(now);
            self.xact_since.get_or_insert(now);
        }
        let pending = match tag {
            b'Q' => Pending::Query,
            b'F' => Pending::FunctionCall,
            b'S' => {
                if self.copy_in && !self.copy_end_sent {
                    // PostgreSQL ignores Sync during COPY FROM STDIN.
                    return;
                }
                self.skip_until_sync = false;
                self.unsynced = false;
                Pending::Sync
            }
            b'P' | b'B' | b'D' | b'E' | b'C' => {
                self.unsynced = true;
                if self.skip_until_sync {
                    return;
                }
                match tag {
                    b'P' => Pending::Parse,
                    b'B' => Pending::Bind,
                    b'D' => Pending::Describe,
                    b'E' => Pending::Execute,
                    _ => Pending::Close,
                }
            }
            b'c' | b'f' => {
                if self.copy_in {
                    self.copy_end_sent = true;
                }
                // A marker only matters behind a statement still owed; a
                // COPY the server already failed drops these messages.
                if self.queue.is_empty() || self.skip_until_sync {
                    return;
                }
                Pending::CopyEnd
            }
            _ => return,
        };
        if matches!(
            pending,
            Pending::Query | Pending::FunctionCall | Pending::Sync
        ) {
            self.batches_sent += 1;
        }
        self.queue.push_back(Entry { pending, swallow });
    }

    /// Records a message received from the server. `first_byte` is the first
    /// body byte, read only for ReadyForQuery. Returns true when the message
    /// answers one the pooler injected and must not reach the client.
    #[inline]
    pub fn server_sent(&mut self, tag: u8, first_byte: Option<u8>) -> bool {
        match tag {
            b'Z' => {
                match first_byte.and_then(TxStatus::from_byte) {
                    Some(s) => self.status = s,
                    None => self.desync = true,
                }
                self.copy_in = false;
                self.copy_out = false;
                self.batches_done += 1;
                let swallowed = self.pop(&[Pending::Query, Pending::Sync, Pending::FunctionCall]);
                if self.queue.is_empty() {
                    self.count_ready();
                }
                return swallowed;
            }
            b'1' => return self.pop(&[Pending::Parse]),
            b'2' => return self.pop(&[Pending::Bind]),
            b'3' => return self.pop(&[Pending::Close]),
            b'T' | b'n' if self.head() == Some(Pending::Describe) => {
                return self.pop(&[Pending::Describe]);
            }
            b'C' | b'I' | b's' => {
                self.copy_in = false;
                self.copy_out = false;
                if self.head() == Some(Pending::Execute) {
                    return self.pop(&[Pending::Execute]);
                }
            }
            b'G' | b'W' => {
                self.copy_in = true;
                self.copy_out = tag == b'W';
                // Syncs queued behind the statement that started the copy and
                // ahead of the client's CopyDone/CopyFail are ignored by the
                // server: they will never be answered.
                let mut i = 1;
                self.copy_end_sent = false;
                while i < self.queue.len() {
                    match self.queue[i].pending {
                        Pending::CopyEnd => {
                            self.copy_end_sent = true;
                            break;
                        }
                        Pending::Sync => {
                            // Nor does it end a batch.
                            self.queue.remove(i);
                            self.batches_sent -= 1;
                        }
                        _ => i += 1,
                    }
                }
            }
            b'H' => self.copy_out = true,
            b'c' => self.copy_out = false,
            b'E' => {
                self.copy_in = false;
                self.copy_out = false;
                let head = self.queue.iter().copied().find(|e| e.owed());
                match head {
                    Some(e) if e.pending.is_extended() => {
                        // The server now skips to the next Sync, and the
                        // responses made up for skipped messages are void.
                        while let Some(e) = self.queue.front() {
                            if e.pending == Pending::Sync {
                                break;
                            }
                            if e.pending == Pending::Synthetic {
                                self.synthetic.pop_front();
                            }
                            self.queue.pop_front();
                        }
                        if self.queue.is_empty() {
                            self.skip_until_sync = true;
                        }
                    }
                    _ => {}
                }
                return head.is_some_and(|e| e.swallow == Swallow::All);
            }
            _ => {}
        }
        false
    }

    /// Drops the CopyDone/CopyFail markers at the head of the queue: they
    /// only matter behind a statement still owed.
    fn drop_copy_ends(&mut self) {
        while self.queue.front().map(|e| e.pending) == Some(Pending::CopyEnd) {
            self.queue.pop_front();
        }
    }

    fn head(&self) -> Option<Pending> {
        self.queue.iter().find(|e| e.owed()).map(|e| e.pending)
    }

    /// Drops leading entries the server owes nothing for. Synthetic ones are
    /// only dropped here when nobody took them (a server drained after its
    /// client left).
    fn skip_unowed(&mut self) {
        while let Some(e) = self.queue.front() {
            match e.pending {
                Pending::CopyEnd => {}
                Pending::Synthetic => {
                    self.synthetic.pop_front();
                }
                _ => break,
            }
            self.queue.pop_front();
        }
    }

    /// Pops the response just received; returns whether to swallow it.
    fn pop(&mut self, expected: &[Pending]) -> bool {
        self.skip_unowed();
        match self.queue.front().copied() {
            Some(e) if expected.contains(&e.pending) => {
                self.queue.pop_front();
                self.drop_copy_ends();
                e.swallow != Swallow::Nothing
            }
            _ => {
                self.desync = true;
                false
            }
        }
    }

    /// Forgets the synthetic responses still queued (their client left).
    pub fn clear_synthetic(&mut self) {
        self.queue.retain(|e| e.pending != Pending::Synthetic);
        self.synthetic.clear();
    }

    /// True when the server owes nothing, is outside any transaction, and no
    /// copy or unsynced batch is open: the moment transaction pooling may
    /// hand it to someone else.
    #[inline]
    pub fn is_idle(&self) -> bool {
        self.status == TxStatus::Idle
            && !self.unsynced
            && !self.skip_until_sync
            && !self.copy_in
            && !self.copy_out
            && !self.owes()
    }

    /// Whether the server still owes any response.
    pub fn owes(&self) -> bool {
        self.queue.iter().any(|e| e.owed())
    }

    /// Responses still owed.
    pub fn owed(&self) -> usize {
        self.queue.iter().filter(|e| e.owed()).count()
    }

    /// Status from the last ReadyForQuery.
    pub fn status(&self) -> TxStatus {
        self.status
    }

    /// Whether the server is skipping messages until the next Sync (an error
    /// in the extended protocol, and that Sync not sent yet).
    pub fn is_skipping(&self) -> bool {
        self.skip_until_sync
    }

    /// Whether the server waits for COPY data from the client.
    pub fn in_copy_in(&self) -> bool {
        self.copy_in
    }

    /// Whether the server waits for COPY data that the client has not ended
    /// (with CopyDone or CopyFail) yet.
    pub fn awaits_copy_data(&self) -> bool {
        self.copy_in && !self.copy_end_sent
    }

    /// Whether a Sync must be sent before the server will answer again
    /// (an open extended-protocol batch, or an error awaiting its Sync).
    pub fn needs_sync(&self) -> bool {
        (self.unsynced || self.skip_until_sync)
            && !self.queue.iter().any(|e| e.pending == Pending::Sync)
    }

    /// The server answered something we never asked for: its protocol state
    /// is unknown and it must not be reused.
    pub fn is_desynced(&self) -> bool {
        self.desync
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(p: &mut Pipeline, client: &[u8], server: &[(u8, Option<u8>)]) {
        for t in client {
            p.client_sent(*t);
        }
        for (t, b) in server {
            p.server_sent(*t, *b);
        }
    }

    const RFQ_I: (u8, Option<u8>) = (b'Z', Some(b'I'));
    const RFQ_T: (u8, Option<u8>) = (b'Z', Some(b'T'));

    #[test]
    fn simple_query_round_trip() {
        let mut p = Pipeline::new();
        p.client_sent(b'Q');
        assert!(!p.is_idle());
        run(
            &mut p,
            b"",
            &[(b'T', None), (b'D', None), (b'C', None), RFQ_I],
        );
        assert!(p.is_idle());
        assert!(!p.is_desynced());
    }

    #[test]
    fn explicit_transaction_holds_until_idle_status() {
        let mut p = Pipeline::new();
        run(&mut p, b"Q", &[(b'C', None), RFQ_T]);
        assert!(!p.is_idle());
        assert_eq!(p.status(), TxStatus::InTransaction);
        run(&mut p, b"Q", &[(b'C', None), RFQ_I]);
        assert!(p.is_idle());
    }

    #[test]
    fn extended_batch_without_sync_is_not_idle() {
        let mut p = Pipeline::new();
        run(&mut p, b"PBEH", &[(b'1', None), (b'2', None), (b'C', None)]);
        assert_eq!(p.owed(), 0);
        assert!(!p.is_idle(), "no Sync yet: implicit transaction open");
        assert!(p.needs_sync());
        run(&mut p, b"S", &[RFQ_I]);
        assert!(p.is_idle());
    }

    #[test]
    fn error_in_extended_skips_to_sync() {
        let mut p = Pipeline::new();
        // Parse fails; Bind/Describe/Execute are skipped by the server.
        run(&mut p, b"PBDES", &[(b'E', None)]);
        assert_eq!(p.owed(), 1);
        run(&mut p, b"", &[RFQ_I]);
        assert!(p.is_idle());
        assert!(!p.is_desynced());
    }

    #[test]
    fn error_before_sync_was_sent_skips_later_messages() {
        let mut p = Pipeline::new();
        run(&mut p, b"PH", &[(b'E', None)]);
        assert!(p.needs_sync());
        run(&mut p, b"BE", &[]);
        assert_eq!(p.owed(), 0, "skipped by the server");
        run(&mut p, b"S", &[RFQ_I]);
        assert!(p.is_idle());
        assert!(!p.is_desynced());
    }

    #[test]
    fn pipelined_syncs_each_get_ready_for_query() {
        let mut p = Pipeline::new();
        run(&mut p, b"BESBESBES", &[(b'2', None), (b'C', None), RFQ_I]);
        assert_eq!(p.owed(), 6);
        run(
            &mut p,
            b"",
            &[
                (b'2', None),
                (b'C', None),
                RFQ_I,
                (b'2', None),
                (b'C', None),
                RFQ_I,
            ],
        );
        assert!(p.is_idle());
    }

    #[test]
    fn describe_statement_and_portal() {
        let mut p = Pipeline::new();
        run(
            &mut p,
            b"PDSDS",
            &[
                (b'1', None),
                (b't', None),
                (b'T', None),
                RFQ_I,
                (b'n', None),
                RFQ_I,
            ],
        );
        assert!(p.is_idle());
        assert!(!p.is_desynced());
    }

    #[test]
    fn copy_in_simple_protocol() {
        let mut p = Pipeline::new();
        run(&mut p, b"Q", &[(b'G', None)]);
        assert!(p.in_copy_in());
        assert!(!p.is_idle());
        run(&mut p, b"ddc", &[(b'C', None), RFQ_I]);
        assert!(p.is_idle());
        assert!(!p.is_desynced());
    }

    #[test]
    fn copy_in_extended_ignores_the_early_sync() {
        // libpq: Parse/Bind/Describe/Execute/Sync, then the copy data, then
        // CopyDone and a second Sync. The first Sync is ignored by PostgreSQL.
        let mut p = Pipeline::new();
        run(
            &mut p,
            b"PBDES",
            &[(b'1', None), (b'2', None), (b'n', None), (b'G', None)],
        );
        run(&mut p, b"ddcS", &[(b'C', None)]);
        assert!(!p.is_idle());
        run(&mut p, b"", &[RFQ_I]);
        assert!(p.is_idle());
        assert!(!p.is_desynced());
        // The ignored Sync started no batch: what is sent next is answered
        // in the batch the hooks expect.
        let batch = p.batch_sending();
        run(&mut p, b"Q", &[(b'C', None)]);
        assert_eq!(p.batch_answering(), batch);
    }

    #[test]
    fn copy_in_error_then_sync() {
        let mut p = Pipeline::new();
        run(&mut p, b"PBES", &[(b'1', None), (b'2', None), (b'G', None)]);
        run(&mut p, b"d", &[(b'E', None)]);
        assert!(!p.in_copy_in());
        run(&mut p, b"dcS", &[RFQ_I]);
        assert!(p.is_idle());
        assert!(!p.is_desynced());
    }

    #[test]
    fn copy_data_after_a_failed_simple_copy_owes_nothing() {
        let mut p = Pipeline::new();
        run(&mut p, b"Q", &[(b'G', None), (b'E', None), RFQ_I]);
        run(&mut p, b"ddc", &[]);
        assert!(p.is_idle());
        assert!(!p.is_desynced());
    }

    #[test]
    fn copy_out() {
        let mut p = Pipeline::new();
        run(
            &mut p,
            b"Q",
            &[
                (b'H', None),
                (b'd', None),
                (b'd', None),
                (b'c', None),
                (b'C', None),
                RFQ_I,
            ],
        );
        assert!(p.is_idle());
    }

    #[test]
    fn unexpected_response_marks_desync() {
        let mut p = Pipeline::new();
        p.server_sent(b'1', None);
        assert!(p.is_desynced());
        let mut p = Pipeline::new();
        p.server_sent(b'Z', Some(b'?'));
        assert!(p.is_desynced());
    }

    #[test]
    fn notices_and_parameter_status_owe_nothing() {
        let mut p = Pipeline::new();
        run(
            &mut p,
            b"Q",
            &[
                (b'N', None),
                (b'S', None),
                (b'A', None),
                (b'C', None),
                RFQ_I,
            ],
        );
        assert!(p.is_idle());
    }
}
