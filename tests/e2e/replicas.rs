//! The harness's streaming replicas (for hybrid pools): a replica is a hot
//! standby that follows its primary, and replay can be paused to make it lag
//! on demand.

use std::time::Duration;

use crate::harness::*;

#[tokio::test]
async fn a_replica_follows_its_primary_and_lags_when_replay_is_paused() {
    let (primary, replica) = tokio::task::spawn_blocking(|| {
        let primary = Cluster::start(&Options::default()).unwrap();
        let replica = primary.replica().unwrap();
        (primary, replica)
    })
    .await
    .unwrap();
    let url = |c: &Cluster| {
        format!(
            "host=127.0.0.1 port={} user={} password='{}' dbname=postgres",
            c.port(),
            SCRAM.name,
            SCRAM.password
        )
    };
    let on_replica = connect(&url(&replica)).await.unwrap();
    let in_recovery: bool = on_replica
        .query_one("SELECT pg_is_in_recovery()", &[])
        .await
        .unwrap()
        .get(0);
    assert!(in_recovery, "the replica is a standby");

    primary
        .sql("postgres", "CREATE TABLE replicated (n int); INSERT INTO replicated VALUES (1); GRANT SELECT, INSERT ON replicated TO pggat_scram")
        .unwrap();
    assert!(replica.catch_up(&primary, Duration::from_secs(10)).unwrap());
    assert_eq!(count(&on_replica).await, 1);

    replica.pause_replay().unwrap();
    primary
        .sql("postgres", "INSERT INTO replicated VALUES (2)")
        .unwrap();
    assert!(
        !replica
            .catch_up(&primary, Duration::from_millis(300))
            .unwrap(),
        "a paused replica caught up"
    );
    assert_eq!(
        count(&on_replica).await,
        1,
        "paused: the new row is not there"
    );
    replica.resume_replay().unwrap();
    assert!(replica.catch_up(&primary, Duration::from_secs(10)).unwrap());
    assert_eq!(count(&on_replica).await, 2);

    // A hybrid pool over them: hybrid.mode=ro clients run on the replica
    // only, wo clients on the primary only, rw clients read on the replica
    // and write on the primary (tests/e2e/hybrid.rs has the details).
    let gatfile = format!(
        "127.0.0.1:0 {{\n    pool /hyb {{\n        address {primary}\n        replica {replica}\n        username {user}\n        password \"{pw}\"\n        database postgres\n        pool hybrid\n    }}\n}}\n",
        primary = primary.address(),
        replica = replica.address(),
        user = SCRAM.name,
        pw = SCRAM.password,
    );
    let g = Pggat::start(&gatfile).await;
    // (reads on the standby, writes succeed) per hybrid.mode.
    for (mode, standby, writes) in [("ro", true, false), ("wo", false, true), ("rw", true, true)] {
        let c = connect(&format!(
            "{} options='-c hybrid.mode={mode}'",
            g.url(SCRAM.name, SCRAM.password, "hyb")
        ))
        .await
        .unwrap();
        for _ in 0..3 {
            let in_recovery: bool = c
                .query_one("SELECT pg_is_in_recovery()", &[])
                .await
                .unwrap()
                .get(0);
            assert_eq!(in_recovery, standby, "hybrid.mode={mode}");
        }
        let write = c.batch_execute("INSERT INTO replicated VALUES (3)").await;
        match write {
            Ok(()) => assert!(writes, "hybrid.mode={mode} wrote on a standby?"),
            Err(e) => {
                assert!(!writes, "hybrid.mode={mode}: {e}");
                assert_eq!(sqlstate(&e).as_deref(), Some("25006"), "{e}");
            }
        }
    }
    g.shutdown().await;
}

async fn count(c: &tokio_postgres::Client) -> i64 {
    c.query_one("SELECT count(*) FROM replicated", &[])
        .await
        .unwrap()
        .get(0)
}
