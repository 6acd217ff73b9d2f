//! A server that goes away and comes back.

use std::time::Duration;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_wait_out_an_outage_and_a_timeout_names_the_pool_and_the_server() {
    let pg = Cluster::start(&Options::default()).unwrap();
    let file = PoolFile::session(&pg, "outage", SCRAM, 4)
        .pool_line("client_acquire_timeout 3s")
        .text();
    let g = Pggat::start(&file).await;
    let c = g
        .connect(SCRAM.name, SCRAM.password, "outage")
        .await
        .unwrap();
    c.simple_query("SELECT 1").await.unwrap();
    drop(c);

    // Down for longer than a client waits: the client gets the timeout,
    // with the pool's name and what the server last answered.
    pg.stop().unwrap();
    let asked = std::time::Instant::now();
    let e = g
        .connect(SCRAM.name, SCRAM.password, "outage")
        .await
        .expect_err("server is down");
    let waited = asked.elapsed();
    let msg = message(&e);
    assert!(
        waited >= Duration::from_millis(2900),
        "failed after {waited:?}, before client_acquire_timeout: {msg}"
    );
    let pool = format!("pool \"postgres/{}\"", SCRAM.name);
    assert!(msg.contains(&pool), "the error names the pool: {msg}");
    assert!(
        msg.contains(&pg.address()),
        "the error names the server: {msg}"
    );
    assert_eq!(sqlstate(&e).as_deref(), Some("08006"), "{msg}");

    // Down for less than a client waits: the client that asked during the
    // outage is served once PostgreSQL is back, without an error.
    let waiting = {
        let url = g.url(SCRAM.name, SCRAM.password, "outage");
        tokio::spawn(async move {
            let (c, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
            tokio::spawn(conn);
            c.simple_query("SELECT 1").await.map(|_| ())
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let restarted = std::time::Instant::now();
    pg.restart().unwrap();
    let accepted = restarted.elapsed();
    waiting
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("a client waiting {accepted:?} through the outage failed: {e}"));
    g.shutdown().await;
}

#[tokio::test]
async fn idle_servers_are_health_checked_with_the_check_query() {
    let c = cluster();
    c.sql(
        "postgres",
        "CREATE SEQUENCE IF NOT EXISTS pggat_checks; GRANT USAGE ON SEQUENCE pggat_checks TO pggat_scram;",
    )
    .unwrap();
    let checks = || async {
        let out = c
            .sql("postgres", "SELECT last_value FROM pggat_checks")
            .unwrap();
        out.trim().parse::<i64>().unwrap()
    };
    let pool = |query: &str| {
        PoolFile::transaction(c, "checked", SCRAM, 1)
            .pool_line("server_check_delay 0")
            .pool_line(&format!("server_check_query \"{query}\""))
            .text()
    };

    // Every acquire of a server that served before runs the check.
    let g = Pggat::start(&pool("SELECT nextval('pggat_checks')")).await;
    let client = g
        .connect(SCRAM.name, SCRAM.password, "checked")
        .await
        .unwrap();
    let before = checks().await;
    for _ in 0..5 {
        client.simple_query("SELECT 1").await.unwrap();
    }
    let ran = checks().await - before;
    assert!((4..=6).contains(&ran), "{ran} checks for 5 transactions");
    drop(client);
    g.shutdown().await;

    // A server that fails its check is closed and replaced; clients see no error.
    let g = Pggat::start(&pool("SELECT 1/0")).await;
    let client = g
        .connect(SCRAM.name, SCRAM.password, "checked")
        .await
        .unwrap();
    let mut pids = std::collections::HashSet::new();
    for _ in 0..3 {
        let pid: i32 = backend_pid(&client).await;
        pids.insert(pid);
    }
    assert_eq!(pids.len(), 3, "each failed check replaced the server");
    drop(client);
    g.shutdown().await;
}
