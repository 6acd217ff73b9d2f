//! Serving clients as PgBouncer would with the same `pgbouncer.ini`: its
//! databases, users, auth_file, auth_query, hba rules and pool settings
//! become pggat pools, and the virtual database `pgbouncer` is the admin
//! console ([`console`]).
//!
//! A [`Bouncer`] is made per `pgbouncer` route when a config loads (so a bad
//! ini is refused before anything changes) and is replaced on reload; what
//! must outlive a reload (paused and disabled databases, client counts, the
//! shared connection ceilings) is in [`State`], carried over.
//!
//! Pools are per (database entry, pool user), as in PgBouncer: the pool user
//! is the database's forced `user=` or the client's own. Their settings are
//! PgBouncer's, mapped onto [`gat::Pool`]; the router's registry holds them
//! under a key made of those settings, so a reload keeps exactly the pools
//! whose settings did not change.

pub mod auth_query;
pub mod console;
mod show;

pub use show::version_line;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use fed::sqlstate::SqlState;
use gat::pgbouncer::{AuthType, PgBouncer, hba};
use parking_lot::Mutex;

use crate::client::startup::Startup;
use crate::clients::{Counted, Tallied, Tally};
use crate::errors::ClientError;
use crate::route::{AuthPlan, Extras, PoolEntry, Resolved, Router};

/// The admin console's database name.
pub const CONSOLE_DB: &str = "pgbouncer";

/// A console user's rights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// `admin_users`: everything.
    Admin,
    /// `stats_users`: SHOW only.
    Stats,
}

/// What survives reloads. See the module docs.
#[derive(Debug, Default)]
pub struct State {
    /// Databases paused by PAUSE/KILL db.
    pub paused: Mutex<HashSet<String>>,
    /// Databases refused by DISABLE.
    pub disabled: Mutex<HashSet<String>>,
    /// Everything paused (PAUSE, SUSPEND without a database).
    pub pause_all: Mutex<Option<PauseKind>>,
    /// Clients connected (max_client_conn), console clients included.
    pub clients: Arc<AtomicUsize>,
    /// Console clients connected now.
    pub console_clients: Arc<AtomicUsize>,
    /// Clients of each database (max_db_client_connections).
    pub db_clients: Arc<Tally>,
    /// Clients of each login user (max_user_client_connections).
    pub user_clients: Arc<Tally>,
    /// max_db_connections / max_user_connections ceilings.
    limits: Mutex<HashMap<LimitKey, Arc<spool::Limit>>>,
    /// Totals at the last two stats_period ticks, for the averages.
    pub history: Mutex<show::History>,
    /// Settings changed by the console's SET, applied over the ini.
    pub overrides: Mutex<std::collections::BTreeMap<String, String>>,
}

/// How everything is paused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PauseKind {
    /// PAUSE: servers disconnected.
    Pause,
    /// SUSPEND: servers kept, nothing handed out.
    Suspend,
}

/// One loaded `pgbouncer.ini`. See the module docs.
#[derive(Debug)]
pub struct Bouncer {
    /// The configuration.
    pub config: PgBouncer,
    /// What outlives reloads.
    pub state: Arc<State>,
    /// Parameters PgBouncer tracks across servers.
    tracked: Vec<String>,
}

/// Where a client of the ini goes.
pub enum Target {
    /// A pool.
    Pool(Resolved),
    /// The admin console.
    Console {
        /// How the user is checked.
        auth: AuthPlan,
        /// What it may do; `None`: nothing, it is refused once
        /// authenticated.
        role: Option<Role>,
    },
}

impl Bouncer {
    /// Reads `path`; `previous` is the bouncer of the same file in the config
    /// being replaced.
    pub fn load(path: &Path, previous: Option<&Bouncer>) -> Result<Bouncer, String> {
        let mut config = gat::pgbouncer::load(path).map_err(|e| e.to_string())?;
        let state: Arc<State> = previous.map(|p| p.state.clone()).unwrap_or_default();
        let overrides = state.overrides.lock().clone();
        if !overrides.is_empty() {
            let mut values = config.values.clone();
            for (k, v) in &overrides {
                values.set(k, v, None).map_err(|e| e.to_string())?;
            }
            config = gat::pgbouncer::check(
                path,
                &gat::System,
                values,
                config.databases,
                config.fallback,
                config.users,
            )
            .map_err(|e| format!("SET: {e}"))?;
        }
        let ignored = config.ignored();
        if !ignored.is_empty() {
            tracing::warn!(
                settings = ?ignored,
                "pgbouncer.ini settings with no effect in pggat (see docs/pgbouncer.md)"
            );
        }
        let mut tracked: Vec<String> = [
            "client_encoding",
            "DateStyle",
            "TimeZone",
            "standard_conforming_strings",
            "application_name",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        for extra in config.values.list("track_extra_parameters") {
            if !tracked.iter().any(|t| t.eq_ignore_ascii_case(&extra)) {
                tracked.push(extra);
            }
        }
        let bouncer = Bouncer {
            config,
            state,
            tracked,
        };
        // Every database's server TLS, so a bad CA file fails the load.
        for db in bouncer
            .config
            .databases
            .iter()
            .chain(&bouncer.config.fallback)
        {
            let spec = bouncer.pool_spec(
                db,
                db.user.as_deref().unwrap_or("check"),
                "check",
                None,
                false,
            );
            crate::route::ServerAt::new(&spec.pool, &spec.pool.address)
                .map_err(|e| format!("{}: {e}", db.pos))?;
        }
        Ok(bouncer)
    }

    /// Routes a client: the console, or a pool with how to check it. May
    /// run auth_query (through the auth user's pool).
    pub async fn resolve(
        &self,
        router: &Router,
        startup: &Startup,
        stream: &fed::Stream,
    ) -> Result<(Target, Admitted), ClientError> {
        let mut counted = Admitted {
            _clients: self.count_client(&startup.database)?,
            _per: Vec::new(),
        };
        let tls = stream.is_tls();
        if self.config.client_tls == gat::pgbouncer::ClientTls::Require && !tls {
            return Err(ClientError::fatal(
                SqlState::INVALID_AUTHORIZATION_SPECIFICATION,
                "SSL required",
            )
            .with_hint("client_tls_sslmode = require: connect with sslmode=require"));
        }
        let method = self.method(startup, stream);
        if startup.database == CONSOLE_DB {
            if startup.user == CONSOLE_DB
                && stream.peer_uid() == Some(nix::unistd::getuid().as_raw())
            {
                // PgBouncer's own way in: user `pgbouncer` over the unix
                // socket from a process of the OS user running it, with no
                // password (peer authentication, as scripts and
                // CloudNativePG's operator use it).
                let console = Target::Console {
                    auth: AuthPlan::Trust,
                    role: Some(Role::Admin),
                };
                return Ok((console, counted));
            }
            return self
                .console(router, startup, method)
                .await
                .map(|t| (t, counted));
        }
        let params = self.startup_params(&startup.params)?;
        if self.state.disabled.lock().contains(&startup.database) {
            return Err(ClientError::fatal(
                SqlState::CANNOT_CONNECT_NOW,
                format!("database \"{}\" is disabled", startup.database),
            )
            .with_hint("the admin console's ENABLE turns it back on"));
        }
        let db = self.config.database(&startup.database).ok_or_else(|| {
            ClientError::fatal(
                SqlState::UNDEFINED_DATABASE,
                format!("no such database: {}", startup.database),
            )
            .with_hint("pgbouncer.ini's [databases] has no entry for it and no * fallback")
        })?;
        let max_db = db
            .max_db_client_connections
            .unwrap_or(self.int("max_db_client_connections"));
        let max_user = self
            .config
            .user(&startup.user)
            .and_then(|u| u.max_user_client_connections)
            .unwrap_or(self.int("max_user_client_connections"));
        counted._per.push(count_within(
            &self.state.db_clients,
            &startup.database,
            max_db,
            "max_db_client_connections",
        )?);
        counted._per.push(count_within(
            &self.state.user_clients,
            &startup.user,
            max_user,
            "max_user_client_connections",
        )?);
        let pool_user = db.user.clone().unwrap_or_else(|| startup.user.clone());
        // The client's secret: auth_file first, then auth_query.
        let mut secret = self.config.secret(&startup.user).map(str::to_owned);
        let looked_up = secret.is_none()
            && matches!(method, Method::Trust | Method::Check(_))
            && self.auth_user(db).is_some();
        if looked_up {
            secret = Some(self.auth_query(router, db, &startup.user).await?);
        }
        let check = match method {
            Method::Any => AuthPlan::Trust,
            Method::Trust => {
                if secret.is_none() {
                    return Err(self.refused("\"trust\" authentication failed", &startup.user));
                }
                AuthPlan::Trust
            }
            Method::Reject => return Err(self.refused("login rejected", &startup.user)),
            Method::Check(m) => {
                let Some(s) = &secret else {
                    return Err(self.wrong_password(&startup.user).await);
                };
                AuthPlan::Check(router.prepared(&startup.user, s), Some(m(s)))
            }
        };
        // Servers log in as the forced user with its password, else as the
        // client with its secret.
        let server_secret = match &db.user {
            Some(_) => db.password.clone(),
            None => secret.clone(),
        };
        let spec = self.pool_spec(db, &pool_user, &startup.database, server_secret, false);
        let pool = self.pool(router, spec)?;
        Ok((
            Target::Pool(Resolved {
                pool,
                auth: check,
                params,
            }),
            counted,
        ))
    }

    /// The refusal of a user without a usable secret, after the delay a
    /// wrong password gets, so the two cannot be told apart.
    async fn wrong_password(&self, user: &str) -> ClientError {
        tracing::info!(
            user,
            reason = "wrong password or unknown user",
            "login refused"
        );
        crate::client::auth::wrong_password(user).await
    }

    fn refused(&self, message: &str, user: &str) -> ClientError {
        tracing::info!(user, reason = message, "login refused");
        ClientError::fatal(SqlState::INVALID_PASSWORD, message.to_owned())
    }

    /// An integer setting of the ini (0 when unset).
    pub(crate) fn int(&self, name: &str) -> u32 {
        self.config.values.int(name).unwrap_or(0)
    }

    fn count_client(&self, database: &str) -> Result<Counted, ClientError> {
        let max = self.config.values.int("max_client_conn").unwrap_or(100) as usize;
        let counted = Counted::new(&self.state.clients);
        // The console stays reachable when clients fill every slot.
        if counted.now() > max && database != CONSOLE_DB {
            return Err(ClientError::fatal(
                SqlState::TOO_MANY_CONNECTIONS,
                "no more connections allowed (max_client_conn)",
            )
            .with_hint(format!("max_client_conn = {max} in pgbouncer.ini")));
        }
        Ok(counted)
    }

    /// How this client must prove itself.
    fn method(&self, startup: &Startup, stream: &fed::Stream) -> Method {
        match self.config.auth_type {
            AuthType::Any => Method::Any,
            AuthType::Trust => Method::Trust,
            AuthType::Plain => Method::Check(cleartext),
            AuthType::Md5 => Method::Check(md5_or_scram),
            AuthType::ScramSha256 => Method::Check(scram),
            AuthType::Hba => {
                let client = hba::Client {
                    addr: stream.peer_address().map(|a| a.ip()),
                    tls: stream.is_tls(),
                    user: &startup.user,
                    database: &startup.database,
                };
                match hba::decide(&self.config.hba, &client) {
                    hba::Method::Trust => Method::Trust,
                    hba::Method::Reject => Method::Reject,
                    hba::Method::Password => Method::Check(cleartext),
                    hba::Method::Md5 => Method::Check(md5_or_scram),
                    hba::Method::ScramSha256 => Method::Check(scram),
                }
            }
        }
    }

    /// The console's refusal of an authenticated user in neither
    /// `admin_users` nor `stats_users`.
    pub fn not_allowed() -> ClientError {
        ClientError::fatal(SqlState::INSUFFICIENT_PRIVILEGE, "not allowed")
            .with_hint("the console is for admin_users and stats_users of pgbouncer.ini")
    }

    async fn console(
        &self,
        router: &Router,
        startup: &Startup,
        method: Method,
    ) -> Result<Target, ClientError> {
        let v = &self.config.values;
        let listed = |name| v.list(name).iter().any(|u| u == &startup.user);
        // Judged after the password, as PgBouncer does: who is listed is
        // not told to someone who cannot log in.
        let role = if listed("admin_users") {
            Some(Role::Admin)
        } else if listed("stats_users") {
            Some(Role::Stats)
        } else {
            None
        };
        let secret = self.config.secret(&startup.user);
        let auth = match (method, secret) {
            (Method::Any, _) | (Method::Trust, Some(_)) => AuthPlan::Trust,
            (Method::Check(m), Some(s)) => {
                AuthPlan::Check(router.prepared(&startup.user, s), Some(m(s)))
            }
            _ => {
                return Err(self.wrong_password(&startup.user).await);
            }
        };
        Ok(Target::Console { auth, role })
    }

    /// The client's startup parameters without those PgBouncer ignores;
    /// unknown ones are refused, as PgBouncer refuses them.
    fn startup_params(
        &self,
        params: &[(String, String)],
    ) -> Result<Vec<(String, String)>, ClientError> {
        let ignore = self.config.values.list("ignore_startup_parameters");
        let mut kept = Vec::new();
        for (k, v) in params {
            if ignore.iter().any(|i| i.eq_ignore_ascii_case(k)) {
                continue;
            }
            let known = self.tracked.iter().any(|t| t.eq_ignore_ascii_case(k));
            if !known {
                return Err(ClientError::fatal(
                    SqlState::PROTOCOL_VIOLATION,
                    format!("unsupported startup parameter: {k}"),
                )
                .with_hint("list it in ignore_startup_parameters (or track_extra_parameters) in pgbouncer.ini"));
            }
            kept.push((k.clone(), v.clone()));
        }
        Ok(kept)
    }

    fn auth_user<'a>(&'a self, db: &'a gat::pgbouncer::Database) -> Option<&'a str> {
        db.auth_user.as_deref().or_else(|| {
            self.config
                .values
                .get("auth_user")
                .split_whitespace()
                .next()
        })
    }

    /// The secret auth_query returns for `user`; a missing row or a NULL
    /// password refuses the client.
    async fn auth_query(
        &self,
        router: &Router,
        db: &gat::pgbouncer::Database,
        user: &str,
    ) -> Result<String, ClientError> {
        let auth_user = self.auth_user(db).unwrap_or_default();
        let v = &self.config.values;
        let query = db
            .auth_query
            .clone()
            .unwrap_or_else(|| v.get("auth_query").to_owned());
        let dbname = db
            .auth_dbname
            .clone()
            .or_else(|| v.text("auth_dbname"))
            .or_else(|| db.dbname.clone())
            .unwrap_or_else(|| db.name.clone());
        // The query names pg_authid and now() unqualified: with a fixed
        // search_path, no schema a role or database default puts first can
        // shadow them (CVE-2025-12819). Sent at startup, so it overrides
        // ALTER ROLE/DATABASE ... SET; clients' parameters never reach this
        // pool.
        let mut parameters = db.parameters.clone();
        parameters.retain(|(k, _)| !k.eq_ignore_ascii_case("search_path"));
        parameters.push(("search_path".to_owned(), AUTH_SEARCH_PATH.to_owned()));
        let auth_db = gat::pgbouncer::Database {
            dbname: Some(dbname),
            user: None,
            password: None,
            pool_size: Some(2),
            min_pool_size: Some(0),
            parameters,
            // Nothing of the database's may change what the lookup sees.
            connect_query: None,
            ..db.clone()
        };
        let secret = self.config.secret(auth_user).map(str::to_owned);
        let spec = self.pool_spec(&auth_db, auth_user, &db.name, secret, true);
        let pool = self.pool(router, spec)?;
        let found = auth_query::lookup(&pool, &query, user).await?;
        match found {
            Some(secret) => Ok(secret),
            None => Err(self.wrong_password(user).await),
        }
    }

    /// The pool `spec` describes, made on first use with its shared
    /// ceilings, and paused when its database is.
    fn pool(&self, router: &Router, mut spec: PoolSpec) -> Result<Arc<PoolEntry>, ClientError> {
        spec.extras.limits = spec
            .limits
            .iter()
            .map(|key| {
                let mut limits = self.state.limits.lock();
                let limit = limits.entry(key.clone()).or_insert_with(|| {
                    let setting = if key.0 {
                        "max_user_connections"
                    } else {
                        "max_db_connections"
                    };
                    spool::Limit::new(format!("{setting} of {}", key.1), key.2)
                });
                limit.clone()
            })
            .collect();
        router.pgbouncer_pool(&spec, || self.is_paused(&spec.database))
    }

    /// The pool of database entry `db` for `pool_user`, serving clients that
    /// asked for `client_db`, logging in with `secret`.
    /// `lookup`: the pool auth_query runs through, not one clients use.
    pub(crate) fn pool_spec(
        &self,
        db: &gat::pgbouncer::Database,
        pool_user: &str,
        client_db: &str,
        secret: Option<String>,
        lookup: bool,
    ) -> PoolSpec {
        let v = &self.config.values;
        let user = self.config.user(pool_user);
        let int = |name: &str| self.int(name);
        let secs = |name: &str| v.time(name).unwrap_or_default();
        let timeout = |name: &str| v.timeout(name).unwrap_or_default();
        let port = db.port;
        let address = match db.host.as_deref() {
            Some(h) if h.starts_with('/') => {
                gat::Address::Unix(Path::new(h).join(format!(".s.PGSQL.{port}")))
            }
            Some(h) => gat::Address::tcp(h, port),
            None => gat::Address::Unix(
                Path::new(&v.text("unix_socket_dir").unwrap_or_else(|| "/tmp".into()))
                    .join(format!(".s.PGSQL.{port}")),
            ),
        };
        let pool_size = user
            .and_then(|u| u.pool_size)
            .or(db.pool_size)
            .unwrap_or(int("default_pool_size"));
        let mode = user
            .and_then(|u| u.pool_mode)
            .or(db.pool_mode)
            .unwrap_or(self.config.pool_mode);
        let mut basic = gat::BasicPool::new(mode);
        let reset = v.text("server_reset_query");
        basic.reset_query = match mode {
            gat::PoolMode::Session => reset,
            gat::PoolMode::Transaction | gat::PoolMode::Statement
                if v.flag("server_reset_query_always").unwrap_or(false) =>
            {
                reset
            }
            gat::PoolMode::Transaction | gat::PoolMode::Statement => None,
        };
        basic.idle_timeout = timeout("server_idle_timeout");
        // PgBouncer waits server_login_retry between failed logins; here
        // it is the backoff's ceiling, reached by doubling from 100 ms, so
        // a short outage costs less than the whole wait.
        basic.reconnect_max = secs("server_login_retry");
        basic.reconnect_initial = basic.reconnect_max.min(Duration::from_millis(100));
        basic.track = self.tracked.clone();
        let statements = int("max_prepared_statements");
        basic.extended_query_sync = mode != gat::PoolMode::Session && statements > 0;
        basic.max_prepared_statements = statements.max(1);
        let check_query = v.get("server_check_query");
        let mut pool = gat::Pool::new(address);
        pool.username = Some(pool_user.to_owned());
        pool.password = secret;
        pool.database = Some(db.dbname.clone().unwrap_or_else(|| client_db.to_owned()));
        pool.ssl_mode = self.config.server_tls;
        pool.ssl_root_cert = v.text("server_tls_ca_file").map(Into::into);
        pool.parameters = db.parameters.iter().cloned().collect();
        pool.max_connections = pool_size.max(1);
        pool.min_connections = db
            .min_pool_size
            .unwrap_or(int("min_pool_size"))
            .min(pool.max_connections);
        pool.client_acquire_timeout = timeout("query_wait_timeout");
        pool.server_connect_timeout = secs("server_connect_timeout").max(Duration::from_millis(1));
        pool.server_login_timeout = pool.server_connect_timeout;
        pool.query_timeout = timeout("query_timeout");
        pool.idle_transaction_timeout = timeout("idle_transaction_timeout");
        pool.client_idle_timeout = timeout("client_idle_timeout");
        pool.server_lifetime = match db.server_lifetime {
            Some(d) => (!d.is_zero()).then_some(d),
            None => timeout("server_lifetime"),
        };
        pool.server_check_delay = match check_query.trim() {
            "" => None,
            _ => Some(secs("server_check_delay")),
        };
        pool.connect_query = db.connect_query.clone();
        pool.server_check_query = match check_query.trim() {
            "<empty>" | "" => ";".to_owned(),
            q => q.to_owned(),
        };
        pool.kind = gat::PoolKind::Basic(basic);
        let reserve = user
            .and_then(|u| u.reserve_pool_size)
            .or(db.reserve_pool)
            .unwrap_or(int("reserve_pool_size"));
        let max_db = db.max_db_connections.unwrap_or(int("max_db_connections"));
        let max_user = user
            .and_then(|u| u.max_user_connections)
            .unwrap_or(int("max_user_connections"));
        let limits = [
            (false, &db.name, max_db),
            (true, &pool_user.to_owned(), max_user),
        ]
        .into_iter()
        .filter(|(_, _, max)| *max > 0)
        .map(|(user, name, max)| (user, name.clone(), max as usize))
        .collect();
        let key = format!(
            "{}{}{}\0{}",
            key_prefix(&self.config.path),
            if lookup { LOOKUP } else { "" },
            serde_json::to_string(&pool).unwrap_or_default(),
            serde_json::to_string(&(
                reserve,
                secs("reserve_pool_timeout").as_micros() as u64,
                max_db,
                max_user,
                client_db,
                &db.name
            ))
            .unwrap_or_default(),
        );
        PoolSpec {
            key: key.into(),
            database: client_db.to_owned(),
            pool,
            limits,
            extras: Extras {
                database: Some(client_db.to_owned()),
                reserve: (reserve as usize, secs("reserve_pool_timeout")),
                limits: Vec::new(),
            },
        }
    }

    /// Whether a database is paused (by name, or everything).
    pub fn is_paused(&self, db: &str) -> bool {
        self.state.pause_all.lock().is_some() || self.state.paused.lock().contains(db)
    }
}

/// Counts a client under `name` in `counts`, refusing it past `max` (0: no
/// ceiling): max_db_client_connections and max_user_client_connections.
fn count_within(
    counts: &Arc<Tally>,
    name: &str,
    max: u32,
    setting: &str,
) -> Result<Tallied, ClientError> {
    let (counted, now) = counts.add(name);
    if max > 0 && now > max as usize {
        return Err(ClientError::fatal(
            SqlState::TOO_MANY_CONNECTIONS,
            format!("client connections exceeded ({setting})"),
        )
        .with_hint(format!("{setting} = {max} for {name}")));
    }
    Ok(counted)
}

/// A pgbouncer.ini client's place under max_client_conn and the
/// per-database and per-user client ceilings, held while it is connected.
#[derive(Debug)]
pub struct Admitted {
    _clients: Counted,
    _per: Vec<Tallied>,
}

/// What every registry key of the pools of the ini at `path` starts with.
fn key_prefix(path: &Path) -> String {
    format!("pgbouncer\0{}\0", path.display())
}

/// The search_path auth_query runs with: the system catalogs, and temporary
/// objects only after them.
const AUTH_SEARCH_PATH: &str = "pg_catalog, pg_temp";

/// What follows the prefix in the key of an auth_query pool.
const LOOKUP: &str = "auth_query\0";

/// Whether a registry key is that of a pool clients of the ini at `path`
/// use (not one auth_query runs through).
pub fn serves_clients(path: &Path, key: &str) -> bool {
    key.strip_prefix(&key_prefix(path))
        .is_some_and(|rest| !rest.starts_with(LOOKUP))
}

impl Bouncer {
    /// Whether a pool of the config being replaced, kept under `key`, is
    /// what this config would make for the same database and user: then it
    /// is carried over with its servers and clients.
    pub fn keeps(&self, key: &(Arc<str>, String, String), entry: &PoolEntry) -> bool {
        if !serves_clients(&self.config.path, &key.0) {
            return false;
        }
        let Some(db) = self.config.database(&entry.database) else {
            return false;
        };
        let spec = self.pool_spec(
            db,
            &key.1,
            &entry.database,
            entry.config.password.clone(),
            false,
        );
        spec.key == key.0
    }
}

/// A pool made from the ini: its settings and the key it is kept under.
pub(crate) struct PoolSpec {
    /// Registry key: every setting that makes it what it is.
    pub key: Arc<str>,
    /// The database name its clients use.
    pub database: String,
    /// Its shared ceilings: (per user, name, max).
    pub limits: Vec<LimitKey>,
    /// Its settings as a pggat pool.
    pub pool: gat::Pool,
    /// What a Gatfile pool does not have.
    pub extras: Extras,
}

/// A shared ceiling: whether it is a user's (else a database's), the name,
/// the most servers.
pub(crate) type LimitKey = (bool, String, usize);

/// How a client is checked, by auth_type or its hba line.
#[derive(Clone, Copy)]
enum Method {
    Any,
    Trust,
    Reject,
    /// A password exchange; the method depends on the stored secret.
    Check(fn(&str) -> auth::Method),
}

/// PgBouncer's `md5`: SCRAM when the stored secret is a SCRAM verifier.
fn md5_or_scram(secret: &str) -> auth::Method {
    if secret.starts_with("SCRAM-SHA-256$") {
        auth::Method::ScramSha256
    } else {
        auth::Method::Md5
    }
}

fn cleartext(_: &str) -> auth::Method {
    auth::Method::Cleartext
}

fn scram(_: &str) -> auth::Method {
    auth::Method::ScramSha256
}
