//! Shared test fixtures: throwaway PostgreSQL clusters and in-process pggat.
//!
//! Most tests share one cluster (started on first use); tests that stop or
//! reconfigure PostgreSQL start their own. pggat runs on the test's own
//! runtime, listening on 127.0.0.1:0.

use std::net::SocketAddr;
use std::process::Output;
use std::sync::OnceLock;
use std::time::Duration;

pub use pggat::cluster::{Cluster, MD5, Options, ROLES, Role, SCRAM};

/// The cluster most tests share.
pub fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| Cluster::start(&Options::default()).expect("start shared cluster"))
}

/// pggat running in-process.
pub struct Pggat {
    running: Option<pggat::app::Running>,
    /// Where clients connect.
    pub addr: SocketAddr,
}

impl Pggat {
    /// Starts pggat with a Gatfile's text (listen on `127.0.0.1:0`). Unless
    /// the text has a global block, shutdown waits at most 1s for clients a
    /// test left connected.
    pub async fn start(gatfile: &str) -> Pggat {
        let text = with_global(gatfile);
        let config =
            gat::parse_str("test Gatfile", &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        Pggat::start_config(&config).await
    }

    /// Starts pggat with a parsed config (listening where it says).
    pub async fn start_config(config: &gat::Config) -> Pggat {
        let running = pggat::app::start(config).await.expect("start pggat");
        let addr = running.tcp_addr().expect("a TCP listener");
        Pggat {
            running: Some(running),
            addr,
        }
    }

    /// Reloads with a Gatfile's text, as [`Pggat::start`] takes it.
    pub async fn reload(&mut self, gatfile: &str) -> Result<pggat::app::Reloaded, String> {
        let text = with_global(gatfile);
        let config = gat::parse_str("test Gatfile", &text).map_err(|e| e.to_string())?;
        self.running
            .as_mut()
            .expect("running")
            .reload(&config)
            .await
            .map_err(|e| e.to_string())
    }

    /// The running instance.
    pub fn running(&self) -> &pggat::app::Running {
        self.running.as_ref().expect("running")
    }

    /// Server connections of every pool.
    pub fn live_servers(&self) -> usize {
        self.running()
            .shared()
            .pools()
            .iter()
            .map(|p| p.pool.stats().live)
            .sum()
    }

    /// The routing counters of the first hybrid pool: replica hits, write
    /// fallbacks, direct-to-primary routings, failovers, lag replays, reads
    /// sent to the primary for want of the client's commit on a replica.
    pub fn hybrid_counters(&self) -> [u64; 6] {
        use std::sync::atomic::Ordering::Relaxed;
        let pools = self.running().shared().pools();
        let h = pools
            .iter()
            .find_map(|p| p.hybrid.clone())
            .expect("a hybrid pool");
        let c = &h.counters;
        [
            c.replica_hits.load(Relaxed),
            c.write_fallbacks.load(Relaxed),
            c.primary_direct.load(Relaxed),
            c.failovers.load(Relaxed),
            c.lag_replays.load(Relaxed),
            c.lsn_waits.load(Relaxed),
        ]
    }

    /// Graceful shutdown.
    pub async fn shutdown(mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
    }

    /// A tokio-postgres connection string.
    pub fn url(&self, user: &str, password: &str, db: &str) -> String {
        format!(
            "host={} port={} user={user} password='{password}' dbname={db} connect_timeout=10",
            self.addr.ip(),
            self.addr.port()
        )
    }

    /// Connects with tokio-postgres; the connection runs on a spawned task.
    pub async fn connect(
        &self,
        user: &str,
        password: &str,
        db: &str,
    ) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        connect(&self.url(user, password, db)).await
    }

    /// Runs psql against pggat with `args`, returning its output. psql runs
    /// on a blocking thread: pggat shares the test's runtime.
    pub async fn psql(&self, user: &str, password: &str, db: &str, args: &[&str]) -> Output {
        psql(self.addr, user, password, db, args, None).await
    }
}

/// The Gatfile text with a global block that bounds shutdown to 1s, unless
/// it has its own.
fn with_global(gatfile: &str) -> String {
    if gatfile.trim_start().starts_with('{') {
        gatfile.to_owned()
    } else {
        format!("{{\n    shutdown_timeout 1s\n}}\n{gatfile}")
    }
}

/// Connects with tokio-postgres.
pub async fn connect(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

/// Runs psql (no psqlrc, unaligned, tuples only) against `addr`, on a
/// blocking thread.
pub async fn psql(
    addr: SocketAddr,
    user: &str,
    password: &str,
    db: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> Output {
    let (user, password, db) = (user.to_owned(), password.to_owned(), db.to_owned());
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let stdin = stdin.map(str::to_owned);
    tokio::task::spawn_blocking(move || {
        psql_blocking(addr, &user, &password, &db, &args, stdin.as_deref())
    })
    .await
    .expect("psql thread")
}

fn psql_blocking(
    addr: SocketAddr,
    user: &str,
    password: &str,
    db: &str,
    args: &[String],
    stdin: Option<&str>,
) -> Output {
    use std::io::Write;
    let bin = pggat::cluster::bin_dir()
        .expect("postgres binaries")
        .join("psql");
    let mut child = std::process::Command::new(bin)
        .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
        .arg("-h")
        .arg(addr.ip().to_string())
        .arg("-p")
        .arg(addr.port().to_string())
        .arg("-U")
        .arg(user)
        .arg("-d")
        .arg(db)
        .args(args)
        .env("PGPASSWORD", password)
        .env("PGCONNECT_TIMEOUT", "10")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run psql");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("psql output")
}

/// A Gatfile listening on 127.0.0.1:0 with one pool for `role` on
/// `cluster`, routed by database `db` (clients use the role's own name and
/// password). The builder methods add lines where they belong.
pub struct PoolFile {
    address: String,
    db: String,
    role: Role,
    max: u32,
    mode: &'static str,
    listen: String,
    server_lines: String,
    pool_lines: String,
    basic_lines: String,
}

impl PoolFile {
    /// `pool basic session`.
    pub fn session(cluster: &Cluster, db: &str, role: Role, max: u32) -> PoolFile {
        PoolFile::new(cluster, db, role, max, "session")
    }

    /// `pool basic transaction`.
    pub fn transaction(cluster: &Cluster, db: &str, role: Role, max: u32) -> PoolFile {
        PoolFile::new(cluster, db, role, max, "transaction")
    }

    /// `pool basic statement`.
    pub fn statement(cluster: &Cluster, db: &str, role: Role, max: u32) -> PoolFile {
        PoolFile::new(cluster, db, role, max, "statement")
    }

    fn new(cluster: &Cluster, db: &str, role: Role, max: u32, mode: &'static str) -> PoolFile {
        PoolFile {
            address: cluster.address(),
            db: db.to_owned(),
            role,
            max,
            mode,
            listen: "127.0.0.1:0".to_owned(),
            server_lines: String::new(),
            pool_lines: String::new(),
            basic_lines: String::new(),
        }
    }

    /// Another listen address of the server block.
    pub fn listen_also(mut self, address: &str) -> PoolFile {
        self.listen = format!("{} {address}", self.listen);
        self
    }

    /// A line of the server block, before the pool (a matcher, `ssl`...).
    pub fn server_line(mut self, line: &str) -> PoolFile {
        self.server_lines += &format!("    {line}\n");
        self
    }

    /// A line of the pool block (a timeout, `ssl`...).
    pub fn pool_line(mut self, line: &str) -> PoolFile {
        self.pool_lines += &format!("        {line}\n");
        self
    }

    /// A line of the `pool basic` block.
    pub fn basic_line(mut self, line: &str) -> PoolFile {
        self.basic_lines += &format!("            {line}\n");
        self
    }

    /// The Gatfile text.
    pub fn text(&self) -> String {
        let basic = if self.mode == "session" && self.basic_lines.is_empty() {
            "pool basic session\n".to_owned()
        } else {
            format!(
                "pool basic {} {{\n{}\n        }}\n",
                self.mode, self.basic_lines
            )
        };
        format!(
            "{listen} {{\n{server}    pool /{db} {{\n        address {addr}\n        username {user}\n        password \"{pw}\"\n        database postgres\n        max_connections {max}\n{pool}        {basic}    }}\n}}\n",
            listen = self.listen,
            server = self.server_lines,
            db = self.db,
            addr = self.address,
            user = self.role.name,
            pw = if self.role.password.is_empty() {
                "unused"
            } else {
                self.role.password
            },
            max = self.max,
            pool = self.pool_lines,
        )
    }
}

/// A session-mode pool for `role` on `cluster`, routed by database `db`.
pub fn session_pool(cluster: &Cluster, db: &str, role: Role, max: u32) -> String {
    PoolFile::session(cluster, db, role, max).text()
}

/// A transaction-mode pool for `role` on `cluster`, routed by database
/// `db`, with extra lines for the `pool basic transaction` block.
pub fn transaction_pool(cluster: &Cluster, db: &str, role: Role, max: u32, extra: &str) -> String {
    let file = PoolFile::transaction(cluster, db, role, max);
    if extra.is_empty() {
        file.text()
    } else {
        file.basic_line(extra.trim()).text()
    }
}

/// Polls `f` every 20 ms until it holds or `limit` passes.
pub async fn eventually(limit: Duration, mut f: impl AsyncFnMut() -> bool) -> bool {
    let end = tokio::time::Instant::now() + limit;
    loop {
        if f().await {
            return true;
        }
        if tokio::time::Instant::now() > end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Fails the test with the command's stderr unless it succeeded.
pub fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The PostgreSQL backend serving `client`'s current statement.
pub async fn backend_pid(client: &tokio_postgres::Client) -> i32 {
    client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0)
}

/// The server's message for a tokio-postgres error (its Display says only "db error").
pub fn message(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map_or_else(|| e.to_string(), |d| d.message().to_owned())
}

/// The SQLSTATE of a tokio-postgres error, if the server sent one.
pub fn sqlstate(e: &tokio_postgres::Error) -> Option<String> {
    e.as_db_error().map(|d| d.code().code().to_owned())
}

/// A minimal raw client for the startup phase: sends a StartupMessage and
/// returns the first message the server answers with (tag, body).
pub async fn raw_startup(addr: SocketAddr, user: &str, db: &str) -> (u8, Vec<u8>) {
    use tokio::io::AsyncWriteExt;
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut body = Vec::new();
    body.extend_from_slice(&196608i32.to_be_bytes());
    for (k, v) in [("user", user), ("database", db)] {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut pkt = ((body.len() + 4) as i32).to_be_bytes().to_vec();
    pkt.extend_from_slice(&body);
    s.write_all(&pkt).await.unwrap();
    read_message(&mut s).await.expect("a reply")
}

/// Logs in as `user` to `db` over a raw socket (to a pggat that asks no
/// password: a `trust` line) and reads up to the first ReadyForQuery.
pub async fn raw_login(addr: SocketAddr, user: &str, db: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut body = 196608i32.to_be_bytes().to_vec();
    for part in ["user", user, "database", db, ""] {
        body.extend_from_slice(part.as_bytes());
        body.push(0);
    }
    let mut packet = ((body.len() + 4) as i32).to_be_bytes().to_vec();
    packet.extend_from_slice(&body);
    s.write_all(&packet).await.unwrap();
    while let Some((tag, body)) = read_message(&mut s).await {
        match tag {
            b'Z' => return s,
            b'E' => panic!("login refused: {}", String::from_utf8_lossy(&body)),
            _ => {}
        }
    }
    panic!("no ReadyForQuery after login");
}

/// Reads one tagged message from a raw socket; `None` on EOF.
pub async fn read_message(s: &mut tokio::net::TcpStream) -> Option<(u8, Vec<u8>)> {
    use tokio::io::AsyncReadExt;
    let mut head = [0u8; 5];
    s.read_exact(&mut head).await.ok()?;
    let len = i32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    let mut body = vec![0u8; len - 4];
    s.read_exact(&mut body).await.ok()?;
    Some((head[0], body))
}

/// The SQLSTATE (field 'C') of an ErrorResponse body.
pub fn error_code(body: &[u8]) -> String {
    let mut fields = body.split(|b| *b == 0);
    fields
        .find_map(|f| {
            f.strip_prefix(b"C")
                .map(|c| String::from_utf8_lossy(c).into_owned())
        })
        .unwrap_or_default()
}
