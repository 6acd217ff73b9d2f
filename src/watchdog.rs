//! Timeouts on a running relay: `query_timeout` (the server owes an answer
//! for too long), `idle_transaction_timeout` (the client sits in an open
//! transaction sending nothing) and `client_idle_timeout` (the client sends
//! nothing outside a transaction). The relay itself stays timer-free; this
//! samples it a few times per limit, so a limit fires between 1 and 1.25
//! times its value after the wait began.

use std::future::Future;
use std::time::Duration;

use fed::{Outcome, Waiting, Watch};
use tokio::time::Instant;

/// A pool's limits; `None` means no limit.
#[derive(Clone, Copy, Debug, Default)]
pub struct Limits {
    /// `query_timeout`.
    pub query: Option<Duration>,
    /// `idle_transaction_timeout`.
    pub idle_in_transaction: Option<Duration>,
    /// `client_idle_timeout`.
    pub client_idle: Option<Duration>,
}

impl Limits {
    fn for_waiting(&self, waiting: Waiting) -> Option<Duration> {
        match waiting {
            Waiting::Server => self.query,
            Waiting::ClientInTransaction => self.idle_in_transaction,
            Waiting::Client => self.client_idle,
        }
    }

    fn shortest(&self) -> Option<Duration> {
        [self.query, self.idle_in_transaction, self.client_idle]
            .into_iter()
            .flatten()
            .min()
    }
}

/// How a watched relay ended.
#[derive(Debug)]
pub enum Watched {
    /// On its own.
    Done(Outcome),
    /// A limit passed while it waited for this.
    Expired(Waiting, Duration),
}

/// A relay, or anything that can be sampled like one.
pub trait Watchable: Future<Output = Outcome> + Unpin {
    /// The current sample.
    fn sample(&self) -> Watch;
    /// The counters statistics are made of.
    fn usage(&self) -> ((u64, u64), fed::Usage);
}

impl<M: fed::middleware::Middleware + Unpin> Watchable for fed::Relay<'_, M> {
    fn sample(&self) -> Watch {
        self.watch()
    }

    fn usage(&self) -> ((u64, u64), fed::Usage) {
        fed::Relay::usage(self)
    }
}

/// How often a long-held server's statistics are reported.
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// Runs `relay` to its end, or until one of `limits` passes. With `meter`,
/// what the relay does is added to the pool's stats every second (for
/// session pooling, where a relay lasts as long as the client).
pub async fn run<R: Watchable>(
    relay: &mut R,
    limits: &Limits,
    mut meter: Option<(&mut crate::stats::Meter, &crate::stats::PoolStats)>,
) -> Watched {
    let shortest = match (limits.shortest(), meter.is_some()) {
        (None, false) => return Watched::Done(relay.await),
        (Some(s), false) => (s / 4).max(Duration::from_millis(5)),
        (Some(s), true) => (s / 4).clamp(Duration::from_millis(5), REPORT_EVERY),
        (None, true) => REPORT_EVERY,
    };
    // The first sample is due a period from now, not at once: nothing can
    // have expired yet.
    let mut tick = tokio::time::interval_at(Instant::now() + shortest, shortest);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = relay.sample();
    let mut since = Instant::now();
    loop {
        tokio::select! {
            o = &mut *relay => return Watched::Done(o),
            _ = tick.tick() => {
                if let Some((m, stats)) = meter.as_mut() {
                    let (bytes, usage) = relay.usage();
                    m.report(bytes, usage, stats);
                }
                let now = relay.sample();
                // Waiting for the server counts from when the statement
                // began (a ReadyForQuery ends it), however much it streams;
                // waiting for the client restarts whenever it sends
                // something.
                let same = now.waiting == last.waiting
                    && now.batches_done == last.batches_done
                    && (now.waiting == Waiting::Server || now.client_reads == last.client_reads);
                if !same {
                    last = now;
                    since = Instant::now();
                    continue;
                }
                if let Some(limit) = limits.for_waiting(now.waiting)
                    && since.elapsed() >= limit
                {
                    return Watched::Expired(now.waiting, limit);
                }
            }
        }
    }
}

/// Ends a client whose limit passed, and deals with its server: a query
/// still running means the server is closed (it cannot be interrupted and
/// reused safely here); otherwise it is cleaned (an open transaction rolled
/// back, with `reset` the pool's reset query) and returned.
pub async fn expired(
    guard: spool::Guard,
    pool: &str,
    waiting: Waiting,
    limit: Duration,
    reset: bool,
) -> crate::errors::ClientError {
    use fed::sqlstate::SqlState;
    tracing::info!(pool = %pool, ?waiting, ?limit, "closing a client: timeout");
    match waiting {
        Waiting::Server => {
            // Stop the statement on PostgreSQL too: closing the connection
            // alone leaves it running (with its locks) until it next writes.
            let target = crate::cancel::Target {
                address: guard.server_ref().address().clone(),
                key: guard.server_ref().backend_key(),
            };
            tokio::spawn(async move {
                if let Err(e) = crate::cancel::send_cancel(&target).await {
                    tracing::info!(server = %target.address, error = %e, "could not cancel a timed-out query");
                }
            });
            guard.discard();
            crate::errors::ClientError::fatal(
                SqlState::QUERY_CANCELED,
                format!("canceling statement due to query_timeout ({limit:?}) of pool \"{pool}\""),
            )
        }
        Waiting::ClientInTransaction => {
            Box::pin(guard.release(reset)).await;
            crate::errors::ClientError::fatal(
                SqlState::IDLE_IN_TRANSACTION_SESSION_TIMEOUT,
                format!(
                    "terminating connection due to idle-in-transaction timeout (idle_transaction_timeout {limit:?} of pool \"{pool}\")"
                ),
            )
        }
        Waiting::Client => {
            Box::pin(guard.release(reset)).await;
            idle_session(pool, limit)
        }
    }
}

/// The error for a client idle outside a transaction for `limit`.
pub fn idle_session(pool: &str, limit: Duration) -> crate::errors::ClientError {
    crate::errors::ClientError::fatal(
        fed::sqlstate::SqlState::IDLE_SESSION_TIMEOUT,
        format!(
            "terminating connection due to idle-session timeout (client_idle_timeout {limit:?} of pool \"{pool}\")"
        ),
    )
}

/// Resolves after `limit`, or never without one.
pub async fn after(limit: Option<Duration>) {
    match limit {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}
