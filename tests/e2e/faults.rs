//! Database faults under load: a backend killed with SIGKILL (PostgreSQL
//! then resets every connection), an immediate restart of the primary, a
//! stalled postmaster (SIGSTOP for 5 s), a replica stopped under a hybrid
//! pool, and clients vanishing mid-statement. Three pools (session,
//! transaction, hybrid) share one primary and run a mixed load throughout;
//! after each fault the first transaction of every pool must succeed within
//! a second of PostgreSQL accepting connections again, and at the end no
//! server is leaked and no session is left idle in a transaction.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use parking_lot::Mutex;

use crate::harness::*;

/// The pools: route (database name), server ceiling, load clients.
const POOLS: [(&str, usize, usize); 3] = [
    ("fault_session", 6, 5),
    ("fault_tx", 4, 12),
    ("fault_hybrid", 4, 8),
];

/// What the load clients did: when, through which pool, and the error.
#[derive(Default)]
struct Log(Mutex<Vec<(Instant, &'static str, Option<String>)>>);

impl Log {
    fn push(&self, pool: &'static str, outcome: Option<String>) {
        self.0.lock().push((Instant::now(), pool, outcome));
    }

    /// The first success of `pool` at or after `from`.
    fn first_ok(&self, pool: &str, from: Instant) -> Option<Instant> {
        self.0
            .lock()
            .iter()
            .find(|(at, p, e)| *p == pool && *at >= from && e.is_none())
            .map(|(at, _, _)| *at)
    }

    /// The errors seen between `from` and `to`, for every pool.
    fn errors(&self, from: Instant, to: Instant) -> Vec<String> {
        self.0
            .lock()
            .iter()
            .filter(|(at, _, e)| *at >= from && *at <= to && e.is_some())
            .map(|(_, p, e)| format!("{p}: {}", e.as_deref().unwrap_or_default()))
            .collect()
    }
}

fn gatfile(primary: &Cluster, replica: &Cluster) -> String {
    let pool = |db: &str, max: usize, extra: &str, kind: &str| {
        format!(
            "    pool /{db} {{\n        address {}\n{extra}        username {}\n        password \"{}\"\n        database postgres\n        max_connections {max}\n        {kind}\n    }}\n",
            primary.address(),
            SCRAM.name,
            SCRAM.password,
        )
    };
    let [(s, s_max, _), (t, t_max, _), (h, h_max, _)] = POOLS;
    format!(
        "127.0.0.1:0 {{\n{}{}{}}}\n",
        pool(s, s_max, "", "pool basic session"),
        pool(t, t_max, "", "pool basic transaction"),
        pool(
            h,
            h_max,
            &format!("        replica {}\n", replica.address()),
            "pool hybrid"
        ),
    )
}

/// One load client: 60% writes (a TPC-B-like transaction in one simple
/// query), 40% reads (a prepared statement, through eqp in transaction
/// pools); reconnects when its connection is gone.
async fn worker(url: String, pool: &'static str, seed: u64, stop: Arc<AtomicBool>, log: Arc<Log>) {
    let mut n = seed;
    while !stop.load(Ordering::Relaxed) {
        let client = match connect(&url).await {
            Ok(c) => c,
            Err(e) => {
                log.push(pool, Some(format!("connect: {e}")));
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        while !stop.load(Ordering::Relaxed) {
            n = n
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let account = (n >> 33) as i32 % 100 + 1;
            let outcome = if (n >> 20) % 10 < 6 {
                client
                    .batch_execute(&format!(
                        "BEGIN; UPDATE fault_accounts SET balance = balance + 1 WHERE id = {account}; \
                         INSERT INTO fault_history (aid, delta) VALUES ({account}, 1); COMMIT"
                    ))
                    .await
            } else {
                client
                    .query_one(
                        "SELECT balance FROM fault_accounts WHERE id = $1",
                        &[&account],
                    )
                    .await
                    .map(drop)
            };
            match outcome {
                Ok(()) => log.push(pool, None),
                Err(e) => {
                    log.push(pool, Some(e.to_string()));
                    if client.is_closed() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }
}

/// Whether PostgreSQL accepts a login and answers a query now.
async fn accepting(pg: &Cluster) -> bool {
    let url = format!(
        "host=127.0.0.1 port={} user={} password='{}' dbname=postgres connect_timeout=1",
        pg.port(),
        SCRAM.name,
        SCRAM.password
    );
    match tokio::time::timeout(Duration::from_secs(2), connect(&url)).await {
        Ok(Ok(c)) => c.simple_query("SELECT 1").await.is_ok(),
        _ => false,
    }
}

/// When PostgreSQL accepts again after a fault: once a direct login has
/// failed (or 2 s passed without one failing), the first one that works.
async fn accepts_again(pg: &Cluster) -> Instant {
    let failing_by = Instant::now() + Duration::from_secs(2);
    while Instant::now() < failing_by && accepting(pg).await {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let limit = Instant::now() + Duration::from_secs(60);
    loop {
        let at = Instant::now();
        if accepting(pg).await {
            return at;
        }
        assert!(Instant::now() < limit, "PostgreSQL did not come back");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Each pool's first success after `back`, within 1 s of it.
async fn assert_recovered(log: &Log, back: Instant, fault: &str) {
    for (pool, _, _) in POOLS {
        let ok = eventually(Duration::from_secs(15), async || {
            log.first_ok(pool, back).is_some()
        })
        .await;
        assert!(ok, "{fault}: {pool} never served again");
        let took = log.first_ok(pool, back).unwrap() - back;
        eprintln!("{fault}: {pool} served {took:?} after PostgreSQL accepted again");
        assert!(
            took <= Duration::from_secs(1),
            "{fault}: {pool} served only {took:?} after PostgreSQL accepted again"
        );
    }
}

fn postmaster(pg: &Cluster) -> Pid {
    let text = std::fs::read_to_string(pg.data_dir().join("postmaster.pid")).unwrap();
    Pid::from_raw(text.lines().next().unwrap().trim().parse().unwrap())
}

/// Backends of pggat's servers (the load's role) on `pg`, by state.
fn backends(pg: &Cluster, state_filter: &str) -> usize {
    pg.sql(
        "postgres",
        &format!(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = '{}' AND backend_type = 'client backend' {state_filter}",
            SCRAM.name
        ),
    )
    .unwrap()
    .parse()
    .unwrap()
}

fn idle_in_transaction(pg: &Cluster) -> usize {
    backends(pg, "AND state LIKE 'idle in transaction%'")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_pool_recovers_from_every_fault_within_a_second() {
    let (primary, replica) = tokio::task::spawn_blocking(|| {
        let primary = Cluster::start(&Options::default()).unwrap();
        primary
            .sql(
                "postgres",
                "CREATE TABLE fault_accounts (id int PRIMARY KEY, balance int NOT NULL);
                 INSERT INTO fault_accounts SELECT g, 0 FROM generate_series(1, 200) g;
                 CREATE TABLE fault_history (id bigserial, aid int, delta int);
                 GRANT SELECT, UPDATE ON fault_accounts TO pggat_scram;
                 GRANT INSERT ON fault_history TO pggat_scram;
                 GRANT USAGE ON SEQUENCE fault_history_id_seq TO pggat_scram;",
            )
            .unwrap();
        let replica = primary.replica().unwrap();
        assert!(replica.catch_up(&primary, Duration::from_secs(30)).unwrap());
        (Arc::new(primary), Arc::new(replica))
    })
    .await
    .unwrap();
    let g = Pggat::start(&gatfile(&primary, &replica)).await;

    let stop = Arc::new(AtomicBool::new(false));
    let log = Arc::new(Log::default());
    let mut tasks = Vec::new();
    let seed = AtomicU64::new(1);
    for (pool, _, clients) in POOLS {
        for _ in 0..clients {
            tasks.push(tokio::spawn(worker(
                g.url(SCRAM.name, SCRAM.password, pool),
                pool,
                seed.fetch_add(7919, Ordering::Relaxed),
                stop.clone(),
                log.clone(),
            )));
        }
    }
    let start = Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for (pool, _, _) in POOLS {
        assert!(
            log.first_ok(pool, start).is_some(),
            "{pool} serves before any fault"
        );
    }
    assert!(
        log.errors(start, Instant::now()).is_empty(),
        "{:?}",
        log.errors(start, Instant::now())
    );

    // 1. SIGKILL of one backend: PostgreSQL resets every connection.
    let victim: i32 = primary
        .sql(
            "postgres",
            &format!(
                "SELECT pid FROM pg_stat_activity WHERE usename = '{}' LIMIT 1",
                SCRAM.name
            ),
        )
        .unwrap()
        .parse()
        .unwrap();
    kill(Pid::from_raw(victim), Signal::SIGKILL).unwrap();
    let back = accepts_again(&primary).await;
    assert_recovered(&log, back, "backend killed").await;

    // 2. Immediate restart of the primary (a crash and a restart).
    let pg = primary.clone();
    let restart = tokio::task::spawn_blocking(move || {
        pg.kill().unwrap();
        pg.restart().unwrap();
    });
    let back = accepts_again(&primary).await;
    restart.await.unwrap();
    assert_recovered(&log, back, "primary restarted").await;

    // 3. A stalled postmaster: no new login is answered for 5 s, the
    // servers pggat has keep working. No client may see an error.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stalled = Instant::now();
    let pid = postmaster(&primary);
    kill(pid, Signal::SIGSTOP).unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    kill(pid, Signal::SIGCONT).unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let errors = log.errors(stalled, Instant::now());
    assert!(
        errors.is_empty(),
        "a stalled postmaster cost {} errors: {:?}",
        errors.len(),
        &errors[..errors.len().min(5)]
    );
    for (pool, _, _) in POOLS {
        assert!(
            log.first_ok(pool, stalled + Duration::from_secs(1))
                .is_some(),
            "{pool} served while the postmaster was stopped"
        );
    }

    // 4. The replica stops under the hybrid pool: its reads move to the
    // primary, with no client error; it comes back and is used again.
    let replica_down = Instant::now();
    let r = replica.clone();
    tokio::task::spawn_blocking(move || r.kill().unwrap())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let errors: Vec<_> = log
        .errors(replica_down, Instant::now())
        .into_iter()
        .filter(|e| e.starts_with("fault_hybrid"))
        .collect();
    assert!(
        errors.is_empty(),
        "the replica's loss cost hybrid clients {errors:?}"
    );
    assert!(
        log.first_ok("fault_hybrid", replica_down + Duration::from_millis(500))
            .is_some()
    );
    let r = replica.clone();
    tokio::task::spawn_blocking(move || r.restart().unwrap())
        .await
        .unwrap();

    // 5. Clients vanishing mid-statement, inside a transaction holding a
    // row lock: their servers are rolled back, and the rows are free again.
    for (i, (pool, _, _)) in POOLS.iter().enumerate() {
        let c = g.connect(SCRAM.name, SCRAM.password, pool).await.unwrap();
        c.batch_execute(&format!(
            "BEGIN; UPDATE fault_accounts SET balance = balance WHERE id = {}",
            150 + i
        ))
        .await
        .unwrap();
        let running = tokio::spawn(async move {
            let _ = c.simple_query("SELECT pg_sleep(2)").await;
            c
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        running.abort();
    }
    let other = g
        .connect(SCRAM.name, SCRAM.password, "fault_tx")
        .await
        .unwrap();
    for i in 0..3 {
        tokio::time::timeout(
            Duration::from_secs(10),
            other.batch_execute(&format!(
                "SET lock_timeout = '8s'; UPDATE fault_accounts SET balance = balance WHERE id = {}",
                150 + i
            )),
        )
        .await
        .expect("a vanished client's row lock was never released")
        .unwrap();
    }
    drop(other);

    // The load ran throughout, and nobody sits idle in a transaction.
    assert_eq!(
        idle_in_transaction(&primary),
        0,
        "idle-in-transaction sessions under load"
    );
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let served = log.0.lock().iter().filter(|(_, _, e)| e.is_none()).count();
    eprintln!("{served} transactions served");

    // No server leaked: every backend pggat opened is one it counts, and no
    // pool holds more than its ceiling.
    let pools = g.running().shared().pools();
    let live = |replica_side: bool| -> usize {
        pools
            .iter()
            .map(|p| match (&p.hybrid, replica_side) {
                (Some(h), true) => h.replicas.iter().map(|r| r.pool.stats().live).sum(),
                (_, true) => 0,
                (_, false) => p.pool.stats().live,
            })
            .sum()
    };
    for p in &pools {
        let max = POOLS
            .iter()
            .find(|(db, _, _)| p.name.contains(db))
            .map(|(_, m, _)| *m);
        if let Some(max) = max {
            assert!(
                p.pool.stats().live <= max,
                "{}: {:?} over {max}",
                p.name,
                p.pool.stats()
            );
        }
    }
    let matched = eventually(Duration::from_secs(10), async || {
        backends(&primary, "") == live(false) && backends(&replica, "") == live(true)
    })
    .await;
    assert!(
        matched,
        "backends on the primary {} vs pggat's servers {}; on the replica {} vs {}",
        backends(&primary, ""),
        live(false),
        backends(&replica, ""),
        live(true)
    );
    assert_eq!(idle_in_transaction(&primary), 0);
    g.shutdown().await;
}
