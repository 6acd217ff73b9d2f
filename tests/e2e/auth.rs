//! Authentication towards clients and towards servers, with real clients and
//! a real PostgreSQL holding one role per method.

use crate::harness::*;

/// A block where clients log in as `alice` with `client_secret`, served by a
/// pool that logs in to PostgreSQL as `server`.
fn gatfile(client_secret: &str, server: Role, server_secret: &str, db: &str) -> String {
    gatfile_with(client_secret, "", server, server_secret, db)
}

fn gatfile_with(
    client_secret: &str,
    extra: &str,
    server: Role,
    server_secret: &str,
    db: &str,
) -> String {
    format!(
        "127.0.0.1:0 {{\n    password \"{client_secret}\"\n    {extra}\n    pool /{db} {{\n        address {addr}\n        username {user}\n        password \"{server_secret}\"\n        database postgres\n        max_connections 2\n        pool basic session\n    }}\n}}\n",
        addr = cluster().address(),
        user = server.name,
    )
}

fn md5_of(password: &str, user: &str) -> String {
    format!("{}", auth::Md5Secret::derive(password, user))
}

#[tokio::test]
async fn every_client_method_against_every_server_method() {
    let verifier = auth::ScramSecret::derive("alice-pw", b"0123456789abcdef", 4096).to_string();
    let client_secrets = [
        ("plain (SCRAM)", "alice-pw".to_owned(), "", 10u8),
        ("md5 hash (MD5)", md5_of("alice-pw", "alice"), "", 5),
        ("SCRAM verifier (SCRAM)", verifier.clone(), "", 10),
        (
            "plain, auth_method md5",
            "alice-pw".to_owned(),
            "auth_method md5",
            5,
        ),
        (
            "plain, auth_method cleartext",
            "alice-pw".to_owned(),
            "auth_method cleartext",
            3,
        ),
        (
            "SCRAM verifier, auth_method cleartext",
            verifier,
            "auth_method cleartext",
            3,
        ),
    ];
    for (i, server) in ROLES.into_iter().enumerate() {
        for (j, (label, secret, extra, auth_code)) in client_secrets.iter().enumerate() {
            let db = format!("m{i}{j}");
            let pw = if server.password.is_empty() {
                "none"
            } else {
                server.password
            };
            let g = Pggat::start(&gatfile_with(secret, extra, server, pw, &db)).await;
            // The method pggat asks the client for.
            let (tag, body) = raw_startup(g.addr, "alice", &db).await;
            assert_eq!(tag, b'R');
            assert_eq!(body[3], *auth_code, "{label}: wrong auth request");
            let c = g
                .connect("alice", "alice-pw", &db)
                .await
                .unwrap_or_else(|e| panic!("client {label} → server {}: {e}", server.method));
            let who: String = c
                .query_one("SELECT current_user::text", &[])
                .await
                .unwrap()
                .get(0);
            assert_eq!(
                who, server.name,
                "client {label} → server {}",
                server.method
            );
            drop(c);
            g.shutdown().await;
        }
    }
}

#[tokio::test]
async fn wrong_password_gets_28p01_and_spends_no_server_connection() {
    let g = Pggat::start(&gatfile("right-pw", SCRAM, SCRAM.password, "wrongpw")).await;
    for pw in ["wrong-pw", "", "right-pw "] {
        let e = g
            .connect("alice", pw, "wrongpw")
            .await
            .expect_err("login must fail");
        assert_eq!(sqlstate(&e).as_deref(), Some("28P01"), "{e}");
    }
    assert_eq!(
        g.live_servers(),
        0,
        "a failed login opened a server connection"
    );
    let c = g.connect("alice", "right-pw", "wrongpw").await.unwrap();
    c.simple_query("SELECT 1").await.unwrap();
    assert_eq!(g.live_servers(), 1);
    g.shutdown().await;
}

#[tokio::test]
async fn scram_pass_through_logs_in_with_the_servers_own_verifier() {
    // PgBouncer-style: the pool knows only the verifier PostgreSQL stores;
    // the client's SCRAM proof yields the key pggat logs in with.
    let stored = cluster()
        .sql(
            "postgres",
            "SELECT rolpassword FROM pg_authid WHERE rolname = 'pggat_scram'",
        )
        .unwrap();
    assert!(stored.starts_with("SCRAM-SHA-256$"), "{stored}");
    let g = Pggat::start(&format!(
        "127.0.0.1:0 {{\n    pool /passthru {{\n        address {}\n        username pggat_scram\n        password \"{stored}\"\n        database postgres\n        pool basic session\n    }}\n}}\n",
        cluster().address()
    ))
    .await;
    let c = g
        .connect("pggat_scram", SCRAM.password, "passthru")
        .await
        .unwrap();
    let who: String = c
        .query_one("SELECT current_user::text", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(who, "pggat_scram");
    g.shutdown().await;
}

#[tokio::test]
async fn unknown_database_gets_3d000() {
    let g = Pggat::start(&gatfile("pw", SCRAM, SCRAM.password, "known")).await;
    let e = g.connect("alice", "pw", "unknown").await.err().unwrap();
    assert_eq!(sqlstate(&e).as_deref(), Some("3D000"), "{e}");
    assert!(message(&e).contains("\"unknown\" does not exist"), "{e:?}");
    g.shutdown().await;
}

#[tokio::test]
async fn trust_lets_clients_in_without_a_password() {
    let g = Pggat::start(&format!(
        "127.0.0.1:0 {{\n    trust\n    pool /trusted {{\n        address {}\n        username pggat_trust\n        database postgres\n        pool basic session\n    }}\n}}\n",
        cluster().address()
    ))
    .await;
    let (tag, body) = raw_startup(g.addr, "anyone", "trusted").await;
    assert_eq!(
        (tag, &body[..4]),
        (b'R', &[0, 0, 0, 0][..]),
        "AuthenticationOk straight away"
    );
    let c = g.connect("anyone", "", "trusted").await.unwrap();
    c.simple_query("SELECT 1").await.unwrap();
    g.shutdown().await;
}

#[tokio::test]
async fn no_password_configured_is_refused_not_trusted() {
    let g = Pggat::start(&format!(
        "127.0.0.1:0 {{\n    pool /nopw {{\n        address {}\n        username pggat_trust\n        database postgres\n        pool basic session\n    }}\n}}\n",
        cluster().address()
    ))
    .await;
    let e = g.connect("anyone", "", "nopw").await.err().unwrap();
    assert_eq!(sqlstate(&e).as_deref(), Some("28000"), "{e}");
    g.shutdown().await;
}

#[tokio::test]
async fn server_refusing_our_login_is_reported_to_the_client() {
    let g = Pggat::start(&gatfile("pw", MD5, "not-the-md5-password", "badserver")).await;
    let e = g.connect("alice", "pw", "badserver").await.err().unwrap();
    assert_eq!(sqlstate(&e).as_deref(), Some("28P01"), "{e}");
    assert!(
        message(&e).contains(&cluster().address()),
        "error names the server: {e:?}"
    );
    g.shutdown().await;
}

/// Manual routing as the Gatfile reference describes it: named matchers,
/// `not or`, `error`, per-matcher passwords and rewrites, handlers in file
/// order (matchers see the client as it connected, rewrites change what the
/// pool asks the server for).
#[tokio::test]
async fn manual_routing_with_named_matchers_behaves_as_documented() {
    let c = cluster();
    let gatfile = format!(
        "127.0.0.1:0 {{\n    @bob user bob\n    @alice user alice\n    @strangers not or {{\n        user bob\n        user alice\n    }}\n    error @strangers \"only bob and alice may connect\"\n    password @bob \"bob-secret\"\n    password @alice \"alice-secret\"\n    database @bob strip_prefix app_\n    database @alice postgres\n    pool /app* {{\n        address {addr}\n        username {user}\n        password \"{pw}\"\n    }}\n}}\n",
        addr = c.address(),
        user = SCRAM.name,
        pw = SCRAM.password,
    );
    let g = Pggat::start(&gatfile).await;
    let database = |c: tokio_postgres::Client| async move {
        c.query_one("SELECT current_database()", &[])
            .await
            .unwrap()
            .get::<_, String>(0)
    };

    // bob, with his password, asks for app_postgres and gets postgres.
    let bob = g
        .connect("bob", "bob-secret", "app_postgres")
        .await
        .unwrap();
    assert_eq!(database(bob).await, "postgres");
    // ... not with alice's password.
    let err = g
        .connect("bob", "alice-secret", "app_postgres")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err).as_deref(), Some("28P01"), "{err}");
    // alice asks for app; her rewrite sends the server postgres.
    let alice = g.connect("alice", "alice-secret", "app").await.unwrap();
    assert_eq!(database(alice).await, "postgres");
    // Anyone else is turned away by the error route, whatever the password.
    for (user, pw) in [("carol", "bob-secret"), ("carol", "")] {
        let err = g.connect(user, pw, "app").await.unwrap_err();
        assert_eq!(sqlstate(&err).as_deref(), Some("28000"), "{err}");
        assert!(
            message(&err).contains("only bob and alice may connect"),
            "{user}: {}",
            message(&err)
        );
    }
    g.shutdown().await;
}
