//! Where a transaction may run in a hybrid pool, judged from its first
//! statement: a cheap first-keyword classifier that sends obvious writes
//! straight to the primary (no failed round trip on a replica), and keeps
//! transactions whose correctness depends on the primary's snapshot off the
//! replicas.
//!
//! It errs towards [`Start::Read`]: a write it misses is caught on the
//! replica (SQLSTATE 25006) and replayed on the primary, so a miss costs a
//! round trip, never a wrong answer. It must not err the other way for the
//! promises it honours (`READ ONLY`, isolation levels), which are read from
//! the statement's own words.

use super::{Cursor, Effect, Kind, Token};

/// Where a transaction that begins with some SQL should start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// Reads, as far as its first statement shows (autocommit): a replica,
    /// with its messages recorded in case it writes after all.
    Read,
    /// Opens a read-write transaction block (`BEGIN`) whose first statement
    /// reads: a replica with recording, unless the pool replays nothing.
    Block,
    /// Promised read-only (`BEGIN READ ONLY`, `SET TRANSACTION READ ONLY`):
    /// a replica; it cannot write.
    ReadOnly,
    /// Writes (INSERT, DDL, `COPY ... FROM`, nextval...), locks rows
    /// (`FOR UPDATE/SHARE`, advisory locks, which a standby keeps to itself),
    /// leaves session state that pins the client to its server, declares
    /// `READ WRITE`, or asks for `REPEATABLE READ` (whose snapshot a replay
    /// would break) or `SERIALIZABLE` (which a standby refuses): the
    /// primary.
    Write,
}

/// Statement heads that always change something.
const WRITES: &[&str] = &[
    "insert",
    "update",
    "delete",
    "merge",
    "create",
    "alter",
    "drop",
    "truncate",
    "grant",
    "revoke",
    "call",
    "do",
    "vacuum",
    "analyze",
    "analyse",
    "cluster",
    "reindex",
    "comment",
    "lock",
    "refresh",
    "import",
    "security",
    "reassign",
    "notify",
    "checkpoint",
];

/// Functions whose call writes, or needs the primary: a standby refuses to
/// assign a transaction id, and its advisory locks exclude nobody on the
/// primary.
const WRITING_CALLS: &[&str] = &["nextval", "setval", "txid_current", "pg_current_xact_id"];

/// Prefixes of such functions' names.
const WRITING_PREFIXES: &[&str] = &["pg_advisory", "pg_try_advisory"];

/// Whether a called function's name (as written) is one of those.
fn writing_call(name: &Token<'_>) -> bool {
    if WRITING_CALLS.iter().any(|f| name.names(f)) {
        return true;
    }
    name.kind == Kind::Word
        && WRITING_PREFIXES.iter().any(|p| {
            name.text.len() >= p.len() && name.text[..p.len()].eq_ignore_ascii_case(p.as_bytes())
        })
}

/// Words inside a statement that make it write: a data-modifying CTE.
const INNER_WRITES: &[&str] = &["insert", "update", "delete", "merge"];

/// Classifies the start of a query string (a simple Query's, or a Parse's).
/// `BEGIN` and `SET TRANSACTION` are read together with the statement after
/// them; anything else decides alone.
pub fn start(sql: &[u8]) -> Start {
    // Session state must live where the client's writes go.
    if super::effects(sql).any(|e| matches!(e, Effect::Pin(_))) {
        return Start::Write;
    }
    let mut pos = 0;
    let mut fold = Fold::default();
    while pos < sql.len() {
        let mut cur = Cursor::new(sql, pos);
        let stmt = cur.next().map(|first| statement(&mut cur, first));
        cur.finish();
        pos = cur.lex.pos;
        let decided = match stmt {
            None => None,
            Some(Stmt::Begin(modes)) => fold.next(modes.start().unwrap_or(Start::Block)),
            Some(Stmt::Write) => fold.next(Start::Write),
            Some(Stmt::Read) => fold.next(Start::Read),
        };
        if let Some(s) = decided {
            return s;
        }
    }
    fold.end()
}

/// Reads statements (or whole query strings) one after another until one
/// decides: a `BEGIN` without modes only opens a block, and the next
/// statement says what the block is (a read inside it is a [`Start::Block`]).
#[derive(Debug, Default)]
pub struct Fold {
    block: bool,
}

impl Fold {
    /// Takes the next statement's class; `Some` once the start is decided.
    pub fn next(&mut self, s: Start) -> Option<Start> {
        match s {
            Start::Block => {
                self.block = true;
                None
            }
            Start::Read if self.block => Some(Start::Block),
            s => Some(s),
        }
    }

    /// What is decided when nothing more follows.
    pub fn end(&self) -> Start {
        if self.block {
            Start::Block
        } else {
            Start::Read
        }
    }
}

enum Stmt {
    /// `BEGIN`, `START TRANSACTION` or `SET TRANSACTION`, with its modes.
    Begin(Modes),
    Write,
    Read,
}

/// Transaction modes a statement declared.
#[derive(Default)]
struct Modes {
    /// `READ ONLY` (true) or `READ WRITE` (false).
    read_only: Option<bool>,
    /// `REPEATABLE READ`.
    snapshot: bool,
    /// `SERIALIZABLE`: refused on a standby even read-only.
    serializable: bool,
}

impl Modes {
    /// Where the declared modes send the transaction, if they decide it.
    fn start(&self) -> Option<Start> {
        if self.serializable {
            return Some(Start::Write);
        }
        match self.read_only {
            Some(true) => Some(Start::ReadOnly),
            Some(false) => Some(Start::Write),
            None if self.snapshot => Some(Start::Write),
            None => None,
        }
    }

    fn read(cur: &mut Cursor<'_>) -> Modes {
        let mut modes = Modes::default();
        while let Some(t) = cur.next() {
            if t.is_kw("isolation") {
                let level = cur
                    .next()
                    .filter(|t| t.is_kw("level"))
                    .and_then(|_| cur.next());
                match level {
                    Some(l) if l.is_kw("serializable") => modes.serializable = true,
                    // REPEATABLE READ, READ COMMITTED / UNCOMMITTED: the
                    // level's second word is not a READ ONLY / WRITE mode.
                    Some(l) if l.is_kw("repeatable") => {
                        modes.snapshot = true;
                        cur.next();
                    }
                    Some(l) if l.is_kw("read") => {
                        cur.next();
                    }
                    _ => {}
                }
            } else if t.is_kw("read") {
                match cur.next() {
                    Some(m) if m.is_kw("only") => modes.read_only = Some(true),
                    Some(m) if m.is_kw("write") => modes.read_only = Some(false),
                    _ => {}
                }
            }
        }
        modes
    }
}

fn statement<'a>(cur: &mut Cursor<'a>, first: Token<'a>) -> Stmt {
    if first.kind != Kind::Word {
        // `(SELECT ...)`, `VALUES` in parentheses...: scanned whole.
        return scan(cur, first);
    }
    let kw = |k: &str| first.is_kw(k);
    if kw("begin") || kw("start") {
        return Stmt::Begin(Modes::read(cur));
    }
    if kw("set") {
        return match cur.next() {
            Some(t) if t.is_kw("transaction") => Stmt::Begin(Modes::read(cur)),
            _ => Stmt::Read,
        };
    }
    if WRITES.iter().any(|w| kw(w)) {
        return Stmt::Write;
    }
    if kw("copy") {
        return copy(cur);
    }
    if kw("explain") {
        return explain(cur);
    }
    scan(cur, first)
}

/// `COPY table FROM ...` writes; `COPY ... TO` and `COPY (query) TO` read.
fn copy(cur: &mut Cursor<'_>) -> Stmt {
    let mut depth = 0u32;
    while let Some(t) = cur.next() {
        match t.kind {
            Kind::Punct(b'(') => depth += 1,
            Kind::Punct(b')') => depth = depth.saturating_sub(1),
            Kind::Word if depth == 0 && t.is_kw("from") => return Stmt::Write,
            Kind::Word if depth == 0 && t.is_kw("to") => return Stmt::Read,
            _ => {}
        }
    }
    Stmt::Read
}

/// `EXPLAIN ANALYZE` runs its statement; plain `EXPLAIN` does not.
fn explain(cur: &mut Cursor<'_>) -> Stmt {
    let (mut analyze, mut writes) = (false, false);
    while let Some(t) = cur.next() {
        analyze |= t.is_kw("analyze") || t.is_kw("analyse");
        writes |= INNER_WRITES.iter().any(|w| t.is_kw(w));
    }
    if analyze && writes {
        Stmt::Write
    } else {
        Stmt::Read
    }
}

/// Any other statement: writes if it locks rows (`FOR UPDATE`, `FOR NO KEY
/// UPDATE`, `FOR SHARE`, `FOR KEY SHARE`), modifies data in a CTE, creates
/// a table (`SELECT ... INTO`), or calls a sequence function.
fn scan<'a>(cur: &mut Cursor<'a>, first: Token<'a>) -> Stmt {
    let mut prev: Option<Token<'a>> = None;
    let mut before_prev: Option<Token<'a>> = None;
    let mut tok = Some(first);
    let selects = first.is_kw("select");
    while let Some(t) = tok {
        if t.is_punct(b'(')
            && let Some(p) = prev
            && writing_call(&p)
        {
            return Stmt::Write;
        }
        if t.kind == Kind::Word {
            let after_for = prev.is_some_and(|p| p.is_kw("for"))
                || (prev.is_some_and(|p| p.is_kw("key") || p.is_kw("no"))
                    && before_prev.is_some_and(|p| p.is_kw("for") || p.is_kw("no")));
            if after_for && (t.is_kw("update") || t.is_kw("share")) {
                return Stmt::Write;
            }
            if prev.is_none_or(|p| !p.is_kw("for")) && INNER_WRITES.iter().any(|w| t.is_kw(w)) {
                // `ON CONFLICT DO UPDATE` only follows an INSERT, already a
                // write; here a bare INSERT/UPDATE/DELETE/MERGE word is a CTE.
                return Stmt::Write;
            }
            if selects && t.is_kw("into") && cur.parens == 0 {
                return Stmt::Write;
            }
        }
        before_prev = prev;
        prev = Some(t);
        tok = cur.next();
    }
    Stmt::Read
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_may_start_on_a_replica() {
        for sql in [
            "SELECT 1",
            "select * from t where a = 'insert'",
            "SELECT pg_is_in_recovery()",
            "VALUES (1)",
            "TABLE t",
            "WITH a AS (SELECT 1) SELECT * FROM a",
            "COPY t TO STDOUT",
            "COPY (SELECT a FROM t) TO STDOUT",
            "EXPLAIN SELECT 1",
            "EXPLAIN INSERT INTO t VALUES (1)",
            "SHOW search_path",
            "SET search_path TO a",
            "SELECT \"update\" FROM t",
            "SELECT 1; INSERT INTO t VALUES (1)",
            "-- insert\nSELECT 1",
            "",
            "COMMIT",
        ] {
            assert_eq!(start(sql.as_bytes()), Start::Read, "{sql}");
        }
    }

    #[test]
    fn obvious_writes_go_to_the_primary() {
        for sql in [
            "INSERT INTO t VALUES (1)",
            "  update t set a = 1",
            "DELETE FROM t",
            "MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE",
            "CREATE TABLE t (a int)",
            "ALTER TABLE t ADD b int",
            "DROP TABLE t",
            "TRUNCATE t",
            "COPY t FROM STDIN",
            "copy t (a, b) from stdin with (format csv)",
            "SELECT nextval('s')",
            "SELECT pg_catalog.setval('s', 1)",
            "SELECT * FROM t FOR UPDATE",
            "SELECT * FROM t FOR NO KEY UPDATE",
            "SELECT * FROM t FOR SHARE",
            "SELECT * FROM t FOR KEY SHARE",
            "SELECT pg_advisory_xact_lock(1)",
            "SELECT pg_try_advisory_lock(1)",
            "SELECT txid_current()",
            "SELECT pg_advisory_lock(1)",
            "LISTEN chan",
            "DECLARE c CURSOR WITH HOLD FOR SELECT 1",
            "PREPARE p AS SELECT 1",
            "SELECT set_config('a.b', 'c', false)",
            "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE",
            "SELECT * INTO t2 FROM t",
            "WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x",
            "CALL p()",
            "DO $$ BEGIN END $$",
            "EXPLAIN ANALYZE INSERT INTO t VALUES (1)",
            "LOCK TABLE t",
            "VACUUM t",
        ] {
            assert_eq!(start(sql.as_bytes()), Start::Write, "{sql}");
        }
    }

    #[test]
    fn transaction_modes_decide_the_block() {
        let cases = [
            ("BEGIN", Start::Block),
            ("BEGIN; SELECT 1", Start::Block),
            ("BEGIN; INSERT INTO t VALUES (1)", Start::Write),
            ("START TRANSACTION", Start::Block),
            ("BEGIN READ ONLY", Start::ReadOnly),
            (
                "BEGIN TRANSACTION READ ONLY, ISOLATION LEVEL SERIALIZABLE",
                Start::Write,
            ),
            (
                "BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY DEFERRABLE",
                Start::Write,
            ),
            (
                "START TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY",
                Start::ReadOnly,
            ),
            ("BEGIN; SET TRANSACTION READ ONLY", Start::ReadOnly),
            ("BEGIN ISOLATION LEVEL SERIALIZABLE", Start::Write),
            ("BEGIN ISOLATION LEVEL REPEATABLE READ", Start::Write),
            (
                "BEGIN; SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
                Start::Write,
            ),
            ("BEGIN ISOLATION LEVEL READ COMMITTED", Start::Block),
            (
                "BEGIN ISOLATION LEVEL READ UNCOMMITTED; SELECT 1",
                Start::Block,
            ),
            ("BEGIN READ WRITE", Start::Write),
            ("SET TRANSACTION READ ONLY", Start::ReadOnly),
        ];
        for (sql, want) in cases {
            assert_eq!(start(sql.as_bytes()), want, "{sql}");
        }
    }
}
