//! TLS on both sides: psql reaching pggat with sslmode=require and
//! verify-full, `require_ssl` refusing plain clients, and pggat reaching a
//! PostgreSQL that accepts TLS only, with its certificate verified.

use std::path::Path;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

use crate::harness::*;

/// A CA and a certificate it signed for localhost and 127.0.0.1, as PEM.
pub(crate) struct Pki {
    pub ca: String,
    pub cert: String,
    pub key: String,
}

pub(crate) fn pki(name: &str) -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("{name} test CA"));
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    Pki {
        ca: ca.pem(),
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}

pub(crate) fn write(dir: &Path, name: &str, content: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path.display().to_string()
}

/// A cluster of its own serving `pg`'s certificate, that lets the SCRAM
/// role in over TLS only.
pub(crate) async fn tls_only_cluster(pg: &Pki) -> Cluster {
    let opts = Options {
        conf: vec![
            "ssl = on".into(),
            "ssl_cert_file = 'server.crt'".into(),
            "ssl_key_file = 'server.key'".into(),
        ],
        hba: vec![
            format!("hostnossl all {} 127.0.0.1/32 reject", SCRAM.name),
            format!("hostssl all {} 127.0.0.1/32 scram-sha-256", SCRAM.name),
        ],
        files: vec![
            ("server.crt".into(), pg.cert.clone()),
            ("server.key".into(), pg.key.clone()),
        ],
    };
    tokio::task::spawn_blocking(move || Cluster::start(&opts).unwrap())
        .await
        .unwrap()
}

/// psql with a conninfo string (so sslmode and friends can be given).
async fn psql_conninfo(g: &Pggat, conninfo: &str, sql: &str) -> std::process::Output {
    let conninfo = format!("{conninfo} connect_timeout=10");
    psql(
        g.addr,
        SCRAM.name,
        SCRAM.password,
        &conninfo,
        &["-c", sql],
        None,
    )
    .await
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test]
async fn clients_reach_pggat_over_tls_and_verify_its_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ours = pki("pggat");
    let other = pki("another");
    let cert = write(dir.path(), "server.crt", &ours.cert);
    let key = write(dir.path(), "server.key", &ours.key);
    let ca = write(dir.path(), "ca.crt", &ours.ca);
    let wrong_ca = write(dir.path(), "other-ca.crt", &other.ca);

    let with_cert = PoolFile::session(cluster(), "tlsdb", SCRAM, 2)
        .server_line(&format!("ssl x509_key_pair {cert} {key}"))
        .text();
    let g = Pggat::start(&with_cert).await;

    // sslmode=require: encrypted, certificate not checked.
    let out = psql_conninfo(&g, "dbname=tlsdb sslmode=require", "\\conninfo").await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("SSL connection"), "{}", text(&out));

    // verify-full against the CA that signed it, by IP and by name.
    for host in ["127.0.0.1", "localhost"] {
        let out = psql_conninfo(
            &g,
            &format!("dbname=tlsdb host={host} sslmode=verify-full sslrootcert={ca}"),
            "SELECT 'verified'",
        )
        .await;
        assert!(out.status.success(), "{host}: {}", text(&out));
        assert!(text(&out).contains("verified"), "{}", text(&out));
    }
    // ... and refused against another CA.
    let out = psql_conninfo(
        &g,
        &format!("dbname=tlsdb sslmode=verify-full sslrootcert={wrong_ca}"),
        "SELECT 1",
    )
    .await;
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("certificate verify failed"),
        "{}",
        text(&out)
    );

    // A plain client is still served: this listener does not require TLS.
    let c = g
        .connect(SCRAM.name, SCRAM.password, "tlsdb")
        .await
        .unwrap();
    let one: i32 = c.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
    drop(c);
    g.shutdown().await;
}

#[tokio::test]
async fn require_ssl_refuses_plain_clients_and_the_ssl_matcher_sees_tls() {
    let c = cluster();
    let block = |routes: &str| {
        format!(
            "127.0.0.1:0 {{\n    ssl self_signed\n{routes}    pool /secure {{\n        address {addr}\n        username {user}\n        password \"{pw}\"\n        database postgres\n        pool basic session\n    }}\n}}\n",
            addr = c.address(),
            user = SCRAM.name,
            pw = SCRAM.password,
        )
    };

    // require_ssl: a plain client is refused before authentication, 28000.
    let g = Pggat::start(&block("    require_ssl\n")).await;
    let err = g
        .connect(SCRAM.name, SCRAM.password, "secure")
        .await
        .expect_err("a plain client must be refused");
    assert_eq!(sqlstate(&err).as_deref(), Some("28000"), "{err}");
    assert!(message(&err).contains("SSL required"), "{}", message(&err));
    // TLS (with the certificate generated at start): served.
    let out = psql_conninfo(&g, "dbname=secure sslmode=require", "SELECT 'over tls'").await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("over tls"), "{}", text(&out));
    g.shutdown().await;

    // The ssl matcher sees whether the client negotiated TLS.
    let g = Pggat::start(&block(
        "    @plain not ssl\n    error @plain \"plain connections are not served here\"\n",
    ))
    .await;
    let out = psql_conninfo(&g, "dbname=secure sslmode=disable", "SELECT 1").await;
    assert!(!out.status.success());
    assert!(
        text(&out).contains("plain connections are not served here"),
        "{}",
        text(&out)
    );
    let out = psql_conninfo(&g, "dbname=secure sslmode=require", "SELECT 'over tls'").await;
    assert!(out.status.success(), "{}", text(&out));
    g.shutdown().await;
}

#[tokio::test]
async fn pggat_verifies_a_postgres_that_accepts_only_tls() {
    let dir = tempfile::tempdir().unwrap();
    let pg = pki("postgres");
    let other = pki("another");
    let ca = write(dir.path(), "ca.crt", &pg.ca);
    let wrong_ca = write(dir.path(), "other-ca.crt", &other.ca);
    let tls_cluster = tls_only_cluster(&pg).await;
    let pool = |db: &str, ssl: &str| {
        format!(
            "    pool /{db} {{\n        address {addr}\n        username {user}\n        password \"{pw}\"\n        database postgres\n        {ssl}\n        pool basic transaction\n    }}\n",
            addr = tls_cluster.address(),
            user = SCRAM.name,
            pw = SCRAM.password,
        )
    };
    let pools = [
        pool(
            "full",
            &format!("ssl verify-full\n        ssl_root_cert {ca}"),
        ),
        pool("ca", &format!("ssl verify-ca\n        ssl_root_cert {ca}")),
        pool("prefer", "ssl prefer"),
        pool("plain", "ssl disable"),
        pool(
            "wrongca",
            &format!("ssl verify-full\n        ssl_root_cert {wrong_ca}"),
        ),
    ]
    .concat();
    let g = Pggat::start(&format!("127.0.0.1:0 {{\n{pools}}}\n")).await;

    for db in ["full", "ca", "prefer"] {
        let c = g.connect(SCRAM.name, SCRAM.password, db).await.unwrap();
        let ssl: bool = c
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await
            .unwrap_or_else(|e| panic!("{db}: {e}"))
            .get(0);
        assert!(ssl, "{db}: the server connection is not encrypted");
    }

    // Plain is refused by the server's pg_hba; a certificate from an
    // unknown CA is refused by pggat. Both reach the client as errors.
    for (db, expect) in [
        ("plain", "rejects connection"),
        ("wrongca", "UnknownIssuer"),
    ] {
        let err = match g.connect(SCRAM.name, SCRAM.password, db).await {
            Ok(c) => c.query_one("SELECT 1", &[]).await.expect_err(db),
            Err(e) => e,
        };
        assert!(message(&err).contains(expect), "{db}: {}", message(&err));
    }
    g.shutdown().await;
}
