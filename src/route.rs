//! Routing a client to a pool, and the registry of pools.
//!
//! Each route's matcher is evaluated once against the client as it stands
//! after startup; matching handlers run in file order: `password` and `trust`
//! decide how the client is checked, and the first matching `pool` serves it.
//! No pool matched: FATAL 3D000, as PostgreSQL says for a missing database.
//!
//! A pool handler that names its server role and database is one pool, made
//! (and pre-warmed) when the config loads. One that leaves them to the client
//! makes a pool per (user, database) on first use. Secrets are prepared once
//! per (user, secret) — SCRAM's PBKDF2 never runs per login.

use std::collections::HashMap;
use std::sync::Arc;

use fed::sqlstate::SqlState;
use parking_lot::Mutex;

use crate::client::startup::Startup;
use crate::errors::ClientError;

/// How the pool shares servers between clients.
pub use gat::PoolMode;

/// A pool and what clients of it need to know.
pub struct PoolEntry {
    /// Name for logs and errors: `database/user` of the server side.
    pub name: String,
    /// Session, transaction or statement pooling.
    pub mode: PoolMode,
    /// The server connections.
    pub pool: Arc<spool::Pool>,
    /// The pool's config block.
    pub config: Arc<gat::Pool>,
    /// Server-side credentials, shared with the pool's recipe.
    pub credentials: Arc<auth::ClientCredentials>,
    /// Parameters ps keeps in step through ParameterStatus.
    pub tracked: Vec<String>,
    /// A hybrid pool's replicas and routing rules.
    pub hybrid: Option<Arc<crate::hybrid::Hybrid>>,
    /// Whether protocol-level prepared statements follow clients across
    /// servers (eqp; `extended_query_sync`).
    pub statements: bool,
    /// Whether session state may pin a client to its server.
    pub allow_pin: bool,
    /// What transaction-mode clients are told at startup, by the tracked
    /// startup parameters they sent: learned from a server once, so a
    /// connecting client need not wait for one.
    pub startup_params: Mutex<HashMap<Vec<(String, String)>, spool::Params>>,
    /// Clients pinned to a server by session state, since start.
    pub pins: std::sync::atomic::AtomicU64,
    /// Statements some server of the pool parsed successfully (eqp).
    pub known: fed::middleware::eqp::Known,
    /// The database clients name it by (SHOW POOLS).
    pub database: String,
    /// The user its servers log in as.
    pub user: String,
    /// What its clients did (SHOW STATS).
    pub stats: crate::stats::PoolStats,
    /// Its connected clients.
    pub clients: Arc<crate::clients::Clients>,
    /// Its clients' cancel requests in flight.
    pub cancels: Arc<crate::cancel::CancelGauges>,
}

impl PoolEntry {
    /// Every server pool of this entry: the primary's, then the replicas'.
    pub fn server_pools(&self) -> impl Iterator<Item = &Arc<spool::Pool>> {
        let replicas = self.hybrid.iter().flat_map(|h| &h.replicas);
        std::iter::once(&self.pool).chain(replicas.map(|r| &r.pool))
    }

    /// The pool's timeouts, for the watchdog.
    pub fn limits(&self) -> crate::watchdog::Limits {
        crate::watchdog::Limits {
            query: self.config.query_timeout,
            idle_in_transaction: self.config.idle_transaction_timeout,
            client_idle: self.config.client_idle_timeout,
        }
    }

    /// Tells the pool's credentials the ClientKey a client proved with SCRAM,
    /// so a pool configured with only a SCRAM verifier can log in to servers
    /// (pass-through). Keys that do not match the pool's verifier are ignored.
    pub fn offer_client_key(&self, key: &auth::ClientKey) {
        let _ = self.credentials.set_client_key(key);
    }
}

/// How to check a client.
pub enum AuthPlan {
    /// Let it in (`trust`).
    Trust,
    /// Check its password against this secret, with the method an
    /// `auth_method` handler chose (else the secret's natural one).
    Check(Arc<auth::PreparedSecret>, Option<auth::Method>),
}

/// What routing decided.
pub enum Routed {
    /// A pool of the Gatfile.
    Pool(Resolved),
    /// A `pgbouncer` route: the ini decides (see [`crate::pgbouncer`]).
    Bouncer(Arc<crate::pgbouncer::Bouncer>),
}

/// Where a client goes.
pub struct Resolved {
    /// Its pool.
    pub pool: Arc<PoolEntry>,
    /// How to check it.
    pub auth: AuthPlan,
    /// Startup parameters to apply on its servers: the client's, as changed
    /// by `parameter` handlers.
    pub params: Vec<(String, String)>,
}

/// A pool's identity: its settings (as JSON, positions left out), user
/// and database. Equal keys across reloads mean the same pool, kept.
type PoolKey = (Arc<str>, String, String);

/// What a pool route needs to make pools: computed once per config.
struct PoolRoute {
    key: Arc<str>,
    /// Its servers: the primary, then any replicas.
    servers: Vec<ServerAt>,
}

/// One server of a pool, with the TLS it needs, set up at load so a bad
/// certificate file is an error then, not when a client first arrives.
#[derive(Clone)]
pub(crate) struct ServerAt {
    address: spool::Address,
    tls: Option<spool::ServerTls>,
}

impl ServerAt {
    /// `address` of pool `p`: a certificate must name the host itself.
    pub(crate) fn new(
        p: &gat::Pool,
        address: &gat::Address,
    ) -> Result<ServerAt, crate::tls::TlsError> {
        let (address, host) = match address {
            gat::Address::Tcp { host, port } => (
                spool::Address::Tcp {
                    host: host.clone(),
                    port: *port,
                },
                host.as_str(),
            ),
            gat::Address::Unix(path) => (spool::Address::Unix(path.clone()), "localhost"),
        };
        let tls = crate::tls::server_tls(p.ssl_mode, host, p.ssl_root_cert.as_deref())?;
        Ok(ServerAt { address, tls })
    }
}

/// The routes of every server block, and the pools they made. See the module docs.
pub struct Router {
    blocks: Vec<Vec<gat::Route>>,
    pools: Mutex<HashMap<PoolKey, Arc<PoolEntry>>>,
    /// Each pool route, by (block, route).
    pool_routes: HashMap<(usize, usize), PoolRoute>,
    /// Pools carried over from the previous config.
    kept: usize,
    secrets: Mutex<HashMap<(String, String), Arc<auth::PreparedSecret>>>,
    /// The pgbouncer.ini of each `pgbouncer` route, by path.
    bouncers: HashMap<std::path::PathBuf, Arc<crate::pgbouncer::Bouncer>>,
}

impl Router {
    /// Builds the router and the pools fixed by the config. Fails on secrets
    /// that cannot be parsed (a malformed SCRAM verifier) and on TLS set-ups
    /// that cannot work (an unreadable CA file).
    ///
    /// The pools of `previous` whose settings, user and database are
    /// unchanged are carried over with their servers (a reload).
    pub fn new(config: &gat::Config, previous: Option<&Router>) -> Result<Router, String> {
        let mut pool_routes = HashMap::new();
        for (b, server) in config.servers.iter().enumerate() {
            for (r, route) in server.routes.iter().enumerate() {
                if let gat::Handler::Pool(p) = &route.handler {
                    let servers = std::iter::once(&p.address)
                        .chain(&p.replicas)
                        .map(|a| ServerAt::new(p, a))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| format!("{}: {e}", at(&route.span)))?;
                    // The pool's settings, where it is (listen addresses and
                    // matcher) and which of several identical routes it is.
                    let mut settings = p.clone();
                    settings.span = gat::Span::default();
                    let listen: Vec<String> =
                        server.listen.iter().map(|l| l.addr.to_string()).collect();
                    let mut key = serde_json::to_string(&(listen, &route.matcher, &settings))
                        .map_err(|e| format!("{}: {e}", at(&route.span)))?;
                    let twins = pool_routes
                        .values()
                        .filter(|r: &&PoolRoute| r.key.starts_with(&*key))
                        .count();
                    if twins > 0 {
                        key.push_str(&format!("#{twins}"));
                    }
                    pool_routes.insert(
                        (b, r),
                        PoolRoute {
                            key: key.into(),
                            servers,
                        },
                    );
                }
            }
        }
        let mut bouncers = HashMap::new();
        for route in config.servers.iter().flat_map(|s| &s.routes) {
            if let gat::Handler::Pgbouncer(path) = &route.handler
                && !bouncers.contains_key(path)
            {
                let before = previous.and_then(|p| p.bouncers.get(path));
                let b = crate::pgbouncer::Bouncer::load(path, before.map(|b| b.as_ref()))?;
                bouncers.insert(path.clone(), Arc::new(b));
            }
        }
        // Copied out first: judging a pool may take a while, and the running
        // router's clients must not wait for it.
        let carried: HashMap<PoolKey, Arc<PoolEntry>> = previous
            .map(|p| {
                let all = p.pools.lock().clone();
                all.into_iter()
                    .filter(|(whole, entry)| {
                        pool_routes.values().any(|r| r.key == whole.0)
                            || bouncers.values().any(|b| b.keeps(whole, entry))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let router = Router {
            blocks: config.servers.iter().map(|s| s.routes.clone()).collect(),
            kept: carried.len(),
            pools: Mutex::new(carried),
            pool_routes,
            secrets: Mutex::new(HashMap::new()),
            bouncers,
        };
        for (b, block) in router.blocks.iter().enumerate() {
            for (r, route) in block.iter().enumerate() {
                let secret = match &route.handler {
                    gat::Handler::Password(s) => Some(s),
                    gat::Handler::Pool(p) => p.password.as_ref(),
                    _ => None,
                };
                if let Some(s) = secret {
                    auth::Secret::parse(s)
                        .map_err(|e| format!("{}: invalid password: {e}", at(&route.span)))?;
                }
                if let gat::Handler::Pool(p) = &route.handler
                    && let (Some(user), Some(db)) = (&p.username, &p.database)
                {
                    router.pool_for(b, r, p, user, db);
                }
            }
        }
        Ok(router)
    }

    /// Every loaded pgbouncer.ini, for change detection.
    pub fn bouncer_configs(&self) -> Vec<&gat::pgbouncer::PgBouncer> {
        let mut v: Vec<_> = self.bouncers.values().map(|b| &b.config).collect();
        v.sort_by(|a, b| a.path.cmp(&b.path));
        v
    }

    /// Every loaded pgbouncer.ini.
    pub fn all_bouncers(&self) -> Vec<Arc<crate::pgbouncer::Bouncer>> {
        self.bouncers.values().cloned().collect()
    }

    /// The loaded pgbouncer.ini at `path`.
    pub fn bouncer(&self, path: &std::path::Path) -> Option<Arc<crate::pgbouncer::Bouncer>> {
        self.bouncers.get(path).cloned()
    }

    /// The client pools made from the pgbouncer.ini at `path` (auth_query's
    /// own pools left out), by database and user.
    pub fn bouncer_pools(&self, path: &std::path::Path) -> Vec<Arc<PoolEntry>> {
        let mut pools: Vec<Arc<PoolEntry>> = self
            .pools
            .lock()
            .iter()
            .filter(|((key, _, _), _)| crate::pgbouncer::serves_clients(path, key))
            .map(|(_, p)| p.clone())
            .collect();
        pools.sort_by(|a, b| (&a.database, &a.user).cmp(&(&b.database, &b.user)));
        pools
    }

    /// The pool a pgbouncer.ini describes, made on first use, and paused
    /// when `paused` says its database is. Made under the registry's lock, as
    /// [`Router::pool_for`] does: two clients arriving together never make
    /// two pools, and a PAUSE (which sets its flag, then lists the pools)
    /// either lists the new pool or is seen by it.
    pub(crate) fn pgbouncer_pool(
        &self,
        spec: &crate::pgbouncer::PoolSpec,
        paused: impl FnOnce() -> bool,
    ) -> Result<Arc<PoolEntry>, ClientError> {
        let user = spec.pool.username.clone().unwrap_or_default();
        let db = spec.pool.database.clone().unwrap_or_default();
        let key = (spec.key.clone(), user.clone(), db.clone());
        let mut pools = self.pools.lock();
        if let Some(p) = pools.get(&key) {
            return Ok(p.clone());
        }
        let server = ServerAt::new(&spec.pool, &spec.pool.address).map_err(|e| {
            ClientError::fatal(SqlState::CONFIG_FILE_ERROR, format!("server TLS: {e}"))
        })?;
        let entry = Arc::new(build_pool(&spec.pool, &user, &db, &[server], &spec.extras));
        if paused() {
            entry.pool.pause();
        }
        pools.insert(key, entry.clone());
        Ok(entry)
    }

    /// How many pools were carried over from the previous config.
    pub fn kept(&self) -> usize {
        self.kept
    }

    /// Every pool made so far.
    pub fn pools(&self) -> Vec<Arc<PoolEntry>> {
        self.pools.lock().values().cloned().collect()
    }

    /// Routes a client of server block `block`. Every matcher sees the
    /// client as it connected; the handlers that matched then run in file
    /// order, each seeing the rewrites of those before it.
    pub fn resolve(
        &self,
        block: usize,
        startup: &Startup,
        tls: bool,
        local_address: &str,
    ) -> Result<Routed, ClientError> {
        let routes = self
            .blocks
            .get(block)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let info = gat::ConnInfo::new(&startup.user, &startup.database)
            .with_ssl(tls)
            .with_local_address(local_address)
            .with_parameters(&startup.params);
        let matched: Vec<bool> = routes.iter().map(|r| r.matches(&info)).collect();
        let mut user = startup.user.clone();
        let mut database = startup.database.clone();
        let mut params = startup.params.clone();
        let mut password: Option<&String> = None;
        let mut trust = false;
        let mut method = None;
        for (r, route) in routes.iter().enumerate().filter(|(r, _)| matched[*r]) {
            match &route.handler {
                gat::Handler::Password(s) => password = Some(s),
                gat::Handler::Trust => trust = true,
                gat::Handler::AuthMethod(m) => {
                    method = Some(match m {
                        gat::AuthMethod::ScramSha256 => auth::Method::ScramSha256,
                        gat::AuthMethod::Md5 => auth::Method::Md5,
                        gat::AuthMethod::Cleartext => auth::Method::Cleartext,
                    });
                }
                gat::Handler::RequireSsl(required) if *required != tls => {
                    return Err(ClientError::fatal(
                        SqlState::INVALID_AUTHORIZATION_SPECIFICATION,
                        if *required {
                            "SSL required: this pggat route accepts only TLS connections"
                        } else {
                            "SSL not allowed: this pggat route accepts only plain connections"
                        },
                    )
                    .with_hint(if *required {
                        "connect with sslmode=require"
                    } else {
                        "connect with sslmode=disable"
                    }));
                }
                gat::Handler::RequireSsl(_) => {}
                gat::Handler::AllowedStartupParameters(allowed) => {
                    if let Some((name, _)) = params
                        .iter()
                        .find(|(k, _)| !allowed.iter().any(|a| a.eq_ignore_ascii_case(k)))
                    {
                        return Err(ClientError::fatal(
                            SqlState::PROTOCOL_VIOLATION,
                            format!("unsupported startup parameter: {name}"),
                        )
                        .with_hint(
                            "allowed_startup_parameters in the Gatfile lists what clients may send",
                        ));
                    }
                }
                gat::Handler::User(rw) => user = rw.apply(&user),
                gat::Handler::Database(rw) => database = rw.apply(&database),
                gat::Handler::Parameter { name, value } => {
                    params.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
                    params.push((name.clone(), value.clone()));
                }
                gat::Handler::Error(message) => {
                    return Err(ClientError::fatal(
                        SqlState::INVALID_AUTHORIZATION_SPECIFICATION,
                        message.clone(),
                    ));
                }
                gat::Handler::Pgbouncer(path) => {
                    let bouncer = self.bouncers.get(path).cloned().ok_or_else(|| {
                        ClientError::fatal(
                            SqlState::CONFIG_FILE_ERROR,
                            format!("{} is not loaded", path.display()),
                        )
                    })?;
                    return Ok(Routed::Bouncer(bouncer));
                }
                gat::Handler::Pool(p) => {
                    let server_user = p.username.as_deref().unwrap_or(&user);
                    let server_db = p.database.as_deref().unwrap_or(&database);
                    let pool = self.pool_for(block, r, p, server_user, server_db);
                    let auth = if trust {
                        AuthPlan::Trust
                    } else {
                        let secret = password.or(p.password.as_ref()).ok_or_else(|| {
                            ClientError::fatal(
                                SqlState::INVALID_AUTHORIZATION_SPECIFICATION,
                                format!("no password is configured for user \"{}\" in pool \"{}\"", startup.user, pool.name),
                            )
                            .with_hint("add a `password` directive for this user, or `trust` to let it in unchecked")
                        })?;
                        AuthPlan::Check(self.prepared(&startup.user, secret), method)
                    };
                    return Ok(Routed::Pool(Resolved { pool, auth, params }));
                }
            }
        }
        Err(ClientError::fatal(
            SqlState::UNDEFINED_DATABASE,
            format!("database \"{}\" does not exist", startup.database),
        )
        .with_hint("no pggat route matches this user and database"))
    }

    pub(crate) fn prepared(&self, user: &str, secret: &str) -> Arc<auth::PreparedSecret> {
        let key = (user.to_owned(), secret.to_owned());
        if let Some(p) = self.secrets.lock().get(&key) {
            return p.clone();
        }
        // Validated at load; a parse failure here cannot happen, but never panic.
        let parsed = secret_of(secret);
        let prepared = Arc::new(auth::PreparedSecret::new(user, parsed, &mut rand::rng()));
        self.secrets.lock().entry(key).or_insert(prepared).clone()
    }

    fn pool_for(
        &self,
        block: usize,
        route: usize,
        cfg: &gat::Pool,
        user: &str,
        db: &str,
    ) -> Arc<PoolEntry> {
        let route = self
            .pool_routes
            .get(&(block, route))
            .expect("every pool route is set up at load");
        let key = (route.key.clone(), user.to_owned(), db.to_owned());
        let mut pools = self.pools.lock();
        if let Some(p) = pools.get(&key) {
            return p.clone();
        }
        let entry = Arc::new(build_pool(
            cfg,
            user,
            db,
            &route.servers,
            &Extras::default(),
        ));
        pools.insert(key, entry.clone());
        entry
    }
}

/// Where a config item was written, for errors.
pub(crate) fn at(span: &gat::Span) -> String {
    span.0.as_ref().map(ToString::to_string).unwrap_or_default()
}

/// A configured secret: a hash or verifier when it parses as one, else a
/// plain password (secrets are validated at load, so this never hides an
/// error).
pub(crate) fn secret_of(secret: &str) -> auth::Secret {
    auth::Secret::parse(secret).unwrap_or_else(|_| auth::Secret::Plain(secret.to_owned()))
}

/// What a PgBouncer-configured pool has beyond a Gatfile pool.
#[derive(Clone, Debug, Default)]
pub(crate) struct Extras {
    /// The name clients use for the database, when not the server's.
    pub database: Option<String>,
    /// Reserve pool size and timeout.
    pub reserve: (usize, std::time::Duration),
    /// Ceilings shared with other pools.
    pub limits: Vec<Arc<spool::Limit>>,
}

/// The pool of `cfg` for `user` and `db`, over `servers` (the primary, then
/// any replicas).
pub(crate) fn build_pool(
    cfg: &gat::Pool,
    user: &str,
    db: &str,
    servers: &[ServerAt],
    extras: &Extras,
) -> PoolEntry {
    let basic = cfg.kind.basic();
    let secret = cfg
        .password
        .as_deref()
        .map(secret_of)
        .unwrap_or_else(|| auth::Secret::Plain(String::new()));
    let credentials = Arc::new(auth::ClientCredentials::new(user, secret));
    let name = format!("{db}/{user}");
    let (primary, replicas) = servers.split_first().expect("a pool has its primary");
    let recipe = spool::Recipe {
        address: primary.address.clone(),
        user: user.to_owned(),
        credentials: credentials.clone(),
        database: db.to_owned(),
        parameters: cfg
            .parameters
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        connect_timeout: cfg.server_connect_timeout,
        login_timeout: cfg.server_login_timeout,
        max_prepared_statements: basic.max_prepared_statements as usize,
        tls: primary.tls.clone(),
        connect_query: cfg.connect_query.clone(),
    };
    let releases = basic.release_after_transaction;
    // A server kept for a whole session must be cleaned before the next one,
    // whichever preset the flags came from.
    let reset_query = match &basic.reset_query {
        None if !releases => Some("DISCARD ALL".to_owned()),
        q => q.clone(),
    };
    let opts = spool::Options {
        name: name.clone(),
        min_connections: cfg.min_connections as usize,
        max_connections: cfg.max_connections as usize,
        acquire_timeout: cfg.client_acquire_timeout,
        idle_timeout: basic.idle_timeout,
        server_lifetime: cfg.server_lifetime,
        reconnect_initial: basic.reconnect_initial,
        reconnect_max: basic.reconnect_max,
        reset_query,
        reset_timeout: basic.reset_query_timeout,
        check_delay: cfg.server_check_delay,
        check_query: cfg.server_check_query.clone(),
        policy: match basic.pooler {
            gat::Pooler::Rob => rob::Policy::Fair,
            gat::Pooler::Lifo => rob::Policy::Lifo,
        },
        reserve: extras.reserve.0,
        reserve_timeout: extras.reserve.1,
        limits: extras.limits.clone(),
    };
    let replicas: Vec<_> = replicas
        .iter()
        .enumerate()
        .map(|(i, server)| {
            let recipe = spool::Recipe {
                address: server.address.clone(),
                tls: server.tls.clone(),
                ..recipe.clone()
            };
            let opts = spool::Options {
                name: format!("{name} replica {}", i + 1),
                ..opts.clone()
            };
            spool::Pool::new(recipe, opts)
        })
        .collect();
    PoolEntry {
        hybrid: match &cfg.kind {
            gat::PoolKind::Hybrid(h) => Some(crate::hybrid::Hybrid::new(&recipe, replicas, h)),
            gat::PoolKind::Basic(_) => None,
        },
        name,
        // pggat's presets are these flags: a pool releases servers after
        // each transaction (transaction pooling) if it says so.
        mode: match basic.mode {
            PoolMode::Statement => PoolMode::Statement,
            _ if basic.release_after_transaction => PoolMode::Transaction,
            _ => PoolMode::Session,
        },
        pool: spool::Pool::new(recipe, opts),
        config: Arc::new(cfg.clone()),
        credentials,
        tracked: match basic.parameter_status_sync {
            gat::ParameterStatusSync::None => Vec::new(),
            _ => basic.track.clone(),
        },
        statements: basic.extended_query_sync,
        allow_pin: basic.pin_session_state,
        startup_params: Mutex::new(HashMap::new()),
        pins: Default::default(),
        known: Default::default(),
        database: extras.database.clone().unwrap_or_else(|| db.to_owned()),
        user: user.to_owned(),
        stats: Default::default(),
        clients: Default::default(),
        cancels: Default::default(),
    }
}
