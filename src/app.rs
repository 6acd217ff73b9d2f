//! Wiring: from a config to running listeners, and a graceful way down.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use fed::Conn;
use parking_lot::RwLock;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cancel::Cancels;
use crate::client::startup::{self, Request};
use crate::clients::Counted;
use crate::listener::{Bound, Listener};
use crate::route::Router;
use crate::session;

/// One configuration in force: the routes and pools it made, and each
/// server block's TLS. A client keeps the generation it arrived under for
/// its whole session; a reload installs a new one for the clients after.
pub struct Generation {
    /// Routes and pools.
    pub router: Router,
    tls: Vec<Option<tokio_rustls::TlsAcceptor>>,
    /// The server block of each listen address (as written).
    blocks: HashMap<String, usize>,
    /// Each server block's `max_connections` per listener.
    max_clients: Vec<Option<u32>>,
    /// The config's JSON form (no positions): a reload to the same text,
    /// comments and layout aside, changes nothing.
    json: String,
    /// Global settings, some of which only a restart changes.
    global: gat::Global,
}

impl Generation {
    /// Sets `config` up, keeping the pools of `previous` whose settings did
    /// not change (their clients and servers carry on untouched).
    fn new(config: &gat::Config, previous: Option<&Generation>) -> Result<Generation, StartError> {
        let router =
            Router::new(config, previous.map(|g| &g.router)).map_err(StartError::Config)?;
        let tls = config
            .servers
            .iter()
            .map(|s| {
                s.ssl
                    .as_ref()
                    .map(crate::tls::acceptor)
                    .transpose()
                    .map_err(|e| StartError::Config(format!("{}: {e}", crate::route::at(&s.span))))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let blocks = config
            .servers
            .iter()
            .enumerate()
            .flat_map(|(b, s)| s.listen.iter().map(move |l| (l.addr.to_string(), b)))
            .collect();
        // A pgbouncer route's ini is part of what the config says.
        let json = format!("{}{:?}", config.to_json(false), router.bouncer_configs());
        Ok(Generation {
            router,
            tls,
            blocks,
            max_clients: config.servers.iter().map(|s| s.max_connections).collect(),
            json,
            global: config.global.clone(),
        })
    }
}

/// What the admin console asks of the process.
#[derive(Debug)]
pub enum Control {
    /// Re-read the config; answers whether it is now in force.
    Reload(tokio::sync::oneshot::Sender<bool>),
}

/// How to shut down (PgBouncer's SHUTDOWN variants and signals).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShutdownKind {
    /// Close everything now.
    Immediate,
    /// Stop accepting; clients finish their transactions, then are closed
    /// (SIGINT; pggat's SIGTERM for a Gatfile).
    WaitForServers,
    /// Stop accepting; wait until every client has left (PgBouncer's SIGTERM).
    WaitForClients,
}

/// What every connection task shares.
pub struct Shared {
    current: RwLock<Arc<Generation>>,
    control: tokio::sync::mpsc::UnboundedSender<Control>,
    control_rx: parking_lot::Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<Control>>>,
    shutdown: tokio::sync::watch::Sender<Option<ShutdownKind>>,
    /// Client keys, for cancel requests.
    pub cancels: Arc<Cancels>,
    draining: CancellationToken,
    deadline: CancellationToken,
}

impl Shared {
    /// The configuration in force now.
    pub fn generation(&self) -> Arc<Generation> {
        self.current.read().clone()
    }

    /// The pools of the configuration in force.
    pub fn pools(&self) -> Vec<Arc<crate::route::PoolEntry>> {
        self.generation().router.pools()
    }

    /// Asks the process for something and waits for the answer; `None`
    /// when nothing serves requests (a test without a reload loop).
    pub async fn control<T>(
        &self,
        make: impl FnOnce(tokio::sync::oneshot::Sender<T>) -> Control,
    ) -> Option<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.control.send(make(tx)).ok()?;
        rx.await.ok()
    }

    /// Takes the receiving end of [`Shared::control`]: the reload loop's.
    pub fn take_control(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<Control>> {
        self.control_rx.lock().take()
    }

    /// Asks the process to shut down (console SHUTDOWN).
    pub fn request_shutdown(&self, kind: ShutdownKind) {
        self.shutdown.send_replace(Some(kind));
    }

    /// Resolves with the first shutdown asked for.
    pub async fn shutdown_requested(&self) -> ShutdownKind {
        let mut rx = self.shutdown.subscribe();
        loop {
            if let Some(kind) = *rx.borrow_and_update() {
                return kind;
            }
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// The loaded pgbouncer.ini at `path`, in the config in force.
    pub fn bouncer(&self, path: &std::path::Path) -> Option<Arc<crate::pgbouncer::Bouncer>> {
        self.generation().router.bouncer(path)
    }

    /// The pools made from the pgbouncer.ini at `path`.
    pub fn bouncer_pools(&self, path: &std::path::Path) -> Vec<Arc<crate::route::PoolEntry>> {
        self.generation().router.bouncer_pools(path)
    }

    /// Whether shutdown has begun.
    pub fn is_draining(&self) -> bool {
        self.draining.is_cancelled()
    }

    /// Resolves when shutdown begins: stop waiting for servers.
    pub async fn shutting_down(&self) {
        self.draining.cancelled().await;
    }

    /// Resolves when the shutdown grace period is over: close now.
    pub async fn shutdown_deadline(&self) {
        self.deadline.cancelled().await;
    }
}

/// Why pggat could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The config is unusable at run time.
    #[error("{0}")]
    Config(String),
}

/// A running pggat.
pub struct Running {
    shared: Arc<Shared>,
    listeners: Vec<Listening>,
    tracker: TaskTracker,
    stop_accepting: CancellationToken,
    shutdown_timeout: Duration,
    admin: Option<(SocketAddr, CancellationToken)>,
}

/// The sockets bound for one listen address.
struct Listening {
    key: String,
    bound: Vec<Bound>,
    stop: CancellationToken,
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reloaded {
    /// The new config says what the running one says: nothing was touched.
    Unchanged,
    /// The new config is in force.
    Applied {
        /// Pools carried over with their servers and clients.
        pools_kept: usize,
        /// Listen addresses newly bound.
        listeners_started: usize,
        /// Listen addresses no longer accepting.
        listeners_stopped: usize,
    },
}

impl Running {
    /// Every bound listener.
    pub fn bound(&self) -> Vec<Bound> {
        self.listeners
            .iter()
            .flat_map(|l| l.bound.iter().cloned())
            .collect()
    }

    /// The first TCP listener's address (what tests connect to).
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.bound().into_iter().find_map(|b| match b {
            Bound::Tcp(a) => Some(a),
            Bound::Unix(_) => None,
        })
    }

    /// Where the admin endpoint listens, if configured.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(|(a, _)| *a)
    }

    /// The shared state, for stats.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Puts `config` in force without dropping anyone: pools whose settings
    /// did not change keep their servers and clients; clients of a changed
    /// or removed pool finish their sessions on it while new clients get the
    /// new one; listeners no longer configured stop accepting and new ones
    /// start. Everything that can fail (binding, certificates, secrets) is
    /// done before anything is switched, so an error leaves the running
    /// config untouched.
    pub async fn reload(&mut self, config: &gat::Config) -> Result<Reloaded, StartError> {
        let current = self.shared.generation();
        let next = Generation::new(config, Some(&current))?;
        if next.json == current.json {
            return Ok(Reloaded::Unchanged);
        }
        let wanted: Vec<&gat::Listen> = config.servers.iter().flat_map(|s| &s.listen).collect();
        let mut started = Vec::new();
        for listen in &wanted {
            let key = listen.addr.to_string();
            if !self.listeners.iter().any(|l| l.key == key) {
                started.push((key, bind(listen).await?));
            }
        }
        let (old, new) = (&current.global, &config.global);
        for (what, changed) in [
            ("threads", old.threads != new.threads),
            (
                "stat_log_period",
                old.stat_log_period != new.stat_log_period,
            ),
            ("admin", old.admin != new.admin),
        ] {
            if changed {
                tracing::warn!(
                    setting = what,
                    "changed by the reload; takes effect at the next restart"
                );
            }
        }
        let pools_kept = next.router.kept();
        let kept = next.router.pools();
        *self.shared.current.write() = Arc::new(next);
        // Pools of the old config that the new one did not keep wind down:
        // their clients finish on them, nothing is pre-warmed or kept idle.
        for old in current.router.pools() {
            if !kept.iter().any(|k| Arc::ptr_eq(k, &old)) {
                old.server_pools().for_each(|p| p.drain());
            }
        }
        let listeners_started = started.len();
        for (key, listeners) in started {
            self.listen(key, listeners);
        }
        let before = self.listeners.len();
        self.listeners.retain(|l| {
            let keep = wanted.iter().any(|w| w.addr.to_string() == l.key);
            if !keep {
                tracing::info!(address = %l.key, "listener removed by reload; no longer accepting");
                l.stop.cancel();
            }
            keep
        });
        self.shutdown_timeout = config.global.shutdown_timeout;
        Ok(Reloaded::Applied {
            pools_kept,
            listeners_started,
            listeners_stopped: before - self.listeners.len(),
        })
    }

    fn listen(&mut self, key: String, listeners: Vec<Listener>) {
        let stop = self.stop_accepting.child_token();
        let clients = Arc::new(AtomicUsize::new(0));
        let mut bound = Vec::new();
        for l in listeners {
            tracing::info!(address = ?l.bound(), "listening");
            bound.push(l.bound());
            tokio::spawn(accept_loop(
                l,
                key.clone(),
                self.shared.clone(),
                self.tracker.clone(),
                stop.clone(),
                clients.clone(),
            ));
        }
        self.listeners.push(Listening { key, bound, stop });
    }

    /// Stops accepting, lets clients finish up to the shutdown timeout, then
    /// closes the rest and the pools.
    pub async fn shutdown(self) {
        self.shutdown_as(ShutdownKind::WaitForServers, std::future::pending())
            .await;
    }

    /// Shuts down as `kind` says; `hurry` resolving (a second signal) closes
    /// everything at once.
    pub async fn shutdown_as(
        self,
        kind: ShutdownKind,
        hurry: impl std::future::Future<Output = ()>,
    ) {
        self.stop_accepting.cancel();
        // However it began (a signal, the console), console sessions see
        // it and end: they would otherwise hold the shutdown open.
        self.shared.shutdown.send_if_modified(|asked| {
            let first = asked.is_none();
            if first {
                *asked = Some(kind);
            }
            first
        });
        if kind != ShutdownKind::WaitForClients {
            self.shared.draining.cancel();
        }
        self.tracker.close();
        let limit = match kind {
            ShutdownKind::Immediate => Duration::ZERO,
            _ => self.shutdown_timeout,
        };
        let waited = tokio::select! {
            r = tokio::time::timeout(limit, self.tracker.wait()) => r.is_ok(),
            _ = hurry => false,
        };
        if !waited {
            self.shared.draining.cancel();
            tracing::info!(
                remaining = self.tracker.len(),
                "shutdown timeout reached; closing remaining clients"
            );
            self.shared.deadline.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(5), self.tracker.wait()).await;
        }
        self.shared.deadline.cancel();
        for p in self.shared.pools() {
            p.server_pools().for_each(|p| p.close_all());
        }
        if let Some((_, stop)) = &self.admin {
            stop.cancel();
        }
    }
}

async fn bind(listen: &gat::Listen) -> Result<Vec<Listener>, StartError> {
    Listener::bind(&listen.addr)
        .await
        .map_err(|source| StartError::Bind {
            addr: listen.addr.to_string(),
            source,
        })
}

/// Binds every listener of `config` and starts serving. Everything is bound
/// before anything starts, so a failure leaves nothing running.
pub async fn start(config: &gat::Config) -> Result<Running, StartError> {
    let generation = Generation::new(config, None)?;
    let admin = match &config.global.admin {
        Some(addr) => {
            let bind_error = |source| StartError::Bind {
                addr: addr.clone(),
                source,
            };
            // `:9930` means every interface, as for client listeners.
            let host_port = match addr.strip_prefix(':') {
                Some(port) => format!("0.0.0.0:{port}"),
                None => addr.clone(),
            };
            let listener = tokio::net::TcpListener::bind(host_port.as_str())
                .await
                .map_err(bind_error)?;
            let local = listener.local_addr().map_err(bind_error)?;
            Some((listener, local))
        }
        None => None,
    };
    let mut listeners = Vec::new();
    for listen in config.servers.iter().flat_map(|s| &s.listen) {
        listeners.push((listen.addr.to_string(), bind(listen).await?));
    }

    let (control, control_rx) = tokio::sync::mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        current: RwLock::new(Arc::new(generation)),
        control,
        control_rx: parking_lot::Mutex::new(Some(control_rx)),
        shutdown: tokio::sync::watch::Sender::new(None),
        cancels: Arc::new(Cancels::default()),
        draining: CancellationToken::new(),
        deadline: CancellationToken::new(),
    });
    let mut running = Running {
        shared,
        listeners: Vec::new(),
        tracker: TaskTracker::new(),
        stop_accepting: CancellationToken::new(),
        shutdown_timeout: config.global.shutdown_timeout,
        admin: None,
    };
    for (key, bound) in listeners {
        running.listen(key, bound);
    }
    if let Some((listener, local)) = admin {
        let stop = CancellationToken::new();
        tracing::info!(address = %local, "admin endpoint listening");
        tokio::spawn(crate::admin::serve(
            listener,
            running.shared.clone(),
            stop.clone(),
        ));
        running.admin = Some((local, stop));
    }
    if let Some(period) = config.global.stat_log_period {
        tokio::spawn(stat_log(
            running.shared.clone(),
            period,
            running.stop_accepting.clone(),
        ));
    }
    Ok(running)
}

async fn accept_loop(
    listener: Listener,
    key: String,
    shared: Arc<Shared>,
    tracker: TaskTracker,
    stop: CancellationToken,
    clients: Arc<AtomicUsize>,
) {
    loop {
        let stream = tokio::select! {
            s = listener.accept() => s,
            _ = stop.cancelled() => return,
        };
        match stream {
            Ok(stream) => {
                let counted = Counted::new(&clients);
                tracker.spawn(handle(
                    Conn::new(stream),
                    key.clone(),
                    shared.clone(),
                    counted,
                ));
            }
            Err(e) => {
                // EMFILE and friends: back off briefly instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn handle(conn: Conn, key: String, shared: Arc<Shared>, counted: Counted) {
    let generation = shared.generation();
    let Some(&block) = generation.blocks.get(&key) else {
        // The listener was removed by a reload after this accept.
        return;
    };
    let acceptor = generation.tls.get(block).cloned().flatten();
    let start = tokio::time::timeout(
        session::STARTUP_TIMEOUT,
        Box::pin(negotiate(conn, acceptor)),
    );
    let (conn, request) = match start.await {
        Ok(Ok(r)) => r,
        Ok(Err(None)) | Err(_) => return,
        Ok(Err(Some((mut conn, e)))) => {
            tracing::debug!(error = %e, "bad startup");
            e.encode(conn.out());
            conn.shutdown().await;
            return;
        }
    };
    match request {
        Request::Cancel { pid, secret } => shared.cancels.forward(pid, secret).await,
        Request::StartTls => {}
        Request::Startup(s) => {
            if let Some(max) = generation.max_clients.get(block).copied().flatten()
                && counted.now() > max as usize
            {
                let mut conn = conn;
                crate::errors::ClientError::fatal(
                    fed::sqlstate::SqlState::TOO_MANY_CONNECTIONS,
                    format!(
                        "sorry, too many clients already (max_connections {max} of listener {key})"
                    ),
                )
                .encode(conn.out());
                conn.shutdown().await;
                return;
            }
            session::run(conn, s, shared, generation, block).await
        }
    }
}

/// The startup phase: startup packets, and the TLS handshake when the
/// client asks for it and the listener offers it. Errors worth telling the
/// client come back with the connection; a failed handshake has nothing
/// left to tell it on.
async fn negotiate(
    mut conn: Conn,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
) -> Result<(Conn, Request), Option<(Conn, crate::errors::ClientError)>> {
    let mut offer = acceptor.is_some();
    loop {
        match startup::negotiate(&mut conn, offer).await {
            Ok(Request::StartTls) => {
                let Some(acceptor) = &acceptor else {
                    return Err(None);
                };
                // Nothing may be buffered ahead of the handshake
                // (CVE-2021-23214): into_stream refuses then.
                let plain = conn
                    .into_stream()
                    .ok()
                    .and_then(fed::Stream::into_plain)
                    .ok_or(None)?;
                match acceptor.accept(plain).await {
                    Ok(tls) => {
                        conn = Conn::new(fed::Stream::TlsServer(Box::new(tls)));
                        offer = false;
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "TLS handshake with a client failed");
                        return Err(None);
                    }
                }
            }
            Ok(request) => return Ok((conn, request)),
            Err(e) => return Err(Some((conn, e))),
        }
    }
}

async fn stat_log(shared: Arc<Shared>, period: Duration, stop: CancellationToken) {
    let mut tick = tokio::time::interval(period);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        for p in shared.pools() {
            let s = p.pool.stats();
            match &p.hybrid {
                None => tracing::info!(
                    pool = %p.name,
                    servers = s.live,
                    idle = s.idle,
                    waiting = s.waiting,
                    dialing = s.dialing,
                    "pool stats"
                ),
                Some(h) => {
                    let c = &h.counters;
                    let replicas = h.replicas.iter().map(|r| r.pool.stats());
                    tracing::info!(
                        pool = %p.name,
                        servers = s.live,
                        idle = s.idle,
                        waiting = s.waiting,
                        dialing = s.dialing,
                        replica_servers = replicas.clone().map(|r| r.live).sum::<usize>(),
                        replica_waiting = replicas.map(|r| r.waiting).sum::<usize>(),
                        replica_hits = c.replica_hits.load(Ordering::Relaxed),
                        write_fallbacks = c.write_fallbacks.load(Ordering::Relaxed),
                        primary_direct = c.primary_direct.load(Ordering::Relaxed),
                        failovers = c.failovers.load(Ordering::Relaxed),
                        lag_replays = c.lag_replays.load(Ordering::Relaxed),
                        lsn_waits = c.lsn_waits.load(Ordering::Relaxed),
                        "pool stats"
                    );
                }
            }
        }
    }
}
