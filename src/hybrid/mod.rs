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
}

/// What the critics last said of a replica.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Score {
    /// Sum of the critics' penalties (lower is better).
    penalty: u64,
    /// Over `max_lag`: serves nothing.
    lagging: bool,
}

#[derive(Debug, Default)]
struct Health {
    /// Failed: not used before this.
    down_until: Option<Instant>,
    score: Option<Score>,
}

/// One replica.
pub struct Replica {
    /// Its server connections.
    pub pool: Arc<spool::Pool>,
    health: Mutex<Health>,
}

impl Replica {
    /// Whether transactions may start here now, and its penalty.
    fn fitness(&self, now: Instant) -> Option<u64> {
        let h = self.health.lock();
        if h.down_until.is_some_and(|t| now < t) {
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
    /// Read-your-writes: how long a client's reads stay on the primary
    /// after it wrote.
    pub stickiness: Duration,
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
    /// to be down (lagging is better than failing), else any.
    pub fn any(&self, except: Option<usize>) -> usize {
        let now = Instant::now();
        let n = self.replicas.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let order = (0..n).map(|k| (start + k) % n);
        order
            .clone()
            .filter(|&i| Some(i) != except || n == 1)
            .find(|&i| {
                let h = self.replicas[i].health.lock();
                h.down_until.is_none_or(|t| now >= t)
            })
            .unwrap_or(start % n)
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
    }

    /// Notes that replica `i` failed: it is left alone for a while.
    pub fn mark_down(&self, i: usize, why: &dyn std::fmt::Display) {
        let replica = &self.replicas[i];
        let mut h = replica.health.lock();
        let fresh = h.down_until.is_none_or(|t| Instant::now() >= t);
        h.down_until = Some(Instant::now() + self.down_for);
        drop(h);
        if fresh {
            tracing::warn!(pool = %replica.pool.options().name, error = %why, retry_in = ?self.down_for, "replica failed; its transactions go elsewhere");
        }
    }

    /// Where a read-write client's transaction that begins with `first`
    /// (the query text of its first message, if it has one) should start.
    /// `sticky`: the client wrote a moment ago and must read its writes.
    pub fn start_for(&self, first: Option<&[u8]>, sticky: bool) -> Route {
        let start = first.map_or(Start::Read, fed::sql::start);
        let primary = match start {
            Start::Write => return self.direct(true),
            Start::Block => sticky || !self.replay,
            Start::Read => sticky,
            Start::ReadOnly => false,
        };
        match (primary, self.choose(None)) {
            (false, Some(i)) => Route::Replica(i),
            _ => self.direct(false),
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
    /// On this replica.
    Replica(usize),
}

/// The query text of the first message buffered, when it carries or names
/// one: a simple Query, a Parse, or a Bind of a statement the client
/// prepared.
pub fn first_query<'a>(
    buf: &'a [u8],
    statements: &'a fed::middleware::eqp::ClientStatements,
) -> Option<&'a [u8]> {
    let h = fed::frame::header(buf, usize::MAX).ok().flatten()?;
    let body = buf.get(fed::frame::HEADER_LEN..h.len)?;
    let cstr = |b: &'a [u8]| b.get(..b.iter().position(|&c| c == 0)?);
    match h.tag {
        b'Q' => cstr(body),
        b'P' => {
            let name = cstr(body)?;
            cstr(&body[name.len() + 1..])
        }
        b'B' => {
            let portal = cstr(body)?;
            let name = cstr(&body[portal.len() + 1..])?;
            statements.query_of(name)
        }
        _ => None,
    }
}

/// Counts a transaction that ran on a replica to its end.
pub fn hit(hybrid: &Hybrid) {
    hybrid.counters.replica_hits.fetch_add(1, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_query_is_read_from_q_p_and_b() {
        let mut buf = bytes::BytesMut::new();
        fed::messages::frontend::Query { query: b"SELECT 1" }.encode(&mut buf);
        let st = fed::middleware::eqp::ClientStatements::default();
        assert_eq!(first_query(&buf, &st), Some(&b"SELECT 1"[..]));
        let mut buf = bytes::BytesMut::new();
        fed::messages::frontend::Parse {
            statement: b"s1",
            query: b"INSERT INTO t VALUES ($1)",
            param_types: fed::codec::Array::default(),
        }
        .encode(&mut buf);
        assert_eq!(
            first_query(&buf, &st),
            Some(&b"INSERT INTO t VALUES ($1)"[..])
        );
        assert_eq!(first_query(&buf[..6], &st), None, "incomplete");
    }
}
