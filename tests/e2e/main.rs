//! End-to-end tests: pggat in-process, against real PostgreSQL clusters the
//! harness starts, driven by real clients (tokio-postgres, psql).

mod harness;

mod admin;
mod auth;
mod cancel;
mod cli;
mod differential;
mod drivers;
mod faults;
mod hybrid;
mod outage;
mod pgbouncer;
mod reload;
mod replicas;
mod session;
mod startup;
mod timeouts;
mod tls;
mod transaction;
