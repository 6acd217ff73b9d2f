//! A pool of server connections made from one recipe: pre-warmed to `min`,
//! grown by one dial per waiting client up to `max`, reaped back to `min` when
//! idle, reconnecting with backoff when the server is down.
//!
//! Waiting clients are queued in a [`rob::Scheduler`]; a freshly dialed
//! server and a released one are both handed to the best waiter directly.
//!
//! Dialing after a failure (a restart, a crash, a failover) is built to be
//! back within a moment of the server: the backoff grows once per failed
//! *round* (the dials started between two failures count as one, so ten
//! servers lost at once do not push the next attempt ten doublings out),
//! starts at `reconnect_initial` (100 ms by default), is jittered and capped
//! at `reconnect_max` (1 s). While rounds fail only one probe dial runs at a
//! time; a client that starts waiting probes at once (no sooner than
//! `reconnect_initial` after the last failure). Waiting clients keep waiting
//! through transient failures and fail only at their `acquire_timeout`, with
//! the server's last error; a refusal that waiting cannot cure (bad password,
//! no such database, TLS impossible) fails them at once.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use rob::{Acquire, Scheduler, Ticket};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::guard::Guard;
use crate::limit::Limit;
use crate::recipe::Recipe;
use crate::server::Server;
use crate::status::{ServerState, ServerStatus};

/// How a pool behaves; fixed for its lifetime (a reload that changes these
/// builds a new pool).
#[derive(Clone, Debug)]
pub struct Options {
    /// Name used in logs and in client-facing errors.
    pub name: String,
    /// Connections kept open even when idle.
    pub min_connections: usize,
    /// Hard ceiling on connections to the server.
    pub max_connections: usize,
    /// How long a client may wait for a server; `None` waits forever.
    pub acquire_timeout: Option<Duration>,
    /// Idle connections above `min` are closed after this long.
    pub idle_timeout: Option<Duration>,
    /// Connections older than this are closed when they come back idle.
    pub server_lifetime: Option<Duration>,
    /// First delay after a failed round of dials; doubles per failed round.
    /// Also the least time between two probes that new waiters start.
    pub reconnect_initial: Duration,
    /// Ceiling of the backoff.
    pub reconnect_max: Duration,
    /// Statement run when a session gives its server back (e.g. DISCARD ALL).
    pub reset_query: Option<String>,
    /// Deadline for cleaning a server up (drain, rollback, reset query).
    pub reset_timeout: Duration,
    /// Servers idle longer than this are checked with `check_query` before
    /// being handed out (a server idle less long only gets the free
    /// readiness probe). `None` never runs the query.
    pub check_delay: Option<Duration>,
    /// The health check query. Default `;` (an empty query: one round trip).
    pub check_query: String,
    /// Waiter ordering.
    pub policy: rob::Policy,
    /// Servers beyond `max_connections` for clients that waited longer than
    /// `reserve_timeout` (PgBouncer's reserve pool).
    pub reserve: usize,
    /// How long a client waits before the reserve may be dialled for it.
    pub reserve_timeout: Duration,
    /// Ceilings shared with other pools (max_db_connections,
    /// max_user_connections).
    pub limits: Vec<Arc<Limit>>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            name: "pool".into(),
            min_connections: 0,
            max_connections: 20,
            acquire_timeout: None,
            idle_timeout: Some(Duration::from_secs(300)),
            server_lifetime: Some(Duration::from_secs(3600)),
            reconnect_initial: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(1),
            reset_query: None,
            reset_timeout: Duration::from_secs(5),
            check_delay: Some(Duration::from_secs(30)),
            check_query: ";".to_owned(),
            policy: rob::Policy::Fair,
            reserve: 0,
            reserve_timeout: Duration::from_secs(5),
            limits: Vec::new(),
        }
    }
}

/// Connection counts and dial state, under one short lock.
#[derive(Debug)]
struct State {
    /// Open connections: idle, in use, or being cleaned.
    live: usize,
    /// Dials in progress.
    dialing: usize,
    /// Failed rounds in a row; zero while the server lets us in. A round is
    /// the dials started between two changes of `round`: it fails once,
    /// however many of its dials fail.
    failed_rounds: u32,
    /// The current round's number; each dial remembers the one it began in.
    round: u64,
    /// While rounds fail, no background dial before this (the backoff).
    next_dial: Instant,
    /// When the last dial failed: a new waiter probes no sooner than
    /// `reconnect_initial` after it.
    last_failure: Instant,
    /// The server's last refusal; cleared by a successful dial.
    last_error: Option<Arc<Error>>,
}

impl State {
    fn failing(&self) -> bool {
        self.failed_rounds > 0
    }
}

/// Counters for metrics and the admin console.
#[derive(Debug, Default)]
pub struct Counters {
    /// Successful dials.
    pub connects: AtomicU64,
    /// Failed dials.
    pub connect_errors: AtomicU64,
    /// Connections closed.
    pub closes: AtomicU64,
    /// Successful acquisitions.
    pub acquires: AtomicU64,
    /// Acquisitions that timed out.
    pub acquire_timeouts: AtomicU64,
    /// Total nanoseconds clients spent waiting for a server.
    pub wait_nanos: AtomicU64,
}

/// A snapshot of a pool's state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Open connections.
    pub live: usize,
    /// Idle connections.
    pub idle: usize,
    /// Dials in progress.
    pub dialing: usize,
    /// Clients waiting for a server.
    pub waiting: usize,
}

/// A pool of connections to one server. See the module docs.
pub struct Pool {
    recipe: Recipe,
    opts: Options,
    pub(crate) sched: Scheduler<Server, Arc<Error>>,
    state: Mutex<State>,
    closed: AtomicBool,
    draining: AtomicBool,
    /// Wakes the maintenance task early (close, or a dial to retry). Shared
    /// with the task, which holds the pool only weakly so that dropping the
    /// last handle ends it.
    maintain: Arc<Notify>,
    /// Counters.
    pub counters: Counters,
    /// While true, acquisitions wait (PAUSE) and nothing is pre-warmed.
    paused: tokio::sync::watch::Sender<bool>,
    /// Notified whenever a server comes back or closes.
    released: Notify,
    /// Servers made before the current epoch close when they come back.
    epoch: AtomicU64,
    /// Every live server's status, by id.
    servers: Mutex<HashMap<u64, Arc<ServerStatus>>>,
}

impl Drop for Pool {
    /// Servers still idle here go with the pool: their slots under shared
    /// ceilings go back (a server in use holds the pool, so none is).
    fn drop(&mut self) {
        let live = self.state.get_mut().live;
        for limit in &self.opts.limits {
            for _ in 0..live {
                limit.give_back();
            }
        }
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("name", &self.opts.name)
            .field("address", &self.recipe.address)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Pool {
    /// Creates the pool and starts its maintenance task (pre-warm, reaping,
    /// reconnects) on the current tokio runtime.
    pub fn new(recipe: Recipe, opts: Options) -> Arc<Pool> {
        let pool = Arc::new(Pool {
            sched: Scheduler::new(opts.policy),
            recipe,
            opts,
            state: Mutex::new(State {
                live: 0,
                dialing: 0,
                failed_rounds: 0,
                round: 0,
                next_dial: Instant::now(),
                last_failure: Instant::now(),
                last_error: None,
            }),
            closed: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            maintain: Arc::new(Notify::new()),
            counters: Counters::default(),
            paused: tokio::sync::watch::Sender::new(false),
            released: Notify::new(),
            epoch: AtomicU64::new(0),
            servers: Mutex::new(HashMap::new()),
        });
        for limit in &pool.opts.limits {
            limit.join(&pool);
        }
        tokio::spawn(maintain(Arc::downgrade(&pool), pool.maintain.clone()));
        pool
    }

    /// The pool's recipe.
    pub fn recipe(&self) -> &Recipe {
        &self.recipe
    }

    /// The pool's options.
    pub fn options(&self) -> &Options {
        &self.opts
    }

    /// Current counts.
    pub fn stats(&self) -> Stats {
        let st = self.state.lock();
        Stats {
            live: st.live,
            dialing: st.dialing,
            idle: self.sched.idle(),
            waiting: self.sched.waiting(),
        }
    }

    /// Gets a server for the client holding `ticket`: an idle one at once,
    /// else the next one released or dialed, in the scheduler's order.
    ///
    /// # Cancel safety
    /// Safe: a dropped acquisition leaves the queue, and a server handed to it
    /// in that instant goes back to the pool.
    pub async fn acquire(self: &Arc<Self>, ticket: &mut Ticket) -> Result<Guard> {
        let start = Instant::now();
        let deadline = self.opts.acquire_timeout.map(|t| start + t);
        let timed_out = || {
            self.counters
                .acquire_timeouts
                .fetch_add(1, Ordering::Relaxed);
            Error::AcquireTimeout {
                pool: self.opts.name.clone(),
                waited: start.elapsed(),
                last: self.state.lock().last_error.clone(),
            }
        };
        loop {
            if self.closed.load(Ordering::Acquire) {
                return Err(Error::Closed(self.opts.name.clone()));
            }
            if *self.paused.borrow() {
                let mut resumed = self.paused.subscribe();
                let wait = resumed.wait_for(|paused| !paused);
                match deadline {
                    Some(d) => {
                        if tokio::time::timeout_at(d, wait).await.is_err() {
                            return Err(timed_out());
                        }
                    }
                    None => {
                        let _ = wait.await;
                    }
                }
                continue;
            }
            let server = match self.sched.acquire(ticket) {
                Acquire::Ready(server) => server,
                Acquire::Wait(waiting) => {
                    if let Some(err) = self.grow(false) {
                        drop(waiting);
                        return Err(err);
                    }
                    tokio::pin!(waiting);
                    // Past reserve_timeout, the reserve may be dialled for
                    // this client.
                    let mut early = None;
                    if self.opts.reserve > 0 {
                        let reserve_at = start + self.opts.reserve_timeout;
                        let until = deadline.map_or(reserve_at, |d| d.min(reserve_at));
                        match tokio::time::timeout_at(until, &mut waiting).await {
                            Ok(h) => early = Some(h),
                            Err(_) if deadline.is_none_or(|d| reserve_at < d) => {
                                self.grow(true);
                            }
                            Err(_) => {}
                        }
                    }
                    let handoff = match (early, deadline) {
                        (Some(h), _) => h,
                        (None, Some(d)) => match tokio::time::timeout_at(d, &mut waiting).await {
                            Ok(h) => h,
                            Err(_) => return Err(timed_out()),
                        },
                        (None, None) => waiting.await,
                    };
                    match handoff {
                        Ok(server) => server,
                        Err(e) if matches!(*e, Error::Closed(_)) => {
                            return Err(Error::Closed(self.opts.name.clone()));
                        }
                        Err(e) => {
                            return Err(Error::Backoff {
                                retry_in: self.retry_in(),
                                last: e,
                            });
                        }
                    }
                }
            };
            // Held by a guard during the check, which may run a query: if
            // this acquisition is dropped meanwhile, the guard gives the
            // server back (cleaned) instead of losing its slot.
            let mut guard = Guard::new(self.clone(), server);
            if !self.healthy(guard.server()).await {
                guard.discard();
                continue;
            }
            guard.server_ref().status().set(ServerState::Active);
            ticket.used(guard.server_ref().id());
            self.counters.acquires.fetch_add(1, Ordering::Relaxed);
            self.counters
                .wait_nanos
                .fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
            return Ok(guard);
        }
    }

    fn retry_in(&self) -> Duration {
        self.state
            .lock()
            .next_dial
            .saturating_duration_since(Instant::now())
    }

    /// Starts a dial if a client that just began waiting could use one and
    /// the ceilings allow it (`reserve`: the reserve pool may be used).
    /// Returns an error instead when the server's last answer was a refusal
    /// that waiting cannot cure and no dial is under way: the caller should
    /// not wait for nothing.
    fn grow(self: &Arc<Self>, reserve: bool) -> Option<Error> {
        let waiting = self.sched.waiting();
        let mut st = self.state.lock();
        let now = Instant::now();
        if st.dialing < waiting && self.below_ceiling(&st, reserve) && self.may_dial(&st, now, true)
        {
            self.start_dial(&mut st);
            return None;
        }
        if st.live == 0
            && st.dialing == 0
            && let Some(last) = st.last_error.clone()
            && last.is_permanent()
        {
            return Some(Error::Backoff {
                last,
                retry_in: st.next_dial.saturating_duration_since(now),
            });
        }
        None
    }

    /// Whether a dial for a waiting client may start now: freely while the
    /// server lets us in; while rounds fail, one probe at a time, once the
    /// backoff has passed or, for a client that just began waiting
    /// (`arriving`), `reconnect_initial` after the last failure.
    fn may_dial(&self, st: &State, now: Instant, arriving: bool) -> bool {
        if !st.failing() {
            return true;
        }
        st.dialing == 0
            && (now >= st.next_dial
                || (arriving && now >= st.last_failure + self.opts.reconnect_initial))
    }

    /// The backoff after `rounds` failed rounds in a row: doubling from
    /// `reconnect_initial` up to `reconnect_max`, then jittered down by up
    /// to half, so pools (and pggat instances) that lost a server together
    /// do not all knock at the same instant.
    fn backoff(&self, rounds: u32) -> Duration {
        let doubled = self
            .opts
            .reconnect_initial
            .saturating_mul(1u32 << rounds.saturating_sub(1).min(20));
        let capped = doubled.min(self.opts.reconnect_max);
        capped.mul_f64(rand::random_range(0.5..=1.0))
    }

    fn below_ceiling(&self, st: &State, reserve: bool) -> bool {
        let max = self.opts.max_connections + if reserve { self.opts.reserve } else { 0 };
        st.live + st.dialing < max
    }

    /// Dials one more server if the shared ceilings have room. Called with
    /// the state locked; when a ceiling is full, another pool's idle server
    /// is closed in the background, which wakes this pool to try again.
    fn start_dial(self: &Arc<Self>, st: &mut State) -> bool {
        let mut taken = 0;
        for limit in &self.opts.limits {
            if !limit.try_take() {
                break;
            }
            taken += 1;
        }
        if taken < self.opts.limits.len() {
            for limit in &self.opts.limits[..taken] {
                limit.undo_take();
            }
            let full = self.opts.limits[taken].clone();
            let me = Arc::downgrade(self);
            tokio::spawn(async move {
                if let Some(me) = me.upgrade() {
                    full.evict(&me);
                }
            });
            return false;
        }
        st.dialing += 1;
        self.spawn_dial(st.round);
        true
    }

    fn spawn_dial(self: &Arc<Self>, round: u64) {
        let pool = self.clone();
        // A RECONNECT while this dial runs must catch its server too.
        let epoch = self.epoch.load(Ordering::Acquire);
        tokio::spawn(async move {
            let result = Server::connect(&pool.recipe).await;
            let mut st = pool.state.lock();
            st.dialing -= 1;
            match result {
                Ok(mut server) => {
                    st.live += 1;
                    if st.failing() {
                        tracing::info!(pool = %pool.opts.name, "server reachable again");
                        st.round += 1;
                    }
                    st.failed_rounds = 0;
                    st.last_error = None;
                    drop(st);
                    server.epoch = epoch;
                    pool.servers
                        .lock()
                        .insert(server.id(), server.status().clone());
                    pool.counters.connects.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(pool = %pool.opts.name, server = server.id(), "server connected");
                    // A draining pool takes it only for a client waiting now:
                    // parked idle it would hold its shared-ceiling slot.
                    let draining = pool.draining.load(Ordering::Acquire);
                    // Dialled before a RECONNECT: it serves a client waiting
                    // now once, and is closed when it comes back.
                    let stale = epoch < pool.epoch.load(Ordering::Acquire);
                    if stale {
                        server.status().mark_close_needed();
                    }
                    let unwanted = (draining || stale) && pool.sched.waiting() == 0;
                    if pool.closed.load(Ordering::Acquire) || unwanted {
                        pool.close(server);
                    } else {
                        pool.sched.release(server);
                    }
                    // Other waiters get their dials now the server answers.
                    pool.maintain.notify_one();
                }
                Err(e) => {
                    let now = Instant::now();
                    if round == st.round {
                        // The first failure of its round: the backoff
                        // grows once for all the dials of this round.
                        st.round += 1;
                        st.failed_rounds = st.failed_rounds.saturating_add(1);
                        st.next_dial = now + pool.backoff(st.failed_rounds);
                    }
                    st.last_failure = now;
                    let e = Arc::new(e);
                    st.last_error = Some(e.clone());
                    let nobody_alive = st.live == 0 && st.dialing == 0;
                    drop(st);
                    pool.opts.limits.iter().for_each(|l| l.give_back());
                    pool.counters.connect_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(pool = %pool.opts.name, error = %e, "server connection failed");
                    if nobody_alive && e.is_permanent() {
                        pool.sched.fail_waiters(e);
                    }
                    pool.maintain.notify_one();
                }
            }
        });
    }

    /// Checks a server before handing it out: it must have sent nothing while
    /// idle (no EOF, no stray bytes; free, no round trip), and one idle past
    /// `check_delay` must answer `check_query`.
    async fn healthy(&self, server: &mut Server) -> bool {
        if server.is_broken() {
            return false;
        }
        if self
            .opts
            .server_lifetime
            .is_some_and(|life| server.age() > life)
        {
            return false;
        }
        // Free when the reactor saw nothing: no syscall unless the socket
        // became readable (data or EOF) while idle.
        if !server.probe() {
            return false;
        }
        // Idle long enough that a firewall or failover may have killed it
        // silently: one round trip proves it answers.
        if self
            .opts
            .check_delay
            // With a zero delay only servers that served before: a fresh
            // login is proof enough (and a failing check query must not make
            // every new server fail in turn).
            .is_some_and(|delay| {
                server.idle_for() >= delay && (!delay.is_zero() || server.has_served())
            })
        {
            server.status().set(ServerState::Tested);
            let check = server.query(&self.opts.check_query);
            match tokio::time::timeout(self.opts.reset_timeout, check).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::info!(pool = %self.opts.name, server = server.id(), error = %e, "health check failed; closing the server");
                    return false;
                }
                Err(_) => {
                    tracing::info!(pool = %self.opts.name, server = server.id(), "health check timed out; closing the server");
                    server.mark_broken();
                    return false;
                }
            }
        }
        true
    }

    /// Takes a server back from a guard. Servers that are not idle, broke,
    /// or outlived `server_lifetime` are closed instead.
    pub(crate) fn check_in(&self, mut server: Server) {
        let expired = self
            .opts
            .server_lifetime
            .is_some_and(|life| server.age() > life);
        if server.is_broken()
            || !server.pipeline().is_idle()
            || expired
            || server.epoch < self.epoch.load(Ordering::Acquire)
            || self.closed.load(Ordering::Acquire)
            || self.draining.load(Ordering::Acquire)
        {
            self.close(server);
            return;
        }
        server.mark_idle();
        server.status().set(ServerState::Idle);
        self.sched.release(server);
        self.released.notify_waiters();
    }

    /// Closes a server and forgets it.
    pub(crate) fn close(&self, server: Server) {
        self.state.lock().live -= 1;
        self.servers.lock().remove(&server.id());
        self.opts.limits.iter().for_each(|l| l.give_back());
        self.released.notify_waiters();
        self.counters.closes.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(pool = %self.opts.name, server = server.id(), "server closed");
        tokio::spawn(server.terminate());
        self.maintain.notify_one();
    }

    /// Stops handing out servers: idle ones are closed now, busy ones when
    /// they come back; waiters fail with [`Error::Closed`].
    pub fn close_all(&self) {
        self.closed.store(true, Ordering::Release);
        for s in self.sched.take_idle(|_| true) {
            self.close(s);
        }
        self.sched
            .fail_waiters(Arc::new(Error::Closed(self.opts.name.clone())));
        self.maintain.notify_one();
    }

    /// Winds the pool down without failing anyone (its config changed or
    /// went away in a reload): idle servers close now, busy ones when they
    /// come back, nothing is pre-warmed; clients still on it get servers
    /// dialled for them as needed.
    pub fn drain(&self) {
        self.draining.store(true, Ordering::Release);
        for s in self.sched.take_idle(|_| true) {
            self.close(s);
        }
    }

    /// Stops handing out servers until [`Pool::resume`]: acquisitions wait
    /// (up to their timeout) and nothing is pre-warmed.
    pub fn pause(&self) {
        self.paused.send_replace(true);
    }

    /// Ends a [`Pool::pause`] (and a [`Pool::quiesce`] waiting on it).
    pub fn resume(&self) {
        self.paused.send_replace(false);
        self.released.notify_waiters();
        self.maintain.notify_one();
    }

    /// Whether the pool is paused.
    pub fn is_paused(&self) -> bool {
        *self.paused.borrow()
    }

    /// Waits until no server is held, then closes every idle one: what
    /// PAUSE waits for before it answers. Call after [`Pool::pause`]; ends
    /// early (false) if the pool is resumed meanwhile.
    pub async fn quiesce(&self) -> bool {
        loop {
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            if !self.is_paused() {
                return false;
            }
            for s in self.sched.take_idle(|_| true) {
                self.close(s);
            }
            let done = {
                let st = self.state.lock();
                st.live == 0 && st.dialing == 0
            };
            if done {
                return true;
            }
            released.await;
        }
    }

    /// Closes every server once it is no longer in use, without failing
    /// anyone (RECONNECT): idle ones now, held ones when they come back;
    /// new servers can be dialled at once.
    pub fn reconnect(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        for status in self.servers.lock().values() {
            status.mark_close_needed();
        }
        for s in self.sched.take_idle(|_| true) {
            self.close(s);
        }
        self.maintain.notify_one();
    }

    /// Waits until no server marked by [`Pool::reconnect`] is left: what
    /// WAIT_CLOSE waits for.
    pub async fn wait_closed(&self) {
        loop {
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            if !self.servers.lock().values().any(|s| s.close_needed()) {
                return;
            }
            released.await;
        }
    }

    /// Every live server's status.
    pub fn servers(&self) -> Vec<Arc<ServerStatus>> {
        let mut all: Vec<_> = self.servers.lock().values().cloned().collect();
        all.sort_by_key(|s| s.id);
        all
    }

    /// Wakes the maintenance task (a shared ceiling has room again).
    pub(crate) fn wake(&self) {
        self.maintain.notify_one();
    }

    /// Closes one idle server, if any, to make room under a shared ceiling.
    pub(crate) fn close_one_idle(&self) -> bool {
        let mut one = true;
        let victims = self.sched.take_idle(|_| std::mem::take(&mut one));
        let any = !victims.is_empty();
        for s in victims {
            self.close(s);
        }
        any
    }

    /// Whether [`Pool::close_all`] was called.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// One maintenance pass: reap idle servers above `min`, close expired
    /// ones, dial up to `min`. Returns when to run again.
    fn tick(self: &Arc<Self>) -> Duration {
        let now = Instant::now();
        let mut next = Duration::from_secs(5);
        if let Some(idle) = self.opts.idle_timeout {
            next = next.min((idle / 4).max(Duration::from_millis(50)));
        }
        // Reap: oldest-idle first, never below min.
        let live = self.state.lock().live;
        let mut spare = live.saturating_sub(self.opts.min_connections);
        let life = self.opts.server_lifetime;
        let idle_timeout = self.opts.idle_timeout;
        let victims = self.sched.take_idle(|s| {
            // Dead while idle (the server restarted, or closed it): gone now
            // rather than counted live until someone draws it.
            if life.is_some_and(|l| s.age() > l) || !s.probe() {
                spare = spare.saturating_sub(1);
                return true;
            }
            if spare > 0 && idle_timeout.is_some_and(|t| s.idle_for() > t) {
                spare -= 1;
                return true;
            }
            false
        });
        for s in victims {
            self.close(s);
        }
        // Pre-warm.
        if !self.is_closed() {
            let mut st = self.state.lock();
            let min = if self.draining.load(Ordering::Acquire) || self.is_paused() {
                0
            } else {
                self.opts.min_connections
            };
            // Waiters first: one dial each while the server lets us in, a
            // probe once the backoff has passed while it does not.
            while self.sched.waiting() > st.dialing
                && self.below_ceiling(&st, false)
                && self.may_dial(&st, now, false)
            {
                if !self.start_dial(&mut st) {
                    break;
                }
            }
            while st.live + st.dialing < min && self.may_dial(&st, now, false) {
                if !self.start_dial(&mut st) {
                    break;
                }
            }
            let short = st.live + st.dialing < min || self.sched.waiting() > st.dialing;
            if short && st.failing() && st.dialing == 0 {
                next = next.min(
                    st.next_dial
                        .saturating_duration_since(now)
                        .max(Duration::from_millis(1)),
                );
            }
        }
        next
    }
}

/// The maintenance loop; ends when the pool is dropped, or closed with no
/// connection left.
async fn maintain(pool: std::sync::Weak<Pool>, wake: Arc<Notify>) {
    loop {
        let wait = {
            let Some(pool) = pool.upgrade() else { return };
            if pool.is_closed() && pool.stats().live == 0 {
                return;
            }
            pool.tick()
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = wake.notified() => {}
        }
    }
}

#[cfg(test)]
mod tests;
