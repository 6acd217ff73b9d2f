//! spool: pools of PostgreSQL server connections.
//!
//! A tour:
//! - [`Recipe`]: how to reach and log in to one server (address, role,
//!   credentials, database, startup parameters, deadlines).
//! - [`Server`]: one logged-in connection, with its [`fed::Pipeline`] (what it
//!   still owes), backend key (for cancels) and reported parameters; it can
//!   [reset](Server::reset) itself after a client left mid-conversation.
//! - [`Pool`]: the connections of one recipe, pre-warmed to `min`, grown on
//!   demand to `max`, reaped when idle, reconnected with backoff; clients wait
//!   in a [`rob::Scheduler`].
//! - [`Guard`]: a server on loan; release it explicitly, or drop it and it is
//!   cleaned (or closed) in the background.
//!
//! Flow: `Pool::acquire` → `Guard` (client relays through `Guard::server`) →
//! `Guard::release` → pool check-in (idle and healthy: back to the scheduler;
//! otherwise closed and, if below `min`, replaced).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
mod guard;
mod limit;
mod pool;
mod recipe;
mod server;
mod status;

pub use error::{Error, Result, ServerError};
pub use guard::Guard;
pub use limit::Limit;
pub use pool::{Counters, Options, Pool, Stats};
pub use recipe::{Address, Recipe, ServerTls, TlsWhen};
pub use server::{BackendKey, Params, Parts, Server, server_error};
pub use status::{ServerState, ServerStatus, Stamp};
