//! A ceiling on servers shared by several pools: PgBouncer's
//! `max_db_connections` (every pool of a database) and
//! `max_user_connections` (every pool of a user).
//!
//! A pool takes a slot before it dials and gives it back when the server
//! closes. A pool that has clients waiting but finds the ceiling reached
//! closes an idle server of another pool under the same ceiling, as
//! PgBouncer does, so one pool's idle servers do not starve another's
//! clients; when a slot frees up, pools with waiters are woken to dial.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use crate::pool::Pool;

/// See the module docs.
#[derive(Debug)]
pub struct Limit {
    name: String,
    max: usize,
    used: AtomicUsize,
    pools: Mutex<Vec<Weak<Pool>>>,
}

impl Limit {
    /// A ceiling of `max` servers; `name` says which setting it is in logs.
    pub fn new(name: impl Into<String>, max: usize) -> Arc<Limit> {
        Arc::new(Limit {
            name: name.into(),
            max,
            used: AtomicUsize::new(0),
            pools: Mutex::new(Vec::new()),
        })
    }

    pub(crate) fn join(&self, pool: &Arc<Pool>) {
        let mut pools = self.pools.lock();
        pools.retain(|p| p.strong_count() > 0);
        pools.push(Arc::downgrade(pool));
    }

    pub(crate) fn try_take(&self) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .is_ok()
    }

    /// Returns a slot taken for nothing (another ceiling was full).
    pub(crate) fn undo_take(&self) {
        self.used.fetch_sub(1, Ordering::AcqRel);
    }

    /// Returns a slot and wakes the pools under this ceiling, so one with
    /// clients waiting can dial.
    pub(crate) fn give_back(&self) {
        self.used.fetch_sub(1, Ordering::AcqRel);
        let pools: Vec<Arc<Pool>> = self.pools.lock().iter().filter_map(Weak::upgrade).collect();
        for p in &pools {
            p.wake();
        }
    }

    /// Closes one idle server of a pool other than `except`, to make room.
    pub(crate) fn evict(&self, except: &Pool) -> bool {
        let pools: Vec<Arc<Pool>> = self.pools.lock().iter().filter_map(Weak::upgrade).collect();
        let evicted = pools
            .iter()
            .filter(|p| !std::ptr::eq(p.as_ref(), except))
            .any(|p| p.close_one_idle());
        if evicted {
            tracing::debug!(limit = %self.name, "closed another pool's idle server to make room");
        }
        evicted
    }
}
