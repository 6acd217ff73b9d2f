//! Hooks on the relay: each middleware sees the messages whose tags it asked
//! for, whole, and may pass, drop or replace them, or inject new ones in
//! either direction.
//!
//! Only the tags a middleware names are decoded at all; everything else is
//! forwarded in runs without being looked at. Middlewares are concrete types
//! combined by the caller (a tuple implements the trait), not boxed trait
//! objects, so the relay's per-message dispatch is static.

pub mod eqp;
pub mod ps;
pub mod unterminate;

use bytes::{Bytes, BytesMut};

use crate::conn::Conn;
use crate::frame::TagSet;
use crate::messages::{Severity, backend, frontend};
use crate::pipeline::{Pipeline, Swallow};
use crate::sqlstate::SqlState;

/// The first two C strings of a body and what follows them: a Bind's
/// portal and statement names, without decoding its parameters.
pub(crate) fn split_two_cstrs(body: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let mut r = crate::codec::Reader::new(body);
    Some((r.cstr().ok()?, r.cstr().ok()?, r.rest()))
}

/// What to do with the message a hook was shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Forward it (after anything the hook injected).
    Pass,
    /// Do not forward it. The hook may have injected a replacement.
    Drop,
    /// Do not forward it, and end the relay once pending output is flushed;
    /// the message is handed to the relay's caller.
    Stop,
}

/// What a hook may touch besides the message itself.
pub struct Ctx<'a> {
    pub(crate) client: &'a mut Conn,
    pub(crate) server: &'a mut Conn,
    pub(crate) pipeline: &'a mut Pipeline,
}

impl Ctx<'_> {
    /// Encodes messages towards the client. They are sent before the message
    /// under inspection (if it passes).
    pub fn to_client(&mut self) -> &mut BytesMut {
        self.client.out()
    }

    /// Encodes messages towards the server with `encode`. They are sent
    /// before the message under inspection (if it passes), and accounted in
    /// the pipeline so their responses are expected.
    pub fn to_server(&mut self, encode: impl FnOnce(&mut BytesMut)) {
        self.encode_to_server(encode, Swallow::Nothing);
    }

    /// Injects messages towards the server, encoded by `encode`, whose
    /// success responses are swallowed: the client never asked for them.
    /// Errors still reach the client, in place of the response to the
    /// message under inspection.
    pub fn inject(&mut self, encode: impl FnOnce(&mut BytesMut)) {
        self.encode_to_server(encode, Swallow::Success);
    }

    /// Injects messages towards the server whose every response, errors
    /// included, is swallowed: groundwork whose failure shows in what the
    /// client's own next message gets.
    pub fn inject_unseen(&mut self, encode: impl FnOnce(&mut BytesMut)) {
        self.encode_to_server(encode, Swallow::All);
    }

    /// Makes the server fail the current extended-protocol batch without the
    /// client seeing that error (it was answered with a synthetic one): the
    /// server then skips to the next Sync and leaves an explicit transaction
    /// failed, exactly as after a real error. Executes a portal no client
    /// names (its name starts with a control character).
    pub fn inject_failing(&mut self) {
        let failing = frontend::Execute {
            portal: b"\x01pggat",
            max_rows: 0,
        };
        self.encode_to_server(|b| failing.encode(b), Swallow::All);
    }

    fn encode_to_server(&mut self, encode: impl FnOnce(&mut BytesMut), swallow: Swallow) {
        let out = self.server.out();
        let start = out.len();
        encode(out);
        self.pipeline.record_sent(&out[start..], swallow);
    }

    /// Answers the message under inspection (which the hook then drops) with
    /// `response`, delivered to the client in order: after everything the
    /// server owes for earlier messages. Nothing is sent when the server is
    /// skipping to the next Sync after an error, as PostgreSQL would have
    /// ignored the message too.
    pub fn reply(&mut self, response: Bytes) {
        self.pipeline.push_synthetic(response);
    }

    /// Answers the simple Query under inspection (which the hook then
    /// drops; nothing may be owed ahead of it) as PostgreSQL answers a
    /// statement that succeeded: CommandComplete with `tag`, then
    /// ReadyForQuery with the transaction's status, which it leaves as is.
    pub fn complete_query(&mut self, tag: &[u8]) {
        debug_assert!(!self.pipeline.owes());
        let mut b = BytesMut::new();
        backend::CommandComplete { tag }.encode(&mut b);
        backend::ReadyForQuery {
            status: self.pipeline.status().as_byte(),
        }
        .encode(&mut b);
        self.pipeline.push_answer(b.freeze());
    }

    /// Answers the extended-protocol message under inspection (which the
    /// hook then drops) with an error, in order, and makes the server fail
    /// the batch as well, so the transaction ends up in the state it would
    /// be in had PostgreSQL raised the error itself.
    pub fn refuse(&mut self, code: SqlState, message: &str, hint: Option<&str>) -> Verdict {
        let mut err = BytesMut::new();
        backend::ErrorResponse::encode_parts(&mut err, Severity::Error, code, message, None, hint);
        self.reply(err.freeze());
        self.inject_failing();
        Verdict::Drop
    }

    /// Counts a prepared-statement event in the server's statistics.
    pub fn count(&mut self, event: crate::Prepared) {
        self.pipeline.count_prepared(event);
    }

    /// The server's protocol state.
    pub fn pipeline(&self) -> &Pipeline {
        self.pipeline
    }
}

/// A relay hook.
pub trait Middleware {
    /// Tags of client→server messages to show to [`Middleware::on_client`].
    fn client_tags(&self) -> TagSet {
        TagSet::EMPTY
    }

    /// Tags of server→client messages to show to [`Middleware::on_server`].
    fn server_tags(&self) -> TagSet {
        TagSet::EMPTY
    }

    /// A client message (`body` excludes tag and length).
    fn on_client(&mut self, _tag: u8, _body: &[u8], _ctx: &mut Ctx<'_>) -> Verdict {
        Verdict::Pass
    }

    /// A server message (`body` excludes tag and length).
    fn on_server(&mut self, _tag: u8, _body: &[u8], _ctx: &mut Ctx<'_>) -> Verdict {
        Verdict::Pass
    }

    /// In transaction mode, keeps the server past the end of a transaction
    /// (session state pins it to the client). Asked at each ReadyForQuery
    /// that leaves the server idle.
    fn hold(&self) -> bool {
        false
    }
}

impl<M: Middleware + ?Sized> Middleware for &mut M {
    fn client_tags(&self) -> TagSet {
        (**self).client_tags()
    }
    fn server_tags(&self) -> TagSet {
        (**self).server_tags()
    }
    fn on_client(&mut self, tag: u8, body: &[u8], ctx: &mut Ctx<'_>) -> Verdict {
        (**self).on_client(tag, body, ctx)
    }
    fn on_server(&mut self, tag: u8, body: &[u8], ctx: &mut Ctx<'_>) -> Verdict {
        (**self).on_server(tag, body, ctx)
    }
    fn hold(&self) -> bool {
        (**self).hold()
    }
}

/// No hooks at all.
impl Middleware for () {}

macro_rules! tuple_middleware {
    ($($name:ident . $idx:tt),+) => {
        /// Runs each element in order; the first verdict other than
        /// [`Verdict::Pass`] wins and later elements do not see the message.
        impl<$($name: Middleware),+> Middleware for ($($name,)+) {
            fn client_tags(&self) -> TagSet {
                TagSet::EMPTY$(.union(self.$idx.client_tags()))+
            }
            fn server_tags(&self) -> TagSet {
                TagSet::EMPTY$(.union(self.$idx.server_tags()))+
            }
            fn on_client(&mut self, tag: u8, body: &[u8], ctx: &mut Ctx<'_>) -> Verdict {
                $(
                    if self.$idx.client_tags().contains(tag) {
                        let v = self.$idx.on_client(tag, body, ctx);
                        if v != Verdict::Pass {
                            return v;
                        }
                    }
                )+
                Verdict::Pass
            }
            fn on_server(&mut self, tag: u8, body: &[u8], ctx: &mut Ctx<'_>) -> Verdict {
                $(
                    if self.$idx.server_tags().contains(tag) {
                        let v = self.$idx.on_server(tag, body, ctx);
                        if v != Verdict::Pass {
                            return v;
                        }
                    }
                )+
                Verdict::Pass
            }
            fn hold(&self) -> bool {
                false $(|| self.$idx.hold())+
            }
        }
    };
}

tuple_middleware!(A.0);
tuple_middleware!(A.0, B.1);
tuple_middleware!(A.0, B.1, C.2);
tuple_middleware!(A.0, B.1, C.2, D.3);
tuple_middleware!(A.0, B.1, C.2, D.3, E.4);
