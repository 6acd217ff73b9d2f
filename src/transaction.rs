//! Transaction pooling: a client holds a server from the first message of a
//! transaction until the server is idle again (ReadyForQuery 'I' with nothing
//! in flight), then the server goes back to the pool.
//!
//! Between transactions the client holds nothing: a lone Sync is answered
//! here, Terminate ends the session. On each acquire the client's settings
//! (ps) are synced onto the server in one query, and while it runs, eqp keeps
//! its prepared statements available and ps follows what it changes. Session
//! state that cannot move pins the server to the client until it leaves or
//! runs DISCARD ALL; a pinned server is reset before anyone else gets it.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use fed::messages::backend;
use fed::middleware::eqp::{ClientStatements, Eqp, Known};
use fed::middleware::ps::{ClientSettings, Ps};
use fed::middleware::unterminate::Unterminate;
use fed::{Conn, Mode, Outcome, Recording, Relay};
use tokio::time::Instant;

use crate::app::Shared;
use crate::cancel::Registration;
use crate::clients::{ClientInfo, ClientState};
use crate::errors::ClientError;
use crate::hybrid::{ClientMode, Hybrid, Route, lsn};
use crate::route::PoolEntry;
use crate::session::{gone, hold_cancels, killed, server_lost, shutdown_error, startup_reply};
use crate::watchdog::Watched;

/// Most distinct startup-parameter sets remembered per pool.
const STARTUP_CACHE: usize = 256;

/// What the client sent first, between transactions.
enum Next {
    /// Answered here (a lone Sync or Flush, or a batch of Parses of known
    /// statements and Closes ended by Sync).
    Local,
    /// Terminate, or the connection closed.
    Leave,
    /// Anything else: a transaction starts.
    Transaction,
}

/// Serves a client of a transaction pool until it leaves.
pub async fn serve(
    conn: &mut Conn,
    params: &[(String, String)],
    entry: &Arc<PoolEntry>,
    registration: &Registration,
    shared: &Shared,
    client: &ClientInfo,
) -> Result<(), ClientError> {
    let mut ticket = rob::Ticket::new();
    let mut replica_ticket = rob::Ticket::new();
    let mode = ClientMode::of(params);
    // Boxed here and below: what runs once per client, or only now and then,
    // must not make every idle client's task as big as its biggest step.
    // Waited on for every transaction: registered once, not per transaction.
    let mut draining = std::pin::pin!(shared.shutting_down());
    let mut deadline = std::pin::pin!(shared.shutdown_deadline());
    let mut killed_now = std::pin::pin!(client.killed());
    let told = {
        let mut learn = Box::pin(startup_params(params, entry, &mut ticket, client));
        loop {
            tokio::select! {
                told = &mut learn => break told?,
                r = conn.fill() => {
                    // Messages sent ahead are kept; a departure ends it.
                    if r.is_err() {
                        return Ok(());
                    }
                }
                _ = &mut draining => return Err(shutdown_error()),
                _ = &mut killed_now => return Err(killed()),
            }
        }
    };
    startup_reply(conn, &told, registration);

    let mut settings = ClientSettings::new(told);
    let mut statements = ClientStatements::default();
    let mut pin_logged = false;
    let mut wrote = LastWrite::default();
    let limits = entry.limits();
    loop {
        conn.flush().await.map_err(|_| gone())?;
        // Counted from here: the transaction's first message is read before
        // a server is held.
        let bytes_before = conn.bytes();
        let next = tokio::select! {
            n = next(conn, &mut statements, &entry.known, entry.statements) => n,
            _ = crate::watchdog::after(limits.client_idle) => {
                return Err(crate::watchdog::idle_session(&entry.name, limits.client_idle.unwrap_or_default()));
            }
            _ = &mut draining => return Err(shutdown_error()),
            _ = &mut killed_now => return Err(killed()),
        };
        match next {
            Next::Leave => return Ok(()),
            Next::Local => continue,
            Next::Transaction => {}
        }

        let mut route = match (&entry.hybrid, mode) {
            (None, _) | (Some(_), ClientMode::WriteOnly) => Route::Primary { writes: false },
            (Some(h), ClientMode::ReadOnly) => match h.choose(None).or_else(|| h.any()) {
                Some(index) => Route::Replica {
                    index,
                    moves: false,
                },
                // A hybrid pool without replicas.
                None => Route::Primary { writes: false },
            },
            (Some(h), ClientMode::ReadWrite) => {
                let first = crate::hybrid::classify(conn.buffered(), &statements);
                let snapshot = settings
                    .settings()
                    .chain(params.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                    .any(|(name, value)| crate::hybrid::strict_default(name, value));
                h.start_for(first, wrote.sticky(), snapshot)
            }
        };
        // Set when the transaction is replayed on another server: how many
        // of the responses it was given there.
        let mut seen = None;
        let mut attempts = 0;
        // Whether an error that lag can cause moves the transaction off its
        // replica (once: after the check below it stands).
        let mut catch_lag = mode == ClientMode::ReadWrite;
        // After a lag error on a replica: which one, whether the transaction
        // moves, and how far it had replayed. The primary's WAL position
        // decides where the transaction is replayed.
        let mut lag_check: Option<(usize, bool, Option<u64>)> = None;
        client.set(ClientState::Waiting, 0);
        let (guard, outcome) = loop {
            attempts += 1;
            let (pool, used_ticket) = match (route, &entry.hybrid) {
                (Route::Replica { index, .. }, Some(h)) => {
                    (&h.replicas[index].pool, &mut replica_ticket)
                }
                _ => (&entry.pool, &mut ticket),
            };
            let guard = {
                let mut acquire = Box::pin(pool.acquire(used_ticket));
                loop {
                    tokio::select! {
                        g = &mut acquire => break g,
                        r = conn.fill() => {
                            // More of the client's messages, or its departure.
                            if r.is_err() {
                                return Ok(());
                            }
                        }
                        // A transaction the client already has results of
                        // finishes (until the deadline) like any other.
                        _ = &mut draining, if seen.is_none() => return Err(shutdown_error()),
                        _ = &mut deadline => return Err(shutdown_error()),
                        _ = &mut killed_now => return Err(killed()),
                    }
                }
            };
            let mut guard = match (guard, route, &entry.hybrid) {
                (Ok(g), _, _) => g,
                (Err(e), Route::Replica { index, .. }, Some(h)) if attempts <= MAX_ATTEMPTS => {
                    h.mark_down(index, &e);
                    route = match other_server(h, mode, index) {
                        Some(r) => r,
                        None => return Err(e.into()),
                    };
                    continue;
                }
                (Err(e), _, _) => return Err(e.into()),
            };
            if let (Some(check), Some(h)) = (lag_check.take(), &entry.hybrid) {
                // On the primary, after a lag error on a replica.
                if let Some(r) = replay_where_it_was(check, &mut guard).await {
                    give_back(guard).await;
                    tracing::debug!(pool = %entry.name, "a replica's undefined-object error was not lag (it had replayed everything); replaying the transaction there for the client to see it");
                    route = r;
                    continue;
                }
                h.counters.lag_replays.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(pool = %entry.name, "a transaction failed on a replica that had not replayed what it names; replaying it on the primary");
            }
            if let (Route::Replica { index, .. }, Some(h), Some(lsn)) =
                (route, &entry.hybrid, wrote.lsn)
                && !replica_has(&h.replicas[index], lsn, &mut guard).await
            {
                // The client's last commit is not on this replica yet.
                give_back(guard).await;
                h.counters.lsn_waits.fetch_add(1, Ordering::Relaxed);
                route = Route::Primary { writes: false };
                continue;
            }
            let server = guard.server();
            if let Some(sql) =
                settings.sync_query(&entry.tracked, server.params(), server.settings())
            {
                if let Err(e) = Box::pin(server.query(&sql)).await {
                    tracing::warn!(pool = %entry.name, error = %e, "could not sync a client's settings onto a server");
                    give_back(guard).await;
                    return Err(crate::params::refused(e));
                }
                settings.synced(guard.server().parts().settings);
            }
            hold_cancels(registration, guard.server_ref());
            client.set(ClientState::Active, guard.server_ref().id());
            guard.server_ref().status().link(client.id);
            // On a replica, the transaction is recorded so it can move: to
            // the primary when a read-write client writes, to another
            // server when this one fails.
            let mut recording = match route {
                Route::Primary { .. } => None,
                Route::Replica { moves: true, .. } => Some(Recording::new()),
                Route::Replica { moves: false, .. } => Some(Recording::failover_only()),
            }
            .map(|r| if catch_lag { r.catching_lag() } else { r });
            let before = recording
                .is_some()
                .then(|| (settings.clone(), statements.clone()));
            let outcome = {
                let parts = guard.server().parts();
                let mut meter = crate::stats::Meter::start(bytes_before, parts.pipeline.usage());
                let mw = (
                    Unterminate,
                    Ps::new(
                        &mut settings,
                        parts.settings,
                        parts.params,
                        &entry.tracked,
                        entry.allow_pin,
                        &entry.name,
                    ),
                    {
                        let eqp = Eqp::new(&mut statements, parts.statements, &entry.known);
                        if entry.statements { eqp } else { eqp.off() }
                    },
                );
                let mode = match entry.mode {
                    gat::PoolMode::Statement => Mode::Statement,
                    _ => Mode::Transaction,
                };
                let mut relay = Relay::new(conn, parts.conn, parts.pipeline, mw, mode);
                if let Some(r) = recording.as_mut() {
                    relay = relay.recording(r);
                }
                if let Some(t) = seen {
                    relay = relay.skipping(t);
                }
                let o = tokio::select! {
                    o = crate::watchdog::run(&mut relay, &limits, None) => Some(o),
                    _ = &mut deadline => None,
                    _ = &mut killed_now => None,
                };
                let (bytes, usage) = relay.usage();
                meter.report(bytes, usage, &entry.stats);
                o
            };
            registration.release().await;
            used_ticket.charge(guard.since().elapsed());

            // A transaction that moves starts again from the client's state
            // before it, with every message it sent put back.
            let (Route::Replica { index: i, moves }, Some(h), Some(rec), Some((s, st))) =
                (route, &entry.hybrid, recording, before)
            else {
                break (guard, outcome);
            };
            let next_route = match &outcome {
                Some(Watched::Done(Outcome::NeedsPrimary)) => {
                    h.counters.write_fallbacks.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(pool = %entry.name, "a transaction on a replica needs the primary (a write, or session state); replaying it there");
                    if settings.pinned().is_some() {
                        guard.must_reset("DISCARD ALL");
                    }
                    // Cleaned in the background: the replica may still be
                    // answering what the client pipelined after the write.
                    tokio::spawn(give_back(guard));
                    Route::Primary { writes: true }
                }
                Some(Watched::Done(Outcome::Lagging)) => {
                    // Where the replica had got to; the primary's position,
                    // read once there, tells whether that was short.
                    let replayed = replayed_after_error(&mut guard).await;
                    if settings.pinned().is_some() {
                        guard.must_reset("DISCARD ALL");
                    }
                    give_back(guard).await;
                    catch_lag = false;
                    lag_check = Some((i, moves, replayed));
                    Route::Primary { writes: false }
                }
                Some(Watched::Done(Outcome::ServerGone(e)))
                    if rec.resumable() && attempts <= MAX_ATTEMPTS =>
                {
                    let Some(r) = other_server(h, mode, i) else {
                        break (guard, outcome);
                    };
                    h.mark_down(i, e);
                    h.counters.failovers.fetch_add(1, Ordering::Relaxed);
                    guard.discard();
                    r
                }
                _ => {
                    if matches!(outcome, Some(Watched::Done(Outcome::Idle))) {
                        h.counters.replica_hits.fetch_add(1, Ordering::Relaxed);
                    }
                    break (guard, outcome);
                }
            };
            settings = s;
            statements = st;
            // A second move resumes from the furthest point the client got
            // to, whichever server it was on.
            seen = seen.max(Some(rec.rewind(conn)));
            route = next_route;
        };
        let mut guard = guard;
        if let Route::Primary { writes: true } = route
            && let Some(h) = &entry.hybrid
            && matches!(outcome, Some(Watched::Done(Outcome::Idle)))
        {
            wrote.committed(h.stickiness, &mut guard).await;
        }

        if let Some(reason) = settings.pinned() {
            guard.must_reset("DISCARD ALL");
            if !pin_logged {
                pin_logged = true;
                entry.pins.fetch_add(1, Ordering::Relaxed);
                tracing::info!(pool = %entry.name, reason = reason.describe(), "client pinned to its server until it leaves or runs DISCARD ALL");
            }
        }
        // After the pin check: a pinned server is reset whatever ends here.
        let outcome = match outcome {
            Some(Watched::Done(o)) => Some(o),
            Some(Watched::Expired(waiting, limit)) => {
                return Err(
                    crate::watchdog::expired(guard, &entry.name, waiting, limit, false).await,
                );
            }
            None => None,
        };
        match outcome {
            // NeedsPrimary, Lagging: a replica's refusal whose recording
            // could not be replayed; not reached (the relay then forwards the
            // error), handled as the end of a transaction.
            Some(Outcome::Idle) | Some(Outcome::NeedsPrimary) | Some(Outcome::Lagging) => {
                give_back(guard).await;
                client.set(ClientState::Idle, 0);
                client.set_prepared(statements.len());
            }
            Some(Outcome::Stopped(_)) => {
                // Terminate.
                give_back(guard).await;
                return Ok(());
            }
            Some(Outcome::TransactionBlock) => {
                // Rolled back before anyone else gets it.
                give_back(guard).await;
                tracing::info!(pool = %entry.name, "closing because: transaction blocks not allowed in statement pooling mode");
                return Err(ClientError::fatal(
                    fed::sqlstate::SqlState::PROTOCOL_VIOLATION,
                    "transaction blocks not allowed in statement pooling mode",
                )
                .with_hint("this pool runs each statement on its own: use a transaction pool for BEGIN ... COMMIT"));
            }
            None => {
                client.set(ClientState::Idle, 0);
                if client.is_killed() {
                    // Closed with the client, as PgBouncer does: it may be
                    // mid-query.
                    guard.discard();
                    return Err(killed());
                }
                give_back(guard).await;
                return Err(shutdown_error());
            }
            Some(Outcome::ClientGone(e)) => {
                tracing::debug!(pool = %entry.name, error = %e, "client left mid-transaction");
                give_back(guard).await;
                return Err(gone());
            }
            Some(Outcome::ServerGone(e)) => return Err(server_lost(guard, &entry.name, &e)),
        }
    }
}

/// A read-write client's last write in a hybrid pool, for read-your-writes.
#[derive(Default)]
struct LastWrite {
    /// `primary_stickiness DUR`: its reads stay on the primary until then.
    until: Option<Instant>,
    /// `primary_stickiness lsn`: the primary's WAL position after its last
    /// write; a replica serves its reads once it has replayed that far.
    lsn: Option<u64>,
}

impl LastWrite {
    /// Whether the client's next transaction must start on the primary.
    fn sticky(&self) -> bool {
        self.until.is_some_and(|t| Instant::now() < t)
    }

    /// Notes a write transaction that just ended on the primary `guard`
    /// holds.
    async fn committed(&mut self, stickiness: gat::Stickiness, guard: &mut spool::Guard) {
        match stickiness {
            gat::Stickiness::For(d) => self.until = Some(Instant::now() + d),
            gat::Stickiness::Lsn => {
                match lsn::read(guard.server(), lsn::INSERTED).await {
                    Ok(Some(lsn)) => self.lsn = self.lsn.max(Some(lsn)),
                    // Without a position, time is the best guess.
                    _ => self.until = Some(Instant::now() + LSN_UNKNOWN_STICKINESS),
                }
            }
        }
    }
}

/// How long a client's reads stay on the primary when its commit's WAL
/// position could not be read (`primary_stickiness lsn`).
const LSN_UNKNOWN_STICKINESS: std::time::Duration = std::time::Duration::from_secs(1);

/// Whether `replica`, whose server `guard` holds, has replayed up to
/// `commit` (a WAL position): from what it was last seen at, else asked now
/// (a server that is not a standby, promoted, has all it will get).
async fn replica_has(
    replica: &crate::hybrid::Replica,
    commit: u64,
    guard: &mut spool::Guard,
) -> bool {
    if replica.has_replayed(commit) {
        return true;
    }
    match lsn::read(guard.server(), lsn::REPLAYED).await {
        Ok(Some(replayed)) => replica.saw_replayed(replayed),
        Ok(None) => return true,
        Err(_) => return false,
    }
    replica.has_replayed(commit)
}

/// After a lag error (see [`Outcome::Lagging`]): cleans the replica `guard`
/// holds (what it still owed is read and dropped, the transaction rolled
/// back) and returns how far it has replayed. `None`: it could not say.
async fn replayed_after_error(guard: &mut spool::Guard) -> Option<u64> {
    let timeout = guard.pool().options().reset_timeout;
    let server = guard.server();
    server.reset(None, timeout).await.ok()?;
    lsn::read(server, lsn::REPLAYED).await.ok().flatten()
}

/// On the primary `guard` holds, after a lag error on a replica (`check`:
/// which, whether the transaction moves, how far it had replayed): the route
/// back to that replica when it had replayed everything the primary has
/// inserted, so the error was the client's own and it sees it from the
/// server it asked; `None` to replay on the primary.
async fn replay_where_it_was(
    (index, moves, replayed): (usize, bool, Option<u64>),
    guard: &mut spool::Guard,
) -> Option<Route> {
    let replayed = replayed?;
    // The insert position, not the write position: with
    // `synchronous_commit off` a commit the client has seen (the DDL the
    // replica lacks) may not be written out yet.
    let inserted = lsn::read(guard.server(), lsn::INSERTED)
        .await
        .ok()
        .flatten()?;
    (replayed >= inserted).then_some(Route::Replica { index, moves })
}

/// Most servers one transaction tries before its error reaches the client.
const MAX_ATTEMPTS: usize = 3;

/// Where a transaction goes when replica `failed` cannot serve it: another
/// fit replica for a read-only client (none: `None`, the error stands), the
/// primary for a read-write one.
fn other_server(h: &Hybrid, mode: ClientMode, failed: usize) -> Option<Route> {
    match mode {
        ClientMode::ReadOnly => h.choose(Some(failed)).map(|index| Route::Replica {
            index,
            moves: false,
        }),
        _ => {
            h.counters.primary_direct.fetch_add(1, Ordering::Relaxed);
            Some(Route::Primary { writes: false })
        }
    }
}

/// Returns a server to the pool, cleaning it first if it needs that (boxed:
/// that path is rare, and the task of every idle client would otherwise keep
/// room for it).
async fn give_back(guard: spool::Guard) {
    if let Some(guard) = guard.release_if_clean() {
        Box::pin(guard.release(false)).await;
    }
}

/// Most bytes of Parse/Close messages looked at for a batch answered here.
const LOCAL_BATCH: usize = 64 * 1024;

/// Waits for the client's next message and decides what it starts. What is
/// answered here is consumed and its answer encoded.
async fn next(
    conn: &mut Conn,
    statements: &mut ClientStatements,
    known: &Known,
    eqp: bool,
) -> Next {
    loop {
        match local_batch(conn.buffered(), eqp) {
            Batch::Leave => return Next::Leave,
            Batch::Transaction => return Next::Transaction,
            Batch::Answer(len) => {
                if answer_locally(conn, len, statements, known) {
                    return Next::Local;
                }
                return Next::Transaction;
            }
            Batch::Query(len) => {
                let mut replies = bytes::BytesMut::new();
                let body = &conn.buffered()[fed::frame::HEADER_LEN..len];
                if statements.deallocate_locally(body, &mut replies) {
                    let _ = conn.rbuf_mut().split_to(len);
                    conn.out().extend_from_slice(&replies);
                    return Next::Local;
                }
                return Next::Transaction;
            }
            Batch::Incomplete => {}
        }
        if conn.fill_idle().await.is_err() {
            return Next::Leave;
        }
    }
}

enum Batch {
    /// Terminate.
    Leave,
    /// Needs a server.
    Transaction,
    /// The first `len` bytes may be answered here.
    Answer(usize),
    /// The first `len` bytes are a simple Query that may be one answered
    /// here (a DEALLOCATE of a protocol-level statement).
    Query(usize),
    /// Too early to tell.
    Incomplete,
}

/// Classifies the buffered messages by their headers: a run of Parse and
/// Close ended by Sync, or a simple Query (both only with eqp, which knows
/// the statements), or Sync/Flush alone, may be answered without a server;
/// anything else starts a transaction.
fn local_batch(buf: &[u8], eqp: bool) -> Batch {
    let mut at = 0;
    loop {
        let Some(&tag) = buf.get(at) else {
            return Batch::Incomplete;
        };
        if at == 0 && tag == b'X' {
            return Batch::Leave;
        }
        if at == 0 && tag == b'Q' && eqp {
            return match fed::frame::header(buf, LOCAL_BATCH) {
                Ok(Some(h)) if buf.len() >= h.len => Batch::Query(h.len),
                Ok(_) => Batch::Incomplete,
                // Longer than any DEALLOCATE: streamed to a server.
                Err(_) => Batch::Transaction,
            };
        }
        let statement = matches!(tag, b'P' | b'C');
        if !((statement && eqp) || matches!(tag, b'S' | b'H')) || at > LOCAL_BATCH {
            return Batch::Transaction;
        }
        let Ok(Some(h)) = fed::frame::header(&buf[at..], LOCAL_BATCH) else {
            return if buf.len() - at < fed::frame::HEADER_LEN {
                Batch::Incomplete
            } else {
                Batch::Transaction
            };
        };
        if buf.len() - at < h.len {
            return Batch::Incomplete;
        }
        at += h.len;
        match tag {
            b'S' => return Batch::Answer(at),
            // A lone Flush asks for nothing; after a Parse it asks for the
            // answer now, which a server gives.
            b'H' if at == h.len => return Batch::Answer(at),
            b'H' => return Batch::Transaction,
            _ => {}
        }
    }
}

/// Answers the first `len` buffered bytes (see [`local_batch`]) if every
/// Parse in them can be; consumes them then, else leaves them untouched.
fn answer_locally(
    conn: &mut Conn,
    len: usize,
    statements: &mut ClientStatements,
    known: &Known,
) -> bool {
    let messages = || fed::frame::messages(&conn.buffered()[..len]);
    let mut names = Vec::new();
    for (tag, body) in messages() {
        let ok = match tag {
            b'P' => {
                let Ok(parse) = fed::messages::frontend::Parse::decode(body) else {
                    return false;
                };
                let fresh = !names.contains(&parse.statement);
                names.push(parse.statement);
                // Statements that change settings or pin are seen by ps,
                // which runs on the way to a server.
                fresh
                    && !fed::sql::has_effects(parse.query)
                    && statements.can_parse_locally(body, known)
            }
            b'C' => ClientStatements::can_close_locally(body),
            _ => true,
        };
        if !ok {
            return false;
        }
    }
    let mut replies = bytes::BytesMut::new();
    for (tag, body) in messages() {
        match tag {
            b'P' => {
                statements.parse_locally(body);
                backend::ParseComplete {}.encode(&mut replies);
            }
            b'C' => {
                statements.close_locally(body);
                backend::CloseComplete {}.encode(&mut replies);
            }
            b'S' => backend::ReadyForQuery { status: b'I' }.encode(&mut replies),
            _ => {}
        }
    }
    let _ = conn.rbuf_mut().split_to(len);
    conn.out().extend_from_slice(&replies);
    true
}

/// The parameters to tell a client at startup: a server's, after the
/// client's tracked startup parameters are applied to it. Learned once per
/// distinct set of such parameters, then answered from the pool's cache.
async fn startup_params(
    params: &[(String, String)],
    entry: &PoolEntry,
    ticket: &mut rob::Ticket,
    client: &ClientInfo,
) -> Result<spool::Params, ClientError> {
    let key: Vec<(String, String)> = params
        .iter()
        .filter(|(k, _)| entry.tracked.iter().any(|t| t.eq_ignore_ascii_case(k)))
        .cloned()
        .collect();
    if let Some(p) = entry.startup_params.lock().get(&key) {
        return Ok(p.clone());
    }
    client.set(ClientState::Waiting, 0);
    let acquired = entry.pool.acquire(ticket).await;
    client.set(ClientState::Idle, 0);
    let mut guard = acquired?;
    let wanted = key.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    if let Err(e) = crate::params::apply(wanted, guard.server()).await {
        give_back(guard).await;
        return Err(e);
    }
    let told = guard.server_ref().params().clone();
    // The server now holds this client's startup values: remembered as the
    // ps state of whoever gets it next, so nothing is lost.
    give_back(guard).await;
    let mut cache = entry.startup_params.lock();
    if cache.len() >= STARTUP_CACHE {
        cache.clear();
    }
    cache.insert(key, told.clone());
    Ok(told)
}
