//! Wiring: from a config to running listeners, and a graceful way down.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use fed::Conn;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cancel::Cancels;
use crate::client::startup::{self, Request};
use crate::listener::{Bound, Listener};
use crate::route::Router;
use crate::session;

/// What every connection task shares.
pub struct Shared {
    /// Routes and pools.
    pub router: Router,
    /// Client keys, for cancel requests.
    pub cancels: Arc<Cancels>,
    /// TLS for the clients of each server block (`ssl`), by block.
    tls: Vec<Option<tokio_rustls::TlsAcceptor>>,
    draining: CancellationToken,
    deadline: CancellationToken,
}

impl Shared {
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
    bound: Vec<Bound>,
    tracker: TaskTracker,
    stop_accepting: CancellationToken,
    shutdown_timeout: Duration,
}

impl Running {
    /// Every bound listener.
    pub fn bound(&self) -> &[Bound] {
        &self.bound
    }

    /// The first TCP listener's address (what tests connect to).
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.bound.iter().find_map(|b| match b {
            Bound::Tcp(a) => Some(*a),
            Bound::Unix(_) => None,
        })
    }

    /// The shared state, for stats.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Stops accepting, lets clients finish up to the shutdown timeout, then
    /// closes the rest and the pools.
    pub async fn shutdown(self) {
        self.stop_accepting.cancel();
        self.shared.draining.cancel();
        self.tracker.close();
        if tokio::time::timeout(self.shutdown_timeout, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::info!(
                remaining = self.tracker.len(),
                "shutdown timeout reached; closing remaining clients"
            );
            self.shared.deadline.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(5), self.tracker.wait()).await;
        }
        self.shared.deadline.cancel();
        for p in self.shared.router.pools() {
            p.pool.close_all();
        }
    }
}

/// Binds every listener of `config` and starts serving.
pub async fn start(config: &gat::Config) -> Result<Running, StartError> {
    let router = Router::new(config).map_err(StartError::Config)?;
    let tls = config
        .servers
        .iter()
        .map(|s| {
            s.ssl
                .as_ref()
                .map(crate::tls::acceptor)
                .transpose()
                .map_err(|e| {
                    let at = s
                        .span
                        .0
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default();
                    StartError::Config(format!("{at}: {e}"))
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let shared = Arc::new(Shared {
        router,
        cancels: Arc::new(Cancels::default()),
        tls,
        draining: CancellationToken::new(),
        deadline: CancellationToken::new(),
    });
    let tracker = TaskTracker::new();
    let stop_accepting = CancellationToken::new();
    let mut bound = Vec::new();
    for (block, server) in config.servers.iter().enumerate() {
        for listen in &server.listen {
            let listeners =
                Listener::bind(&listen.addr)
                    .await
                    .map_err(|source| StartError::Bind {
                        addr: listen.addr.to_string(),
                        source,
                    })?;
            for l in listeners {
                tracing::info!(address = ?l.bound(), "listening");
                bound.push(l.bound());
                tokio::spawn(accept_loop(
                    l,
                    block,
                    shared.clone(),
                    tracker.clone(),
                    stop_accepting.clone(),
                ));
            }
        }
    }
    if let Some(period) = config.global.stat_log_period {
        tokio::spawn(stat_log(shared.clone(), period, stop_accepting.clone()));
    }
    Ok(Running {
        shared,
        bound,
        tracker,
        stop_accepting,
        shutdown_timeout: config.global.shutdown_timeout,
    })
}

async fn accept_loop(
    listener: Listener,
    block: usize,
    shared: Arc<Shared>,
    tracker: TaskTracker,
    stop: CancellationToken,
) {
    loop {
        let stream = tokio::select! {
            s = listener.accept() => s,
            _ = stop.cancelled() => return,
        };
        match stream {
            Ok(stream) => {
                tracker.spawn(handle(Conn::new(stream), block, shared.clone()));
            }
            Err(e) => {
                // EMFILE and friends: back off briefly instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn handle(conn: Conn, block: usize, shared: Arc<Shared>) {
    let acceptor = shared.tls.get(block).cloned().flatten();
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
        Request::Startup(s) => session::run(conn, s, shared, block).await,
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
        for p in shared.router.pools() {
            let s = p.pool.stats();
            tracing::info!(
                pool = %p.name,
                servers = s.live,
                idle = s.idle,
                waiting = s.waiting,
                dialing = s.dialing,
                "pool stats"
            );
        }
    }
}
