//! PgBouncer's `auth_query`: a user missing from the auth_file is looked up
//! on the server, through a small pool that logs in as `auth_user`. The query
//! gets the user name as `$1` through the extended protocol, never spliced
//! into SQL, and must return (name, secret); no row or a NULL secret
//! refuses the client, it never lets it in.

use fed::sqlstate::SqlState;

use crate::errors::ClientError;
use crate::route::PoolEntry;

/// The secret `query` returns for `user`, or `None`.
pub async fn lookup(
    pool: &PoolEntry,
    query: &str,
    user: &str,
) -> Result<Option<String>, ClientError> {
    let mut ticket = rob::Ticket::new();
    let mut guard = pool.pool.acquire(&mut ticket).await?;
    // A server that does not answer must not hold every login that needs a
    // lookup: bounded like a login.
    let limit = pool.config.server_login_timeout;
    let row = match tokio::time::timeout(limit, guard.server().query_row(query, &[user])).await {
        Ok(row) => {
            guard.release(false).await;
            row
        }
        Err(_) => {
            guard.discard();
            return Err(ClientError::fatal(
                SqlState::CONNECTION_FAILURE,
                format!("auth_query did not answer within {limit:?}"),
            ));
        }
    };
    let row = row.map_err(|e| {
        tracing::warn!(pool = %pool.name, error = %e, "auth_query failed");
        ClientError::fatal(
            SqlState::INVALID_AUTHORIZATION_SPECIFICATION,
            format!("auth_query failed: {e}"),
        )
        .with_hint("check auth_user, auth_query and auth_dbname in pgbouncer.ini")
    })?;
    Ok(row.and_then(|r| r.into_iter().nth(1).flatten()))
}
