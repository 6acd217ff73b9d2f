//! The byte-level differential suite: scripted raw-protocol conversations
//! must give the client the same bytes directly from PostgreSQL, through
//! pggat in session mode, in transaction mode, and through pggat chained
//! behind pggat. Then every prefix of every script, cut off by a
//! disconnect (after whole steps, with a step's replies unread, and in the
//! middle of a message), must leave the server exactly as clean as a fresh
//! connection finds it, and still serving: pggat finishes off what the
//! client left (a COPY, an open batch, a transaction) rather than closing
//! the server.
//!
//! The test writes its own frontend bytes (module `wire`) rather than using
//! the encoders of the code under test, and compares message bodies
//! byte for byte. Only per-connection values are normalised: the
//! BackendKeyData is not part of a transcript (it belongs to the startup),
//! and error and notice fields naming the server's source location (F, L,
//! R) are dropped, because a synthetic error pggat raises on the server's
//! behalf cannot know them.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use crate::harness::*;

/// Frontend messages, built by hand (also used by other raw-protocol tests).
pub(crate) mod wire {
    fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(body.len() + 5);
        out.push(tag);
        out.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    fn cstr(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(s.as_bytes());
        out.push(0);
    }

    /// Simple query.
    pub fn query(sql: &str) -> Vec<u8> {
        let mut b = Vec::new();
        cstr(&mut b, sql);
        msg(b'Q', &b)
    }

    /// Parse with every parameter type left to the server.
    pub fn parse(name: &str, sql: &str) -> Vec<u8> {
        let mut b = Vec::new();
        cstr(&mut b, name);
        cstr(&mut b, sql);
        b.extend_from_slice(&0i16.to_be_bytes());
        msg(b'P', &b)
    }

    /// Bind with text parameters and text results.
    pub fn bind(portal: &str, statement: &str, params: &[&str]) -> Vec<u8> {
        let mut b = Vec::new();
        cstr(&mut b, portal);
        cstr(&mut b, statement);
        b.extend_from_slice(&0i16.to_be_bytes());
        b.extend_from_slice(&(params.len() as i16).to_be_bytes());
        for p in params {
            b.extend_from_slice(&(p.len() as i32).to_be_bytes());
            b.extend_from_slice(p.as_bytes());
        }
        b.extend_from_slice(&0i16.to_be_bytes());
        msg(b'B', &b)
    }

    /// Describe a statement (`S`) or a portal (`P`).
    pub fn describe(kind: u8, name: &str) -> Vec<u8> {
        let mut b = vec![kind];
        cstr(&mut b, name);
        msg(b'D', &b)
    }

    /// Execute, with a row limit (0 = all).
    pub fn execute(portal: &str, max_rows: i32) -> Vec<u8> {
        let mut b = Vec::new();
        cstr(&mut b, portal);
        b.extend_from_slice(&max_rows.to_be_bytes());
        msg(b'E', &b)
    }

    /// Close a statement (`S`) or a portal (`P`).
    pub fn close(kind: u8, name: &str) -> Vec<u8> {
        let mut b = vec![kind];
        cstr(&mut b, name);
        msg(b'C', &b)
    }

    pub fn sync() -> Vec<u8> {
        msg(b'S', &[])
    }

    pub fn flush() -> Vec<u8> {
        msg(b'H', &[])
    }

    pub fn copy_data(data: &str) -> Vec<u8> {
        msg(b'd', data.as_bytes())
    }

    pub fn copy_done() -> Vec<u8> {
        msg(b'c', &[])
    }

    pub fn copy_fail(why: &str) -> Vec<u8> {
        let mut b = Vec::new();
        cstr(&mut b, why);
        msg(b'f', &b)
    }

    /// FunctionCall with binary int4 arguments and a binary result.
    pub fn function_call(oid: u32, args: &[i32]) -> Vec<u8> {
        let mut b = oid.to_be_bytes().to_vec();
        b.extend_from_slice(&1i16.to_be_bytes());
        b.extend_from_slice(&1i16.to_be_bytes());
        b.extend_from_slice(&(args.len() as i16).to_be_bytes());
        for a in args {
            b.extend_from_slice(&4i32.to_be_bytes());
            b.extend_from_slice(&a.to_be_bytes());
        }
        b.extend_from_slice(&1i16.to_be_bytes());
        msg(b'F', &b)
    }
}

use wire::*;

/// How far to read the replies of a step before the next one.
#[derive(Clone, Copy, Debug)]
enum Until {
    /// This many ReadyForQuery messages.
    Ready(usize),
    /// Up to and including the first message with this tag.
    Tag(u8),
}

/// Bytes sent in one write, and how far their replies are read.
struct Step {
    send: Vec<u8>,
    until: Until,
}

struct Script {
    name: &'static str,
    steps: Vec<Step>,
}

impl Script {
    fn new(name: &'static str) -> Script {
        Script {
            name,
            steps: Vec::new(),
        }
    }

    /// A step of several messages sent in one write.
    fn step(mut self, messages: &[Vec<u8>], until: Until) -> Script {
        self.steps.push(Step {
            send: messages.concat(),
            until,
        });
        self
    }

    /// A simple query, read up to its ReadyForQuery.
    fn q(self, sql: &str) -> Script {
        self.step(&[query(sql)], Until::Ready(1))
    }
}

const R1: Until = Until::Ready(1);

/// The conversations, covering what DESIGN.md §3 says the relay must get
/// right.
fn scripts() -> Vec<Script> {
    vec![
        Script::new("simple query with errors")
            .q("SELECT 1 AS one, 'two'::text AS two")
            .q("SELECT 1/0")
            .q("SELECT 2; SELECT 1/0; SELECT 3")
            .q("")
            .q("SELEC syntax")
            .q("DO $$ BEGIN RAISE NOTICE 'hello %', 42; END $$")
            .q("SELECT 4"),
        Script::new("transaction with an error, then statements, then END")
            .q("BEGIN")
            .q("SELECT 1")
            .q("SELECT nope")
            .q("SELECT 2")
            .step(
                &[
                    parse("", "SELECT 3"),
                    bind("", "", &[]),
                    execute("", 0),
                    sync(),
                ],
                R1,
            )
            .q("END")
            .q("SELECT 3")
            .q("BEGIN; SELECT 1; SELECT 1/0; SELECT 2")
            .q("ROLLBACK")
            .q("COMMIT")
            .q("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 5")
            .q("COMMIT"),
        Script::new("lone Sync")
            .step(&[sync()], R1)
            .step(&[sync(), sync()], Until::Ready(2))
            .step(&[flush(), sync()], R1)
            .step(
                &[
                    parse("", "SELECT 1"),
                    bind("", "", &[]),
                    execute("", 0),
                    sync(),
                    sync(),
                ],
                Until::Ready(2),
            )
            .q("BEGIN")
            .step(&[sync()], R1)
            .q("SELECT 1")
            .step(&[sync()], R1)
            .q("COMMIT")
            .step(&[sync()], R1),
        Script::new("named and unnamed statements and portals")
            .step(
                &[
                    parse("s1", "SELECT $1::int4 + 1 AS n"),
                    describe(b'S', "s1"),
                    sync(),
                ],
                R1,
            )
            .step(
                &[
                    bind("", "s1", &["41"]),
                    describe(b'P', ""),
                    execute("", 0),
                    sync(),
                ],
                R1,
            )
            .step(
                &[
                    parse("", "SELECT g FROM generate_series(1, 5) g"),
                    bind("", "", &[]),
                    execute("", 0),
                    sync(),
                ],
                R1,
            )
            .q("BEGIN")
            .step(
                &[
                    parse("s2", "SELECT g FROM generate_series(1, $1::int4) g"),
                    bind("p1", "s2", &["5"]),
                    execute("p1", 2),
                    execute("p1", 2),
                    execute("p1", 2),
                    execute("p1", 2),
                    sync(),
                ],
                R1,
            )
            .step(
                &[
                    bind("p2", "s2", &["3"]),
                    execute("p2", 1),
                    close(b'P', "p2"),
                    execute("p2", 1),
                    sync(),
                ],
                R1,
            )
            .q("ROLLBACK")
            .step(&[bind("", "s1", &["1"]), execute("", 0), sync()], R1)
            .step(&[close(b'S', "s1"), close(b'S', "s2"), sync()], R1)
            .step(&[describe(b'S', "s1"), sync()], R1)
            .step(&[bind("", "s2", &["1"]), execute("", 0), sync()], R1)
            .step(&[close(b'S', "never"), close(b'P', "never"), sync()], R1),
        Script::new("a bad Parse inside a batch")
            .step(
                &[
                    parse("s1", "SELECT 1"),
                    parse("s2", "SELEC 2"),
                    bind("", "s1", &[]),
                    execute("", 0),
                    sync(),
                ],
                R1,
            )
            .step(&[bind("", "s1", &[]), execute("", 0), sync()], R1)
            .step(&[describe(b'S', "s2"), sync()], R1)
            .step(
                &[
                    parse("s2", "SELECT 2"),
                    bind("", "s2", &[]),
                    execute("", 0),
                    sync(),
                ],
                R1,
            )
            .step(
                &[
                    parse("s3", "SELECT 1/0"),
                    bind("", "s3", &[]),
                    execute("", 0),
                    parse("s4", "SELECT 4"),
                    sync(),
                ],
                R1,
            )
            .step(&[describe(b'S', "s4"), sync()], R1)
            .step(&[describe(b'S', "s3"), sync()], R1)
            .step(&[parse("", "SELECT 'kept'"), sync()], R1)
            .step(&[parse("", "SELEC 'dropped'"), sync()], R1)
            .step(&[bind("", "", &[]), execute("", 0), sync()], R1)
            .step(&[parse("", "SELECT 'kept'"), sync()], R1)
            .q("SELECT 'a simple query drops the unnamed statement'")
            .step(&[describe(b'S', ""), sync()], R1),
        Script::new("Describe S and P")
            .step(
                &[
                    parse("s1", "SELECT $1::text AS a, $2::int8 AS b"),
                    describe(b'S', "s1"),
                    sync(),
                ],
                R1,
            )
            .step(
                &[
                    parse("s2", "DO $$ BEGIN END $$"),
                    describe(b'S', "s2"),
                    sync(),
                ],
                R1,
            )
            .step(
                &[
                    bind("p1", "s1", &["a", "2"]),
                    describe(b'P', "p1"),
                    execute("p1", 0),
                    sync(),
                ],
                R1,
            )
            .step(&[describe(b'P', "nothere"), sync()], R1)
            .step(&[parse("", "SELECT $1"), describe(b'S', ""), sync()], R1)
            .step(&[describe(b'S', ""), sync()], R1),
        Script::new("SQL DEALLOCATE of protocol-level and SQL-level statements")
            // Simple protocol, outside a transaction (the unquoted name folds).
            .step(&[parse("s1", "SELECT 1"), sync()], R1)
            .q("DEALLOCATE S1")
            .step(&[bind("", "s1", &[]), execute("", 0), sync()], R1)
            // DEALLOCATE PREPARE inside a transaction.
            .step(&[parse("s2", "SELECT 2"), sync()], R1)
            .q("BEGIN")
            .q("DEALLOCATE PREPARE s2;")
            .q("COMMIT")
            .step(&[bind("", "s2", &[]), execute("", 0), sync()], R1)
            // Extended protocol, as pgjdbc and tokio-postgres send it, with a
            // quoted name, in and out of a transaction.
            .step(&[parse("s3", "SELECT 3"), sync()], R1)
            .step(
                &[
                    parse("", "DEALLOCATE \"s3\""),
                    bind("", "", &[]),
                    describe(b'P', ""),
                    execute("", 0),
                    sync(),
                ],
                R1,
            )
            .step(&[bind("", "s3", &[]), execute("", 0), sync()], R1)
            .step(&[parse("s4", "SELECT 4"), sync()], R1)
            .q("BEGIN")
            .step(
                &[
                    parse("", "DEALLOCATE s4"),
                    bind("", "", &[]),
                    execute("", 0),
                    sync(),
                ],
                R1,
            )
            .q("COMMIT")
            .step(&[describe(b'S', "s4"), sync()], R1)
            // Unknown names.
            .q("DEALLOCATE nope")
            .step(
                &[
                    parse("", "DEALLOCATE nope"),
                    bind("", "", &[]),
                    execute("", 0),
                    sync(),
                ],
                R1,
            )
            // A failed transaction deallocates nothing.
            .step(&[parse("s5", "SELECT 5"), sync()], R1)
            .q("BEGIN")
            .q("SELECT 1/0")
            .q("DEALLOCATE s5")
            .q("ROLLBACK")
            .step(&[bind("", "s5", &[]), execute("", 0), sync()], R1)
            // Behind a query still running: pipelined with it.
            .step(&[parse("s6", "SELECT 6"), sync()], R1)
            .step(
                &[query("SELECT pg_sleep(0.05)"), query("DEALLOCATE s6")],
                Until::Ready(2),
            )
            // DEALLOCATE ALL, both protocols.
            .step(
                &[parse("s7", "SELECT 7"), parse("s8", "SELECT 8"), sync()],
                R1,
            )
            .q("DEALLOCATE ALL")
            .step(&[bind("", "s7", &[]), execute("", 0), sync()], R1)
            .step(&[describe(b'S', "s8"), sync()], R1)
            .step(&[parse("s9", "SELECT 9"), sync()], R1)
            .step(
                &[
                    parse("", "DEALLOCATE PREPARE ALL"),
                    bind("", "", &[]),
                    execute("", 0),
                    sync(),
                ],
                R1,
            )
            .step(&[bind("", "s9", &[]), execute("", 0), sync()], R1)
            // A name deallocated can be prepared again.
            .step(
                &[
                    parse("s1", "SELECT 'again'"),
                    bind("", "s1", &[]),
                    execute("", 0),
                    sync(),
                ],
                R1,
            )
            // SQL-level statements (these pin the client to its server).
            .q("PREPARE sq AS SELECT 10")
            .q("EXECUTE sq")
            .q("DEALLOCATE sq")
            .q("EXECUTE sq")
            .q("DEALLOCATE ALL")
            .step(&[bind("", "s1", &[]), execute("", 0), sync()], R1),
        Script::new("re-Parse")
            .step(&[parse("s1", "SELECT 1"), sync()], R1)
            .step(&[parse("s1", "SELECT 2"), sync()], R1)
            .step(&[bind("", "s1", &[]), execute("", 0), sync()], R1)
            .step(
                &[
                    close(b'S', "s1"),
                    parse("s1", "SELECT 2"),
                    bind("", "s1", &[]),
                    execute("", 0),
                    sync(),
                ],
                R1,
            )
            .step(
                &[
                    parse("", "SELECT 'a'"),
                    parse("", "SELECT 'b'"),
                    bind("", "", &[]),
                    execute("", 0),
                    sync(),
                ],
                R1,
            )
            .step(&[parse("", "SELECT 'c'"), sync()], R1)
            .step(&[bind("", "", &[]), execute("", 0), sync()], R1)
            .q("BEGIN")
            .step(&[parse("s1", "SELECT 3"), sync()], R1)
            .q("ROLLBACK")
            .step(&[bind("", "s1", &[]), execute("", 0), sync()], R1),
        Script::new("COPY in and out, simple and extended")
            .step(&[query("COPY diff_copy FROM STDIN")], Until::Tag(b'G'))
            .step(
                &[copy_data("1\tone\n"), copy_data("2\ttwo\n"), copy_done()],
                R1,
            )
            .q("COPY (SELECT a, b FROM diff_copy ORDER BY a) TO STDOUT")
            .step(&[query("COPY diff_copy FROM STDIN")], Until::Tag(b'G'))
            .step(&[copy_data("x\tbad\n"), copy_done()], R1)
            .step(&[query("COPY diff_copy FROM STDIN")], Until::Tag(b'G'))
            .step(&[copy_fail("the client gave up")], R1)
            .step(
                &[
                    parse("", "COPY diff_copy FROM STDIN"),
                    bind("", "", &[]),
                    execute("", 0),
                    flush(),
                ],
                Until::Tag(b'G'),
            )
            .step(&[copy_data("3\tthree\n"), copy_done(), sync()], R1)
            .step(
                &[
                    parse("", "COPY diff_copy FROM STDIN"),
                    bind("", "", &[]),
                    describe(b'P', ""),
                    execute("", 0),
                    sync(),
                ],
                Until::Tag(b'G'),
            )
            .step(&[copy_data("4\tfour\n"), copy_done(), sync()], R1)
            .step(
                &[
                    parse("", "COPY (SELECT a, b FROM diff_copy ORDER BY a) TO STDOUT"),
                    bind("", "", &[]),
                    execute("", 0),
                    sync(),
                ],
                R1,
            )
            .q("BEGIN")
            .step(&[query("COPY diff_copy FROM STDIN")], Until::Tag(b'G'))
            .step(&[copy_data("5\tfive\n"), copy_done()], R1)
            .q("COPY diff_copy TO STDOUT")
            .q("ROLLBACK")
            .q("DELETE FROM diff_copy"),
        Script::new("DISCARD ALL")
            .step(&[parse("s1", "SELECT 1"), sync()], R1)
            .q("SET application_name = 'diff'")
            .q("SET statement_timeout = '5s'")
            .q("SHOW statement_timeout")
            .q("DISCARD ALL")
            .q("SHOW statement_timeout")
            .q("SHOW application_name")
            .step(&[describe(b'S', "s1"), sync()], R1)
            .step(
                &[
                    parse("s1", "SELECT 2"),
                    bind("", "s1", &[]),
                    execute("", 0),
                    sync(),
                ],
                R1,
            )
            .q("BEGIN")
            .q("DISCARD ALL")
            .q("ROLLBACK"),
        Script::new("pipelining and function calls")
            .step(
                &[
                    parse("", "SELECT 1"),
                    bind("", "", &[]),
                    execute("", 0),
                    sync(),
                    parse("", "SELECT 1/0"),
                    bind("", "", &[]),
                    execute("", 0),
                    sync(),
                    parse("", "SELECT 3"),
                    bind("", "", &[]),
                    execute("", 0),
                    sync(),
                ],
                Until::Ready(3),
            )
            .step(
                &[
                    query("BEGIN"),
                    parse("", "SELECT 1"),
                    bind("", "", &[]),
                    execute("", 0),
                    sync(),
                    query("COMMIT"),
                ],
                Until::Ready(3),
            )
            .step(
                &[
                    parse("s1", "SELECT $1::int4"),
                    describe(b'S', "s1"),
                    flush(),
                ],
                Until::Tag(b'T'),
            )
            .step(&[bind("", "s1", &["7"]), execute("", 0), sync()], R1)
            // int4pl(2, 3)
            .step(&[function_call(177, &[2, 3])], R1)
            .step(&[function_call(1, &[])], R1),
    ]
}

/// One message as text: tag, then the body with non-printable bytes
/// escaped, so a mismatch reads well and still shows every byte.
fn render(tag: u8, body: &[u8]) -> String {
    let mut out = String::new();
    out.push(tag as char);
    out.push(' ');
    if matches!(tag, b'E' | b'N') {
        // Fields are type byte + C string; drop the source location.
        for field in body.split(|b| *b == 0).filter(|f| !f.is_empty()) {
            if !matches!(field[0], b'F' | b'L' | b'R') {
                escape(&mut out, field);
                out.push('|');
            }
        }
    } else {
        escape(&mut out, body);
    }
    out
}

fn escape(out: &mut String, bytes: &[u8]) {
    for &b in bytes {
        if (0x20..0x7f).contains(&b) && b != b'\\' {
            out.push(b as char);
        } else {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
}

/// A raw connection: logged in with pggat's own server-side login code,
/// which is not under test here (it does not relay), then driven by hand.
async fn open(recipe: &spool::Recipe) -> spool::Server {
    spool::Server::connect(recipe)
        .await
        .unwrap_or_else(|e| panic!("connect to {}: {e}", recipe.address))
}

const READ_LIMIT: Duration = Duration::from_secs(10);

/// Sends a step and reads its replies into `transcript`.
async fn run_step(server: &mut spool::Server, step: &Step, transcript: &mut Vec<String>) {
    let conn = server.conn();
    conn.out().extend_from_slice(&step.send);
    conn.flush().await.expect("send a step");
    let mut ready = 0;
    loop {
        let msg = match tokio::time::timeout(READ_LIMIT, conn.read()).await {
            Ok(Ok(m)) => m,
            Ok(Err(e)) => panic!(
                "reading replies to {:?}: {e}\n{}",
                step.until,
                transcript.join("\n")
            ),
            Err(_) => panic!(
                "no reply within {READ_LIMIT:?}, waiting for {:?}; so far:\n{}",
                step.until,
                transcript.join("\n")
            ),
        };
        transcript.push(render(msg.tag, &msg.body));
        match step.until {
            Until::Ready(n) if msg.tag == b'Z' => {
                ready += 1;
                if ready == n {
                    return;
                }
            }
            Until::Tag(t) if msg.tag == t => return,
            _ => {}
        }
    }
}

/// Runs a whole script on a fresh connection.
async fn transcript(recipe: &spool::Recipe, script: &Script) -> Vec<String> {
    let mut server = open(recipe).await;
    let mut out = Vec::new();
    for (i, step) in script.steps.iter().enumerate() {
        out.push(format!("--- step {i}"));
        run_step(&mut server, step, &mut out).await;
    }
    out
}

/// What a fresh connection sees: settings a script changes, session state
/// it could leave behind, whether a transaction is open, and that neither
/// an unnamed statement nor an unnamed portal exists.
fn probe() -> Script {
    Script::new("probe")
        .step(&[bind("", "", &[]), execute("", 0), sync()], R1)
        .step(&[describe(b'S', ""), sync()], R1)
        .q("SELECT current_setting('application_name'), \
                current_setting('statement_timeout'), \
                current_setting('TimeZone'), \
                current_setting('search_path'), \
                (SELECT count(*) FROM pg_prepared_statements WHERE name NOT LIKE 'pggat\\_%'), \
                (SELECT count(*) FROM pg_cursors), \
                (SELECT count(*) FROM pg_listening_channels()), \
                (SELECT count(*) FROM pg_locks \
                   WHERE pid = pg_backend_pid() AND locktype = 'advisory'), \
                now() = statement_timestamp()")
        .step(&[bind("", "", &[]), execute("", 0), sync()], R1)
        .step(&[describe(b'P', ""), sync()], R1)
        .q("SELECT pg_backend_pid()")
}

/// Runs the probe on a fresh connection: what it saw, without the last
/// step, and the backend pid the last step reported.
async fn probe_through(recipe: &spool::Recipe) -> (Vec<String>, String) {
    let mut seen = transcript(recipe, &probe()).await;
    let last = seen
        .iter()
        .rposition(|l| l.starts_with("--- step"))
        .expect("steps");
    let pid = seen
        .iter()
        .skip(last)
        .find(|l| l.starts_with('D'))
        .cloned()
        .expect("a pid row");
    seen.truncate(last);
    (seen, pid)
}

fn recipe(addr: std::net::SocketAddr, database: &str) -> spool::Recipe {
    spool::Recipe {
        address: spool::Address::Tcp {
            host: addr.ip().to_string(),
            port: addr.port(),
        },
        user: SCRAM.name.to_owned(),
        credentials: Arc::new(auth::ClientCredentials::new(
            SCRAM.name,
            auth::Secret::Plain(SCRAM.password.to_owned()),
        )),
        database: database.to_owned(),
        parameters: Vec::new(),
        connect_timeout: Duration::from_secs(10),
        login_timeout: Duration::from_secs(10),
        max_prepared_statements: 100,
        tls: None,
        connect_query: None,
    }
}

/// Lines of `a` and `b` side by side from the first difference.
fn mismatch(a: &[String], b: &[String]) -> String {
    let first = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let mut out = format!("first difference at line {first}\n");
    for i in first.saturating_sub(3)..(first + 12).min(a.len().max(b.len())) {
        let _ = writeln!(
            out,
            "{} {:<70} | {}",
            if a.get(i) == b.get(i) { ' ' } else { '!' },
            a.get(i).map_or("", String::as_str),
            b.get(i).map_or("", String::as_str)
        );
    }
    out
}

struct Targets {
    direct: spool::Recipe,
    session: spool::Recipe,
    transaction: spool::Recipe,
    chained: spool::Recipe,
    _pggats: Vec<Pggat>,
}

/// pggat in each mode, each pool with one server, so the client after a
/// disconnect gets the very server the disconnected client left.
async fn targets() -> Targets {
    let c = cluster();
    let direct_addr: std::net::SocketAddr = c.address().parse().unwrap();
    let direct = recipe(direct_addr, "postgres");
    {
        let mut setup = open(&direct).await;
        let mut log = Vec::new();
        run_step(
            &mut setup,
            &Step {
                send: query(
                    "CREATE TABLE IF NOT EXISTS diff_copy (a int4, b text); TRUNCATE diff_copy",
                ),
                until: R1,
            },
            &mut log,
        )
        .await;
        assert!(!log.iter().any(|l| l.starts_with('E')), "{log:?}");
    }
    let session = Pggat::start(&session_pool(c, "diffsession", SCRAM, 1)).await;
    let tx = Pggat::start(&transaction_pool(c, "difftx", SCRAM, 1, "")).await;
    let chained = Pggat::start(&format!(
        "127.0.0.1:0 {{\n    pool /diffchain {{\n        address {addr}\n        username {user}\n        password \"{pw}\"\n        database difftx\n        max_connections 1\n        pool basic transaction\n    }}\n}}\n",
        addr = tx.addr,
        user = SCRAM.name,
        pw = SCRAM.password,
    ))
    .await;
    Targets {
        direct,
        session: recipe(session.addr, "diffsession"),
        transaction: recipe(tx.addr, "difftx"),
        chained: recipe(chained.addr, "diffchain"),
        _pggats: vec![session, tx, chained],
    }
}

#[tokio::test]
async fn every_script_gives_the_same_bytes_in_every_mode_and_every_prefix_leaves_the_server_clean()
{
    let t = targets().await;
    let modes = [
        ("session", &t.session),
        ("transaction", &t.transaction),
        ("pggat behind pggat", &t.chained),
    ];

    // Same bytes.
    let mut compared = 0;
    for script in scripts() {
        let want = transcript(&t.direct, &script).await;
        assert!(
            want.iter().any(|l| l.starts_with('E')) || script.name.starts_with("lone"),
            "{}: the direct transcript has no error; the script tests less than it says",
            script.name
        );
        for (mode, recipe) in modes {
            let got = transcript(recipe, &script).await;
            assert!(
                got == want,
                "{}: {mode} differs from direct PostgreSQL (left: direct, right: {mode})\n{}",
                script.name,
                mismatch(&want, &got)
            );
            compared += got.len();
        }
    }
    assert!(compared > 300, "only {compared} messages compared");

    // Every prefix, cut off three ways, then a fresh client.
    let (fresh, _) = probe_through(&t.direct).await;
    for (mode, recipe) in modes {
        let (_, mut pid) = probe_through(recipe).await;
        let mut replaced = Vec::new();
        let mut runs = 0;
        for script in scripts() {
            for k in 0..=script.steps.len() {
                for cut in [Cut::AfterReplies, Cut::Unread, Cut::MidMessage] {
                    if k == script.steps.len() && cut != Cut::AfterReplies {
                        continue;
                    }
                    let mut server = open(recipe).await;
                    let mut log = Vec::new();
                    for step in &script.steps[..k] {
                        run_step(&mut server, step, &mut log).await;
                    }
                    if let Some(next) = script.steps.get(k) {
                        let conn = server.conn();
                        match cut {
                            Cut::AfterReplies => {}
                            Cut::Unread => conn.out().extend_from_slice(&next.send),
                            Cut::MidMessage => conn
                                .out()
                                .extend_from_slice(&next.send[..next.send.len() / 2 + 1]),
                        }
                        conn.flush().await.expect("send the cut step");
                    }
                    drop(server);
                    let (seen, now) = probe_through(recipe).await;
                    runs += 1;
                    if now != pid {
                        replaced.push(format!("{}: cut {cut:?} before step {k}", script.name));
                        pid = now;
                    }
                    assert!(
                        seen == fresh,
                        "{mode}, {}: cut {cut:?} before step {k} left state behind \
                         (left: a fresh direct connection, right: the next client)\n{}",
                        script.name,
                        mismatch(&fresh, &seen)
                    );
                }
            }
        }
        // Cleaning up must not cost the server: every client here sent
        // whole messages to PostgreSQL, so each can be finished off.
        assert!(
            replaced.is_empty(),
            "{mode}: the server was closed and replaced after {} of {runs} cut conversations:\n{}",
            replaced.len(),
            replaced.join("\n")
        );
        assert!(runs > 300, "{mode}: only {runs} cut conversations");
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cut {
    /// After the previous step's replies were all read.
    AfterReplies,
    /// Right after sending the next step, its replies unread.
    Unread,
    /// In the middle of the next step's bytes.
    MidMessage,
}
