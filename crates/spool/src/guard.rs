//! A checked-out server. Returning it is explicit on the happy path
//! ([`Guard::release`]); dropping it (client vanished, task cancelled, panic)
//! cleans the server up in the background — drain what it still owes, roll
//! back, reset — under the pool's reset timeout, and closes it if that fails.
//! Either way no server reaches the next client dirty.

use std::sync::Arc;

use tokio::time::Instant;

use crate::pool::Pool;
use crate::server::Server;

/// A server on loan to one client.
pub struct Guard {
    pool: Arc<Pool>,
    server: Option<Server>,
    since: Instant,
    /// A reset the server needs whatever the pool's reset query says.
    must_reset: Option<String>,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("server", &self.server.as_ref().map(Server::id))
            .finish()
    }
}

impl Guard {
    pub(crate) fn new(pool: Arc<Pool>, server: Server) -> Guard {
        Guard {
            pool,
            server: Some(server),
            since: Instant::now(),
            must_reset: None,
        }
    }

    /// The server.
    pub fn server(&mut self) -> &mut Server {
        self.server.as_mut().expect("present until released")
    }

    /// The server, read-only.
    pub fn server_ref(&self) -> &Server {
        self.server.as_ref().expect("present until released")
    }

    /// The pool it came from.
    pub fn pool(&self) -> &Arc<Pool> {
        &self.pool
    }

    /// Records that the server must be reset with `query` before anyone
    /// else gets it, however it comes back (released, or dropped because its
    /// client's task ended).
    pub fn must_reset(&mut self, query: &str) {
        self.must_reset = Some(query.to_owned());
    }

    /// When it was acquired.
    pub fn since(&self) -> Instant {
        self.since
    }

    /// Gives the server back at once when it needs no cleaning (idle, no
    /// reset required), the common case in transaction pooling; otherwise
    /// returns the guard, for [`Guard::release`].
    pub fn release_if_clean(mut self) -> Option<Guard> {
        let clean = self.must_reset.is_none()
            && self.server.as_ref().is_some_and(|s| s.pipeline().is_idle());
        if !clean {
            return Some(self);
        }
        if let Some(server) = self.server.take() {
            self.pool.check_in(server);
        }
        None
    }

    /// Gives the server back. If it is not idle it is cleaned first; with
    /// `reset` the pool's reset query runs too (session pooling).
    ///
    /// # Cancel safety
    /// If this future is dropped, the guard's `Drop` finishes the job in
    /// the background.
    pub async fn release(mut self, reset: bool) {
        let query = match self.must_reset.take() {
            Some(q) => Some(q),
            None if reset => self.pool.options().reset_query.clone(),
            None => None,
        };
        let Some(server) = self.server.as_mut() else {
            return;
        };
        if query.is_some() || reset || !server.pipeline().is_idle() {
            let ok = server
                .reset(query.as_deref(), self.pool.options().reset_timeout)
                .await;
            if let Err(e) = ok {
                tracing::info!(pool = %self.pool.options().name, server = server.id(), error = %e, "closing server that could not be reset");
                server.mark_broken();
            }
        }
        let server = self.server.take().expect("checked above");
        self.pool.check_in(server);
    }

    /// Closes the server instead of returning it (it failed mid-use).
    pub fn discard(mut self) {
        if let Some(mut server) = self.server.take() {
            server.mark_broken();
            self.pool.check_in(server);
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let Some(mut server) = self.server.take() else {
            return;
        };
        let pool = self.pool.clone();
        let query = self
            .must_reset
            .take()
            .or_else(|| pool.options().reset_query.clone());
        if server.pipeline().is_idle() && query.is_none() {
            pool.check_in(server);
            return;
        }
        // Cleaning needs I/O: do it in the background. Without a runtime (we
        // are being dropped during shutdown) the server is simply closed.
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    let opts = pool.options();
                    if let Err(e) = server.reset(query.as_deref(), opts.reset_timeout).await {
                        tracing::info!(pool = %pool.options().name, server = server.id(), error = %e, "closing server left dirty by its client");
                        server.mark_broken();
                    }
                    pool.check_in(server);
                });
            }
            Err(_) => {
                server.mark_broken();
                pool.check_in(server);
            }
        }
    }
}
