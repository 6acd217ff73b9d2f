//! A server that goes away and comes back.

use std::time::Duration;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_get_a_clear_error_while_postgres_is_down_and_service_resumes() {
    let pg = Cluster::start(&Options::default()).unwrap();
    let g = Pggat::start(&session_pool(&pg, "outage", SCRAM, 4)).await;
    let c = g
        .connect(SCRAM.name, SCRAM.password, "outage")
        .await
        .unwrap();
    c.simple_query("SELECT 1").await.unwrap();
    drop(c);

    pg.stop().unwrap();
    let e = g
        .connect(SCRAM.name, SCRAM.password, "outage")
        .await
        .expect_err("server is down");
    let msg = message(&e);
    assert!(
        msg.contains(&pg.address()),
        "the error names the server: {msg}"
    );
    assert_eq!(sqlstate(&e).as_deref(), Some("08006"), "{msg}");

    pg.restart().unwrap();
    let back = eventually(Duration::from_secs(60), async || {
        match g.connect(SCRAM.name, SCRAM.password, "outage").await {
            Ok(c) => c.simple_query("SELECT 1").await.is_ok(),
            Err(_) => false,
        }
    })
    .await;
    assert!(back, "pggat did not serve again after PostgreSQL came back");
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
