//! Pool timeouts fire with PostgreSQL's own SQLSTATEs, and leave the pool
//! serving: query_timeout (57014), idle_transaction_timeout (25P03),
//! client_idle_timeout (57P05). Short limits; the tests wait for the
//! connection to end, not for fixed times.

use std::time::{Duration, Instant};

use crate::harness::*;

/// Connects and keeps the connection task's result: a FATAL error the
/// server (here, pggat) sends unasked ends it with that error.
async fn watched_client(
    g: &Pggat,
    db: &str,
) -> (
    tokio_postgres::Client,
    tokio::task::JoinHandle<Result<(), tokio_postgres::Error>>,
) {
    let (client, conn) = tokio_postgres::connect(
        &g.url(SCRAM.name, SCRAM.password, db),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    (client, tokio::spawn(conn))
}

async fn ended_with(
    task: tokio::task::JoinHandle<Result<(), tokio_postgres::Error>>,
) -> tokio_postgres::Error {
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the connection did not end")
        .unwrap()
        .expect_err("the connection ended without an error")
}

#[tokio::test]
async fn query_timeout_cancels_with_57014_and_the_pool_goes_on() {
    let g = Pggat::start(&transaction_pool(cluster(), "tq", SCRAM, 1, "").replace(
        "max_connections 1\n",
        "max_connections 1\n        query_timeout 300ms\n",
    ))
    .await;
    let (c, _task) = watched_client(&g, "tq").await;
    let started = Instant::now();
    let err = c
        .simple_query("SELECT pg_sleep(3)")
        .await
        .expect_err("the query must be cut off");
    assert_eq!(sqlstate(&err).as_deref(), Some("57014"), "{err}");
    assert!(message(&err).contains("query_timeout"), "{}", message(&err));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // Quick queries are unaffected, and the pool serves the next client.
    let c2 = g.connect(SCRAM.name, SCRAM.password, "tq").await.unwrap();
    for _ in 0..3 {
        c2.simple_query("SELECT pg_sleep(0.05)").await.unwrap();
    }
    drop(c2);
    g.shutdown().await;
}

#[tokio::test]
async fn idle_transaction_timeout_ends_the_client_with_25p03_and_rolls_back() {
    let g = Pggat::start(&transaction_pool(cluster(), "tidle", SCRAM, 1, "").replace(
        "max_connections 1\n",
        "max_connections 1\n        idle_transaction_timeout 300ms\n",
    ))
    .await;
    let (c, task) = watched_client(&g, "tidle").await;
    c.batch_execute("BEGIN; CREATE TEMP TABLE never_committed (x int)")
        .await
        .unwrap();
    // Sent nothing since: the connection ends with 25P03.
    let err = ended_with(task).await;
    assert_eq!(sqlstate(&err).as_deref(), Some("25P03"), "{err}");
    // The one server was rolled back and serves the next client.
    let c2 = g
        .connect(SCRAM.name, SCRAM.password, "tidle")
        .await
        .unwrap();
    let rows = c2
        .query(
            "SELECT 1 FROM pg_tables WHERE tablename = 'never_committed'",
            &[],
        )
        .await
        .unwrap();
    assert!(rows.is_empty());
    // Busy transactions are not idle ones.
    c2.batch_execute("BEGIN").await.unwrap();
    for _ in 0..4 {
        c2.simple_query("SELECT pg_sleep(0.1)").await.unwrap();
    }
    c2.batch_execute("COMMIT").await.unwrap();
    drop(c2);
    g.shutdown().await;
}

#[tokio::test]
async fn client_idle_timeout_ends_idle_clients_with_57p05_in_both_modes() {
    for mode in ["transaction", "session"] {
        let gatfile = transaction_pool(cluster(), "tcidle", SCRAM, 2, "")
            .replace(
                "max_connections 2\n",
                "max_connections 2\n        client_idle_timeout 300ms\n",
            )
            .replace("pool basic transaction", &format!("pool basic {mode}"));
        let g = Pggat::start(&gatfile).await;
        let (c, task) = watched_client(&g, "tcidle").await;
        // Active clients stay.
        for _ in 0..4 {
            c.simple_query("SELECT 1").await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let err = ended_with(task).await;
        assert_eq!(sqlstate(&err).as_deref(), Some("57P05"), "{mode}: {err}");
        assert!(
            message(&err).contains("client_idle_timeout"),
            "{}",
            message(&err)
        );
        let c2 = g
            .connect(SCRAM.name, SCRAM.password, "tcidle")
            .await
            .unwrap();
        c2.simple_query("SELECT 1").await.unwrap();
        drop((c, c2));
        g.shutdown().await;
    }
}
