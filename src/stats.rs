//! Per-pool statistics: what PgBouncer's SHOW STATS reports, counted the same
//! way (a query is a batch up to its ReadyForQuery, a transaction ends at
//! ReadyForQuery 'I', times in microseconds).
//!
//! The relay counts into plain fields of the connection and the server's
//! pipeline; a [`Meter`] turns those into differences and adds them here at
//! the end of each transaction, and every second while a session holds a
//! server, so the forward path never touches a shared counter.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use fed::Usage;

/// See the module docs.
///
/// Servers handed out and the time clients waited for them are the server
/// pools' own counters ([`spool::Counters`]), read along with these.
#[derive(Debug, Default)]
pub struct PoolStats {
    /// Transactions.
    pub xacts: AtomicU64,
    /// Queries (batches).
    pub queries: AtomicU64,
    /// Bytes received from clients.
    pub received: AtomicU64,
    /// Bytes sent to clients.
    pub sent: AtomicU64,
    /// Microseconds in transactions.
    pub xact_us: AtomicU64,
    /// Microseconds in queries.
    pub query_us: AtomicU64,
    /// Named prepared statements clients created.
    pub client_parses: AtomicU64,
    /// Prepared statements parsed on servers.
    pub server_parses: AtomicU64,
    /// Binds of named prepared statements.
    pub binds: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Servers handed to clients.
    pub assignments: u64,
    /// See [`PoolStats::xacts`].
    pub xacts: u64,
    /// See [`PoolStats::queries`].
    pub queries: u64,
    /// See [`PoolStats::received`].
    pub received: u64,
    /// See [`PoolStats::sent`].
    pub sent: u64,
    /// See [`PoolStats::xact_us`].
    pub xact_us: u64,
    /// See [`PoolStats::query_us`].
    pub query_us: u64,
    /// Microseconds clients waited for a server.
    pub wait_us: u64,
    /// See [`PoolStats::client_parses`].
    pub client_parses: u64,
    /// See [`PoolStats::server_parses`].
    pub server_parses: u64,
    /// See [`PoolStats::binds`].
    pub binds: u64,
}

impl Totals {
    /// The field-wise sum.
    pub fn plus(self, o: Totals) -> Totals {
        Totals {
            assignments: self.assignments + o.assignments,
            xacts: self.xacts + o.xacts,
            queries: self.queries + o.queries,
            received: self.received + o.received,
            sent: self.sent + o.sent,
            xact_us: self.xact_us + o.xact_us,
            query_us: self.query_us + o.query_us,
            wait_us: self.wait_us + o.wait_us,
            client_parses: self.client_parses + o.client_parses,
            server_parses: self.server_parses + o.server_parses,
            binds: self.binds + o.binds,
        }
    }

    /// The field-wise difference from an earlier copy.
    pub fn minus(self, o: Totals) -> Totals {
        Totals {
            assignments: self.assignments.saturating_sub(o.assignments),
            xacts: self.xacts.saturating_sub(o.xacts),
            queries: self.queries.saturating_sub(o.queries),
            received: self.received.saturating_sub(o.received),
            sent: self.sent.saturating_sub(o.sent),
            xact_us: self.xact_us.saturating_sub(o.xact_us),
            query_us: self.query_us.saturating_sub(o.query_us),
            wait_us: self.wait_us.saturating_sub(o.wait_us),
            client_parses: self.client_parses.saturating_sub(o.client_parses),
            server_parses: self.server_parses.saturating_sub(o.server_parses),
            binds: self.binds.saturating_sub(o.binds),
        }
    }
}

fn us(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl PoolStats {
    /// The counters now, with those of the pool's server pools.
    pub fn totals<'a>(&self, pools: impl Iterator<Item = &'a spool::Counters>) -> Totals {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let (assignments, wait_nanos) = pools.fold((0, 0), |(n, w), c| {
            (n + l(&c.acquires), w + l(&c.wait_nanos))
        });
        Totals {
            assignments,
            xacts: l(&self.xacts),
            queries: l(&self.queries),
            received: l(&self.received),
            sent: l(&self.sent),
            xact_us: l(&self.xact_us),
            query_us: l(&self.query_us),
            wait_us: wait_nanos / 1000,
            client_parses: l(&self.client_parses),
            server_parses: l(&self.server_parses),
            binds: l(&self.binds),
        }
    }
}

/// A client's position in the counters of its connection and the server it
/// holds; [`Meter::report`] adds what happened since to a pool's stats.
#[derive(Clone, Copy, Debug)]
pub struct Meter {
    bytes: (u64, u64),
    usage: Usage,
}

impl Meter {
    /// Starts at these counters.
    pub fn start(bytes: (u64, u64), usage: Usage) -> Meter {
        Meter { bytes, usage }
    }

    /// Adds what happened since the last report to `stats`.
    pub fn report(&mut self, bytes: (u64, u64), usage: Usage, stats: &PoolStats) {
        let d = usage.since(&self.usage);
        let add = |a: &AtomicU64, n: u64| {
            if n > 0 {
                a.fetch_add(n, Ordering::Relaxed);
            }
        };
        add(&stats.received, bytes.0.saturating_sub(self.bytes.0));
        add(&stats.sent, bytes.1.saturating_sub(self.bytes.1));
        add(&stats.queries, d.queries);
        add(&stats.xacts, d.xacts);
        add(&stats.query_us, us(d.query_time));
        add(&stats.xact_us, us(d.xact_time));
        add(&stats.client_parses, d.client_parses);
        add(&stats.server_parses, d.server_parses);
        add(&stats.binds, d.binds);
        *self = Meter { bytes, usage };
    }
}
