//! PgBouncer's ceilings under pggat: the reserve pool, max_db_connections
//! and max_user_connections across pools, and max_client_conn.

use std::time::{Duration, Instant};

use super::*;

/// A client of `db` that logs in and runs a query in the background.
fn login_and_query(
    ini: &Ini,
    user: &str,
    password: &str,
    db: &str,
) -> tokio::task::JoinHandle<tokio_postgres::Client> {
    let url = ini.url(user, password, db);
    tokio::spawn(async move {
        let c = connect(&url).await.expect("login");
        c.simple_query("SELECT 1").await.expect("query");
        c
    })
}

#[tokio::test]
async fn the_reserve_pool_and_shared_ceilings_hold() {
    let p = cluster().port();
    let ini = Ini::new(
        &format!(
            "reserve_pool_timeout = 0.3\n\
             [users]\n\
             {} = max_user_connections=1\n",
            LOOKUP.name
        ),
        &format!(
            "res = host=127.0.0.1 port={p} dbname=pgb_one pool_size=1 reserve_pool=1\n\
             capped = host=127.0.0.1 port={p} dbname=pgb_two max_db_connections=2\n"
        ),
    );
    let _server = start(&ini).await;
    let admin = ini.connect(SCRAM, "pgbouncer").await.unwrap();

    // Session pooling, pool_size 1: a second client gets the reserve
    // server once it has waited reserve_pool_timeout; a third waits.
    let r1 = ini.connect(MD5, "res").await.unwrap();
    r1.simple_query("SELECT 1").await.unwrap();
    let asked = Instant::now();
    let r2 = tokio::time::timeout(Duration::from_secs(10), ini.connect(MD5, "res"))
        .await
        .expect("the reserve server is handed out")
        .unwrap();
    assert!(
        asked.elapsed() >= Duration::from_millis(300),
        "the reserve is used only after reserve_pool_timeout: {:?}",
        asked.elapsed()
    );
    r2.simple_query("SELECT 2").await.unwrap();
    let r3 = login_and_query(&ini, MD5.name, MD5.password, "res");
    assert!(
        one_waits(&admin, "res", MD5.name).await,
        "a third client waits"
    );
    assert_eq!(pool_count(&admin, "res", MD5.name, "sv_active").await, 2);
    assert!(!r3.is_finished());
    drop(r1);
    let _r3 = tokio::time::timeout(Duration::from_secs(10), r3)
        .await
        .expect("served once a server is free")
        .unwrap();

    // max_db_connections = 2 is shared by the database's pools: two md5
    // clients hold both, the SCRAM user's client waits, then gets the
    // server an md5 client leaves (closed in its pool to make room).
    let a1 = ini.connect(MD5, "capped").await.unwrap();
    let a2 = ini.connect(MD5, "capped").await.unwrap();
    a1.simple_query("SELECT 1").await.unwrap();
    a2.simple_query("SELECT 1").await.unwrap();
    let b1 = login_and_query(&ini, SCRAM.name, SCRAM.password, "capped");
    assert!(
        one_waits(&admin, "capped", SCRAM.name).await,
        "the SCRAM client waits for a slot of max_db_connections"
    );
    let (cols, capped) = show_row(&admin, "SHOW DATABASES", "name", "capped").await;
    assert_eq!(column(&cols, &capped, "max_connections"), "2");
    assert_eq!(column(&cols, &capped, "current_connections"), "2");
    drop(a1);
    let _b1 = tokio::time::timeout(Duration::from_secs(10), b1)
        .await
        .expect("served once an md5 client left")
        .unwrap();
    a2.simple_query("SELECT 1").await.expect("a2 unaffected");

    // max_user_connections = 1 for the auth_query user, across databases:
    // with a session on one, its client of two waits.
    let l1 = ini.connect(LOOKUP, "one").await.unwrap();
    l1.simple_query("SELECT 1").await.unwrap();
    let l2 = login_and_query(&ini, LOOKUP.name, LOOKUP.password, "two");
    assert!(
        one_waits(&admin, "two", LOOKUP.name).await,
        "the second database's client waits for the user's only slot"
    );
    let (cols, lookup) = show_row(&admin, "SHOW USERS", "name", LOOKUP.name).await;
    assert_eq!(column(&cols, &lookup, "max_user_connections"), "1");
    assert_eq!(column(&cols, &lookup, "current_connections"), "1");
    drop(l1);
    tokio::time::timeout(Duration::from_secs(10), l2)
        .await
        .expect("served once the session on one ended")
        .unwrap();
}

#[tokio::test]
async fn max_client_conn_refuses_clients_past_it_but_not_the_console() {
    let ini = Ini::new("max_client_conn = 2", "");
    let _server = start(&ini).await;
    let c1 = ini.connect(MD5, "two").await.unwrap();
    let c2 = ini.connect(MD5, "two").await.unwrap();
    let e = ini
        .connect(MD5, "two")
        .await
        .expect_err("a third client is over max_client_conn");
    assert_eq!(sqlstate(&e).as_deref(), Some("53300"), "{e}");
    assert_eq!(message(&e), "no more connections allowed (max_client_conn)");
    // The console is let in over the ceiling, as PgBouncer does.
    let admin = ini
        .connect(SCRAM, "pgbouncer")
        .await
        .expect("the console is reachable when clients fill every slot");
    let (_, rows) = console(&admin, "SHOW CLIENTS").await.unwrap();
    assert_eq!(rows.len(), 2);
    c2.simple_query("SELECT 1").await.expect("c2 still served");
    drop(admin);
    drop(c1);
    assert!(
        eventually(Duration::from_secs(10), async || ini
            .connect(MD5, "two")
            .await
            .is_ok())
        .await,
        "a slot frees when a client leaves"
    );
}

#[tokio::test]
async fn client_ceilings_per_database_and_per_user() {
    let ini = Ini::new(
        &format!("[users]\n{} = max_user_client_connections=1\n", LOOKUP.name),
        &format!(
            "small = host=127.0.0.1 port={} dbname=pgb_one max_db_client_connections=1",
            cluster().port()
        ),
    );
    let _server = start(&ini).await;
    let refused = async |user: &str, password: &str, db: &str, setting: &str| {
        let e = connect(&ini.url(user, password, db))
            .await
            .expect_err("over the ceiling");
        assert_eq!(sqlstate(&e).as_deref(), Some("53300"), "{e}");
        assert_eq!(
            message(&e),
            format!("client connections exceeded ({setting})")
        );
    };

    // One client of small, whoever logs in.
    let s1 = ini.connect(MD5, "small").await.unwrap();
    s1.simple_query("SELECT 1").await.unwrap();
    refused(MD5.name, MD5.password, "small", "max_db_client_connections").await;
    refused(
        SCRAM.name,
        SCRAM.password,
        "small",
        "max_db_client_connections",
    )
    .await;
    let other = ini
        .connect(MD5, "one")
        .await
        .expect("other databases are not limited");

    // One client of the auth_query user, whichever database.
    let l1 = ini.connect(LOOKUP, "one").await.unwrap();
    refused(
        LOOKUP.name,
        LOOKUP.password,
        "two",
        "max_user_client_connections",
    )
    .await;

    let admin = ini.connect(SCRAM, "pgbouncer").await.unwrap();
    let (cols, small) = show_row(&admin, "SHOW DATABASES", "name", "small").await;
    assert_eq!(column(&cols, &small, "max_client_connections"), "1");
    assert_eq!(column(&cols, &small, "current_client_connections"), "1");
    let (cols, lookup) = show_row(&admin, "SHOW USERS", "name", LOOKUP.name).await;
    assert_eq!(column(&cols, &lookup, "max_user_client_connections"), "1");
    assert_eq!(column(&cols, &lookup, "current_client_connections"), "1");

    // A slot frees when its client leaves.
    drop(s1);
    drop(l1);
    for (user, password, db) in [
        (MD5.name, MD5.password, "small"),
        (LOOKUP.name, LOOKUP.password, "two"),
    ] {
        assert!(
            eventually(Duration::from_secs(10), async || connect(
                &ini.url(user, password, db)
            )
            .await
            .is_ok())
            .await,
            "{user}@{db} once the slot is free"
        );
    }
    other.simple_query("SELECT 1").await.unwrap();
}
