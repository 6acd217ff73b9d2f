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
    let g = Pggat::start(
        &PoolFile::transaction(cluster(), "tq", SCRAM, 1)
            .pool_line("query_timeout 300ms")
            .text(),
    )
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
    // Quick queries are unaffected, even back to back in one transaction
    // that lasts longer than the limit: it is per statement.
    let c2 = g.connect(SCRAM.name, SCRAM.password, "tq").await.unwrap();
    c2.batch_execute("BEGIN").await.unwrap();
    for _ in 0..10 {
        c2.simple_query("SELECT pg_sleep(0.05)").await.unwrap();
    }
    c2.batch_execute("COMMIT").await.unwrap();
    drop(c2);
    g.shutdown().await;
}

#[tokio::test]
async fn idle_transaction_timeout_ends_the_client_with_25p03_and_rolls_back() {
    let g = Pggat::start(
        &PoolFile::transaction(cluster(), "tidle", SCRAM, 1)
            .pool_line("idle_transaction_timeout 300ms")
            .text(),
    )
    .await;
    let (c, task) = watched_client(&g, "tidle").await;
    // A real table: a temp one would pin the client, and the reset after a
    // pin drops it whether or not the transaction was rolled back.
    c.batch_execute("BEGIN; CREATE TABLE never_committed (x int)")
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
        let file = match mode {
            "session" => PoolFile::session(cluster(), "tcidle", SCRAM, 2),
            _ => PoolFile::transaction(cluster(), "tcidle", SCRAM, 2),
        };
        let gatfile = file.pool_line("client_idle_timeout 300ms").text();
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

#[tokio::test]
async fn client_acquire_timeout_names_the_pool_and_the_setting() {
    let g = Pggat::start(
        &PoolFile::transaction(cluster(), "tacq", SCRAM, 1)
            .pool_line("client_acquire_timeout 300ms")
            .text(),
    )
    .await;
    let holder = g.connect(SCRAM.name, SCRAM.password, "tacq").await.unwrap();
    let waiter = g.connect(SCRAM.name, SCRAM.password, "tacq").await.unwrap();
    holder.batch_execute("BEGIN").await.unwrap();
    let started = Instant::now();
    let err = waiter
        .simple_query("SELECT 1")
        .await
        .expect_err("no server within the limit");
    assert_eq!(sqlstate(&err).as_deref(), Some("53300"), "{err}");
    assert!(
        message(&err).contains("client_acquire_timeout"),
        "{}",
        message(&err)
    );
    assert!(
        message(&err).contains("\"postgres/pggat_scram\""),
        "names the pool: {}",
        message(&err)
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    holder.batch_execute("COMMIT").await.unwrap();
    g.shutdown().await;
}

#[tokio::test]
async fn server_login_timeout_fires_against_a_server_that_never_answers() {
    // A TCP peer that accepts and then says nothing.
    let mute = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mute_addr = mute.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((s, _)) = mute.accept().await {
            conns.push(s);
        }
    });
    let gatfile = format!(
        "127.0.0.1:0 {{\n    pool /mute {{\n        address {mute_addr}\n        username x\n        password \"y\"\n        database x\n        ssl disable\n        server_login_timeout 300ms\n        client_acquire_timeout 1500ms\n    }}\n}}\n"
    );
    let g = Pggat::start(&gatfile).await;
    let started = Instant::now();
    // A mute server is transient as far as pggat knows: dials are retried
    // until the client's acquire timeout, whose error carries the login
    // timeout as the server's last answer (without the timeout firing there
    // would be no last answer, only "raise max_connections").
    let err = match g.connect("x", "y", "mute").await {
        Ok(c) => c.simple_query("SELECT 1").await.expect_err("no server"),
        Err(e) => e,
    };
    assert!(
        message(&err).contains("login timed out after 300ms"),
        "{}",
        message(&err)
    );
    assert_eq!(
        sqlstate(&err).as_deref().map(|s| &s[..2]),
        Some("08"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    g.shutdown().await;
    held.abort();
}

#[tokio::test]
async fn a_reset_query_that_overruns_its_timeout_closes_the_server() {
    let gatfile = PoolFile::session(cluster(), "treset", SCRAM, 1)
        .basic_line("reset_query \"SELECT pg_sleep(5)\"")
        .basic_line("reset_query_timeout 200ms")
        .text();
    let g = Pggat::start(&gatfile).await;
    let first = g
        .connect(SCRAM.name, SCRAM.password, "treset")
        .await
        .unwrap();
    let pid: i32 = backend_pid(&first).await;
    drop(first);
    // The next client gets a fresh server soon after the reset gives up.
    let started = Instant::now();
    let second = g
        .connect(SCRAM.name, SCRAM.password, "treset")
        .await
        .unwrap();
    let next: i32 = backend_pid(&second).await;
    assert_ne!(pid, next, "the server whose reset timed out was reused");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    drop(second);
    g.shutdown().await;
}

#[tokio::test]
async fn server_connect_timeout_fires_when_the_server_never_accepts() {
    // A listener whose accept queue is full: further connection attempts get
    // no answer (Linux drops their SYNs), so connecting hangs.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(
            &"127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
    socket.listen(0).unwrap();
    let addr = socket.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..4 {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        s.set_nonblocking(true).unwrap();
        let _ = s.connect(&addr.into());
        fillers.push(s);
    }
    let gatfile = format!(
        "127.0.0.1:0 {{\n    pool /full {{\n        address {addr}\n        username x\n        password \"y\"\n        database x\n        ssl disable\n        server_connect_timeout 300ms\n        client_acquire_timeout 1500ms\n    }}\n}}\n"
    );
    let g = Pggat::start(&gatfile).await;
    let started = Instant::now();
    // As for the mute server: the acquire timeout's error names the
    // connect timeout as the last answer.
    let err = match g.connect("x", "y", "full").await {
        Ok(c) => c.simple_query("SELECT 1").await.expect_err("no server"),
        Err(e) => e,
    };
    assert!(
        message(&err).contains("connect timed out"),
        "{}",
        message(&err)
    );
    assert_eq!(
        sqlstate(&err).as_deref().map(|s| &s[..2]),
        Some("08"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    g.shutdown().await;
    drop((socket, fillers));
}
