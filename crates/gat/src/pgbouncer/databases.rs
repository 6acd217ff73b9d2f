//! `[databases]` and `[users]`: libpq-style `key=value` strings naming where each database is and how its
//! pool differs from the defaults.

use std::time::Duration;

use super::ini::Entry;
use super::settings::{parse_seconds, split_list};
use crate::PoolMode;
use crate::error::{Error, Pos, Result};

/// One `[databases]` entry: what clients asking for `name` are connected to.
#[derive(Debug, Clone, PartialEq)]
pub struct Database {
    /// The name clients ask for (`*` for the fallback entry).
    pub name: String,
    /// The server's database; `None` means the name the client asked for.
    pub dbname: Option<String>,
    /// The server host: a name, an address, or a unix socket directory (starts with `/`); `None` means
    /// the unix socket in `unix_socket_dir`'s default place.
    pub host: Option<String>,
    /// The server port.
    pub port: u16,
    /// Forced server user: every client of this database is served by servers logged in as it.
    pub user: Option<String>,
    /// The forced user's password.
    pub password: Option<String>,
    /// The user whose servers run `auth_query` for this database's clients.
    pub auth_user: Option<String>,
    /// The database `auth_query` runs in.
    pub auth_dbname: Option<String>,
    /// This database's `auth_query`.
    pub auth_query: Option<String>,
    /// Servers per (database, user) pool, instead of `default_pool_size`.
    pub pool_size: Option<u32>,
    /// Servers kept open, instead of `min_pool_size`.
    pub min_pool_size: Option<u32>,
    /// Extra servers for clients that waited too long, instead of `reserve_pool_size`.
    pub reserve_pool: Option<u32>,
    /// Pool mode, instead of `pool_mode`.
    pub pool_mode: Option<PoolMode>,
    /// Most servers of this database over all its users; `None` uses `max_db_connections`.
    pub max_db_connections: Option<u32>,
    /// Most clients of this database; `None` uses `max_db_client_connections`.
    pub max_db_client_connections: Option<u32>,
    /// Server lifetime, instead of `server_lifetime`.
    pub server_lifetime: Option<Duration>,
    /// Run on every new server connection before a client gets it.
    pub connect_query: Option<String>,
    /// Startup parameters for its servers: `client_encoding`, `datestyle`, `timezone`,
    /// `application_name`.
    pub parameters: Vec<(String, String)>,
    /// Where the entry is.
    pub pos: Pos,
}

/// One `[users]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    /// The user it applies to.
    pub name: String,
    /// Pool mode for this user's pools (wins over the database's).
    pub pool_mode: Option<PoolMode>,
    /// Servers per pool of this user (wins over the database's).
    pub pool_size: Option<u32>,
    /// Reserve per pool of this user.
    pub reserve_pool_size: Option<u32>,
    /// Most servers of this user over all databases; `None` uses `max_user_connections`.
    pub max_user_connections: Option<u32>,
    /// Most clients logged in as this user; `None` uses `max_user_client_connections`.
    pub max_user_client_connections: Option<u32>,
    /// Where the entry is.
    pub pos: Pos,
}

/// Parses a `[databases]` entry.
pub fn database(entry: &Entry) -> Result<Database> {
    let mut db = Database {
        name: entry.key.clone(),
        dbname: None,
        host: None,
        port: 5432,
        user: None,
        password: None,
        auth_user: None,
        auth_dbname: None,
        auth_query: None,
        pool_size: None,
        min_pool_size: None,
        reserve_pool: None,
        pool_mode: None,
        max_db_connections: None,
        max_db_client_connections: None,
        server_lifetime: None,
        connect_query: None,
        parameters: Vec::new(),
        pos: entry.pos.clone(),
    };
    for pair in pairs(entry)? {
        let (key, value) = (&pair.key, &pair.value);
        match key.as_str() {
            "dbname" => db.dbname = Some(value.clone()),
            "host" => {
                if split_list(value).len() > 1 {
                    return Err(pair.bad(
                        "one host: pggat does not balance a database over several hosts (use a Gatfile `pool hybrid`)",
                    ));
                }
                db.host = (!value.is_empty()).then(|| value.clone());
            }
            "port" => db.port = value.parse().map_err(|_| pair.bad("a port number"))?,
            "user" => db.user = Some(value.clone()),
            "password" => db.password = Some(value.clone()),
            "auth_user" => db.auth_user = Some(value.clone()),
            "auth_dbname" => db.auth_dbname = Some(value.clone()),
            "auth_query" => db.auth_query = Some(value.clone()),
            "pool_size" => db.pool_size = Some(pair.count()?),
            "min_pool_size" => db.min_pool_size = Some(pair.count()?),
            "reserve_pool" | "reserve_pool_size" => db.reserve_pool = Some(pair.count()?),
            "max_db_connections" => db.max_db_connections = Some(pair.count()?),
            "max_db_client_connections" => db.max_db_client_connections = Some(pair.count()?),
            "pool_mode" => db.pool_mode = Some(pair.pool_mode()?),
            "server_lifetime" => {
                db.server_lifetime = Some(parse_seconds(value).ok_or_else(|| pair.bad("seconds"))?)
            }
            "client_encoding" | "datestyle" | "timezone" | "application_name" => {
                db.parameters.push((key.clone(), value.clone()))
            }
            "connect_query" => db.connect_query = Some(value.clone()),
            "load_balance_hosts" => {
                return Err(pair.bad("a key pggat supports: load_balance_hosts is not implemented"));
            }
            _ => {
                return Err(Error::at(
                    &entry.value_pos,
                    format!("unknown database option {key:?}"),
                    "dbname, host, port, user, password, auth_user, auth_dbname, auth_query, pool_size, min_pool_size, reserve_pool, max_db_connections, max_db_client_connections, pool_mode, server_lifetime, connect_query, client_encoding, datestyle, timezone or application_name",
                ));
            }
        }
    }
    if db.password.is_some() && db.user.is_none() {
        return Err(Error::at(
            &entry.value_pos,
            "password without user",
            "user=NAME with password=SECRET (a forced user)",
        ));
    }
    Ok(db)
}

/// Parses a `[users]` entry.
pub fn user(entry: &Entry) -> Result<User> {
    let mut user = User {
        name: entry.key.clone(),
        pool_mode: None,
        pool_size: None,
        reserve_pool_size: None,
        max_user_connections: None,
        max_user_client_connections: None,
        pos: entry.pos.clone(),
    };
    for pair in pairs(entry)? {
        let key = &pair.key;
        match key.as_str() {
            "pool_mode" => user.pool_mode = Some(pair.pool_mode()?),
            "pool_size" => user.pool_size = Some(pair.count()?),
            "reserve_pool_size" | "reserve_pool" => user.reserve_pool_size = Some(pair.count()?),
            "max_user_connections" => user.max_user_connections = Some(pair.count()?),
            "max_user_client_connections" => user.max_user_client_connections = Some(pair.count()?),
            _ => {
                return Err(Error::at(
                    &entry.value_pos,
                    format!("unknown user option {key:?}"),
                    "pool_mode, pool_size, reserve_pool_size, max_user_connections or max_user_client_connections",
                ));
            }
        }
    }
    Ok(user)
}

/// One `key=value` of an entry, with where the entry's value is written.
struct Pair<'a> {
    key: String,
    value: String,
    at: &'a Pos,
}

impl Pair<'_> {
    /// The error for a value that is not `expected`.
    fn bad(&self, expected: &str) -> Error {
        Error::at(self.at, format!("{}={:?}", self.key, self.value), expected)
    }

    fn count(&self) -> Result<u32> {
        self.value
            .parse()
            .map_err(|_| self.bad("a non-negative integer"))
    }

    fn pool_mode(&self) -> Result<PoolMode> {
        pool_mode(&self.value).ok_or_else(|| self.bad(POOL_MODES))
    }
}

const POOL_MODES: &str = "session, transaction or statement";

/// `session`, `transaction` or `statement`.
pub fn pool_mode(value: &str) -> Option<PoolMode> {
    match value.trim().to_ascii_lowercase().as_str() {
        "session" => Some(PoolMode::Session),
        "transaction" => Some(PoolMode::Transaction),
        "statement" => Some(PoolMode::Statement),
        _ => None,
    }
}

/// The `key=value` pairs of a connection string: blank-separated, blanks allowed around `=`, values in
/// single quotes may hold blanks and `''` for a quote (PgBouncer's rule: a backslash is itself).
fn pairs(entry: &Entry) -> Result<Vec<Pair<'_>>> {
    let bad = |found: String| {
        Error::at(
            &entry.value_pos,
            found,
            "key=value pairs, such as host=127.0.0.1 port=5432 dbname=app",
        )
    };
    let mut out = Vec::new();
    let mut rest = entry.value.trim_start();
    while !rest.is_empty() {
        let key_len = rest
            .find(|c: char| c == '=' || c.is_whitespace())
            .unwrap_or(rest.len());
        let key = rest[..key_len].to_ascii_lowercase();
        rest = rest[key_len..].trim_start();
        let Some(after) = rest.strip_prefix('=') else {
            return Err(bad(format!("{key:?} without =")));
        };
        if key.is_empty() {
            return Err(bad("= without a key".to_owned()));
        }
        rest = after.trim_start();
        let value;
        if rest.starts_with('\'') {
            let Some((quoted, after)) = super::ini::unquote(rest, '\'') else {
                return Err(bad(format!("{key}= with an unterminated quote")));
            };
            value = quoted;
            rest = after;
        } else {
            let len = rest.find(char::is_whitespace).unwrap_or(rest.len());
            value = rest[..len].to_owned();
            rest = &rest[len..];
        }
        out.push(Pair {
            key,
            value,
            at: &entry.value_pos,
        });
        rest = rest.trim_start();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, value: &str) -> Entry {
        let pos = Pos {
            file: "p.ini".into(),
            line: 3,
            col: 1,
        };
        Entry {
            key: key.into(),
            value: value.into(),
            value_pos: Pos {
                col: 7,
                ..pos.clone()
            },
            pos,
        }
    }

    #[test]
    fn connection_strings() {
        let db = database(&entry(
            "app",
            "host=10.0.0.1 port = 6543 dbname=app_prod user=svc password='a b''c\\d' pool_size=5 pool_mode=transaction timezone=UTC",
        ))
        .unwrap();
        assert_eq!(db.host.as_deref(), Some("10.0.0.1"));
        assert_eq!(db.port, 6543);
        assert_eq!(db.dbname.as_deref(), Some("app_prod"));
        assert_eq!(db.user.as_deref(), Some("svc"));
        assert_eq!(db.password.as_deref(), Some("a b'c\\d"));
        assert_eq!(db.pool_size, Some(5));
        assert_eq!(db.pool_mode, Some(PoolMode::Transaction));
        assert_eq!(db.parameters, [("timezone".to_owned(), "UTC".to_owned())]);

        let fallback = database(&entry("*", "host=/var/run/postgresql")).unwrap();
        assert_eq!(fallback.dbname, None);
        assert_eq!(fallback.host.as_deref(), Some("/var/run/postgresql"));
        assert_eq!(database(&entry("x", "")).unwrap().host, None);

        let u = user(&entry("alice", "pool_mode=session max_user_connections=3")).unwrap();
        assert_eq!(u.pool_mode, Some(PoolMode::Session));
        assert_eq!(u.max_user_connections, Some(3));
    }

    #[test]
    fn mistakes() {
        let cases = [
            ("port=x", "p.ini:3:7: port=\"x\", expected a port number"),
            (
                "pool_mode=stmt",
                "expected session, transaction or statement",
            ),
            ("hots=x", "unknown database option \"hots\""),
            ("dbname", "\"dbname\" without ="),
            ("password='x", "unterminated quote"),
            ("host=a,b", "several hosts"),
            ("load_balance_hosts=random", "load_balance_hosts"),
            ("password=x", "password without user"),
        ];
        for (text, want) in cases {
            let err = database(&entry("d", text)).unwrap_err().to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
        assert!(user(&entry("u", "max_db_connections=1")).is_err());
    }
}
