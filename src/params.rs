//! Applying a client's startup parameters to the server that serves it.

use fed::sqlstate::SqlState;

use crate::errors::ClientError;

/// The `SELECT set_config(...)` that gives `server` the client's values for
/// `wanted`, or `None` when it already has them all.
pub fn sync_query<'a>(
    wanted: impl IntoIterator<Item = (&'a str, &'a str)>,
    server: &spool::Params,
) -> Option<String> {
    let mut sql = String::new();
    fed::middleware::ps::push_set_config(&mut sql, wanted, server);
    (!sql.is_empty()).then_some(sql)
}

/// Applies a client's startup parameters `wanted` to `server` (one query,
/// only for values it lacks). A refusal becomes the client's FATAL error,
/// with the server's SQLSTATE.
pub async fn apply<'a>(
    wanted: impl IntoIterator<Item = (&'a str, &'a str)>,
    server: &mut spool::Server,
) -> Result<(), ClientError> {
    let sql = sync_query(wanted, server.params());
    match sql {
        Some(sql) => server.query(&sql).await.map_err(refused),
        None => Ok(()),
    }
}

/// The client's error for a settings query a server refused.
pub fn refused(e: spool::Error) -> ClientError {
    match &e {
        spool::Error::Query { error, .. } => ClientError::fatal(
            SqlState::from_code(error.code.as_bytes()).unwrap_or(SqlState::INVALID_PARAMETER_VALUE),
            error.message.clone(),
        ),
        _ => ClientError::from(e),
    }
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
