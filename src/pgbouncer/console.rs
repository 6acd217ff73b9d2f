//! The admin console: the virtual database `pgbouncer`, answering PgBouncer's
//! commands over the simple query protocol with PgBouncer's tags, errors and
//! columns (see [`super::show`]).
//!
//! Errors are ERROR 08P01 followed by ReadyForQuery, as PgBouncer sends them,
//! and the connection stays open. `stats_users` may run SHOW; everything else
//! needs `admin_users`.

use std::sync::Arc;

use fed::Conn;
use fed::messages::backend;
use fed::sqlstate::SqlState;

use gat::pgbouncer::ini::unquote;

use super::show::{self, Table};
use super::{Bouncer, CONSOLE_DB, PauseKind, Role};
use crate::app::{Control, Shared, ShutdownKind};
use crate::errors::ClientError;
use crate::route::PoolEntry;

/// Parameters the console reports at startup, as PgBouncer's.
const WELCOME: &[(&str, &str)] = &[
    ("server_version", "1.24.1/bouncer"),
    ("client_encoding", "UTF8"),
    ("server_encoding", "UTF8"),
    ("DateStyle", "ISO"),
    ("TimeZone", "GMT"),
    ("standard_conforming_strings", "on"),
    ("is_superuser", "on"),
];

/// Settings a console client may SHOW or SET without effect (drivers send them).
const FAKE_PARAMS: &[(&str, &str)] = &[
    ("client_encoding", "UTF-8"),
    ("default_transaction_isolation", "read committed"),
    ("standard_conforming_strings", "on"),
    ("datestyle", "ISO"),
    ("timezone", "GMT"),
    ("extra_float_digits", "2"),
];

const HELP: &str = "\n\tSHOW HELP|CONFIG|DATABASES|POOLS|CLIENTS|SERVERS|USERS|VERSION\n\tSHOW LISTS|MEM|STATE|PEERS|PEER_POOLS|DNS_HOSTS|DNS_ZONES\n\tSHOW STATS|STATS_TOTALS|STATS_AVERAGES|TOTALS\n\tSET key = arg\n\tRELOAD\n\tPAUSE [<db>]\n\tRESUME [<db>]\n\tDISABLE <db>\n\tENABLE <db>\n\tRECONNECT [<db>]\n\tWAIT_CLOSE [<db>]\n\tKILL [<db>]\n\tKILL_CLIENT <client_id>\n\tSUSPEND\n\tSHUTDOWN\n\tSHUTDOWN WAIT_FOR_SERVERS|WAIT_FOR_CLIENTS";

/// Serves a logged-in console client until it leaves.
pub async fn serve(
    conn: &mut Conn,
    bouncer: Arc<Bouncer>,
    role: Role,
    shared: &Shared,
    key: (i32, i32),
) -> Result<(), ClientError> {
    let _counted = crate::clients::Counted::new(&bouncer.state.console_clients);
    for (name, value) in WELCOME {
        backend::ParameterStatus {
            name: name.as_bytes(),
            value: value.as_bytes(),
        }
        .encode(conn.out());
    }
    backend::BackendKeyData {
        process_id: key.0,
        secret_key: key.1,
    }
    .encode(conn.out());
    backend::ReadyForQuery { status: b'I' }.encode(conn.out());
    loop {
        conn.flush().await.map_err(|_| crate::session::gone())?;
        // A shutdown ends console sessions: they would otherwise hold a
        // WAIT_FOR_CLIENTS shutdown open, the one that asked for it included.
        let msg = tokio::select! {
            m = conn.read() => match m {
                Ok(m) => m,
                Err(_) => return Ok(()),
            },
            _ = shared.shutdown_requested() => return Ok(()),
            _ = shared.shutdown_deadline() => return Ok(()),
        };
        match msg.tag {
            b'X' => return Ok(()),
            b'Q' => {
                let text = fed::messages::frontend::Query::decode(&msg.body)
                    .map(|q| String::from_utf8_lossy(q.query).into_owned())
                    .unwrap_or_default();
                let bouncer = shared
                    .bouncer(&bouncer.config.path)
                    .unwrap_or(bouncer.clone());
                // A shutdown ends a command still waiting (PAUSE, WAIT_CLOSE).
                let done = tokio::select! {
                    done = run(&text, &bouncer, role, shared, conn) => done,
                    _ = shared.shutdown_requested() => return Ok(()),
                };
                match done {
                    Ok(Done::Answered) => {}
                    Ok(Done::Silent) => continue,
                    Err(refused) => refused.encode(conn.out()),
                }
                backend::ReadyForQuery { status: b'I' }.encode(conn.out());
            }
            b'P' | b'B' | b'E' | b'D' | b'S' | b'H' | b'C' => {
                return Err(ClientError::fatal(
                    SqlState::FEATURE_NOT_SUPPORTED,
                    "extended query protocol not supported by admin console",
                ));
            }
            other => {
                return Err(ClientError::fatal(
                    SqlState::PROTOCOL_VIOLATION,
                    format!(
                        "unsupported packet type for admin console: {}",
                        other as char
                    ),
                ));
            }
        }
    }
}

/// Why a command was refused: an ERROR, after which the session goes on.
struct Refused {
    code: SqlState,
    message: String,
}

impl Refused {
    fn encode(self, out: &mut bytes::BytesMut) {
        ClientError::error(self.code, self.message).encode(out);
    }
}

/// PgBouncer's catch-all code for a refused command.
impl From<String> for Refused {
    fn from(message: String) -> Refused {
        Refused {
            code: SqlState::PROTOCOL_VIOLATION,
            message,
        }
    }
}

impl From<&str> for Refused {
    fn from(message: &str) -> Refused {
        message.to_owned().into()
    }
}

enum Done {
    /// A response (without ReadyForQuery) was written.
    Answered,
    /// Nothing more is sent (SHUTDOWN: the process is going away).
    Silent,
}

/// A parsed command: up to two words, or `SET key = value`.
#[derive(Debug, PartialEq, Eq)]
enum Command {
    Words(String, Option<String>),
    Set(String, String),
}

/// PgBouncer's grammar: `WORD [WORD]` or `SET WORD (=|TO) (WORD|'string')`,
/// optionally ended by `;`. Words may be double-quoted.
fn parse(text: &str) -> Option<Command> {
    let body = text.trim();
    let body = body.strip_suffix(';').unwrap_or(body).trim_end();
    let mut tokens = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        let (token, after) = if rest.starts_with(['"', '\'']) {
            unquote(rest, rest.chars().next()?)?
        } else if let Some(after) = rest.strip_prefix('=') {
            ("=".to_owned(), after)
        } else {
            let end = rest
                .find(|c: char| c.is_whitespace() || c == '=')
                .unwrap_or(rest.len());
            (rest[..end].to_owned(), &rest[end..])
        };
        tokens.push(token);
        rest = after;
    }
    match tokens.as_slice() {
        [set, key, op, value]
            if set.eq_ignore_ascii_case("set") && (op == "=" || op.eq_ignore_ascii_case("to")) =>
        {
            Some(Command::Set(key.clone(), value.clone()))
        }
        [cmd] => Some(Command::Words(cmd.to_ascii_lowercase(), None)),
        [cmd, arg] if arg != "=" => {
            Some(Command::Words(cmd.to_ascii_lowercase(), Some(arg.clone())))
        }
        _ => None,
    }
}

async fn run(
    text: &str,
    b: &Arc<Bouncer>,
    role: Role,
    shared: &Shared,
    conn: &mut Conn,
) -> Result<Done, Refused> {
    let invalid = || Refused::from(format!("invalid command '{text}', use SHOW HELP;"));
    let command = parse(text).ok_or_else(invalid)?;
    let pools = shared.bouncer_pools(&b.config.path);
    let admin = || {
        if role == Role::Admin {
            Ok(())
        } else {
            Err("admin access needed".to_owned())
        }
    };
    let out = conn.out();
    match command {
        Command::Set(key, value) => {
            if FAKE_PARAMS
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case(&key))
            {
                notice(out, "SET ignored", None);
                tag(out, "SET");
                return Ok(Done::Answered);
            }
            admin()?;
            set(b, shared, &key, &value).await?;
            tag(out, &format!("SET {key}={value}"));
        }
        Command::Words(cmd, arg) => match (cmd.as_str(), arg) {
            ("show" | "select", Some(what)) => {
                let what = what.to_ascii_lowercase();
                if let Some((name, value)) = FAKE_PARAMS.iter().find(|(k, _)| *k == what) {
                    let mut t = Table::text(&[name]);
                    t.row(vec![Some((*value).to_owned())]);
                    t.encode(out);
                    return Ok(Done::Answered);
                }
                let table = match what.as_str() {
                    "help" => {
                        notice(out, "Console usage", Some(HELP));
                        tag(out, "SHOW");
                        return Ok(Done::Answered);
                    }
                    "pools" => show::pools(b, &pools),
                    "stats" => show::stats(b, &pools),
                    "stats_totals" => show::stats_totals(&pools),
                    "stats_averages" => show::stats_averages(b, &pools),
                    "totals" => show::totals(b, &pools),
                    "clients" => show::clients(&pools),
                    "servers" => show::servers(&pools),
                    "databases" => show::databases(b, &pools),
                    "users" => show::users(b, &pools),
                    "config" => show::config(b),
                    "lists" => show::lists(b, &pools),
                    "mem" => show::mem(&pools),
                    "version" => show::version(),
                    "state" => show::state(b),
                    "fds" | "sockets" | "active_sockets" => {
                        return Err(format!(
                            "SHOW {}: not supported by pggat (it has no online restart to hand sockets to)",
                            what.to_ascii_uppercase()
                        )
                        .into());
                    }
                    other => show::nothing_to_list(other).ok_or_else(invalid)?,
                };
                table.encode(out);
            }
            ("pause", db) => {
                admin()?;
                pause(b, shared, db.as_deref()).await?;
                tag(conn.out(), "PAUSE");
            }
            ("suspend", None) => {
                admin()?;
                // Servers are kept: nothing to wait for.
                begin_pause(b, shared, None, PauseKind::Suspend)?;
                tag(out, "SUSPEND");
            }
            ("resume", db) => {
                admin()?;
                match db {
                    None => resume_all(b, &pools)?,
                    Some(db) => {
                        known(b, &db)?;
                        if !b.state.paused.lock().remove(&db) {
                            return Err(format!("database {db} is not paused").into());
                        }
                        if b.state.pause_all.lock().is_none() {
                            pools
                                .iter()
                                .filter(|p| p.database == db)
                                .for_each(|p| p.pool.resume());
                        }
                    }
                }
                tag(out, "RESUME");
            }
            ("kill", db) => {
                admin()?;
                if b.state.pause_all.lock().is_some() {
                    return Err("already suspended/paused".into());
                }
                match &db {
                    Some(db) => {
                        not_console(db, "kill")?;
                        known(b, db)?;
                        b.state.paused.lock().insert(db.clone());
                    }
                    None => b
                        .state
                        .paused
                        .lock()
                        .extend(pools.iter().map(|p| p.database.clone())),
                }
                let pools = shared.bouncer_pools(&b.config.path);
                let targets = pools
                    .iter()
                    .filter(|p| db.as_ref().is_none_or(|d| &p.database == d));
                for p in targets {
                    p.pool.pause();
                    p.clients.all().iter().for_each(|c| c.kill());
                    p.pool.reconnect();
                }
                tag(out, "KILL");
            }
            ("kill_client", Some(id)) => {
                admin()?;
                let client = id
                    .parse::<u64>()
                    .ok()
                    .and_then(|id| {
                        pools
                            .iter()
                            .find_map(|p| p.clients.all().into_iter().find(|c| c.id == id))
                    })
                    .ok_or_else(|| format!("client not found: {id}"))?;
                client.kill();
                tag(out, "KILL_CLIENT");
            }
            ("wait_close", db) => {
                admin()?;
                if let Some(db) = &db {
                    known(b, db)?;
                }
                let targets = pools
                    .iter()
                    .filter(|p| db.as_ref().is_none_or(|d| &p.database == d));
                for p in targets {
                    p.pool.wait_closed().await;
                }
                tag(conn.out(), "WAIT_CLOSE");
            }
            ("reconnect", db) => {
                admin()?;
                if let Some(db) = &db {
                    not_console(db, "reconnect")?;
                    known(b, db)?;
                }
                pools
                    .iter()
                    .filter(|p| db.as_ref().is_none_or(|d| &p.database == d))
                    .for_each(|p| p.pool.reconnect());
                tag(out, "RECONNECT");
            }
            ("disable" | "enable", db) => {
                admin()?;
                let db = db.ok_or("a database is required")?;
                not_console(&db, &cmd)?;
                known(b, &db)?;
                if cmd == "disable" {
                    b.state.disabled.lock().insert(db);
                    tag(out, "DISABLE");
                } else {
                    b.state.disabled.lock().remove(&db);
                    tag(out, "ENABLE");
                }
            }
            ("reload", None) => {
                admin()?;
                if !shared.control(Control::Reload).await.unwrap_or(false) {
                    return Err(Refused {
                        code: SqlState::CONFIG_FILE_ERROR,
                        message: "RELOAD failed, see logs for additional details".into(),
                    });
                }
                tag(conn.out(), "RELOAD");
            }
            ("shutdown", arg) => {
                admin()?;
                let kind = match arg.as_deref().map(str::to_ascii_lowercase).as_deref() {
                    None => ShutdownKind::Immediate,
                    Some("wait_for_servers") => ShutdownKind::WaitForServers,
                    Some("wait_for_clients") => ShutdownKind::WaitForClients,
                    Some(_) => return Err(invalid()),
                };
                shared.request_shutdown(kind);
                if kind == ShutdownKind::Immediate {
                    return Ok(Done::Silent);
                }
                tag(out, "SHUTDOWN");
            }
            _ => return Err(invalid()),
        },
    }
    Ok(Done::Answered)
}

fn tag(out: &mut bytes::BytesMut, tag: &str) {
    backend::CommandComplete {
        tag: tag.as_bytes(),
    }
    .encode(out);
}

fn notice(out: &mut bytes::BytesMut, message: &str, detail: Option<&str>) {
    backend::NoticeResponse::encode_parts(
        out,
        fed::messages::Severity::Notice,
        SqlState::SUCCESSFUL_COMPLETION,
        message,
        detail,
        None,
    );
}

fn not_console(db: &str, what: &str) -> Result<(), String> {
    if db == CONSOLE_DB {
        return Err(format!("cannot {what} admin db: {db}"));
    }
    Ok(())
}

fn known(b: &Bouncer, db: &str) -> Result<(), String> {
    if b.config.database(db).is_none() {
        return Err(format!("no such database: {db}"));
    }
    Ok(())
}

/// SIGUSR1: PAUSE of every pgbouncer.ini served. Paused at once (so a
/// SIGUSR2 right after finds it paused); servers close in the background.
pub fn pause_on_signal(shared: &Shared) {
    for b in shared.generation().router.all_bouncers() {
        let ini = b.config.path.display().to_string();
        match begin_pause(&b, shared, None, PauseKind::Pause) {
            Ok(targets) => {
                tracing::info!(ini, "SIGUSR1: paused");
                tokio::spawn(quiesce(targets));
            }
            Err(e) => tracing::warn!(ini, "SIGUSR1: {e}"),
        }
    }
}

/// SIGUSR2: RESUME of every pgbouncer.ini served.
pub fn resume_on_signal(shared: &Shared) {
    for b in shared.generation().router.all_bouncers() {
        let pools = shared.bouncer_pools(&b.config.path);
        match resume_all(&b, &pools) {
            Ok(()) => tracing::info!(ini = %b.config.path.display(), "SIGUSR2: resumed"),
            Err(e) => tracing::warn!(ini = %b.config.path.display(), "SIGUSR2: {e}"),
        }
    }
}

/// RESUME (of all): ends a PAUSE or SUSPEND of everything; databases paused
/// by name stay paused.
pub(crate) fn resume_all(b: &Bouncer, pools: &[Arc<PoolEntry>]) -> Result<(), String> {
    if b.state.pause_all.lock().take().is_none() {
        return Err("pooler is not paused/suspended".into());
    }
    let paused = b.state.paused.lock().clone();
    for p in pools.iter().filter(|p| !paused.contains(&p.database)) {
        p.pool.resume();
    }
    Ok(())
}

/// PAUSE [db]: new transactions wait; answered once every server of the
/// database (or of all) has been released and closed, or a RESUME came
/// first.
async fn pause(b: &Bouncer, shared: &Shared, db: Option<&str>) -> Result<(), String> {
    quiesce(begin_pause(b, shared, db, PauseKind::Pause)?).await;
    Ok(())
}

/// Waits for the paused pools' servers to be released and closed.
async fn quiesce(targets: Vec<Arc<PoolEntry>>) {
    for p in targets {
        p.pool.quiesce().await;
    }
}

/// The immediate part of PAUSE (and of SUSPEND, `kind` for all databases):
/// marks the database (or all) paused and stops its pools handing out
/// servers; the pools to quiesce.
fn begin_pause(
    b: &Bouncer,
    shared: &Shared,
    db: Option<&str>,
    kind: PauseKind,
) -> Result<Vec<Arc<PoolEntry>>, String> {
    let mut all = b.state.pause_all.lock();
    if all.is_some() {
        return Err("already suspended/paused".into());
    }
    match db {
        Some(db) => {
            not_console(db, "pause")?;
            known(b, db)?;
            if !b.state.paused.lock().insert(db.to_owned()) {
                return Err("already suspended/paused".into());
            }
        }
        None => {
            if kind == PauseKind::Suspend && !b.state.paused.lock().is_empty() {
                return Err("cannot suspend with paused databases".into());
            }
            *all = Some(kind);
        }
    }
    drop(all);
    // Listed after the flag is set: a pool made since is made paused.
    let targets: Vec<Arc<PoolEntry>> = shared
        .bouncer_pools(&b.config.path)
        .into_iter()
        .filter(|p| db.is_none_or(|db| p.database == db))
        .collect();
    for p in &targets {
        p.pool.pause();
    }
    Ok(targets)
}

/// SET key = value: checked and applied by a reload with the new value, so
/// pools whose settings it changes are replaced and the rest are kept.
async fn set(b: &Bouncer, shared: &Shared, key: &str, value: &str) -> Result<(), String> {
    let Some(known) = gat::pgbouncer::settings::lookup(key) else {
        tracing::warn!(key, "SET of an unknown setting");
        return Err("SET failed".into());
    };
    if !known.changeable {
        // PgBouncer accepts these and changes nothing until a restart.
        tracing::warn!(key, "SET of a setting that only a restart changes: ignored");
        return Ok(());
    }
    let previous = b
        .state
        .overrides
        .lock()
        .insert(known.name.to_owned(), value.to_owned());
    let ok = shared.control(Control::Reload).await.unwrap_or(false);
    if !ok {
        let mut overrides = b.state.overrides.lock();
        match previous {
            Some(p) => overrides.insert(known.name.to_owned(), p),
            None => overrides.remove(known.name),
        };
        return Err("SET failed".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grammar() {
        let w = |c: &str, a: Option<&str>| Some(Command::Words(c.into(), a.map(Into::into)));
        assert_eq!(parse("SHOW POOLS;"), w("show", Some("POOLS")));
        assert_eq!(parse("  pause  app "), w("pause", Some("app")));
        assert_eq!(parse("pause \"my db\""), w("pause", Some("my db")));
        assert_eq!(parse("RELOAD"), w("reload", None));
        assert_eq!(
            parse("set default_pool_size = 30"),
            Some(Command::Set("default_pool_size".into(), "30".into()))
        );
        assert_eq!(
            parse("SET server_reset_query TO 'DISCARD ''x'''"),
            Some(Command::Set(
                "server_reset_query".into(),
                "DISCARD 'x'".into()
            ))
        );
        assert_eq!(parse("show pools now please"), None);
        assert_eq!(parse(""), None);
        assert_eq!(parse("set x ="), None);
    }
}
