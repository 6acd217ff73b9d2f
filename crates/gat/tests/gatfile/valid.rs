//! Each file in testdata/valid, parsed, must equal the config built here by hand. Building the expected
//! value in code (rather than comparing with a stored snapshot) makes every default an explicit claim.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use gat::{
    Address, AuthMethod, BasicPool, Config, Critic, Glob, Global, Handler, HybridPool, Listen,
    ListenAddr, Matcher, ParameterStatusSync, Pool, PoolKind, PoolMode, Pooler, Rewrite,
    RewriteMode, Route, Scheme, Server, ServerSsl, Span, SslMode,
};

use super::load;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn tcp(host: &str, port: u16) -> Listen {
    Listen {
        scheme: Scheme::Postgres,
        addr: ListenAddr::Tcp {
            host: host.to_owned(),
            port,
        },
        span: Span::default(),
    }
}

fn unix(path: &str) -> Listen {
    Listen {
        scheme: Scheme::Postgres,
        addr: ListenAddr::Unix(PathBuf::from(path)),
        span: Span::default(),
    }
}

fn route(matcher: Option<Matcher>, handler: Handler) -> Route {
    Route {
        matcher,
        handler,
        span: Span::default(),
    }
}

fn server(listen: Vec<Listen>, routes: Vec<Route>) -> Server {
    Server {
        listen,
        ssl: None,
        max_connections: None,
        routes,
        span: Span::default(),
    }
}

fn config(global: Global, servers: Vec<Server>) -> Config {
    Config { global, servers }
}

/// The short form `pool ADDRESS DATABASE USERNAME PASSWORD`.
fn short_pool(address: Address, database: &str, username: &str, password: &str) -> Handler {
    let mut pool = Pool::new(address);
    pool.database = Some(database.to_owned());
    pool.username = Some(username.to_owned());
    pool.password = Some(password.to_owned());
    Handler::Pool(Box::new(pool))
}

fn pool(pool: Pool) -> Handler {
    Handler::Pool(Box::new(pool))
}

fn basic(pool: &mut Pool) -> &mut BasicPool {
    match &mut pool.kind {
        PoolKind::Basic(basic) => basic,
        PoolKind::Hybrid(hybrid) => &mut hybrid.basic,
    }
}

fn check(file: &str, expected: Config) {
    let path = Path::new("testdata/valid").join(file);
    let parsed = load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(parsed, expected, "{file}");
}

/// Every file in the corpus has a test below: a new file without one fails here.
#[test]
fn every_valid_file_is_checked() {
    let names: Vec<String> = super::corpus("testdata/valid")
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    let checked = [
        "env.gatfile",
        "full.gatfile",
        "global.gatfile",
        "handlers.gatfile",
        "hybrid.gatfile",
        "imports.gatfile",
        "listen.gatfile",
        "matchers.gatfile",
        "minimal.gatfile",
        "pool_options.gatfile",
        "quoting.gatfile",
    ];
    assert_eq!(names, checked);
}

#[test]
fn full() {
    let mut app = Pool::new(Address::tcp("127.0.0.1", 5432));
    app.username = Some("app".into());
    app.password = Some("s3cret".into());
    app.database = Some("app".into());
    app.parameters = BTreeMap::from([("search_path".into(), "public".into())]);
    app.min_connections = 1;
    app.max_connections = 20;
    app.kind = PoolKind::Basic(BasicPool::new(PoolMode::Session));
    let mut fallback = Pool::new(Address::Unix("/var/run/postgresql".into()));
    fallback.username = Some("fallback".into());
    fallback.password = Some("md5d7f5a5e7d0d9a6c2a51e4b8b4e9c6f3a".into());
    let bob = Matcher::And(vec![Matcher::user("bob"), Matcher::database("app*")]);
    check(
        "full.gatfile",
        config(
            Global {
                stat_log_period: Some(secs(10)),
                ..Global::default()
            },
            vec![server(
                vec![
                    tcp("", 5433),
                    tcp("127.0.0.1", 6432),
                    unix("/var/run/pggat/.s.PGSQL.5433"),
                ],
                vec![
                    route(Some(bob), Handler::Password("hunter2".into())),
                    route(Some(Matcher::user("*_ro")), Handler::Trust),
                    route(
                        Some(Matcher::database("postgres")),
                        short_pool(
                            Address::tcp("127.0.0.1", 5432),
                            "postgres",
                            "postgres",
                            "secretpw",
                        ),
                    ),
                    route(Some(Matcher::database("app*")), pool(app)),
                    route(None, pool(fallback)),
                ],
            )],
        ),
    );
}

#[test]
fn defaults_are_filled_in() {
    let mut expected = Pool::new(Address::tcp("127.0.0.1", 5432));
    expected.database = Some("postgres".into());
    expected.username = Some("postgres".into());
    expected.password = Some("pw".into());
    check(
        "minimal.gatfile",
        config(
            Global::default(),
            vec![server(
                vec![tcp("", 6432)],
                vec![route(None, pool(expected.clone()))],
            )],
        ),
    );

    // Spelled out once, so a changed default is a deliberate edit here.
    assert_eq!(expected.min_connections, 0);
    assert_eq!(expected.max_connections, 20);
    assert_eq!(expected.client_acquire_timeout, Some(secs(120)));
    assert_eq!(expected.server_connect_timeout, secs(5));
    assert_eq!(expected.server_login_timeout, secs(10));
    assert_eq!(expected.query_timeout, None);
    assert_eq!(expected.idle_transaction_timeout, None);
    assert_eq!(expected.client_idle_timeout, None);
    assert_eq!(expected.server_lifetime, Some(secs(3600)));
    assert_eq!(expected.server_check_delay, Some(secs(30)));
    assert_eq!(expected.server_check_query, ";");
    let tx = BasicPool::new(PoolMode::Transaction);
    assert_eq!(expected.kind, PoolKind::Basic(tx.clone()));
    assert_eq!(tx.pooler, Pooler::Rob);
    assert_eq!(tx.reset_query, None);
    assert_eq!(tx.reset_query_timeout, secs(5));
    assert_eq!(tx.idle_timeout, Some(secs(300)));
    assert_eq!(
        (tx.reconnect_initial, tx.reconnect_max),
        (std::time::Duration::from_millis(100), secs(1))
    );
    assert!(tx.release_after_transaction);
    assert_eq!(tx.parameter_status_sync, ParameterStatusSync::Dynamic);
    assert!(tx.extended_query_sync);
    assert_eq!(
        tx.track,
        [
            "client_encoding",
            "DateStyle",
            "TimeZone",
            "IntervalStyle",
            "standard_conforming_strings",
            "application_name",
            "search_path"
        ]
    );
    let session = BasicPool::new(PoolMode::Session);
    assert_eq!(session.reset_query.as_deref(), Some("DISCARD ALL"));
    assert!(!session.release_after_transaction);
    assert_eq!(session.parameter_status_sync, ParameterStatusSync::Initial);
    assert!(!session.extended_query_sync);
    assert_eq!(session.pooler, Pooler::Rob);
    let global = Global::default();
    assert_eq!(global.stat_log_period, Some(secs(60)));
    assert_eq!(global.shutdown_timeout, secs(30));
    assert_eq!((global.admin, global.threads), (None, None));
}

#[test]
fn global() {
    check(
        "global.gatfile",
        config(
            Global {
                stat_log_period: None,
                admin: Some("127.0.0.1:9930".into()),
                threads: Some(4),
                shutdown_timeout: secs(90),
            },
            vec![server(
                vec![tcp("", 6432)],
                vec![
                    route(None, Handler::Trust),
                    route(
                        None,
                        short_pool(Address::tcp("localhost", 5432), "app", "app", "app"),
                    ),
                ],
            )],
        ),
    );
}

#[test]
fn matchers() {
    let internal = Matcher::Or(vec![Matcher::user("admin"), Matcher::user("*_svc")]);
    let everyone_else = Matcher::And(vec![
        Matcher::Not(Box::new(Matcher::user("admin"))),
        Matcher::Not(Box::new(Matcher::user("*_svc"))),
        Matcher::And(vec![Matcher::database("app*"), Matcher::database("*_prod")]),
    ]);
    check(
        "matchers.gatfile",
        config(
            Global::default(),
            vec![server(
                vec![tcp("", 6432)],
                vec![
                    route(Some(internal.clone()), Handler::Trust),
                    route(
                        Some(everyone_else),
                        Handler::Password("p@ss \"word\"".into()),
                    ),
                    route(
                        Some(internal),
                        short_pool(Address::tcp("db.internal", 5433), "app", "app", "pw"),
                    ),
                    route(
                        Some(Matcher::database("analytics_*")),
                        short_pool(Address::tcp("::1", 5432), "analytics", "reader", "pw"),
                    ),
                    route(
                        Some(Matcher::user("only")),
                        short_pool(Address::Unix("./sockets".into()), "postgres", "only", "pw"),
                    ),
                    route(
                        Some(Matcher::Not(Box::new(Matcher::Or(vec![
                            Matcher::LocalAddress(Glob::new("10.*")),
                            Matcher::LocalAddress(Glob::new("/run/*")),
                        ])))),
                        Handler::Error("connect through the internal address".into()),
                    ),
                ],
            )],
        ),
    );
}

#[test]
fn pool_options() {
    let mut big = Pool::new(Address::tcp("10.0.0.5", 6543));
    big.username = Some("big".into());
    big.password = Some("SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVkS2V5:c2VydmVyS2V5".into());
    big.parameters = BTreeMap::from([
        ("application_name".into(), "pggat".into()),
        ("search_path".into(), "public,app".into()),
        ("options".into(), "-c statement_timeout=5s".into()),
    ]);
    big.min_connections = 5;
    big.max_connections = 100;
    big.client_acquire_timeout = None;
    big.server_connect_timeout = secs(2);
    big.server_login_timeout = secs(3);
    big.query_timeout = Some(secs(30));
    big.idle_transaction_timeout = Some(secs(60));
    big.client_idle_timeout = None;
    big.server_lifetime = Some(secs(7200));
    big.server_check_delay = Some(Duration::ZERO);
    big.server_check_query = "SELECT 1".into();
    big.kind = PoolKind::Basic(BasicPool {
        mode: PoolMode::Session,
        pooler: Pooler::Lifo,
        reset_query: Some("DISCARD ALL; SET ROLE NONE".into()),
        reset_query_timeout: secs(2),
        idle_timeout: None,
        reconnect_initial: secs(1),
        reconnect_max: secs(30),
        release_after_transaction: true,
        parameter_status_sync: ParameterStatusSync::Dynamic,
        extended_query_sync: true,
        track: vec!["TimeZone".into(), "application_name".into()],
        pin_session_state: false,
        max_prepared_statements: 250,
        penalize: Vec::new(),
    });

    let mut tx = Pool::new(Address::Unix("/tmp/.s.PGSQL.5432".into()));
    tx.server_check_delay = None;
    let b = basic(&mut tx);
    b.reset_query = None;
    b.reconnect_initial = secs(10);
    b.reconnect_max = secs(10);
    b.release_after_transaction = false;
    b.extended_query_sync = false;
    b.parameter_status_sync = ParameterStatusSync::None;

    let plain = Pool::new(Address::tcp("pg", 5432));
    check(
        "pool_options.gatfile",
        config(
            Global::default(),
            vec![server(
                vec![tcp("", 6432)],
                vec![
                    route(None, Handler::Trust),
                    route(Some(Matcher::database("big")), pool(big)),
                    route(Some(Matcher::database("tx")), pool(tx)),
                    route(Some(Matcher::database("plain")), pool(plain)),
                ],
            )],
        ),
    );
}

#[test]
fn listen() {
    let pg = || {
        vec![route(
            None,
            short_pool(
                Address::tcp("127.0.0.1", 5432),
                "postgres",
                "postgres",
                "pw",
            ),
        )]
    };
    check(
        "listen.gatfile",
        config(
            Global::default(),
            vec![
                Server {
                    max_connections: Some(5000),
                    ..server(
                        vec![tcp("", 5433), tcp("::1", 5434), tcp("0.0.0.0", 0)],
                        pg(),
                    )
                },
                server(vec![tcp("localhost", 5435), unix("./pggat.sock")], pg()),
            ],
        ),
    );
}

#[test]
fn imports_and_snippets() {
    let mut public = Pool::new(Address::tcp("127.0.0.1", 5432));
    public.username = Some("public".into());
    check(
        "imports.gatfile",
        config(
            Global::default(),
            vec![
                server(
                    vec![tcp("", 7000)],
                    vec![route(
                        None,
                        short_pool(Address::tcp("127.0.0.1", 5432), "extra", "extra", "extra"),
                    )],
                ),
                server(
                    vec![tcp("", 7001)],
                    vec![
                        route(None, Handler::Trust),
                        route(
                            None,
                            short_pool(Address::tcp("127.0.0.1", 5432), "more", "more", "more"),
                        ),
                    ],
                ),
                server(
                    vec![tcp("", 6432)],
                    vec![
                        route(
                            Some(Matcher::user("staff_*")),
                            Handler::Password("staffpw".into()),
                        ),
                        route(Some(Matcher::database("public")), Handler::Trust),
                        route(Some(Matcher::database("public")), pool(public)),
                    ],
                ),
            ],
        ),
    );
}

#[test]
fn imported_items_keep_their_own_positions() {
    let parsed =
        load(Path::new("testdata/valid/imports.gatfile")).unwrap_or_else(|e| panic!("{e}"));
    let pos = |server: usize, route: usize| {
        parsed.servers[server].routes[route]
            .span
            .0
            .as_ref()
            .map(|p| p.to_string())
            .unwrap_or_default()
    };
    assert_eq!(pos(0, 0), "testdata/valid/imported/10-extra.conf:3:5");
    assert_eq!(
        pos(1, 0),
        "testdata/valid/imported/20-more.conf:2:5",
        "snippet body: where the snippet is written"
    );
    assert_eq!(pos(2, 1), "testdata/valid/imports.gatfile:3:5");
    assert_eq!(pos(2, 2), "testdata/valid/imported/pools.inc:1:1");
}

#[test]
fn env() {
    let mut p = Pool::new(Address::tcp("db.example", 5432));
    p.max_connections = 7;
    check(
        "env.gatfile",
        config(
            Global::default(),
            vec![server(
                vec![tcp("", 7432), tcp("", 6433)],
                vec![
                    route(None, Handler::Password("envpw".into())),
                    route(None, pool(p)),
                ],
            )],
        ),
    );
}

#[test]
fn quoting() {
    let mut p = Pool::new(Address::tcp("127.0.0.1", 5432));
    p.username = Some("user#1".into());
    p.password = Some("multi\nline".into());
    p.database = Some("my db".into());
    check(
        "quoting.gatfile",
        config(
            Global::default(),
            vec![server(
                vec![tcp("", 6432)],
                vec![
                    route(None, Handler::Password("say \"hi\" \\ back\\slash".into())),
                    route(None, pool(p)),
                ],
            )],
        ),
    );
}

#[test]
fn handlers() {
    let mut pg = Pool::new(Address::tcp("127.0.0.1", 5432));
    pg.ssl_mode = SslMode::VerifyFull;
    pg.ssl_root_cert = Some("/etc/pggat/ca.pem".into());
    let mut insecure = Pool::new(Address::tcp("127.0.0.1", 5432));
    insecure.ssl_mode = SslMode::Require;
    let rewrite = |mode, value: &str| Rewrite {
        mode,
        value: value.to_owned(),
    };
    let psql = Matcher::Parameter {
        name: "application_name".into(),
        value: Glob::new("psql*"),
    };
    let mut first = server(
        vec![tcp("", 6432)],
        vec![
            route(Some(Matcher::Ssl(false)), Handler::Error("use TLS".into())),
            route(None, Handler::RequireSsl(true)),
            route(
                Some(Matcher::database("legacy")),
                Handler::RequireSsl(false),
            ),
            route(
                None,
                Handler::AllowedStartupParameters(vec![
                    "application_name".into(),
                    "search_path".into(),
                ]),
            ),
            route(
                None,
                Handler::User(rewrite(RewriteMode::StripSuffix, "_ro")),
            ),
            route(
                Some(Matcher::database("old*")),
                Handler::Database(rewrite(RewriteMode::Set, "new")),
            ),
            route(
                None,
                Handler::Database(rewrite(RewriteMode::StripPrefix, "tenant_")),
            ),
            route(
                Some(psql.clone()),
                Handler::Parameter {
                    name: "search_path".into(),
                    value: "a,b".into(),
                },
            ),
            route(
                Some(Matcher::database("legacy")),
                Handler::AuthMethod(AuthMethod::Cleartext),
            ),
            route(None, Handler::AuthMethod(AuthMethod::Md5)),
            route(
                Some(Matcher::database("bouncer")),
                Handler::Pgbouncer("/etc/pgbouncer/pgbouncer.ini".into()),
            ),
            route(
                Some(Matcher::user("legacy")),
                Handler::Pgbouncer("pgbouncer.ini".into()),
            ),
            route(Some(Matcher::database("secure")), pool(pg)),
            route(None, pool(insecure)),
        ],
    );
    first.ssl = Some(ServerSsl::X509KeyPair {
        cert_file: "cert.pem".into(),
        key_file: "key.pem".into(),
    });
    let mut second = server(
        vec![tcp("", 6433)],
        vec![
            route(Some(psql), Handler::Error("no psql here".into())),
            route(None, Handler::Pgbouncer("/etc/pgb.ini".into())),
        ],
    );
    second.ssl = Some(ServerSsl::SelfSigned);
    check(
        "handlers.gatfile",
        config(Global::default(), vec![first, second]),
    );
}

#[test]
fn hybrid() {
    let mut app = Pool::new(Address::tcp("primary.internal", 5432));
    app.replicas = vec![
        Address::tcp("replica-a.internal", 5432),
        Address::tcp("replica-b.internal", 5432),
    ];
    app.username = Some("app".into());
    app.password = Some("s3cret".into());
    app.database = Some("app".into());
    let mut hybrid = HybridPool::new();
    hybrid.primary_stickiness = gat::Stickiness::For(secs(2));
    hybrid.replay = false;
    hybrid.basic.max_prepared_statements = 500;
    hybrid.basic.penalize = vec![
        Critic::QueryLatency {
            threshold: Duration::from_millis(300),
            validity: secs(300),
        },
        Critic::ReplicationLatency {
            threshold: secs(1),
            validity: secs(30),
            max_lag: Some(secs(10)),
        },
    ];
    app.kind = PoolKind::Hybrid(hybrid);
    let mut plain = Pool::new(Address::tcp("127.0.0.1", 5432));
    basic(&mut plain).penalize = vec![Critic::QueryLatency {
        threshold: Duration::from_millis(50),
        validity: secs(300),
    }];
    let ro = Matcher::user("*_ro");
    check(
        "hybrid.gatfile",
        config(
            Global::default(),
            vec![server(
                vec![tcp("", 5433)],
                vec![
                    route(
                        Some(ro),
                        Handler::Parameter {
                            name: "hybrid.mode".into(),
                            value: "ro".into(),
                        },
                    ),
                    route(Some(Matcher::database("app")), pool(app)),
                    route(Some(Matcher::database("basic")), pool(plain)),
                ],
            )],
        ),
    );
}

#[test]
fn primary_stickiness_lsn() {
    let text = ":6432 {\n    pool * {\n        address 127.0.0.1:5432\n        replica 127.0.0.1:5442\n        pool hybrid {\n            primary_stickiness lsn\n        }\n    }\n}\n";
    let (config, pool) = super::first_pool(text);
    let PoolKind::Hybrid(hybrid) = &pool.kind else {
        panic!("not hybrid: {:?}", pool.kind)
    };
    assert_eq!(hybrid.primary_stickiness, gat::Stickiness::Lsn);
    // The JSON form says the same.
    let json = serde_json::to_string(&config).unwrap();
    assert!(json.contains(r#""primary_stickiness":"lsn""#), "{json}");
    assert_eq!(serde_json::from_str::<Config>(&json).unwrap(), config);
}

#[test]
fn connect_query() {
    let text = ":6432 {\n    pool * {\n        address 127.0.0.1:5432\n        connect_query \"SET enable_seqscan = off\"\n    }\n}\n";
    let (config, pool) = super::first_pool(text);
    assert_eq!(
        pool.connect_query.as_deref(),
        Some("SET enable_seqscan = off")
    );
    let json = serde_json::to_string(&config).unwrap();
    assert_eq!(serde_json::from_str::<Config>(&json).unwrap(), config);
}
