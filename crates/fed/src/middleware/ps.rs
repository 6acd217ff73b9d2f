//! ps: a client's session settings follow it from server to server, and never
//! reach another client.
//!
//! Two kinds of setting are tracked:
//! - **Reported parameters** in the pool's `track` list that the server
//!   reports with ParameterStatus (client_encoding, DateStyle, TimeZone, ...):
//!   the client's value is the last one it was told, and a server with another
//!   value gets `set_config` before the client's first message.
//! - **Everything else a client changes with `SET`/`RESET`** (statement_timeout,
//!   work_mem, search_path on servers that do not report it, ROLE, ...): the
//!   statement is recognised in the client's Query or Parse text and takes
//!   effect for the client when its CommandComplete arrives and the
//!   transaction it ran in commits. The server remembers which settings it
//!   holds; a client that did not make them gets `RESET` first. A change the
//!   pooler could not follow (a SET inside a transaction that rolled back, an
//!   error mid-query) marks the setting dirty on that server, so it is reset
//!   or replayed rather than trusted.
//!
//! The same scan of the client's SQL finds **session state that cannot move**
//! (temporary tables, LISTEN, session advisory locks, WITH HOLD cursors,
//! SQL-level PREPARE, session `set_config`): the client is then pinned to its
//! server until it leaves or runs DISCARD ALL, or, with pinning refused, the
//! statement gets an error that says why.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt::Write as _;
use std::sync::Arc;

use super::{Ctx, Middleware, Verdict, split_two_cstrs};
use crate::frame::TagSet;
use crate::messages::{backend, frontend};
use crate::sql::{self, Effect, PinReason};
use crate::sqlstate::SqlState;

/// Run-time parameters a server reported with ParameterStatus, in report
/// order. Few enough (a dozen) that a vector beats a map. Shared on clone
/// and copied only when one copy changes: a hybrid pool snapshots a client's
/// settings before every transaction it might replay.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params(Arc<Vec<(String, String)>>);

impl Params {
    /// The value of `name`, if reported.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Sets `name`, keeping the first report's position.
    pub fn set(&mut self, name: &str, value: &str) {
        match self
            .0
            .iter()
            .position(|(k, _)| k.eq_ignore_ascii_case(name))
        {
            Some(i) if self.0[i].1 == value => {}
            Some(i) => value.clone_into(&mut Arc::make_mut(&mut self.0)[i].1),
            None => Arc::make_mut(&mut self.0).push((name.to_owned(), value.to_owned())),
        }
    }

    /// All parameters.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Records a ParameterStatus body.
    pub fn apply(&mut self, body: &[u8]) {
        if let Ok(ps) = backend::ParameterStatus::decode(body) {
            self.set(
                &String::from_utf8_lossy(ps.name),
                &String::from_utf8_lossy(ps.value),
            );
        }
    }
}

/// Parameters a server assigns itself at login that clients may not set.
const NOT_SETTABLE: &[&str] = &[
    "is_superuser",
    "session_authorization",
    "server_version",
    "server_encoding",
    "integer_datetimes",
    "in_hot_standby",
];

/// A change to a setting, as a statement made it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Change {
    Set {
        name: String,
        stmt: String,
    },
    Reset {
        name: String,
    },
    ResetAll,
    DiscardAll,
    /// A statement whose CommandComplete says SET but changes nothing that
    /// outlives its transaction (SET LOCAL, SET TRANSACTION).
    Ignore,
}

/// What a server holds beyond its login defaults.
#[derive(Debug, Default)]
pub struct ServerSettings {
    /// Settings a client's committed `SET` (or a sync) gave it: name → the
    /// statement.
    applied: HashMap<String, String>,
    /// Settings some client changed in a way that was not followed: their
    /// value is unknown.
    dirty: HashSet<String>,
}

impl ServerSettings {
    /// Forgets everything: the session was reset to its defaults.
    pub fn clear(&mut self) {
        self.applied.clear();
        self.dirty.clear();
    }

    /// Whether the server holds nothing beyond its defaults.
    pub fn is_default(&self) -> bool {
        self.applied.is_empty() && self.dirty.is_empty()
    }
}

/// One client's settings and the bookkeeping to follow them. A clone taken
/// between transactions is the state to go back to when a transaction is
/// replayed elsewhere.
#[derive(Clone, Debug, Default)]
pub struct ClientSettings {
    /// Reported parameters as the client knows them.
    pub params: Params,
    /// Settings its committed `SET`s made: name → the statement.
    settings: Vec<(String, String)>,
    /// Changes awaiting their CommandComplete, with their batch.
    expect: VecDeque<(u64, Change)>,
    /// Changes made inside the open transaction.
    tx: Vec<Change>,
    /// Inside an explicit transaction block.
    in_block: bool,
    /// Statements (by client name, `""` for the unnamed one) and portals
    /// whose execution changes a setting.
    stmt_changes: HashMap<Box<[u8]>, Change>,
    portal_changes: HashMap<Box<[u8]>, Change>,
    /// Why the client is pinned to its server, if it is.
    pin: Option<PinReason>,
}

impl ClientSettings {
    /// A client that was told `params` at startup.
    pub fn new(params: Params) -> Self {
        ClientSettings {
            params,
            ..Default::default()
        }
    }

    /// Why the client must keep its server, if it must.
    pub fn pinned(&self) -> Option<PinReason> {
        self.pin
    }

    /// Settings made by the client's own `SET`s, by name.
    pub fn settings(&self) -> impl Iterator<Item = (&str, &str)> {
        self.settings.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The one simple query that gives `server` this client's settings, or
    /// `None` when it has them: `set_config` for tracked reported parameters
    /// that differ, `RESET` for what the server holds that the client did not
    /// set, and the client's own `SET`s the server does not hold.
    pub fn sync_query(
        &self,
        tracked: &[String],
        server_params: &Params,
        server: &ServerSettings,
    ) -> Option<String> {
        // The common case, checked without building anything: a client that
        // set nothing on a server that holds nothing, with the same reported
        // values (clients told the same startup parameters share them).
        if self.settings.is_empty() && server.is_default() && self.params == *server_params {
            return None;
        }
        let mut sql = String::new();
        let mut resets: Vec<&str> = server
            .applied
            .keys()
            .chain(server.dirty.iter())
            .map(String::as_str)
            .filter(|n| !self.settings.iter().any(|(k, _)| k == n))
            .collect();
        resets.sort_unstable();
        resets.dedup();
        for name in resets {
            let _ = write!(sql, "RESET {};", quote_name(name));
        }
        for (name, stmt) in &self.settings {
            if server.dirty.contains(name) || server.applied.get(name) != Some(stmt) {
                sql.push_str(stmt);
                sql.push(';');
            }
        }
        let wanted = self
            .params
            .iter()
            .filter(|(name, _)| tracked.iter().any(|t| t.eq_ignore_ascii_case(name)));
        push_set_config(&mut sql, wanted, server_params);
        (!sql.is_empty()).then_some(sql)
    }

    /// Records that `server` now holds exactly this client's settings (its
    /// sync query succeeded).
    pub fn synced(&self, server: &mut ServerSettings) {
        server.dirty.clear();
        server.applied = self.settings.iter().cloned().collect();
    }

    fn commit(&mut self, server: &mut ServerSettings) {
        for change in std::mem::take(&mut self.tx) {
            match change {
                Change::Set { name, stmt } => {
                    server.dirty.remove(&name);
                    server.applied.insert(name.clone(), stmt.clone());
                    match self.settings.iter_mut().find(|(k, _)| *k == name) {
                        Some((_, s)) => *s = stmt,
                        None => self.settings.push((name, stmt)),
                    }
                }
                Change::Reset { name } => {
                    server.dirty.remove(&name);
                    server.applied.remove(&name);
                    self.settings.retain(|(k, _)| *k != name);
                }
                Change::ResetAll => {
                    server.clear();
                    self.settings.clear();
                }
                Change::DiscardAll => {
                    server.clear();
                    self.settings.clear();
                    self.pin = None;
                }
                Change::Ignore => {}
            }
        }
    }
}

/// Appends the `SELECT set_config(...)` that gives a server with `server`
/// parameters the values `wanted`, leaving out what it already has and what
/// no session may set. `set_config` takes each value in its text form, exactly
/// as a startup packet or ParameterStatus carries it (a `SET x = '...'` would
/// mangle list values like search_path).
pub fn push_set_config<'a>(
    sql: &mut String,
    wanted: impl IntoIterator<Item = (&'a str, &'a str)>,
    server: &Params,
) {
    let mut first = true;
    for (name, value) in wanted {
        if NOT_SETTABLE.iter().any(|n| n.eq_ignore_ascii_case(name))
            || server.get(name) == Some(value)
        {
            continue;
        }
        sql.push_str(if first { "SELECT " } else { ", " });
        first = false;
        let _ = write!(
            sql,
            "pg_catalog.set_config({}, {}, false)",
            quote_literal(name),
            quote_literal(value)
        );
    }
}

/// A name as SQL: bare when it is a plain lower-case identifier (or dotted
/// pair of them), else each part double-quoted.
fn quote_name(name: &str) -> String {
    let plain = |p: &str| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            && !p.as_bytes()[0].is_ascii_digit()
    };
    name.split('.')
        .map(|p| {
            if plain(p) {
                p.to_owned()
            } else {
                format!("\"{}\"", p.replace('"', "\"\""))
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// A string literal that means `s` whatever `standard_conforming_strings` is.
pub fn quote_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 3);
    out.push_str("E'");
    for c in s.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// The ps hook for one client on one server.
pub struct Ps<'a> {
    client: &'a mut ClientSettings,
    server: &'a mut ServerSettings,
    server_params: &'a mut Params,
    /// Names followed through ParameterStatus (lower case).
    tracked: &'a [String],
    /// Whether session state may pin the client (else it is refused).
    allow_pin: bool,
    /// Where to send people who hit the refusal.
    pool: &'a str,
}

impl<'a> Ps<'a> {
    /// Follows `client`'s settings on the server whose state is `server`
    /// and `server_params`.
    pub fn new(
        client: &'a mut ClientSettings,
        server: &'a mut ServerSettings,
        server_params: &'a mut Params,
        tracked: &'a [String],
        allow_pin: bool,
        pool: &'a str,
    ) -> Self {
        Ps {
            client,
            server,
            server_params,
            tracked,
            allow_pin,
            pool,
        }
    }

    /// Whether ParameterStatus follows `name` on this server (else `SET`
    /// statements do).
    fn reported(&self, name: &str) -> bool {
        self.tracked.iter().any(|t| t.eq_ignore_ascii_case(name))
            && self.server_params.get(name).is_some()
    }

    /// The change one statement makes, if any; `Err` when it would pin the
    /// client.
    fn change(&mut self, stmt: &[u8]) -> Result<Option<Change>, PinReason> {
        let change = match sql::classify(stmt) {
            Effect::Set { name } => {
                if self.reported(&name) {
                    Change::Ignore
                } else {
                    Change::Set {
                        name: name.into_owned(),
                        stmt: String::from_utf8_lossy(stmt).into_owned(),
                    }
                }
            }
            Effect::Reset { name } => {
                if self.reported(&name) {
                    Change::Ignore
                } else {
                    Change::Reset {
                        name: name.into_owned(),
                    }
                }
            }
            Effect::ResetAll => Change::ResetAll,
            Effect::DiscardAll => Change::DiscardAll,
            Effect::Pin(reason) => return Err(reason),
            Effect::DeallocateAll | Effect::Deallocate { .. } => return Ok(None),
            Effect::Other => {
                if starts_with_set(stmt) {
                    Change::Ignore
                } else {
                    return Ok(None);
                }
            }
        };
        Ok(Some(change))
    }

    fn pin(&mut self, reason: PinReason) {
        if self.client.pin.is_none() {
            self.client.pin = Some(reason);
        }
    }

    fn mark_dirty(&mut self, change: &Change) {
        match change {
            Change::Set { name, .. } | Change::Reset { name } => {
                self.server.dirty.insert(name.clone());
            }
            _ => {}
        }
    }

    fn on_query(&mut self, body: &[u8], ctx: &mut Ctx<'_>) -> Verdict {
        let text = body.strip_suffix(b"\0").unwrap_or(body);
        // Statements that change nothing are only worth a look (to keep
        // CommandCompletes aligned) when another in the same text does.
        if !sql::has_effects(text) {
            return Verdict::Pass;
        }
        let batch = ctx.pipeline().batch_sending();
        for stmt in sql::statements(text) {
            match self.change(stmt) {
                Ok(Some(change)) => {
                    self.mark_dirty(&change);
                    self.client.expect.push_back((batch, change));
                }
                Ok(None) => {}
                Err(reason) if self.allow_pin => self.pin(reason),
                Err(reason) => {
                    // Refuse the whole query with the server's own error
                    // machinery, so the transaction status is exactly right.
                    self.client.expect.retain(|(b, _)| *b != batch);
                    let sql = refusal_sql(reason, self.pool);
                    ctx.to_server(|b| {
                        frontend::Query {
                            query: sql.as_bytes(),
                        }
                        .encode(b)
                    });
                    return Verdict::Drop;
                }
            }
        }
        Verdict::Pass
    }

    fn on_parse(&mut self, body: &[u8], ctx: &mut Ctx<'_>) -> Verdict {
        let Ok(parse) = frontend::Parse::decode(body) else {
            return Verdict::Pass;
        };
        self.client.stmt_changes.remove(parse.statement);
        if !sql::has_effects(parse.query) {
            return Verdict::Pass;
        }
        // A Parse holds one statement.
        match self.change(parse.query) {
            Ok(Some(change)) => {
                self.client
                    .stmt_changes
                    .insert(parse.statement.into(), change);
            }
            Ok(None) => {}
            Err(reason) if self.allow_pin => self.pin(reason),
            Err(reason) => {
                let (message, hint) = refusal(reason, self.pool);
                return ctx.refuse(SqlState::FEATURE_NOT_SUPPORTED, &message, Some(&hint));
            }
        }
        Verdict::Pass
    }

    fn on_bind(&mut self, body: &[u8]) {
        let Some((portal, stmt, _)) = split_two_cstrs(body) else {
            return;
        };
        match self.client.stmt_changes.get(stmt) {
            Some(change) => {
                let change = change.clone();
                self.client.portal_changes.insert(portal.into(), change);
            }
            None => {
                self.client.portal_changes.remove(portal);
            }
        }
    }

    fn on_execute(&mut self, body: &[u8], ctx: &mut Ctx<'_>) {
        let portal = crate::codec::Reader::new(body).cstr().unwrap_or_default();
        if let Some(change) = self.client.portal_changes.get(portal).cloned() {
            self.mark_dirty(&change);
            let batch = ctx.pipeline().batch_sending();
            self.client.expect.push_back((batch, change));
        }
    }

    fn on_command_complete(&mut self, body: &[u8], ctx: &mut Ctx<'_>) {
        let tag = body.strip_suffix(b"\0").unwrap_or(body);
        match tag {
            b"SET" | b"RESET" | b"DISCARD ALL" => {
                let batch = ctx.pipeline().batch_answering();
                if let Some((b, _)) = self.client.expect.front()
                    && *b == batch
                {
                    let (_, change) = self.client.expect.pop_front().expect("front exists");
                    self.client.tx.push(change);
                }
                if tag == b"DISCARD ALL" {
                    // DISCARD ALL cannot run inside a transaction block:
                    // it is committed already.
                    self.client.commit(self.server);
                }
            }
            b"BEGIN" | b"START TRANSACTION" => self.client.in_block = true,
            b"COMMIT" => {
                self.client.in_block = false;
                self.client.commit(self.server);
            }
            b"ROLLBACK" => {
                self.client.in_block = false;
                self.client.tx.clear();
            }
            _ => {}
        }
    }

    fn on_error(&mut self, ctx: &mut Ctx<'_>) {
        let batch = ctx.pipeline().batch_answering();
        while self.client.expect.front().is_some_and(|(b, _)| *b == batch) {
            self.client.expect.pop_front();
        }
        if !self.client.in_block {
            // An implicit transaction: everything it did is rolled back.
            self.client.tx.clear();
        }
    }

    fn on_ready(&mut self, body: &[u8], ctx: &mut Ctx<'_>) {
        let done = ctx.pipeline().batch_answering();
        while self.client.expect.front().is_some_and(|(b, _)| *b < done) {
            self.client.expect.pop_front();
        }
        match body.first() {
            Some(b'I') => {
                self.client.in_block = false;
                self.client.commit(self.server);
            }
            Some(_) => self.client.in_block = true,
            None => {}
        }
    }

    fn on_parameter_status(&mut self, body: &[u8]) -> Verdict {
        let Ok(ps) = backend::ParameterStatus::decode(body) else {
            return Verdict::Pass;
        };
        let (Ok(name), Ok(value)) = (std::str::from_utf8(ps.name), std::str::from_utf8(ps.value))
        else {
            return Verdict::Pass;
        };
        self.server_params.set(name, value);
        if self.client.params.get(name) == Some(value) {
            return Verdict::Drop;
        }
        self.client.params.set(name, value);
        Verdict::Pass
    }

    fn following(&self) -> bool {
        !self.client.expect.is_empty() || !self.client.tx.is_empty()
    }
}

impl Middleware for Ps<'_> {
    fn client_tags(&self) -> TagSet {
        if self.client.stmt_changes.is_empty() && self.client.portal_changes.is_empty() {
            TagSet::of(b"QP")
        } else {
            TagSet::of(b"QPBE")
        }
    }

    fn server_tags(&self) -> TagSet {
        if self.following() {
            TagSet::of(b"SCEZ")
        } else {
            // DISCARD ALL and COMMIT need no expectation to matter, but
            // without a tracked change there is nothing for them to commit.
            TagSet::of(b"S")
        }
    }

    fn on_client(&mut self, tag: u8, body: &[u8], ctx: &mut Ctx<'_>) -> Verdict {
        if ctx.pipeline().is_skipping() {
            return Verdict::Pass;
        }
        match tag {
            b'Q' => self.on_query(body, ctx),
            b'P' => self.on_parse(body, ctx),
            b'B' => {
                self.on_bind(body);
                Verdict::Pass
            }
            b'E' => {
                self.on_execute(body, ctx);
                Verdict::Pass
            }
            _ => Verdict::Pass,
        }
    }

    fn on_server(&mut self, tag: u8, body: &[u8], ctx: &mut Ctx<'_>) -> Verdict {
        match tag {
            b'S' => return self.on_parameter_status(body),
            b'C' => self.on_command_complete(body, ctx),
            b'E' => self.on_error(ctx),
            b'Z' => self.on_ready(body, ctx),
            _ => {}
        }
        Verdict::Pass
    }

    fn hold(&self) -> bool {
        self.client.pin.is_some()
    }
}

/// Whether a statement starts with the keyword SET or RESET (after
/// whitespace and comments are skipped by the caller's statement split).
fn starts_with_set(stmt: &[u8]) -> bool {
    let len = stmt
        .iter()
        .position(|b| !b.is_ascii_alphabetic())
        .unwrap_or(stmt.len());
    let word = &stmt[..len];
    word.eq_ignore_ascii_case(b"SET") || word.eq_ignore_ascii_case(b"RESET")
}

/// The error a refused statement gets: message and hint.
fn refusal(reason: PinReason, pool: &str) -> (String, String) {
    (
        format!(
            "{} would tie this session to one server connection, which pool \"{pool}\" does not allow",
            reason.describe()
        ),
        "The pool shares servers between clients per transaction (pin_session_state off). \
         Use transaction-scoped state (ON COMMIT DROP, pg_advisory_xact_lock, SET LOCAL), \
         or a session pool."
            .to_owned(),
    )
}

/// A query that makes the server raise the refusal, so it arrives with the
/// transaction status a real error would leave.
fn refusal_sql(reason: PinReason, pool: &str) -> String {
    let (message, hint) = refusal(reason, pool);
    format!(
        "DO $pggat$BEGIN RAISE EXCEPTION USING ERRCODE = 'feature_not_supported', MESSAGE = {}, HINT = {}; END$pggat$",
        quote_literal(&message),
        quote_literal(&hint)
    )
}

#[cfg(test)]
mod tests;
