//! Drivers that prepare statements by default, unchanged, against a
//! transaction pool with fewer servers than connections. The checks are
//! scripts in `tests/drivers/` (installed by `tests/drivers/setup.sh`, which
//! `.ci/run` runs); each exits non-zero on any wrong result.

use std::path::PathBuf;
use std::process::Command;

use crate::harness::*;

fn drivers_dir() -> PathBuf {
    std::env::var_os("DRIVERS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/pggat-drivers")
        })
}

async fn check(program: PathBuf, script: &str, db: &str) {
    let g = Pggat::start(&transaction_pool(cluster(), db, SCRAM, 4, "")).await;
    assert!(
        program.components().count() == 1 || program.exists(),
        "{} is missing: run tests/drivers/setup.sh (.ci/run does)",
        program.display()
    );
    let dsn = format!(
        "postgres://{}:{}@{}/{db}",
        SCRAM.name, SCRAM.password, g.addr
    );
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/drivers")
        .join(script);
    let out = tokio::task::spawn_blocking(move || {
        Command::new(program)
            .arg(script)
            .env("PGGAT_DSN", dsn)
            .env("DRIVERS_DIR", drivers_dir())
            .env(
                "CHECK_CONNS",
                std::env::var("CHECK_CONNS").unwrap_or("12".into()),
            )
            .env("CHECK_ITERS", "40")
            .env("CHECK_TIMEOUT", "120")
            .output()
            .expect("run driver check")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("OK"));
    g.shutdown().await;
}

#[tokio::test]
async fn asyncpg_with_its_statement_cache() {
    check(
        drivers_dir().join("venv/bin/python"),
        "asyncpg_check.py",
        "drv_asyncpg",
    )
    .await;
}

#[tokio::test]
async fn psycopg3_preparing_everything() {
    check(
        drivers_dir().join("venv/bin/python"),
        "psycopg_check.py",
        "drv_psycopg",
    )
    .await;
}

#[tokio::test]
async fn node_postgres_named_queries() {
    check(PathBuf::from("node"), "node_pg_check.js", "drv_nodepg").await;
}

#[tokio::test]
async fn postgres_js_with_prepare() {
    check(
        PathBuf::from("node"),
        "postgresjs_check.mjs",
        "drv_postgresjs",
    )
    .await;
}

/// pgjdbc's `executeBatch` of 1k, 10k and 100k inserts in one transaction
/// (and wide rows, and autocommit): pgjdbc writes long stretches of the
/// batch before it reads, so pggat's write queue towards the server grows
/// far past one vectored write. Debian's libpostgresql-jdbc-java, run as a
/// Java source file.
#[tokio::test]
async fn pgjdbc_long_batches_in_transaction_mode() {
    let jar = PathBuf::from("/usr/share/java/postgresql.jar");
    assert!(
        jar.exists(),
        "{} is missing: install libpostgresql-jdbc-java (.ci/run does)",
        jar.display()
    );
    let g = Pggat::start(&transaction_pool(cluster(), "drv_jdbc", SCRAM, 4, "")).await;
    let url = format!("jdbc:postgresql://{}/drv_jdbc", g.addr);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/drivers/JdbcBatch.java");
    let out = tokio::task::spawn_blocking(move || {
        Command::new("java")
            .arg("-cp")
            .arg(jar)
            .arg(script)
            .env("PGGAT_JDBC_URL", url)
            .env("PGGAT_USER", SCRAM.name)
            .env("PGGAT_PASSWORD", SCRAM.password)
            .output()
            .expect("run java")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("OK"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    g.shutdown().await;
}
