//! Hybrid pools: which server a transaction starts on, and what the replicas
//! are fit for.
//!
//! Every replica has a health record. A replica that failed (a refused dial,
//! a connection lost mid-transaction, a critic that could not reach it) is
//! left alone for a while; the critics (`penalize` lines) measure the others
//! in the background and turn what they measure into a penalty, and a
//! replica over `max_lag` is left alone until it catches up. The next
//! transaction goes to the replica with the lowest penalty, in turn among
//! equals; with none fit, a read-write client's transaction runs on the
//! primary.

mod critics;
pub(crate) mod lsn;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fed::sql::Start;
use parking_lot::Mutex;

/// How a client of a hybrid pool is routed (startup parameter `hybrid.mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientMode {
    /// `ro`: replicas only.
    ReadOnly,
    /// `wo`: the primary only.
    WriteOnly,
    /// Anything else: reads on replicas, writes on the primary.
    ReadWrite,
}

impl ClientMode {
    /// The mode a client asked for.
    pub fn of(params: &[(String, String)]) -> ClientMode {
        match crate::client::startup::param(params, "hybrid.mode") {
            Some("ro") => ClientMode::ReadOnly,
            Some("wo") => ClientMode::WriteOnly,
            _ => ClientMode::ReadWrite,
        }
    }
}

/// Routing counts, since start; read by the stat log and metrics.
#[derive(Debug, Default)]
pub struct Counters {
    /// Transactions that ran on a replica to the end.
    pub replica_hits: AtomicU64,
    /// Transactions replayed on the primary because a replica refused a
    /// write (25006).
    pub write_fallbacks: AtomicU64,
    /// Read-write clients' transactions sent straight to the primary: an
    /// obvious write, a snapshot the primary must give, read-your-writes
    /// stickiness, `hybrid_replay off`, or no replica fit.
    pub primary_direct: AtomicU64,
    /// Transactions moved off a replica that failed under them.
    pub failovers: AtomicU64,
    /// Transactions replayed on the primary because the replica had not
    /// replayed what they named yet (an undefined table, column...).
    pub lag_replays: AtomicU64,
    /// Reads sent to the primary because no replica was known to have
    /// replayed the client's last commit (`primary_stickiness lsn`).
    pub lsn_waits: AtomicU64,
}

/// What the critics last said of a replica.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Score {
    /// Sum of the critics' penalties (lower is better).
    penalty: u64,
    /// Over `max_lag`: serves nothing.
    lagging: bool,
    /// How far it had replayed, when a critic asked.
    replayed: Option<u64>,
}

#[derive(Debug, Default)]
struct Health {
    /// Failed: not used before this.
    down_until: Option<Instant>,
    score: Option<Score>,
}

impl Health {
    fn is_down(&self, now: Instant) -> bool {
        self.down_until.is_some_and(|t| now < t)
    }
}

/// One replica.
pub struct Replica {
    /// Its server connections.
    pub pool: Arc<spool::Pool>,
    health: Mutex<Health>,
    /// The furthest WAL position it was seen to have replayed.
    replayed: AtomicU64,
}

impl Replica {
    /// Whether it was seen to have replayed WAL up to `lsn`.
    pub fn has_replayed(&self, lsn: u64) -> bool {
        self.replayed.load(Ordering::Relaxed) >= lsn
    }

    /// Notes a replay position it was seen at.
    pub fn saw_replayed(&self, lsn: u64) {
        self.replayed.fetch_max(lsn, Ordering::Relaxed);
    }

    /// Whether transactions may start here now, and its penalty.
    fn fitness(&self, now: Instant) -> Option<u64> {
        let h = self.health.lock();
        if h.is_down(now) {
            return None;
        }
        match h.score {
            Some(Score { lagging: true, .. }) => None,
            Some(s) => Some(s.penalty),
            None => Some(0),
        }
    }
}

/// A hybrid pool's replicas and routing rules.
pub struct Hybrid {
    /// The replicas, in config order.
    pub replicas: Vec<Replica>,
    next: AtomicUsize,
    /// Read-your-writes: where a client's reads go after it wrote.
    pub stickiness: gat::Stickiness,
    /// Whether explicit read-write transactions may start on a replica.
    pub replay: bool,
    /// How long a failed replica is left alone.
    down_for: Duration,
    critics: Vec<gat::Critic>,
    /// Routing counts.
    pub counters: Counters,
}

impl Hybrid {
    /// Over `pools` (one per replica) of the primary reached by `primary`,
    /// with the settings of `config`.
    pub fn new(
        primary: &spool::Recipe,
        pools: Vec<Arc<spool::Pool>>,
        config: &gat::HybridPool,
    ) -> Arc<Hybrid> {
        let hybrid = Arc::new(Hybrid {
            replicas: pools
                .into_iter()
                .map(|pool| Replica {
                    pool,
                    health: Mutex::default(),
                    replayed: AtomicU64::new(0),
                })
                .collect(),
            next: AtomicUsize::new(0),
            stickiness: config.primary_stickiness,
            replay: config.replay,
            down_for: config.basic.reconnect_initial.max(Duration::from_secs(1)),
            critics: config.basic.penalize.clone(),
            counters: Counters::default(),
        });
        if !hybrid.critics.is_empty() && !hybrid.replicas.is_empty() {
            tokio::spawn(critics::run(Arc::downgrade(&hybrid), primary.clone()));
        }
        hybrid
    }

    /// The replica the next transaction should run on: the fit one with the
    /// lowest penalty, in turn among equals, skipping `except`. `None` when
    /// no replica is fit.
    pub fn choose(&self, except: Option<usize>) -> Option<usize> {
        let now = Instant::now();
        let n = self.replicas.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..n)
            .map(|k| (start + k) % n)
            .filter(|&i| Some(i) != except)
            .filter_map(|i| Some((self.replicas[i].fitness(now)?, i)))
            .min_by_key(|&(penalty, _)| penalty)
            .map(|(_, i)| i)
    }

    /// For a read-only client when no replica is fit: any replica not known
    /// to be down (lagging is better than failing), else any; `None` when
    /// the pool has no replicas.
    pub fn any(&self) -> Option<usize> {
        let now = Instant::now();
        let n = self.replicas.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..n)
            .map(|k| (start + k) % n)
            .find(|&i| !self.replicas[i].health.lock().is_down(now))
            .or((n > 0).then(|| start % n))
    }

    /// Records what the critics found of replica `i`, which answered them.
    fn scored(&self, i: usize, score: Score) {
        let replica = &self.replicas[i];
        let mut h = replica.health.lock();
        let was_lagging = h.score.is_some_and(|s| s.lagging);
        if score.lagging != was_lagging {
            tracing::info!(pool = %replica.pool.options().name, lagging = score.lagging, "replica {} max_lag", if score.lagging { "is over" } else { "is back under" });
        }
        h.score = Some(score);
        h.down_until = None;
        drop(h);
        if let Some(lsn) = score.replayed {
            replica.saw_replayed(lsn);
        }
    }

    /// Notes that replica `i` failed: it is left alone for a while.
    pub fn mark_down(&self, i: usize, why: &dyn std::fmt::Display) {
        let replica = &self.replicas[i];
        let mut h = replica.health.lock();
        let now = Instant::now();
        let fresh = !h.is_down(now);
        h.down_until = Some(now + self.down_for);
        drop(h);
        if fresh {
            tracing::warn!(pool = %replica.pool.options().name, error = %why, retry_in = ?self.down_for, "replica failed; its transactions go elsewhere");
        }
    }

    /// Where a read-write client's transaction should start. `first`: how
    /// its first statements read (see [`classify`]); `sticky`: the client
    /// wrote a moment ago and must read its writes; `snapshot`: its session
    /// defaults to an isolation level a replay would break.
    pub fn start_for(&self, first: Start, sticky: bool, snapshot: bool) -> Route {
        let primary = match first {
            Start::Write => return self.direct(true),
            Start::Block => sticky || snapshot || !self.replay,
            Start::Read => sticky || snapshot,
            Start::ReadOnly => sticky,
        };
        match (primary, self.choose(None)) {
            (false, Some(index)) => Route::Replica {
                index,
                moves: first != Start::ReadOnly,
            },
            // A read-write transaction block on the primary may write: the
            // client's next reads must see it.
            _ => self.direct(first == Start::Block),
        }
    }

    fn direct(&self, writes: bool) -> Route {
        self.counters.primary_direct.fetch_add(1, Ordering::Relaxed);
        Route::Primary { writes }
    }
}

/// Where a transaction starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// On the primary; `writes` when it is known to write (the client's
    /// reads then stay on the primary for a while).
    Primary {
        /// Known to write.
        writes: bool,
    },
    /// On a replica.
    Replica {
        /// Which.
        index: usize,
        /// Whether the transaction moves to the primary when it writes
        /// (else it promised to be read-only, or the client asked for
        /// replicas only).
        moves: bool,
    },
}

/// Most buffered messages looked at to classify a transaction.
const CLASSIFY_MESSAGES: usize = 16;

/// How the transaction in `buf` (the client's buffered messages) starts,
/// from the query text of its first statements: simple Queries, Parses,
/// and Binds of statements the client prepared. A first `BEGIN` is read
/// with what follows it, so a driver that sends `BEGIN` as a statement of
/// its own in the same batch (pgjdbc, Npgsql) is judged by its query.
pub fn classify(buf: &[u8], statements: &fed::middleware::eqp::ClientStatements) -> Start {
    use fed::messages::frontend::{Bind, Parse, Query};
    // Statements parsed earlier in this same buffer, which eqp has not
    // recorded yet: (name, query).
    let mut parsed: Vec<(&[u8], &[u8])> = Vec::new();
    let mut fold = fed::sql::Fold::default();
    for (tag, body) in fed::frame::messages(buf).take(CLASSIFY_MESSAGES) {
        let text = match tag {
            b'Q' => Query::decode(body).ok().map(|q| q.query),
            b'P' => Parse::decode(body).ok().map(|p| {
                parsed.push((p.statement, p.query));
                p.query
            }),
            b'B' => Bind::decode(body).ok().and_then(|b| {
                match parsed.iter().rev().find(|(n, _)| *n == b.statement) {
                    Some(&(_, q)) => Some(q),
                    None => statements.query_of(b.statement),
                }
            }),
            _ => continue,
        };
        let Some(text) = text else { break };
        if let Some(s) = fold.next(fed::sql::start(text)) {
            return s;
        }
    }
    fold.end()
}

/// Whether a session setting makes every transaction of the client
/// `REPEATABLE READ` or `SERIALIZABLE` by default: `name` and the `SET`
/// statement (or startup value) that set it.
pub fn strict_default(name: &str, value: &str) -> bool {
    let mentions = |word: &str| {
        value
            .as_bytes()
            .windows(word.len())
            .any(|w| w.eq_ignore_ascii_case(word.as_bytes()))
    };
    name.eq_ignore_ascii_case("default_transaction_isolation")
        && (mentions("serializable") || mentions("repeatable"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(b: &mut bytes::BytesMut, name: &[u8], query: &[u8]) {
        fed::messages::frontend::Parse {
            statement: name,
            query,
            param_types: fed::codec::Array::default(),
        }
        .encode(b);
    }

    fn bind(b: &mut bytes::BytesMut, statement: &[u8]) {
        fed::messages::frontend::Bind {
            portal: b"",
            statement,
            param_formats: fed::codec::Array::default(),
            params: fed::codec::Array::default(),
            result_formats: fed::codec::Array::default(),
        }
        .encode(b);
    }

    #[test]
    fn transactions_are_judged_by_their_first_statements() {
        let st = fed::middleware::eqp::ClientStatements::default();
        let mut q = bytes::BytesMut::new();
        fed::messages::frontend::Query { query: b"SELECT 1" }.encode(&mut q);
        assert_eq!(classify(&q, &st), Start::Read);

        // pgjdbc: BEGIN as its own unnamed statement, then the query.
        let begin_then = |name: &[u8], query: &[u8]| {
            let mut b = bytes::BytesMut::new();
            parse(&mut b, b"", b"BEGIN");
            bind(&mut b, b"");
            fed::messages::frontend::Execute {
                portal: b"",
                max_rows: 0,
            }
            .encode(&mut b);
            parse(&mut b, name, query);
            bind(&mut b, name);
            b
        };
        assert_eq!(
            classify(&begin_then(b"", b"UPDATE t SET a = 1"), &st),
            Start::Write
        );
        let b = begin_then(b"s1", b"SELECT 1");
        assert_eq!(classify(&b, &st), Start::Block);

        // An incomplete message tells nothing yet.
        assert_eq!(classify(&b[..6], &st), Start::Read);
    }

    #[test]
    fn strict_isolation_defaults_are_recognised() {
        assert!(strict_default(
            "default_transaction_isolation",
            "SET default_transaction_isolation = 'serializable'"
        ));
        assert!(strict_default(
            "default_transaction_isolation",
            "repeatable read"
        ));
        assert!(!strict_default(
            "default_transaction_isolation",
            "read committed"
        ));
        assert!(!strict_default("search_path", "serializable"));
    }
}
