//! Reloading the config of a running pggat: on SIGHUP, on the admin
//! console's RELOAD, and with `--watch` whenever the file changes. The new
//! config is read and validated first; if anything is wrong the error is
//! logged with its position and the running config stays in force.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::app::{Control, Reloaded, Running, ShutdownKind};
use crate::signals::{Stop, StopSignals, next};

/// How often `--watch` looks at the file.
const WATCH_EVERY: Duration = Duration::from_millis(500);

/// Where the config comes from.
#[derive(Clone, Debug)]
pub enum Source {
    /// A Gatfile or its JSON form.
    Gatfile(PathBuf),
    /// A pgbouncer.ini (`pggat pgbouncer FILE`).
    Pgbouncer(PathBuf),
}

impl Source {
    /// The file watched for changes.
    pub fn path(&self) -> &Path {
        match self {
            Source::Gatfile(p) | Source::Pgbouncer(p) => p,
        }
    }

    /// Reads and checks the config.
    pub fn load(&self) -> Result<gat::Config, String> {
        match self {
            Source::Gatfile(p) => gat::load(p).map_err(|e| e.to_string()),
            Source::Pgbouncer(p) => gat::pgbouncer::load(p)
                .and_then(|b| b.gatfile())
                .map_err(|e| e.to_string()),
        }
    }

    /// How a stop signal shuts down: PgBouncer's way for its ini (SIGINT
    /// waits for servers, SIGTERM for clients), pggat's for a Gatfile (both
    /// let clients finish their transactions).
    fn shutdown_for(&self, stop: Stop) -> ShutdownKind {
        match (self, stop) {
            (Source::Pgbouncer(_), Stop::Terminate) => ShutdownKind::WaitForClients,
            _ => ShutdownKind::WaitForServers,
        }
    }
}

/// Serves until a stop signal or the console's SHUTDOWN, reloading on
/// SIGHUP, RELOAD and, with `watch`, file changes; then shuts down. A second
/// stop signal during the shutdown closes everything at once.
pub async fn serve(mut running: Running, source: &Source, watch: bool) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangup = signal(SignalKind::hangup()).ok();
    // PgBouncer's PAUSE and RESUME signals, for the ini's pools.
    let mut usr1 = signal(SignalKind::user_defined1()).ok();
    let mut usr2 = signal(SignalKind::user_defined2()).ok();
    let mut control = running.shared().take_control();
    let path = source.path();
    let mut seen = std::fs::read(path).ok();
    let mut tick = tokio::time::interval(WATCH_EVERY);
    let mut stops = StopSignals::new();
    let shared = running.shared().clone();
    let kind = loop {
        tokio::select! {
            // In order: signals that arrive together are handled as sent
            // (a SIGUSR1 then SIGUSR2 ends resumed).
            biased;
            stop = stops.recv() => break source.shutdown_for(stop),
            kind = shared.shutdown_requested() => break kind,
            Some(()) = next(&mut hangup) => {
                tracing::info!(config = %path.display(), "SIGHUP: reloading");
                reload(&mut running, source).await;
                seen = std::fs::read(path).ok();
            }
            Some(()) = next(&mut usr1) => crate::pgbouncer::console::pause_on_signal(&shared),
            Some(()) = next(&mut usr2) => crate::pgbouncer::console::resume_on_signal(&shared),
            Some(Control::Reload(reply)) = async {
                match control.as_mut() {
                    Some(c) => c.recv().await,
                    None => std::future::pending().await,
                }
            } => {
                tracing::info!(config = %path.display(), "RELOAD from the admin console");
                let _ = reply.send(reload(&mut running, source).await);
                seen = std::fs::read(path).ok();
            }
            _ = tick.tick(), if watch => {
                let now = std::fs::read(path).ok();
                if now != seen {
                    seen = now;
                    tracing::info!(config = %path.display(), "config changed: reloading");
                    reload(&mut running, source).await;
                }
            }
        }
    };
    tracing::info!(?kind, "shutting down");
    running
        .shutdown_as(kind, async move {
            stops.recv().await;
            tracing::info!("second stop signal: closing everything now");
        })
        .await;
}

/// Reads, validates and applies the config; logs what happened.
pub async fn reload(running: &mut Running, source: &Source) -> bool {
    let config = match source.load() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "reload refused; still serving the previous config");
            return false;
        }
    };
    match running.reload(&config).await {
        Ok(Reloaded::Unchanged) => {
            tracing::info!("config unchanged; nothing to do");
            true
        }
        Ok(Reloaded::Applied {
            pools_kept,
            listeners_started,
            listeners_stopped,
        }) => {
            tracing::info!(pools_kept, listeners_started, listeners_stopped, "reloaded");
            true
        }
        Err(e) => {
            tracing::error!(error = %e, "reload refused; still serving the previous config");
            false
        }
    }
}
