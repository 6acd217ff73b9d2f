//! The full-duplex, header-only relay between a client and the server it
//! holds.
//!
//! Both directions make progress independently inside one future: bytes from
//! the server are forwarded while the client is still sending, so a client
//! that pipelines (many Syncs in flight, or COPY data while notices stream
//! back) never deadlocks against a full socket buffer.
//!
//! For each direction the relay scans `(tag, len)` headers in the read buffer
//! and forwards runs of messages as zero-copy slices. A message is split off
//! on its own only when a middleware asked for its tag, when it answers a
//! message the pooler injected (it is swallowed), or when a response the
//! pooler made up is due right after it. Every tag is fed to
//! the [`Pipeline`] so the relay knows, in transaction mode, the exact moment
//! the server becomes idle. Writes are flushed when a direction runs out of
//! buffered input, so a burst costs one syscall per side.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;

use crate::conn::Conn;
use crate::error::{Error, Result};
use crate::frame::{self, TagSet};
use crate::middleware::{Ctx, Middleware, Verdict};
use crate::pipeline::Pipeline;
use crate::replay::{self, ErrorKind, Recording, Skip, Tally};

/// Above this many bytes queued towards a peer, stop reading from the other
/// side until the peer drains: every buffer stays bounded. Small in unit
/// tests, so a socket buffer swallows a whole batch in one write and the
/// backpressure paths run.
const HIGH_WATER: usize = if cfg!(test) { 4 * 1024 } else { 256 * 1024 };

/// Messages longer than this that no hook asked for are forwarded piece by
/// piece as they arrive instead of being buffered whole.
const STREAM_THRESHOLD: usize = 64 * 1024;

/// When the relay hands the server back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Until the client leaves (session pooling).
    Session,
    /// Until the server is idle and owes nothing (transaction pooling).
    Transaction,
    /// As `Transaction`, but a ReadyForQuery that says a transaction block
    /// is open ends the relay with [`Outcome::TransactionBlock`] instead of
    /// reaching the client (statement pooling).
    Statement,
}

/// Why the relay ended.
#[derive(Debug)]
pub enum Outcome {
    /// Transaction mode: the server is idle and may be released. Client bytes
    /// that arrived after the transaction stay buffered on the client.
    Idle,
    /// A middleware stopped the relay at this message (tag, length and body),
    /// e.g. the client's Terminate.
    Stopped(Bytes),
    /// The client went away or misbehaved. The server may still owe
    /// responses; the caller must clean it up before reuse.
    ClientGone(Error),
    /// The server went away or misbehaved. Whatever it sent before is
    /// already forwarded to the client.
    ServerGone(Error),
    /// While recording (see [`Relay::recording`]), the transaction turned
    /// out to need the primary: the server refused a write because it is
    /// read-only (SQLSTATE 25006; that error was not forwarded, everything
    /// before it was, and the server still owes the rest of its responses),
    /// or session state now pins the client to this server, which must not
    /// be a replica.
    NeedsPrimary,
    /// While recording with [`Recording::catching_lag`], the server answered
    /// with an error that replication lag can cause (SQLSTATE 42P01, 42703,
    /// 42883, 3F000 or 42704) before the client saw any data of the
    /// transaction. That error was not forwarded, everything before it was,
    /// and the server still owes the rest of its responses; the caller
    /// decides whether the replica lags (replay on the primary) or the
    /// error is the client's (replay where it was, not catching lag).
    Lagging,
    /// [`Mode::Statement`]: the server opened a transaction block. Its
    /// ReadyForQuery was not forwarded; the caller refuses the client and
    /// cleans the server.
    TransactionBlock,
}

/// One direction's scan state.
#[derive(Default)]
struct Lane {
    /// Bytes of a large message still to forward as they arrive.
    passthrough: usize,
    eof: bool,
}

impl Lane {
    /// Forwards what has arrived of a large message being streamed from
    /// `from` to `to` (noting it in `record`). Returns true once it is
    /// through (message scanning may resume).
    fn pass_through(
        &mut self,
        from: &mut Conn,
        to: &mut Conn,
        record: Option<&mut Recording>,
    ) -> bool {
        if self.passthrough > 0 {
            let buf = from.rbuf_mut();
            let n = self.passthrough.min(buf.len());
            if n > 0 {
                let bytes = buf.split_to(n).freeze();
                if let Some(r) = record {
                    r.sent(&bytes);
                }
                to.push(bytes);
                self.passthrough -= n;
            }
        }
        self.passthrough == 0
    }
}

/// Hands one whole response to the client, unless a replay's skip says the
/// client already has it. Recording, an error that means the transaction
/// must move (a read-only refusal, the server ending the session) is not
/// forwarded: the relay must stop with the outcome returned.
fn deliver(
    client: &mut Conn,
    record: &mut Option<&mut Recording>,
    skip: &mut Option<Skip>,
    msg: Bytes,
) -> Option<Outcome> {
    let tag = msg[0];
    if let Some(r) = record.as_deref_mut() {
        if tag == b'E' && r.resumable() {
            match replay::error_kind(&msg[frame::HEADER_LEN..]) {
                ErrorKind::ReadOnly if r.moves_to_primary() => return Some(Outcome::NeedsPrimary),
                ErrorKind::Lag if r.moves_for_lag() => return Some(Outcome::Lagging),
                ErrorKind::Fatal(m) => return Some(Outcome::ServerGone(Error::Fatal(m))),
                _ => {}
            }
        }
        r.delivered_whole(tag, &msg[frame::HEADER_LEN..]);
    }
    if let Some(s) = skip {
        if s.drops(tag) {
            return None;
        }
        if s.done() {
            *skip = None;
        }
    }
    client.push(msg);
    None
}

/// What a hook wants to see may change with what it saw.
fn refresh_tags<M: Middleware>(mw: &M, client_tags: &mut TagSet, server_tags: &mut TagSet) {
    *client_tags = mw.client_tags();
    *server_tags = mw.server_tags();
}

/// The relay future. See the module docs.
pub struct Relay<'a, M> {
    client: &'a mut Conn,
    server: &'a mut Conn,
    pipeline: &'a mut Pipeline,
    mw: M,
    mode: Mode,
    client_tags: TagSet,
    server_tags: TagSet,
    up: Lane,
    down: Lane,
    stop: Option<Outcome>,
    record: Option<&'a mut Recording>,
    skip: Option<Skip>,
}

/// What a relay is waiting for, for a watchdog that enforces timeouts by
/// sampling it (see [`Relay::watch`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Waiting {
    /// The server owes responses: a query is running.
    Server,
    /// Nothing is owed and a transaction is open: the client is idle in it.
    ClientInTransaction,
    /// Nothing is owed and no transaction is open.
    Client,
}

/// A sample of a relay's state; equal samples mean nothing happened in
/// between on the side being waited for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Watch {
    /// What it waits for.
    pub waiting: Waiting,
    /// Bytes read from the client so far.
    pub client_reads: u64,
    /// Batches (up to a ReadyForQuery) the server has answered so far.
    pub batches_done: u64,
}

impl<'a, M: Middleware> Relay<'a, M> {
    /// Relays between `client` and `server` until `mode` says to stop.
    /// Anything already buffered on either side is processed first.
    pub fn new(
        client: &'a mut Conn,
        server: &'a mut Conn,
        pipeline: &'a mut Pipeline,
        mw: M,
        mode: Mode,
    ) -> Self {
        Relay {
            client_tags: mw.client_tags(),
            server_tags: mw.server_tags(),
            client,
            server,
            pipeline,
            mw,
            mode,
            up: Lane::default(),
            down: Lane::default(),
            stop: None,
            record: None,
            skip: None,
        }
    }

    /// Records what the client sends and what it is given, so the
    /// transaction can be replayed on another server (see [`replay`]); a
    /// read-only refusal then ends the relay with [`Outcome::NeedsPrimary`].
    pub fn recording(mut self, record: &'a mut Recording) -> Self {
        self.record = Some(record);
        self
    }

    /// Replays a transaction: drops the server's responses up to `seen`, the
    /// position the client reached on the server it started on.
    pub fn skipping(mut self, seen: Tally) -> Self {
        self.skip = Some(Skip::new(seen));
        self
    }

    /// The client's socket byte counts (read, written) and what the server
    /// has done, for statistics.
    pub fn usage(&self) -> ((u64, u64), crate::Usage) {
        (self.client.bytes(), self.pipeline.usage())
    }

    /// What the relay waits for now, and how much the client has sent.
    pub fn watch(&self) -> Watch {
        let waiting = if self.pipeline.owes() || self.pipeline.in_copy_in() {
            Waiting::Server
        } else if self.pipeline.status() != crate::TxStatus::Idle {
            Waiting::ClientInTransaction
        } else {
            Waiting::Client
        };
        Watch {
            waiting,
            client_reads: self.client.bytes().0,
            batches_done: self.pipeline.batch_answering(),
        }
    }

    /// Server → client: forwards complete (or large, streaming) messages.
    /// Returns true when it stopped at the high-water mark with whole
    /// messages still buffered.
    fn pump_down(&mut self) -> Result<bool> {
        let Relay {
            client,
            server,
            pipeline,
            mw,
            client_tags,
            server_tags,
            down,
            mode,
            stop,
            record,
            skip,
            ..
        } = self;
        let max = server.max_message();
        if !down.pass_through(server, client, None) {
            return Ok(false);
        }
        let mut run = 0;
        let mut blocked = false;
        while stop.is_none() {
            if client.pending_out() + run >= HIGH_WATER {
                blocked = true;
                break;
            }
            let buf = server.rbuf_mut();
            let h = match frame::header(&buf[run..], max) {
                Ok(Some(h)) => h,
                Ok(None) => break,
                Err(e) => {
                    // What came before the bad header is the client's.
                    if run > 0 {
                        client.push(buf.split_to(run).freeze());
                    }
                    return Err(e);
                }
            };
            let avail = buf.len() - run;
            if avail < h.len {
                if !server_tags.contains(h.tag)
                    && h.tag != b'Z'
                    && h.len > STREAM_THRESHOLD
                    && skip.is_none()
                {
                    pipeline.server_sent(h.tag, None);
                    if let Some(r) = record.as_deref_mut() {
                        r.delivered(h.tag);
                    }
                    down.passthrough = h.len - avail;
                    run += avail;
                }
                break;
            }
            let swallow = pipeline.server_sent(h.tag, buf.get(run + frame::HEADER_LEN).copied());
            // Hooks see swallowed errors too (an error changes the server's
            // state), but cannot let them through.
            let hooked = server_tags.contains(h.tag) && (!swallow || h.tag == b'E');
            let inspected = skip.is_some()
                || (h.tag == b'E' && record.is_some())
                || (h.tag == b'Z' && *mode == Mode::Statement);
            if swallow || hooked || inspected || pipeline.synthetic_due() {
                // This message breaks the run: a hook looks at it, it is
                // dropped, a replay decides whether the client has it
                // already, or responses made up by the pooler are due right
                // after it.
                if run > 0 {
                    client.push(buf.split_to(run).freeze());
                    run = 0;
                }
                let msg = server.rbuf_mut().split_to(h.len).freeze();
                let verdict = if hooked {
                    let mut ctx = Ctx {
                        client,
                        server,
                        pipeline,
                    };
                    let v = mw.on_server(h.tag, &msg[frame::HEADER_LEN..], &mut ctx);
                    refresh_tags(mw, client_tags, server_tags);
                    v
                } else {
                    Verdict::Pass
                };
                match verdict {
                    Verdict::Pass
                        if h.tag == b'Z'
                            && !swallow
                            && *mode == Mode::Statement
                            && pipeline.status() != crate::TxStatus::Idle =>
                    {
                        *stop = Some(Outcome::TransactionBlock);
                    }
                    Verdict::Pass if !swallow => {
                        if let Some(o) = deliver(client, record, skip, msg) {
                            *stop = Some(o);
                        }
                    }
                    Verdict::Pass | Verdict::Drop => {}
                    Verdict::Stop => *stop = Some(Outcome::Stopped(msg)),
                }
                while let Some(b) = pipeline.take_synthetic() {
                    // Made up here: never a reason to move.
                    deliver(client, record, skip, b);
                }
            } else {
                if let Some(r) = record.as_deref_mut() {
                    r.delivered_whole(h.tag, &buf[run + frame::HEADER_LEN..run + h.len]);
                }
                run += h.len;
            }
            if *mode != Mode::Session && h.tag == b'Z' && pipeline.is_idle() {
                if !mw.hold() {
                    stop.get_or_insert(Outcome::Idle);
                } else if record.as_deref().is_some_and(Recording::moves_to_primary) {
                    // Pinned on a replica: the pin must happen on the
                    // primary, where this client's writes will go.
                    stop.get_or_insert(Outcome::NeedsPrimary);
                }
            }
        }
        if run > 0 {
            client.push(server.rbuf_mut().split_to(run).freeze());
        }
        Ok(blocked)
    }

    /// Client → server: forwards client messages, through the hooks.
    /// Returns true when it stopped at the high-water mark.
    fn pump_up(&mut self) -> Result<bool> {
        let Relay {
            client,
            server,
            pipeline,
            mw,
            client_tags,
            server_tags,
            up,
            stop,
            record,
            skip,
            mode,
            ..
        } = self;
        let max = client.max_message();
        if !up.pass_through(client, server, record.as_deref_mut()) {
            return Ok(false);
        }
        let mut run = 0;
        let mut blocked = false;
        while stop.is_none() {
            if server.pending_out() + run >= HIGH_WATER {
                blocked = true;
                break;
            }
            let buf = client.rbuf_mut();
            let h = match frame::header(&buf[run..], max) {
                Ok(Some(h)) => h,
                Ok(None) => break,
                Err(e) => {
                    // The messages before the bad header were counted as
                    // sent: they must reach the server, or the pipeline
                    // would wait for answers to nothing.
                    if run > 0 {
                        let bytes = buf.split_to(run).freeze();
                        if let Some(r) = record.as_deref_mut() {
                            r.sent(&bytes);
                        }
                        server.push(bytes);
                    }
                    return Err(e);
                }
            };
            let avail = buf.len() - run;
            if avail < h.len {
                if !client_tags.contains(h.tag) && h.len > STREAM_THRESHOLD {
                    pipeline.client_sent(h.tag);
                    up.passthrough = h.len - avail;
                    run += avail;
                }
                break;
            }
            if client_tags.contains(h.tag) {
                if run > 0 {
                    let bytes = buf.split_to(run).freeze();
                    if let Some(r) = record.as_deref_mut() {
                        r.sent(&bytes);
                    }
                    server.push(bytes);
                    run = 0;
                }
                let msg = client.rbuf_mut().split_to(h.len).freeze();
                if let Some(r) = record.as_deref_mut() {
                    r.sent(&msg);
                }
                let mut ctx = Ctx {
                    client,
                    server,
                    pipeline,
                };
                let verdict = mw.on_client(h.tag, &msg[frame::HEADER_LEN..], &mut ctx);
                refresh_tags(mw, client_tags, server_tags);
                match verdict {
                    Verdict::Pass => {
                        pipeline.client_sent(h.tag);
                        server.push(msg);
                    }
                    Verdict::Drop => {}
                    Verdict::Stop => *stop = Some(Outcome::Stopped(msg)),
                }
                // A hook may have answered the message itself, with nothing
                // owed ahead of its answer.
                while let Some(b) = pipeline.take_synthetic() {
                    let ready = matches!(b.last_chunk::<6>(), Some([b'Z', 0, 0, 0, 5, _]));
                    deliver(client, record, skip, b);
                    // A whole Query answered here may end the transaction
                    // as a server's ReadyForQuery would.
                    if ready && *mode != Mode::Session && pipeline.is_idle() && !mw.hold() {
                        stop.get_or_insert(Outcome::Idle);
                    }
                }
            } else {
                pipeline.client_sent(h.tag);
                run += h.len;
            }
        }
        if run > 0 {
            let bytes = client.rbuf_mut().split_to(run).freeze();
            if let Some(r) = record.as_deref_mut() {
                r.sent(&bytes);
            }
            server.push(bytes);
        }
        Ok(blocked)
    }

    /// The server is gone; a recording cannot resume a response the client
    /// got only part of.
    fn server_gone(&mut self, e: Error) -> Outcome {
        if self.down.passthrough > 0
            && let Some(r) = self.record.as_deref_mut()
        {
            r.tear();
        }
        Outcome::ServerGone(e)
    }

    fn step(&mut self, cx: &mut Context<'_>) -> Poll<Outcome> {
        loop {
            let mut progressed = false;

            let down_blocked = match self.pump_down() {
                Ok(b) => b,
                Err(e) => return Poll::Ready(self.server_gone(e)),
            };
            let up_blocked = if self.stop.is_none() {
                match self.pump_up() {
                    Ok(b) => b,
                    Err(e) => return Poll::Ready(Outcome::ClientGone(e)),
                }
            } else {
                false
            };

            let client_flushed = match self.client.poll_flush(cx) {
                Poll::Ready(Ok(())) => true,
                Poll::Ready(Err(e)) => return Poll::Ready(Outcome::ClientGone(e)),
                Poll::Pending => false,
            };
            let server_flushed = match self.server.poll_flush(cx) {
                Poll::Ready(Ok(())) => true,
                Poll::Ready(Err(e)) => return Poll::Ready(self.server_gone(e)),
                Poll::Pending => false,
            };

            // A lane that stopped at the high-water mark has whole messages
            // buffered: once its output drained, go round again rather than
            // wait for bytes that may never come.
            if (down_blocked && client_flushed) || (up_blocked && server_flushed) {
                progressed = true;
            }

            if self.stop.is_some() {
                if client_flushed && server_flushed {
                    return Poll::Ready(self.stop.take().expect("checked above"));
                }
                return Poll::Pending;
            }
            if self.down.eof {
                // Everything the server said before closing is forwarded.
                if client_flushed {
                    return Poll::Ready(self.server_gone(eof_error(self.server)));
                }
                return Poll::Pending;
            }

            if self.client.pending_out() < HIGH_WATER {
                match self.server.poll_fill(cx) {
                    Poll::Ready(Ok(0)) => {
                        self.down.eof = true;
                        progressed = true;
                    }
                    Poll::Ready(Ok(_)) => progressed = true,
                    Poll::Ready(Err(e)) => return Poll::Ready(self.server_gone(e)),
                    Poll::Pending => {}
                }
            }
            if self.server.pending_out() < HIGH_WATER && !self.up.eof {
                match self.client.poll_fill(cx) {
                    Poll::Ready(Ok(0)) => {
                        self.up.eof = true;
                        return Poll::Ready(Outcome::ClientGone(eof_error(self.client)));
                    }
                    Poll::Ready(Ok(_)) => progressed = true,
                    Poll::Ready(Err(e)) => return Poll::Ready(Outcome::ClientGone(e)),
                    Poll::Pending => {}
                }
            }
            if !progressed {
                return Poll::Pending;
            }
        }
    }
}

fn eof_error(conn: &Conn) -> Error {
    if conn.buffered().is_empty() {
        Error::Closed
    } else {
        Error::UnexpectedEof
    }
}

impl<M: Middleware + Unpin> Future for Relay<'_, M> {
    type Output = Outcome;

    /// # Cancel safety
    /// Safe: every byte taken from a read buffer is already queued on the
    /// other connection, and the pipeline reflects exactly what was queued.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        self.get_mut().step(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::middleware::unterminate::Unterminate;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::UnixStream;

    fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        v.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    struct Ends {
        client: Conn,
        server: Conn,
        client_peer: UnixStream,
        server_peer: UnixStream,
    }

    fn ends() -> Ends {
        let (c, cp) = UnixStream::pair().unwrap();
        let (s, sp) = UnixStream::pair().unwrap();
        Ends {
            client: Conn::new(c.into()),
            server: Conn::new(s.into()),
            client_peer: cp,
            server_peer: sp,
        }
    }

    /// Everything the server sent is delivered even when it all arrived at
    /// once, well over the high-water mark, and then the server went quiet.
    #[tokio::test]
    async fn a_burst_over_the_high_water_mark_is_fully_delivered() {
        let mut e = ends();
        let row = frame(b'D', &[b'x'; 1000]);
        let mut burst = Vec::new();
        for _ in 0..2000 {
            burst.extend_from_slice(&row);
        }
        burst.extend_from_slice(&frame(b'C', b"SELECT 2000\0"));
        burst.extend_from_slice(&frame(b'Z', b"I"));
        let expected = burst.len();
        // Already buffered on our side, as after a big read.
        e.server.rbuf_mut().extend_from_slice(&burst);
        let mut pipeline = Pipeline::new();
        pipeline.client_sent(b'Q');
        let reader = tokio::spawn(async move {
            let mut got = vec![0u8; expected];
            e.client_peer.read_exact(&mut got).await.unwrap();
            (got, e.client_peer, e.server_peer)
        });
        let outcome = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            Relay::new(
                &mut e.client,
                &mut e.server,
                &mut pipeline,
                Unterminate,
                Mode::Transaction,
            ),
        )
        .await
        .expect("relay stalled with messages buffered");
        assert!(matches!(outcome, Outcome::Idle));
        let (got, _c, _s) = reader.await.unwrap();
        assert_eq!(got, burst);
    }

    /// Client and server traffic flow at the same time. A pipelining client
    /// streams 1 MB of queries without waiting while the server answers each
    /// one as it reads it (as PostgreSQL does): a relay that finished writing
    /// to the server before reading from it would deadlock once the socket
    /// buffers filled.
    #[tokio::test]
    async fn both_directions_flow_concurrently() {
        let mut e = ends();
        let query = frame(b'Q', &[b'q'; 200]);
        let reply = frame(b'N', &[b'n'; 500]);
        let rounds = 5000;
        let (mut cr, mut cw) = e.client_peer.into_split();
        let mut sp = e.server_peer;
        let q2 = query.clone();
        let client_writer = tokio::spawn(async move {
            let writer = async {
                for _ in 0..rounds {
                    cw.write_all(&q2).await.unwrap();
                }
            };
            let reader = async {
                let mut got = vec![0u8; rounds * 505];
                cr.read_exact(&mut got).await.unwrap();
            };
            tokio::join!(writer, reader);
            (cr, cw) // keep the socket open: EOF would end the relay
        });
        let server = tokio::spawn(async move {
            let mut buf = vec![0u8; 205];
            for _ in 0..rounds {
                sp.read_exact(&mut buf).await.unwrap();
                sp.write_all(&reply).await.unwrap();
            }
            sp
        });
        let mut pipeline = Pipeline::new();
        let relay = Relay::new(
            &mut e.client,
            &mut e.server,
            &mut pipeline,
            Unterminate,
            Mode::Session,
        );
        tokio::select! {
            o = relay => panic!("relay ended early: {o:?}"),
            r = async { (client_writer.await, server.await) } => {
                r.0.unwrap();
                r.1.unwrap();
            }
            _ = tokio::time::sleep(std::time::Duration::from_secs(20)) => panic!("deadlock"),
        }
    }

    /// An ErrorResponse body with this SQLSTATE.
    fn error(code: crate::sqlstate::SqlState) -> Vec<u8> {
        let mut b = bytes::BytesMut::new();
        crate::messages::backend::ErrorResponse::encode_parts(
            &mut b,
            crate::messages::Severity::Error,
            code,
            "relation \"t\" does not exist",
            None,
            None,
        );
        b.to_vec()
    }

    /// Runs one Query through a recording relay whose server answers with
    /// `answer`; returns the outcome and what the client got.
    async fn recorded(record: &mut Recording, answer: Vec<u8>) -> (Outcome, Vec<u8>) {
        let mut e = ends();
        e.client_peer
            .write_all(&frame(b'Q', b"SELECT * FROM t\0"))
            .await
            .unwrap();
        let mut sp = e.server_peer;
        let server = tokio::spawn(async move {
            let mut q = vec![0u8; frame(b'Q', b"SELECT * FROM t\0").len()];
            sp.read_exact(&mut q).await.unwrap();
            sp.write_all(&answer).await.unwrap();
            sp
        });
        let mut pipeline = Pipeline::new();
        let outcome = Relay::new(
            &mut e.client,
            &mut e.server,
            &mut pipeline,
            Unterminate,
            Mode::Transaction,
        )
        .recording(record)
        .await;
        let _sp = server.await.unwrap();
        drop(e.client);
        let mut got = Vec::new();
        e.client_peer.read_to_end(&mut got).await.unwrap();
        (outcome, got)
    }

    /// Statement pooling: a statement that opens a transaction block stops
    /// the relay before its ReadyForQuery reaches the client; autocommit
    /// statements end it as in transaction mode.
    #[tokio::test]
    async fn statement_mode_stops_at_a_transaction_block() {
        for (status, idle) in [(b"I", true), (b"T", false), (b"E", false)] {
            let mut e = ends();
            e.client_peer
                .write_all(&frame(b'Q', b"BEGIN\0"))
                .await
                .unwrap();
            let mut answer = frame(b'C', b"BEGIN\0");
            answer.extend(frame(b'Z', status));
            e.server_peer.write_all(&answer).await.unwrap();
            let mut pipeline = Pipeline::new();
            let outcome = Relay::new(
                &mut e.client,
                &mut e.server,
                &mut pipeline,
                Unterminate,
                Mode::Statement,
            )
            .await;
            drop(e.client);
            let mut got = Vec::new();
            e.client_peer.read_to_end(&mut got).await.unwrap();
            if idle {
                assert!(matches!(outcome, Outcome::Idle), "{outcome:?}");
                assert_eq!(got, answer);
            } else {
                assert!(matches!(outcome, Outcome::TransactionBlock), "{outcome:?}");
                assert_eq!(
                    got,
                    frame(b'C', b"BEGIN\0"),
                    "the ReadyForQuery was withheld"
                );
            }
        }
    }

    /// A lag error before any data stops the relay without reaching the
    /// client; after rows, or when not asked for, it is the client's.
    #[tokio::test]
    async fn a_lag_error_is_withheld_until_the_client_saw_data() {
        use crate::sqlstate::SqlState;
        let mut answer = error(SqlState::UNDEFINED_TABLE);
        answer.extend_from_slice(&frame(b'Z', b"I"));
        let mut record = Recording::new().catching_lag();
        let (outcome, got) = recorded(&mut record, answer.clone()).await;
        assert!(matches!(outcome, Outcome::Lagging), "{outcome:?}");
        assert!(got.is_empty(), "the client saw {got:?}");

        let (outcome, got) = recorded(&mut Recording::new(), answer.clone()).await;
        assert!(matches!(outcome, Outcome::Idle), "{outcome:?}");
        assert_eq!(got, answer, "not catching lag: forwarded");

        let mut rows = frame(b'T', &[0, 0]);
        rows.extend_from_slice(&frame(b'D', &[0, 0]));
        rows.extend_from_slice(&answer);
        let mut record = Recording::new().catching_lag();
        let (outcome, got) = recorded(&mut record, rows.clone()).await;
        assert!(matches!(outcome, Outcome::Idle), "{outcome:?}");
        assert_eq!(got, rows, "after a row the error is the client's");
    }

    use rand::Rng as _;

    /// A seeded generator: the same seed, the same run.
    type Rng = rand::rngs::StdRng;

    /// A message size: mostly small, now and then past the streaming
    /// threshold.
    fn size(rng: &mut Rng) -> usize {
        match rng.random_range(0..=20) {
            0 => rng.random_range(STREAM_THRESHOLD..=3 * STREAM_THRESHOLD),
            1..=4 => rng.random_range(1000..=20_000),
            _ => rng.random_range(0..=200),
        }
    }

    /// Writes `bytes` in random pieces, yielding now and then.
    async fn write_in_pieces(w: &mut (impl AsyncWriteExt + Unpin), bytes: &[u8], rng: &mut Rng) {
        let mut at = 0;
        while at < bytes.len() {
            let n = rng.random_range(1..=9000).min(bytes.len() - at);
            w.write_all(&bytes[at..at + n]).await.unwrap();
            at += n;
            if rng.random_range(0..=3) == 0 {
                tokio::task::yield_now().await;
            }
        }
    }

    /// Reads exactly `len` bytes in random pieces.
    async fn read_in_pieces(
        r: &mut (impl AsyncReadExt + Unpin),
        len: usize,
        rng: &mut Rng,
    ) -> Vec<u8> {
        let mut got = Vec::with_capacity(len);
        while got.len() < len {
            let want = rng.random_range(1..=12_000).min(len - got.len());
            let mut buf = vec![0u8; want];
            let n = r.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed after {} of {len} bytes", got.len());
            got.extend_from_slice(&buf[..n]);
            if rng.random_range(0..=4) == 0 {
                tokio::task::yield_now().await;
            }
        }
        got
    }

    /// One batch the client sends (a simple Query, or Parse/Bind/Execute/
    /// Sync) and the server's answer to it, with random rows.
    fn batch(rng: &mut Rng) -> (Vec<u8>, Vec<u8>) {
        let mut sql = vec![b's'; size(rng)];
        sql.push(0);
        let mut ask = Vec::new();
        let mut answer = Vec::new();
        let extended = rng.random_bool(0.5);
        if extended {
            let mut parse = vec![0];
            parse.extend_from_slice(&sql);
            parse.extend_from_slice(&[0, 0]);
            ask.extend(frame(b'P', &parse));
            ask.extend(frame(b'B', &[0, 0, 0, 0, 0, 0, 0]));
            ask.extend(frame(b'E', &[0, 0, 0, 0, 0]));
            ask.extend(frame(b'S', b""));
            answer.extend(frame(b'1', b""));
            answer.extend(frame(b'2', b""));
        } else {
            ask.extend(frame(b'Q', &sql));
        }
        let rows = rng.random_range(0..=6);
        for _ in 0..rows {
            answer.extend(frame(b'D', &vec![b'r'; size(rng)]));
        }
        if rng.random_range(0..=5) == 0 {
            answer.extend(frame(b'N', b"Snotice\0\0"));
        }
        answer.extend(frame(b'C', format!("SELECT {rows}\0").as_bytes()));
        answer.extend(frame(b'Z', b"I"));
        (ask, answer)
    }

    /// The framing holds for any interleaving of partial reads and writes on
    /// both sides: a client that pipelines random batches in random pieces
    /// while reading answers at random points, and a server that answers each
    /// batch as it has read it, in random pieces too, each get byte for byte
    /// what the other sent, messages from empty to past the streaming
    /// threshold and the high-water mark.
    #[tokio::test]
    async fn random_pieces_on_both_sides_never_break_the_framing() {
        use rand::SeedableRng;
        for seed in 1..=12u64 {
            let mut rng = Rng::seed_from_u64(seed);
            let batches: Vec<(Vec<u8>, Vec<u8>)> = (0..rng.random_range(20..=120))
                .map(|_| batch(&mut rng))
                .collect();
            let asked: Vec<u8> = batches.iter().flat_map(|(a, _)| a.clone()).collect();
            let answered: Vec<u8> = batches.iter().flat_map(|(_, a)| a.clone()).collect();
            let mut e = ends();
            let (mut cr, mut cw) = e.client_peer.into_split();
            let (mut sr, mut sw) = e.server_peer.into_split();
            let (mut r1, mut r2, mut r3) = (
                Rng::seed_from_u64(rng.random()),
                Rng::seed_from_u64(rng.random()),
                Rng::seed_from_u64(rng.random()),
            );
            let client = {
                let asked = asked.clone();
                let want = answered.len();
                tokio::spawn(async move {
                    let writing = write_in_pieces(&mut cw, &asked, &mut r1);
                    let reading = read_in_pieces(&mut cr, want, &mut r2);
                    let ((), got) = tokio::join!(writing, reading);
                    (got, cr, cw)
                })
            };
            let server = tokio::spawn(async move {
                let mut got = Vec::new();
                for (ask, answer) in batches {
                    got.extend(read_in_pieces(&mut sr, ask.len(), &mut r3).await);
                    write_in_pieces(&mut sw, &answer, &mut r3).await;
                }
                (got, sr, sw)
            });
            let mut pipeline = Pipeline::new();
            let relay = Relay::new(
                &mut e.client,
                &mut e.server,
                &mut pipeline,
                Unterminate,
                Mode::Session,
            );
            let ((client_got, ..), (server_got, ..)) = tokio::select! {
                o = relay => panic!("seed {seed}: relay ended: {o:?}"),
                r = async { (client.await.unwrap(), server.await.unwrap()) } => r,
                _ = tokio::time::sleep(std::time::Duration::from_secs(60)) => panic!("seed {seed}: stalled"),
            };
            assert!(
                server_got == asked,
                "seed {seed}: the server got other bytes"
            );
            assert!(
                client_got == answered,
                "seed {seed}: the client got other bytes"
            );
            assert!(pipeline.is_idle(), "seed {seed}: the pipeline lost count");
        }
    }

    /// A message of PostgreSQL's largest size, 1 GiB, goes through in each
    /// direction: streamed (no 1 GiB buffer), byte for byte.
    #[tokio::test]
    async fn gigabyte_messages_stream_both_ways() {
        const BODY: usize = 1 << 30;
        let mut e = ends();
        let (mut cr, mut cw) = e.client_peer.into_split();
        let (mut sr, mut sw) = e.server_peer.into_split();
        let chunk: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
        // Writes a message with a BODY-byte body made of `chunk` repeated.
        async fn huge(w: &mut (impl AsyncWriteExt + Unpin), tag: u8, chunk: &[u8]) {
            w.write_all(&[tag]).await.unwrap();
            w.write_all(&((BODY + 4) as u32).to_be_bytes())
                .await
                .unwrap();
            for _ in 0..BODY / chunk.len() {
                w.write_all(chunk).await.unwrap();
            }
        }
        // Reads a huge message and checks every byte.
        async fn check(r: &mut (impl AsyncReadExt + Unpin), tag: u8, chunk: &[u8]) {
            let mut header = [0u8; 5];
            r.read_exact(&mut header).await.unwrap();
            assert_eq!(header[0], tag);
            assert_eq!(
                u32::from_be_bytes(header[1..].try_into().unwrap()) as usize,
                BODY + 4
            );
            let mut buf = vec![0u8; chunk.len()];
            for i in 0..BODY / chunk.len() {
                r.read_exact(&mut buf).await.unwrap();
                assert!(buf == chunk, "chunk {i} differs");
            }
        }
        let client = {
            let chunk = chunk.clone();
            tokio::spawn(async move {
                // A Query's text is the body: any bytes then a NUL; the
                // relay only frames it.
                let send = huge(&mut cw, b'Q', &chunk);
                let receive = async {
                    check(&mut cr, b'D', &chunk).await;
                    let mut tail = vec![0u8; frame(b'C', b"SELECT 1\0").len() + 6];
                    cr.read_exact(&mut tail).await.unwrap();
                    tail
                };
                let ((), tail) = tokio::join!(send, receive);
                (tail, cr, cw)
            })
        };
        let server = {
            let chunk = chunk.clone();
            tokio::spawn(async move {
                check(&mut sr, b'Q', &chunk).await;
                huge(&mut sw, b'D', &chunk).await;
                let mut tail = frame(b'C', b"SELECT 1\0");
                tail.extend(frame(b'Z', b"I"));
                sw.write_all(&tail).await.unwrap();
                (tail, sr, sw)
            })
        };
        let mut pipeline = Pipeline::new();
        let relay = Relay::new(
            &mut e.client,
            &mut e.server,
            &mut pipeline,
            Unterminate,
            Mode::Transaction,
        );
        let (outcome, (got, ..), (sent, ..)) =
            tokio::join!(relay, async { client.await.unwrap() }, async {
                server.await.unwrap()
            });
        assert!(matches!(outcome, Outcome::Idle), "{outcome:?}");
        assert_eq!(got, sent);
        assert!(
            e.client.rbuf_mut().capacity() < 64 << 20 && e.server.rbuf_mut().capacity() < 64 << 20,
            "a huge message was buffered whole"
        );
    }

    /// A client whose stream turns to garbage (a length of -1) after a whole
    /// query: the query still reaches the server, so the pipeline's count of
    /// what the server owes stays true and the server can be cleaned.
    #[tokio::test]
    async fn messages_before_a_bad_header_are_forwarded() {
        let mut e = ends();
        let mut bytes = frame(b'Q', b"SELECT 1\0");
        bytes.extend_from_slice(b"Q\xff\xff\xff\xff");
        e.client_peer.write_all(&bytes).await.unwrap();
        let mut pipeline = Pipeline::new();
        let outcome = Relay::new(
            &mut e.client,
            &mut e.server,
            &mut pipeline,
            Unterminate,
            Mode::Transaction,
        )
        .await;
        assert!(
            matches!(outcome, Outcome::ClientGone(Error::BadLength(-1))),
            "{outcome:?}"
        );
        e.server.flush().await.unwrap();
        drop(e.server);
        let mut got = Vec::new();
        e.server_peer.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, frame(b'Q', b"SELECT 1\0"));
    }

    /// Terminate stops the relay and is not forwarded.
    #[tokio::test]
    async fn terminate_is_swallowed() {
        let mut e = ends();
        e.client_peer
            .write_all(&frame(b'Q', b"SELECT 1\0"))
            .await
            .unwrap();
        e.client_peer.write_all(&frame(b'X', b"")).await.unwrap();
        let mut pipeline = Pipeline::new();
        let outcome = Relay::new(
            &mut e.client,
            &mut e.server,
            &mut pipeline,
            Unterminate,
            Mode::Session,
        )
        .await;
        assert!(matches!(outcome, Outcome::Stopped(ref m) if m[0] == b'X'));
        drop(e.server);
        let mut got = Vec::new();
        e.server_peer.read_to_end(&mut got).await.unwrap();
        assert_eq!(
            got,
            frame(b'Q', b"SELECT 1\0"),
            "only the query reached the server"
        );
    }
}
