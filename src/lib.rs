//! pggat: a PostgreSQL-aware connection pooler and gateway.
//!
//! This crate is the binary's library half, so that end-to-end tests can run
//! pggat in-process. A tour:
//! - [`app`]: from a [`gat::Config`] to bound listeners ([`app::start`]) and
//!   a graceful shutdown.
//! - [`client`]: a client's startup packets and authentication.
//! - [`route`]: matching a client to a pool; the registry of pools.
//! - [`session`] and [`transaction`]: serving a client from its pool until
//!   it leaves.
//! - [`hybrid`]: which server of a hybrid pool a transaction starts on.
//! - [`cancel`]: client keys and forwarding of cancel requests.
//! - [`errors`]: the one mapping from failures to ErrorResponses.
//! - [`cluster`] and [`demo`]: throwaway PostgreSQL clusters, for `pggat
//!   demo`, the tests and the benchmark.
//!
//! Data flows: listener → `client::startup` → `route` → `client::auth` →
//! `session` (pool acquire → `fed::Relay` → release).
#![forbid(unsafe_code)]

pub mod admin;
pub mod app;
pub mod cancel;
pub mod client;
pub mod clients;
pub mod cluster;
pub mod demo;
pub mod errors;
pub mod hybrid;
pub mod listener;
pub mod params;
pub mod pgbouncer;
pub mod reload;
pub mod route;
pub mod session;
pub mod signals;
pub mod stats;
pub mod tls;
pub mod transaction;
pub mod watchdog;
