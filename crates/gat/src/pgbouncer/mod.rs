//! PgBouncer's configuration: `pgbouncer.ini` with its `auth_file` and `auth_hba_file`, read into typed
//! settings with PgBouncer's defaults and meanings, so pggat can stand in for PgBouncer with the files a
//! team already has.
//!
//! [`load`] reads everything a config names and checks it, so that a running pggat only ever swaps one
//! consistent whole for another (a reload that fails keeps the old one). [`PgBouncer::gatfile`] turns the
//! listener settings into a config with one server block whose only route is `pgbouncer FILE`: what
//! `pggat pgbouncer FILE` runs.

pub mod databases;
pub mod hba;
pub mod ini;
pub mod settings;
pub mod userlist;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use databases::{Database, User};
pub use settings::{KNOWN, Known, Support, Values};
pub use userlist::Credential;

use crate::error::{Error, Pos, Result, Span};
use crate::syntax::Environment;
use crate::{PoolMode, SslMode};

/// How clients prove who they are (`auth_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthType {
    /// No check; the user must still be in the auth_file (or found by auth_query).
    Trust,
    /// No check at all, and the user name is not looked up.
    Any,
    /// Password in clear text.
    Plain,
    /// MD5, or SCRAM when the stored secret is a SCRAM verifier.
    Md5,
    /// SCRAM-SHA-256.
    ScramSha256,
    /// As the first matching line of `auth_hba_file` says.
    Hba,
}

/// TLS towards clients (`client_tls_sslmode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientTls {
    /// No TLS offered.
    Disable,
    /// Offered; plain connections welcome (`allow` and `prefer`).
    Offer,
    /// Required.
    Require,
}

/// A whole PgBouncer configuration. See the module docs.
#[derive(Debug, Clone, PartialEq)]
pub struct PgBouncer {
    /// The ini file.
    pub path: PathBuf,
    /// Every `[pgbouncer]` setting, written or defaulted (SHOW CONFIG).
    pub values: Values,
    /// `[databases]` entries other than `*`, in file order.
    pub databases: Vec<Database>,
    /// The `*` entry: where clients asking for an unlisted database go.
    pub fallback: Option<Database>,
    /// `[users]` entries.
    pub users: Vec<User>,
    /// The auth_file's users.
    pub credentials: Vec<Credential>,
    /// The hba rules, when `auth_type = hba`.
    pub hba: Vec<hba::Rule>,
    /// `auth_type`.
    pub auth_type: AuthType,
    /// `pool_mode`.
    pub pool_mode: PoolMode,
    /// `client_tls_sslmode`.
    pub client_tls: ClientTls,
    /// `server_tls_sslmode`.
    pub server_tls: SslMode,
}

impl PgBouncer {
    /// A database entry by the name a client asked for; the `*` entry for other names.
    pub fn database(&self, name: &str) -> Option<&Database> {
        self.databases
            .iter()
            .find(|d| d.name == name)
            .or(self.fallback.as_ref())
    }

    /// A `[users]` entry.
    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.iter().find(|u| u.name == name)
    }

    /// A user's auth_file secret.
    pub fn secret(&self, user: &str) -> Option<&str> {
        self.credentials
            .iter()
            .find(|c| c.user == user)
            .map(|c| c.secret.as_str())
    }

    /// Settings that have no effect in pggat and were set: named in a warning at start.
    pub fn ignored(&self) -> Vec<&'static str> {
        self.values
            .written(Support::Ignored)
            .map(|(k, _)| k.name)
            .collect()
    }

    /// The config `pggat pgbouncer FILE` runs: `listen_addr`/`listen_port` and the unix socket in
    /// `unix_socket_dir`, TLS from `client_tls_*`, and one route handing every client to this file.
    pub fn gatfile(&self) -> Result<crate::Config> {
        let v = &self.values;
        let port = u16::try_from(v.int("listen_port")?).map_err(|_| {
            Error::at(
                &pos_of(v, "listen_port", &self.path),
                format!("listen_port = {}", v.get("listen_port")),
                "a port number",
            )
        })?;
        let mut listen = Vec::new();
        for addr in v.list("listen_addr") {
            let host = match addr.as_str() {
                "*" => String::new(),
                a => a.trim_start_matches('[').trim_end_matches(']').to_owned(),
            };
            listen.push(crate::ListenAddr::Tcp { host, port });
        }
        if let Some(dir) = v.text("unix_socket_dir") {
            listen.push(crate::ListenAddr::Unix(
                Path::new(&dir).join(format!(".s.PGSQL.{port}")),
            ));
        }
        if listen.is_empty() {
            return Err(Error::at(
                &Pos::file_only(self.path.to_string_lossy().as_ref()),
                "neither listen_addr nor unix_socket_dir",
                "somewhere to listen: listen_addr = 127.0.0.1, say",
            ));
        }
        let span = Span::at(&Pos::file_only(self.path.to_string_lossy().as_ref()));
        let ssl = match self.client_tls {
            ClientTls::Disable => None,
            ClientTls::Offer | ClientTls::Require => Some(crate::ServerSsl::X509KeyPair {
                cert_file: v.text("client_tls_cert_file").unwrap_or_default().into(),
                key_file: v.text("client_tls_key_file").unwrap_or_default().into(),
            }),
        };
        Ok(crate::Config {
            global: crate::Global {
                stat_log_period: if v.flag("log_stats")? {
                    v.timeout("stats_period")?
                } else {
                    None
                },
                admin: None,
                threads: None,
                // SIGTERM waits for clients to leave, as PgBouncer's; a second signal ends it at once.
                shutdown_timeout: Duration::from_secs(u64::from(u32::MAX)),
            },
            servers: vec![crate::Server {
                listen: listen
                    .into_iter()
                    .map(|addr| crate::Listen {
                        scheme: crate::Scheme::Postgres,
                        addr,
                        span: span.clone(),
                    })
                    .collect(),
                ssl,
                max_connections: None,
                routes: vec![crate::Route {
                    matcher: None,
                    handler: crate::Handler::Pgbouncer(self.path.clone()),
                    span: span.clone(),
                }],
                span,
            }],
        })
    }
}

/// Reads the file a setting names (`from` is where it was set): its name
/// for positions, and its text.
fn read_named(
    path: &Path,
    env: &dyn Environment,
    from: &Pos,
    setting: &str,
) -> Result<(std::sync::Arc<str>, String)> {
    let text = env.read(path).map_err(|e| {
        Error::at(
            from,
            format!("cannot read {setting} {}: {e}", path.display()),
            format!("a readable {setting}"),
        )
    })?;
    Ok((path.to_string_lossy().into(), text))
}

/// Where line `n` (from 0) of `file` starts its text.
fn line_start(file: &std::sync::Arc<str>, n: usize, line: &str) -> Pos {
    Pos {
        file: file.clone(),
        line: u32::try_from(n + 1).unwrap_or(u32::MAX),
        col: u32::try_from(line.len() - line.trim_start().len() + 1).unwrap_or(u32::MAX),
    }
}

fn pos_of(values: &Values, name: &str, path: &Path) -> Pos {
    values
        .pos(name)
        .cloned()
        .unwrap_or_else(|| Pos::file_only(path.to_string_lossy().as_ref()))
}

/// Reads `path` and the files it names from the real file system.
pub fn load(path: &Path) -> Result<PgBouncer> {
    load_with(path, &crate::System)
}

/// [`load`] with a chosen [`Environment`].
pub fn load_with(path: &Path, env: &dyn Environment) -> Result<PgBouncer> {
    let sections = ini::read(path, env)?;
    let mut values = Values::default();
    let mut databases = Vec::new();
    let mut fallback = None;
    let mut users = Vec::new();
    for section in &sections {
        match section.name.as_str() {
            "pgbouncer" => {
                for e in &section.entries {
                    values.set(&e.key, &e.value, Some(e.value_pos.clone()))?;
                }
            }
            "databases" => {
                for e in &section.entries {
                    let db = databases::database(e)?;
                    if db.name == "*" {
                        fallback = Some(db);
                    } else {
                        databases.retain(|d: &Database| d.name != db.name);
                        databases.push(db);
                    }
                }
            }
            "users" => {
                for e in &section.entries {
                    let u = databases::user(e)?;
                    users.retain(|x: &User| x.name != u.name);
                    users.push(u);
                }
            }
            "peers" => {
                return Err(Error::at(
                    &section.pos,
                    "a [peers] section",
                    "[pgbouncer], [databases] or [users]: pggat does not forward cancels to peers",
                ));
            }
            other => {
                return Err(Error::at(
                    &section.pos,
                    format!("section [{other}]"),
                    "[pgbouncer], [databases] or [users]",
                ));
            }
        }
    }
    check(path, env, values, databases, fallback, users)
}

/// Checks and types `values`, and reads the files they name.
pub fn check(
    path: &Path,
    env: &dyn Environment,
    values: Values,
    databases: Vec<Database>,
    fallback: Option<Database>,
    users: Vec<User>,
) -> Result<PgBouncer> {
    if let Some((k, pos)) = values.written(Support::Refused).next() {
        let set = Pos::file_only("SET");
        return Err(Error::at(
            pos.unwrap_or(&set),
            format!("{} = {}", k.name, values.get(k.name)),
            format!(
                "{} left at its default ({:?}): pggat does not implement it",
                k.name, k.default
            ),
        ));
    }
    let at = |name: &str| pos_of(&values, name, path);
    let auth_type = match values.get("auth_type").trim().to_ascii_lowercase().as_str() {
        "trust" => AuthType::Trust,
        "any" => AuthType::Any,
        "plain" => AuthType::Plain,
        "md5" => AuthType::Md5,
        "scram-sha-256" => AuthType::ScramSha256,
        "hba" => AuthType::Hba,
        other => {
            return Err(Error::at(
                &at("auth_type"),
                format!("auth_type = {other}"),
                "trust, any, plain, md5, scram-sha-256 or hba (cert, pam and ldap are not implemented)",
            ));
        }
    };
    let pool_mode = databases::pool_mode(values.get("pool_mode")).ok_or_else(|| {
        Error::at(
            &at("pool_mode"),
            format!("pool_mode = {}", values.get("pool_mode")),
            "session, transaction or statement",
        )
    })?;
    let client_tls = match values.get("client_tls_sslmode").trim() {
        "disable" => ClientTls::Disable,
        "allow" | "prefer" => ClientTls::Offer,
        "require" => ClientTls::Require,
        other => {
            return Err(Error::at(
                &at("client_tls_sslmode"),
                format!("client_tls_sslmode = {other}"),
                "disable, allow, prefer or require (verify-ca and verify-full need client certificates, which pggat does not check)",
            ));
        }
    };
    if client_tls != ClientTls::Disable {
        for name in ["client_tls_cert_file", "client_tls_key_file"] {
            if values.text(name).is_none() {
                return Err(Error::at(
                    &at("client_tls_sslmode"),
                    format!(
                        "client_tls_sslmode = {} without {name}",
                        values.get("client_tls_sslmode")
                    ),
                    "client_tls_key_file and client_tls_cert_file",
                ));
            }
        }
    }
    let server_tls = match values.get("server_tls_sslmode").trim() {
        "disable" => SslMode::Disable,
        "allow" => SslMode::Allow,
        "prefer" => SslMode::Prefer,
        "require" => SslMode::Require,
        "verify-ca" => SslMode::VerifyCa,
        "verify-full" => SslMode::VerifyFull,
        other => {
            return Err(Error::at(
                &at("server_tls_sslmode"),
                format!("server_tls_sslmode = {other}"),
                "disable, allow, prefer, require, verify-ca or verify-full",
            ));
        }
    };
    if matches!(server_tls, SslMode::VerifyCa | SslMode::VerifyFull)
        && values.text("server_tls_ca_file").is_none()
    {
        return Err(Error::at(
            &at("server_tls_sslmode"),
            format!(
                "server_tls_sslmode = {} without server_tls_ca_file",
                values.get("server_tls_sslmode")
            ),
            "server_tls_ca_file naming the CA that signed the servers' certificates",
        ));
    }
    // Every typed setting, so a bad value is an error now rather than when a client arrives.
    for k in KNOWN.iter().filter(|k| k.support == Support::Used) {
        match k.name {
            "default_pool_size"
            | "min_pool_size"
            | "reserve_pool_size"
            | "max_client_conn"
            | "max_db_connections"
            | "max_user_connections"
            | "max_prepared_statements"
            | "listen_port" => {
                values.int(k.name)?;
            }
            "server_reset_query_always" => {
                values.flag(k.name)?;
            }
            n if n.ends_with("_timeout")
                || n.ends_with("_lifetime")
                || n.ends_with("_delay")
                || n == "server_login_retry"
                || n == "stats_period" =>
            {
                values.time(k.name)?;
            }
            _ => {}
        }
    }
    let dir = path.parent().unwrap_or(Path::new(""));
    let credentials = match values.text("auth_file") {
        Some(file) => userlist::read(&dir.join(&file), env, &at("auth_file"))?,
        None => Vec::new(),
    };
    let hba = match (auth_type, values.text("auth_hba_file")) {
        (AuthType::Hba, Some(file)) => hba::read(&dir.join(&file), env, &at("auth_hba_file"))?,
        (AuthType::Hba, None) => {
            return Err(Error::at(
                &at("auth_type"),
                "auth_type = hba without auth_hba_file",
                "auth_hba_file naming the rules",
            ));
        }
        _ => Vec::new(),
    };
    Ok(PgBouncer {
        path: path.to_owned(),
        values,
        databases,
        fallback,
        users,
        credentials,
        hba,
        auth_type,
        pool_mode,
        client_tls,
        server_tls,
    })
}

#[cfg(test)]
pub(crate) mod testing {
    use std::collections::HashMap;
    use std::io;
    use std::path::{Path, PathBuf};

    /// Files in memory.
    pub struct Files(HashMap<PathBuf, String>);

    impl Files {
        pub fn new(files: &[(&str, &str)]) -> Files {
            Files(
                files
                    .iter()
                    .map(|(p, t)| (PathBuf::from(p), (*t).to_owned()))
                    .collect(),
            )
        }
    }

    impl crate::Environment for Files {
        fn var(&self, _: &str) -> Option<String> {
            None
        }
        fn read(&self, path: &Path) -> io::Result<String> {
            self.0
                .get(path)
                .cloned()
                .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
        }
        fn list(&self, _: &Path) -> io::Result<Vec<PathBuf>> {
            Ok(Vec::new())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::Files;
    use super::*;

    const INI: &str = "[databases]\napp = host=127.0.0.1 port=5432 dbname=app_prod\n* = host=127.0.0.1\n\n[users]\nalice = pool_mode=transaction\n\n[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = 6543\nauth_type = scram-sha-256\nauth_file = users.txt\nadmin_users = admin\nlogfile = /var/log/pgbouncer.log\n";

    #[test]
    fn a_whole_config() {
        let files = Files::new(&[
            ("/etc/p/pgbouncer.ini", INI),
            ("/etc/p/users.txt", "\"alice\" \"secret\"\n"),
        ]);
        let p = load_with(Path::new("/etc/p/pgbouncer.ini"), &files).unwrap();
        assert_eq!(p.auth_type, AuthType::ScramSha256);
        assert_eq!(p.pool_mode, PoolMode::Session);
        assert_eq!(
            p.database("app").unwrap().dbname.as_deref(),
            Some("app_prod")
        );
        assert_eq!(p.database("other").unwrap().name, "*");
        assert_eq!(
            p.user("alice").unwrap().pool_mode,
            Some(PoolMode::Transaction)
        );
        assert_eq!(p.secret("alice"), Some("secret"));
        assert_eq!(p.ignored(), ["logfile"]);
        let g = p.gatfile().unwrap();
        let listen: Vec<String> = g.servers[0]
            .listen
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(listen, ["127.0.0.1:6543", "/tmp/.s.PGSQL.6543"]);
        assert_eq!(
            g.servers[0].routes[0].handler,
            crate::Handler::Pgbouncer("/etc/p/pgbouncer.ini".into())
        );
    }

    #[test]
    fn refusals_name_the_setting() {
        for (extra, want) in [
            (
                "pool_mode = stmt\n",
                "pool_mode = stmt, expected session, transaction or statement",
            ),
            (
                "server_fast_close = 1\n",
                "server_fast_close = 1, expected server_fast_close left at its default",
            ),
            (
                "auth_type = cert\n",
                "cert, pam and ldap are not implemented",
            ),
            ("auth_type = hba\n", "auth_type = hba without auth_hba_file"),
            (
                "client_tls_sslmode = require\n",
                "without client_tls_cert_file",
            ),
            (
                "max_client_conn = many\n",
                "max_client_conn = \"many\", expected a non-negative integer",
            ),
            (
                "query_timeout = soon\n",
                "query_timeout = \"soon\", expected seconds",
            ),
            ("listen_prot = 1\n", "unknown setting \"listen_prot\""),
        ] {
            let text = format!("{INI}{extra}");
            let files = Files::new(&[("p.ini", &text), ("users.txt", "")]);
            let err = load_with(Path::new("p.ini"), &files)
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with("p.ini:") && err.contains(want),
                "{extra}: {err}"
            );
        }
        let files = Files::new(&[("p.ini", "[peers]\n1 = host=x\n")]);
        assert!(
            load_with(Path::new("p.ini"), &files)
                .unwrap_err()
                .to_string()
                .contains("[peers]")
        );
    }
}
