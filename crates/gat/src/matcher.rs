//! Route matchers: which connections a route applies to.
//!
//! A matcher is evaluated once per client connection, after startup, against what the client asked for
//! ([`ConnInfo`]). Named matchers (`@name`) and the `/dbglob` shorthand are resolved when the Gatfile is
//! read, so the binary only ever sees this tree.

use crate::glob::Glob;

/// A condition on a connection. JSON: `{"user": "bob"}`, `{"and": [...]}`, `{"not": {...}}`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Matcher {
    /// The startup `user` matches the glob.
    User(Glob),
    /// The startup `database` (which defaults to the user) matches the glob.
    Database(Glob),
    /// The client did (`true`) or did not (`false`) negotiate TLS.
    Ssl(bool),
    /// The address the client connected to (`ip:port`, `[v6]:port` or the unix socket path) matches the
    /// glob: one server block can treat its listeners differently.
    LocalAddress(Glob),
    /// The client sent this startup parameter (name compared case-insensitively) with a value matching
    /// the glob.
    Parameter {
        /// Parameter name.
        name: String,
        /// Pattern for its value.
        value: Glob,
    },
    /// Every condition holds. Empty: always true.
    And(Vec<Matcher>),
    /// At least one condition holds. Empty: always false.
    Or(Vec<Matcher>),
    /// The condition does not hold.
    Not(Box<Matcher>),
}

/// What a matcher may look at. Built by the binary from the startup packet.
///
/// `#[non_exhaustive]` so that later conditions (SSL, startup parameters, local address) add fields
/// without breaking callers: build it with [`ConnInfo::new`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnInfo<'a> {
    /// The `user` startup parameter.
    pub user: &'a str,
    /// The `database` startup parameter, already defaulted to the user.
    pub database: &'a str,
    /// Whether the client negotiated TLS.
    pub ssl: bool,
    /// The address the client connected to (`ip:port`, `[v6]:port` or a unix socket path); empty when
    /// unknown.
    pub local_address: &'a str,
    /// The other startup parameters, as sent.
    pub parameters: &'a [(String, String)],
}

impl<'a> ConnInfo<'a> {
    /// A connection for `user` asking for `database`, without TLS or other parameters.
    pub fn new(user: &'a str, database: &'a str) -> ConnInfo<'a> {
        ConnInfo {
            user,
            database,
            ssl: false,
            local_address: "",
            parameters: &[],
        }
    }

    /// The same connection, accepted on `address`.
    pub fn with_local_address(mut self, address: &'a str) -> ConnInfo<'a> {
        self.local_address = address;
        self
    }

    /// The same connection, with TLS negotiated or not.
    pub fn with_ssl(mut self, ssl: bool) -> ConnInfo<'a> {
        self.ssl = ssl;
        self
    }

    /// The same connection, with these startup parameters.
    pub fn with_parameters(mut self, parameters: &'a [(String, String)]) -> ConnInfo<'a> {
        self.parameters = parameters;
        self
    }
}

impl Matcher {
    /// Whether the connection satisfies this matcher.
    pub fn matches(&self, conn: &ConnInfo<'_>) -> bool {
        match self {
            Matcher::User(glob) => glob.matches(conn.user),
            Matcher::Database(glob) => glob.matches(conn.database),
            Matcher::Ssl(ssl) => conn.ssl == *ssl,
            Matcher::LocalAddress(glob) => glob.matches(conn.local_address),
            Matcher::Parameter { name, value } => conn
                .parameters
                .iter()
                .any(|(k, v)| k.eq_ignore_ascii_case(name) && value.matches(v)),
            Matcher::And(all) => all.iter().all(|m| m.matches(conn)),
            Matcher::Or(any) => any.iter().any(|m| m.matches(conn)),
            Matcher::Not(inner) => !inner.matches(conn),
        }
    }

    /// `user GLOB`, for building configs in code.
    pub fn user(glob: &str) -> Matcher {
        Matcher::User(Glob::new(glob))
    }

    /// `database GLOB`, for building configs in code.
    pub fn database(glob: &str) -> Matcher {
        Matcher::Database(Glob::new(glob))
    }
}

#[cfg(test)]
mod tests {
    use super::{ConnInfo, Matcher};

    fn conn<'a>(user: &'a str, database: &'a str) -> ConnInfo<'a> {
        ConnInfo::new(user, database)
    }

    #[test]
    fn user_and_database() {
        let m = Matcher::user("bob");
        assert!(m.matches(&conn("bob", "x")));
        assert!(!m.matches(&conn("bobby", "x")));
        let m = Matcher::database("app*");
        assert!(m.matches(&conn("x", "app_prod")));
        assert!(!m.matches(&conn("app", "db")));
    }

    #[test]
    fn local_address() {
        let m = Matcher::LocalAddress(crate::Glob::new("*:5433"));
        assert!(m.matches(&conn("a", "b").with_local_address("127.0.0.1:5433")));
        assert!(!m.matches(&conn("a", "b").with_local_address("127.0.0.1:6432")));
        assert!(!m.matches(&conn("a", "b")), "unknown address");
    }

    #[test]
    fn and_or_not() {
        let bob_on_app = Matcher::And(vec![Matcher::user("bob"), Matcher::database("app*")]);
        assert!(bob_on_app.matches(&conn("bob", "app1")));
        assert!(!bob_on_app.matches(&conn("bob", "other")));
        assert!(!bob_on_app.matches(&conn("alice", "app1")));

        let ro_or_admin = Matcher::Or(vec![Matcher::user("*_ro"), Matcher::user("admin")]);
        assert!(ro_or_admin.matches(&conn("bob_ro", "x")));
        assert!(ro_or_admin.matches(&conn("admin", "x")));
        assert!(!ro_or_admin.matches(&conn("bob", "x")));

        let not_postgres = Matcher::Not(Box::new(Matcher::database("postgres")));
        assert!(not_postgres.matches(&conn("a", "app")));
        assert!(!not_postgres.matches(&conn("a", "postgres")));

        let nested = Matcher::And(vec![ro_or_admin, not_postgres]);
        assert!(nested.matches(&conn("x_ro", "app")));
        assert!(!nested.matches(&conn("x_ro", "postgres")));
        assert!(!nested.matches(&conn("x", "app")));
    }

    #[test]
    fn ssl_and_parameters() {
        let params = vec![("Application_Name".to_owned(), "psql".to_owned())];
        let plain = conn("a", "b");
        let tls = conn("a", "b").with_ssl(true).with_parameters(&params);
        assert!(Matcher::Ssl(false).matches(&plain));
        assert!(Matcher::Ssl(true).matches(&tls));
        let psql = Matcher::Parameter {
            name: "application_name".into(),
            value: crate::Glob::new("ps*"),
        };
        assert!(psql.matches(&tls), "names compare case-insensitively");
        assert!(!psql.matches(&plain));
        let other = Matcher::Parameter {
            name: "application_name".into(),
            value: crate::Glob::new("pgbench"),
        };
        assert!(!other.matches(&tls));
    }

    #[test]
    fn empty_and_is_true_empty_or_is_false() {
        assert!(Matcher::And(vec![]).matches(&conn("a", "b")));
        assert!(!Matcher::Or(vec![]).matches(&conn("a", "b")));
    }
}
