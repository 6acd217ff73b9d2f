//! Applying a client's startup parameters to the server that serves it.

use std::fmt::Write as _;

/// Parameters a server assigns itself at login that clients may not set.
const NOT_SETTABLE: &[&str] = &[
    "is_superuser",
    "session_authorization",
    "server_version",
    "server_encoding",
];

/// The `SELECT set_config(...)` that gives `server` the client's values for
/// `wanted`, or `None` when it already has them all. `set_config` takes each
/// value in its text form, exactly as a startup packet or ParameterStatus
/// carries it (a `SET x = '...'` would mangle list values like search_path).
pub fn sync_query<'a>(
    wanted: impl IntoIterator<Item = (&'a str, &'a str)>,
    server: &spool::Params,
) -> Option<String> {
    let mut sql = String::new();
    for (name, value) in wanted {
        if NOT_SETTABLE.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            continue;
        }
        if server.get(name) == Some(value) {
            continue;
        }
        sql.push_str(if sql.is_empty() { "SELECT " } else { ", " });
        let _ = write!(
            sql,
            "pg_catalog.set_config({}, {}, false)",
            quote_literal(name),
            quote_literal(value)
        );
    }
    (!sql.is_empty()).then_some(sql)
}

pub use fed::middleware::ps::quote_literal;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_escape_quotes_and_backslashes() {
        assert_eq!(quote_literal(r"it's a \ test"), r"E'it''s a \\ test'");
    }

    #[test]
    fn only_differing_parameters_are_set() {
        let mut server = spool::Params::default();
        server.set("application_name", "psql");
        server.set("TimeZone", "UTC");
        let q = sync_query(
            [
                ("application_name", "psql"),
                ("TimeZone", "Europe/Paris"),
                ("search_path", "a, b"),
            ],
            &server,
        )
        .unwrap();
        assert_eq!(
            q,
            "SELECT pg_catalog.set_config(E'TimeZone', E'Europe/Paris', false), \
             pg_catalog.set_config(E'search_path', E'a, b', false)"
        );
        assert_eq!(sync_query([("application_name", "psql")], &server), None);
    }
}
