//! The pool's dialing and waiting, against a minimal login responder on
//! loopback (the end-to-end tests use real PostgreSQL): it lets a login in,
//! refuses it with a given SQLSTATE, or is not there at all.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;
use crate::recipe::Address;

/// What the responder does with a login.
#[derive(Clone, Copy)]
enum Answer {
    /// AuthenticationOk, BackendKeyData, ReadyForQuery; then holds the
    /// connection open until the pool closes it.
    Accept,
    /// FATAL with this SQLSTATE, then closes.
    Refuse(&'static str),
}

/// A loopback port, and a responder that can be started on it later.
struct Responder {
    port: u16,
    logins: Arc<AtomicU64>,
}

impl Responder {
    /// A port nothing listens on (yet): connections are refused.
    fn reserve() -> Responder {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        Responder {
            port,
            logins: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Starts answering logins on the port.
    async fn start(&self, answer: Answer) -> tokio::task::JoinHandle<()> {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
        let logins = self.logins.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    return;
                };
                let logins = logins.clone();
                tokio::spawn(async move {
                    let mut len = [0u8; 4];
                    if s.read_exact(&mut len).await.is_err() {
                        return;
                    }
                    let mut rest = vec![0u8; i32::from_be_bytes(len) as usize - 4];
                    if s.read_exact(&mut rest).await.is_err() {
                        return;
                    }
                    logins.fetch_add(1, Ordering::Relaxed);
                    match answer {
                        Answer::Accept => {
                            let mut out = Vec::new();
                            out.extend_from_slice(b"R\0\0\0\x08\0\0\0\0");
                            out.extend_from_slice(b"K\0\0\0\x0c\0\0\0\x01\0\0\0\x02");
                            out.extend_from_slice(b"Z\0\0\0\x05I");
                            let _ = s.write_all(&out).await;
                            let mut sink = [0u8; 256];
                            while let Ok(n) = s.read(&mut sink).await {
                                if n == 0 {
                                    break;
                                }
                            }
                        }
                        Answer::Refuse(code) => {
                            let mut body = b"SFATAL\0C".to_vec();
                            body.extend_from_slice(code.as_bytes());
                            body.extend_from_slice(b"\0Mrefused by the test\0\0");
                            let mut out = vec![b'E'];
                            out.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
                            out.extend_from_slice(&body);
                            let _ = s.write_all(&out).await;
                        }
                    }
                });
            }
        })
    }

    fn recipe(&self) -> Recipe {
        Recipe {
            address: Address::Tcp {
                host: "127.0.0.1".into(),
                port: self.port,
            },
            user: "u".into(),
            credentials: Arc::new(auth::ClientCredentials::new(
                "u",
                auth::Secret::Plain("p".into()),
            )),
            database: "d".into(),
            parameters: Vec::new(),
            connect_timeout: Duration::from_secs(2),
            login_timeout: Duration::from_secs(2),
            max_prepared_statements: 10,
            tls: None,
            connect_query: None,
        }
    }
}

fn options(max: usize, acquire_timeout: Duration) -> Options {
    Options {
        name: "test".into(),
        max_connections: max,
        acquire_timeout: Some(acquire_timeout),
        check_delay: None,
        reconnect_initial: Duration::from_millis(50),
        reconnect_max: Duration::from_millis(400),
        ..Options::default()
    }
}

/// Acquires from `pool` on a task of its own.
fn acquire(pool: &Arc<Pool>) -> tokio::task::JoinHandle<Result<Guard>> {
    let pool = pool.clone();
    tokio::spawn(async move {
        let mut ticket = Ticket::new();
        pool.acquire(&mut ticket).await
    })
}

async fn until(mut f: impl FnMut() -> bool) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while !f() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .expect("condition never held");
}

/// Ten dials failing together are one failed round: the backoff grew
/// once, not ten times (it was doubled per failed dial: 5 s * 2^9).
#[tokio::test]
async fn dials_failing_together_back_off_once() {
    let down = Responder::reserve();
    let pool = Pool::new(down.recipe(), options(10, Duration::from_secs(30)));
    let waiters: Vec<_> = (0..10).map(|_| acquire(&pool)).collect();
    until(|| pool.counters.connect_errors.load(Ordering::Relaxed) >= 10).await;
    let st = pool.state.lock();
    assert_eq!(st.failed_rounds, 1, "one round, however many dials failed");
    assert!(st.next_dial <= st.last_failure + Duration::from_millis(50));
    drop(st);
    for w in waiters {
        w.abort();
    }
}

/// Clients wait through a server that is down (no error before their
/// timeout), probes run one at a time, and once the server is back every
/// waiter is served within the backoff ceiling.
#[tokio::test]
async fn waiters_wait_out_an_outage_and_are_served_when_it_ends() {
    let server = Responder::reserve();
    let pool = Pool::new(server.recipe(), options(4, Duration::from_secs(30)));
    let waiters: Vec<_> = (0..6).map(|_| acquire(&pool)).collect();
    // A second of outage: the backoff reaches its 400 ms ceiling.
    let probes_before = pool.counters.connect_errors.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let probes = pool.counters.connect_errors.load(Ordering::Relaxed) - probes_before;
    assert!(
        (2..=16).contains(&probes),
        "{probes} failed dials in a second of outage: one probe at a time, backing off"
    );
    assert!(
        waiters.iter().all(|w| !w.is_finished()),
        "nobody gave up early"
    );
    assert!(pool.state.lock().dialing <= 1, "one probe at a time");

    let back = tokio::time::Instant::now();
    let _responder = server.start(Answer::Accept).await;
    let mut served = Vec::new();
    for w in waiters.into_iter().take(4) {
        served.push(w.await.unwrap().expect("served after the outage"));
    }
    let took = back.elapsed();
    assert!(
        took < Duration::from_millis(400 + 300),
        "served {took:?} after the server came back"
    );
    assert_eq!(pool.stats().live, 4, "no more servers than max_connections");
    assert_eq!(pool.state.lock().failed_rounds, 0);
}

/// A client that starts waiting during a backoff probes at once instead of
/// waiting out the backoff (no sooner than reconnect_initial after the
/// last failure).
#[tokio::test]
async fn a_new_waiter_probes_at_once() {
    let server = Responder::reserve();
    let mut opts = options(2, Duration::from_secs(30));
    opts.reconnect_initial = Duration::from_millis(20);
    opts.reconnect_max = Duration::from_secs(60);
    let pool = Pool::new(server.recipe(), opts);
    // Several failed rounds push the background retry far out.
    {
        let mut st = pool.state.lock();
        st.failed_rounds = 12;
        st.next_dial = Instant::now() + Duration::from_secs(60);
        st.last_failure = Instant::now() - Duration::from_secs(1);
        st.last_error = Some(Arc::new(Error::Connect {
            addr: "x".into(),
            reason: "down".into(),
        }));
    }
    let _responder = server.start(Answer::Accept).await;
    let got = tokio::time::timeout(Duration::from_secs(2), acquire(&pool))
        .await
        .expect("the new waiter's probe found the server at once")
        .unwrap();
    assert!(got.is_ok());
}

/// A waiter that times out while the server is down says why: the pool,
/// and the server's last error with its SQLSTATE.
#[tokio::test]
async fn a_timeout_during_an_outage_names_the_servers_last_error() {
    let server = Responder::reserve();
    let _responder = server.start(Answer::Refuse("57P03")).await;
    let pool = Pool::new(server.recipe(), options(2, Duration::from_millis(300)));
    let err = acquire(&pool)
        .await
        .unwrap()
        .expect_err("the server refuses");
    let text = err.to_string();
    assert!(
        matches!(err, Error::AcquireTimeout { last: Some(_), .. }),
        "{text}"
    );
    assert!(
        text.contains("\"test\"") && text.contains("57P03"),
        "{text}"
    );
    assert_eq!(err.sqlstate().as_str(), "57P03");
}

/// A refusal that waiting cannot cure fails waiters at once, and new
/// clients too while no dial is under way.
#[tokio::test]
async fn a_wrong_password_fails_waiters_at_once() {
    let server = Responder::reserve();
    let _responder = server.start(Answer::Refuse("28P01")).await;
    let pool = Pool::new(server.recipe(), options(2, Duration::from_secs(30)));
    let start = tokio::time::Instant::now();
    let err = acquire(&pool).await.unwrap().expect_err("refused");
    assert!(err.is_permanent(), "{err}");
    assert_eq!(err.sqlstate().as_str(), "28P01");
    let err = acquire(&pool).await.unwrap().expect_err("refused again");
    assert_eq!(err.sqlstate().as_str(), "28P01");
    assert!(start.elapsed() < Duration::from_secs(5));
}

/// An acquisition dropped at any point (while waiting for a dial, for a
/// release) leaves no trace: the server it would have got stays in the
/// pool, counted once.
#[tokio::test]
async fn a_dropped_acquisition_leaks_nothing() {
    let server = Responder::reserve();
    let _responder = server.start(Answer::Accept).await;
    let pool = Pool::new(server.recipe(), options(1, Duration::from_secs(30)));
    let held = acquire(&pool).await.unwrap().unwrap();
    // Waits for the one server, and is dropped while waiting.
    let mut ticket = Ticket::new();
    {
        let waiting = pool.acquire(&mut ticket);
        tokio::pin!(waiting);
        assert!(
            tokio::time::timeout(Duration::from_millis(50), &mut waiting)
                .await
                .is_err()
        );
    }
    assert_eq!(pool.stats().waiting, 0, "the dropped waiter left the queue");
    held.release(false).await;
    let again = acquire(&pool).await.unwrap().unwrap();
    assert_eq!(pool.stats().live, 1);
    drop(again);
    until(|| pool.stats().idle == 1 || pool.stats().live == 0).await;
    assert!(pool.stats().live <= 1);
    // Dropped mid-dial: the dial's server goes to the pool.
    let fresh = Pool::new(server.recipe(), options(1, Duration::from_secs(30)));
    let logins = server.logins.load(Ordering::Relaxed);
    drop(tokio::time::timeout(Duration::ZERO, fresh.acquire(&mut Ticket::new())).await);
    until(|| server.logins.load(Ordering::Relaxed) > logins).await;
    until(|| fresh.stats().dialing == 0).await;
    assert_eq!(fresh.stats().live, 1);
    assert_eq!(fresh.stats().idle, 1, "parked, not lost");
}
