//! The pool settings of a pgbouncer.ini, each seen doing what PgBouncer's
//! documentation says: unix_socket_dir, server_reset_query,
//! track_extra_parameters, query_timeout, query_wait_timeout,
//! idle_transaction_timeout, client_idle_timeout, server_lifetime and
//! server_idle_timeout.

use std::time::{Duration, Instant};

use super::*;

#[tokio::test]
async fn socket_reset_tracking_and_query_timeouts() {
    let sockets = tempfile::tempdir().unwrap();
    let ini = Ini::new(
        &format!(
            "unix_socket_dir = {}\n\
             query_timeout = 1\n\
             query_wait_timeout = 1\n\
             idle_transaction_timeout = 1\n\
             track_extra_parameters = search_path\n",
            sockets.path().display()
        ),
        &format!(
            "single = host=127.0.0.1 port={} dbname=pgb_one pool_size=1",
            cluster().port()
        ),
    );
    let _server = start(&ini).await;

    // unix_socket_dir: clients reach pggat through .s.PGSQL.<port> there.
    let local = connect(&format!(
        "host={} port={} user={} password='{}' dbname=one",
        sockets.path().display(),
        ini.port,
        MD5.name,
        MD5.password
    ))
    .await
    .expect("a client over the unix socket");
    local.simple_query("SELECT 1").await.unwrap();
    let admin = ini.connect(SCRAM, "pgbouncer").await.unwrap();
    let (cols, rows) = console(&admin, "SHOW CLIENTS").await.unwrap();
    assert!(
        rows.iter()
            .any(|r| column(&cols, r, "database") == "one" && column(&cols, r, "addr") == "unix"),
        "SHOW CLIENTS lists the unix client"
    );
    drop(local);

    // server_reset_query (DISCARD ALL by default): the next session on the
    // same server starts clean.
    let first = ini.connect(MD5, "single").await.unwrap();
    first.simple_query("SET work_mem = '7MB'").await.unwrap();
    let pid: i32 = backend_pid(&first).await;
    drop(first);
    let second = ini.connect(MD5, "single").await.unwrap();
    let row = second
        .query_one("SELECT pg_backend_pid(), current_setting('work_mem')", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), pid, "the pool's only server");
    assert_eq!(row.get::<_, String>(1), "4MB", "reset after the session");

    // query_wait_timeout: with that server held, another client gives up.
    let asked = Instant::now();
    let e = ini
        .connect(MD5, "single")
        .await
        .expect_err("no server within query_wait_timeout");
    assert!(asked.elapsed() >= Duration::from_secs(1), "{e}");
    assert!(message(&e).contains("timeout"), "{}", message(&e));
    drop(second);

    // track_extra_parameters: search_path is let in as a startup parameter.
    let tracked = connect(&format!(
        "{} options='-c search_path=pg_catalog'",
        ini.url(MD5.name, MD5.password, "two")
    ))
    .await
    .expect("a tracked startup parameter");
    let path: String = tracked
        .query_one("SELECT current_setting('search_path')", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(path, "pg_catalog");

    // query_timeout: a query running longer is cancelled.
    let asked = Instant::now();
    let e = tracked
        .simple_query("SELECT pg_sleep(30)")
        .await
        .expect_err("query_timeout");
    assert!(asked.elapsed() < Duration::from_secs(20), "{e}");
    assert_eq!(sqlstate(&e).as_deref(), Some("57014"), "{e}");

    // idle_transaction_timeout: a transaction left idle is ended, and the
    // client with it.
    let idle = ini.connect(MD5, "two").await.unwrap();
    idle.simple_query("BEGIN").await.unwrap();
    let began = Instant::now();
    assert!(
        eventually(Duration::from_secs(10), async || idle.is_closed()).await,
        "idle_transaction_timeout"
    );
    assert!(began.elapsed() >= Duration::from_secs(1));
}

#[tokio::test]
async fn idle_clients_and_old_or_idle_servers_are_closed() {
    let ini = Ini::new(
        "client_idle_timeout = 1\nserver_idle_timeout = 1\n",
        &format!(
            "life = host=127.0.0.1 port={} dbname=pgb_one pool_mode=transaction server_lifetime=1",
            cluster().port()
        ),
    );
    let _server = start(&ini).await;

    // server_lifetime = 1 on one database: a busy client sees its server
    // replaced.
    let busy = ini.connect(MD5, "life").await.unwrap();
    let pid = async || -> i32 { backend_pid(&busy).await };
    let first = pid().await;
    assert!(
        eventually(Duration::from_secs(10), async || pid().await != first).await,
        "the server outlived server_lifetime"
    );

    // client_idle_timeout: a client that sends nothing for a second is
    // disconnected; server_idle_timeout: the server it left idle is closed.
    let admin = ini.connect(SCRAM, "pgbouncer").await.unwrap();
    let quiet = ini.connect(MD5, "two").await.unwrap();
    quiet.simple_query("SELECT 1").await.unwrap();
    let ran = Instant::now();
    assert_eq!(pool_count(&admin, "two", MD5.name, "sv_idle").await, 1);
    assert!(
        eventually(Duration::from_secs(10), async || quiet.is_closed()).await,
        "client_idle_timeout"
    );
    assert!(ran.elapsed() >= Duration::from_secs(1));
    assert!(
        eventually(Duration::from_secs(10), async || {
            pool_count(&admin, "two", MD5.name, "sv_idle").await == 0
        })
        .await,
        "server_idle_timeout"
    );
    assert!(
        eventually(Duration::from_secs(10), async || busy.is_closed()).await,
        "the busy client went quiet too"
    );
}

/// `connect_query` runs on every new server connection before a client gets
/// it; one that fails is logged and the server is used anyway, as PgBouncer
/// does. Statement pooling from the ini refuses a transaction block.
#[tokio::test]
async fn connect_query_and_statement_pooling() {
    let p = cluster().port();
    let ini = Ini::new(
        "",
        &format!(
            "planned = host=127.0.0.1 port={p} dbname=pgb_one pool_mode=transaction \
                 connect_query='SET enable_seqscan = off; SET enable_nestloop = off'\n\
             broken = host=127.0.0.1 port={p} dbname=pgb_one connect_query='SELEC 1'\n\
             stmt = host=127.0.0.1 port={p} dbname=pgb_one pool_mode=statement"
        ),
    );
    let _server = start(&ini).await;
    let c = ini.connect(MD5, "planned").await.expect("a client");
    for setting in ["enable_seqscan", "enable_nestloop"] {
        let v: String = c
            .query_one(&format!("SHOW {setting}"), &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(v, "off", "{setting}");
    }
    let broken = ini.connect(MD5, "broken").await.expect("a client");
    broken
        .simple_query("SELECT 1")
        .await
        .expect("served anyway");

    let s = ini.connect(MD5, "stmt").await.expect("a client");
    s.simple_query("SELECT 1").await.unwrap();
    let e = s
        .batch_execute("BEGIN")
        .await
        .expect_err("statement pooling");
    assert!(
        message(&e).contains("transaction blocks not allowed in statement pooling mode"),
        "{e}"
    );
}
