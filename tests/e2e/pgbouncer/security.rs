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
