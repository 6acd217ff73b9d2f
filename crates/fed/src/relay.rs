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
//! on its own only when a middleware asked for its tag. Every tag is fed to
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

/// Above this many bytes queued towards a peer, stop reading from the other
/// side until the peer drains: every buffer stays bounded.
const HIGH_WATER: usize = 256 * 1024;

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
}

/// One direction's scan state.
#[derive(Default)]
struct Lane {
    /// Bytes of a large message still to forward as they arrive.
    passthrough: usize,
    eof: bool,
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
        }
    }

    /// Server → client: forwards complete (or large, streaming) messages.
    fn pump_down(&mut self) -> Result<()> {
        let Relay {
            client,
            server,
            pipeline,
            mw,
            server_tags,
            down,
            mode,
            stop,
            ..
        } = self;
        let max = server.max_message();
        if down.passthrough > 0 {
            let buf = server.rbuf_mut();
            let n = down.passthrough.min(buf.len());
            if n > 0 {
                client.push(buf.split_to(n).freeze());
                down.passthrough -= n;
            }
            if down.passthrough > 0 {
                return Ok(());
            }
        }
        let mut run = 0;
        while stop.is_none() && client.pending_out() + run < HIGH_WATER {
            let buf = server.rbuf_mut();
            let Some(h) = frame::header(&buf[run..], max)? else {
                break;
            };
            let avail = buf.len() - run;
            if avail < h.len {
                if !server_tags.contains(h.tag) && h.tag != b'Z' && h.len > STREAM_THRESHOLD {
                    pipeline.server_sent(h.tag, None);
                    down.passthrough = h.len - avail;
                    run += avail;
                }
                break;
            }
            pipeline.server_sent(h.tag, buf.get(run + frame::HEADER_LEN).copied());
            if server_tags.contains(h.tag) {
                if run > 0 {
                    client.push(buf.split_to(run).freeze());
                    run = 0;
                }
                let msg = server.rbuf_mut().split_to(h.len).freeze();
                let mut ctx = Ctx {
                    client,
                    server,
                    pipeline,
                };
                match mw.on_server(h.tag, &msg[frame::HEADER_LEN..], &mut ctx) {
                    Verdict::Pass => client.push(msg),
                    Verdict::Drop => {}
                    Verdict::Stop => *stop = Some(Outcome::Stopped(msg)),
                }
            } else {
                run += h.len;
            }
            if *mode == Mode::Transaction && h.tag == b'Z' && pipeline.is_idle() {
                stop.get_or_insert(Outcome::Idle);
            }
        }
        if run > 0 {
            client.push(server.rbuf_mut().split_to(run).freeze());
        }
        Ok(())
    }

    /// Client → server: forwards client messages, through the hooks.
    fn pump_up(&mut self) -> Result<()> {
        let Relay {
            client,
            server,
            pipeline,
            mw,
            client_tags,
            up,
            stop,
            ..
        } = self;
        let max = client.max_message();
        if up.passthrough > 0 {
            let buf = client.rbuf_mut();
            let n = up.passthrough.min(buf.len());
            if n > 0 {
                server.push(buf.split_to(n).freeze());
                up.passthrough -= n;
            }
            if up.passthrough > 0 {
                return Ok(());
            }
        }
        let mut run = 0;
        while stop.is_none() && server.pending_out() + run < HIGH_WATER {
            let buf = client.rbuf_mut();
            let Some(h) = frame::header(&buf[run..], max)? else {
                break;
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
                    server.push(buf.split_to(run).freeze());
                    run = 0;
                }
                let msg = client.rbuf_mut().split_to(h.len).freeze();
                let mut ctx = Ctx {
                    client,
                    server,
                    pipeline,
                };
                match mw.on_client(h.tag, &msg[frame::HEADER_LEN..], &mut ctx) {
                    Verdict::Pass => {
                        pipeline.client_sent(h.tag);
                        server.push(msg);
                    }
                    Verdict::Drop => {}
                    Verdict::Stop => *stop = Some(Outcome::Stopped(msg)),
                }
            } else {
                pipeline.client_sent(h.tag);
                run += h.len;
            }
        }
        if run > 0 {
            server.push(client.rbuf_mut().split_to(run).freeze());
        }
        Ok(())
    }

    fn step(&mut self, cx: &mut Context<'_>) -> Poll<Outcome> {
        loop {
            let mut progressed = false;

            if let Err(e) = self.pump_down() {
                return Poll::Ready(Outcome::ServerGone(e));
            }
            if self.stop.is_none()
                && let Err(e) = self.pump_up()
            {
                return Poll::Ready(Outcome::ClientGone(e));
            }

            let client_flushed = match self.client.poll_flush(cx) {
                Poll::Ready(Ok(())) => true,
                Poll::Ready(Err(e)) => return Poll::Ready(Outcome::ClientGone(e)),
                Poll::Pending => false,
            };
            let server_flushed = match self.server.poll_flush(cx) {
                Poll::Ready(Ok(())) => true,
                Poll::Ready(Err(e)) => return Poll::Ready(Outcome::ServerGone(e)),
                Poll::Pending => false,
            };

            if self.stop.is_some() {
                if client_flushed && server_flushed {
                    return Poll::Ready(self.stop.take().expect("checked above"));
                }
                return Poll::Pending;
            }
            if self.down.eof {
                // Everything the server said before closing is forwarded.
                if client_flushed {
                    return Poll::Ready(Outcome::ServerGone(eof_error(self.server)));
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
                    Poll::Ready(Err(e)) => return Poll::Ready(Outcome::ServerGone(e)),
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
