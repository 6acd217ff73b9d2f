//! The admin HTTP endpoint: liveness, readiness (which turns 503 as soon as
//! shutdown begins), and 404 for anything else.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::*;

/// One HTTP/1.1 GET; returns the status code and the body.
async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: pggat\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.unwrap();
    let status = raw
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {raw:?}"));
    let body = raw.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
    (status, body)
}

#[tokio::test]
async fn healthz_and_readyz_answer_and_readyz_turns_unavailable_on_shutdown() {
    let gatfile = format!(
        "{{\n    admin 127.0.0.1:0\n    shutdown_timeout 2s\n}}\n{}",
        session_pool(cluster(), "adm", SCRAM, 2)
    );
    let g = Pggat::start(&gatfile).await;
    let admin = g.running().admin_addr().expect("the admin endpoint");
    assert_eq!(get(admin, "/healthz").await, (200, "ok\n".into()));
    assert_eq!(get(admin, "/readyz").await, (200, "ready\n".into()));
    assert_eq!(get(admin, "/metricz").await.0, 404);

    // A connected client keeps the shutdown waiting; meanwhile readiness
    // is withdrawn and liveness holds.
    let c = g.connect(SCRAM.name, SCRAM.password, "adm").await.unwrap();
    c.simple_query("SELECT 1").await.unwrap();
    let shutdown = tokio::spawn(g.shutdown());
    assert!(
        eventually(Duration::from_secs(2), async || get(admin, "/readyz")
            .await
            .0
            == 503)
        .await,
        "/readyz still ready during shutdown"
    );
    assert_eq!(get(admin, "/healthz").await.0, 200);
    drop(c);
    shutdown.await.unwrap();
    // Gone with the process's shutdown.
    assert!(tokio::net::TcpStream::connect(admin).await.is_err());
}
