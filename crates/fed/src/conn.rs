//! A buffered protocol connection: one reusable read buffer, one write queue,
//! flushed in batches.
//!
//! Reads are two-phase (mini-redis style): [`Conn::try_next`] checks whether a
//! whole message is buffered and splits it off without copying; only when it
//! is not does the caller wait in [`Conn::fill`]. Writes either encode into
//! [`Conn::out`] or queue an already-framed slice with [`Conn::push`] (the
//! relay forwards runs of messages this way, without copying); nothing reaches
//! the socket until [`Conn::flush`], so a burst of messages costs one syscall.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::{Error, Result};
use crate::frame::{self, DEFAULT_MAX_MESSAGE, HEADER_LEN};
use crate::stream::Stream;

/// Bytes asked of the socket per read when the buffer has no room left.
const READ_CHUNK: usize = 8 * 1024;

/// Most slices handed to one vectored write.
const MAX_IOVECS: usize = 64;

/// One whole message, split off the read buffer without copying.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Message type byte.
    pub tag: u8,
    /// The body, after the length field.
    pub body: Bytes,
}

/// Bytes waiting to be written, in order: forwarded slices first, then
/// whatever was encoded into the scratch buffer after them.
#[derive(Debug, Default)]
struct OutQueue {
    chunks: VecDeque<Bytes>,
    scratch: BytesMut,
    len: usize,
}

impl OutQueue {
    fn push(&mut self, b: Bytes) {
        if b.is_empty() {
            return;
        }
        self.seal();
        self.len += b.len();
        self.chunks.push_back(b);
    }

    /// Moves encoded bytes into the chunk list so a later push lands after them.
    fn seal(&mut self) {
        if !self.scratch.is_empty() {
            let s = self.scratch.split().freeze();
            self.len += s.len();
            self.chunks.push_back(s);
        }
    }

    fn is_empty(&self) -> bool {
        self.chunks.is_empty() && self.scratch.is_empty()
    }

    fn len(&self) -> usize {
        self.len + self.scratch.len()
    }

    fn advance(&mut self, mut n: usize) {
        while n > 0 {
            let Some(front) = self.chunks.front_mut() else {
                self.scratch.advance(n);
                return;
            };
            let take = n.min(front.len());
            front.advance(take);
            self.len -= take;
            n -= take;
            if front.is_empty() {
                self.chunks.pop_front();
            }
        }
    }
}

/// A PostgreSQL protocol connection, either to a client or to a server.
#[derive(Debug)]
pub struct Conn {
    stream: Stream,
    rbuf: BytesMut,
    out: OutQueue,
    max_message: usize,
    bytes_read: u64,
    bytes_written: u64,
}

impl Conn {
    /// Wraps a stream whose startup negotiation (if any) is done or not needed.
    pub fn new(stream: Stream) -> Self {
        Conn {
            stream,
            rbuf: BytesMut::new(),
            out: OutQueue::default(),
            max_message: DEFAULT_MAX_MESSAGE,
            bytes_read: 0,
            bytes_written: 0,
        }
    }

    /// Bytes read from and written to the socket so far (statistics).
    pub fn bytes(&self) -> (u64, u64) {
        (self.bytes_read, self.bytes_written)
    }

    /// Sets the largest message this connection accepts (tag and length
    /// included). Longer messages fail with [`Error::TooLong`] before any
    /// space is reserved for them.
    pub fn set_max_message(&mut self, max: usize) {
        self.max_message = max.max(HEADER_LEN);
    }

    /// The largest message this connection accepts.
    pub fn max_message(&self) -> usize {
        self.max_message
    }

    /// The underlying stream.
    pub fn stream(&self) -> &Stream {
        &self.stream
    }

    /// Mutable access to the stream, for health probes.
    pub fn stream_mut(&mut self) -> &mut Stream {
        &mut self.stream
    }

    /// Gives the stream back, for a TLS upgrade. Buffered input must be empty:
    /// bytes that arrived before the handshake must never be trusted as if
    /// they came through it (CVE-2021-23214).
    pub fn into_stream(self) -> Result<Stream> {
        if !self.rbuf.is_empty() {
            return Err(Error::Unexpected {
                tag: self.rbuf[0] as char,
                context: "buffered before the TLS handshake",
            });
        }
        Ok(self.stream)
    }

    // ---- reading ----

    /// Bytes received but not yet consumed.
    pub fn buffered(&self) -> &[u8] {
        &self.rbuf
    }

    /// The read buffer itself, for the relay, which consumes runs of
    /// messages from it with `split_to`.
    pub fn rbuf_mut(&mut self) -> &mut BytesMut {
        &mut self.rbuf
    }

    /// Reads more bytes into the buffer. Returns the count read; 0 means EOF.
    ///
    /// # Cancel safety
    /// Safe: bytes are appended to the buffer as they arrive, nothing is lost
    /// if the future is dropped.
    pub fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<Result<usize>> {
        self.reserve_for_next();
        let n = ready!(tokio_util::io::poll_read_buf(
            Pin::new(&mut self.stream),
            cx,
            &mut self.rbuf
        ))?;
        self.bytes_read += n as u64;
        Poll::Ready(Ok(n))
    }

    /// Makes room for the next read: enough for the whole pending message
    /// when its header is known (so one read can complete it), else a chunk.
    fn reserve_for_next(&mut self) {
        let need = match frame::header(&self.rbuf, self.max_message) {
            Ok(Some(h)) if h.len > self.rbuf.len() => (h.len - self.rbuf.len()).min(1 << 20),
            _ => 0,
        };
        let spare = self.rbuf.capacity() - self.rbuf.len();
        if spare < need || spare < 1024 {
            self.rbuf.reserve(need.max(READ_CHUNK));
        }
    }

    /// Waits for more bytes. EOF is an error: [`Error::Closed`] when it falls
    /// between messages, [`Error::UnexpectedEof`] when it cuts one.
    ///
    /// # Cancel safety
    /// Safe, like [`Conn::poll_fill`].
    pub async fn fill(&mut self) -> Result<()> {
        let n = std::future::poll_fn(|cx| self.poll_fill(cx)).await?;
        self.filled(n)
    }

    /// Like [`Conn::fill`], for a connection that may sit idle for a long
    /// time (a pooled client between transactions): while nothing is
    /// buffered and nothing has arrived, its buffers are freed, and allocated
    /// again when data arrives, so thousands of idle clients do not each pin
    /// a read chunk.
    ///
    /// # Cancel safety
    /// Safe, like [`Conn::poll_fill`].
    pub async fn fill_idle(&mut self) -> Result<()> {
        let n = std::future::poll_fn(|cx| {
            let r = self.poll_fill(cx);
            if r.is_pending() && self.rbuf.is_empty() {
                // The socket has our waker; nothing needs the buffer until
                // it fires.
                self.shrink_idle();
            }
            r
        })
        .await?;
        self.filled(n)
    }

    fn filled(&self, n: usize) -> Result<()> {
        if n == 0 {
            return Err(if self.rbuf.is_empty() {
                Error::Closed
            } else {
                Error::UnexpectedEof
            });
        }
        Ok(())
    }

    /// Splits one whole message off the buffer, if one is there.
    pub fn try_next(&mut self) -> Result<Option<Message>> {
        let Some(h) = frame::header(&self.rbuf, self.max_message)? else {
            return Ok(None);
        };
        if self.rbuf.len() < h.len {
            return Ok(None);
        }
        let mut msg = self.rbuf.split_to(h.len);
        msg.advance(HEADER_LEN);
        Ok(Some(Message {
            tag: h.tag,
            body: msg.freeze(),
        }))
    }

    /// Reads the next whole message.
    ///
    /// # Cancel safety
    /// Safe: a partially received message stays buffered.
    pub async fn read(&mut self) -> Result<Message> {
        loop {
            if let Some(m) = self.try_next()? {
                return Ok(m);
            }
            self.fill().await?;
        }
    }

    /// Reads one untagged startup-family packet and returns what follows its
    /// length field (the protocol code and payload). Bounded by
    /// [`frame::MAX_STARTUP_PACKET`].
    ///
    /// When nothing is buffered this reads exactly the packet's bytes from
    /// the socket and no more, so after an SSLRequest no client byte can sit
    /// in our buffer ahead of the TLS handshake.
    pub async fn read_startup(&mut self) -> Result<Bytes> {
        if self.rbuf.is_empty() {
            let mut prefix = [0u8; 4];
            read_exact(&mut self.stream, &mut prefix).await?;
            let len = frame::startup_len(prefix)?;
            let mut body = vec![0u8; len - 4];
            read_exact(&mut self.stream, &mut body).await?;
            return Ok(Bytes::from(body));
        }
        while self.rbuf.len() < 4 {
            self.fill().await?;
        }
        let len = frame::startup_len([self.rbuf[0], self.rbuf[1], self.rbuf[2], self.rbuf[3]])?;
        while self.rbuf.len() < len {
            self.fill().await?;
        }
        let mut pkt = self.rbuf.split_to(len);
        pkt.advance(4);
        Ok(pkt.freeze())
    }

    /// Frees the read and write buffers when they hold nothing.
    pub fn shrink_idle(&mut self) {
        if self.rbuf.is_empty() && self.rbuf.capacity() > 0 {
            self.rbuf = BytesMut::new();
        }
        if self.out.is_empty() {
            self.out.scratch = BytesMut::new();
            self.out.chunks = VecDeque::new();
        }
    }

    // ---- writing ----

    /// The buffer to encode outgoing messages into. They are sent, after
    /// anything queued before them, at the next flush.
    pub fn out(&mut self) -> &mut BytesMut {
        &mut self.out.scratch
    }

    /// Queues an already-framed run of messages without copying it.
    pub fn push(&mut self, bytes: Bytes) {
        self.out.push(bytes);
    }

    /// Bytes waiting to be written.
    pub fn pending_out(&self) -> usize {
        self.out.len()
    }

    /// Writes queued bytes until none remain or the socket would block.
    ///
    /// # Cancel safety
    /// Safe: unwritten bytes stay queued.
    pub fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        while !self.out.is_empty() {
            let n = if self.out.chunks.is_empty() {
                ready!(Pin::new(&mut self.stream).poll_write(cx, &self.out.scratch))?
            } else {
                let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
                let mut k = 0;
                for c in self.out.chunks.iter().take(MAX_IOVECS - 1) {
                    slices[k] = IoSlice::new(c);
                    k += 1;
                }
                // The encoded bytes come after every queued slice: only
                // when all of them are in this write may they join it.
                if k == self.out.chunks.len() && !self.out.scratch.is_empty() {
                    slices[k] = IoSlice::new(&self.out.scratch);
                    k += 1;
                }
                ready!(Pin::new(&mut self.stream).poll_write_vectored(cx, &slices[..k]))?
            };
            if n == 0 {
                return Poll::Ready(Err(Error::Io(std::io::ErrorKind::WriteZero.into())));
            }
            self.out.advance(n);
            self.bytes_written += n as u64;
        }
        ready!(Pin::new(&mut self.stream).poll_flush(cx))?;
        Poll::Ready(Ok(()))
    }

    /// Writes everything queued.
    ///
    /// # Cancel safety
    /// Safe: unwritten bytes stay queued.
    pub async fn flush(&mut self) -> Result<()> {
        std::future::poll_fn(|cx| self.poll_flush(cx)).await
    }

    /// Flushes, then closes the write side. Errors are ignored: this is used
    /// on connections we are giving up on.
    pub async fn shutdown(&mut self) {
        let _ = self.flush().await;
        let _ = self.stream.shutdown().await;
    }
}

async fn read_exact(stream: &mut Stream, buf: &mut [u8]) -> Result<()> {
    match stream.read_exact(buf).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(Error::UnexpectedEof),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::UnixStream;

    fn pair() -> (Conn, UnixStream) {
        let (a, b) = UnixStream::pair().unwrap();
        (Conn::new(Stream::from(a)), b)
    }

    #[tokio::test]
    async fn reads_messages_split_across_writes() {
        let (mut conn, mut peer) = pair();
        tokio::spawn(async move {
            peer.write_all(b"Z\0\0\0").await.unwrap();
            tokio::task::yield_now().await;
            peer.write_all(b"\x05IQ\0\0\0\x05x").await.unwrap();
            peer.shutdown().await.unwrap();
        });
        let m = conn.read().await.unwrap();
        assert_eq!((m.tag, &m.body[..]), (b'Z', &b"I"[..]));
        let m = conn.read().await.unwrap();
        assert_eq!((m.tag, &m.body[..]), (b'Q', &b"x"[..]));
        assert!(matches!(conn.read().await, Err(Error::Closed)));
    }

    #[tokio::test]
    async fn eof_inside_a_message_is_an_error() {
        let (mut conn, mut peer) = pair();
        peer.write_all(b"Q\0\0\0\x09SEL").await.unwrap();
        drop(peer);
        assert!(matches!(conn.read().await, Err(Error::UnexpectedEof)));
    }

    #[tokio::test]
    async fn oversized_message_is_refused_from_its_header() {
        let (mut conn, mut peer) = pair();
        conn.set_max_message(64);
        peer.write_all(b"D\0\0\x10\0").await.unwrap();
        assert!(matches!(
            conn.read().await,
            Err(Error::TooLong { len: 4097, max: 64 })
        ));
    }

    #[tokio::test]
    async fn startup_packet_bounds_and_exact_read() {
        let (mut conn, mut peer) = pair();
        // SSLRequest followed by bytes that must stay in the socket.
        peer.write_all(&[0, 0, 0, 8, 4, 210, 22, 47, b'X'])
            .await
            .unwrap();
        let body = conn.read_startup().await.unwrap();
        assert_eq!(&body[..], &[4, 210, 22, 47]);
        assert!(conn.buffered().is_empty());

        let (mut conn, mut peer) = pair();
        peer.write_all(&100_000i32.to_be_bytes()).await.unwrap();
        assert!(matches!(
            conn.read_startup().await,
            Err(Error::TooLong { .. })
        ));
    }

    #[tokio::test]
    async fn queued_slices_and_encoded_bytes_keep_their_order() {
        let (mut conn, mut peer) = pair();
        conn.out().extend_from_slice(b"one ");
        conn.push(Bytes::from_static(b"two "));
        conn.out().extend_from_slice(b"three ");
        conn.push(Bytes::from_static(b"four"));
        assert_eq!(conn.pending_out(), 18);
        conn.flush().await.unwrap();
        assert_eq!(conn.pending_out(), 0);
        drop(conn);
        let mut got = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut peer, &mut got)
            .await
            .unwrap();
        assert_eq!(got, b"one two three four");
    }

    /// More queued slices than one vectored write takes, then encoded
    /// bytes: those must not jump ahead of the slices left for the next
    /// write (they did, and PostgreSQL read a Bind's bytes where a message
    /// type belongs in a long pgjdbc batch).
    #[tokio::test]
    async fn encoded_bytes_wait_for_every_queued_slice() {
        let (mut conn, mut peer) = pair();
        let mut expected = Vec::new();
        for i in 0..(3 * MAX_IOVECS) {
            let chunk = format!("slice {i};");
            expected.extend_from_slice(chunk.as_bytes());
            conn.push(Bytes::from(chunk));
        }
        conn.out().extend_from_slice(b"encoded last");
        expected.extend_from_slice(b"encoded last");
        conn.flush().await.unwrap();
        drop(conn);
        let mut got = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut peer, &mut got)
            .await
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&expected)
        );
    }

    #[tokio::test]
    async fn an_idle_wait_holds_no_buffers() {
        let (mut conn, mut peer) = pair();
        peer.write_all(b"Q\0\0\0\x05\0").await.unwrap();
        conn.fill_idle().await.unwrap();
        assert!(
            conn.rbuf.capacity() > 0,
            "a busy connection keeps its buffer"
        );
        conn.read().await.unwrap();
        conn.out().extend_from_slice(b"reply");
        conn.flush().await.unwrap();

        // Nothing arrives: the wait frees both buffers ...
        {
            let wait = conn.fill_idle();
            tokio::pin!(wait);
            assert!(futures_poll_once(wait.as_mut()).await.is_none());
        }
        assert_eq!(conn.rbuf.capacity(), 0);
        assert_eq!(conn.out.scratch.capacity(), 0);
        // ... and a message arriving later is read whole.
        peer.write_all(b"X\0\0\0\x04").await.unwrap();
        assert_eq!(conn.read().await.unwrap().tag, b'X');
    }

    /// Polls a future once.
    async fn futures_poll_once<F: std::future::Future + Unpin>(mut f: F) -> Option<F::Output> {
        std::future::poll_fn(|cx| match Pin::new(&mut f).poll(cx) {
            Poll::Ready(v) => Poll::Ready(Some(v)),
            Poll::Pending => Poll::Ready(None),
        })
        .await
    }
}
