//! The pggat binary itself: `validate` and `demo`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::*;

const PGGAT: &str = env!("CARGO_BIN_EXE_pggat");

#[test]
fn validate_accepts_a_good_gatfile_and_points_at_a_mistake() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("Gatfile");
    std::fs::write(
        &good,
        ":5433 {\n    pool * 127.0.0.1:5432 postgres postgres secret\n}\n",
    )
    .unwrap();
    let out = Command::new(PGGAT)
        .args(["validate", "--config"])
        .arg(&good)
        .output()
        .unwrap();
    assert_success(&out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("valid"));

    let bad = dir.path().join("Bad");
    std::fs::write(
        &bad,
        ":5433 {\n    pool * {\n        max_connections twenty\n    }\n}\n",
    )
    .unwrap();
    let out = Command::new(PGGAT)
        .args(["validate", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Bad:3:25"), "{err}");
    assert!(err.contains("twenty"), "{err}");

    let out = Command::new(PGGAT)
        .args(["validate", "--config", "/nonexistent/Gatfile"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("file not found"));
}

#[test]
fn the_example_gatfile_is_valid() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/Gatfile.example");
    let out = Command::new(PGGAT)
        .args(["validate", "--config", example])
        .output()
        .unwrap();
    assert_success(&out);
}

#[tokio::test]
async fn demo_serves_psql_and_cleans_up_on_ctrl_c() {
    let port = pggat::cluster::free_port().unwrap();
    let mut child = Command::new(PGGAT)
        .args(["demo", "--port", &port.to_string()])
        .env("PGGAT_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut data_dirs = Vec::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(dir) = line
                .split(" is running in ")
                .nth(1)
                .and_then(|r| r.split(" (port").next())
            {
                data_dirs.push(std::path::PathBuf::from(dir));
            }
            if line.trim_start().starts_with("psql ") {
                let _ = tx.send((line.trim().to_owned(), data_dirs.clone()));
            }
        }
    });
    let (command, data_dirs) = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("demo prints a psql command");
    assert!(command.contains(&format!("127.0.0.1:{port}")), "{command}");
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let out = psql(
        addr,
        "demo",
        "demo",
        "demo",
        &["-c", "SELECT 'through pggat'"],
        None,
    )
    .await;
    assert_success(&out);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "through pggat");
    // A hybrid pool: reads on the replica, a write on the primary.
    let out = psql(
        addr,
        "demo",
        "demo",
        "demo",
        &[
            "-c",
            "SELECT pg_is_in_recovery()",
            "-c",
            "CREATE TABLE demo_t (n int)",
        ],
        None,
    )
    .await;
    assert_success(&out);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().next(),
        Some("t"),
        "the read ran on the replica"
    );

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "demo exits cleanly on Ctrl-C: {status}");
    assert_eq!(data_dirs.len(), 2, "demo prints both data directories");
    for dir in data_dirs {
        assert!(!dir.exists(), "demo left {} behind", dir.display());
    }
}

#[tokio::test]
async fn adapt_prints_json_that_runs_like_the_gatfile() {
    let dir = tempfile::tempdir().unwrap();
    let gatfile = dir.path().join("Gatfile");
    std::fs::write(&gatfile, session_pool(cluster(), "adapted", SCRAM, 2)).unwrap();
    for pretty in [false, true] {
        let mut cmd = Command::new(PGGAT);
        cmd.args(["adapt", "--config"]).arg(&gatfile);
        if pretty {
            cmd.arg("--pretty");
        }
        let out = cmd.output().unwrap();
        assert_success(&out);
        let json = String::from_utf8(out.stdout).unwrap();
        assert_eq!(json.trim_end().lines().count() > 1, pretty, "{json}");
        // The JSON parses to the very config the Gatfile gives ...
        let from_json = gat::Config::from_json("adapted.json", &json).unwrap();
        assert_eq!(from_json, gat::load(&gatfile).unwrap());
        // ... and serves clients the same way.
        let g = Pggat::start_config(&from_json).await;
        let c = g
            .connect(SCRAM.name, SCRAM.password, "adapted")
            .await
            .unwrap();
        let v: i32 = c.query_one("SELECT 41 + 1", &[]).await.unwrap().get(0);
        assert_eq!(v, 42);
        drop(c);
        g.shutdown().await;
    }
    let out = Command::new(PGGAT)
        .args(["adapt", "--config", "/nonexistent/Gatfile"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

/// Started under the name `pgbouncer` (a symlink, as an image that installs
/// pggat as /usr/bin/pgbouncer would), the binary is `pggat pgbouncer`; its
/// `--version` starts with what SHOW VERSION says, as PgBouncer's does.
#[test]
fn the_binary_named_pgbouncer_is_the_drop_in() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("pgbouncer");
    std::os::unix::fs::symlink(PGGAT, &link).unwrap();
    for (cmd, args) in [
        (link.as_path(), &["--version"][..]),
        (link.as_path(), &["-V"][..]),
        (std::path::Path::new(PGGAT), &["pgbouncer", "--version"][..]),
    ] {
        let out = Command::new(cmd).args(args).output().unwrap();
        assert_success(&out);
        let first = String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned();
        assert_eq!(first, pggat::pgbouncer::version_line(), "{args:?}");
    }
    let out = Command::new(&link).arg("--help").output().unwrap();
    assert_success(&out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("pgbouncer.ini"));
    // A missing ini is an error, not a panic.
    let out = Command::new(&link).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "clap's usage error");
}
