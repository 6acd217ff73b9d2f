//! pggat as a drop-in PgBouncer: a pgbouncer.ini with two databases, an
//! auth_file with md5 and SCRAM users, auth_query for a third user, and the
//! admin console, against a real PostgreSQL.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use tokio_postgres::SimpleQueryMessage;

use crate::harness::*;

mod lifecycle;
mod limits;
mod security;
mod settings;

/// The user auth_query finds, and the one it finds without a password.
const LOOKUP: Role = Role {
    name: "pgb_lookup",
    password: "lookup-secret",
    method: "scram-sha-256",
};
const NO_PASSWORD: &str = "pgb_nopw";

/// Databases and roles of these tests, made once on the shared cluster.
fn setup() -> &'static str {
    static DONE: OnceLock<String> = OnceLock::new();
    DONE.get_or_init(|| {
        let c = cluster();
        for db in ["pgb_one", "pgb_two"] {
            c.sql("postgres", &format!("CREATE DATABASE {db}"))
                .expect("create database");
        }
        c.sql(
            "postgres",
            &format!(
                "SET password_encryption = 'scram-sha-256';\
                 CREATE ROLE {} LOGIN PASSWORD '{}'; CREATE ROLE {NO_PASSWORD} LOGIN;",
                LOOKUP.name, LOOKUP.password
            ),
        )
        .expect("pgbouncer test setup");
        c.sql(
            "postgres",
            &format!(
                "SELECT rolpassword FROM pg_authid WHERE rolname = '{}'",
                SCRAM.name
            ),
        )
        .expect("scram verifier")
        .trim()
        .to_owned()
    })
}

/// A temporary directory holding a pgbouncer.ini and its userlist.
struct Ini {
    dir: tempfile::TempDir,
    port: u16,
}

impl Ini {
    /// `extra` goes into [pgbouncer]; `databases` adds [databases] lines.
    fn new(extra: &str, databases: &str) -> Ini {
        let verifier = setup();
        let dir = tempfile::tempdir().expect("tempdir");
        let port = pggat::cluster::free_port().expect("free port");
        let ini = Ini { dir, port };
        let md5 = format!("{}", auth::Md5Secret::derive(MD5.password, MD5.name));
        std::fs::write(
            ini.dir.path().join("userlist.txt"),
            format!(
                "\"{}\" \"{md5}\"\n\"{}\" \"{verifier}\"\n",
                MD5.name, SCRAM.name
            ),
        )
        .unwrap();
        ini.write(extra, databases);
        ini
    }

    fn write(&self, extra: &str, databases: &str) {
        let c = cluster();
        let text = format!(
            "[databases]\n\
             one = host=127.0.0.1 port={p} dbname=pgb_one\n\
             two = host=127.0.0.1 port={p} dbname=pgb_two pool_mode=transaction\n\
             {databases}\n\
             [pgbouncer]\n\
             listen_addr = 127.0.0.1\n\
             listen_port = {port}\n\
             unix_socket_dir =\n\
             auth_type = md5\n\
             auth_file = {dir}/userlist.txt\n\
             auth_user = postgres\n\
             admin_users = {admin}\n\
             stats_users = {stats}\n\
             pool_mode = session\n\
             default_pool_size = 2\n\
             max_client_conn = 40\n\
             server_tls_sslmode = disable\n\
             ignore_startup_parameters = extra_float_digits\n\
             {extra}\n",
            p = c.port(),
            port = self.port,
            dir = self.dir.path().display(),
            admin = SCRAM.name,
            stats = MD5.name,
        );
        std::fs::write(self.path(), text).unwrap();
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("pgbouncer.ini")
    }

    /// A client of `db`, logged in as `role`.
    async fn connect(
        &self,
        role: Role,
        db: &str,
    ) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        connect(&self.url(role.name, role.password, db)).await
    }

    fn url(&self, user: &str, password: &str, db: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user={user} password='{password}' dbname={db} connect_timeout=10",
            self.port
        )
    }
}

/// pggat serving `ini` as `pggat pgbouncer` does, with its reload loop (for
/// the console's RELOAD and SHUTDOWN).
async fn start(ini: &Ini) -> tokio::task::JoinHandle<()> {
    let source = pggat::reload::Source::Pgbouncer(ini.path());
    let config = source.load().expect("ini loads");
    let running = pggat::app::start(&config).await.expect("start");
    tokio::spawn(async move { pggat::reload::serve(running, &source, false).await })
}

/// A console query's rows, as (column names, rows of text).
async fn console(
    client: &tokio_postgres::Client,
    sql: &str,
) -> Result<(Vec<String>, Vec<Vec<Option<String>>>), tokio_postgres::Error> {
    let mut columns = Vec::new();
    let mut rows = Vec::new();
    for m in client.simple_query(sql).await? {
        match m {
            SimpleQueryMessage::RowDescription(cols) => {
                columns = cols.iter().map(|c| c.name().to_owned()).collect();
            }
            SimpleQueryMessage::Row(r) => {
                rows.push((0..r.len()).map(|i| r.get(i).map(str::to_owned)).collect());
            }
            _ => {}
        }
    }
    Ok((columns, rows))
}

fn column<'a>(cols: &[String], row: &'a [Option<String>], name: &str) -> &'a str {
    let i = cols
        .iter()
        .position(|c| c == name)
        .unwrap_or_else(|| panic!("no column {name}"));
    row[i].as_deref().unwrap_or("")
}

/// The row of a console SHOW whose column `key` is `value` (there must be
/// one), with the column names.
async fn show_row(
    admin: &tokio_postgres::Client,
    sql: &str,
    key: &str,
    value: &str,
) -> (Vec<String>, Vec<Option<String>>) {
    let (cols, rows) = console(admin, sql).await.unwrap();
    let row = rows
        .into_iter()
        .find(|r| column(&cols, r, key) == value)
        .unwrap_or_else(|| panic!("{sql}: no row with {key} = {value}"));
    (cols, row)
}

/// Waits until the (database, user) pool has one client waiting.
async fn one_waits(admin: &tokio_postgres::Client, db: &str, user: &str) -> bool {
    eventually(Duration::from_secs(10), async || {
        pool_row(admin, db, user).await.is_some()
            && pool_count(admin, db, user, "cl_waiting").await == 1
    })
    .await
}

/// Waits until pggat serving `ini` refuses new clients (it is shutting
/// down).
async fn refuses_new_clients(ini: &Ini) -> bool {
    eventually(Duration::from_secs(10), async || {
        ini.connect(MD5, "one").await.is_err()
    })
    .await
}

/// The row of SHOW POOLS for (database, user).
async fn pool_row(
    admin: &tokio_postgres::Client,
    db: &str,
    user: &str,
) -> Option<(Vec<String>, Vec<Option<String>>)> {
    let (cols, rows) = console(admin, "SHOW POOLS").await.unwrap();
    let row = rows
        .into_iter()
        .find(|r| column(&cols, r, "database") == db && column(&cols, r, "user") == user)?;
    Some((cols, row))
}

async fn pool_count(admin: &tokio_postgres::Client, db: &str, user: &str, col: &str) -> i64 {
    let (cols, row) = pool_row(admin, db, user)
        .await
        .unwrap_or_else(|| panic!("no SHOW POOLS row for {db}/{user}"));
    column(&cols, &row, col).parse().unwrap()
}

#[tokio::test]
async fn users_of_the_auth_file_and_auth_query_log_in_and_others_are_refused() {
    let ini = Ini::new("", "");
    let _server = start(&ini).await;

    let md5 = ini.connect(MD5, "one").await.expect("md5 user");
    let row = md5
        .query_one("SELECT current_database(), current_user", &[])
        .await
        .unwrap();
    assert_eq!(
        (
            row.get::<_, String>(0).as_str(),
            row.get::<_, String>(1).as_str()
        ),
        ("pgb_one", MD5.name)
    );

    let scram = ini.connect(SCRAM, "two").await.expect("scram user");
    let db: String = scram
        .query_one("SELECT current_database()", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(db, "pgb_two");

    let lookup = ini.connect(LOOKUP, "one").await.expect("auth_query user");
    let who: String = lookup
        .query_one("SELECT current_user", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(who, LOOKUP.name);

    for (user, password, db, code) in [
        (MD5.name, "wrong", "one", "28P01"),
        (LOOKUP.name, "wrong", "one", "28P01"),
        (NO_PASSWORD, "anything", "one", "28P01"),
        ("pgb_nobody", "anything", "one", "28P01"),
        (MD5.name, MD5.password, "three", "3D000"),
    ] {
        let e = connect(&ini.url(user, password, db))
            .await
            .err()
            .unwrap_or_else(|| panic!("{user} got in"));
        assert_eq!(
            sqlstate(&e).as_deref(),
            Some(code),
            "{user}@{db}: {}",
            message(&e)
        );
    }
    // A startup parameter PgBouncer would refuse, and one it is told to ignore.
    let Err(e) = connect(&format!(
        "{} options='-c work_mem=1MB'",
        ini.url(MD5.name, MD5.password, "one")
    ))
    .await
    else {
        panic!("work_mem refused")
    };
    assert!(
        message(&e).contains("unsupported startup parameter: work_mem"),
        "{}",
        message(&e)
    );
    let ignored = connect(&format!(
        "{} options='-c extra_float_digits=2'",
        ini.url(MD5.name, MD5.password, "one")
    ))
    .await
    .expect("an ignored startup parameter is let through");
    ignored.simple_query("SELECT 1").await.unwrap();
}

/// The ids of the servers SHOW SERVERS lists for `db`.
async fn server_ids(admin: &tokio_postgres::Client, db: &str) -> Vec<String> {
    let (cols, rows) = console(admin, "SHOW SERVERS").await.unwrap();
    rows.iter()
        .filter(|r| column(&cols, r, "database") == db)
        .map(|r| column(&cols, r, "id").to_owned())
        .collect()
}

/// SHOW CLIENTS' and SHOW SERVERS' columns.
const SOCKET_COLUMNS: &[&str] = &[
    "type",
    "user",
    "database",
    "replication",
    "state",
    "addr",
    "port",
    "local_addr",
    "local_port",
    "connect_time",
    "request_time",
    "wait",
    "wait_us",
    "close_needed",
    "ptr",
    "link",
    "remote_pid",
    "tls",
    "application_name",
    "prepared_statements",
    "id",
];

/// Expected columns: PgBouncer's documentation (1.24).
const SHOW_COLUMNS: &[(&str, &[&str])] = &[
    (
        "POOLS",
        &[
            "database",
            "user",
            "cl_active",
            "cl_waiting",
            "cl_active_cancel_req",
            "cl_waiting_cancel_req",
            "sv_active",
            "sv_active_cancel",
            "sv_being_canceled",
            "sv_idle",
            "sv_used",
            "sv_tested",
            "sv_login",
            "maxwait",
            "maxwait_us",
            "pool_mode",
            "load_balance_hosts",
        ],
    ),
    (
        "STATS",
        &[
            "database",
            "total_server_assignment_count",
            "total_xact_count",
            "total_query_count",
            "total_received",
            "total_sent",
            "total_xact_time",
            "total_query_time",
            "total_wait_time",
            "total_client_parse_count",
            "total_server_parse_count",
            "total_bind_count",
            "avg_server_assignment_count",
            "avg_xact_count",
            "avg_query_count",
            "avg_recv",
            "avg_sent",
            "avg_xact_time",
            "avg_query_time",
            "avg_wait_time",
            "avg_client_parse_count",
            "avg_server_parse_count",
            "avg_bind_count",
        ],
    ),
    (
        "STATS_TOTALS",
        &[
            "database",
            "server_assignment_count",
            "xact_count",
            "query_count",
            "bytes_received",
            "bytes_sent",
            "xact_time",
            "query_time",
            "wait_time",
            "client_parse_count",
            "server_parse_count",
            "bind_count",
        ],
    ),
    (
        "STATS_AVERAGES",
        &[
            "database",
            "server_assignment_count",
            "xact_count",
            "query_count",
            "bytes_received",
            "bytes_sent",
            "xact_time",
            "query_time",
            "wait_time",
            "avg_client_parse_count",
            "avg_server_parse_count",
            "avg_bind_count",
        ],
    ),
    ("TOTALS", &["name", "value"]),
    ("CLIENTS", SOCKET_COLUMNS),
    ("SERVERS", SOCKET_COLUMNS),
    (
        "DATABASES",
        &[
            "name",
            "host",
            "port",
            "database",
            "force_user",
            "pool_size",
            "min_pool_size",
            "reserve_pool_size",
            "server_lifetime",
            "pool_mode",
            "load_balance_hosts",
            "max_connections",
            "current_connections",
            "max_client_connections",
            "current_client_connections",
            "paused",
            "disabled",
        ],
    ),
    (
        "USERS",
        &[
            "name",
            "pool_size",
            "reserve_pool_size",
            "pool_mode",
            "max_user_connections",
            "current_connections",
            "max_user_client_connections",
            "current_client_connections",
        ],
    ),
    ("CONFIG", &["key", "value", "default", "changeable"]),
    ("LISTS", &["list", "items"]),
    ("MEM", &["name", "size", "used", "free", "memtotal"]),
    ("VERSION", &["version"]),
    ("STATE", &["key", "value"]),
];

#[tokio::test]
async fn the_admin_console_answers_every_show_and_controls_pools() {
    let ini = Ini::new("", "");
    let _server = start(&ini).await;
    let admin = ini
        .connect(SCRAM, "pgbouncer")
        .await
        .expect("admin console");
    let stats = ini.connect(MD5, "pgbouncer").await.expect("stats console");

    // A client of each database, one of them mid-session.
    let one = ini.connect(MD5, "one").await.unwrap();
    let two = ini.connect(MD5, "two").await.unwrap();
    for _ in 0..5 {
        two.simple_query("SELECT 1").await.unwrap();
    }
    one.simple_query("SELECT 1").await.unwrap();

    for (what, expected) in SHOW_COLUMNS {
        for client in [&admin, &stats] {
            let (cols, rows) = console(client, &format!("SHOW {what}"))
                .await
                .unwrap_or_else(|e| panic!("SHOW {what}: {e}"));
            assert_eq!(cols, *expected, "SHOW {what}");
            assert!(!rows.is_empty(), "SHOW {what} has rows");
        }
    }
    let help = admin.simple_query("SHOW HELP").await;
    assert!(help.is_ok(), "SHOW HELP: {help:?}");

    // psql, as operators use it: rows of SHOW POOLS, and SHOW HELP's notice.
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", ini.port).parse().unwrap();
    let out = psql(
        addr,
        SCRAM.name,
        SCRAM.password,
        "pgbouncer",
        &["-c", "SHOW POOLS", "-c", "SHOW HELP"],
        None,
    )
    .await;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with(&format!("two|{}|", MD5.name))),
        "{stdout}"
    );
    assert!(stderr.contains("SHOW HELP|CONFIG|DATABASES"), "{stderr}");

    // Counts that move with clients.
    assert_eq!(pool_count(&admin, "one", MD5.name, "cl_active").await, 1);
    assert_eq!(
        pool_count(&admin, "one", MD5.name, "sv_active").await,
        1,
        "session mode holds its server"
    );
    assert_eq!(
        pool_count(&admin, "two", MD5.name, "sv_active").await,
        0,
        "transaction mode released it"
    );
    assert_eq!(pool_count(&admin, "two", MD5.name, "sv_idle").await, 1);
    let (cols, two_row) = show_row(&admin, "SHOW POOLS", "database", "two").await;
    assert_eq!(column(&cols, &two_row, "pool_mode"), "transaction");
    let (cols, two_stats) = show_row(&admin, "SHOW STATS", "database", "two").await;
    let queries: u64 = column(&cols, &two_stats, "total_query_count")
        .parse()
        .unwrap();
    let xacts: u64 = column(&cols, &two_stats, "total_xact_count")
        .parse()
        .unwrap();
    assert!(
        queries >= 5 && xacts >= 5,
        "queries {queries} xacts {xacts}"
    );
    assert!(
        column(&cols, &two_stats, "total_received")
            .parse::<u64>()
            .unwrap()
            > 0
    );
    let (cols, rows) = console(&admin, "SHOW CLIENTS").await.unwrap();
    assert_eq!(
        rows.iter()
            .filter(|r| column(&cols, r, "user") == MD5.name)
            .count(),
        2
    );
    let (cols, rows) = console(&admin, "SHOW SERVERS").await.unwrap();
    assert!(rows.iter().any(|r| column(&cols, r, "database") == "one" && column(&cols, r, "state") == "active"));
    let (cols, db_two) = show_row(&admin, "SHOW DATABASES", "name", "two").await;
    assert_eq!(column(&cols, &db_two, "database"), "pgb_two");
    assert_eq!(column(&cols, &db_two, "pool_size"), "2");
    let (_, rows) = console(&admin, "SHOW VERSION").await.unwrap();
    assert!(rows[0][0].as_deref().unwrap().starts_with("PgBouncer 1."));

    // A stats user may look, not act.
    let e = stats.simple_query("PAUSE two").await.unwrap_err();
    assert_eq!(message(&e), "admin access needed");
    let e = admin.simple_query("SHOW NONSENSE").await.unwrap_err();
    assert!(
        message(&e).starts_with("invalid command 'SHOW NONSENSE'"),
        "{}",
        message(&e)
    );

    // PAUSE: answered once two's servers are closed; new transactions wait
    // until RESUME.
    admin.simple_query("PAUSE two").await.expect("PAUSE two");
    assert_eq!(
        pool_count(&admin, "two", MD5.name, "sv_idle").await,
        0,
        "PAUSE closed the servers"
    );
    let waiting = tokio::spawn(async move {
        let rows = two.simple_query("SELECT 42").await;
        (two, rows)
    });
    assert!(
        one_waits(&admin, "two", MD5.name).await,
        "the paused client waits"
    );
    assert!(!waiting.is_finished());
    let e = admin.simple_query("PAUSE two").await.unwrap_err();
    assert_eq!(message(&e), "already suspended/paused");
    admin.simple_query("RESUME two").await.expect("RESUME two");
    let (two, rows) = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("resumed")
        .unwrap();
    assert!(rows.is_ok(), "{rows:?}");

    // KILL drops the database's clients and servers, and pauses it.
    admin.simple_query("KILL one").await.expect("KILL one");
    let e = one.simple_query("SELECT 1").await.unwrap_err();
    assert!(
        e.is_closed() || message(&e).contains("admin forced disconnect"),
        "{e}"
    );
    assert!(
        eventually(Duration::from_secs(10), async || pool_count(
            &admin,
            "one",
            MD5.name,
            "sv_active"
        )
        .await
            + pool_count(&admin, "one", MD5.name, "sv_idle").await
            == 0)
        .await,
        "KILL closed the servers"
    );
    let (cols, db_one) = show_row(&admin, "SHOW DATABASES", "name", "one").await;
    assert_eq!(column(&cols, &db_one, "paused"), "1");
    admin.simple_query("RESUME one").await.expect("RESUME one");
    let again = ini.connect(MD5, "one").await.unwrap();
    again
        .simple_query("SELECT 1")
        .await
        .expect("served after RESUME");

    // DISABLE refuses new clients; ENABLE lets them in again.
    admin.simple_query("DISABLE one").await.unwrap();
    let Err(e) = ini.connect(MD5, "one").await else {
        panic!("disabled")
    };
    assert!(message(&e).contains("is disabled"), "{}", message(&e));
    admin.simple_query("ENABLE one").await.unwrap();
    ini.connect(MD5, "one").await.expect("enabled");

    // RELOAD picks up an edit: a third database.
    let two_servers = server_ids(&admin, "two").await;
    assert!(!two_servers.is_empty());
    ini.write(
        "",
        &format!(
            "three = host=127.0.0.1 port={} dbname=pgb_one",
            cluster().port()
        ),
    );
    admin.simple_query("RELOAD").await.expect("RELOAD");
    let three = ini.connect(MD5, "three").await.expect("new database");
    three.simple_query("SELECT 1").await.unwrap();
    // ...and the pools it did not change keep their servers: a new client
    // of two is served by the server two had before.
    two.simple_query("SELECT 1")
        .await
        .expect("two kept across RELOAD");
    let new_two = ini.connect(MD5, "two").await.unwrap();
    new_two.simple_query("SELECT 1").await.unwrap();
    assert_eq!(server_ids(&admin, "two").await, two_servers);

    // SET changes a setting (through the same reload); an unknown one fails.
    admin
        .simple_query("SET default_pool_size = 7")
        .await
        .expect("SET");
    let (cols, size) = show_row(&admin, "SHOW CONFIG", "key", "default_pool_size").await;
    assert_eq!(column(&cols, &size, "value"), "7");
    let (cols, db_two) = show_row(&admin, "SHOW DATABASES", "name", "two").await;
    assert_eq!(column(&cols, &db_two, "pool_size"), "7");
    let e = admin
        .simple_query("SET no_such_setting = 1")
        .await
        .unwrap_err();
    assert_eq!(message(&e), "SET failed");
    // A setting pggat refuses in the ini is refused by SET as well.
    let e = admin
        .simple_query("SET server_fast_close = 1")
        .await
        .unwrap_err();
    assert_eq!(message(&e), "SET failed");
    let (cols, fast_close) = show_row(&admin, "SHOW CONFIG", "key", "server_fast_close").await;
    assert_eq!(column(&cols, &fast_close, "value"), "0");

    // A broken ini is refused by RELOAD, and the running one stays.
    std::fs::write(ini.path(), "[pgbouncer]\npool_mode = stmt\n").unwrap();
    let e = admin.simple_query("RELOAD").await.unwrap_err();
    assert!(message(&e).starts_with("RELOAD failed"), "{}", message(&e));
    two.simple_query("SELECT 1").await.expect("still served");
}

#[tokio::test]
async fn pggat_refuses_what_it_does_not_implement_by_name() {
    let ini = Ini::new("server_fast_close = 1", "");
    let err = pggat::reload::Source::Pgbouncer(ini.path())
        .load()
        .unwrap_err();
    assert!(
        err.contains("server_fast_close = 1") && err.contains("pggat does not implement it"),
        "{err}"
    );
}

/// PgBouncer itself serving an ini, killed when dropped.
struct RealPgbouncer(std::process::Child);

impl Drop for RealPgbouncer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl RealPgbouncer {
    /// Starts `pgbouncer` on `ini` (as `postgres` when we are root: it
    /// refuses root) and waits until it accepts connections.
    fn start(ini: &Ini) -> RealPgbouncer {
        use std::os::unix::fs::PermissionsExt;
        use std::os::unix::process::CommandExt;
        let bin = ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("PgBouncer is not installed: .ci/run installs it (apt-get install pgbouncer)");
        std::fs::set_permissions(ini.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut cmd = std::process::Command::new(bin);
        cmd.arg(ini.path())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        if nix::unistd::geteuid().is_root() {
            let u = nix::unistd::User::from_name("postgres")
                .unwrap()
                .expect("a postgres user");
            cmd.uid(u.uid.as_raw()).gid(u.gid.as_raw());
        }
        let child = RealPgbouncer(cmd.spawn().expect("start pgbouncer"));
        let up =
            pggat::cluster::wait_until(Duration::from_secs(20), Duration::from_millis(20), || {
                std::net::TcpStream::connect(("127.0.0.1", ini.port)).is_ok()
            });
        assert!(up, "pgbouncer did not start listening");
        child
    }
}

/// The same client workload, described by what each client saw.
async fn workload(ini: &Ini) -> Vec<String> {
    let mut seen = Vec::new();
    let logins = [
        (MD5.name, MD5.password, "one"),
        (SCRAM.name, SCRAM.password, "two"),
        (LOOKUP.name, LOOKUP.password, "one"),
        (MD5.name, "wrong", "one"),
        (SCRAM.name, "wrong", "two"),
        (LOOKUP.name, "wrong", "two"),
        (NO_PASSWORD, "x", "one"),
        ("pgb_nobody", "x", "one"),
        (MD5.name, MD5.password, "nosuchdb"),
    ];
    for (user, password, db) in logins {
        let outcome = match connect(&ini.url(user, password, db)).await {
            Err(_) => "refused".to_owned(),
            Ok(c) => {
                let mut out = Vec::new();
                for sql in [
                    "SELECT current_database(), current_user, 1 + 1",
                    "CREATE TEMP TABLE t (x int); INSERT INTO t VALUES (1), (2); SELECT sum(x) FROM t",
                    "BEGIN; SELECT 'in'; COMMIT",
                    "SELECT 1/0",
                ] {
                    match c.simple_query(sql).await {
                        Ok(msgs) => {
                            for m in msgs {
                                if let SimpleQueryMessage::Row(r) = m {
                                    out.push(
                                        (0..r.len())
                                            .map(|i| r.get(i).unwrap_or("NULL"))
                                            .collect::<Vec<_>>()
                                            .join(","),
                                    );
                                }
                            }
                        }
                        Err(e) => out.push(format!("error {}", sqlstate(&e).unwrap_or_default())),
                    }
                }
                out.join(" | ")
            }
        };
        seen.push(format!("{user}@{db}: {outcome}"));
    }
    seen
}

#[tokio::test]
async fn the_same_ini_gives_the_same_results_under_pgbouncer_and_pggat() {
    // PgBouncer reads auth_user's password from the auth_file; the server
    // trusts it, so any will do.
    let ini = Ini::new("", "");
    let users = ini.dir.path().join("userlist.txt");
    let mut text = std::fs::read_to_string(&users).unwrap();
    text.push_str("\"postgres\" \"unused-the-server-trusts-it\"\n");
    std::fs::write(&users, text).unwrap();
    use std::os::unix::fs::PermissionsExt;
    for f in [ini.path(), users] {
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o644)).unwrap();
    }

    let (theirs, their_columns) = {
        let _pgbouncer = RealPgbouncer::start(&ini);
        let seen = workload(&ini).await;
        let admin = ini
            .connect(SCRAM, "pgbouncer")
            .await
            .expect("PgBouncer's console");
        let mut columns = Vec::new();
        for (what, _) in SHOW_COLUMNS {
            if let Ok((cols, _)) = console(&admin, &format!("SHOW {what}")).await {
                columns.push((*what, cols));
            }
        }
        (seen, columns)
    };
    let server = start(&ini).await;
    assert!(
        eventually(Duration::from_secs(10), async || ini
            .connect(MD5, "one")
            .await
            .is_ok())
        .await,
        "pggat took over the port"
    );
    let ours = workload(&ini).await;
    assert_eq!(theirs, ours, "PgBouncer (left) and pggat (right) differ");
    assert!(theirs[0].contains("pgb_one,pggat_md5,2"), "{theirs:?}");
    assert!(
        theirs.iter().filter(|s| s.ends_with("refused")).count() >= 5,
        "{theirs:?}"
    );

    // Every column the installed PgBouncer shows, pggat shows too, in the
    // same order (newer PgBouncers have added columns, never reordered).
    let admin = ini.connect(SCRAM, "pgbouncer").await.unwrap();
    // Columns current PgBouncer renamed: its documentation is the spec.
    const RENAMED: &[(&str, &str)] = &[("reserve_pool", "reserve_pool_size")];
    assert!(their_columns.len() >= 10, "{their_columns:?}");
    let mut missing = Vec::new();
    for (what, theirs) in their_columns {
        let (ours, _) = console(&admin, &format!("SHOW {what}")).await.unwrap();
        let mut at = 0;
        for col in &theirs {
            let col = RENAMED
                .iter()
                .find(|(old, _)| old == col)
                .map_or(col.as_str(), |(_, new)| new);
            match ours[at..].iter().position(|c| c == col) {
                Some(i) => at += i + 1,
                None => missing.push(format!("SHOW {what}: {col}")),
            }
        }
    }
    assert!(
        missing.is_empty(),
        "PgBouncer's columns missing or out of order: {missing:?}"
    );
    server.abort();
}
