//! Throwaway local PostgreSQL clusters, from the installed PostgreSQL
//! binaries: used by `pggat demo`, the end-to-end tests and the benchmark.
//!
//! A cluster lives in a temporary directory, listens on 127.0.0.1 on a free
//! port and on a unix socket in its directory, and is stopped and deleted on
//! drop. PostgreSQL refuses to run as root, so when we are root every server
//! command runs as the `postgres` user. A detached guardian process also stops
//! the cluster if this process dies without running destructors (a test
//! binary's statics are never dropped; Ctrl-C kills without unwinding).
//!
//! Each cluster has one role per authentication method, so tests can check
//! pggat's server-side login with all of them: see [`Role`].

use std::fmt::Write as _;
use std::io;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// A login role the cluster creates, with its password and pg_hba method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Role {
    /// Role name.
    pub name: &'static str,
    /// Its password (empty for trust).
    pub password: &'static str,
    /// The pg_hba.conf method that applies to it over TCP.
    pub method: &'static str,
}

/// `trust` over TCP.
pub const TRUST: Role = Role {
    name: "pggat_trust",
    password: "",
    method: "trust",
};
/// `password` (cleartext) over TCP.
pub const CLEARTEXT: Role = Role {
    name: "pggat_cleartext",
    password: "cleartext-secret",
    method: "password",
};
/// `md5`, with the password stored as an md5 hash.
pub const MD5: Role = Role {
    name: "pggat_md5",
    password: "md5-secret",
    method: "md5",
};
/// `scram-sha-256`.
pub const SCRAM: Role = Role {
    name: "pggat_scram",
    password: "scram-secret",
    method: "scram-sha-256",
};
/// Every role the cluster creates.
pub const ROLES: [Role; 4] = [TRUST, CLEARTEXT, MD5, SCRAM];

/// How to set a cluster up.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Extra postgresql.conf lines.
    pub conf: Vec<String>,
    /// Extra pg_hba.conf lines, placed before the defaults.
    pub hba: Vec<String>,
    /// Files written into the data directory before the start, readable by
    /// the server's user only (TLS certificates and keys): name, content.
    pub files: Vec<(String, String)>,
}

/// A running throwaway cluster. See the module docs.
#[derive(Debug)]
pub struct Cluster {
    dir: tempfile::TempDir,
    data: PathBuf,
    bin: PathBuf,
    port: u16,
    owner: Option<(u32, u32)>,
}

impl Cluster {
    /// initdb, configure, start, create the roles. Blocks until PostgreSQL
    /// accepts connections.
    pub fn start(opts: &Options) -> io::Result<Cluster> {
        let bin = bin_dir()?;
        let mut cluster = Cluster::empty(bin, server_owner()?)?;
        cluster.run_checked(cluster.cmd("initdb").arg("-D").arg(&cluster.data).args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
            "--no-instructions",
        ]))?;
        let mut hba = String::new();
        for line in &opts.hba {
            writeln!(hba, "{line}").ok();
        }
        hba.push_str("local all all trust\nhost all postgres 127.0.0.1/32 trust\n");
        for role in ROLES {
            writeln!(hba, "host all {} 127.0.0.1/32 {}", role.name, role.method).ok();
        }
        hba.push_str("host all all 127.0.0.1/32 scram-sha-256\n");
        hba.push_str("host replication all 127.0.0.1/32 trust\n");
        cluster.write_owned(&cluster.data.join("pg_hba.conf"), &hba)?;
        for (name, content) in &opts.files {
            let path = cluster.data.join(name);
            cluster.write_owned(&path, content)?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        }

        cluster.start_on_free_port(|port, dir| {
            let mut conf = format!(
                "listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{dir}'\n\
                 fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n\
                 max_connections = 300\nshared_buffers = 32MB\nmax_wal_senders = 10\n\
                 wal_level = replica\nhot_standby = on\nlog_min_messages = warning\n"
            );
            for line in &opts.conf {
                writeln!(conf, "{line}").ok();
            }
            conf
        })?;
        cluster.spawn_guardian()?;

        let mut sql = String::from("SET password_encryption = 'scram-sha-256';\n");
        for role in ROLES {
            if role.method == "md5" {
                sql.push_str("SET password_encryption = 'md5';\n");
            }
            if role.password.is_empty() {
                writeln!(sql, "CREATE ROLE {} LOGIN;", role.name).ok();
            } else {
                writeln!(
                    sql,
                    "CREATE ROLE {} LOGIN PASSWORD '{}';",
                    role.name, role.password
                )
                .ok();
            }
            writeln!(sql, "GRANT ALL ON SCHEMA public TO {};", role.name).ok();
            if role.method == "md5" {
                sql.push_str("SET password_encryption = 'scram-sha-256';\n");
            }
        }
        cluster.sql("postgres", &sql)?;
        Ok(cluster)
    }

    /// A streaming replica of this cluster: a base backup (`pg_basebackup -R`,
    /// WAL streamed) started as a hot standby on its own free port. It has the
    /// primary's roles, data and settings, and follows it until stopped.
    pub fn replica(&self) -> io::Result<Cluster> {
        let mut replica = Cluster::empty(self.bin.clone(), self.owner)?;
        replica.run_checked(
            replica
                .cmd("pg_basebackup")
                .args(["-h", "127.0.0.1", "-p"])
                .arg(self.port.to_string())
                .args(["-U", "postgres", "-D"])
                .arg(&replica.data)
                .args(["-R", "-X", "stream", "-c", "fast", "--no-sync"]),
        )?;
        // The copy carries the primary's settings and, from -R, how to reach
        // it: keep all of that but where the primary listens.
        let copied = std::fs::read_to_string(replica.data.join("postgresql.auto.conf"))?;
        let kept: String = copied
            .lines()
            .filter(|l| !l.starts_with("port") && !l.starts_with("unix_socket_directories"))
            .map(|l| format!("{l}\n"))
            .collect();
        replica.start_on_free_port(|port, dir| {
            format!("{kept}port = {port}\nunix_socket_directories = '{dir}'\n")
        })?;
        replica.spawn_guardian()?;
        Ok(replica)
    }

    /// Stops applying WAL (a standby only): it keeps receiving but falls
    /// behind, until [`Cluster::resume_replay`]. Returns once replay has
    /// really stopped (`pg_wal_replay_pause` only asks; the startup process
    /// may apply a few more records first), so what the primary writes next
    /// is surely not replayed.
    pub fn pause_replay(&self) -> io::Result<()> {
        self.sql("postgres", "SELECT pg_wal_replay_pause()")?;
        let paused = wait_until(Duration::from_secs(20), Duration::from_millis(10), || {
            self.sql("postgres", "SELECT pg_get_wal_replay_pause_state()")
                .is_ok_and(|s| s == "paused")
        });
        if paused {
            Ok(())
        } else {
            Err(io::Error::other("replay did not pause within 20 s"))
        }
    }

    /// Applies WAL again after [`Cluster::pause_replay`].
    pub fn resume_replay(&self) -> io::Result<()> {
        self.sql("postgres", "SELECT pg_wal_replay_resume()")
            .map(drop)
    }

    /// Waits until this standby has replayed everything `primary` had
    /// written when called; false if `limit` passed first.
    pub fn catch_up(&self, primary: &Cluster, limit: Duration) -> io::Result<bool> {
        // The insert position: with synchronous_commit off, a commit may
        // not be written out yet, but it is owed to the standby.
        let lsn = primary.sql("postgres", "SELECT pg_current_wal_insert_lsn()")?;
        let query = format!("SELECT pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn");
        Ok(wait_until(limit, Duration::from_millis(20), || {
            self.sql("postgres", &query).is_ok_and(|s| s == "t")
        }))
    }

    /// TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Directory holding the unix socket `.s.PGSQL.PORT`.
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// Directory of the PostgreSQL binaries in use.
    pub fn bin_dir(&self) -> &Path {
        &self.bin
    }

    /// Runs SQL as the superuser over the unix socket, in `database`, with
    /// psql stopping at the first error. Returns psql's stdout.
    pub fn sql(&self, database: &str, sql: &str) -> io::Result<String> {
        let out = self.run_checked(
            Command::new(self.bin.join("psql"))
                .args([
                    "-X",
                    "-q",
                    "-t",
                    "-A",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-U",
                    "postgres",
                ])
                .arg("-h")
                .arg(self.dir.path())
                .arg("-p")
                .arg(self.port.to_string())
                .arg("-d")
                .arg(database)
                .arg("-c")
                .arg(sql),
        )?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Stops the server (fast shutdown), keeping its data.
    pub fn stop(&self) -> io::Result<()> {
        self.run_checked(
            self.cmd("pg_ctl")
                .arg("-D")
                .arg(&self.data)
                .args(["-m", "fast", "-w", "stop"]),
        )
        .map(drop)
    }

    /// Kills the server as a crash would (immediate shutdown: no checkpoint,
    /// connections dropped at once), keeping its data.
    pub fn kill(&self) -> io::Result<()> {
        self.run_checked(self.cmd("pg_ctl").arg("-D").arg(&self.data).args([
            "-m",
            "immediate",
            "-w",
            "stop",
        ]))
        .map(drop)
    }

    /// Starts a stopped server again on the same port.
    pub fn restart(&self) -> io::Result<()> {
        self.pg_ctl_start()
    }

    fn pg_ctl_start(&self) -> io::Result<()> {
        self.run_checked(
            self.cmd("pg_ctl")
                .arg("-D")
                .arg(&self.data)
                .arg("-l")
                .arg(self.dir.path().join("server.log"))
                .args(["-w", "-t", "60", "start"]),
        )
        .map(drop)
    }

    /// A cluster directory with nothing in it yet, owned by the server's user.
    fn empty(bin: PathBuf, owner: Option<(u32, u32)>) -> io::Result<Cluster> {
        let dir = tempfile::Builder::new().prefix("pggat-pg-").tempdir()?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))?;
        }
        let data = dir.path().join("data");
        Ok(Cluster {
            dir,
            data,
            bin,
            port: 0,
            owner,
        })
    }

    /// Writes `postgresql.auto.conf` (from `conf(port, socket_dir)`) and
    /// starts the server, on another free port if the first is taken.
    fn start_on_free_port(&mut self, conf: impl Fn(u16, &str) -> String) -> io::Result<()> {
        let mut last_err = None;
        for _ in 0..5 {
            self.port = free_port()?;
            let text = conf(self.port, &self.dir.path().display().to_string());
            self.write_owned(&self.data.join("postgresql.auto.conf"), &text)?;
            match self.pg_ctl_start() {
                Ok(()) => return Ok(()),
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or_else(|| io::Error::other("could not start PostgreSQL")))
    }

    /// A command for one of the PostgreSQL binaries, as the server's owner.
    fn cmd(&self, name: &str) -> Command {
        let mut c = Command::new(self.bin.join(name));
        if let Some((uid, gid)) = self.owner {
            c.uid(uid).gid(gid);
        }
        c.stdin(Stdio::null())
            .env_remove("PGDATA")
            .current_dir(self.dir.path());
        c
    }

    fn run_checked(&self, cmd: &mut Command) -> io::Result<Output> {
        let out = cmd.stdin(Stdio::null()).output()?;
        if !out.status.success() {
            let log =
                std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
            return Err(io::Error::other(format!(
                "{:?} failed: {}\n{}{}",
                cmd.get_program(),
                out.status,
                String::from_utf8_lossy(&out.stderr),
                log.lines()
                    .rev()
                    .take(20)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n")
            )));
        }
        Ok(out)
    }

    fn write_owned(&self, path: &Path, text: &str) -> io::Result<()> {
        std::fs::write(path, text)?;
        if let Some((uid, gid)) = self.owner {
            std::os::unix::fs::chown(path, Some(uid), Some(gid))?;
        }
        Ok(())
    }

    /// A detached shell that waits for this process to exit, then stops the
    /// postmaster (immediate shutdown) and deletes the directory.
    fn spawn_guardian(&self) -> io::Result<()> {
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
             if [ -f '{data}/postmaster.pid' ]; then kill -QUIT $(head -1 '{data}/postmaster.pid') 2>/dev/null; sleep 2; fi; \
             rm -rf '{dir}'",
            pid = std::process::id(),
            data = self.data.display(),
            dir = self.dir.path().display(),
        );
        Command::new("/bin/sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()?;
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self
            .cmd("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Finds the PostgreSQL server binaries: `$PGGAT_PG_BIN`, else the newest
/// `/usr/lib/postgresql/*/bin` (Debian's layout), else `pg_config --bindir`.
pub fn bin_dir() -> io::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("PGGAT_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").exists() {
            return Ok(dir);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        "PostgreSQL server binaries (initdb, pg_ctl) not found: install PostgreSQL \
         (Debian: apt-get install postgresql) or set PGGAT_PG_BIN",
    ))
}

/// The uid/gid to run PostgreSQL as: the `postgres` user when we are root.
fn server_owner() -> io::Result<Option<(u32, u32)>> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(None);
    }
    match nix::unistd::User::from_name("postgres") {
        Ok(Some(u)) => Ok(Some((u.uid.as_raw(), u.gid.as_raw()))),
        _ => Err(io::Error::new(
            io::ErrorKind::NotFound,
            "running as root, and PostgreSQL refuses root: create a `postgres` user",
        )),
    }
}

/// A TCP port free on 127.0.0.1 at the time of asking.
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Waits for a condition with a deadline, polling at `every`; for scripts and
/// tests that must wait on an external process rather than sleep blindly.
pub fn wait_until(deadline: Duration, every: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + deadline;
    loop {
        if f() {
            return true;
        }
        if std::time::Instant::now() >= end {
            return false;
        }
        std::thread::sleep(every);
    }
}
