//! Hybrid pools over a real primary and streaming replicas: read-write
//! clients read on replicas and write on the primary, a transaction that
//! writes on a replica is replayed on the primary with every response seen
//! once, prepared statements and settings survive the move, lag and failures
//! steer reads between replicas.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio_postgres::SimpleQueryMessage;

use crate::differential::wire;
use crate::harness::*;

/// Sends `bytes` and returns the tags of every message up to ReadyForQuery.
async fn exchange(s: &mut tokio::net::TcpStream, bytes: &[u8]) -> Vec<u8> {
    use tokio::io::AsyncWriteExt;
    s.write_all(bytes).await.unwrap();
    let mut tags = Vec::new();
    while let Some((tag, _)) = read_message(s).await {
        tags.push(tag);
        if tag == b'Z' {
            break;
        }
    }
    tags
}

/// A Gatfile with one hybrid pool `/hyb` over `primary` and `replicas`;
/// `hybrid` is the body of its `pool hybrid` block.
fn gatfile(primary: &Cluster, replicas: &[&Cluster], hybrid: &str) -> String {
    let replica_lines: String = replicas
        .iter()
        .map(|r| format!("        replica {}\n", r.address()))
        .collect();
    format!(
        "127.0.0.1:0 {{\n    pool /hyb {{\n        address {primary}\n{replica_lines}        username {user}\n        password \"{pw}\"\n        database postgres\n        pool hybrid {{\n{hybrid}\n        }}\n    }}\n}}\n",
        primary = primary.address(),
        user = SCRAM.name,
        pw = SCRAM.password,
    )
}

/// A primary with `n` replicas that have replayed table `hyb`.
async fn clusters(n: usize) -> (Cluster, Vec<Cluster>) {
    tokio::task::spawn_blocking(move || {
        let primary = Cluster::start(&Options::default()).unwrap();
        primary
            .sql(
                "postgres",
                "CREATE TABLE hyb (n int); GRANT SELECT, INSERT, UPDATE ON hyb TO pggat_scram; \
                 CREATE SCHEMA hybps; GRANT USAGE ON SCHEMA hybps TO pggat_scram",
            )
            .unwrap();
        let replicas: Vec<Cluster> = (0..n).map(|_| primary.replica().unwrap()).collect();
        for r in &replicas {
            assert!(r.catch_up(&primary, Duration::from_secs(20)).unwrap());
        }
        (primary, replicas)
    })
    .await
    .unwrap()
}

async fn on_standby(c: &impl tokio_postgres::GenericClient) -> bool {
    c.query_one("SELECT pg_is_in_recovery()", &[])
        .await
        .unwrap()
        .get(0)
}

/// The port of the server that ran one transaction (a simple query: one
/// transaction, where a prepared query is two).
async fn port(c: &tokio_postgres::Client) -> i32 {
    let messages = c.simple_query("SELECT inet_server_port()").await.unwrap();
    messages
        .iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(r) => r.get(0)?.parse().ok(),
            _ => None,
        })
        .expect("a port")
}

fn rows_on_primary(primary: &Cluster, filter: &str) -> i64 {
    primary
        .sql(
            "postgres",
            &format!("SELECT count(*) FROM hyb WHERE {filter}"),
        )
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn read_write_clients_read_on_a_replica_and_write_on_the_primary() {
    let (primary, replicas) = clusters(1).await;
    let replica = &replicas[0];
    let g = Pggat::start(&gatfile(&primary, &[replica], "primary_stickiness 300ms")).await;
    let url = g.url(SCRAM.name, SCRAM.password, "hyb");
    let fresh = || async { connect(&url).await.unwrap() };
    // Stickiness over: this client reads on the replica again.
    let unstuck = async |c: &tokio_postgres::Client| {
        assert!(
            eventually(Duration::from_secs(5), async || on_standby(c).await).await,
            "reads never went back to the replica"
        );
    };

    // Reads run on the replica; an INSERT runs on the primary, and the read
    // right after it sees it there (read your writes).
    let c = fresh().await;
    assert!(
        on_standby(&c).await,
        "a read-write client's read runs on a replica"
    );
    c.batch_execute("INSERT INTO hyb VALUES (1)").await.unwrap();
    let n: i64 = c
        .query_one("SELECT count(*) FROM hyb WHERE n = 1", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1, "a read right after a write sees it");
    assert!(
        !on_standby(&c).await,
        "reads stick to the primary after a write"
    );
    unstuck(&c).await;
    assert!(replica.catch_up(&primary, Duration::from_secs(10)).unwrap());

    // BEGIN; SELECT; INSERT; SELECT; COMMIT: starts on the replica, the
    // INSERT is refused there and the whole transaction replayed on the
    // primary; every result is the client's own, seen once.
    let before = g.hybrid_counters();
    let mut c = fresh().await;
    let tx = c.transaction().await.unwrap();
    assert!(
        on_standby(&tx).await,
        "the transaction starts on the replica"
    );
    let n: i64 = tx
        .query_one("SELECT count(*) FROM hyb", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    assert_eq!(
        tx.execute("INSERT INTO hyb VALUES (2)", &[]).await.unwrap(),
        1
    );
    assert!(
        !on_standby(&tx).await,
        "after the write it runs on the primary"
    );
    let n: i64 = tx
        .query_one("SELECT count(*) FROM hyb", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 2, "the transaction sees its own insert");
    tx.commit().await.unwrap();
    assert_eq!(
        rows_on_primary(&primary, "n = 2"),
        1,
        "inserted exactly once"
    );
    let after = g.hybrid_counters();
    assert_eq!(
        after[1],
        before[1] + 1,
        "one write fallback: {before:?} -> {after:?}"
    );

    // One simple-query string whose first result was already sent from the
    // replica when its INSERT was refused: the client gets that result once
    // and the INSERT's once.
    let c = fresh().await;
    let messages = c
        .simple_query("SELECT 41 + 1; INSERT INTO hyb VALUES (3)")
        .await
        .unwrap();
    let rows: Vec<&str> = messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => r.get(0),
            _ => None,
        })
        .collect();
    let completes: Vec<u64> = messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::CommandComplete(n) => Some(*n),
            _ => None,
        })
        .collect();
    assert_eq!(rows, ["42"]);
    assert_eq!(completes, [1, 1]);
    assert_eq!(rows_on_primary(&primary, "n = 3"), 1);
    assert_eq!(g.hybrid_counters()[1], after[1] + 1);

    // Prepared statements (eqp) made on the replica before the move exist on
    // the primary after it; the statements are bound by name in the replayed
    // transaction.
    let mut c = fresh().await;
    let select = c
        .prepare("SELECT count(*) FROM hyb WHERE n = $1")
        .await
        .unwrap();
    let insert = c.prepare("INSERT INTO hyb VALUES ($1)").await.unwrap();
    unstuck(&c).await;
    let tx = c.transaction().await.unwrap();
    let n: i64 = tx.query_one(&select, &[&10i32]).await.unwrap().get(0);
    assert_eq!(n, 0);
    assert_eq!(tx.execute(&insert, &[&10i32]).await.unwrap(), 1);
    let n: i64 = tx.query_one(&select, &[&10i32]).await.unwrap().get(0);
    assert_eq!(n, 1);
    tx.commit().await.unwrap();
    assert_eq!(rows_on_primary(&primary, "n = 10"), 1);
    // And they still work afterwards, wherever the client lands.
    unstuck(&c).await;
    assert!(replica.catch_up(&primary, Duration::from_secs(10)).unwrap());
    let n: i64 = c.query_one(&select, &[&10i32]).await.unwrap().get(0);
    assert_eq!(n, 1, "the prepared read on the replica");

    // Settings (ps): one set before the transaction and one inside it both
    // hold after the move, and on the next servers.
    let mut c = fresh().await;
    c.batch_execute("SET application_name = 'hyb_ps'")
        .await
        .unwrap();
    let tx = c.transaction().await.unwrap();
    tx.batch_execute("SET search_path TO hybps, public")
        .await
        .unwrap();
    tx.batch_execute("SELECT 1").await.unwrap();
    tx.execute("INSERT INTO hyb VALUES (20)", &[])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    for _ in 0..2 {
        let row = c
            .query_one(
                "SELECT current_setting('application_name'), current_setting('search_path')",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(row.get::<_, String>(0), "hyb_ps");
        assert_eq!(row.get::<_, String>(1), "hybps, public");
        unstuck(&c).await;
    }

    // The same write from several clients in turn: from the second on, the
    // replica server already has the statement, so its Parse is answered by
    // pggat, and that answer too is counted when the transaction moves.
    for _ in 0..3 {
        let mut c = fresh().await;
        let tx = c.transaction().await.unwrap();
        assert!(on_standby(&tx).await);
        assert_eq!(
            tx.execute("INSERT INTO hyb VALUES (30)", &[])
                .await
                .unwrap(),
            1
        );
        tx.commit().await.unwrap();
    }
    assert_eq!(rows_on_primary(&primary, "n = 30"), 3);

    // Session state made in a transaction that started on a replica pins
    // the client to the primary, where its writes go.
    let c = fresh().await;
    c.batch_execute("BEGIN").await.unwrap();
    assert!(on_standby(&c).await);
    c.batch_execute("DECLARE held CURSOR WITH HOLD FOR SELECT 7")
        .await
        .unwrap();
    c.batch_execute("COMMIT").await.unwrap();
    assert!(!on_standby(&c).await, "pinned to the primary");
    let fetched = c.simple_query("FETCH held").await.unwrap();
    assert!(
        fetched
            .iter()
            .any(|m| matches!(m, SimpleQueryMessage::Row(r) if r.get(0) == Some("7"))),
        "the cursor lives on"
    );
    c.batch_execute("INSERT INTO hyb VALUES (40)")
        .await
        .unwrap();
    assert_eq!(rows_on_primary(&primary, "n = 40"), 1);

    // What must start on the primary does; a promise of read-only does not.
    let c = fresh().await;
    c.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        .await
        .unwrap();
    assert!(!on_standby(&c).await, "REPEATABLE READ runs on the primary");
    c.batch_execute("COMMIT").await.unwrap();
    // (A fresh client: the last one's reads stick to the primary a while.)
    let c = fresh().await;
    c.batch_execute("BEGIN READ ONLY").await.unwrap();
    assert!(on_standby(&c).await, "READ ONLY runs on a replica");
    c.batch_execute("COMMIT").await.unwrap();
    let before = g.hybrid_counters();
    let n = c
        .execute("SELECT n FROM hyb WHERE n = 1 FOR UPDATE", &[])
        .await
        .unwrap();
    assert_eq!(n, 1);
    let after = g.hybrid_counters();
    assert_eq!(
        after[1], before[1],
        "FOR UPDATE went straight to the primary"
    );
    assert!(after[2] > before[2]);
    g.shutdown().await;

    // A pipelined batch whose Parse pggat answers itself (the replica server
    // has the statement) and whose Execute the replica refuses: after the
    // replay the client has each answer exactly once.
    let trusted = gatfile(&primary, &[replica], "").replacen("{\n", "{\n    trust\n", 1);
    let g = Pggat::start(&trusted).await;
    {
        let mut warm = connect(&g.url(SCRAM.name, "", "hyb")).await.unwrap();
        let tx = warm.transaction().await.unwrap();
        assert!(on_standby(&tx).await);
        tx.prepare("INSERT INTO hyb VALUES (50)").await.unwrap();
        tx.rollback().await.unwrap();
    }
    let mut s = raw_login(g.addr, SCRAM.name, "hyb").await;
    let tags = exchange(&mut s, &wire::query("BEGIN")).await;
    assert_eq!(tags, b"CZ");
    let mut batch = wire::parse("s50", "INSERT INTO hyb VALUES (50)");
    batch.extend(wire::bind("", "s50", &[]));
    batch.extend(wire::execute("", 0));
    batch.extend(wire::sync());
    let before = g.hybrid_counters();
    assert_eq!(exchange(&mut s, &batch).await, b"12CZ");
    assert_eq!(g.hybrid_counters()[1], before[1] + 1, "it was replayed");
    assert_eq!(exchange(&mut s, &wire::query("COMMIT")).await, b"CZ");
    assert_eq!(rows_on_primary(&primary, "n = 50"), 1);
    g.shutdown().await;

    // hybrid_replay off: explicit read-write transactions start on the
    // primary; autocommit reads still use the replica.
    let g = Pggat::start(&gatfile(&primary, &[replica], "hybrid_replay off")).await;
    let c = connect(&g.url(SCRAM.name, SCRAM.password, "hyb"))
        .await
        .unwrap();
    assert!(on_standby(&c).await);
    c.batch_execute("BEGIN").await.unwrap();
    assert!(
        !on_standby(&c).await,
        "hybrid_replay off: BEGIN runs on the primary"
    );
    c.batch_execute("COMMIT").await.unwrap();
    g.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_and_failures_steer_reads_between_replicas() {
    let (primary, replicas) = clusters(2).await;
    let (a, b) = (&replicas[0], &replicas[1]);
    let g = Pggat::start(&gatfile(
        &primary,
        &[a, b],
        "penalize query_latency {\n threshold 1s\n validity 100ms\n }\n\
         penalize replication_latency {\n threshold 10s\n validity 100ms\n max_lag 500ms\n }",
    ))
    .await;
    let ro = format!(
        "{} options='-c hybrid.mode=ro'",
        g.url(SCRAM.name, SCRAM.password, "hyb")
    );
    let c = connect(&ro).await.unwrap();
    let (pa, pb) = (a.port() as i32, b.port() as i32);
    let serves = async |want: &[i32]| {
        let mut seen = Vec::new();
        for _ in 0..8 {
            seen.push(port(&c).await);
        }
        want.iter().all(|p| seen.contains(p)) && seen.iter().all(|p| want.contains(p))
    };
    assert!(
        eventually(Duration::from_secs(5), async || serves(&[pa, pb]).await).await,
        "both replicas serve reads"
    );

    // Replica A stops replaying while the primary keeps writing: once its
    // lag passes max_lag, B serves everything; when A catches up, both again.
    a.pause_replay().unwrap();
    let writing = Arc::new(AtomicBool::new(true));
    let writer = {
        let writing = writing.clone();
        let direct = connect(&format!(
            "host=127.0.0.1 port={} user={} password='{}' dbname=postgres",
            primary.port(),
            SCRAM.name,
            SCRAM.password
        ))
        .await
        .unwrap();
        tokio::spawn(async move {
            while writing.load(Ordering::Relaxed) {
                direct
                    .batch_execute("INSERT INTO hyb VALUES (0)")
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    assert!(
        eventually(Duration::from_secs(10), async || serves(&[pb]).await).await,
        "a replica over max_lag still serves"
    );
    a.resume_replay().unwrap();
    assert!(
        eventually(Duration::from_secs(10), async || serves(&[pa, pb]).await).await,
        "the replica that caught up serves again"
    );
    writing.store(false, Ordering::Relaxed);
    writer.await.unwrap();

    // Twenty clients read while replica A is killed: no transaction that
    // starts after the kill fails; B (and, for read-write clients, the
    // primary) serve them.
    let url = g.url(SCRAM.name, SCRAM.password, "hyb");
    let running = Arc::new(AtomicBool::new(true));
    let killed_at: Arc<std::sync::Mutex<Option<Instant>>> = Default::default();
    let served_after = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for i in 0..20 {
        let url = if i % 2 == 0 { ro.clone() } else { url.clone() };
        let (running, killed_at, served_after) =
            (running.clone(), killed_at.clone(), served_after.clone());
        clients.push(tokio::spawn(async move {
            let c = connect(&url).await.unwrap();
            let mut failures = Vec::new();
            while running.load(Ordering::Relaxed) {
                let started = Instant::now();
                let after_kill = killed_at.lock().unwrap().is_some_and(|k| started > k);
                match c.query_one("SELECT count(*) FROM hyb", &[]).await {
                    Ok(_) if after_kill => {
                        served_after.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) => {}
                    Err(e) if after_kill => failures.push(e.to_string()),
                    // In flight at the kill: may fail.
                    Err(_) => {}
                }
            }
            failures
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let victim = a.data_dir().to_owned();
    tokio::task::block_in_place(|| a.kill().unwrap());
    *killed_at.lock().unwrap() = Some(Instant::now());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    running.store(false, Ordering::Relaxed);
    let mut failures = Vec::new();
    for c in clients {
        failures.extend(c.await.unwrap());
    }
    assert!(
        failures.is_empty(),
        "after killing {victim:?}: {failures:?}"
    );
    assert!(served_after.load(Ordering::Relaxed) > 20, "reads went on");
    assert!(
        serves(&[pb]).await,
        "read-only clients are on the surviving replica"
    );
    g.shutdown().await;
}

/// `SELECT n FROM fresh` through the extended protocol (a Parse the replica
/// refuses with 42P01 while it has not replayed the table).
async fn fresh_value(c: &tokio_postgres::Client) -> Result<i32, tokio_postgres::Error> {
    Ok(c.query_one("SELECT n FROM fresh", &[]).await?.get(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_has_not_replayed_a_new_table_does_not_fail_the_transaction() {
    let (primary, replicas) = clusters(1).await;
    let replica = &replicas[0];
    let g = Pggat::start(&gatfile(&primary, &[replica], "primary_stickiness 0s")).await;
    let c = connect(&g.url(SCRAM.name, SCRAM.password, "hyb"))
        .await
        .unwrap();
    assert!(on_standby(&c).await, "reads start on the replica");

    // The replica stops replaying; a table (and a function) appear on the
    // primary a moment later.
    tokio::task::block_in_place(|| {
        replica.pause_replay().unwrap();
        primary
            .sql(
                "postgres",
                "CREATE TABLE fresh (n int); INSERT INTO fresh VALUES (7); \
                 GRANT SELECT ON fresh TO pggat_scram; \
                 CREATE FUNCTION fresh_fn() RETURNS int LANGUAGE sql AS 'SELECT 8'",
            )
            .unwrap();
    });
    let before = g.hybrid_counters();
    // Autocommit through the extended protocol, a simple query, and a
    // transaction block whose BEGIN ran on the replica before its read.
    assert_eq!(fresh_value(&c).await.unwrap(), 7);
    let rows = c.simple_query("SELECT fresh_fn()").await.unwrap();
    assert!(
        matches!(&rows[..], [SimpleQueryMessage::RowDescription(_), SimpleQueryMessage::Row(r), ..] if r.get(0) == Some("8")),
        "{rows:?}"
    );
    c.batch_execute("BEGIN").await.unwrap();
    assert_eq!(fresh_value(&c).await.unwrap(), 7);
    c.batch_execute("COMMIT").await.unwrap();
    let after = g.hybrid_counters();
    // Four replays: the autocommit query is two transactions (prepare, then
    // execute, which parses the statement on the replica again).
    assert_eq!(after[4], before[4] + 4, "each was replayed on the primary");

    // Once the client has read on the replica in the transaction, the
    // replica's answer is the client's: the transaction is not moved.
    c.batch_execute("BEGIN").await.unwrap();
    c.query("SELECT n FROM hyb", &[]).await.unwrap();
    let err = fresh_value(&c)
        .await
        .expect_err("read data on the replica first");
    assert_eq!(sqlstate(&err).as_deref(), Some("42P01"), "{err}");
    c.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(g.hybrid_counters()[4], after[4]);

    // A caught-up replica's 42P01 is the client's mistake: it gets it, from
    // the replica (the primary may write something of its own meanwhile,
    // checkpoints for one, and then the primary answers: tried until not).
    tokio::task::block_in_place(|| {
        replica.resume_replay().unwrap();
        assert!(replica.catch_up(&primary, Duration::from_secs(20)).unwrap());
    });
    assert!(
        eventually(Duration::from_secs(10), async || {
            let before = g.hybrid_counters();
            let err = c
                .simple_query("SELECT * FROM no_such_table")
                .await
                .expect_err("no such table");
            assert_eq!(sqlstate(&err).as_deref(), Some("42P01"), "{err}");
            let after = g.hybrid_counters();
            after[4] == before[4] && after[0] == before[0] + 1
        })
        .await,
        "a caught-up replica's error went to the primary"
    );
    // And the table, replayed now, is read on the replica.
    let before = g.hybrid_counters();
    assert_eq!(fresh_value(&c).await.unwrap(), 7);
    assert_eq!(g.hybrid_counters()[4], before[4]);
    g.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lsn_stickiness_reads_a_clients_writes_until_a_replica_has_them() {
    let (primary, replicas) = clusters(1).await;
    let replica = &replicas[0];
    let g = Pggat::start(&gatfile(&primary, &[replica], "primary_stickiness lsn")).await;
    let url = g.url(SCRAM.name, SCRAM.password, "hyb");
    let writer = connect(&url).await.unwrap();
    let other = connect(&url).await.unwrap();
    assert!(on_standby(&writer).await);

    tokio::task::block_in_place(|| replica.pause_replay().unwrap());
    writer
        .batch_execute("INSERT INTO hyb VALUES (4242)")
        .await
        .unwrap();
    let mine = async || -> i64 {
        writer
            .query_one("SELECT count(*) FROM hyb WHERE n = 4242", &[])
            .await
            .unwrap()
            .get(0)
    };
    // Longer than any time-based stickiness would hold: the writer reads its
    // row (on the primary) for as long as the replica lacks it, and a client
    // that wrote nothing reads on the replica all along.
    let until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < until {
        assert_eq!(mine().await, 1, "the writer's read missed its own write");
        assert!(!on_standby(&writer).await);
        assert!(
            on_standby(&other).await,
            "a client that wrote nothing left the replica"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        g.hybrid_counters()[5] > 0,
        "counted as waits for the commit"
    );

    // Replayed: the writer's reads are back on the replica, and see the row.
    tokio::task::block_in_place(|| replica.resume_replay().unwrap());
    assert!(
        eventually(Duration::from_secs(10), async || on_standby(&writer).await).await,
        "reads never went back to the replica"
    );
    assert_eq!(mine().await, 1);
    g.shutdown().await;
}
