//! Reloading the config of a running pggat: on SIGHUP, and with `--watch`
//! whenever the file changes. The new config is read and validated first;
//! if anything is wrong the error is logged with its position and the
//! running config stays in force.

use std::path::Path;
use std::time::Duration;

use crate::app::{Reloaded, Running};

/// How often `--watch` looks at the file.
const WATCH_EVERY: Duration = Duration::from_millis(500);

/// Serves until SIGINT or SIGTERM, reloading `path` on SIGHUP and, with
/// `watch`, when its content changes.
pub async fn serve(running: &mut Running, path: &Path, watch: bool) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangup = signal(SignalKind::hangup()).ok();
    let mut seen = std::fs::read(path).ok();
    let mut tick = tokio::time::interval(WATCH_EVERY);
    let terminated = crate::signals::terminated();
    tokio::pin!(terminated);
    loop {
        tokio::select! {
            _ = &mut terminated => return,
            Some(()) = async {
                match hangup.as_mut() {
                    Some(h) => h.recv().await,
                    None => std::future::pending().await,
                }
            } => {
                tracing::info!(config = %path.display(), "SIGHUP: reloading");
                reload(running, path).await;
                seen = std::fs::read(path).ok();
            }
            _ = tick.tick(), if watch => {
                let now = std::fs::read(path).ok();
                if now != seen {
                    seen = now;
                    tracing::info!(config = %path.display(), "config changed: reloading");
                    reload(running, path).await;
                }
            }
        }
    }
}

/// Reads, validates and applies `path`; logs what happened.
pub async fn reload(running: &mut Running, path: &Path) -> bool {
    let config = match gat::load(path) {
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
