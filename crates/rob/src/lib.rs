//! rob hands pooled items (server connections) to waiting clients, fairly.
//!
//! A tour:
//! - [`Scheduler`] holds the idle items and the queue of waiters of one pool.
//!   [`Scheduler::acquire`] takes an idle item at once or enqueues the caller;
//!   [`Scheduler::release`] hands an item straight to the chosen waiter (no
//!   wake-up race, no thundering herd) or parks it as idle.
//! - [`Ticket`] is a client's standing: its virtual runtime (the time it has
//!   held items, the stride of stride scheduling) and the item it used last.
//! - [`Waiting`] is a queued acquisition; dropping it (timeout, client gone)
//!   removes it from the queue, and an item handed to it in that instant goes
//!   back to the scheduler, so nothing leaks.
//!
//! Under [`Policy::Fair`] the waiter with the lowest virtual runtime is served
//! first (ties: the oldest), so clients that hold servers for long stretches
//! cannot starve short ones: throughput divides in inverse proportion to hold
//! time. A client never banks credit: when it queues, its runtime is raised to
//! the floor (the runtime of the last waiter served). [`Policy::Lifo`] is the
//! simple alternative: first come, first served.
//!
//! Idle items are handed out last-in-first-out (the warmest cache), except
//! that a client's previous item is preferred when it is idle (no session
//! state to sync). No lock is held across an `.await`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::oneshot;

/// An item the scheduler can tell apart from the others, for affinity.
pub trait Keyed {
    /// A stable identifier, unique within the scheduler.
    fn key(&self) -> u64;
}

/// How waiters are ordered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Policy {
    /// Lowest virtual runtime first (stride scheduling).
    #[default]
    Fair,
    /// Arrival order.
    Lifo,
}

/// A client's standing with one scheduler.
#[derive(Clone, Copy, Debug, Default)]
pub struct Ticket {
    vruntime: u64,
    last: Option<u64>,
}

impl Ticket {
    /// A new client, with no history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Charges the time an item was held to this client.
    pub fn charge(&mut self, held: Duration) {
        self.vruntime = self
            .vruntime
            .saturating_add(u64::try_from(held.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Remembers the item this client used, to prefer it next time.
    pub fn used(&mut self, key: u64) {
        self.last = Some(key);
    }

    /// The client's virtual runtime in nanoseconds.
    pub fn vruntime(&self) -> u64 {
        self.vruntime
    }
}

type Handoff<T, E> = Result<T, E>;

struct Waiter<T, E> {
    tx: oneshot::Sender<Handoff<T, E>>,
}

struct Inner<T, E> {
    idle: Vec<T>,
    waiters: BTreeMap<(u64, u64), Waiter<T, E>>,
    seq: u64,
    floor: u64,
}

/// The idle items and waiters of one pool. See the crate docs.
pub struct Scheduler<T, E = ()> {
    inner: Mutex<Inner<T, E>>,
    policy: Policy,
}

/// The result of [`Scheduler::acquire`].
pub enum Acquire<'a, T: Keyed, E> {
    /// An idle item, taken.
    Ready(T),
    /// No item was idle; the caller is queued.
    Wait(Waiting<'a, T, E>),
}

impl<T: Keyed, E> Scheduler<T, E> {
    /// An empty scheduler.
    pub fn new(policy: Policy) -> Self {
        Scheduler {
            inner: Mutex::new(Inner {
                idle: Vec::new(),
                waiters: BTreeMap::new(),
                seq: 0,
                floor: 0,
            }),
            policy,
        }
    }

    /// The ordering policy.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// Takes an idle item, preferring the one `ticket` used last, else the
    /// most recently released; with none idle, queues the caller. Taking and
    /// queueing happen under one lock, so a release cannot slip between them.
    pub fn acquire(&self, ticket: &mut Ticket) -> Acquire<'_, T, E> {
        let mut inner = self.inner.lock();
        if !inner.idle.is_empty() {
            let at = ticket
                .last
                .and_then(|k| inner.idle.iter().rposition(|t| t.key() == k))
                .unwrap_or(inner.idle.len() - 1);
            let item = inner.idle.remove(at);
            return Acquire::Ready(item);
        }
        ticket.vruntime = ticket.vruntime.max(inner.floor);
        inner.seq += 1;
        let key = match self.policy {
            Policy::Fair => (ticket.vruntime, inner.seq),
            Policy::Lifo => (0, inner.seq),
        };
        let (tx, rx) = oneshot::channel();
        inner.waiters.insert(key, Waiter { tx });
        Acquire::Wait(Waiting {
            sched: self,
            key,
            rx: Some(rx),
        })
    }

    /// Returns an item: it goes straight to the first waiter in policy order,
    /// or becomes idle when nobody waits.
    pub fn release(&self, item: T) {
        let mut item = item;
        let mut inner = self.inner.lock();
        while let Some(((vr, _), waiter)) = inner.waiters.pop_first() {
            match waiter.tx.send(Ok(item)) {
                Ok(()) => {
                    if self.policy == Policy::Fair {
                        inner.floor = inner.floor.max(vr);
                    }
                    return;
                }
                // The waiter's receiver is gone; try the next one.
                Err(Ok(back)) => item = back,
                Err(Err(_)) => unreachable!("only Ok was sent"),
            }
        }
        inner.idle.push(item);
    }

    /// Fails every current waiter with a clone of `err`, e.g. when the server
    /// they wait for cannot be reached and no item will come back soon.
    /// Returns how many were failed.
    pub fn fail_waiters(&self, err: E) -> usize
    where
        E: Clone,
    {
        let mut inner = self.inner.lock();
        let waiters = std::mem::take(&mut inner.waiters);
        let n = waiters.len();
        for (_, w) in waiters {
            let _ = w.tx.send(Err(err.clone()));
        }
        n
    }

    /// Removes and returns the idle items `pred` selects (for reaping or
    /// closing), oldest first.
    pub fn take_idle(&self, mut pred: impl FnMut(&mut T) -> bool) -> Vec<T> {
        let mut inner = self.inner.lock();
        let mut taken = Vec::new();
        let mut i = 0;
        while i < inner.idle.len() {
            if pred(&mut inner.idle[i]) {
                taken.push(inner.idle.remove(i));
            } else {
                i += 1;
            }
        }
        taken
    }

    /// Visits idle items without taking them.
    pub fn for_each_idle(&self, mut f: impl FnMut(&T)) {
        for t in &self.inner.lock().idle {
            f(t);
        }
    }

    /// Number of idle items.
    pub fn idle(&self) -> usize {
        self.inner.lock().idle.len()
    }

    /// Number of queued waiters.
    pub fn waiting(&self) -> usize {
        self.inner.lock().waiters.len()
    }
}

/// A queued acquisition. Resolves to the item handed over, or to the error
/// given to [`Scheduler::fail_waiters`].
///
/// # Cancel safety
/// Dropping it removes the waiter; an item handed to it concurrently is
/// released back to the scheduler, never lost.
pub struct Waiting<'a, T: Keyed, E> {
    sched: &'a Scheduler<T, E>,
    key: (u64, u64),
    rx: Option<oneshot::Receiver<Handoff<T, E>>>,
}

impl<T: Keyed, E> Future for Waiting<'_, T, E> {
    type Output = Result<T, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let rx = self.rx.as_mut().expect("polled after completion");
        match Pin::new(rx).poll(cx) {
            Poll::Ready(Ok(handoff)) => {
                self.rx = None;
                Poll::Ready(handoff)
            }
            // The sender is dropped only after a send or with the scheduler.
            Poll::Ready(Err(_)) => unreachable!("scheduler dropped with a waiter borrowing it"),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: Keyed, E> Drop for Waiting<'_, T, E> {
    fn drop(&mut self) {
        let Some(mut rx) = self.rx.take() else {
            return;
        };
        let mut inner = self.sched.inner.lock();
        if inner.waiters.remove(&self.key).is_some() {
            return;
        }
        drop(inner);
        // Already handed over: give the item back.
        if let Ok(Ok(item)) = rx.try_recv() {
            self.sched.release(item);
        }
    }
}

#[cfg(test)]
mod tests;
