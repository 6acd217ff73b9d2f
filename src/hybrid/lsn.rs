//! WAL positions, as byte counts: how far the primary has written and how
//! far a replica has replayed, to tell whether a replica already has what a
//! client needs (a table created a moment ago, the client's own commit).

/// The primary's WAL position: everything committed so far is before it.
pub(crate) const WRITTEN: &str = "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint";

/// Where the primary's next WAL record goes: past the end of every commit
/// record already made, flushed or not (with `synchronous_commit off` the
/// write position may still be short of a commit the client saw).
pub(crate) const INSERTED: &str =
    "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::bigint";

/// How far a standby has replayed; NULL on a server not in recovery.
pub(crate) const REPLAYED: &str = "SELECT pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')::bigint";

/// Runs one of the queries above (or any query of one number) on `server`.
/// `None`: the server gave no number (REPLAYED on a server that is not a
/// standby).
pub(crate) async fn read(
    server: &mut spool::Server,
    sql: &str,
) -> Result<Option<u64>, spool::Error> {
    Ok(server.query_value(sql).await?.and_then(|v| v.parse().ok()))
}
