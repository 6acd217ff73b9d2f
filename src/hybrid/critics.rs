//! The critics: a background task per hybrid pool that measures every
//! replica each `validity` over a connection of its own, and turns what it
//! measures into a penalty.
//!
//! Replication lag is measured against the primary, not from the standby's
//! own view: each round notes the primary's WAL position and when it was
//! seen, and a replica's lag is how long ago the primary had first written
//! something the replica has not replayed yet. So a standby whose WAL
//! receiver lost the primary lags as surely as one whose replay is paused,
//! an idle primary is no lag at all, and the figure is good to one round.

use std::collections::VecDeque;
use std::sync::Weak;
use std::time::{Duration, Instant};

use super::{Hybrid, Score};

/// Rounds of primary positions kept: at the shortest round (50ms) lags up
/// to about a minute are measured exactly, longer ones as at least that.
const HISTORY: usize = 1024;

use super::lsn;

/// Where the primary's WAL was, and since when.
#[derive(Default)]
struct History(VecDeque<(Instant, u64)>);

impl History {
    fn note(&mut self, at: Instant, lsn: u64) {
        // Only the first time a position is seen bounds the age of what is
        // written before it.
        if self.0.back().is_some_and(|&(_, last)| last >= lsn) {
            return;
        }
        if self.0.len() == HISTORY {
            self.0.pop_front();
        }
        self.0.push_back((at, lsn));
    }

    /// How long ago the primary first had WAL past `replayed`: zero when the
    /// standby has replayed everything seen.
    fn lag(&self, replayed: u64, now: Instant) -> Duration {
        self.0
            .iter()
            .find(|&&(_, lsn)| lsn > replayed)
            .map_or(Duration::ZERO, |&(at, _)| now.saturating_duration_since(at))
    }
}

/// A connection the critics keep to one server.
struct Probe {
    recipe: spool::Recipe,
    conn: Option<spool::Server>,
}

impl Probe {
    async fn server(&mut self) -> Result<&mut spool::Server, spool::Error> {
        if self.conn.is_none() {
            self.conn = Some(spool::Server::connect(&self.recipe).await?);
        }
        Ok(self.conn.as_mut().expect("just connected"))
    }

    /// A number from a one-value query; the connection is dropped on error.
    async fn number(&mut self, sql: &str) -> Result<Option<u64>, spool::Error> {
        let r = lsn::read(self.server().await?, sql).await;
        if r.is_err() {
            self.conn = None;
        }
        r
    }
}

/// Measures the replicas of `hybrid` each round until the pool is gone.
pub(super) async fn run(hybrid: Weak<Hybrid>, primary: spool::Recipe) {
    let (period, mut probes) = {
        let Some(h) = hybrid.upgrade() else { return };
        let period = h
            .critics
            .iter()
            .map(|c| match c {
                gat::Critic::QueryLatency { validity, .. }
                | gat::Critic::ReplicationLatency { validity, .. } => *validity,
            })
            .min()
            .unwrap_or(Duration::from_secs(60))
            .max(Duration::from_millis(50));
        let probes: Vec<Probe> = h
            .replicas
            .iter()
            .map(|r| Probe {
                recipe: r.pool.recipe().clone(),
                conn: None,
            })
            .collect();
        (period, probes)
    };
    let mut primary = Probe {
        recipe: primary,
        conn: None,
    };
    let mut history = History::default();
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Each server gets a round's time to answer, and at least 2s.
    let limit = period.max(Duration::from_secs(2));
    loop {
        tick.tick().await;
        let Some(h) = hybrid.upgrade() else { return };
        if h.replicas.iter().all(|r| r.pool.is_closed()) {
            return;
        }
        let lag_wanted = h
            .critics
            .iter()
            .any(|c| matches!(c, gat::Critic::ReplicationLatency { .. }));
        if lag_wanted {
            // Without the primary there is no lag to measure: replicas are
            // judged on their other critics meanwhile.
            match tokio::time::timeout(limit, primary.number(lsn::WRITTEN)).await {
                Ok(Ok(Some(lsn))) => history.note(Instant::now(), lsn),
                Ok(Ok(None)) => {}
                Ok(Err(e)) => tracing::debug!(error = %e, "critics could not reach the primary"),
                Err(_) => primary.conn = None,
            }
        }
        for (i, probe) in probes.iter_mut().enumerate() {
            match tokio::time::timeout(limit, judge(probe, &h.critics, &history)).await {
                Ok(Ok(score)) => h.scored(i, score),
                Ok(Err(e)) => h.mark_down(i, &e),
                Err(_) => {
                    probe.conn = None;
                    h.mark_down(i, &format!("critics got no answer within {limit:?}"));
                }
            }
        }
    }
}

/// Runs every critic on one replica.
async fn judge(
    probe: &mut Probe,
    critics: &[gat::Critic],
    history: &History,
) -> Result<Score, spool::Error> {
    let mut score = Score {
        penalty: 0,
        lagging: false,
        replayed: None,
    };
    for critic in critics {
        match critic {
            gat::Critic::QueryLatency { threshold, .. } => {
                // Connected first: a reconnect is not the replica's latency.
                probe.server().await?;
                let t = Instant::now();
                probe.number("SELECT 0").await?;
                score.penalty += penalty(t.elapsed(), *threshold);
            }
            gat::Critic::ReplicationLatency {
                threshold, max_lag, ..
            } => {
                let replayed = probe.number(lsn::REPLAYED).await?;
                score.replayed = replayed;
                let lag = match replayed {
                    Some(replayed) => history.lag(replayed, Instant::now()),
                    // Not a standby (promoted, or misconfigured): nothing
                    // to wait for.
                    None => Duration::ZERO,
                };
                score.penalty += penalty(lag, *threshold);
                score.lagging |= max_lag.is_some_and(|m| lag > m);
            }
        }
    }
    Ok(score)
}

/// How many thresholds a measure spans: equal within a threshold means
/// equally good, so close replicas share the load.
fn penalty(measured: Duration, threshold: Duration) -> u64 {
    if threshold.is_zero() {
        return 0;
    }
    (measured.as_nanos() / threshold.as_nanos()) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn penalties_count_whole_thresholds() {
        let ms = Duration::from_millis;
        assert_eq!(penalty(ms(99), ms(100)), 0);
        assert_eq!(penalty(ms(250), ms(100)), 2);
        assert_eq!(penalty(ms(5), Duration::ZERO), 0);
    }

    #[test]
    fn lag_is_the_age_of_the_oldest_unreplayed_position() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut h = History::default();
        h.note(t0, 100);
        h.note(t0 + s(1), 100); // idle primary: no new position
        h.note(t0 + s(2), 200);
        h.note(t0 + s(3), 300);
        let now = t0 + s(4);
        assert_eq!(h.lag(300, now), Duration::ZERO, "caught up");
        assert_eq!(h.lag(400, now), Duration::ZERO, "ahead of the last round");
        assert_eq!(h.lag(250, now), s(1), "misses what was there at 3s");
        assert_eq!(h.lag(150, now), s(2));
        assert_eq!(h.lag(50, now), s(4), "misses even the first position");
    }
}
