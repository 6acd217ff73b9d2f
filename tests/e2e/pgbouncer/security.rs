//! Who gets in, and how, under a pgbouncer.ini: `auth_type = hba` with an
//! `auth_hba_file`, and TLS towards clients and servers from the
//! `client_tls_*` and `server_tls_*` settings.

use std::net::SocketAddr;

use super::*;
use crate::tls::{pki, tls_only_cluster, write};

/// The first message pggat answers a startup with: the authentication
/// request's code, or `None` for an ErrorResponse (with its message).
async fn first_reply(addr: SocketAddr, user: &str, db: &str) -> Result<i32, String> {
    let (tag, body) = raw_startup(addr, user, db).await;
    match tag {
        b'R' => Ok(i32::from_be_bytes(body[..4].try_into().unwrap())),
        b'E' => Err(String::from_utf8_lossy(&body).into_owned()),
        other => panic!("unexpected reply {}", other as char),
    }
}

const AUTH_OK: i32 = 0;
const CLEARTEXT: i32 = 3;
const SASL: i32 = 10;

#[tokio::test]
async fn auth_type_hba_picks_the_method_by_the_first_matching_line() {
    let ini = Ini::new("", "");
    let hba = ini.dir.path().join("hba.conf");
    ini.write(
        &format!("auth_type = hba\nauth_hba_file = {}", hba.display()),
        "",
    );
    std::fs::write(
        &hba,
        format!(
            "# PgBouncer's subset of pg_hba.conf\n\
             host    one  {md5}    127.0.0.1/32  trust\n\
             host    two  {md5}    127.0.0.1/32  password\n\
             host    one  {lookup} 127.0.0.1/32  reject\n\
             hostssl all  all      127.0.0.1/32  md5\n\
             host    all  all      127.0.0.1/32  scram-sha-256\n",
            md5 = MD5.name,
            lookup = LOOKUP.name,
        ),
    )
    .unwrap();
    let _server = start(&ini).await;
    let addr: SocketAddr = format!("127.0.0.1:{}", ini.port).parse().unwrap();

    assert_eq!(first_reply(addr, MD5.name, "one").await, Ok(AUTH_OK));
    assert_eq!(first_reply(addr, MD5.name, "two").await, Ok(CLEARTEXT));
    // The hostssl line is skipped by a plain client: the last line decides.
    assert_eq!(first_reply(addr, SCRAM.name, "one").await, Ok(SASL));
    assert_eq!(first_reply(addr, LOOKUP.name, "two").await, Ok(SASL));
    let rejected = first_reply(addr, LOOKUP.name, "one").await.unwrap_err();
    assert!(rejected.contains("login rejected"), "{rejected}");

    // Real logins by those methods.
    let trusted = connect(&ini.url(MD5.name, "not-checked", "one"))
        .await
        .expect("trust");
    trusted.simple_query("SELECT 1").await.unwrap();
    let plain = ini
        .connect(MD5, "two")
        .await
        .expect("password (cleartext) against the md5 secret");
    plain.simple_query("SELECT 1").await.unwrap();
    let e = connect(&ini.url(MD5.name, "wrong", "two"))
        .await
        .expect_err("a wrong cleartext password");
    assert_eq!(sqlstate(&e).as_deref(), Some("28P01"), "{e}");
    let scram = ini.connect(SCRAM, "one").await.expect("scram-sha-256");
    scram.simple_query("SELECT 1").await.unwrap();
    let e = ini.connect(LOOKUP, "one").await.expect_err("reject");
    assert!(message(&e).contains("login rejected"), "{}", message(&e));
}

#[tokio::test]
async fn tls_settings_of_the_ini_encrypt_both_sides() {
    let dir = tempfile::tempdir().unwrap();
    let pg = pki("postgres");
    let ours = pki("pggat");
    let tls_cluster = tls_only_cluster(&pg).await;
    let port = pggat::cluster::free_port().unwrap();
    let path = dir.path().join("pgbouncer.ini");
    std::fs::write(
        dir.path().join("userlist.txt"),
        format!("\"{}\" \"{}\"\n", SCRAM.name, SCRAM.password),
    )
    .unwrap();
    std::fs::write(
        &path,
        format!(
            "[databases]\n\
             secure = host=127.0.0.1 port={pg_port} dbname=postgres\n\
             [pgbouncer]\n\
             listen_addr = 127.0.0.1\n\
             listen_port = {port}\n\
             unix_socket_dir =\n\
             auth_type = scram-sha-256\n\
             auth_file = {users}\n\
             pool_mode = transaction\n\
             client_tls_sslmode = require\n\
             client_tls_cert_file = {cert}\n\
             client_tls_key_file = {key}\n\
             server_tls_sslmode = verify-full\n\
             server_tls_ca_file = {server_ca}\n",
            pg_port = tls_cluster.port(),
            users = dir.path().join("userlist.txt").display(),
            cert = write(dir.path(), "pggat.crt", &ours.cert),
            key = write(dir.path(), "pggat.key", &ours.key),
            server_ca = write(dir.path(), "pg-ca.crt", &pg.ca),
        ),
    )
    .unwrap();
    let client_ca = write(dir.path(), "pggat-ca.crt", &ours.ca);
    let source = pggat::reload::Source::Pgbouncer(path);
    let running = pggat::app::start(&source.load().expect("ini loads"))
        .await
        .expect("start");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();

    // The client verifies pggat's certificate; the server sees TLS from
    // pggat, which verified the server's.
    let out = psql(
        addr,
        SCRAM.name,
        SCRAM.password,
        &format!("dbname=secure sslmode=verify-full sslrootcert={client_ca} connect_timeout=10"),
        &[
            "-c",
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        ],
        None,
    )
    .await;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    assert_eq!(said.trim(), "t", "the server connection is encrypted");

    // client_tls_sslmode = require refuses a plain client.
    let e = connect(&format!(
        "host=127.0.0.1 port={port} user={} password='{}' dbname=secure connect_timeout=10",
        SCRAM.name, SCRAM.password
    ))
    .await
    .expect_err("a plain client");
    assert_eq!(sqlstate(&e).as_deref(), Some("28000"), "{e}");
    assert!(message(&e).contains("SSL required"), "{}", message(&e));
    running.shutdown().await;
}

/// The console refuses a user in neither admin_users nor stats_users only
/// once it has proved its password, so a stranger learns nothing of who is
/// listed; a stats user may look but not act (CVE-2025-6667's class).
#[tokio::test]
async fn the_console_is_for_listed_users_and_stats_users_change_nothing() {
    let ini = Ini::new("", "");
    // An auth_file user in neither list.
    let userlist = ini.dir.path().join("userlist.txt");
    let mut users = std::fs::read_to_string(&userlist).unwrap();
    users.push_str("\"pgb_plain\" \"plain-secret\"\n");
    std::fs::write(&userlist, users).unwrap();
    let _server = start(&ini).await;

    for (user, password, code) in [
        ("pgb_nobody", "anything", "28P01"),
        ("pgb_plain", "wrong", "28P01"),
        ("pgb_plain", "plain-secret", "42501"),
    ] {
        let e = connect(&ini.url(user, password, "pgbouncer"))
            .await
            .err()
            .unwrap_or_else(|| panic!("{user} reached the console"));
        assert_eq!(sqlstate(&e).as_deref(), Some(code), "{user}: {e}");
    }

    let stats = ini.connect(MD5, "pgbouncer").await.expect("stats user");
    for command in [
        "PAUSE",
        "PAUSE one",
        "RESUME",
        "SUSPEND",
        "KILL one",
        "KILL_CLIENT 1",
        "RECONNECT",
        "WAIT_CLOSE",
        "DISABLE one",
        "ENABLE one",
        "RELOAD",
        "SHUTDOWN",
        "SET default_pool_size = 3",
    ] {
        let e = stats.simple_query(command).await.expect_err(command);
        assert_eq!(message(&e), "admin access needed", "{command}");
    }
    // Nothing changed: the setting stands, the pool serves.
    let (cols, rows) = console(&stats, "SHOW CONFIG").await.unwrap();
    let size = rows
        .iter()
        .find(|r| column(&cols, r, "key") == "default_pool_size")
        .map(|r| column(&cols, r, "value").to_owned());
    assert_eq!(size.as_deref(), Some("2"));
    let c = ini.connect(MD5, "one").await.expect("still serving");
    c.simple_query("SELECT 1").await.unwrap();
}

/// auth_query runs with a fixed search_path, so a database default that
/// puts a schema of its own first cannot shadow what the query calls
/// (CVE-2025-12819's class: here an `evil.now()` that would make an expired
/// role valid), and an expired role is refused (CVE-2025-2291's class)
/// until its VALID UNTIL moves.
#[tokio::test]
async fn auth_query_keeps_its_search_path_and_refuses_expired_roles() {
    let c = cluster();
    setup();
    c.sql("postgres", "CREATE DATABASE pgb_sp").unwrap();
    c.sql(
        "postgres",
        "SET password_encryption = 'scram-sha-256'; \
         CREATE ROLE pgb_expired LOGIN PASSWORD 'expired-secret' VALID UNTIL '2000-01-01'",
    )
    .unwrap();
    c.sql(
        "pgb_sp",
        "CREATE SCHEMA evil; \
         CREATE FUNCTION evil.now() RETURNS timestamptz LANGUAGE sql \
             AS 'SELECT ''1990-01-01''::timestamptz'; \
         ALTER DATABASE pgb_sp SET search_path = evil, pg_catalog",
    )
    .unwrap();
    let ini = Ini::new(
        "",
        &format!("sp = host=127.0.0.1 port={} dbname=pgb_sp", c.port()),
    );
    let _server = start(&ini).await;
    let url = ini.url("pgb_expired", "expired-secret", "sp");

    let e = connect(&url).await.expect_err("an expired role got in");
    assert_eq!(sqlstate(&e).as_deref(), Some("28P01"), "{e}");

    c.sql("postgres", "ALTER ROLE pgb_expired VALID UNTIL 'infinity'")
        .unwrap();
    let client = connect(&url).await.expect("valid again");
    // Only the lookup's search_path is fixed: the client's session has the
    // database's.
    let path: String = client
        .query_one("SHOW search_path", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(path, "evil, pg_catalog");
}

/// PgBouncer's peer login to the console: user `pgbouncer` over the unix
/// socket, from a process of the OS user running pggat (this test's), gets
/// in as an admin without a password; over TCP, or as another user, it
/// takes a password as always.
#[tokio::test]
async fn user_pgbouncer_over_the_unix_socket_is_an_admin_by_peer_credentials() {
    let ini = Ini::new("", "");
    let sockets = tempfile::tempdir().unwrap();
    ini.write(
        &format!("unix_socket_dir = {}", sockets.path().display()),
        "",
    );
    let _server = start(&ini).await;
    let unix = |user: &str| {
        format!(
            "host={} port={} user={user} dbname=pgbouncer connect_timeout=10",
            sockets.path().display(),
            ini.port
        )
    };
    let admin = connect(&unix("pgbouncer")).await.expect("peer login");
    admin.simple_query("PAUSE one").await.expect("an admin");
    admin.simple_query("RESUME one").await.unwrap();
    let e = connect(&format!("{} password=wrong", unix(MD5.name)))
        .await
        .expect_err("others need their password");
    assert_eq!(sqlstate(&e).as_deref(), Some("28P01"), "{e}");
    let e = connect(&ini.url("pgbouncer", "guess", "pgbouncer"))
        .await
        .expect_err("over TCP there are no peer credentials");
    assert_eq!(sqlstate(&e).as_deref(), Some("28P01"), "{e}");
}
