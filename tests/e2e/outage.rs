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
