//! eqp: protocol-level prepared statements that survive server switches.
//!
//! In transaction pooling a client's next transaction may run on another
//! server, where the statements it prepared do not exist. eqp renames every
//! named statement after its content (query text and parameter types), so the
//! same statement prepared by many clients is one statement per server, and
//! makes sure the server a client is on has it before it is used:
//!
//! - Parse of a new name: remembered for the client, sent under the content
//!   name; when the server already has that statement the Parse is answered
//!   here (ParseComplete, in order) and never sent.
//! - Bind or Describe of a known name on a server that lacks it: the Parse is
//!   injected first (behind a Close of the same name, which makes it safe even
//!   when our bookkeeping is unsure) and its responses swallowed. If that
//!   Parse fails now (a table was dropped since), the error reaches the client
//!   in place of the Bind's response, as it would have on a direct connection.
//! - Close of a statement: forgotten for the client, answered here; the server
//!   keeps the shared statement.
//! - The unnamed statement is passed through, and re-parsed on a server whose
//!   unnamed statement is someone else's. Like PostgreSQL, a simple Query or
//!   a failed Parse leaves the client without one.
//! - Each server keeps at most `capacity` statements; the least recently used
//!   is closed when another one is needed.
//! - DISCARD ALL and DEALLOCATE ALL (seen by their CommandComplete) empty both
//!   the client's names and the server's statements.
//! - SQL `DEALLOCATE [PREPARE] name` of a protocol-level statement (the two
//!   share one namespace in PostgreSQL): as a simple Query it is answered
//!   here, the name forgotten, unless the transaction has failed (then the
//!   server refuses it as it would directly); prepared as a statement of its
//!   own (pgjdbc, tokio-postgres run everything that way), its text is
//!   rewritten to the server-side name, which the server is made to have.
//!   Only a query string that is that one statement is recognised.
//!
//! A Bind or Describe of a statement the client does not have is answered
//! with PostgreSQL's error and never reaches the shared server, which may hold
//! something under that name for someone else.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};

use super::{Ctx, Middleware, Verdict, split_two_cstrs};
use crate::Prepared;
use crate::codec;
use crate::frame::TagSet;
use crate::messages::{backend, frontend};
use crate::sqlstate::SqlState;

/// Statements a server keeps when the pool does not say.
pub const DEFAULT_CAPACITY: usize = 1000;

/// A statement, identified by its content.
#[derive(Debug)]
pub struct Statement {
    hash: u128,
    /// The name it has on servers.
    name: Box<[u8]>,
    /// The Parse frame that creates it under that name.
    parse: Bytes,
}

impl Statement {
    /// From the body of a client's Parse: everything after the name is the
    /// content. `named` chooses the server-side name (else the unnamed one).
    fn new(parse_body: &[u8], name_len: usize, named: bool) -> Statement {
        let content = &parse_body[name_len + 1..];
        let hash = content_hash(content);
        let name = if named {
            server_name(hash)
        } else {
            Box::default()
        };
        let mut frame = BytesMut::with_capacity(content.len() + name.len() + 6);
        let mark = codec::begin(&mut frame, b'P');
        codec::put_cstr(&mut frame, &name);
        frame.extend_from_slice(content);
        codec::finish(&mut frame, mark);
        Statement {
            hash,
            name,
            parse: frame.freeze(),
        }
    }

    /// The name it has on servers.
    pub fn server_name(&self) -> &[u8] {
        &self.name
    }
}

/// The name a statement has on servers.
fn server_name(hash: u128) -> Box<[u8]> {
    format!("pggat_{hash:032x}").into_bytes().into()
}

/// Whether `sql` may begin with the keyword DEALLOCATE: it does, or it
/// begins with a comment, which only the lexer can see past.
fn may_be_deallocate(sql: &[u8]) -> bool {
    let start = sql.iter().position(|b| !b.is_ascii_whitespace());
    let rest = start.map_or(&[][..], |i| &sql[i..]);
    rest.starts_with(b"--")
        || rest.starts_with(b"/*")
        || rest
            .get(..10)
            .is_some_and(|w| w.eq_ignore_ascii_case(b"deallocate"))
}

/// 128 bits of two differently seeded SipHashes: collisions would make two
/// different statements share a server-side name, so 64 bits are not enough
/// for a pool that sees millions of distinct statements.
fn content_hash(content: &[u8]) -> u128 {
    let half = |seed: u8| {
        let mut h = std::hash::DefaultHasher::new();
        seed.hash(&mut h);
        content.hash(&mut h);
        h.finish()
    };
    (u128::from(half(1)) << 64) | u128::from(half(2))
}

/// Statement contents some server of the pool has parsed successfully: a
/// client's Parse of one of them needs no server to be answered (it cannot
/// fail), so a client that prepares between transactions does not wait for
/// a server, and cannot deadlock against its own other connections that hold
/// servers (pgbench -M prepared prepares synchronously from one thread).
#[derive(Debug, Default)]
pub struct Known(Mutex<HashSet<u128>>);

/// Most contents remembered per pool; the set starts over beyond it.
const KNOWN_LIMIT: usize = 100_000;

impl Known {
    fn insert(&self, hash: u128) {
        let mut set = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if set.len() >= KNOWN_LIMIT {
            set.clear();
        }
        set.insert(hash);
    }

    fn contains(&self, hash: u128) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&hash)
    }
}

/// A named Parse sent for the client: its name and content.
type Awaited = (Box<[u8]>, u128);

/// One client's statements, by the names it gave them. The map is shared on
/// clone and copied only when one copy changes: a hybrid pool snapshots it
/// before every transaction it might replay.
#[derive(Clone, Debug, Default)]
pub struct ClientStatements {
    named: Arc<HashMap<Box<[u8]>, Arc<Statement>>>,
    unnamed: Option<Arc<Statement>>,
    /// The client's Parses sent and not yet answered, with their batch: a
    /// name whose Parse fails (or is skipped after an error) does not exist.
    awaiting: VecDeque<(u64, Option<Awaited>)>,
}

impl ClientStatements {
    /// Number of named statements.
    pub fn len(&self) -> usize {
        self.named.len()
    }

    /// Whether the client has no named statements.
    pub fn is_empty(&self) -> bool {
        self.named.is_empty()
    }

    fn clear(&mut self) {
        if !self.named.is_empty() {
            Arc::make_mut(&mut self.named).clear();
        }
        self.unnamed = None;
    }

    /// The query text of the client's statement `name` (`b""` for the
    /// unnamed one), to decide where a transaction that begins by binding
    /// it should run.
    pub fn query_of(&self, name: &[u8]) -> Option<&[u8]> {
        let stmt = if name.is_empty() {
            self.unnamed.as_ref()?
        } else {
            self.named.get(name)?
        };
        frontend::Parse::decode(&stmt.parse[crate::frame::HEADER_LEN..])
            .ok()
            .map(|p| p.query)
    }

    /// Whether a Parse can be answered without a server, because that
    /// cannot change the outcome: a new name for a statement the pool has
    /// parsed before.
    pub fn can_parse_locally(&self, body: &[u8], known: &Known) -> bool {
        let Ok(parse) = frontend::Parse::decode(body) else {
            return false;
        };
        let name_len = parse.statement.len();
        name_len > 0
            && !self.named.contains_key(parse.statement)
            && known.contains(content_hash(&body[name_len + 1..]))
    }

    /// Records a Parse [`ClientStatements::can_parse_locally`] allowed.
    pub fn parse_locally(&mut self, body: &[u8]) {
        if let Ok(parse) = frontend::Parse::decode(body) {
            let stmt = Statement::new(body, parse.statement.len(), true);
            Arc::make_mut(&mut self.named).insert(parse.statement.into(), Arc::new(stmt));
        }
    }

    /// The client's statement a query string that is one `DEALLOCATE
    /// [PREPARE] name` removes, with its name; `None` for any other text
    /// (cheaply: only text that may start with the keyword is lexed).
    fn deallocated(&self, sql: &[u8]) -> Option<(Box<[u8]>, Arc<Statement>)> {
        if self.named.is_empty() || !may_be_deallocate(sql) {
            return None;
        }
        let mut stmts = crate::sql::statements(sql);
        let (Some(only), None) = (stmts.next(), stmts.next()) else {
            return None;
        };
        let crate::sql::Effect::Deallocate { name } = crate::sql::classify(only) else {
            return None;
        };
        let (name, stmt) = self.named.get_key_value(name.as_bytes())?;
        Some((name.clone(), stmt.clone()))
    }

    /// Answers a simple Query between transactions when it is a
    /// `DEALLOCATE` of one of the client's statements (see the module
    /// docs): the name is forgotten and `replies` gets what PostgreSQL
    /// answers outside a transaction. False, untouched, for anything else.
    pub fn deallocate_locally(&mut self, query_body: &[u8], replies: &mut BytesMut) -> bool {
        let sql = query_body.strip_suffix(b"\0").unwrap_or(query_body);
        let Some((name, _)) = self.deallocated(sql) else {
            return false;
        };
        Arc::make_mut(&mut self.named).remove(&name);
        // PostgreSQL drops the unnamed statement at every simple query.
        self.unnamed = None;
        backend::CommandComplete { tag: b"DEALLOCATE" }.encode(replies);
        backend::ReadyForQuery { status: b'I' }.encode(replies);
        true
    }

    /// Whether a Close can be answered without a server: forgetting a named
    /// statement (servers keep theirs), or closing a portal, which never
    /// outlives a transaction.
    pub fn can_close_locally(body: &[u8]) -> bool {
        frontend::Close::decode(body).is_ok_and(|c| c.kind == b'P' || !c.name.is_empty())
    }

    /// Records a Close [`ClientStatements::can_close_locally`] allowed.
    pub fn close_locally(&mut self, body: &[u8]) {
        if let Ok(c) = frontend::Close::decode(body)
            && c.kind == b'S'
        {
            Arc::make_mut(&mut self.named).remove(c.name);
        }
    }
}

/// The statements one server has, least recently used first out.
///
/// Each statement carries the tick of its last use: using one (every Bind)
/// is a map update, and the oldest is only searched for when the server is
/// full and another must come in.
#[derive(Debug)]
pub struct ServerStatements {
    capacity: usize,
    last_used: HashMap<u128, u64>,
    tick: u64,
    /// Content of the server's unnamed statement, when known.
    unnamed: Option<u128>,
    /// Statements parsed and the batch they were sent in, until that batch
    /// is answered: an error in it may have made the server skip the Parse.
    unconfirmed: Vec<(u64, u128)>,
}

impl Default for ServerStatements {
    fn default() -> Self {
        ServerStatements::with_capacity(DEFAULT_CAPACITY)
    }
}

impl ServerStatements {
    /// Keeps at most `capacity` statements (at least one).
    pub fn with_capacity(capacity: usize) -> Self {
        ServerStatements {
            capacity: capacity.max(1),
            last_used: HashMap::new(),
            tick: 0,
            unnamed: None,
            unconfirmed: Vec::new(),
        }
    }

    /// Number of statements the server has.
    pub fn len(&self) -> usize {
        self.last_used.len()
    }

    /// Whether it has none.
    pub fn is_empty(&self) -> bool {
        self.last_used.is_empty()
    }

    /// Forgets the unnamed statement: a simple Query the pooler sent itself
    /// dropped it on the server.
    pub fn forget_unnamed(&mut self) {
        self.unnamed = None;
    }

    /// The server failed batch `batch` (an ErrorResponse answered it): it may
    /// have skipped that batch's Parses, so they are forgotten (re-preparing
    /// is always safe), and with them the unnamed statement. Called by eqp,
    /// and by whoever drains a server no client is relaying to.
    pub fn batch_failed(&mut self, batch: u64) {
        let mut i = 0;
        while i < self.unconfirmed.len() {
            let (b, h) = self.unconfirmed[i];
            if b == batch {
                self.unconfirmed.swap_remove(i);
                self.remove(h);
            } else {
                i += 1;
            }
        }
        self.unnamed = None;
    }

    /// Batches before `done` are answered: their Parses are confirmed.
    pub fn batches_done(&mut self, done: u64) {
        self.unconfirmed.retain(|(b, _)| *b >= done);
    }

    /// Forgets everything: the session was reset (DISCARD ALL).
    pub fn clear(&mut self) {
        self.last_used.clear();
        self.unnamed = None;
        self.unconfirmed.clear();
    }

    fn has(&mut self, hash: u128) -> bool {
        let Some(t) = self.last_used.get_mut(&hash) else {
            return false;
        };
        self.tick += 1;
        *t = self.tick;
        true
    }

    /// Records a statement sent to the server in `batch`; returns the one to
    /// close to stay within capacity.
    fn insert(&mut self, hash: u128, batch: u64) -> Option<u128> {
        let evicted = if self.last_used.len() >= self.capacity {
            let oldest = self
                .last_used
                .iter()
                .min_by_key(|(_, t)| **t)
                .map(|(h, _)| *h);
            oldest.inspect(|h| {
                self.last_used.remove(h);
            })
        } else {
            None
        };
        self.tick += 1;
        self.last_used.insert(hash, self.tick);
        self.unconfirmed.push((batch, hash));
        evicted
    }

    fn remove(&mut self, hash: u128) {
        self.last_used.remove(&hash);
    }
}

/// The eqp hook for one client on one server.
pub struct Eqp<'a> {
    client: &'a mut ClientStatements,
    server: &'a mut ServerStatements,
    known: &'a Known,
    on: bool,
}

impl<'a> Eqp<'a> {
    /// Tracks `client`'s statements on the server whose state is `server`;
    /// contents that parse successfully are added to the pool's `known`.
    pub fn new(
        client: &'a mut ClientStatements,
        server: &'a mut ServerStatements,
        known: &'a Known,
    ) -> Self {
        Eqp {
            client,
            server,
            known,
            on: true,
        }
    }

    /// Switched off (`extended_query_sync off`): statements pass through
    /// untouched, as in a pooler without prepared-statement support, and
    /// nothing is inspected.
    pub fn off(mut self) -> Self {
        self.on = false;
        self
    }

    /// Makes sure the server has `stmt` (injecting Close + Parse if not).
    fn ensure(&mut self, stmt: &Statement, ctx: &mut Ctx<'_>) {
        if self.server.has(stmt.hash) {
            return;
        }
        self.make_room(stmt, ctx);
        ctx.inject(|b| b.extend_from_slice(&stmt.parse));
        ctx.count(Prepared::ServerParse);
    }

    /// Records `stmt` as (about to be) parsed on the server, closing the
    /// least recently used statement if that makes too many, and closing
    /// `stmt`'s own name first: the server may still have it when our
    /// bookkeeping forgot it after an error, and closing a missing name is
    /// not an error, so the Parse that follows is safe either way.
    fn make_room(&mut self, stmt: &Statement, ctx: &mut Ctx<'_>) {
        let evicted = self
            .server
            .insert(stmt.hash, ctx.pipeline().batch_sending());
        ctx.inject(|b| {
            if let Some(old) = evicted {
                close_statement(b, &server_name(old));
            }
            close_statement(b, &stmt.name);
        });
    }

    /// Makes sure the server's unnamed statement is the client's; `false`
    /// when the client has none (the caller refuses the message).
    fn ensure_unnamed(&mut self, ctx: &mut Ctx<'_>) -> bool {
        let Some(stmt) = self.client.unnamed.clone() else {
            return false;
        };
        if self.server.unnamed != Some(stmt.hash) {
            self.server.unnamed = Some(stmt.hash);
            ctx.inject(|b| b.extend_from_slice(&stmt.parse));
        }
        true
    }

    /// Answers a Bind or Describe of a statement the client does not have
    /// with PostgreSQL's error, and makes the server fail the batch too. It
    /// is never passed on: the server is shared, and whatever it holds under
    /// that name (another client's unnamed statement, say) is not this
    /// client's.
    fn missing(&mut self, name: &[u8], ctx: &mut Ctx<'_>) -> Verdict {
        let message = if name.is_empty() {
            "unnamed prepared statement does not exist".to_owned()
        } else {
            format!(
                "prepared statement \"{}\" does not exist",
                String::from_utf8_lossy(name)
            )
        };
        ctx.refuse(SqlState::UNDEFINED_PSTATEMENT, &message, None)
    }

    /// A statement whose text is `DEALLOCATE name` of one of the client's
    /// statements would reach the server under a name it does not know:
    /// its text names the server-side statement instead, which the server
    /// is made to have. The client forgets the name now, when it is
    /// prepared, not when it runs (a DEALLOCATE prepared and never run, or
    /// run in a failed transaction, leaves the client without the name
    /// where PostgreSQL would have kept it).
    fn deallocating_parse(
        &mut self,
        parse: &frontend::Parse<'_>,
        body: &[u8],
        ctx: &mut Ctx<'_>,
    ) -> Option<Bytes> {
        if ctx.pipeline().status() == crate::TxStatus::Failed {
            // Refused by the server, whatever the name.
            return None;
        }
        let (name, target) = self.client.deallocated(parse.query)?;
        if name.as_ref() == parse.statement {
            return None;
        }
        self.ensure(&target, ctx);
        let query_end = parse.statement.len() + 1 + parse.query.len() + 1;
        let mut rewritten = BytesMut::with_capacity(body.len() + target.name.len());
        codec::put_cstr(&mut rewritten, parse.statement);
        self.deallocate_on_server(&name, &target, &mut rewritten);
        rewritten.extend_from_slice(&body[query_end..]);
        Some(rewritten.freeze())
    }

    /// Writes the C string of SQL that deallocates `target` on the server,
    /// and forgets the client's `name` for it. The server's copy is
    /// forgotten now too, before the statement runs: that costs at most one
    /// Parse more, later.
    fn deallocate_on_server(&mut self, name: &[u8], target: &Statement, sql: &mut BytesMut) {
        self.server.remove(target.hash);
        Arc::make_mut(&mut self.client.named).remove(name);
        sql.extend_from_slice(b"DEALLOCATE \"");
        sql.extend_from_slice(&target.name);
        sql.extend_from_slice(b"\"\0");
    }

    fn on_parse(&mut self, body: &[u8], ctx: &mut Ctx<'_>) -> Verdict {
        let Ok(parse) = frontend::Parse::decode(body) else {
            return Verdict::Pass;
        };
        if let Some(rewritten) = self.deallocating_parse(&parse, body, ctx) {
            if self.on_parse(&rewritten, ctx) == Verdict::Pass {
                // The unnamed statement: sent as rewritten.
                ctx.to_server(|b| {
                    let mark = codec::begin(b, b'P');
                    b.extend_from_slice(&rewritten);
                    codec::finish(b, mark);
                });
            }
            return Verdict::Drop;
        }
        let name_len = parse.statement.len();
        if name_len == 0 {
            let stmt = Arc::new(Statement::new(body, 0, false));
            self.server.unnamed = Some(stmt.hash);
            self.client.unnamed = Some(stmt);
            self.client
                .awaiting
                .push_back((ctx.pipeline().batch_sending(), None));
            return Verdict::Pass;
        }
        if self.client.named.contains_key(parse.statement) {
            // PostgreSQL refuses to redefine a name, and skips the rest of the
            // batch. Say so in order, then make the server fail too, so the
            // transaction ends up in the state it would be in directly.
            let message = format!(
                "prepared statement \"{}\" already exists",
                String::from_utf8_lossy(parse.statement)
            );
            return ctx.refuse(SqlState::DUPLICATE_PSTATEMENT, &message, None);
        }
        let stmt = Arc::new(Statement::new(body, name_len, true));
        Arc::make_mut(&mut self.client.named).insert(parse.statement.into(), stmt.clone());
        ctx.count(Prepared::ClientParse);
        if self.server.has(stmt.hash) {
            ctx.reply(PARSE_COMPLETE.clone());
            return Verdict::Drop;
        }
        self.make_room(&stmt, ctx);
        self.client.awaiting.push_back((
            ctx.pipeline().batch_sending(),
            Some((parse.statement.into(), stmt.hash)),
        ));
        ctx.to_server(|b| b.extend_from_slice(&stmt.parse));
        ctx.count(Prepared::ServerParse);
        Verdict::Drop
    }

    fn on_bind(&mut self, body: &[u8], ctx: &mut Ctx<'_>) -> Verdict {
        let Some((portal, name, rest)) = split_two_cstrs(body) else {
            return Verdict::Pass;
        };
        if name.is_empty() {
            if self.ensure_unnamed(ctx) {
                return Verdict::Pass;
            }
            return self.missing(name, ctx);
        }
        let Some(stmt) = self.client.named.get(name).cloned() else {
            return self.missing(name, ctx);
        };
        self.ensure(&stmt, ctx);
        ctx.count(Prepared::Bind);
        ctx.to_server(|b| {
            let mark = codec::begin(b, b'B');
            codec::put_cstr(b, portal);
            codec::put_cstr(b, &stmt.name);
            b.extend_from_slice(rest);
            codec::finish(b, mark);
        });
        Verdict::Drop
    }

    fn on_describe(&mut self, body: &[u8], ctx: &mut Ctx<'_>) -> Verdict {
        let Ok(d) = frontend::Describe::decode(body) else {
            return Verdict::Pass;
        };
        if d.kind != b'S' {
            return Verdict::Pass;
        }
        if d.name.is_empty() {
            if self.ensure_unnamed(ctx) {
                return Verdict::Pass;
            }
            return self.missing(d.name, ctx);
        }
        let Some(stmt) = self.client.named.get(d.name).cloned() else {
            return self.missing(d.name, ctx);
        };
        self.ensure(&stmt, ctx);
        ctx.to_server(|b| {
            frontend::Describe {
                kind: b'S',
                name: &stmt.name,
            }
            .encode(b)
        });
        Verdict::Drop
    }

    /// A `DEALLOCATE` of one of the client's statements sent as a simple
    /// Query inside a transaction. With nothing owed, the status it leaves is
    /// known and it is answered here, in order; in a failed transaction it
    /// goes to the server unchanged, which refuses it as it would directly.
    /// Behind queries still running (whose outcome decides whether it
    /// succeeds), the server runs it under the server-side name, readied by
    /// a Parse whose answers nobody sees.
    fn on_query(&mut self, body: &[u8], ctx: &mut Ctx<'_>) -> Verdict {
        let sql = body.strip_suffix(b"\0").unwrap_or(body);
        let Some((name, target)) = self.client.deallocated(sql) else {
            return Verdict::Pass;
        };
        let pipeline = ctx.pipeline();
        if !pipeline.owes() {
            if pipeline.status() == crate::TxStatus::Failed {
                return Verdict::Pass;
            }
            Arc::make_mut(&mut self.client.named).remove(&name);
            ctx.complete_query(b"DEALLOCATE");
            return Verdict::Drop;
        }
        if pipeline.needs_sync() {
            // Inside an extended batch the client has not ended: a Sync of
            // ours would end it.
            return Verdict::Pass;
        }
        if !self.server.has(target.hash) {
            ctx.inject_unseen(|b| {
                close_statement(b, &target.name);
                b.extend_from_slice(&target.parse);
                frontend::Sync.encode(b);
            });
        }
        ctx.to_server(|b| {
            let mark = codec::begin(b, b'Q');
            self.deallocate_on_server(&name, &target, b);
            codec::finish(b, mark);
        });
        Verdict::Drop
    }

    fn on_close(&mut self, body: &[u8], ctx: &mut Ctx<'_>) -> Verdict {
        let Ok(c) = frontend::Close::decode(body) else {
            return Verdict::Pass;
        };
        if c.kind != b'S' {
            return Verdict::Pass;
        }
        if c.name.is_empty() {
            self.client.unnamed = None;
            self.server.unnamed = None;
            return Verdict::Pass;
        }
        // Closing a name that does not exist is not an error in PostgreSQL.
        if self.client.named.contains_key(c.name) {
            Arc::make_mut(&mut self.client.named).remove(c.name);
        }
        ctx.reply(CLOSE_COMPLETE.clone());
        Verdict::Drop
    }
}

static PARSE_COMPLETE: Bytes = Bytes::from_static(b"1\0\0\0\x04");
static CLOSE_COMPLETE: Bytes = Bytes::from_static(b"3\0\0\0\x04");

fn close_statement(b: &mut BytesMut, name: &[u8]) {
    frontend::Close { kind: b'S', name }.encode(b);
}

impl Middleware for Eqp<'_> {
    fn client_tags(&self) -> TagSet {
        if !self.on {
            return TagSet::EMPTY;
        }
        TagSet::of(b"PBDCQ")
    }

    fn server_tags(&self) -> TagSet {
        if !self.on {
            return TagSet::EMPTY;
        }
        TagSet::of(b"1CEZ")
    }

    fn on_client(&mut self, tag: u8, body: &[u8], ctx: &mut Ctx<'_>) -> Verdict {
        if ctx.pipeline().is_skipping() {
            // The server ignores it, and so do we.
            return Verdict::Pass;
        }
        match tag {
            b'P' => self.on_parse(body, ctx),
            b'B' => self.on_bind(body, ctx),
            b'D' => self.on_describe(body, ctx),
            b'C' => self.on_close(body, ctx),
            b'Q' => {
                // PostgreSQL drops the unnamed statement at every simple query.
                self.client.unnamed = None;
                self.server.unnamed = None;
                self.on_query(body, ctx)
            }
            _ => Verdict::Pass,
        }
    }

    fn on_server(&mut self, tag: u8, body: &[u8], ctx: &mut Ctx<'_>) -> Verdict {
        match tag {
            b'1' => {
                if let Some((_, Some((_, hash)))) = self.client.awaiting.pop_front() {
                    self.known.insert(hash);
                }
            }
            b'C' if body == b"DISCARD ALL\0" || body == b"DEALLOCATE ALL\0" => {
                self.server.clear();
                self.client.clear();
            }
            b'E' => {
                // The server may have skipped Parses of the failed batch;
                // forget them (re-preparing is always safe).
                let batch = ctx.pipeline().batch_answering();
                self.server.batch_failed(batch);
                // The client's Parses in the failed batch did not happen.
                while let Some((b, _)) = self.client.awaiting.front() {
                    if *b != batch {
                        break;
                    }
                    match self.client.awaiting.pop_front() {
                        Some((_, Some((name, _)))) => {
                            Arc::make_mut(&mut self.client.named).remove(&name);
                        }
                        // PostgreSQL drops the old unnamed statement before
                        // parsing the new one.
                        Some((_, None)) => self.client.unnamed = None,
                        None => {}
                    }
                }
            }
            b'Z' => {
                self.server.batches_done(ctx.pipeline().batch_answering());
            }
            _ => {}
        }
        Verdict::Pass
    }
}

#[cfg(test)]
mod tests;
