//! The rows of the console's SHOW commands, with PgBouncer's column names,
//! order and types (current PgBouncer, 1.24/1.25), so exporters and
//! dashboards written for PgBouncer read them unchanged.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use fed::messages::backend;

use super::{Bouncer, CONSOLE_DB, PauseKind};
use crate::route::PoolEntry;
use crate::stats::Totals;

/// A column type, as PgBouncer sends it.
#[derive(Clone, Copy)]
pub enum Ty {
    /// text (25).
    Text,
    /// int4 (23).
    Int,
    /// numeric (1700).
    Numeric,
}

/// A result set.
pub struct Table {
    columns: Vec<(&'static str, Ty)>,
    rows: Vec<Vec<Option<String>>>,
}

impl Table {
    /// A table with these columns.
    pub fn new(columns: &[(&'static str, Ty)]) -> Table {
        Table {
            columns: columns.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Text columns only.
    pub fn text(names: &[&'static str]) -> Table {
        Table {
            columns: names.iter().map(|n| (*n, Ty::Text)).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub fn row(&mut self, values: Vec<Option<String>>) {
        self.rows.push(values);
    }

    /// RowDescription, DataRows and CommandComplete `SHOW`.
    pub fn encode(&self, out: &mut BytesMut) {
        let fields: Vec<backend::FieldDescription<'_>> = self
            .columns
            .iter()
            .map(|(name, ty)| {
                let (oid, size) = match ty {
                    Ty::Text => (25, -1),
                    Ty::Int => (23, 4),
                    Ty::Numeric => (1700, -1),
                };
                backend::FieldDescription {
                    name: name.as_bytes(),
                    table_oid: 0,
                    column: 0,
                    type_oid: oid,
                    type_size: size,
                    type_modifier: -1,
                    format: 0,
                }
            })
            .collect();
        backend::RowDescription {
            fields: fed::codec::Array::from_slice(&fields),
        }
        .encode(out);
        for row in &self.rows {
            let values: Vec<Option<&[u8]>> = row
                .iter()
                .map(|v| v.as_deref().map(str::as_bytes))
                .collect();
            backend::DataRow {
                values: fed::codec::Array::from_slice(&values),
            }
            .encode(out);
        }
        backend::CommandComplete { tag: b"SHOW" }.encode(out);
    }
}

fn s(v: impl ToString) -> Option<String> {
    Some(v.to_string())
}

/// The totals at the last two `stats_period` marks, for averages.
#[derive(Debug)]
pub struct History {
    older: (Instant, BTreeMap<String, Totals>),
    newer: (Instant, BTreeMap<String, Totals>),
}

impl History {
    /// Nothing counted yet.
    pub fn new() -> History {
        let start = Instant::now();
        History {
            older: (start, BTreeMap::new()),
            newer: (start, BTreeMap::new()),
        }
    }

    /// Moves the marks on when a period has passed; returns the older mark,
    /// which averages are taken from.
    fn base(
        &mut self,
        now: &BTreeMap<String, Totals>,
        period: Duration,
    ) -> (Duration, BTreeMap<String, Totals>) {
        if self.newer.0.elapsed() >= period {
            self.older = std::mem::replace(&mut self.newer, (Instant::now(), now.clone()));
        }
        (
            self.older.0.elapsed().max(Duration::from_secs(1)),
            self.older.1.clone(),
        )
    }
}

impl Default for History {
    fn default() -> History {
        History::new()
    }
}

/// The pools of this bouncer and their stats, by database.
fn totals_by_db(pools: &[Arc<PoolEntry>]) -> BTreeMap<String, Totals> {
    let mut by_db: BTreeMap<String, Totals> = BTreeMap::new();
    by_db.entry(CONSOLE_DB.to_owned()).or_default();
    for p in pools {
        let t = by_db.entry(p.database.clone()).or_default();
        *t = t.plus(p.stats.totals(p.server_pools().map(|s| &s.counters)));
    }
    by_db
}

/// Each statistic's names, which PgBouncer spells differently per command:
/// SHOW STATS (total, average), SHOW STATS_TOTALS, SHOW STATS_AVERAGES, and
/// SHOW TOTALS (after `total_` / `avg_`). In [`total_values`] order.
const STAT_NAMES: [[&str; 5]; 11] = [
    [
        "total_server_assignment_count",
        "avg_server_assignment_count",
        "server_assignment_count",
        "server_assignment_count",
        "server_assignment_count",
    ],
    [
        "total_xact_count",
        "avg_xact_count",
        "xact_count",
        "xact_count",
        "xact_count",
    ],
    [
        "total_query_count",
        "avg_query_count",
        "query_count",
        "query_count",
        "query_count",
    ],
    [
        "total_received",
        "avg_recv",
        "bytes_received",
        "bytes_received",
        "client_bytes",
    ],
    [
        "total_sent",
        "avg_sent",
        "bytes_sent",
        "bytes_sent",
        "server_bytes",
    ],
    [
        "total_xact_time",
        "avg_xact_time",
        "xact_time",
        "xact_time",
        "xact_time",
    ],
    [
        "total_query_time",
        "avg_query_time",
        "query_time",
        "query_time",
        "query_time",
    ],
    [
        "total_wait_time",
        "avg_wait_time",
        "wait_time",
        "wait_time",
        "wait_time",
    ],
    [
        "total_client_parse_count",
        "avg_client_parse_count",
        "client_parse_count",
        "avg_client_parse_count",
        "ps_client_parse_count",
    ],
    [
        "total_server_parse_count",
        "avg_server_parse_count",
        "server_parse_count",
        "avg_server_parse_count",
        "ps_server_parse_count",
    ],
    [
        "total_bind_count",
        "avg_bind_count",
        "bind_count",
        "avg_bind_count",
        "ps_bind_count",
    ],
];

/// `database` and then the statistics' names in column `k` of [`STAT_NAMES`]
/// (and in `also`, after them), as numeric columns.
fn stat_table(k: &[usize]) -> Table {
    let mut columns: Vec<(&'static str, Ty)> = vec![("database", Ty::Text)];
    for &k in k {
        columns.extend(STAT_NAMES.iter().map(|n| (n[k], Ty::Numeric)));
    }
    Table::new(&columns)
}

fn total_values(t: &Totals) -> [u64; 11] {
    [
        t.assignments,
        t.xacts,
        t.queries,
        t.received,
        t.sent,
        t.xact_us,
        t.query_us,
        t.wait_us,
        t.client_parses,
        t.server_parses,
        t.binds,
    ]
}

/// Per-second rates, and per-event mean times, between two totals.
fn average_values(now: &Totals, base: &Totals, over: Duration) -> [u64; 11] {
    let d = now.minus(*base);
    let per_sec = |n: u64| (n as f64 / over.as_secs_f64()) as u64;
    let mean = |t: u64, n: u64| t.checked_div(n).unwrap_or(0);
    [
        per_sec(d.assignments),
        per_sec(d.xacts),
        per_sec(d.queries),
        per_sec(d.received),
        per_sec(d.sent),
        mean(d.xact_us, d.xacts),
        mean(d.query_us, d.queries),
        mean(d.wait_us, d.assignments),
        per_sec(d.client_parses),
        per_sec(d.server_parses),
        per_sec(d.binds),
    ]
}

fn averages(
    b: &Bouncer,
    pools: &[Arc<PoolEntry>],
) -> (BTreeMap<String, Totals>, BTreeMap<String, [u64; 11]>) {
    let now = totals_by_db(pools);
    let period = b
        .config
        .values
        .time("stats_period")
        .unwrap_or(Duration::from_secs(60))
        .max(Duration::from_secs(1));
    let (over, base) = b.state.history.lock().base(&now, period);
    let avgs = now
        .iter()
        .map(|(db, t)| {
            let zero = Totals::default();
            (
                db.clone(),
                average_values(t, base.get(db).unwrap_or(&zero), over),
            )
        })
        .collect();
    (now, avgs)
}

/// SHOW STATS.
pub fn stats(b: &Bouncer, pools: &[Arc<PoolEntry>]) -> Table {
    let mut t = stat_table(&[0, 1]);
    let (now, avgs) = averages(b, pools);
    for (db, totals) in &now {
        let mut row = vec![s(db)];
        row.extend(total_values(totals).iter().map(s));
        row.extend(avgs[db].iter().map(s));
        t.row(row);
    }
    t
}

/// SHOW STATS_TOTALS.
pub fn stats_totals(pools: &[Arc<PoolEntry>]) -> Table {
    let mut t = stat_table(&[2]);
    for (db, totals) in totals_by_db(pools) {
        let mut row = vec![s(db)];
        row.extend(total_values(&totals).iter().map(s));
        t.row(row);
    }
    t
}

/// SHOW STATS_AVERAGES.
pub fn stats_averages(b: &Bouncer, pools: &[Arc<PoolEntry>]) -> Table {
    let mut t = stat_table(&[3]);
    let (_, avgs) = averages(b, pools);
    for (db, a) in avgs {
        let mut row = vec![s(db)];
        row.extend(a.iter().map(s));
        t.row(row);
    }
    t
}

/// SHOW TOTALS.
pub fn totals(b: &Bouncer, pools: &[Arc<PoolEntry>]) -> Table {
    let mut t = Table::new(&[("name", Ty::Text), ("value", Ty::Numeric)]);
    let (now, avgs) = averages(b, pools);
    let all = now.values().fold(Totals::default(), |a, t| a.plus(*t));
    let mut avg = [0u64; 11];
    for a in avgs.values() {
        for (i, v) in a.iter().enumerate() {
            avg[i] += v;
        }
    }
    for (n, v) in STAT_NAMES.iter().zip(total_values(&all)) {
        t.row(vec![s(format!("total_{}", n[4])), s(v)]);
    }
    for (n, v) in STAT_NAMES.iter().zip(avg) {
        t.row(vec![s(format!("avg_{}", n[4])), s(v)]);
    }
    t
}

/// A timestamp as PgBouncer prints one: `YYYY-MM-DD HH:MM:SS UTC`.
pub fn timestamp(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn split_addr(a: Option<&str>) -> (Option<String>, Option<String>) {
    match a {
        Some(a) => match a.rsplit_once(':') {
            Some((host, port)) if port.parse::<u16>().is_ok() => (
                s(host.trim_start_matches('[').trim_end_matches(']')),
                s(port),
            ),
            _ => (s("unix"), s(0)),
        },
        None => (s("unix"), s(0)),
    }
}

const SOCKET_COLUMNS: &[(&str, Ty)] = &[
    ("type", Ty::Text),
    ("user", Ty::Text),
    ("database", Ty::Text),
    ("replication", Ty::Text),
    ("state", Ty::Text),
    ("addr", Ty::Text),
    ("port", Ty::Int),
    ("local_addr", Ty::Text),
    ("local_port", Ty::Int),
    ("connect_time", Ty::Text),
    ("request_time", Ty::Text),
    ("wait", Ty::Int),
    ("wait_us", Ty::Int),
    ("close_needed", Ty::Int),
    ("ptr", Ty::Text),
    ("link", Ty::Text),
    ("remote_pid", Ty::Int),
    ("tls", Ty::Text),
    ("application_name", Ty::Text),
    ("prepared_statements", Ty::Int),
    ("id", Ty::Int),
];

fn ptr(kind: char, id: u64) -> String {
    format!("0x{}{id:x}", if kind == 'C' { "c" } else { "5" })
}

/// A row of SHOW CLIENTS (`kind` 'C') or SHOW SERVERS ('S').
struct Socket<'a> {
    kind: char,
    user: &'a str,
    database: &'a str,
    state: &'static str,
    addr: (Option<String>, Option<String>),
    local: Option<&'a str>,
    connected: SystemTime,
    since: SystemTime,
    waited: Duration,
    close_needed: bool,
    id: u64,
    /// The id of the socket on the other side (a client's server, a
    /// server's client); 0 for none.
    link: u64,
    remote_pid: i32,
    tls: bool,
    application_name: &'a str,
    prepared: usize,
}

impl Socket<'_> {
    fn row(self) -> Vec<Option<String>> {
        let (local_addr, local_port) = split_addr(self.local);
        let other = if self.kind == 'C' { 'S' } else { 'C' };
        vec![
            s(self.kind),
            s(self.user),
            s(self.database),
            s("none"),
            s(self.state),
            self.addr.0,
            self.addr.1,
            local_addr,
            local_port,
            s(timestamp(self.connected)),
            s(timestamp(self.since)),
            s(self.waited.as_secs()),
            s(self.waited.subsec_micros()),
            s(u8::from(self.close_needed)),
            s(ptr(self.kind, self.id)),
            s(if self.link == 0 {
                String::new()
            } else {
                ptr(other, self.link)
            }),
            s(self.remote_pid),
            s(if self.tls { "TLS" } else { "" }),
            s(self.application_name),
            s(self.prepared),
            s(self.id),
        ]
    }
}

/// SHOW CLIENTS.
pub fn clients(pools: &[Arc<PoolEntry>]) -> Table {
    use crate::clients::ClientState;
    let mut t = Table::new(SOCKET_COLUMNS);
    for p in pools {
        for c in p.clients.all() {
            let state = c.state();
            t.row(
                Socket {
                    kind: 'C',
                    user: &c.user,
                    database: &p.database,
                    state: match state {
                        ClientState::Idle => "idle",
                        ClientState::Active => "active",
                        ClientState::Waiting => "waiting",
                    },
                    addr: match c.peer {
                        Some(a) => (s(a.ip()), s(a.port())),
                        None => (s("unix"), s(0)),
                    },
                    local: c.local.as_deref(),
                    connected: c.connected,
                    since: c.since(),
                    waited: match state {
                        ClientState::Waiting => c.since().elapsed().unwrap_or_default(),
                        _ => Duration::ZERO,
                    },
                    close_needed: false,
                    id: c.id,
                    link: c.server(),
                    remote_pid: 0,
                    tls: c.tls,
                    application_name: &c.application_name,
                    prepared: c.prepared(),
                }
                .row(),
            );
        }
    }
    t
}

/// SHOW SERVERS.
pub fn servers(pools: &[Arc<PoolEntry>]) -> Table {
    use spool::ServerState;
    let mut t = Table::new(SOCKET_COLUMNS);
    for p in pools {
        let check = p.config.server_check_delay;
        let addr = match &p.config.address {
            gat::Address::Tcp { host, port } => (s(host), s(port)),
            gat::Address::Unix(path) => (s(path.display()), s(0)),
        };
        for sv in p.pool.servers() {
            let idle_for = sv.since().elapsed().unwrap_or_default();
            t.row(
                Socket {
                    kind: 'S',
                    user: &p.user,
                    database: &p.database,
                    state: match sv.state() {
                        ServerState::Active => "active",
                        ServerState::Tested => "tested",
                        ServerState::Idle if check.is_some_and(|d| idle_for >= d) => "used",
                        ServerState::Idle => "idle",
                    },
                    addr: addr.clone(),
                    local: sv.local_address.as_deref(),
                    connected: sv.connected,
                    since: sv.since(),
                    waited: Duration::ZERO,
                    close_needed: sv.close_needed(),
                    id: sv.id,
                    link: sv.client(),
                    remote_pid: sv.pid,
                    tls: sv.tls,
                    application_name: "",
                    prepared: sv.prepared(),
                }
                .row(),
            );
        }
    }
    t
}

/// SHOW POOLS.
pub fn pools(b: &Bouncer, pools: &[Arc<PoolEntry>]) -> Table {
    use crate::clients::ClientState;
    use spool::ServerState;
    use std::sync::atomic::Ordering::Relaxed;
    let mut t = Table::new(&[
        ("database", Ty::Text),
        ("user", Ty::Text),
        ("cl_active", Ty::Int),
        ("cl_waiting", Ty::Int),
        ("cl_active_cancel_req", Ty::Int),
        ("cl_waiting_cancel_req", Ty::Int),
        ("sv_active", Ty::Int),
        ("sv_active_cancel", Ty::Int),
        ("sv_being_canceled", Ty::Int),
        ("sv_idle", Ty::Int),
        ("sv_used", Ty::Int),
        ("sv_tested", Ty::Int),
        ("sv_login", Ty::Int),
        ("maxwait", Ty::Int),
        ("maxwait_us", Ty::Int),
        ("pool_mode", Ty::Text),
        ("load_balance_hosts", Ty::Text),
    ]);
    let console = b
        .state
        .console_clients
        .load(std::sync::atomic::Ordering::Relaxed);
    let mut row0 = vec![s(CONSOLE_DB), s(CONSOLE_DB), s(console)];
    row0.extend(std::iter::repeat_n(s(0), 12));
    row0.extend([s("statement"), None]);
    t.row(row0);
    for p in pools {
        let clients = p.clients.all();
        let waiting: Vec<_> = clients
            .iter()
            .filter(|c| c.state() == ClientState::Waiting)
            .collect();
        let maxwait = waiting
            .iter()
            .map(|c| c.since().elapsed().unwrap_or_default())
            .max()
            .unwrap_or_default();
        let servers = p.pool.servers();
        let forwarding = p.cancels.forwarding.load(Relaxed);
        let check = p.config.server_check_delay;
        let count =
            |f: &dyn Fn(&spool::ServerStatus) -> bool| servers.iter().filter(|s| f(s)).count();
        let used = |sv: &spool::ServerStatus| {
            check.is_some_and(|d| sv.since().elapsed().unwrap_or_default() >= d)
        };
        t.row(vec![
            s(&p.database),
            s(&p.user),
            s(clients.len() - waiting.len()),
            s(waiting.len()),
            // Cancels are forwarded as they arrive: none ever waits, and
            // each in flight holds one connection to the server.
            s(forwarding),
            s(0),
            s(count(&|sv| sv.state() == ServerState::Active)),
            s(forwarding),
            s(p.cancels.releasing.load(Relaxed)),
            s(count(&|sv| sv.state() == ServerState::Idle && !used(sv))),
            s(count(&|sv| sv.state() == ServerState::Idle && used(sv))),
            s(count(&|sv| sv.state() == ServerState::Tested)),
            s(p.pool.stats().dialing),
            s(maxwait.as_secs()),
            s(maxwait.subsec_micros()),
            s(mode_name(p.mode)),
            None,
        ]);
    }
    t
}

fn mode_name(m: gat::PoolMode) -> &'static str {
    match m {
        gat::PoolMode::Session => "session",
        gat::PoolMode::Transaction => "transaction",
        gat::PoolMode::Statement => "statement",
    }
}

/// SHOW DATABASES.
pub fn databases(b: &Bouncer, pools: &[Arc<PoolEntry>]) -> Table {
    let mut t = Table::new(&[
        ("name", Ty::Text),
        ("host", Ty::Text),
        ("port", Ty::Int),
        ("database", Ty::Text),
        ("force_user", Ty::Text),
        ("pool_size", Ty::Int),
        ("min_pool_size", Ty::Int),
        ("reserve_pool_size", Ty::Int),
        ("server_lifetime", Ty::Int),
        ("pool_mode", Ty::Text),
        ("load_balance_hosts", Ty::Text),
        ("max_connections", Ty::Int),
        ("current_connections", Ty::Int),
        ("max_client_connections", Ty::Int),
        ("current_client_connections", Ty::Int),
        ("paused", Ty::Int),
        ("disabled", Ty::Int),
    ]);
    let v = &b.config.values;
    let int = |n: &str| b.int(n);
    let console = b
        .state
        .console_clients
        .load(std::sync::atomic::Ordering::Relaxed);
    t.row(vec![
        s(CONSOLE_DB),
        None,
        s(int("listen_port")),
        s(CONSOLE_DB),
        s(CONSOLE_DB),
        s(2),
        s(0),
        s(0),
        s(0),
        s("statement"),
        None,
        s(0),
        s(0),
        s(0),
        s(console),
        s(0),
        s(0),
    ]);
    // Listed entries, then databases served through the * entry.
    let mut names: Vec<String> = b.config.databases.iter().map(|d| d.name.clone()).collect();
    for p in pools {
        if !names.contains(&p.database) {
            names.push(p.database.clone());
        }
    }
    for name in names {
        let Some(db) = b.config.database(&name) else {
            continue;
        };
        let of_db: Vec<_> = pools.iter().filter(|p| p.database == name).collect();
        let servers: usize = of_db.iter().map(|p| p.pool.stats().live).sum();
        t.row(vec![
            s(&name),
            db.host.clone(),
            s(db.port),
            s(db.dbname.clone().unwrap_or_else(|| name.clone())),
            db.user.clone(),
            s(db.pool_size.unwrap_or(int("default_pool_size"))),
            s(db.min_pool_size.unwrap_or(int("min_pool_size"))),
            s(db.reserve_pool.unwrap_or(int("reserve_pool_size"))),
            s(db.server_lifetime
                .unwrap_or_else(|| v.time("server_lifetime").unwrap_or_default())
                .as_secs()),
            db.pool_mode.map(|m| mode_name(m).to_owned()),
            None,
            s(db.max_db_connections.unwrap_or(int("max_db_connections"))),
            s(servers),
            s(db.max_db_client_connections
                .unwrap_or(int("max_db_client_connections"))),
            s(b.state.db_clients.get(&name)),
            s(u8::from(b.state.paused.lock().contains(&name))),
            s(u8::from(b.state.disabled.lock().contains(&name))),
        ]);
    }
    t
}

/// SHOW USERS.
pub fn users(b: &Bouncer, pools: &[Arc<PoolEntry>]) -> Table {
    let mut t = Table::new(&[
        ("name", Ty::Text),
        ("pool_size", Ty::Text),
        ("reserve_pool_size", Ty::Text),
        ("pool_mode", Ty::Text),
        ("max_user_connections", Ty::Int),
        ("current_connections", Ty::Int),
        ("max_user_client_connections", Ty::Int),
        ("current_client_connections", Ty::Int),
    ]);
    let mut names: Vec<String> = b.config.users.iter().map(|u| u.name.clone()).collect();
    for c in &b.config.credentials {
        if !names.contains(&c.user) {
            names.push(c.user.clone());
        }
    }
    for p in pools {
        if !names.contains(&p.user) {
            names.push(p.user.clone());
        }
    }
    names.sort();
    let global_max = b.config.values.int("max_user_connections").unwrap_or(0);
    let global_client_max = b
        .config
        .values
        .int("max_user_client_connections")
        .unwrap_or(0);
    for name in names {
        let u = b.config.user(&name);
        let of_user: Vec<_> = pools.iter().filter(|p| p.user == name).collect();
        let servers: usize = of_user.iter().map(|p| p.pool.stats().live).sum();
        let padded = |n: Option<u32>| s(n.map(|n| format!("{n:9}")).unwrap_or_default());
        t.row(vec![
            s(&name),
            padded(u.and_then(|u| u.pool_size)),
            padded(u.and_then(|u| u.reserve_pool_size)),
            u.and_then(|u| u.pool_mode).map(|m| mode_name(m).to_owned()),
            s(u.and_then(|u| u.max_user_connections).unwrap_or(global_max)),
            s(servers),
            s(u.and_then(|u| u.max_user_client_connections)
                .unwrap_or(global_client_max)),
            s(b.state.user_clients.get(&name)),
        ]);
    }
    t
}

/// SHOW CONFIG.
pub fn config(b: &Bouncer) -> Table {
    let mut t = Table::text(&["key", "value", "default", "changeable"]);
    for (k, value) in b.config.values.iter() {
        let shown = |text: &str| -> String {
            let is_time = k.name.ends_with("_timeout")
                || k.name.ends_with("_lifetime")
                || k.name.ends_with("_delay")
                || k.name == "server_login_retry"
                || k.name.ends_with("_ttl");
            match gat::pgbouncer::settings::parse_seconds(text) {
                Some(d) if is_time => {
                    let secs = d.as_secs_f64();
                    if secs.fract() == 0.0 {
                        format!("{}", secs as u64)
                    } else {
                        format!("{secs}")
                    }
                }
                _ => text.to_owned(),
            }
        };
        t.row(vec![
            s(k.name),
            s(shown(value)),
            s(shown(k.default)),
            s(if k.changeable { "yes" } else { "no" }),
        ]);
    }
    t
}

/// SHOW LISTS.
pub fn lists(b: &Bouncer, pools: &[Arc<PoolEntry>]) -> Table {
    let mut t = Table::new(&[("list", Ty::Text), ("items", Ty::Int)]);
    let clients: usize = pools.iter().map(|p| p.clients.len()).sum();
    let servers: usize = pools.iter().map(|p| p.pool.stats().live).sum();
    let databases = b.config.databases.len() + 1;
    let mut users: Vec<&str> = b
        .config
        .credentials
        .iter()
        .map(|c| c.user.as_str())
        .collect();
    users.extend(pools.iter().map(|p| p.user.as_str()));
    users.sort_unstable();
    users.dedup();
    let console = b
        .state
        .console_clients
        .load(std::sync::atomic::Ordering::Relaxed);
    for (name, n) in [
        ("databases", databases),
        ("users", users.len()),
        ("peers", 0),
        ("pools", pools.len() + 1),
        ("peer_pools", 0),
        ("free_clients", 0),
        ("used_clients", clients + console),
        ("login_clients", 0),
        ("free_servers", 0),
        ("used_servers", servers),
        ("dns_names", 0),
        ("dns_zones", 0),
        ("dns_queries", 0),
        ("dns_pending", 0),
    ] {
        t.row(vec![s(name), s(n)]);
    }
    t
}

/// SHOW MEM: pggat has no slab caches; the rows give the size of each kind
/// of object and how many are in use.
pub fn mem(pools: &[Arc<PoolEntry>]) -> Table {
    let mut t = Table::new(&[
        ("name", Ty::Text),
        ("size", Ty::Int),
        ("used", Ty::Int),
        ("free", Ty::Int),
        ("memtotal", Ty::Int),
    ]);
    let clients: usize = pools.iter().map(|p| p.clients.len()).sum();
    let servers: usize = pools.iter().map(|p| p.pool.stats().live).sum();
    for (name, size, used) in [
        ("pool_cache", std::mem::size_of::<PoolEntry>(), pools.len()),
        (
            "server_cache",
            std::mem::size_of::<spool::Server>(),
            servers,
        ),
        (
            "client_cache",
            std::mem::size_of::<crate::clients::ClientInfo>(),
            clients,
        ),
    ] {
        t.row(vec![s(name), s(size), s(used), s(0), s(size * used)]);
    }
    t
}

/// SHOW PEERS, PEER_POOLS, DNS_HOSTS and DNS_ZONES: PgBouncer's columns and
/// no rows, truthfully: pggat has no peers (it refuses `[peers]`) and no
/// DNS cache (names are resolved on each dial).
pub fn nothing_to_list(what: &str) -> Option<Table> {
    let columns: &[(&str, Ty)] = match what {
        "peers" => &[
            ("peer_id", Ty::Int),
            ("host", Ty::Text),
            ("port", Ty::Int),
            ("pool_size", Ty::Int),
        ],
        "peer_pools" => &[
            ("peer_id", Ty::Int),
            ("cl_active_cancel_req", Ty::Int),
            ("cl_waiting_cancel_req", Ty::Int),
            ("sv_active_cancel", Ty::Int),
            ("sv_login", Ty::Int),
        ],
        "dns_hosts" => &[
            ("hostname", Ty::Text),
            ("ttl", Ty::Int),
            ("addrs", Ty::Text),
        ],
        "dns_zones" => &[
            ("zonename", Ty::Text),
            ("serial", Ty::Int),
            ("count", Ty::Int),
        ],
        _ => return None,
    };
    Some(Table::new(columns))
}

/// What pggat says it is as PgBouncer: SHOW VERSION's value, and the first
/// line of `pgbouncer --version` (scripts compare the two).
pub fn version_line() -> String {
    format!("PgBouncer 1.24.1 (pggat {})", env!("CARGO_PKG_VERSION"))
}

/// SHOW VERSION.
pub fn version() -> Table {
    let mut t = Table::text(&["version"]);
    t.row(vec![s(version_line())]);
    t
}

/// SHOW STATE.
pub fn state(b: &Bouncer) -> Table {
    let mut t = Table::text(&["key", "value"]);
    let mode = *b.state.pause_all.lock();
    let yes = |x: bool| s(if x { "yes" } else { "no" });
    t.row(vec![s("active"), yes(mode.is_none())]);
    t.row(vec![s("paused"), yes(mode == Some(PauseKind::Pause))]);
    t.row(vec![s("suspended"), yes(mode == Some(PauseKind::Suspend))]);
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_civil_time() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_478_400 + 3661);
        assert_eq!(timestamp(t), "2026-11-24 01:01:01 UTC");
        assert_eq!(timestamp(UNIX_EPOCH), "1970-01-01 00:00:00 UTC");
    }
}
