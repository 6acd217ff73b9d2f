//! Process signals.

use tokio::signal::unix::{Signal, SignalKind, signal};

/// Which stop signal arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// SIGINT.
    Interrupt,
    /// SIGTERM.
    Terminate,
}

/// SIGINT and SIGTERM, listened to for the life of the process.
pub struct StopSignals {
    term: Option<Signal>,
    int: Option<Signal>,
}

impl StopSignals {
    /// Starts listening.
    pub fn new() -> StopSignals {
        StopSignals {
            term: signal(SignalKind::terminate()).ok(),
            int: signal(SignalKind::interrupt()).ok(),
        }
    }

    /// The next stop signal. Without handlers, waits forever rather than
    /// stop at once.
    pub async fn recv(&mut self) -> Stop {
        tokio::select! {
            Some(()) = next(&mut self.term) => Stop::Terminate,
            Some(()) = next(&mut self.int) => Stop::Interrupt,
        }
    }
}

impl Default for StopSignals {
    fn default() -> StopSignals {
        StopSignals::new()
    }
}

/// The next delivery of a signal; never, without a handler.
pub async fn next(signal: &mut Option<Signal>) -> Option<()> {
    match signal.as_mut() {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn terminated() {
    StopSignals::new().recv().await;
}
