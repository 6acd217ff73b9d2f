//! The clients of each pool, as the admin console lists them (SHOW CLIENTS,
//! the client columns of SHOW POOLS), and the handle that ends one (KILL).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::time::SystemTime;

use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

/// One counted in a shared count (a listener's `max_connections`,
/// PgBouncer's `max_client_conn`) for as long as it lives.
#[derive(Debug)]
pub struct Counted(Arc<AtomicUsize>);

impl Counted {
    /// Adds one to `count` until dropped.
    pub fn new(count: &Arc<AtomicUsize>) -> Counted {
        count.fetch_add(1, Ordering::AcqRel);
        Counted(count.clone())
    }

    /// The count now, this one included.
    pub fn now(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Counts by name (clients of each database, of each user), an entry kept
/// only while its count is above zero: names clients make up cost nothing
/// once they leave.
#[derive(Debug, Default)]
pub struct Tally(Mutex<HashMap<String, usize>>);

/// One counted in a [`Tally`] for as long as it lives.
#[derive(Debug)]
pub struct Tallied {
    tally: Arc<Tally>,
    name: String,
}

impl Tally {
    /// Counts one more under `name`; the guard, and the count with it.
    pub fn add(self: &Arc<Self>, name: &str) -> (Tallied, usize) {
        let mut counts = self.0.lock();
        let n = counts.entry(name.to_owned()).or_default();
        *n += 1;
        let now = *n;
        drop(counts);
        let tallied = Tallied {
            tally: self.clone(),
            name: name.to_owned(),
        };
        (tallied, now)
    }

    /// The count under `name` now.
    pub fn get(&self, name: &str) -> usize {
        self.0.lock().get(name).copied().unwrap_or(0)
    }
}

impl Drop for Tallied {
    fn drop(&mut self) {
        let mut counts = self.tally.0.lock();
        if let Some(n) = counts.get_mut(&self.name) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.name);
            }
        }
    }
}

/// What a client is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientState {
    /// Logged in, holding no server (PgBouncer: active, shown "idle").
    Idle,
    /// Holding a server.
    Active,
    /// Waiting for a server.
    Waiting,
}

/// One connected client.
#[derive(Debug)]
pub struct ClientInfo {
    /// Unique id.
    pub id: u64,
    /// The user it logged in as.
    pub user: String,
    /// The database it asked for.
    pub database: String,
    /// Its address (`ip:port`), or `unix`.
    pub peer: Option<std::net::SocketAddr>,
    /// Where it connected to (`ip:port` or the socket path).
    pub local: Option<String>,
    /// When it connected.
    pub connected: SystemTime,
    /// Its `application_name` startup parameter.
    pub application_name: String,
    /// Whether it uses TLS.
    pub tls: bool,
    state: AtomicU8,
    since: spool::Stamp,
    server: AtomicU64,
    prepared: AtomicUsize,
    kill: CancellationToken,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl ClientInfo {
    /// A client that just logged in.
    pub fn new(
        user: &str,
        database: &str,
        stream: &fed::Stream,
        application_name: &str,
    ) -> ClientInfo {
        let now = SystemTime::now();
        ClientInfo {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            user: user.to_owned(),
            database: database.to_owned(),
            peer: stream.peer_address(),
            local: stream.local_address(),
            connected: now,
            application_name: application_name.to_owned(),
            tls: stream.is_tls(),
            state: AtomicU8::new(ClientState::Idle as u8),
            since: spool::Stamp::now(),
            server: AtomicU64::new(0),
            prepared: AtomicUsize::new(0),
            kill: CancellationToken::new(),
        }
    }

    /// Records what it does now; `server` is the id of the server it holds.
    pub fn set(&self, state: ClientState, server: u64) {
        self.state.store(state as u8, Ordering::Relaxed);
        self.server.store(server, Ordering::Relaxed);
        self.since.touch();
    }

    /// What it does now.
    pub fn state(&self) -> ClientState {
        match self.state.load(Ordering::Relaxed) {
            0 => ClientState::Idle,
            1 => ClientState::Active,
            _ => ClientState::Waiting,
        }
    }

    /// When its state last changed.
    pub fn since(&self) -> SystemTime {
        self.since.get()
    }

    /// The id of the server it holds; 0 for none.
    pub fn server(&self) -> u64 {
        self.server.load(Ordering::Relaxed)
    }

    /// Named prepared statements it has (eqp), as of its last transaction.
    pub fn prepared(&self) -> usize {
        self.prepared.load(Ordering::Relaxed)
    }

    /// Records how many named prepared statements it has.
    pub fn set_prepared(&self, n: usize) {
        self.prepared.store(n, Ordering::Relaxed);
    }

    /// Ends the client's session (KILL).
    pub fn kill(&self) {
        self.kill.cancel();
    }

    /// Whether it was killed.
    pub fn is_killed(&self) -> bool {
        self.kill.is_cancelled()
    }

    /// Resolves when the client is killed.
    pub async fn killed(&self) {
        self.kill.cancelled().await;
    }
}

/// The clients of one pool.
#[derive(Debug, Default)]
pub struct Clients {
    map: Mutex<HashMap<u64, Arc<ClientInfo>>>,
}

impl Clients {
    /// Adds `client` until the returned handle is dropped.
    pub fn register(self: &Arc<Self>, client: ClientInfo) -> Registered {
        let client = Arc::new(client);
        self.map.lock().insert(client.id, client.clone());
        Registered {
            client,
            list: self.clone(),
        }
    }

    /// Every client now, oldest first.
    pub fn all(&self) -> Vec<Arc<ClientInfo>> {
        let mut v: Vec<_> = self.map.lock().values().cloned().collect();
        v.sort_by_key(|c| c.id);
        v
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.map.lock().len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A client's place in its pool's list; dropping it removes the client.
#[derive(Debug)]
pub struct Registered {
    /// The client.
    pub client: Arc<ClientInfo>,
    list: Arc<Clients>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.list.map.lock().remove(&self.client.id);
    }
}
