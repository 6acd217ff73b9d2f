//! One client's life after startup: route, authenticate, then serve it from
//! its pool until it leaves.
//!
//! Session pooling: the client gets a server before its startup reply, keeps
//! it until it leaves, and the server is cleaned (drained, rolled back, reset
//! with the pool's reset query) before anyone else gets it. Transaction
//! pooling is in [`crate::transaction`].

use std::sync::Arc;
use std::time::Duration;

use fed::messages::backend;
use fed::middleware::unterminate::Unterminate;
use fed::sqlstate::SqlState;
use fed::{Conn, Mode, Outcome, Relay};

use crate::app::{Generation, Shared};
use crate::cancel::Registration;
use crate::client::startup::Startup;
use crate::clients::{ClientInfo, ClientState};
use crate::errors::ClientError;
use crate::pgbouncer::Target;
use crate::route::{AuthPlan, PoolEntry, PoolMode, Routed};

/// How long a client may take from connecting to being authenticated
/// (PostgreSQL's authentication_timeout default).
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// Serves one client to the end. Errors are sent to the client when the
/// connection still works, then it is closed.
pub async fn run(
    mut conn: Conn,
    startup: Startup,
    shared: Arc<Shared>,
    generation: Arc<Generation>,
    block: usize,
) {
    let result = serve(&mut conn, &startup, &shared, &generation, block).await;
    if let Err(e) = result {
        tracing::debug!(user = %startup.user, database = %startup.database, error = %e, "client session ended with error");
        e.encode(conn.out());
    }
    conn.shutdown().await;
}

async fn serve(
    conn: &mut Conn,
    startup: &Startup,
    shared: &Shared,
    generation: &Generation,
    block: usize,
) -> Result<(), ClientError> {
    let routed = generation.router.resolve(
        block,
        startup,
        conn.stream().is_tls(),
        &conn.stream().local_address().unwrap_or_default(),
    )?;
    // A pgbouncer.ini client counts against max_client_conn and the
    // per-database and per-user client ceilings while here.
    let (resolved, _counted) = match routed {
        Routed::Pool(r) => (r, None),
        Routed::Bouncer(b) => {
            let (target, counted) =
                Box::pin(b.resolve(&generation.router, startup, conn.stream())).await?;
            match target {
                Target::Pool(r) => (r, Some(counted)),
                Target::Console { auth, role } => {
                    check(conn, startup, &auth).await?;
                    let Some(role) = role else {
                        return Err(crate::pgbouncer::Bouncer::not_allowed());
                    };
                    backend::Authentication::Ok.encode(conn.out());
                    let registration = shared.cancels.register(None);
                    return Box::pin(crate::pgbouncer::console::serve(
                        conn,
                        b,
                        role,
                        shared,
                        registration.key(),
                    ))
                    .await;
                }
            }
        }
    };
    if let Some(key) = check(conn, startup, &resolved.auth).await? {
        resolved.pool.offer_client_key(&key);
    }
    backend::Authentication::Ok.encode(conn.out());
    let registration = shared.cancels.register(Some(resolved.pool.cancels.clone()));
    let application_name = startup.param("application_name").unwrap_or("");
    let registered = resolved.pool.clients.register(ClientInfo::new(
        &startup.user,
        &resolved.pool.database,
        conn.stream(),
        application_name,
    ));
    let client = &registered.client;
    // Each step boxed: the task of every connected client is only as big as
    // the step it is in, not as big as the biggest of them.
    match resolved.pool.mode {
        PoolMode::Session => {
            Box::pin(session_pooling(
                conn,
                &resolved.params,
                &resolved.pool,
                &registration,
                shared,
                client,
            ))
            .await
        }
        PoolMode::Transaction | PoolMode::Statement => {
            Box::pin(crate::transaction::serve(
                conn,
                &resolved.params,
                &resolved.pool,
                &registration,
                shared,
                client,
            ))
            .await
        }
    }
}

/// Checks the client's password as `auth` says; the SCRAM ClientKey it
/// proved, if any.
async fn check(
    conn: &mut Conn,
    startup: &Startup,
    auth: &AuthPlan,
) -> Result<Option<auth::ClientKey>, ClientError> {
    let AuthPlan::Check(secret, method) = auth else {
        return Ok(None);
    };
    tokio::time::timeout(
        STARTUP_TIMEOUT,
        Box::pin(crate::client::auth::authenticate(
            conn,
            &startup.user,
            secret,
            *method,
        )),
    )
    .await
    .map_err(|_| ClientError::fatal(SqlState::CONNECTION_FAILURE, "authentication timed out"))?
}

/// Session pooling. See the module docs.
async fn session_pooling(
    conn: &mut Conn,
    params: &[(String, String)],
    entry: &Arc<PoolEntry>,
    registration: &Registration,
    shared: &Shared,
    client: &ClientInfo,
) -> Result<(), ClientError> {
    conn.flush().await.map_err(|_| gone())?;
    let mut ticket = rob::Ticket::new();
    client.set(ClientState::Waiting, 0);
    let mut guard = tokio::select! {
        g = entry.pool.acquire(&mut ticket) => g?,
        _ = shared.shutting_down() => return Err(shutdown_error()),
        _ = client.killed() => return Err(killed()),
    };
    client.set(ClientState::Active, guard.server_ref().id());
    guard.server_ref().status().link(client.id);

    let wanted = params.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    if let Err(e) = crate::params::apply(wanted, guard.server()).await {
        guard.release(true).await;
        return Err(e);
    }
    startup_reply(conn, guard.server_ref().params(), registration);
    hold_cancels(registration, guard.server_ref());
    let mut killed_now = false;
    let outcome = {
        let parts = guard.server().parts();
        let limits = entry.limits();
        let mut meter = crate::stats::Meter::start(conn.bytes(), parts.pipeline.usage());
        let mut relay = Relay::new(conn, parts.conn, parts.pipeline, Unterminate, Mode::Session);
        let o = tokio::select! {
            o = crate::watchdog::run(&mut relay, &limits, Some((&mut meter, &entry.stats))) => Some(o),
            _ = shared.shutdown_deadline() => None,
            _ = client.killed() => {
                killed_now = true;
                None
            }
        };
        let (bytes, usage) = relay.usage();
        meter.report(bytes, usage, &entry.stats);
        o
    };
    client.set(ClientState::Idle, 0);
    // Cancels stop before the server goes anywhere, however the session ends.
    registration.release().await;
    let outcome = match outcome {
        Some(crate::watchdog::Watched::Done(o)) => Some(o),
        Some(crate::watchdog::Watched::Expired(waiting, limit)) => {
            return Err(crate::watchdog::expired(guard, &entry.name, waiting, limit, true).await);
        }
        None => None,
    };
    match outcome {
        None if killed_now => {
            // KILL and KILL_CLIENT close the client's server too, as
            // PgBouncer does: it may be mid-query.
            guard.discard();
            Err(killed())
        }
        None => {
            guard.release(true).await;
            Err(shutdown_error())
        }
        // NeedsPrimary and Lagging come only from a recording relay, and
        // TransactionBlock from statement pooling; session mode has neither.
        Some(Outcome::Stopped(_))
        | Some(Outcome::Idle)
        | Some(Outcome::NeedsPrimary)
        | Some(Outcome::Lagging)
        | Some(Outcome::TransactionBlock) => {
            guard.release(true).await;
            Ok(())
        }
        Some(Outcome::ClientGone(e)) => {
            tracing::debug!(pool = %entry.name, error = %e, "client left");
            guard.release(true).await;
            Err(gone())
        }
        Some(Outcome::ServerGone(e)) => Err(server_lost(guard, &entry.name, &e)),
    }
}

/// Ends startup: the parameters the client is told, its cancel key, and
/// ReadyForQuery.
pub(crate) fn startup_reply(conn: &mut Conn, params: &spool::Params, registration: &Registration) {
    for (name, value) in params.iter() {
        backend::ParameterStatus {
            name: name.as_bytes(),
            value: value.as_bytes(),
        }
        .encode(conn.out());
    }
    let (pid, secret) = registration.key();
    backend::BackendKeyData {
        process_id: pid,
        secret_key: secret,
    }
    .encode(conn.out());
    backend::ReadyForQuery { status: b'I' }.encode(conn.out());
}

/// Points the client's cancel requests at the server it now holds.
pub(crate) fn hold_cancels(registration: &Registration, server: &spool::Server) {
    registration.hold(server.address(), server.backend_key());
}

/// Closes a server that failed mid-use; the client's error names it.
pub(crate) fn server_lost(guard: spool::Guard, pool: &str, e: &fed::Error) -> ClientError {
    let addr = guard.server_ref().address().to_string();
    tracing::warn!(pool = %pool, server = %addr, error = %e, "server connection lost");
    guard.discard();
    ClientError::fatal(
        SqlState::CONNECTION_FAILURE,
        format!("server {addr} closed the connection unexpectedly"),
    )
}

pub(crate) fn gone() -> ClientError {
    ClientError::fatal(SqlState::CONNECTION_FAILURE, "client connection lost")
}

/// The error of a client ended by the admin console (KILL).
pub(crate) fn killed() -> ClientError {
    ClientError::fatal(SqlState::ADMIN_SHUTDOWN, "admin forced disconnect")
}

pub(crate) fn shutdown_error() -> ClientError {
    ClientError::fatal(
        SqlState::ADMIN_SHUTDOWN,
        "terminating connection because pggat is shutting down",
    )
}
