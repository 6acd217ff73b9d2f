//! Cancel requests.
//!
//! Each client gets a random (pid, secret) at startup, registered here. While
//! the client holds a server, its entry points at that server's address and
//! real key; a CancelRequest carrying the client's key is forwarded there.
//! The entry is cleared *before* the server is released, and the release
//! waits for cancels already on their way, so a late cancel is never
//! delivered to the server's next user. Unknown keys are ignored, as
//! PostgreSQL does.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use fed::messages::startup;
use parking_lot::Mutex;
use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;

use crate::clients::Counted;

/// Where a client's cancel must go right now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The server's address.
    pub address: spool::Address,
    /// The server's own backend key.
    pub key: spool::BackendKey,
}

#[derive(Default)]
struct InFlight {
    count: AtomicUsize,
    done: Notify,
}

/// Cancel requests of one pool's clients, right now (SHOW POOLS'
/// `cl_active_cancel_req`, `sv_active_cancel` and `sv_being_canceled`).
#[derive(Debug, Default)]
pub struct CancelGauges {
    /// Cancels being forwarded to a server.
    pub forwarding: Arc<AtomicUsize>,
    /// Servers whose release waits for cancels still on their way.
    pub releasing: Arc<AtomicUsize>,
}

/// One client's registration state, shared by the registry (for cancels
/// that arrive) and the client's task (which arms and disarms it around
/// every transaction without touching the registry's lock).
#[derive(Default)]
struct Slot {
    target: Mutex<Armed>,
    inflight: InFlight,
    gauges: Option<Arc<CancelGauges>>,
}

/// The server a client's cancel goes to, kept between transactions so that
/// a client going back to the same server re-arms without allocating.
#[derive(Default)]
struct Armed {
    target: Option<Target>,
    armed: bool,
}

/// The registry of client keys. See the module docs.
#[derive(Default)]
pub struct Cancels {
    map: Mutex<HashMap<(i32, i32), Arc<Slot>>>,
}

/// A client's registration; unregisters on drop.
pub struct Registration {
    cancels: Arc<Cancels>,
    key: (i32, i32),
    slot: Arc<Slot>,
}

impl Cancels {
    /// Registers a new client under a fresh random key; its cancels are
    /// counted in `gauges` (its pool's), if given.
    pub fn register(self: &Arc<Self>, gauges: Option<Arc<CancelGauges>>) -> Registration {
        let mut rng = rand::rng();
        let mut map = self.map.lock();
        loop {
            let key = (rng.random_range(1..i32::MAX), rng.random::<i32>());
            if map.contains_key(&key) {
                continue;
            }
            let slot = Arc::new(Slot {
                gauges,
                ..Slot::default()
            });
            map.insert(key, slot.clone());
            return Registration {
                cancels: self.clone(),
                key,
                slot,
            };
        }
    }

    /// Forwards a cancel for client key `(pid, secret)` to the server that
    /// client holds now, if any.
    pub async fn forward(&self, pid: i32, secret: i32) {
        let slot = self.map.lock().get(&(pid, secret)).cloned();
        let target = slot.as_ref().and_then(|slot| {
            let armed = slot.target.lock();
            let target = armed.target.clone().filter(|_| armed.armed)?;
            // Counted while the slot is locked: a release that disarms after
            // this point waits for us.
            slot.inflight.count.fetch_add(1, Ordering::AcqRel);
            Some(target)
        });
        let (Some(slot), Some(target)) = (slot, target) else {
            tracing::debug!(pid, "cancel request for an unknown or idle client ignored");
            return;
        };
        let gauged = slot.gauges.as_ref().map(|g| Counted::new(&g.forwarding));
        if let Err(e) = send_cancel(&target).await {
            tracing::info!(server = %target.address, error = %e, "could not forward cancel request");
        }
        drop(gauged);
        if slot.inflight.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            slot.inflight.done.notify_waiters();
        }
    }
}

impl Registration {
    /// The key the client was given in BackendKeyData.
    pub fn key(&self) -> (i32, i32) {
        self.key
    }

    /// Points cancels at the server the client now holds.
    pub fn hold(&self, address: &spool::Address, key: spool::BackendKey) {
        let mut armed = self.slot.target.lock();
        match &armed.target {
            Some(t) if t.key == key && t.address == *address => {}
            _ => {
                armed.target = Some(Target {
                    address: address.clone(),
                    key,
                })
            }
        }
        armed.armed = true;
    }

    /// Stops forwarding cancels, then waits (bounded) for any already on
    /// their way: call before releasing the server.
    pub async fn release(&self) {
        self.slot.target.lock().armed = false;
        let inflight = &self.slot.inflight;
        if inflight.count.load(Ordering::Acquire) == 0 {
            return;
        }
        let _gauged = self
            .slot
            .gauges
            .as_ref()
            .map(|g| Counted::new(&g.releasing));
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                let notified = inflight.done.notified();
                if inflight.count.load(Ordering::Acquire) == 0 {
                    break;
                }
                notified.await;
            }
        })
        .await;
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.cancels.map.lock().remove(&self.key);
    }
}

/// Opens a connection to the server, sends CancelRequest, and waits for the
/// postmaster to close it (by then it has signalled the backend).
pub(crate) async fn send_cancel(target: &Target) -> std::io::Result<()> {
    let mut buf = BytesMut::new();
    startup::CancelRequest {
        process_id: target.key.pid,
        secret_key: target.key.secret,
    }
    .encode(&mut buf);
    let fut = async {
        let mut stream: Box<dyn Io> = match &target.address {
            spool::Address::Tcp { host, port } => {
                Box::new(tokio::net::TcpStream::connect((host.as_str(), *port)).await?)
            }
            spool::Address::Unix(_) => Box::new(
                tokio::net::UnixStream::connect(target.address.socket_path().expect("unix"))
                    .await?,
            ),
        };
        stream.write_all(&buf).await?;
        stream.flush().await?;
        let mut sink = [0u8; 64];
        while stream.read(&mut sink).await? > 0 {}
        Ok(())
    };
    tokio::time::timeout(Duration::from_secs(5), fut)
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
}

trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Polls `f` every 5 ms, for at most 5 s.
    async fn until(f: impl Fn() -> bool) -> bool {
        for _ in 0..1000 {
            if f() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        false
    }

    #[tokio::test]
    async fn a_cancel_in_flight_is_gauged_and_holds_the_release() {
        // A "postmaster" that reads the CancelRequest and keeps the
        // connection open until told to close it.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (close, closed) = tokio::sync::oneshot::channel::<()>();
        let postmaster = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 16];
            s.read_exact(&mut request).await.unwrap();
            let _ = closed.await;
            request
        });

        let cancels = Arc::new(Cancels::default());
        let gauges = Arc::new(CancelGauges::default());
        let registration = cancels.register(Some(gauges.clone()));
        let key = spool::BackendKey {
            pid: 4242,
            secret: 77,
        };
        let address = spool::Address::Tcp {
            host: "127.0.0.1".into(),
            port,
        };
        registration.hold(&address, key);
        let (pid, secret) = registration.key();
        let forward = tokio::spawn({
            let cancels = cancels.clone();
            async move { cancels.forward(pid, secret).await }
        });
        assert!(until(|| gauges.forwarding.load(Ordering::Relaxed) == 1).await);
        let release = tokio::spawn(async move {
            registration.release().await;
            registration
        });
        assert!(until(|| gauges.releasing.load(Ordering::Relaxed) == 1).await);
        assert!(!release.is_finished(), "the release waits for the cancel");

        close.send(()).unwrap();
        let request = postmaster.await.unwrap();
        forward.await.unwrap();
        let registration = release.await.unwrap();
        assert_eq!(&request[8..12], &4242i32.to_be_bytes(), "the server's pid");
        assert_eq!(
            &request[12..16],
            &77i32.to_be_bytes(),
            "the server's secret"
        );
        assert_eq!(gauges.forwarding.load(Ordering::Relaxed), 0);
        assert_eq!(gauges.releasing.load(Ordering::Relaxed), 0);

        // Released: a cancel now goes nowhere and is not gauged.
        cancels.forward(pid, secret).await;
        assert_eq!(gauges.forwarding.load(Ordering::Relaxed), 0);
        drop(registration);
    }
}
