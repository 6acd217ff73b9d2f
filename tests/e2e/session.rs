//! Session pooling with real clients.

use std::time::Duration;

use futures_util::SinkExt;
use futures_util::StreamExt;

use crate::harness::*;

fn pool(db: &str, max: u32) -> String {
    session_pool(cluster(), db, SCRAM, max)
}

#[tokio::test]
async fn psql_runs_queries_multi_statements_and_copy() {
    let g = Pggat::start(&pool("psqldb", 4)).await;
    let out = g
        .psql(
            SCRAM.name,
            SCRAM.password,
            "psqldb",
            &["-c", "SELECT 1 + 1"],
        )
        .await;
    assert_success(&out);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "2");

    // A multi-statement string is one simple Query; psql prints every
    // result. Through pggat it must print exactly what it prints directly.
    let sql = "CREATE TEMP TABLE t(a int, b text); INSERT INTO t VALUES (1, 'x'), (2, 'y'); SELECT sum(a) FROM t";
    let pooled = g
        .psql(SCRAM.name, SCRAM.password, "psqldb", &["-c", sql])
        .await;
    let direct_addr = cluster().address().parse().unwrap();
    let direct = crate::harness::psql(
        direct_addr,
        SCRAM.name,
        SCRAM.password,
        "postgres",
        &["-c", sql],
        None,
    )
    .await;
    assert_success(&pooled);
    assert_eq!(
        String::from_utf8_lossy(&pooled.stdout),
        String::from_utf8_lossy(&direct.stdout)
    );
    assert_eq!(
        String::from_utf8_lossy(&pooled.stdout).trim(),
        "CREATE TABLE\nINSERT 0 2\n3"
    );

    // COPY in and out through psql's stdin/stdout in one session.
    let script = "CREATE TEMP TABLE c(a int, b text);\n\
                  COPY c FROM STDIN;\n1\tone\n2\ttwo\n3\tthree\n\\.\n\
                  COPY (SELECT a, b FROM c ORDER BY a) TO STDOUT;\n";
    let out = crate::harness::psql(
        g.addr,
        SCRAM.name,
        SCRAM.password,
        "psqldb",
        &["-f", "-"],
        Some(script),
    )
    .await;
    let direct = crate::harness::psql(
        direct_addr,
        SCRAM.name,
        SCRAM.password,
        "postgres",
        &["-f", "-"],
        Some(script),
    )
    .await;
    assert_success(&out);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&direct.stdout)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "CREATE TABLE\nCOPY 3\n1\tone\n2\ttwo\n3\tthree"
    );
    g.shutdown().await;
}

#[tokio::test]
async fn tokio_postgres_queries_copy_and_large_results() {
    let g = Pggat::start(&pool("tpdb", 4)).await;
    let c = g.connect(SCRAM.name, SCRAM.password, "tpdb").await.unwrap();

    let row = c.query_one("SELECT $1::int + 1", &[&41i32]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 42);

    let msgs = c
        .simple_query("SELECT 1; SELECT 'two'; SELECT 3")
        .await
        .unwrap();
    let values: Vec<String> = msgs
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some(r.get(0).unwrap().to_owned()),
            _ => None,
        })
        .collect();
    assert_eq!(values, ["1", "two", "3"]);

    // 10^5 rows, extended protocol.
    let rows = c
        .query(
            "SELECT g, repeat('x', 100) FROM generate_series(1, 100000) g",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 100_000);
    assert_eq!(rows[99_999].get::<_, i32>(0), 100_000);

    // COPY in (extended protocol, as tokio-postgres does it) and out.
    c.batch_execute("CREATE TEMP TABLE big(n int, s text)")
        .await
        .unwrap();
    let sink = c.copy_in("COPY big FROM STDIN").await.unwrap();
    futures_util::pin_mut!(sink);
    let mut chunk = String::new();
    for i in 0..50_000 {
        chunk.push_str(&format!("{i}\trow {i}\n"));
    }
    sink.send(bytes::Bytes::from(chunk)).await.unwrap();
    let n = sink.finish().await.unwrap();
    assert_eq!(n, 50_000);
    let stream = c
        .copy_out("COPY (SELECT n FROM big ORDER BY n) TO STDOUT")
        .await
        .unwrap();
    futures_util::pin_mut!(stream);
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text.lines().count(), 50_000);
    assert_eq!(text.lines().last(), Some("49999"));

    // The connection is still in sync after all of that.
    let n: i64 = c
        .query_one("SELECT count(*) FROM big", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 50_000);
    g.shutdown().await;
}

#[tokio::test]
async fn session_state_is_gone_for_the_next_session_on_the_same_server() {
    let g = Pggat::start(&pool("statedb", 1)).await;
    let a = g
        .connect(SCRAM.name, SCRAM.password, "statedb")
        .await
        .unwrap();
    let pid_a: i32 = backend_pid(&a).await;
    a.batch_execute("SET application_name = 'leaky'; SET statement_timeout = '123s'; CREATE TEMP TABLE secret(x int); PREPARE p AS SELECT 1")
        .await
        .unwrap();
    drop(a);

    let b = g
        .connect(SCRAM.name, SCRAM.password, "statedb")
        .await
        .unwrap();
    let pid_b: i32 = backend_pid(&b).await;
    assert_eq!(
        pid_a, pid_b,
        "max_connections 1: the same server, so Terminate never reached it"
    );
    let row = b
        .query_one(
            "SELECT current_setting('statement_timeout'), current_setting('application_name'), \
             to_regclass('pg_temp.secret') IS NULL, (SELECT count(*) FROM pg_prepared_statements WHERE name = 'p')",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "0");
    assert_ne!(row.get::<_, String>(1), "leaky");
    assert!(
        row.get::<_, bool>(2),
        "temp table leaked into the next session"
    );
    assert_eq!(row.get::<_, i64>(3), 0, "prepared statement leaked");
    g.shutdown().await;
}

#[tokio::test]
async fn client_lost_inside_a_transaction_leaves_a_rolled_back_server() {
    cluster()
        .sql("postgres", "CREATE TABLE IF NOT EXISTS lost_tx(v text)")
        .unwrap();
    cluster()
        .sql("postgres", "GRANT ALL ON lost_tx TO pggat_scram")
        .unwrap();
    let g = Pggat::start(&pool("lostdb", 1)).await;
    {
        // A raw socket: send BEGIN and an INSERT, then vanish without Terminate.
        let a = g
            .connect(SCRAM.name, SCRAM.password, "lostdb")
            .await
            .unwrap();
        a.batch_execute("BEGIN; INSERT INTO lost_tx VALUES ('uncommitted')")
            .await
            .unwrap();
        // Also leave an unsynced extended-protocol batch behind.
        let _ = a.prepare("SELECT 1").await.unwrap();
        drop(a);
    }
    let b = g
        .connect(SCRAM.name, SCRAM.password, "lostdb")
        .await
        .unwrap();
    let n: i64 = b
        .query_one("SELECT count(*) FROM lost_tx WHERE v = 'uncommitted'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
    // And b is outside any transaction (a fresh BEGIN works without a warning path).
    b.batch_execute("BEGIN; COMMIT").await.unwrap();
    g.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_clients_share_ten_servers() {
    let g = Pggat::start(&pool("manydb", 10)).await;
    let url = g.url(SCRAM.name, SCRAM.password, "manydb");
    let watcher = {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let peak = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (s, p) = (stop.clone(), peak.clone());
        let h = std::thread::spawn(move || {
            while !s.load(std::sync::atomic::Ordering::Relaxed) {
                let n: usize = cluster()
                    .sql("postgres", "SELECT count(*) FROM pg_stat_activity WHERE usename = 'pggat_scram' AND application_name = 'many'")
                    .unwrap()
                    .parse()
                    .unwrap();
                p.fetch_max(n, std::sync::atomic::Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        (stop, peak, h)
    };
    let mut tasks = Vec::new();
    for i in 0..200 {
        let url = format!("{url} application_name=many");
        tasks.push(tokio::spawn(async move {
            let c = connect(&url).await.unwrap();
            let v: i32 = c
                .query_one("SELECT $1::int FROM pg_sleep(0.01)", &[&i])
                .await
                .unwrap()
                .get(0);
            assert_eq!(v, i);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let (stop, peak, h) = watcher;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    h.join().unwrap();
    assert!(g.live_servers() <= 10);
    let peak = peak.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        peak <= 10,
        "pggat opened {peak} server connections with max_connections 10"
    );
    assert!(peak >= 2, "the pool never grew past one server ({peak})");
    g.shutdown().await;
}

#[tokio::test]
async fn startup_parameters_reach_the_server() {
    let g = Pggat::start(&pool("paramdb", 2)).await;
    let url = format!(
        "{} application_name=param-test options='-c search_path=pg_catalog,public -c statement_timeout=7s'",
        g.url(SCRAM.name, SCRAM.password, "paramdb")
    );
    let c = connect(&url).await.unwrap();
    let row = c
        .query_one(
            "SELECT current_setting('application_name'), current_setting('search_path'), current_setting('statement_timeout')",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "param-test");
    assert_eq!(row.get::<_, String>(1), "pg_catalog,public");
    assert_eq!(row.get::<_, String>(2), "7s");
    g.shutdown().await;
}

#[tokio::test]
async fn graceful_shutdown_lets_a_session_finish() {
    let g = Pggat::start(&pool("drain", 2)).await;
    let addr = g.addr;
    let c = g
        .connect(SCRAM.name, SCRAM.password, "drain")
        .await
        .unwrap();
    c.batch_execute("BEGIN").await.unwrap();
    let shutdown = tokio::spawn(g.shutdown());
    // New clients are refused once shutdown began...
    assert!(
        eventually(Duration::from_secs(5), async || {
            tokio::net::TcpStream::connect(addr).await.is_err()
        })
        .await,
        "listener still accepting during shutdown"
    );
    // ...while the existing one finishes its transaction.
    let v: i32 = c.query_one("SELECT 7", &[]).await.unwrap().get(0);
    assert_eq!(v, 7);
    c.batch_execute("COMMIT").await.unwrap();
    drop(c);
    tokio::time::timeout(Duration::from_secs(10), shutdown)
        .await
        .expect("shutdown finishes once the client left")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pools_prewarm_grow_on_demand_and_reap_back_to_min() {
    let gatfile = format!(
        "127.0.0.1:0 {{\n    pool /warmdb {{\n        address {addr}\n        username pggat_scram\n        password scram-secret\n        database postgres\n        parameter application_name=warm\n        min_connections 2\n        max_connections 6\n        pool basic session {{\n            idle_timeout 300ms\n        }}\n    }}\n}}\n",
        addr = cluster().address()
    );
    let backends = || {
        cluster()
            .sql(
                "postgres",
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'warm'",
            )
            .unwrap()
            .parse::<usize>()
            .unwrap()
    };
    let g = Pggat::start(&gatfile).await;
    // Pre-warmed before any client arrives.
    assert!(
        eventually(Duration::from_secs(10), async || backends() == 2).await,
        "not pre-warmed to 2"
    );

    // Five concurrent sessions need five servers.
    let mut clients = Vec::new();
    for _ in 0..5 {
        let c = g
            .connect(SCRAM.name, SCRAM.password, "warmdb")
            .await
            .unwrap();
        c.simple_query("SELECT 1").await.unwrap();
        clients.push(c);
    }
    assert_eq!(g.live_servers(), 5);
    drop(clients);

    // Idle for longer than idle_timeout: back down to min, never below.
    assert!(
        eventually(Duration::from_secs(10), async || backends() == 2).await,
        "not reaped back to 2"
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(backends(), 2, "reaped below min_connections");
    g.shutdown().await;
}
