//! The few SQL statements whose effect outlives a transaction, recognised
//! from the text of a simple Query or a Parse message.
//!
//! In transaction pooling a client's next transaction may run on another
//! server connection, so whatever a statement leaves in the session (a `SET`,
//! a temporary table, a `LISTEN`, a session advisory lock...) must either be
//! replayed by the pooler or pin the client to its server. This module
//! answers "what does this text do to the session?" without a SQL parser: a
//! lexer that knows PostgreSQL's quoting rules, and a handful of token
//! patterns.
//!
//! It runs on every Query forwarded, so the lexer makes one pass over the
//! text, skips string and comment bodies with `memchr`, and allocates only
//! when a name has to be rewritten (lower-cased or unescaped).
//!
//! Known limits, each a deliberate trade for staying a lexer:
//! - `standard_conforming_strings` is assumed on (the default since 9.1):
//!   a backslash escapes a quote only in `E'...'`.
//! - Calls made inside function bodies, `DO` blocks or dynamic SQL are
//!   invisible; only what the statement text itself calls is seen.
//! - A syntax error makes PostgreSQL reject the whole Query string, so no
//!   effect reported here takes place; the pooler should apply an effect only
//!   once the server confirmed the statement.

mod route;

pub use route::{Fold, Start, start};

use std::borrow::Cow;

use memchr::{memchr, memchr2, memmem};

/// Splits a query string into statements.
///
/// PostgreSQL runs a multi-statement Query string as several statements and
/// answers each with its own CommandComplete; empty statements (only blanks
/// and comments) get none, so they are skipped here. Each statement is
/// trimmed of surrounding whitespace. A `;` splits only at top level: not in a
/// quote, a comment, parentheses, or a `BEGIN ATOMIC ... END` function body.
/// An unterminated quote or comment runs to the end of the text.
pub fn statements(sql: &[u8]) -> Statements<'_> {
    Statements { src: sql, pos: 0 }
}

/// The statements of a query string; see [`statements`].
#[derive(Debug, Clone)]
pub struct Statements<'a> {
    src: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Statements<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        while self.pos < self.src.len() {
            let start = self.pos;
            let mut cur = Cursor::new(self.src, start);
            let any = cur.next().is_some();
            cur.finish();
            self.pos = cur.lex.pos;
            if any {
                return Some(trim(&self.src[start..cur.end()]));
            }
        }
        None
    }
}

/// What a statement does to session state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect<'a> {
    /// `SET [SESSION] name {TO|=|FROM CURRENT} ...`, and the special forms
    /// `SET TIME ZONE` ("timezone"), `SET NAMES` ("client_encoding"),
    /// `SET SCHEMA` ("search_path"), `SET ROLE` ("role"),
    /// `SET SESSION AUTHORIZATION` ("session_authorization") and
    /// `SET XML OPTION` ("xmloption"). The name is what the server sees:
    /// unquoted parts lower-cased, quoted parts kept, every part cut to 63
    /// bytes, dotted custom names (`myapp.user_id`) whole.
    Set {
        /// The parameter's canonical name.
        name: Cow<'a, str>,
    },
    /// `RESET name`, with the same canonical names (`RESET TIME ZONE` is
    /// "timezone", `RESET SESSION AUTHORIZATION` "session_authorization").
    Reset {
        /// The parameter's canonical name.
        name: Cow<'a, str>,
    },
    /// `RESET ALL`.
    ResetAll,
    /// `DISCARD ALL`.
    DiscardAll,
    /// `DEALLOCATE [PREPARE] ALL`.
    DeallocateAll,
    /// `DEALLOCATE [PREPARE] name`.
    Deallocate {
        /// The prepared statement's canonical name, as for [`Effect::Set`].
        name: Cow<'a, str>,
    },
    /// Session state that cannot move to another server connection.
    Pin(PinReason),
    /// Nothing that outlives the transaction (this includes `SET LOCAL`,
    /// `SET TRANSACTION` and `SET CONSTRAINTS`).
    Other,
}

/// Why a statement ties its client to the server connection it ran on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinReason {
    /// `CREATE [GLOBAL|LOCAL] {TEMP|TEMPORARY} ...`, an object created in
    /// `pg_temp`, or `SELECT ... INTO TEMP ...`.
    TempObject,
    /// `LISTEN channel`: notifications go to the connection that listens.
    Listen,
    /// A call to a session-level advisory lock function (not the `_xact_`
    /// ones, which end with the transaction).
    AdvisoryLock,
    /// `DECLARE ... CURSOR WITH HOLD`: the cursor survives the commit.
    HoldCursor,
    /// SQL-level `PREPARE name AS ...`.
    Prepare,
    /// `set_config(name, value, is_local)` with `is_local` not the literal
    /// `true`: a session-level setting the pooler cannot see by name.
    SetConfig,
    /// `SET SESSION CHARACTERISTICS AS TRANSACTION ...`.
    SessionCharacteristics,
}

impl PinReason {
    /// Names the cause for log lines and error messages.
    pub fn describe(self) -> &'static str {
        match self {
            PinReason::TempObject => "a temporary table",
            PinReason::Listen => "LISTEN",
            PinReason::AdvisoryLock => "a session-level advisory lock",
            PinReason::HoldCursor => "a WITH HOLD cursor",
            PinReason::Prepare => "an SQL-level PREPARE",
            PinReason::SetConfig => "set_config() outside a transaction",
            PinReason::SessionCharacteristics => "SET SESSION CHARACTERISTICS",
        }
    }
}

/// Classifies one statement (as yielded by [`statements`]).
///
/// Text past the first top-level `;` is ignored; an empty statement is
/// [`Effect::Other`].
pub fn classify(stmt: &[u8]) -> Effect<'_> {
    classify_next(&mut Cursor::new(stmt, 0)).unwrap_or(Effect::Other)
}

/// Classifies every statement of a query string, in order.
///
/// One pass over the text: the same lexer finds statement ends and feeds
/// the classifier.
pub fn effects(sql: &[u8]) -> impl Iterator<Item = Effect<'_>> {
    Effects { src: sql, pos: 0 }
}

/// True when any statement of `sql` is not [`Effect::Other`]: the cheap
/// question asked of every Query.
///
/// No keyword pre-filter: it would read every byte, string bodies included,
/// where the lexer skips those with `memchr`, so it would cost more than it
/// saves on exactly the large texts where cost matters.
pub fn has_effects(sql: &[u8]) -> bool {
    effects(sql).any(|e| e != Effect::Other)
}

struct Effects<'a> {
    src: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Effects<'a> {
    type Item = Effect<'a>;

    fn next(&mut self) -> Option<Effect<'a>> {
        while self.pos < self.src.len() {
            let mut cur = Cursor::new(self.src, self.pos);
            let effect = classify_next(&mut cur);
            self.pos = cur.lex.pos;
            if effect.is_some() {
                return effect;
            }
        }
        None
    }
}

/// PostgreSQL's identifier length limit (NAMEDATALEN - 1); longer
/// identifiers are truncated by the server's lexer.
const MAX_IDENT: usize = 63;

const ADVISORY_LOCKS: [&str; 4] = [
    "pg_advisory_lock",
    "pg_advisory_lock_shared",
    "pg_try_advisory_lock",
    "pg_try_advisory_lock_shared",
];

/// Reserved words that can follow `SELECT ... INTO TEMP` only when `temp` is
/// itself the target table's name.
const NOT_A_TABLE: [&str; 14] = [
    "from",
    "where",
    "group",
    "having",
    "order",
    "limit",
    "offset",
    "union",
    "intersect",
    "except",
    "window",
    "for",
    "fetch",
    "into",
];

const CURSOR_OPTIONS: [&str; 5] = ["binary", "asensitive", "insensitive", "no", "scroll"];

/// How many nested `set_config(` calls are followed; deeper nesting is
/// answered conservatively with a pin rather than with an allocation.
const MAX_SET_CONFIG_NESTING: usize = 4;

/// Reads one statement from `cur` to its end and classifies it; `None` when
/// the statement is empty.
fn classify_next<'a>(cur: &mut Cursor<'a>) -> Option<Effect<'a>> {
    let first = cur.next()?;
    let effect = head(cur, first);
    cur.finish();
    Some(effect)
}

/// Dispatches on the first keyword; statements that do not decide there are
/// scanned whole for function calls and `SELECT ... INTO TEMP`.
fn head<'a>(cur: &mut Cursor<'a>, first: Token<'a>) -> Effect<'a> {
    if first.kind == Kind::Word {
        let kw = |k: &str| first.text.eq_ignore_ascii_case(k.as_bytes());
        if kw("set") {
            return set(cur);
        }
        if kw("reset") {
            return reset(cur);
        }
        if kw("discard") {
            return match cur.next() {
                Some(t) if t.is_kw("all") => Effect::DiscardAll,
                _ => Effect::Other,
            };
        }
        if kw("deallocate") {
            return deallocate(cur);
        }
        if kw("listen") {
            return match cur.next() {
                Some(_) => Effect::Pin(PinReason::Listen),
                None => Effect::Other,
            };
        }
        if kw("prepare") {
            return prepare(cur);
        }
        if kw("create") {
            match create(cur.clone()) {
                Create::Temp => return Effect::Pin(PinReason::TempObject),
                // Neither a body nor a parameter default runs on creation.
                Create::Routine => return Effect::Other,
                Create::Other => {}
            }
        }
        if kw("declare") && hold_cursor(cur.clone()) {
            return Effect::Pin(PinReason::HoldCursor);
        }
        // These name functions by signature (`DROP FUNCTION
        // pg_advisory_lock(bigint)`) without calling them.
        if kw("drop") || kw("comment") || kw("grant") || kw("revoke") {
            return Effect::Other;
        }
    }
    scan(cur, first)
}

fn set<'a>(cur: &mut Cursor<'a>) -> Effect<'a> {
    let Some(mut t) = cur.next() else {
        return Effect::Other;
    };
    if t.is_kw("local") {
        return Effect::Other;
    }
    if t.is_kw("session") {
        let Some(n) = cur.next() else {
            return Effect::Other;
        };
        if let Some(e) = session_form(n) {
            return e;
        }
        t = n;
    }
    if let Some(n) = name(&mut cur.clone(), t)
        && n.after
            .is_some_and(|a| a.is_punct(b'=') || a.is_kw("to") || a.is_kw("from"))
    {
        return n
            .canonical
            .map_or(Effect::Other, |name| Effect::Set { name });
    }
    let mut next_is = |k: &str| cur.next().is_some_and(|n| n.is_kw(k));
    let name = if t.is_kw("time") && next_is("zone") {
        "timezone"
    } else if t.is_kw("names") {
        "client_encoding"
    } else if t.is_kw("schema") {
        "search_path"
    } else if t.is_kw("role") {
        "role"
    } else if t.is_kw("xml") && next_is("option") {
        "xmloption"
    } else if t.is_kw("session") {
        return cur.next().and_then(session_form).unwrap_or(Effect::Other);
    } else {
        // TRANSACTION, CONSTRAINTS, CATALOG, or a syntax error.
        return Effect::Other;
    };
    Effect::Set {
        name: Cow::Borrowed(name),
    }
}

/// The forms where `SESSION` is part of the statement, not its scope.
fn session_form<'a>(t: Token<'_>) -> Option<Effect<'a>> {
    if t.is_kw("authorization") {
        Some(Effect::Set {
            name: Cow::Borrowed("session_authorization"),
        })
    } else if t.is_kw("characteristics") {
        Some(Effect::Pin(PinReason::SessionCharacteristics))
    } else {
        None
    }
}

fn reset<'a>(cur: &mut Cursor<'a>) -> Effect<'a> {
    let Some(t) = cur.next() else {
        return Effect::Other;
    };
    if t.is_kw("all") {
        return Effect::ResetAll;
    }
    let second = cur.clone().next();
    let second_is = |k: &str| second.is_some_and(|n| n.is_kw(k));
    let special = if t.is_kw("time") && second_is("zone") {
        Some("timezone")
    } else if t.is_kw("session") && second_is("authorization") {
        Some("session_authorization")
    } else if t.is_kw("transaction") && second_is("isolation") {
        Some("transaction_isolation")
    } else {
        None
    };
    if let Some(name) = special {
        return Effect::Reset {
            name: Cow::Borrowed(name),
        };
    }
    match name(cur, t).and_then(|n| n.canonical) {
        Some(name) => Effect::Reset { name },
        None => Effect::Other,
    }
}

fn deallocate<'a>(cur: &mut Cursor<'a>) -> Effect<'a> {
    let Some(mut t) = cur.next() else {
        return Effect::Other;
    };
    if t.is_kw("prepare") {
        match cur.next() {
            Some(n) => t = n,
            // `DEALLOCATE prepare`: a statement named "prepare".
            None => {
                return Effect::Deallocate {
                    name: Cow::Borrowed("prepare"),
                };
            }
        }
    }
    if t.is_kw("all") {
        return Effect::DeallocateAll;
    }
    match name(cur, t).and_then(|n| n.canonical) {
        Some(name) => Effect::Deallocate { name },
        None => Effect::Other,
    }
}

fn prepare<'a>(cur: &mut Cursor<'a>) -> Effect<'a> {
    match cur.next() {
        None => Effect::Other,
        // Two-phase commit ends the transaction; it leaves nothing behind in
        // the session.
        Some(t) if t.is_kw("transaction") && cur.next().is_some_and(|s| s.kind == Kind::Str) => {
            Effect::Other
        }
        Some(_) => Effect::Pin(PinReason::Prepare),
    }
}

enum Create {
    Temp,
    Routine,
    Other,
}

/// Reads the head of a CREATE statement (on a copy of the cursor, so the
/// caller can still scan the whole statement).
fn create(mut c: Cursor<'_>) -> Create {
    let mut next = || c.next();
    let Some(mut t) = next() else {
        return Create::Other;
    };
    if t.is_kw("or") {
        match (next(), next()) {
            (Some(r), Some(n)) if r.is_kw("replace") => t = n,
            _ => return Create::Other,
        }
    }
    if t.is_kw("global") || t.is_kw("local") {
        let Some(n) = next() else {
            return Create::Other;
        };
        t = n;
    }
    if t.is_kw("temp") || t.is_kw("temporary") {
        return Create::Temp;
    }
    let routine = t.is_kw("function") || t.is_kw("procedure");
    // An object name qualified with pg_temp is temporary too; look for it
    // before the column list or AS, a bounded number of tokens in.
    let mut prev: Option<Token<'_>> = None;
    for _ in 0..16 {
        if t.is_punct(b'(') || t.is_kw("as") {
            break;
        }
        if t.is_punct(b'.') && prev.is_some_and(|p| p.names("pg_temp")) {
            return Create::Temp;
        }
        prev = Some(t);
        match next() {
            Some(n) => t = n,
            None => break,
        }
    }
    if routine {
        Create::Routine
    } else {
        Create::Other
    }
}

/// `DECLARE name [options] CURSOR WITH HOLD`, on a copy of the cursor.
fn hold_cursor(mut c: Cursor<'_>) -> bool {
    if c.next().is_none() {
        return false;
    }
    for _ in 0..8 {
        let Some(t) = c.next() else {
            return false;
        };
        if t.is_kw("cursor") {
            return c.next().is_some_and(|w| w.is_kw("with"))
                && c.next().is_some_and(|h| h.is_kw("hold"));
        }
        if !CURSOR_OPTIONS.iter().any(|o| t.is_kw(o)) {
            return false;
        }
    }
    false
}

/// After `INTO` in a SELECT: `[LOCAL|GLOBAL] {TEMP|TEMPORARY} [TABLE] name`,
/// on a copy of the cursor.
fn temp_target(mut c: Cursor<'_>) -> bool {
    let Some(mut t) = c.next() else {
        return false;
    };
    if t.is_kw("local") || t.is_kw("global") {
        let Some(n) = c.next() else {
            return false;
        };
        t = n;
    }
    if !(t.is_kw("temp") || t.is_kw("temporary")) {
        return false;
    }
    // `INTO temp FROM ...` selects into a table named temp.
    c.next().is_some_and(|n| match n.kind {
        Kind::Quoted { closed } => closed,
        Kind::Word => !NOT_A_TABLE.iter().any(|k| n.is_kw(k)),
        _ => false,
    })
}

/// An open `set_config(` call whose arguments are being read.
#[derive(Clone, Copy)]
struct Call {
    /// Paren depth of the call's own arguments.
    depth: u32,
    /// Index of the argument being read.
    arg: u32,
    third: Third,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Third {
    Empty,
    True,
    Other,
}

/// Scans a whole statement for session-level function calls and
/// `SELECT ... INTO TEMP`. Calls are matched at their `(`, from the (at most
/// three) tokens before it, so an identifier that is only part of a longer
/// one, or sits in a quote or comment, never matches.
fn scan<'a>(cur: &mut Cursor<'a>, first: Token<'a>) -> Effect<'a> {
    let mut recent: [Option<Token<'a>>; 3] = [None; 3];
    let mut depth: u32 = 0;
    let mut in_select = false;
    let mut calls = [Call {
        depth: 0,
        arg: 0,
        third: Third::Empty,
    }; MAX_SET_CONFIG_NESTING];
    let mut open = 0;
    let mut next = Some(first);
    while let Some(t) = next {
        if open > 0 {
            let call = &mut calls[open - 1];
            if depth == call.depth && t.is_punct(b')') {
                // Other arities are not pg_catalog.set_config.
                if call.arg == 2 && call.third != Third::True {
                    return Effect::Pin(PinReason::SetConfig);
                }
                open -= 1;
            } else if depth == call.depth && t.is_punct(b',') {
                call.arg = call.arg.saturating_add(1);
            } else if call.arg == 2 {
                let literal = depth == call.depth && is_true(t);
                call.third = match (call.third, literal) {
                    (Third::Empty, true) => Third::True,
                    _ => Third::Other,
                };
            }
        }
        match t.kind {
            Kind::Punct(b'(') => {
                if let Some(f) = recent[0]
                    && (recent[1].is_none_or(|d| !d.is_punct(b'.'))
                        || recent[2].is_some_and(|s| s.names("pg_catalog")))
                {
                    if ADVISORY_LOCKS.iter().any(|l| f.names(l)) {
                        return Effect::Pin(PinReason::AdvisoryLock);
                    }
                    if f.names("set_config") {
                        if open == MAX_SET_CONFIG_NESTING {
                            return Effect::Pin(PinReason::SetConfig);
                        }
                        calls[open] = Call {
                            depth: depth.saturating_add(1),
                            arg: 0,
                            third: Third::Empty,
                        };
                        open += 1;
                    }
                }
                depth = depth.saturating_add(1);
            }
            Kind::Punct(b')') => depth = depth.saturating_sub(1),
            Kind::Word if depth == 0 => {
                if t.is_kw("select") {
                    in_select = true;
                } else if t.is_kw("insert")
                    || t.is_kw("update")
                    || t.is_kw("delete")
                    || t.is_kw("merge")
                {
                    in_select = false;
                } else if in_select && t.is_kw("into") && temp_target(cur.clone()) {
                    return Effect::Pin(PinReason::TempObject);
                }
            }
            _ => {}
        }
        recent = [Some(t), recent[0], recent[1]];
        next = cur.next();
    }
    if open > 0 {
        // Cut off mid-call (the server will reject it): stay on the safe side.
        return Effect::Pin(PinReason::SetConfig);
    }
    Effect::Other
}

/// The literal `true` as set_config's third argument: the keyword, or a
/// plain string the boolean input function reads as true.
fn is_true(t: Token<'_>) -> bool {
    match t.kind {
        Kind::Word => t.is_kw("true"),
        Kind::Str if t.text.len() >= 2 && t.text[0] == b'\'' && t.text.ends_with(b"'") => {
            let inner = trim(&t.text[1..t.text.len() - 1]);
            ["true", "t", "yes", "y", "on", "1"]
                .iter()
                .any(|v| inner.eq_ignore_ascii_case(v.as_bytes()))
        }
        _ => false,
    }
}

/// A possibly dotted name read from the statement.
struct Name<'a> {
    /// `None` when the name is not valid UTF-8.
    canonical: Option<Cow<'a, str>>,
    /// The token after the name.
    after: Option<Token<'a>>,
}

/// Reads `part [. part]...` starting at `first`; `None` when `first` is not
/// an identifier or a dot is not followed by one.
fn name<'a>(cur: &mut Cursor<'a>, first: Token<'a>) -> Option<Name<'a>> {
    if !first.is_ident() {
        return None;
    }
    let rest = cur.clone();
    let mut last = first;
    let mut parts = 1;
    // Whether the canonical name is a contiguous slice of the text.
    let mut contiguous = first.kind == Kind::Word && is_canonical_word(first.text);
    let after = loop {
        match cur.next() {
            Some(dot) if dot.is_punct(b'.') => {
                let part = cur.next().filter(Token::is_ident)?;
                contiguous &= dot.start == last.end()
                    && part.start == dot.end()
                    && part.kind == Kind::Word
                    && is_canonical_word(part.text);
                last = part;
                parts += 1;
            }
            other => break other,
        }
    };
    let src = cur.lex.src;
    let canonical = if contiguous {
        std::str::from_utf8(&src[first.start..last.end()])
            .ok()
            .map(Cow::Borrowed)
    } else if parts == 1
        && let Kind::Quoted { .. } = first.kind
        && let inner = quoted_inner(first.text)
        && inner.len() <= MAX_IDENT
        && memchr(b'"', inner).is_none()
    {
        std::str::from_utf8(inner).ok().map(Cow::Borrowed)
    } else {
        owned_name(rest, first, parts).map(Cow::Owned)
    };
    Some(Name { canonical, after })
}

fn owned_name(mut rest: Cursor<'_>, first: Token<'_>, parts: usize) -> Option<String> {
    let mut s = String::new();
    push_part(&mut s, first)?;
    for _ in 1..parts {
        rest.next()?;
        let part = rest.next()?;
        s.push('.');
        push_part(&mut s, part)?;
    }
    Some(s)
}

/// Appends one name part as the server's lexer sees it: unquoted folded to
/// lower case (ASCII only, as for UTF-8 databases), quoted unescaped, both cut
/// to [`MAX_IDENT`] bytes on a character boundary.
fn push_part(s: &mut String, t: Token<'_>) -> Option<()> {
    match t.kind {
        Kind::Word => {
            let w = clip(std::str::from_utf8(t.text).ok()?);
            s.extend(w.chars().map(|c| c.to_ascii_lowercase()));
        }
        Kind::Quoted { .. } => {
            let q = std::str::from_utf8(quoted_inner(t.text)).ok()?;
            s.push_str(clip(&q.replace("\"\"", "\"")));
        }
        _ => return None,
    }
    Some(())
}

fn clip(s: &str) -> &str {
    let mut n = s.len().min(MAX_IDENT);
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    &s[..n]
}

fn is_canonical_word(w: &[u8]) -> bool {
    w.len() <= MAX_IDENT && !w.iter().any(u8::is_ascii_uppercase)
}

/// The text between a closed quoted identifier's quotes.
fn quoted_inner(text: &[u8]) -> &[u8] {
    text.get(1..text.len().saturating_sub(1))
        .unwrap_or_default()
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| !is_space(b)).unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|&b| !is_space(b))
        .map_or(start, |i| i + 1);
    &s[start..end]
}

/// Tokens of one statement: stops at the `;` that ends it, tracking what
/// decides whether a `;` is top level.
#[derive(Clone)]
struct Cursor<'a> {
    lex: Lexer<'a>,
    parens: u32,
    routine: Routine,
    /// Depth of `BEGIN ATOMIC ... END` (and `CASE ... END` inside it).
    atomic: u32,
    prev_begin: bool,
    /// Where the statement's text ends (its `;`, or the end of input).
    end: Option<usize>,
}

/// How far the statement matches `CREATE [OR REPLACE] {FUNCTION|PROCEDURE}`,
/// the only statements whose body may hold top-level semicolons (as in psql).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Routine {
    Start,
    Create,
    CreateOr,
    CreateOrReplace,
    Yes,
    No,
}

impl<'a> Cursor<'a> {
    fn new(src: &'a [u8], pos: usize) -> Self {
        Cursor {
            lex: Lexer { src, pos },
            parens: 0,
            routine: Routine::Start,
            atomic: 0,
            prev_begin: false,
            end: None,
        }
    }

    fn next(&mut self) -> Option<Token<'a>> {
        if self.end.is_some() {
            return None;
        }
        let Some(t) = self.lex.next() else {
            self.end = Some(self.lex.src.len());
            return None;
        };
        match t.kind {
            Kind::Punct(b'(') => self.parens = self.parens.saturating_add(1),
            Kind::Punct(b')') => self.parens = self.parens.saturating_sub(1),
            Kind::Punct(b';') if self.parens == 0 && self.atomic == 0 => {
                self.end = Some(t.start);
                return None;
            }
            Kind::Word => {
                self.word(t);
                return Some(t);
            }
            _ => {}
        }
        self.prev_begin = false;
        Some(t)
    }

    fn word(&mut self, t: Token<'_>) {
        self.routine = match self.routine {
            Routine::Start if t.is_kw("create") => Routine::Create,
            Routine::Create if t.is_kw("or") => Routine::CreateOr,
            Routine::CreateOr if t.is_kw("replace") => Routine::CreateOrReplace,
            Routine::Create | Routine::CreateOrReplace
                if t.is_kw("function") || t.is_kw("procedure") =>
            {
                Routine::Yes
            }
            Routine::Yes => Routine::Yes,
            _ => Routine::No,
        };
        if self.routine != Routine::Yes || self.parens != 0 {
            return;
        }
        let opens = (self.prev_begin && t.is_kw("atomic")) || (self.atomic > 0 && t.is_kw("case"));
        if opens {
            self.atomic = self.atomic.saturating_add(1);
        } else if self.atomic > 0 && t.is_kw("end") {
            self.atomic -= 1;
        }
        self.prev_begin = t.is_kw("begin");
    }

    fn finish(&mut self) {
        while self.next().is_some() {}
    }

    /// Where the statement's text ends; meaningful once `next` returned None.
    fn end(&self) -> usize {
        self.end.unwrap_or(self.lex.pos)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// An unquoted identifier or keyword.
    Word,
    /// A double-quoted identifier; `closed` is false when the text ended
    /// inside it.
    Quoted {
        closed: bool,
    },
    /// Any string literal: '...', E'...', $tag$...$tag$.
    Str,
    Number,
    /// `$1`.
    Param,
    /// Any other single byte.
    Punct(u8),
}

#[derive(Clone, Copy, Debug)]
struct Token<'a> {
    kind: Kind,
    /// The token's whole text, quotes included.
    text: &'a [u8],
    start: usize,
}

impl Token<'_> {
    fn end(&self) -> usize {
        self.start + self.text.len()
    }

    fn is_kw(&self, kw: &str) -> bool {
        self.kind == Kind::Word && self.text.eq_ignore_ascii_case(kw.as_bytes())
    }

    fn is_punct(&self, b: u8) -> bool {
        self.kind == Kind::Punct(b)
    }

    fn is_ident(&self) -> bool {
        matches!(self.kind, Kind::Word | Kind::Quoted { closed: true })
    }

    /// Whether this identifier means `ident` (given in lower case) to the
    /// server: unquoted in any case, or quoted exactly.
    fn names(&self, ident: &str) -> bool {
        match self.kind {
            Kind::Word => self.text.eq_ignore_ascii_case(ident.as_bytes()),
            Kind::Quoted { closed: true } => quoted_inner(self.text) == ident.as_bytes(),
            _ => false,
        }
    }
}

/// PostgreSQL's lexical rules, reduced to what finds token boundaries.
#[derive(Clone)]
struct Lexer<'a> {
    src: &'a [u8],
    pos: usize,
}

impl<'a> Lexer<'a> {
    /// The next token after blanks and comments; `None` at the end.
    fn next(&mut self) -> Option<Token<'a>> {
        let src = self.src;
        self.skip_blank();
        let start = self.pos;
        let &b = src.get(start)?;
        let second = src.get(start + 1).copied();
        let (kind, end) = match b {
            b'\'' => (Kind::Str, string_end(src, start + 1, b'\'', false).0),
            b'E' | b'e' if second == Some(b'\'') => {
                (Kind::Str, string_end(src, start + 2, b'\'', true).0)
            }
            b'"' => {
                let (end, closed) = string_end(src, start + 1, b'"', false);
                (Kind::Quoted { closed }, end)
            }
            b'$' => dollar(src, start),
            b'0'..=b'9' => (Kind::Number, run(src, start + 1, is_number_byte)),
            _ if is_ident_start(b) => (Kind::Word, run(src, start + 1, is_ident_byte)),
            _ => (Kind::Punct(b), start + 1),
        };
        self.pos = end;
        Some(Token {
            kind,
            text: &src[start..end],
            start,
        })
    }

    fn skip_blank(&mut self) {
        let src = self.src;
        loop {
            let second = src.get(self.pos + 1).copied();
            match src.get(self.pos) {
                Some(&b) if is_space(b) => self.pos += 1,
                Some(b'-') if second == Some(b'-') => {
                    let body = self.pos + 2;
                    self.pos =
                        memchr2(b'\n', b'\r', &src[body..]).map_or(src.len(), |i| body + i + 1);
                }
                Some(b'/') if second == Some(b'*') => {
                    self.pos = block_comment_end(src, self.pos + 2)
                }
                _ => return,
            }
        }
    }
}

/// End of a quoted run opened before `from`, and whether it closed: a
/// doubled `quote` stays inside, and with `backslash` a backslash escapes the
/// next byte.
fn string_end(src: &[u8], from: usize, quote: u8, backslash: bool) -> (usize, bool) {
    let mut i = from;
    loop {
        let Some(rest) = src.get(i..) else {
            return (src.len(), false);
        };
        let found = if backslash {
            memchr2(quote, b'\\', rest)
        } else {
            memchr(quote, rest)
        };
        let Some(k) = found else {
            return (src.len(), false);
        };
        let at = i + k;
        if src[at] == b'\\' || src.get(at + 1) == Some(&quote) {
            i = at + 2;
        } else {
            return (at + 1, true);
        }
    }
}

/// End of a block comment whose body starts at `from`; they nest.
fn block_comment_end(src: &[u8], from: usize) -> usize {
    let mut depth: u32 = 1;
    let mut i = from;
    while let Some(k) = src.get(i..).and_then(|rest| memchr2(b'*', b'/', rest)) {
        let at = i + k;
        match (src[at], src.get(at + 1)) {
            (b'/', Some(b'*')) => {
                depth = depth.saturating_add(1);
                i = at + 2;
            }
            (b'*', Some(b'/')) => {
                depth -= 1;
                i = at + 2;
                if depth == 0 {
                    return i;
                }
            }
            _ => i = at + 1,
        }
    }
    src.len()
}

/// A `$` at `start`: a parameter `$1`, a dollar quote `$$...$$` or
/// `$tag$...$tag$`, or a lone `$`.
fn dollar(src: &[u8], start: usize) -> (Kind, usize) {
    let after = start + 1;
    let tag_end = match src.get(after) {
        Some(b) if b.is_ascii_digit() => {
            return (Kind::Param, run(src, after, |b| b.is_ascii_digit()));
        }
        Some(b'$') => after,
        Some(&b) if is_ident_start(b) => run(src, after, is_tag_byte),
        _ => return (Kind::Punct(b'$'), after),
    };
    if src.get(tag_end) != Some(&b'$') {
        return (Kind::Punct(b'$'), after);
    }
    let body = tag_end + 1;
    let delim = &src[start..body];
    let end = memmem::find(&src[body..], delim).map_or(src.len(), |k| body + k + delim.len());
    (Kind::Str, end)
}

fn run(src: &[u8], from: usize, pred: impl Fn(u8) -> bool) -> usize {
    src.get(from..)
        .and_then(|rest| rest.iter().position(|&b| !pred(b)))
        .map_or(src.len(), |k| from + k)
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c')
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

fn is_tag_byte(b: u8) -> bool {
    is_ident_start(b) || b.is_ascii_digit()
}

fn is_ident_byte(b: u8) -> bool {
    is_tag_byte(b) || b == b'$'
}

/// Numbers are read loosely (`1.5e3`, `0x1F`, `1_000`): only their end
/// matters.
fn is_number_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'.'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(name: &str) -> Effect<'_> {
        Effect::Set {
            name: Cow::Borrowed(name),
        }
    }

    fn reset(name: &str) -> Effect<'_> {
        Effect::Reset {
            name: Cow::Borrowed(name),
        }
    }

    fn dealloc(name: &str) -> Effect<'_> {
        Effect::Deallocate {
            name: Cow::Borrowed(name),
        }
    }

    fn pin(reason: PinReason) -> Effect<'static> {
        Effect::Pin(reason)
    }

    fn split(sql: &str) -> Vec<&str> {
        statements(sql.as_bytes())
            .map(|s| std::str::from_utf8(s).unwrap())
            .collect()
    }

    const SPLITS: &[(&str, &[&str])] = &[
        ("", &[]),
        ("   \n\t", &[]),
        (";;; ;", &[]),
        (" ; -- only a comment\n ; /* and another */ ;", &[]),
        ("SELECT 1", &["SELECT 1"]),
        ("SELECT 1; SELECT 2", &["SELECT 1", "SELECT 2"]),
        ("  SELECT 1 ;  ;; \n SELECT 2;  ", &["SELECT 1", "SELECT 2"]),
        ("/* lead */ SELECT 1", &["/* lead */ SELECT 1"]),
        ("SELECT 'a;b'; SELECT 2", &["SELECT 'a;b'", "SELECT 2"]),
        (
            "SELECT 'it''s;'; SELECT 2",
            &["SELECT 'it''s;'", "SELECT 2"],
        ),
        ("SELECT '\\'; SELECT 2", &["SELECT '\\'", "SELECT 2"]),
        ("SELECT E'\\';'; SELECT 2", &["SELECT E'\\';'", "SELECT 2"]),
        (
            "SELECT e'a\\\\'; SELECT 2",
            &["SELECT e'a\\\\'", "SELECT 2"],
        ),
        ("SELECT E'a'';'; SELECT 2", &["SELECT E'a'';'", "SELECT 2"]),
        (
            "SELECT namE'x;'; SELECT 2",
            &["SELECT namE'x;'", "SELECT 2"],
        ),
        (
            "SELECT \"a;\"\"b\"; SELECT 2",
            &["SELECT \"a;\"\"b\"", "SELECT 2"],
        ),
        ("SELECT $$a;b$$; SELECT 2", &["SELECT $$a;b$$", "SELECT 2"]),
        (
            "SELECT $tag$ $$; ' $tag$; SELECT 2",
            &["SELECT $tag$ $$; ' $tag$", "SELECT 2"],
        ),
        (
            "SELECT $a$ $b$; $a$; SELECT 2",
            &["SELECT $a$ $b$; $a$", "SELECT 2"],
        ),
        ("SELECT $1; SELECT $2", &["SELECT $1", "SELECT $2"]),
        ("SELECT $1;$$;$$", &["SELECT $1", "$$;$$"]),
        ("SELECT a$$b; SELECT 2", &["SELECT a$$b", "SELECT 2"]),
        (
            "SELECT 1 -- c; x\n; SELECT 2",
            &["SELECT 1 -- c; x", "SELECT 2"],
        ),
        (
            "SELECT 1 -- c; x\r; SELECT 2",
            &["SELECT 1 -- c; x", "SELECT 2"],
        ),
        ("SELECT 1 --; x", &["SELECT 1 --; x"]),
        (
            "SELECT /* a /* b; */ c; */ 1; SELECT 2",
            &["SELECT /* a /* b; */ c; */ 1", "SELECT 2"],
        ),
        (
            "SELECT /*/ ; */ 1; SELECT 2",
            &["SELECT /*/ ; */ 1", "SELECT 2"],
        ),
        ("SELECT 1 /* ; */", &["SELECT 1 /* ; */"]),
        ("SELECT 2-1;SELECT 3", &["SELECT 2-1", "SELECT 3"]),
        // Unterminated forms run to the end.
        ("SELECT 'abc; SELECT 2", &["SELECT 'abc; SELECT 2"]),
        ("SELECT E'ab\\'; SELECT 2", &["SELECT E'ab\\'; SELECT 2"]),
        ("SELECT E'\\", &["SELECT E'\\"]),
        ("SELECT \"x; y", &["SELECT \"x; y"]),
        ("SELECT $$x; SELECT 2", &["SELECT $$x; SELECT 2"]),
        ("SELECT $q$x; $Q$ SELECT 2", &["SELECT $q$x; $Q$ SELECT 2"]),
        ("SELECT 1 /* x; y", &["SELECT 1 /* x; y"]),
        (
            "SELECT 1 /* a /* b */ ; */ x; y",
            &["SELECT 1 /* a /* b */ ; */ x", "y"],
        ),
        ("SELECT 1; /* x; y", &["SELECT 1"]),
        ("SELECT 1; --", &["SELECT 1"]),
        // Parentheses: a `;` inside belongs to a rule action list.
        (
            "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); NOTIFY b); SELECT 1",
            &[
                "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); NOTIFY b)",
                "SELECT 1",
            ],
        ),
        ("SELECT 1); SELECT 2", &["SELECT 1)", "SELECT 2"]),
        // SQL-standard function bodies.
        (
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN true \
             THEN 1 END; SELECT 2; END; SELECT 3",
            &[
                "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN true \
                 THEN 1 END; SELECT 2; END",
                "SELECT 3",
            ],
        ),
        (
            "create or replace procedure p() begin atomic insert into t values (1); end;select 1",
            &[
                "create or replace procedure p() begin atomic insert into t values (1); end",
                "select 1",
            ],
        ),
        ("BEGIN; SELECT 1; END;", &["BEGIN", "SELECT 1", "END"]),
        (
            "CREATE TABLE t (a int); BEGIN; SELECT 1",
            &["CREATE TABLE t (a int)", "BEGIN", "SELECT 1"],
        ),
    ];

    #[test]
    fn splits_statements() {
        for (sql, want) in SPLITS {
            assert_eq!(split(sql), *want, "{sql:?}");
        }
    }

    fn effect_cases() -> Vec<(&'static [u8], Effect<'static>)> {
        use PinReason::*;
        let other = Effect::Other;
        let long = "a".repeat(70);
        let long: &'static str = Box::leak(format!("SET {long} = 1").into_boxed_str());
        vec![
            // SET
            (b"SET search_path TO public", set("search_path")),
            (b"set Search_Path = 'x'", set("search_path")),
            (b"SET search_path=public", set("search_path")),
            (b"SET statement_timeout TO DEFAULT", set("statement_timeout")),
            (b"SET SESSION statement_timeout = 5", set("statement_timeout")),
            (b"SeT sEsSiOn TimeZone TO 'UTC'", set("timezone")),
            (b"SET \"TimeZone\" = 'UTC'", set("TimeZone")),
            (b"SET \"a\"\"b\" = 1", set("a\"b")),
            (b"SET myapp.user_id = 5", set("myapp.user_id")),
            (b"SET MyApp.User_Id TO 5", set("myapp.user_id")),
            (b"SET myapp.\"User\" = 1", set("myapp.User")),
            (b"SET myapp . user_id = 1", set("myapp.user_id")),
            (b"SET a.b.c = 1", set("a.b.c")),
            (b"SET x FROM CURRENT", set("x")),
            (b"/* c */ -- x\n  SET x = 1", set("x")),
            (long.as_bytes(), set(&long[4..67])),
            (b"SET TIME ZONE 'UTC'", set("timezone")),
            (b"set time zone local", set("timezone")),
            (b"SET SESSION TIME ZONE DEFAULT", set("timezone")),
            (b"SET NAMES 'UTF8'", set("client_encoding")),
            (b"SET SCHEMA 'public'", set("search_path")),
            (b"SET ROLE admin", set("role")),
            (b"SET ROLE NONE", set("role")),
            (b"set role = 'x'", set("role")),
            (b"SET SESSION AUTHORIZATION bob", set("session_authorization")),
            (b"SET SESSION SESSION AUTHORIZATION DEFAULT", set("session_authorization")),
            (b"SET XML OPTION DOCUMENT", set("xmloption")),
            (b"SET time = 1", set("time")),
            (b"SET LOCAL x = 1", other.clone()),
            (b"set local time zone 'UTC'", other.clone()),
            (b"SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", other.clone()),
            (b"SET SESSION TRANSACTION READ ONLY", other.clone()),
            (b"SET TRANSACTION SNAPSHOT '0001'", other.clone()),
            (b"SET CONSTRAINTS ALL DEFERRED", other.clone()),
            (b"SET CATALOG 'db'", other.clone()),
            (b"SET", other.clone()),
            (b"SET x", other.clone()),
            (b"SET a. = 1", other.clone()),
            (b"SET \xff = 1", other.clone()),
            (b"SET \"\xff\" = 1", other.clone()),
            (b"SET x\xff = 1", other.clone()),
            (b"UPDATE t SET x = 1", other.clone()),
            (b"ALTER ROLE r SET search_path = x", other.clone()),
            (
                b"SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE",
                pin(SessionCharacteristics),
            ),
            (
                b"set session session characteristics as transaction read only",
                pin(SessionCharacteristics),
            ),
            // RESET
            (b"RESET search_path", reset("search_path")),
            (b"reset Search_Path", reset("search_path")),
            (b"RESET TIME ZONE", reset("timezone")),
            (b"RESET timezone", reset("timezone")),
            (b"RESET ROLE", reset("role")),
            (b"RESET SESSION AUTHORIZATION", reset("session_authorization")),
            (b"RESET TRANSACTION ISOLATION LEVEL", reset("transaction_isolation")),
            (b"RESET myapp.X", reset("myapp.x")),
            (b"RESET \"X\"", reset("X")),
            (b"RESET ALL", Effect::ResetAll),
            (b"reset all", Effect::ResetAll),
            (b"RESET \"all\"", reset("all")),
            (b"RESET", other.clone()),
            // DISCARD
            (b"DISCARD ALL", Effect::DiscardAll),
            (b"discard All", Effect::DiscardAll),
            (b"DISCARD PLANS", other.clone()),
            (b"DISCARD TEMP", other.clone()),
            (b"DISCARD", other.clone()),
            // DEALLOCATE
            (b"DEALLOCATE ALL", Effect::DeallocateAll),
            (b"deallocate prepare all", Effect::DeallocateAll),
            (b"DEALLOCATE S_1", dealloc("s_1")),
            (b"DEALLOCATE \"S_1\"", dealloc("S_1")),
            (b"DEALLOCATE PREPARE foo", dealloc("foo")),
            (b"DEALLOCATE prepare", dealloc("prepare")),
            (b"DEALLOCATE \"all\"", dealloc("all")),
            (b"DEALLOCATE", other.clone()),
            // Temporary objects
            (b"CREATE TEMP TABLE t (a int)", pin(TempObject)),
            (b"create temporary table t as select 1", pin(TempObject)),
            (b"CREATE LOCAL TEMPORARY TABLE t ()", pin(TempObject)),
            (b"CREATE GLOBAL TEMP TABLE t ()", pin(TempObject)),
            (b"CREATE TEMP VIEW v AS SELECT 1", pin(TempObject)),
            (b"CREATE OR REPLACE TEMP VIEW v AS SELECT 1", pin(TempObject)),
            (b"CREATE OR REPLACE TEMPORARY RECURSIVE VIEW v (a) AS SELECT 1", pin(TempObject)),
            (b"CREATE TEMPORARY SEQUENCE s", pin(TempObject)),
            (b"CREATE TEMP TABLE IF NOT EXISTS t ()", pin(TempObject)),
            (b"CREATE TABLE pg_temp.t (a int)", pin(TempObject)),
            (b"CREATE TABLE \"pg_temp\" . t (a int)", pin(TempObject)),
            (
                b"CREATE FUNCTION pg_temp.f() RETURNS int AS 'select 1' LANGUAGE sql",
                pin(TempObject),
            ),
            (b"SELECT * INTO TEMP t FROM x", pin(TempObject)),
            (b"SELECT a INTO TEMPORARY TABLE t FROM x", pin(TempObject)),
            (b"select 1 as a into local temp t", pin(TempObject)),
            (b"SELECT 1 INTO TEMP \"T\"", pin(TempObject)),
            (b"WITH q AS (SELECT 1) SELECT * INTO TEMP t FROM q", pin(TempObject)),
            (b"CREATE TABLE temp_stuff (a int)", other.clone()),
            (b"CREATE TABLE t (temp int)", other.clone()),
            (b"CREATE UNLOGGED TABLE t ()", other.clone()),
            (b"CREATE TABLE t AS SELECT * FROM pg_temp.x", other.clone()),
            (b"INSERT INTO temp VALUES (1)", other.clone()),
            (b"SELECT * INTO t FROM x", other.clone()),
            (b"SELECT * INTO temp FROM x", other.clone()),
            (b"SELECT 'INTO TEMP t'", other.clone()),
            (b"WITH q AS (SELECT 1) INSERT INTO temp t SELECT * FROM q", other.clone()),
            (b"MERGE INTO temp t USING s ON true WHEN MATCHED THEN DO NOTHING", other.clone()),
            (b"SELECT (SELECT 1) FROM t; INSERT INTO temp x VALUES (1)", other.clone()),
            // LISTEN
            (b"LISTEN chan", pin(Listen)),
            (b"listen \"Chan\"", pin(Listen)),
            (b"UNLISTEN chan", other.clone()),
            (b"NOTIFY chan", other.clone()),
            (b"SELECT 'LISTEN x'", other.clone()),
            // Advisory locks
            (b"SELECT pg_advisory_lock(1)", pin(AdvisoryLock)),
            (b"select PG_ADVISORY_LOCK (1)", pin(AdvisoryLock)),
            (b"SELECT pg_catalog.pg_advisory_lock(1)", pin(AdvisoryLock)),
            (b"SELECT \"pg_catalog\".\"pg_advisory_lock\"(1)", pin(AdvisoryLock)),
            (b"SELECT pg_try_advisory_lock(1, 2)", pin(AdvisoryLock)),
            (b"SELECT pg_advisory_lock_shared(1)", pin(AdvisoryLock)),
            (b"SELECT pg_try_advisory_lock_shared(1)", pin(AdvisoryLock)),
            (b"SELECT x FROM t WHERE pg_try_advisory_lock(t.id)", pin(AdvisoryLock)),
            (b"INSERT INTO t VALUES (pg_advisory_lock(1))", pin(AdvisoryLock)),
            (b"SELECT /* c */ pg_advisory_lock /* ( */ (1)", pin(AdvisoryLock)),
            (b"DECLARE c CURSOR FOR SELECT pg_advisory_lock(1)", pin(AdvisoryLock)),
            (b"SELECT pg_advisory_xact_lock(1)", other.clone()),
            (b"SELECT pg_try_advisory_xact_lock(1)", other.clone()),
            (b"SELECT pg_advisory_xact_lock_shared(1)", other.clone()),
            (b"SELECT my_pg_advisory_lock(1)", other.clone()),
            (b"SELECT pg_advisory_lock_x(1)", other.clone()),
            (b"SELECT pg_advisory_unlock(1)", other.clone()),
            (b"SELECT 'pg_advisory_lock(1)'", other.clone()),
            (b"SELECT E'\\'pg_advisory_lock(1)'", other.clone()),
            (b"SELECT \"pg_advisory_lock(1)\"", other.clone()),
            (b"SELECT \"PG_ADVISORY_LOCK\"(1)", other.clone()),
            (b"-- pg_advisory_lock(1)\nSELECT 1", other.clone()),
            (b"SELECT /* pg_advisory_lock(1) */ 1", other.clone()),
            (b"SELECT $$pg_advisory_lock(1)$$", other.clone()),
            (b"SELECT myschema.pg_advisory_lock(1)", other.clone()),
            (b"SELECT pg_advisory_lock", other.clone()),
            (b"DROP FUNCTION pg_advisory_lock(bigint)", other.clone()),
            (
                b"CREATE FUNCTION f() RETURNS void LANGUAGE sql BEGIN ATOMIC SELECT pg_advisory_lock(1); END",
                other.clone(),
            ),
            // WITH HOLD cursors
            (b"DECLARE c CURSOR WITH HOLD FOR SELECT 1", pin(HoldCursor)),
            (
                b"declare c binary insensitive no scroll cursor with hold for select 1",
                pin(HoldCursor),
            ),
            (b"DECLARE \"C\" SCROLL CURSOR WITH HOLD FOR SELECT 1", pin(HoldCursor)),
            (b"DECLARE c CURSOR WITHOUT HOLD FOR SELECT 1", other.clone()),
            (b"DECLARE c CURSOR FOR SELECT 1", other.clone()),
            (b"DECLARE c SCROLL CURSOR FOR SELECT 'WITH HOLD'", other.clone()),
            // PREPARE
            (b"PREPARE p AS SELECT 1", pin(Prepare)),
            (b"prepare p (int, text) as select $1", pin(Prepare)),
            (b"PREPARE transaction AS SELECT 1", pin(Prepare)),
            (b"PREPARE TRANSACTION 'gid'", other.clone()),
            (b"COMMIT PREPARED 'gid'", other.clone()),
            (b"EXECUTE p", other.clone()),
            (b"PREPARE", other.clone()),
            // set_config
            (b"SELECT set_config('a','b',false)", pin(SetConfig)),
            (b"SELECT set_config('a', 'b', FALSE)", pin(SetConfig)),
            (b"select SET_CONFIG ('a', 'b', $1)", pin(SetConfig)),
            (b"SELECT pg_catalog.set_config('a', 'b', false)", pin(SetConfig)),
            (b"SELECT set_config('a', concat('x', 'y'), false)", pin(SetConfig)),
            (b"SELECT set_config('a', 'b', true OR false)", pin(SetConfig)),
            (b"SELECT set_config('a', 'b', (true))", pin(SetConfig)),
            (b"SELECT set_config('a', 'b', 'false')", pin(SetConfig)),
            (b"SELECT set_config('a', 'b', )", pin(SetConfig)),
            (b"SELECT set_config('a', 'b', false", pin(SetConfig)),
            (b"SELECT set_config('a', set_config('b', 'c', false), true)", pin(SetConfig)),
            (
                b"SELECT set_config('a', 'b', true) FROM t WHERE set_config('c', 'd', false) = ''",
                pin(SetConfig),
            ),
            (b"SELECT set_config('a','b',true)", other.clone()),
            (b"SELECT set_config('a', 'b', TRUE )", other.clone()),
            (b"SELECT set_config('a', 'b', ' True ')", other.clone()),
            (b"SELECT set_config('a', 'b', 'on')", other.clone()),
            (b"SELECT set_config('a', f(1, 2), true)", other.clone()),
            (b"SELECT set_config('a', ',', true)", other.clone()),
            (b"SELECT set_config('a', ')', /* , */ true)", other.clone()),
            (
                b"SELECT set_config('a', 'b', true), set_config('c', 'd', true)",
                other.clone(),
            ),
            (b"SELECT set_config('a', set_config('b', 'c', true), true)", other.clone()),
            (b"SELECT my_set_config('a', 'b', false)", other.clone()),
            (b"SELECT x.set_config('a', 'b', false)", other.clone()),
            (b"SELECT set_config('a', 'b')", other.clone()),
            (b"SELECT 'set_config(1, 2, false)'", other.clone()),
            (b"SELECT current_setting('a')", other.clone()),
            // Everything else
            (b"", other.clone()),
            (b"  -- nothing\n", other.clone()),
            (b"SELECT 1", other.clone()),
            (b"BEGIN", other.clone()),
            (b"COMMIT", other.clone()),
            (b"CREATE TABLE t (a int)", other.clone()),
            (b"(SELECT 1)", other.clone()),
            (b"\xff\xfe SET x = 1", other.clone()),
        ]
    }

    #[test]
    fn classifies_statements() {
        for (sql, want) in effect_cases() {
            let shown = String::from_utf8_lossy(sql);
            assert_eq!(classify(sql), want, "classify {shown:?}");
            let all: Vec<_> = effects(sql).collect();
            if want == Effect::Other {
                assert!(
                    all.iter().all(|e| *e == Effect::Other),
                    "effects {shown:?}: {all:?}"
                );
            } else {
                assert_eq!(all, [want], "effects {shown:?}");
            }
        }
    }

    #[test]
    fn names_borrow_when_already_canonical() {
        let borrowed = |sql: &[u8]| match classify(sql) {
            Effect::Set { name } | Effect::Reset { name } | Effect::Deallocate { name } => {
                matches!(name, Cow::Borrowed(_))
            }
            e => panic!("{e:?}"),
        };
        assert!(borrowed(b"SET search_path = x"));
        assert!(borrowed(b"SET myapp.user_id = x"));
        assert!(borrowed(b"SET \"TimeZone\" = x"));
        assert!(borrowed(b"RESET TIME ZONE"));
        assert!(borrowed(b"DEALLOCATE s_1"));
        assert!(!borrowed(b"SET Search_Path = x"));
        assert!(!borrowed(b"SET myapp. user_id = x"));
        assert!(!borrowed(b"SET myapp.\"u\" = x"));
        assert!(!borrowed(b"SET \"a\"\"b\" = x"));
    }

    #[test]
    fn classifies_every_statement_in_order() {
        let sql = b"SET a = 1; SELECT 1; ; LISTEN c; RESET ALL; SELECT 'x;y'; DISCARD ALL";
        let got: Vec<_> = effects(sql).collect();
        assert_eq!(
            got,
            [
                set("a"),
                Effect::Other,
                pin(PinReason::Listen),
                Effect::ResetAll,
                Effect::Other,
                Effect::DiscardAll,
            ]
        );
        assert!(has_effects(sql));
        assert!(!has_effects(
            b"SELECT 1; INSERT INTO t VALUES ('SET x = 1'); -- LISTEN x"
        ));
        assert!(has_effects(b"SELECT 1; SELECT pg_advisory_lock(1)"));
    }

    /// The invariants every input must keep: no panic, one effect per
    /// statement, classify agreeing with effects, has_effects with both.
    fn check(sql: &[u8]) {
        let stmts: Vec<_> = statements(sql).collect();
        let all: Vec<_> = effects(sql).collect();
        assert_eq!(stmts.len(), all.len(), "{:?}", String::from_utf8_lossy(sql));
        for (stmt, effect) in stmts.iter().zip(&all) {
            assert!(!stmt.is_empty());
            assert_eq!(trim(stmt), *stmt);
            assert_eq!(
                &classify(stmt),
                effect,
                "{:?}",
                String::from_utf8_lossy(stmt)
            );
        }
        assert_eq!(has_effects(sql), all.iter().any(|e| *e != Effect::Other));
    }

    #[test]
    fn invariants_hold_on_all_cases() {
        for (sql, _) in SPLITS {
            check(sql.as_bytes());
        }
        for (sql, _) in effect_cases() {
            check(sql);
        }
    }

    /// A tiny deterministic generator, so the test needs no crate.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn never_panics_on_random_bytes() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        for _ in 0..2000 {
            let len = rng.below(64);
            let sql: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            check(&sql);
        }
    }

    #[test]
    fn never_panics_on_random_sql_fragments() {
        const PIECES: &[&str] = &[
            "SET ",
            "set ",
            "LOCAL ",
            "SESSION ",
            "RESET ",
            "ALL",
            "TIME ",
            "ZONE ",
            "x",
            "a.b",
            ".",
            "\"",
            "\"\"",
            "'",
            "''",
            "E'",
            "\\",
            "$",
            "$$",
            "$t$",
            "$1",
            "--",
            "\n",
            "/*",
            "*/",
            ";",
            "(",
            ")",
            ",",
            " ",
            "=",
            "TO ",
            "true",
            "false",
            "set_config",
            "pg_advisory_lock",
            "pg_catalog",
            "CREATE ",
            "TEMP ",
            "TABLE ",
            "SELECT ",
            "INTO ",
            "DECLARE ",
            "CURSOR ",
            "WITH ",
            "HOLD ",
            "FOR ",
            "PREPARE ",
            "TRANSACTION ",
            "DEALLOCATE ",
            "DISCARD ",
            "LISTEN ",
            "FUNCTION ",
            "BEGIN ",
            "ATOMIC ",
            "CASE ",
            "END ",
            "\u{e9}",
            "\u{ff}",
        ];
        let mut rng = XorShift(42);
        for _ in 0..5000 {
            let mut sql = Vec::new();
            for _ in 0..rng.below(24) {
                sql.extend_from_slice(PIECES[rng.below(PIECES.len())].as_bytes());
            }
            if rng.below(4) == 0 && !sql.is_empty() {
                let at = rng.below(sql.len());
                sql[at] = rng.next() as u8;
            }
            check(&sql);
        }
    }

    #[test]
    fn large_texts_are_linear() {
        let mut big = b"INSERT INTO t VALUES ('".to_vec();
        big.resize(10 << 20, b'x');
        big.extend_from_slice(b"'); SET a = 1");
        assert_eq!(effects(&big).collect::<Vec<_>>(), [Effect::Other, set("a")]);

        let mut rows = b"INSERT INTO t VALUES ".to_vec();
        for i in 0..100_000 {
            rows.extend_from_slice(format!("({i}, 'v;{i}', E'\\'', $${i}$$),").as_bytes());
        }
        rows.extend_from_slice(b"(0, '', '', '')");
        assert!(!has_effects(&rows));
        assert_eq!(statements(&rows).count(), 1);

        // Unterminated openers, each of which must not rescan the rest.
        for opener in ["/*", "$a$", "'", "\"", "E'"] {
            let text = format!("SELECT {}", format!("{opener} x ").repeat(50_000));
            check(text.as_bytes());
        }
        let nested = format!("SELECT {}", "set_config(".repeat(100_000));
        assert_eq!(classify(nested.as_bytes()), pin(PinReason::SetConfig));
        let parens = format!("SELECT {}1{}", "(".repeat(100_000), ")".repeat(100_000));
        assert!(!has_effects(parens.as_bytes()));
    }

    #[test]
    fn describes_every_reason() {
        use PinReason::*;
        for r in [
            TempObject,
            Listen,
            AdvisoryLock,
            HoldCursor,
            Prepare,
            SetConfig,
            SessionCharacteristics,
        ] {
            assert!(!r.describe().is_empty());
        }
        assert_eq!(AdvisoryLock.describe(), "a session-level advisory lock");
    }
}
