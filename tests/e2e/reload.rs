//! Reloading a running pggat: unchanged pools keep their servers and
//! clients, changed ones drain while new clients get the new settings,
//! listeners come and go, a bad config changes nothing, and `--watch` and
//! SIGHUP pick edits up.

use std::sync::Arc;
use std::time::Duration;

use crate::harness::*;

fn pool(db: &str, mode: &str, max: u32) -> String {
    let c = cluster();
    format!(
        "    pool /{db} {{\n        address {addr}\n        username {user}\n        password \"{pw}\"\n        database postgres\n        max_connections {max}\n        pool basic {mode}\n    }}\n",
        addr = c.address(),
        user = SCRAM.name,
        pw = SCRAM.password,
    )
}

async fn one(c: &tokio_postgres::Client) -> i32 {
    c.query_one("SELECT 1", &[]).await.unwrap().get(0)
}

#[tokio::test]
async fn a_reload_keeps_unchanged_pools_and_their_clients() {
    let sock_dir = tempfile::tempdir().unwrap();
    let first = format!(
        "127.0.0.1:0 {{\n{}{}}}\n",
        pool("kept", "transaction", 2),
        pool("changed", "session", 2)
    );
    let mut g = Pggat::start(&first).await;
    let kept = g.connect(SCRAM.name, SCRAM.password, "kept").await.unwrap();
    let changed = g
        .connect(SCRAM.name, SCRAM.password, "changed")
        .await
        .unwrap();
    let kept_pid: i32 = backend_pid(&kept).await;
    assert_eq!(one(&changed).await, 1);
    let before = g.running().shared().pools();
    assert_eq!(before.len(), 2);

    // Same content, other layout and comments: nothing happens.
    let same = format!("# a comment\n\n{first}");
    assert_eq!(
        g.reload(&same).await.unwrap(),
        pggat::app::Reloaded::Unchanged
    );

    // /changed gets another size, /added appears, and a unix listener too.
    let sock = sock_dir.path().join(".s.PGSQL.6543");
    let second = format!(
        "127.0.0.1:0 {{\n{}{}{}}}\n{} {{\n{}}}\n",
        pool("kept", "transaction", 2),
        pool("changed", "session", 3),
        pool("added", "transaction", 2),
        sock.display(),
        pool("unixonly", "transaction", 1),
    );
    let outcome = g.reload(&second).await.unwrap();
    assert_eq!(
        outcome,
        pggat::app::Reloaded::Applied {
            pools_kept: 1,
            listeners_started: 1,
            listeners_stopped: 0
        }
    );
    let after = g.running().shared().pools();
    assert_eq!(after.len(), 4, "kept, changed, added, unixonly");
    let carried = after
        .iter()
        .filter(|p| before.iter().any(|b| Arc::ptr_eq(b, p)))
        .count();
    assert_eq!(carried, 1, "only the unchanged pool is carried over");

    // The client of the kept pool goes on, on the same server (the pool and
    // its servers were kept); the client of the changed pool finishes its
    // session on the old pool.
    for _ in 0..5 {
        let pid: i32 = backend_pid(&kept).await;
        assert_eq!(pid, kept_pid);
        assert_eq!(one(&changed).await, 1);
    }
    // New clients reach every pool of the new config, the new listener too.
    for db in ["kept", "changed", "added"] {
        let c = g.connect(SCRAM.name, SCRAM.password, db).await.unwrap();
        assert_eq!(one(&c).await, 1, "{db}");
    }
    let unix_url = format!(
        "host={} port=6543 user={} password='{}' dbname=unixonly connect_timeout=5",
        sock_dir.path().display(),
        SCRAM.name,
        SCRAM.password
    );
    let c = connect(&unix_url)
        .await
        .expect("the listener the reload added");
    assert_eq!(one(&c).await, 1);

    // A config that cannot work (a missing certificate file) is refused as
    // a whole: the unix listener stays, nothing is bound or switched.
    let broken = second.replacen(
        "127.0.0.1:0 {\n",
        "127.0.0.1:0 {\n    ssl x509_key_pair /nonexistent/cert.pem /nonexistent/key.pem\n",
        1,
    );
    let err = g.reload(&broken).await.expect_err("a broken config");
    assert!(err.contains("/nonexistent/cert.pem"), "{err}");
    let c = connect(&unix_url).await.expect("still listening");
    assert_eq!(one(&c).await, 1);

    // Removing the listener stops it accepting.
    let outcome = g.reload(&first).await.unwrap();
    assert!(matches!(
        outcome,
        pggat::app::Reloaded::Applied {
            listeners_stopped: 1,
            ..
        }
    ));
    assert!(
        connect(&unix_url).await.is_err(),
        "removed listener still accepts"
    );
    assert_eq!(one(&kept).await, 1);
    drop((kept, changed, c));
    g.shutdown().await;
}

/// Runs `pggat run --config PATH [--watch]` on a free port; killed on drop.
struct Process {
    child: std::process::Child,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_pggat(path: &std::path::Path, watch: bool) -> Process {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_pggat"));
    cmd.args(["run", "--config"]).arg(path);
    if watch {
        cmd.arg("--watch");
    }
    let child = cmd
        .env("PGGAT_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    Process { child }
}

async fn serves(port: u16, db: &str) -> bool {
    let url = format!(
        "host=127.0.0.1 port={port} user={} password='{}' dbname={db} connect_timeout=2",
        SCRAM.name, SCRAM.password
    );
    match connect(&url).await {
        Ok(c) => c.simple_query("SELECT 1").await.is_ok(),
        Err(_) => false,
    }
}

#[tokio::test]
async fn watch_and_sighup_pick_up_edits_and_a_broken_edit_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("Gatfile");
    for watch in [true, false] {
        let port = pggat::cluster::free_port().unwrap();
        let text = |pools: &str| format!("127.0.0.1:{port} {{\n{pools}}}\n");
        std::fs::write(&path, text(&pool("one", "transaction", 2))).unwrap();
        let p = spawn_pggat(&path, watch);
        assert!(
            eventually(Duration::from_secs(10), async || serves(port, "one").await).await,
            "pggat did not start"
        );
        let hup = || {
            if !watch {
                nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(p.child.id() as i32),
                    nix::sys::signal::Signal::SIGHUP,
                )
                .unwrap();
            }
        };
        let long_lived = connect(&format!(
            "host=127.0.0.1 port={port} user={} password='{}' dbname=one",
            SCRAM.name, SCRAM.password
        ))
        .await
        .unwrap();

        // A syntax error: logged, nothing changes.
        std::fs::write(&path, text("    pool /two {\n        address\n")).unwrap();
        hup();
        tokio::time::sleep(Duration::from_millis(1200)).await;
        assert!(
            serves(port, "one").await,
            "watch={watch}: a broken edit took /one down"
        );
        assert_eq!(one(&long_lived).await, 1);

        // A good edit: picked up within a second or two.
        let both = format!(
            "{}{}",
            pool("one", "transaction", 2),
            pool("two", "transaction", 2)
        );
        std::fs::write(&path, text(&both)).unwrap();
        hup();
        assert!(
            eventually(Duration::from_secs(3), async || serves(port, "two").await).await,
            "watch={watch}: the edit was not picked up"
        );
        assert_eq!(one(&long_lived).await, 1, "the long-lived client survived");
        drop(long_lived);
        drop(p);
    }
}
