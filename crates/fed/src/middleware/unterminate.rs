//! unterminate: a client's Terminate ends the client's session, never the
//! pooled server's. The relay stops at it and the server goes back to the pool.

use super::{Ctx, Middleware, Verdict};
use crate::frame::TagSet;

/// Swallows Terminate and stops the relay there.
#[derive(Clone, Copy, Debug, Default)]
pub struct Unterminate;

impl Middleware for Unterminate {
    fn client_tags(&self) -> TagSet {
        TagSet::of(b"X")
    }

    fn on_client(&mut self, _tag: u8, _body: &[u8], _ctx: &mut Ctx<'_>) -> Verdict {
        Verdict::Stop
    }
}
