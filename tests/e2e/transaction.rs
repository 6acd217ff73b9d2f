//! Transaction pooling with real clients: many clients share few servers,
//! and nothing a client does is lost when it moves or leaks to another.

use std::time::Duration;

use crate::differential::wire;
use crate::harness::*;

fn pool(db: &str, max: u32) -> String {
    transaction_pool(cluster(), db, SCRAM, max, "")
}

async fn client(g: &Pggat, db: &str) -> tokio_postgres::Client {
    g.connect(SCRAM.name, SCRAM.password, db)
        .await
        .expect("connect through pggat")
}

#[tokio::test]
async fn prepared_statements_from_fifty_clients_over_five_servers() {
    let g = Pggat::start(&pool("txprep", 5)).await;
    let mut tasks = Vec::new();
    for id in 0..50i32 {
        let c = client(&g, "txprep").await;
        tasks.push(tokio::spawn(async move {
            let add = c.prepare("SELECT $1::int4 + $2::int4").await.unwrap();
            let echo = c
                .prepare("SELECT $1::text || '-' || $2::int4::text")
                .await
                .unwrap();
            let rows = c
                .prepare("SELECT g FROM generate_series(1, $1::int4) g")
                .await
                .unwrap();
            for i in 0..40i32 {
                let v: i32 = c.query_one(&add, &[&id, &i]).await.unwrap().get(0);
                assert_eq!(v, id + i);
                let s: String = c
                    .query_one(&echo, &[&format!("c{id}"), &i])
                    .await
                    .unwrap()
                    .get(0);
                assert_eq!(s, format!("c{id}-{i}"));
                let n = c.query(&rows, &[&(i % 7 + 1)]).await.unwrap();
                assert_eq!(n.len() as i32, i % 7 + 1);
                assert_eq!(n.last().unwrap().get::<_, i32>(0), i % 7 + 1);
            }
            // And inside explicit transactions, with an error in one.
            c.batch_execute("BEGIN").await.unwrap();
            let v: i32 = c.query_one(&add, &[&id, &1]).await.unwrap().get(0);
            assert_eq!(v, id + 1);
            assert!(c.query_one("SELECT 1/0", &[]).await.is_err());
            c.batch_execute("ROLLBACK").await.unwrap();
            let v: i32 = c.query_one(&add, &[&id, &2]).await.unwrap().get(0);
            assert_eq!(v, id + 2);
            c
        }));
    }
    let mut clients = Vec::new();
    for t in tasks {
        clients.push(t.await.expect("client task"));
    }
    assert!(
        g.live_servers() <= 5,
        "{} servers for 50 clients",
        g.live_servers()
    );
    drop(clients);
    g.shutdown().await;
}

#[tokio::test]
async fn clients_share_servers_between_transactions() {
    let g = Pggat::start(&pool("txshare", 1)).await;
    let a = client(&g, "txshare").await;
    let b = client(&g, "txshare").await;
    // One server: both clients run on it, one transaction at a time.
    assert_eq!(backend_pid(&a).await, backend_pid(&b).await);
    // A transaction holds the server: b waits until a commits.
    a.batch_execute("BEGIN; SELECT 1").await.unwrap();
    let waiting = tokio::spawn(async move {
        let pid = backend_pid(&b).await;
        (b, pid)
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiting.is_finished(), "b ran while a held the only server");
    let apid: i32 = backend_pid(&a).await;
    a.batch_execute("COMMIT").await.unwrap();
    let (b, bpid) = waiting.await.unwrap();
    assert_eq!(apid, bpid);
    drop((a, b));
    g.shutdown().await;
}

#[tokio::test]
async fn settings_follow_their_client_and_never_leak() {
    let g = Pggat::start(&pool("txset", 3)).await;
    let a = client(&g, "txset").await;
    a.batch_execute(
        "SET application_name = 'client_a'; SET TimeZone = 'Asia/Tokyo'; SET statement_timeout = '4321ms'",
    )
    .await
    .unwrap();
    let mut others = Vec::new();
    for _ in 0..20 {
        others.push(client(&g, "txset").await);
    }
    let check_a = async |a: &tokio_postgres::Client| {
        let row = a
            .query_one(
                "SELECT current_setting('application_name'), current_setting('TimeZone'), current_setting('statement_timeout')",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(row.get::<_, String>(0), "client_a");
        assert_eq!(row.get::<_, String>(1), "Asia/Tokyo");
        assert_eq!(row.get::<_, String>(2), "4321ms");
    };
    let mut tasks = Vec::new();
    for c in others {
        tasks.push(tokio::spawn(async move {
            for _ in 0..50 {
                let row = c
                    .query_one(
                        "SELECT current_setting('application_name'), current_setting('statement_timeout')",
                        &[],
                    )
                    .await
                    .unwrap();
                assert_ne!(row.get::<_, String>(0), "client_a");
                assert_eq!(row.get::<_, String>(1), "0");
            }
            c
        }));
    }
    for _ in 0..50 {
        check_a(&a).await;
    }
    let mut others = Vec::new();
    for t in tasks {
        others.push(t.await.expect("other client"));
    }
    // RESET takes it back, for a and only a.
    a.batch_execute("RESET statement_timeout").await.unwrap();
    let v: String = a
        .query_one("SELECT current_setting('statement_timeout')", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(v, "0");
    drop((a, others));
    g.shutdown().await;
}

#[tokio::test]
async fn a_set_rolled_back_is_forgotten() {
    let g = Pggat::start(&pool("txsetrb", 2)).await;
    let a = client(&g, "txsetrb").await;
    a.batch_execute("BEGIN; SET work_mem = '7MB'; ROLLBACK")
        .await
        .unwrap();
    a.batch_execute("BEGIN; SET work_mem = '9MB'; COMMIT")
        .await
        .unwrap();
    let b = client(&g, "txsetrb").await;
    for _ in 0..10 {
        let v: String = a.query_one("SHOW work_mem", &[]).await.unwrap().get(0);
        assert_eq!(v, "9MB");
        let v: String = b.query_one("SHOW work_mem", &[]).await.unwrap().get(0);
        assert_eq!(v, "4MB");
    }
    drop((a, b));
    g.shutdown().await;
}

#[tokio::test]
async fn a_temp_table_pins_the_client_to_its_server() {
    let g = Pggat::start(&pool("txpin", 2)).await;
    let a = client(&g, "txpin").await;
    a.batch_execute("CREATE TEMP TABLE mine(x int); INSERT INTO mine VALUES (42)")
        .await
        .unwrap();
    let pid = backend_pid(&a).await;
    let b = client(&g, "txpin").await;
    for _ in 0..20 {
        let v: i32 = a.query_one("SELECT x FROM mine", &[]).await.unwrap().get(0);
        assert_eq!(v, 42);
        assert_eq!(backend_pid(&a).await, pid);
        assert_ne!(backend_pid(&b).await, pid, "b got a's pinned server");
        let e = b.query_one("SELECT x FROM mine", &[]).await.unwrap_err();
        assert_eq!(sqlstate(&e).as_deref(), Some("42P01"));
    }
    // DISCARD ALL unpins: with a still connected, two other clients can
    // hold both servers at once, one of them the server a was pinned to,
    // and its temp table is gone.
    a.batch_execute("DISCARD ALL").await.unwrap();
    let c = client(&g, "txpin").await;
    let both = async {
        b.batch_execute("BEGIN").await.unwrap();
        c.batch_execute("BEGIN").await.unwrap();
    };
    tokio::time::timeout(Duration::from_secs(5), both)
        .await
        .expect("a's server is still kept from others after DISCARD ALL");
    let (pb, pc) = (backend_pid(&b).await, backend_pid(&c).await);
    assert!(pb == pid || pc == pid, "{pb} {pc} vs pinned {pid}");
    let on_it = if pb == pid { &b } else { &c };
    let temp: i64 = on_it
        .query_one(
            "SELECT count(*) FROM pg_class WHERE relname = 'mine' AND relpersistence = 't'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(temp, 0, "the temp table outlived DISCARD ALL");
    b.batch_execute("COMMIT").await.unwrap();
    c.batch_execute("COMMIT").await.unwrap();
    drop((a, b, c));
    g.shutdown().await;
}

#[tokio::test]
async fn pinning_refused_when_the_pool_says_so() {
    let g = Pggat::start(&transaction_pool(
        cluster(),
        "txnopin",
        SCRAM,
        2,
        "            pin_session_state off",
    ))
    .await;
    let a = client(&g, "txnopin").await;
    let e = a
        .batch_execute("CREATE TEMP TABLE t(x int)")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e).as_deref(), Some("0A000"), "{e:?}");
    assert!(message(&e).contains("temporary table"), "{}", message(&e));
    // Extended protocol too, and the connection stays usable.
    let e = a.prepare("LISTEN chan").await.unwrap_err();
    assert_eq!(sqlstate(&e).as_deref(), Some("0A000"), "{e:?}");
    let v: i32 = a.query_one("SELECT 7", &[]).await.unwrap().get(0);
    assert_eq!(v, 7);
    drop(a);
    g.shutdown().await;
}

#[tokio::test]
async fn psql_through_a_transaction_pool() {
    let g = Pggat::start(&pool("txpsql", 2)).await;
    let sql = "SELECT 1; BEGIN; SELECT 2; COMMIT; SELECT 3";
    let out = g
        .psql(SCRAM.name, SCRAM.password, "txpsql", &["-c", sql])
        .await;
    assert_success(&out);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "1\nBEGIN\n2\nCOMMIT\n3"
    );
    let input = "\\set ON_ERROR_STOP 0\nSELECT 1/0;\nBEGIN;\nSELECT 1/0;\nSELECT 5;\nROLLBACK;\nSELECT 6;\nCOPY (SELECT g FROM generate_series(1,3) g) TO STDOUT;\n";
    let out = crate::harness::psql(
        g.addr,
        SCRAM.name,
        SCRAM.password,
        "txpsql",
        &["-f", "-"],
        Some(input),
    )
    .await;
    let direct = crate::harness::psql(
        cluster().address().parse().unwrap(),
        SCRAM.name,
        SCRAM.password,
        "postgres",
        &["-f", "-"],
        Some(input),
    )
    .await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&direct.stdout)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&direct.stderr)
    );
    g.shutdown().await;
}

/// Runs pgbench against `addr` with `args`, on a blocking thread.
async fn pgbench(addr: std::net::SocketAddr, args: &[&str]) -> std::process::Output {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(pggat::cluster::bin_dir().unwrap().join("pgbench"))
            .arg("-h")
            .arg(addr.ip().to_string())
            .arg("-p")
            .arg(addr.port().to_string())
            .arg("-U")
            .arg(SCRAM.name)
            .args(&args)
            .arg("txbench")
            .env("PGPASSWORD", SCRAM.password)
            .output()
            .expect("run pgbench")
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn pgbench_in_every_query_mode_has_no_failures() {
    let g = Pggat::start(&pool("txbench", 4)).await;
    // Initialised through pggat too: COPY, DDL and VACUUM in transaction mode.
    let init = pgbench(g.addr, &["-i", "-s", "1", "-q"]).await;
    assert_success(&init);
    for mode in ["simple", "extended", "prepared"] {
        let out = pgbench(g.addr, &["-M", mode, "-c", "8", "-j", "2", "-t", "150"]).await;
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "-M {mode}: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains("number of transactions actually processed: 1200/1200"),
            "-M {mode}: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains("number of failed transactions: 0 "),
            "-M {mode}: {stdout}"
        );
    }
    assert!(g.live_servers() <= 4);
    g.shutdown().await;
}

/// Transactions each client completes in `window`, holding the pool's one
/// server `hold_ms` per transaction.
async fn contend(pooler: &str, holds_ms: &[u32], window: Duration) -> Vec<u32> {
    let g = Pggat::start(&transaction_pool(
        cluster(),
        "txfair",
        SCRAM,
        1,
        &format!("pooler {pooler}"),
    ))
    .await;
    let mut clients = Vec::new();
    for _ in holds_ms {
        clients.push(client(&g, "txfair").await);
    }
    // Everyone starts together, once connected.
    let start = tokio::time::Instant::now() + Duration::from_millis(100);
    let end = start + window;
    let mut tasks = Vec::new();
    for (c, &ms) in clients.into_iter().zip(holds_ms) {
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(start).await;
            let sql = format!("SELECT pg_sleep({})", f64::from(ms) / 1000.0);
            let mut done = 0u32;
            while tokio::time::Instant::now() < end {
                c.simple_query(&sql).await.unwrap();
                done += 1;
            }
            done
        }));
    }
    let mut counts = Vec::new();
    for t in tasks {
        counts.push(t.await.unwrap());
    }
    g.shutdown().await;
    counts
}

#[tokio::test]
async fn rob_shares_server_time_fairly_between_clients() {
    // Charged with the time they hold the server, clients holding it 10, 10,
    // 50 and 100 ms per transaction each get about a quarter of its time:
    // throughput near 10:10:2:1.
    let counts = contend("rob", &[10, 10, 50, 100], Duration::from_secs(4)).await;
    let ratio = |a: usize, b: usize| f64::from(counts[a]) / f64::from(counts[b]);
    let report = format!("transactions per client (10/10/50/100 ms): {counts:?}");
    eprintln!("{report}");
    assert!(counts[3] >= 5, "{report}");
    assert!(
        (0.75..=1.33).contains(&ratio(0, 1)),
        "10 vs 10 ms: {report}"
    );
    assert!(
        (6.0..=14.0).contains(&ratio(0, 3)),
        "10 vs 100 ms: {report}"
    );
    assert!((1.4..=2.8).contains(&ratio(2, 3)), "50 vs 100 ms: {report}");

    // FIFO-like service (lifo pooler, one server) would give each client
    // about the same count instead: the ratio above is rob's doing.
    let counts = contend("lifo", &[10, 100], Duration::from_secs(2)).await;
    let r = f64::from(counts[0]) / f64::from(counts[1]);
    eprintln!("lifo, 10/100 ms: {counts:?}");
    assert!(
        r < 3.0,
        "lifo 10 vs 100 ms: {counts:?} (if this is fair too, the rob check proves nothing)"
    );
}

#[tokio::test]
async fn pggat_preset_flags_act_release_after_transaction_and_extended_query_sync() {
    // A session preset that releases after each transaction shares its one
    // server between idle clients, as transaction pooling does.
    let gatfile = PoolFile::session(cluster(), "flags", SCRAM, 1)
        .basic_line("release_after_transaction")
        .text();
    let g = Pggat::start(&gatfile).await;
    let a = client(&g, "flags").await;
    let b = client(&g, "flags").await;
    assert_eq!(backend_pid(&a).await, backend_pid(&b).await);
    drop((a, b));
    g.shutdown().await;

    // Without extended_query_sync a prepared statement stays on the server
    // that prepared it: elsewhere PostgreSQL does not know it.
    let g = Pggat::start(&transaction_pool(
        cluster(),
        "noeqp",
        SCRAM,
        2,
        "extended_query_sync off",
    ))
    .await;
    let (a, b, c) = (
        client(&g, "noeqp").await,
        client(&g, "noeqp").await,
        client(&g, "noeqp").await,
    );
    b.batch_execute("BEGIN").await.unwrap(); // b holds one server,
    let stmt = a.prepare("SELECT 42").await.unwrap(); // a prepares on the other,
    c.batch_execute("BEGIN").await.unwrap(); // c takes that one,
    b.batch_execute("COMMIT").await.unwrap(); // and a runs on b's.
    let err = a
        .query_one(&stmt, &[])
        .await
        .expect_err("the statement stayed on its server");
    assert_eq!(sqlstate(&err).as_deref(), Some("26000"), "{err}");
    c.batch_execute("COMMIT").await.unwrap();
    drop((a, b, c));
    g.shutdown().await;

    // parameter_status_sync none: a client's startup parameters are not
    // synced onto the servers (dynamic, the default, does).
    for (sync, want) in [("none", ""), ("dynamic", "flagged")] {
        let g = Pggat::start(&transaction_pool(
            cluster(),
            "pssync",
            SCRAM,
            1,
            &format!("parameter_status_sync {sync}"),
        ))
        .await;
        let c = connect(&format!(
            "{} application_name=flagged",
            g.url(SCRAM.name, SCRAM.password, "pssync")
        ))
        .await
        .unwrap();
        let got: String = c
            .query_one("SELECT current_setting('application_name')", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(got, want, "parameter_status_sync {sync}");
        drop(c);
        g.shutdown().await;
    }
}

#[tokio::test]
async fn every_kind_of_session_state_pins_and_is_reset_for_the_next_client() {
    // Each kind of state that cannot move keeps its client on one server,
    // and the next client of that server finds none of it.
    let states = [
        (
            "LISTEN pinned_channel",
            "SELECT count(*) FROM pg_listening_channels()",
        ),
        (
            "SELECT pg_advisory_lock(4242)",
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()",
        ),
        (
            "BEGIN; DECLARE kept CURSOR WITH HOLD FOR SELECT 1; COMMIT",
            "SELECT count(*) FROM pg_cursors WHERE name = 'kept'",
        ),
        (
            "PREPARE sql_level AS SELECT 1",
            "SELECT count(*) FROM pg_prepared_statements WHERE name = 'sql_level'",
        ),
    ];
    for (state, probe) in states {
        let g = Pggat::start(&pool("txkinds", 1)).await;
        let a = client(&g, "txkinds").await;
        a.batch_execute(state).await.unwrap();
        let pid = backend_pid(&a).await;
        let held: i64 = a.query_one(probe, &[]).await.unwrap().get(0);
        assert_eq!(held, 1, "{state}: not held by its client");
        // Pinned: a second client cannot get the only server meanwhile.
        let b = client(&g, "txkinds").await;
        let waiting = tokio::spawn(async move {
            let left: i64 = b.query_one(probe, &[]).await.unwrap().get(0);
            (left, backend_pid(&b).await)
        });
        // Proving a wait means waiting: a while, then still nothing.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !waiting.is_finished(),
            "{state}: another client got the pinned server"
        );
        drop(a);
        let (left, b_pid) = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("the server is handed on when its client leaves")
            .unwrap();
        assert_eq!(b_pid, pid, "{state}: same server, reset");
        assert_eq!(left, 0, "{state}: left for the next client");
        g.shutdown().await;
    }
}

/// Thousands of extended-protocol messages pipelined while the results are
/// read at random points: the writer runs ahead of the reader, pauses now
/// and then (the pool takes the server back, the next batch may land on
/// another one, whose statements eqp prepares again), and another client
/// shares the two servers meanwhile. Every row arrives, in order, with its
/// values, and the server never errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_pipelined_extended_messages_read_at_random_points() {
    use rand::{Rng, SeedableRng};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const STATEMENTS: usize = 10;
    const BATCHES: usize = 3000;
    let g = Pggat::start(
        &PoolFile::transaction(cluster(), "txpipe", SCRAM, 2)
            .server_line("trust")
            .text(),
    )
    .await;
    let seed: u64 = rand::random();
    eprintln!("seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);

    // The batches, and what each must answer: tags in order, rows' values.
    type Answer = (Vec<u8>, Vec<(i32, i32)>);
    let mut out = Vec::new();
    let mut expected: Vec<Answer> = Vec::new();
    for k in 0..STATEMENTS {
        out.extend(wire::parse(
            &format!("s{k}"),
            &format!("SELECT $1::int4 + {k}, g FROM generate_series(1, $2::int4) g"),
        ));
    }
    out.extend(wire::sync());
    expected.push(([vec![b'1'; STATEMENTS], vec![b'Z']].concat(), Vec::new()));
    for i in 0..BATCHES {
        let rows = rng.random_range(0..5);
        let k = rng.random_range(0..STATEMENTS);
        let (i_text, rows_text) = (i.to_string(), rows.to_string());
        let params = [i_text.as_str(), rows_text.as_str()];
        let mut tags = Vec::new();
        if i % 7 == 0 {
            // The unnamed statement, described.
            out.extend(wire::parse(
                "",
                &format!("SELECT $1::int4 + {k}, g FROM generate_series(1, $2::int4) g"),
            ));
            out.extend(wire::bind("", "", &params));
            out.extend(wire::describe(b'P', ""));
            tags.extend_from_slice(b"12T");
        } else {
            out.extend(wire::bind("", &format!("s{k}"), &params));
            tags.push(b'2');
        }
        out.extend(wire::execute("", 0));
        out.extend(wire::sync());
        tags.extend(std::iter::repeat_n(b'D', rows));
        tags.extend_from_slice(b"CZ");
        let values = (1..=rows as i32).map(|r| ((i + k) as i32, r)).collect();
        expected.push((tags, values));
    }

    // Another client keeps both servers busy now and then.
    let other = client(&g, "txpipe").await;
    let busy = tokio::spawn(async move {
        for _ in 0..200 {
            other.simple_query("SELECT pg_sleep(0.001)").await.unwrap();
        }
    });

    let (mut r, mut w) = raw_login(g.addr, SCRAM.name, "txpipe").await.into_split();
    let mut wrng = rand::rngs::StdRng::seed_from_u64(seed ^ 1);
    let writer = tokio::spawn(async move {
        let mut at = 0;
        while at < out.len() {
            let n = wrng.random_range(1..4000).min(out.len() - at);
            w.write_all(&out[at..at + n]).await.unwrap();
            at += n;
            if wrng.random_range(0..50) == 0 {
                tokio::time::sleep(Duration::from_millis(wrng.random_range(1..5))).await;
            }
        }
        w
    });
    let mut rrng = rand::rngs::StdRng::seed_from_u64(seed ^ 2);
    // The reader starts late, and stops to let the writer run ahead.
    tokio::time::sleep(Duration::from_millis(rrng.random_range(0..50))).await;
    let mut rows_seen = 0usize;
    for (batch, (tags, values)) in expected.iter().enumerate() {
        let mut values = values.iter();
        for &want in tags {
            let mut head = [0u8; 5];
            tokio::time::timeout(Duration::from_secs(20), r.read_exact(&mut head))
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "batch {batch} (seed {seed}): no answer; waiting for {}",
                        want as char
                    )
                })
                .unwrap();
            let len = i32::from_be_bytes(head[1..].try_into().unwrap()) as usize - 4;
            let mut body = vec![0u8; len];
            r.read_exact(&mut body).await.unwrap();
            assert_ne!(
                head[0],
                b'E',
                "batch {batch} (seed {seed}): {}",
                String::from_utf8_lossy(&body)
            );
            assert_eq!(head[0] as char, want as char, "batch {batch} (seed {seed})");
            if head[0] == b'D' {
                let text = |at: usize| -> (i32, usize) {
                    let n = i32::from_be_bytes(body[at..at + 4].try_into().unwrap()) as usize;
                    let v = std::str::from_utf8(&body[at + 4..at + 4 + n]).unwrap();
                    (v.parse().unwrap(), at + 4 + n)
                };
                let (a, next) = text(2);
                let (b, _) = text(next);
                assert_eq!(Some(&(a, b)), values.next(), "batch {batch} (seed {seed})");
                rows_seen += 1;
            }
        }
        if rrng.random_range(0..200) == 0 {
            tokio::time::sleep(Duration::from_millis(rrng.random_range(1..20))).await;
        }
    }
    let _w = writer.await.unwrap();
    busy.await.unwrap();
    let want_rows: usize = expected.iter().map(|(_, v)| v.len()).sum();
    assert_eq!(rows_seen, want_rows);
    assert!(rows_seen > BATCHES, "rows were asked for");
    g.shutdown().await;
}

/// Statement pooling (`pool basic statement`, PgBouncer's `pool_mode =
/// statement`): autocommit statements, prepared ones included, share the
/// servers; a transaction block is refused, the client disconnected, and its
/// server rolled back before the next client gets it.
#[tokio::test]
async fn statement_pooling_runs_autocommit_statements_and_refuses_transaction_blocks() {
    let g = Pggat::start(&PoolFile::statement(cluster(), "stmt", SCRAM, 1).text()).await;
    let a = client(&g, "stmt").await;
    let b = client(&g, "stmt").await;
    for i in 0..20i32 {
        let c = if i % 2 == 0 { &a } else { &b };
        let n: i32 = c
            .query_one("SELECT $1::int4 + 1", &[&i])
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, i + 1);
    }
    let e = a
        .batch_execute("BEGIN")
        .await
        .expect_err("a transaction block in statement mode");
    assert!(
        message(&e).contains("transaction blocks not allowed in statement pooling mode"),
        "{e}"
    );
    assert!(a.is_closed() || a.simple_query("SELECT 1").await.is_err());
    // The one server was cleaned: b's statements run outside any block (a
    // leaked one would refuse them too).
    for _ in 0..3 {
        b.simple_query("SELECT 1").await.unwrap();
    }
    g.shutdown().await;
}
