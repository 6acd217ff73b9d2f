//! The console's RECONNECT, WAIT_CLOSE, KILL_CLIENT, SUSPEND and SHUTDOWN,
//! the prepared-statement statistics, and the signals PgBouncer answers
//! (SIGTERM, SIGINT, SIGUSR1, SIGUSR2) sent to the `pggat pgbouncer`
//! process.

use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::*;

/// The `id` SHOW CLIENTS gives the client with this application_name.
async fn client_id(admin: &tokio_postgres::Client, application_name: &str) -> String {
    let (cols, row) = show_row(admin, "SHOW CLIENTS", "application_name", application_name).await;
    column(&cols, &row, "id").to_owned()
}

async fn stat(admin: &tokio_postgres::Client, db: &str, name: &str) -> u64 {
    let (cols, row) = show_row(admin, "SHOW STATS", "database", db).await;
    column(&cols, &row, name).parse().unwrap()
}

#[tokio::test]
async fn reconnect_wait_close_kill_client_and_suspend_from_the_console() {
    let ini = Ini::new("", "");
    let _server = start(&ini).await;
    let admin = ini.connect(SCRAM, "pgbouncer").await.unwrap();
    let url = |app: &str| {
        format!(
            "{} application_name={app}",
            ini.url(MD5.name, MD5.password, "two")
        )
    };

    // What pggat has none of is listed as nothing, with PgBouncer's columns.
    for (what, first) in [
        ("PEERS", "peer_id"),
        ("PEER_POOLS", "peer_id"),
        ("DNS_HOSTS", "hostname"),
        ("DNS_ZONES", "zonename"),
    ] {
        let (cols, rows) = console(&admin, &format!("SHOW {what}")).await.unwrap();
        assert_eq!(cols[0], first, "SHOW {what}");
        assert!(rows.is_empty(), "SHOW {what}");
    }
    let e = admin.simple_query("SHOW FDS").await.unwrap_err();
    assert!(
        message(&e).contains("not supported by pggat"),
        "{}",
        message(&e)
    );

    // Prepared statements over transaction pooling are counted as
    // PgBouncer counts them, and SHOW CLIENTS says how many a client has.
    let victim = connect(&url("victim")).await.unwrap();
    let stmt = victim.prepare("SELECT $1::int + 1").await.unwrap();
    for i in 0..3 {
        let row = victim.query_one(&stmt, &[&i]).await.unwrap();
        assert_eq!(row.get::<_, i32>(0), i + 1);
    }
    assert!(stat(&admin, "two", "total_client_parse_count").await >= 1);
    assert!(stat(&admin, "two", "total_server_parse_count").await >= 1);
    assert!(stat(&admin, "two", "total_bind_count").await >= 3);
    let (cols, row) = show_row(&admin, "SHOW CLIENTS", "application_name", "victim").await;
    assert!(
        column(&cols, &row, "prepared_statements")
            .parse::<u64>()
            .unwrap()
            >= 1,
        "{row:?}"
    );

    // RECONNECT: the server a transaction holds is marked close_needed;
    // WAIT_CLOSE returns once it has been closed, at the COMMIT.
    let holder = connect(&url("holder")).await.unwrap();
    holder.simple_query("BEGIN; SELECT 1").await.unwrap();
    let held = server_ids(&admin, "two").await;
    admin.simple_query("RECONNECT two").await.unwrap();
    let (cols, rows) = console(&admin, "SHOW SERVERS").await.unwrap();
    let marked: Vec<_> = rows
        .iter()
        .filter(|r| column(&cols, r, "database") == "two")
        .map(|r| column(&cols, r, "close_needed").to_owned())
        .collect();
    assert_eq!(
        marked,
        ["1"],
        "the held server is marked, the idle one closed"
    );
    let second = ini.connect(SCRAM, "pgbouncer").await.unwrap();
    let mut waiting =
        tokio::spawn(async move { second.simple_query("WAIT_CLOSE two").await.map(|_| ()) });
    // Given time to arrive, WAIT_CLOSE is still waiting for the COMMIT.
    assert!(
        tokio::time::timeout(Duration::from_millis(500), &mut waiting)
            .await
            .is_err(),
        "WAIT_CLOSE returned before the marked server closed"
    );
    holder.simple_query("SELECT 2").await.unwrap();
    assert!(!waiting.is_finished(), "WAIT_CLOSE waits for the COMMIT");
    holder.simple_query("COMMIT").await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("WAIT_CLOSE returns once the server is closed")
        .unwrap()
        .expect("WAIT_CLOSE");
    holder.simple_query("SELECT 3").await.unwrap();
    let now = server_ids(&admin, "two").await;
    assert!(
        now.iter().all(|id| !held.contains(id)),
        "{held:?} then {now:?}"
    );

    // KILL_CLIENT ends one client, by SHOW CLIENTS' id, and closes the
    // server it was in a transaction on.
    victim.simple_query("BEGIN").await.unwrap();
    let victim_pid: i32 = backend_pid(&victim).await;
    let id = client_id(&admin, "victim").await;
    admin
        .simple_query(&format!("KILL_CLIENT {id}"))
        .await
        .expect("KILL_CLIENT");
    assert!(victim.simple_query("SELECT 1").await.is_err(), "killed");
    holder.simple_query("SELECT 1").await.expect("others stay");
    let observer = connect(&format!(
        "host=127.0.0.1 port={} user=postgres dbname=postgres",
        cluster().port()
    ))
    .await
    .unwrap();
    assert!(
        eventually(Duration::from_secs(10), async || {
            let n: i64 = observer
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = $1",
                    &[&victim_pid],
                )
                .await
                .unwrap()
                .get(0);
            n == 0
        })
        .await,
        "the killed client's server was closed"
    );
    let e = admin
        .simple_query("KILL_CLIENT 999999999")
        .await
        .unwrap_err();
    assert_eq!(message(&e), "client not found: 999999999");

    // SUSPEND: new transactions wait until RESUME.
    admin.simple_query("SUSPEND").await.expect("SUSPEND");
    let e = admin.simple_query("SUSPEND").await.unwrap_err();
    assert_eq!(message(&e), "already suspended/paused");
    let (cols, row) = show_row(&admin, "SHOW STATE", "key", "suspended").await;
    assert_eq!(column(&cols, &row, "value"), "yes");
    let query = tokio::spawn(async move { holder.simple_query("SELECT 4").await.map(|_| ()) });
    assert!(
        one_waits(&admin, "two", MD5.name).await,
        "the suspended client waits"
    );
    admin.simple_query("RESUME").await.expect("RESUME");
    tokio::time::timeout(Duration::from_secs(10), query)
        .await
        .expect("resumed")
        .unwrap()
        .expect("served after RESUME");
}

/// Whether pggat's task serving `ini` ends within 10 s.
async fn ends(server: tokio::task::JoinHandle<()>) -> bool {
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .is_ok()
}

#[tokio::test]
async fn shutdown_from_the_console_waits_as_asked() {
    // WAIT_FOR_CLIENTS: no new clients; a connected one is served until it
    // leaves, and then pggat ends.
    let ini = Ini::new("", "");
    let server = start(&ini).await;
    let client = ini.connect(MD5, "one").await.unwrap();
    let admin = ini.connect(SCRAM, "pgbouncer").await.unwrap();
    admin
        .simple_query("SHUTDOWN WAIT_FOR_CLIENTS")
        .await
        .expect("SHUTDOWN WAIT_FOR_CLIENTS");
    assert!(refuses_new_clients(&ini).await, "new clients are refused");
    for _ in 0..3 {
        client.simple_query("SELECT 1").await.expect("still served");
    }
    assert!(!server.is_finished());
    drop(client);
    assert!(ends(server).await, "ends when the last client leaves");

    // WAIT_FOR_SERVERS: a transaction in progress finishes, then pggat ends
    // and the client is disconnected.
    let ini = Ini::new("", "");
    let server = start(&ini).await;
    let client = ini.connect(MD5, "two").await.unwrap();
    client
        .simple_query("BEGIN; SELECT 1")
        .await
        .expect("a transaction");
    let admin = ini.connect(SCRAM, "pgbouncer").await.unwrap();
    admin
        .simple_query("SHUTDOWN WAIT_FOR_SERVERS")
        .await
        .expect("SHUTDOWN WAIT_FOR_SERVERS");
    client
        .simple_query("SELECT 2")
        .await
        .expect("the transaction goes on");
    assert!(!server.is_finished());
    client.simple_query("COMMIT").await.expect("COMMIT");
    assert!(ends(server).await, "ends once servers are released");
    assert!(client.simple_query("SELECT 3").await.is_err());

    // SHUTDOWN: at once, clients or not.
    let ini = Ini::new("", "");
    let server = start(&ini).await;
    let client = ini.connect(MD5, "one").await.unwrap();
    client.simple_query("SELECT 1").await.unwrap();
    let admin = ini.connect(SCRAM, "pgbouncer").await.unwrap();
    let _ = admin.simple_query("SHUTDOWN").await;
    assert!(ends(server).await, "SHUTDOWN ends pggat");
    assert!(client.simple_query("SELECT 1").await.is_err());
}

/// `pggat pgbouncer` running as its own process, killed when dropped.
struct Process(std::process::Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Process {
    async fn start(ini: &Ini) -> Process {
        let child = Command::new(env!("CARGO_BIN_EXE_pggat"))
            .arg("pgbouncer")
            .arg(ini.path())
            .arg("-q")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run pggat pgbouncer");
        let process = Process(child);
        assert!(
            eventually(Duration::from_secs(20), async || ini
                .connect(SCRAM, "pgbouncer")
                .await
                .is_ok())
            .await,
            "pggat pgbouncer did not start serving"
        );
        process
    }

    fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.0.id() as i32), signal).expect("signal pggat");
    }

    fn running(&mut self) -> bool {
        self.0.try_wait().unwrap().is_none()
    }

    /// Waits up to 10 s for the process to exit; its status.
    async fn exits(&mut self) -> Option<std::process::ExitStatus> {
        let mut status = None;
        eventually(Duration::from_secs(10), async || {
            status = self.0.try_wait().unwrap();
            status.is_some()
        })
        .await;
        status
    }
}

#[tokio::test]
async fn signals_act_as_they_do_on_pgbouncer() {
    let ini = Ini::new("", "");
    let mut pggat = Process::start(&ini).await;
    let admin = ini.connect(SCRAM, "pgbouncer").await.unwrap();
    let state = async |key: &str| {
        let (cols, row) = show_row(&admin, "SHOW STATE", "key", key).await;
        column(&cols, &row, "value").to_owned()
    };
    // Waits until SHOW STATE says `key` is "yes".
    let now_in = async |key: &str| {
        eventually(Duration::from_secs(10), async || state(key).await == "yes").await
    };

    // SIGUSR1 pauses, SIGUSR2 resumes.
    let client = ini.connect(MD5, "two").await.unwrap();
    client.simple_query("SELECT 1").await.unwrap();
    pggat.signal(Signal::SIGUSR1);
    assert!(now_in("paused").await, "SIGUSR1 pauses");
    let query = tokio::spawn(async move {
        let r = client.simple_query("SELECT 2").await.map(|_| ());
        (client, r)
    });
    assert!(
        one_waits(&admin, "two", MD5.name).await,
        "a paused transaction waits"
    );
    pggat.signal(Signal::SIGUSR2);
    let (client, r) = tokio::time::timeout(Duration::from_secs(10), query)
        .await
        .expect("SIGUSR2 resumes")
        .unwrap();
    r.expect("served after SIGUSR2");
    assert_eq!(state("active").await, "yes");

    // A SIGUSR2 while the pause still waits for a held server ends it: the
    // server comes back and stays, and nothing is left paused.
    let holder = ini.connect(MD5, "two").await.unwrap();
    holder.simple_query("BEGIN").await.unwrap();
    let held: i32 = backend_pid(&holder).await;
    pggat.signal(Signal::SIGUSR1);
    assert!(now_in("paused").await, "SIGUSR1 pauses");
    pggat.signal(Signal::SIGUSR2);
    assert!(
        now_in("active").await,
        "SIGUSR2 resumes while the pause waits for the held server"
    );
    holder.simple_query("COMMIT").await.unwrap();
    client.simple_query("SELECT 1").await.unwrap();
    // Time for a pause still running to close the released server.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (cols, rows) = console(&admin, "SHOW SERVERS").await.unwrap();
    assert!(
        rows.iter()
            .any(|r| column(&cols, r, "remote_pid") == held.to_string()),
        "the server released after the resume is kept"
    );
    drop(holder);

    // SIGINT waits for servers: the open transaction finishes, then the
    // process ends.
    client.simple_query("BEGIN; SELECT 1").await.unwrap();
    pggat.signal(Signal::SIGINT);
    client
        .simple_query("SELECT 2")
        .await
        .expect("the transaction goes on");
    assert!(pggat.running());
    client.simple_query("COMMIT").await.expect("COMMIT");
    let status = pggat.exits().await.expect("SIGINT ends pggat");
    assert!(status.success(), "{status}");
    drop(admin);

    // SIGTERM waits for clients: a session client is served until it
    // leaves; a second SIGTERM ends everything at once.
    let mut pggat = Process::start(&ini).await;
    let session = ini.connect(MD5, "one").await.unwrap();
    session.simple_query("SELECT 1").await.unwrap();
    pggat.signal(Signal::SIGTERM);
    assert!(
        refuses_new_clients(&ini).await,
        "no new clients after SIGTERM"
    );
    for _ in 0..3 {
        session
            .simple_query("SELECT 1")
            .await
            .expect("still served");
    }
    assert!(pggat.running());
    pggat.signal(Signal::SIGTERM);
    assert!(pggat.exits().await.is_some(), "a second SIGTERM ends pggat");
    assert!(session.simple_query("SELECT 1").await.is_err());

    // ...and a single SIGTERM ends it when the last client leaves.
    let mut pggat = Process::start(&ini).await;
    let session = ini.connect(MD5, "one").await.unwrap();
    session.simple_query("SELECT 1").await.unwrap();
    pggat.signal(Signal::SIGTERM);
    assert!(refuses_new_clients(&ini).await);
    assert!(pggat.running());
    drop(session);
    let status = pggat
        .exits()
        .await
        .expect("ends when the last client leaves");
    assert!(status.success(), "{status}");
}
