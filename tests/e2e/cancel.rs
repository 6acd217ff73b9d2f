//! Cancel requests reach the right server, and only for the right client.

use std::time::{Duration, Instant};

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_interrupts_only_the_callers_query() {
    let g = Pggat::start(&session_pool(cluster(), "canceldb", SCRAM, 4)).await;
    cancel_only_the_caller(g, "canceldb", 30).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_in_transaction_mode_reaches_the_server_running_the_query() {
    let g = Pggat::start(&transaction_pool(cluster(), "canceltx", SCRAM, 2, "")).await;
    cancel_only_the_caller(g, "canceltx", 31).await;
}

/// Client a runs `pg_sleep(secs)`, b a short query; a's cancel stops a's
/// query only.
async fn cancel_only_the_caller(g: Pggat, db: &str, secs: u32) {
    let a = g.connect(SCRAM.name, SCRAM.password, db).await.unwrap();
    let b = g.connect(SCRAM.name, SCRAM.password, db).await.unwrap();
    let token = a.cancel_token();
    let started = Instant::now();
    let sleep = format!("SELECT pg_sleep({secs})");
    let a_sleep = sleep.clone();
    let a_query = tokio::spawn(async move { a.simple_query(&a_sleep).await });
    let b_query =
        tokio::spawn(async move { b.simple_query("SELECT pg_sleep(1.5), 'b done'").await });
    // Wait until a's query is really running on its server.
    assert!(running(&sleep).await);
    token.cancel_query(tokio_postgres::NoTls).await.unwrap();
    let err = a_query.await.unwrap().expect_err("a's query is canceled");
    assert_eq!(sqlstate(&err).as_deref(), Some("57014"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(20));
    let b_rows = b_query.await.unwrap().expect("b's query is untouched");
    assert!(
        matches!(&b_rows[1], tokio_postgres::SimpleQueryMessage::Row(r) if r.get(1) == Some("b done"))
    );
    g.shutdown().await;
}

#[tokio::test]
async fn a_cancel_after_the_client_left_reaches_nobody() {
    let g = Pggat::start(&session_pool(cluster(), "latecancel", SCRAM, 1)).await;
    let a = g
        .connect(SCRAM.name, SCRAM.password, "latecancel")
        .await
        .unwrap();
    a.simple_query("SELECT 1").await.unwrap();
    let token = a.cancel_token();
    drop(a);
    // The only server now serves b.
    let b = g
        .connect(SCRAM.name, SCRAM.password, "latecancel")
        .await
        .unwrap();
    let b_sleep = "SELECT pg_sleep(1), 'b'";
    let b_query = tokio::spawn(async move { b.simple_query(b_sleep).await });
    // A stale cancel must find b's query running, or it proves nothing.
    assert!(running(b_sleep).await);
    token.cancel_query(tokio_postgres::NoTls).await.unwrap();
    let rows = b_query
        .await
        .unwrap()
        .expect("a stale key must not cancel b");
    assert!(
        rows.iter().any(
            |m| matches!(m, tokio_postgres::SimpleQueryMessage::Row(r) if r.get(1) == Some("b"))
        )
    );
    g.shutdown().await;
}

/// Waits until `query` is running on the shared cluster.
async fn running(query: &str) -> bool {
    let sql = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE query = '{}' AND state = 'active'",
        query.replace('\'', "''")
    );
    eventually(Duration::from_secs(10), async || {
        cluster().sql("postgres", &sql).unwrap() == "1"
    })
    .await
}
