//! What each live server is doing, for the admin console: a small shared
//! record per server, updated by the pool as the server changes hands.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What a server is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerState {
    /// In the pool, ready.
    Idle,
    /// Held by a client.
    Active,
    /// Being checked or cleaned by the pool.
    Tested,
}

/// A live server as the admin console sees it.
#[derive(Debug)]
pub struct ServerStatus {
    /// The server's id (as in logs).
    pub id: u64,
    /// When it logged in.
    pub connected: SystemTime,
    /// Its backend process id.
    pub pid: i32,
    /// The local end of its socket (`ip:port`, or a path).
    pub local_address: Option<String>,
    /// Whether the connection is encrypted.
    pub tls: bool,
    state: AtomicU8,
    /// Unix microseconds of the last change of hands.
    since: Stamp,
    /// The id of the client holding it, 0 for none.
    client: AtomicU64,
    close_needed: AtomicBool,
    prepared: AtomicUsize,
}

/// A moment, as an atomic (for records read by the admin console while the
/// connection they describe changes hands).
#[derive(Debug)]
pub struct Stamp(AtomicU64);

impl Stamp {
    /// Now.
    pub fn now() -> Stamp {
        let s = Stamp(AtomicU64::new(0));
        s.touch();
        s
    }

    /// Moves it to now.
    pub fn touch(&self) {
        let micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        self.0.store(micros, Ordering::Relaxed);
    }

    /// The moment.
    pub fn get(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_micros(self.0.load(Ordering::Relaxed))
    }
}

impl ServerStatus {
    pub(crate) fn new(id: u64, pid: i32, local_address: Option<String>, tls: bool) -> ServerStatus {
        let now = SystemTime::now();
        ServerStatus {
            id,
            connected: now,
            pid,
            local_address,
            tls,
            state: AtomicU8::new(ServerState::Idle as u8),
            since: Stamp::now(),
            client: AtomicU64::new(0),
            close_needed: AtomicBool::new(false),
            prepared: AtomicUsize::new(0),
        }
    }

    pub(crate) fn set(&self, state: ServerState) {
        self.state.store(state as u8, Ordering::Relaxed);
        self.since.touch();
        if state != ServerState::Active {
            self.client.store(0, Ordering::Relaxed);
        }
    }

    /// What it is doing.
    pub fn state(&self) -> ServerState {
        match self.state.load(Ordering::Relaxed) {
            0 => ServerState::Idle,
            1 => ServerState::Active,
            _ => ServerState::Tested,
        }
    }

    /// When it last changed hands.
    pub fn since(&self) -> SystemTime {
        self.since.get()
    }

    /// Records the client holding it.
    pub fn link(&self, client: u64) {
        self.client.store(client, Ordering::Relaxed);
    }

    /// The id of the client holding it; 0 for none.
    pub fn client(&self) -> u64 {
        self.client.load(Ordering::Relaxed)
    }

    /// Whether it will be closed when it comes back (RECONNECT, a reload).
    pub fn close_needed(&self) -> bool {
        self.close_needed.load(Ordering::Relaxed)
    }

    /// Prepared statements it holds, as of its last return to the pool.
    pub fn prepared(&self) -> usize {
        self.prepared.load(Ordering::Relaxed)
    }

    pub(crate) fn set_prepared(&self, n: usize) {
        self.prepared.store(n, Ordering::Relaxed);
    }

    pub(crate) fn mark_close_needed(&self) {
        self.close_needed.store(true, Ordering::Relaxed);
    }
}
