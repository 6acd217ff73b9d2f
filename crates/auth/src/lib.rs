//! Cleartext, MD5 and SCRAM-SHA-256 authentication as sans-I/O state machines, for both sides of a pooler.
//!
//! pggat authenticates twice per client: it checks the client that connects to it (pggat as a PostgreSQL
//! *server*), and it logs in to PostgreSQL for the pool (pggat as a *client*). This crate does both and never
//! touches a socket or a wire message: callers feed it the payload bytes of Authentication*, PasswordMessage and
//! SASL* messages and send what it answers. That keeps every exchange testable byte for byte (RFC 7677's vector,
//! client and server pumped against each other in memory) and keeps the crate free of `fed`'s types.
//!
//! # Tour
//!
//! - [`Secret`] — a password as configured: plain, a PostgreSQL `md5...` hash ([`Md5Secret`]) or a
//!   `SCRAM-SHA-256$...` verifier ([`ScramSecret`]). [`Secret::parse`] tells them apart as PostgreSQL does.
//! - Checking clients ([`server`]): when the config loads, build a [`PreparedSecret`] per user; it derives
//!   whatever later logins need (for a plain password: the MD5 hash and a SCRAM verifier), so no login runs
//!   PBKDF2. Per connection, [`choose_method`] picks the method (SCRAM by default), [`ServerAuth::start`] gives
//!   the first [`Request`], and [`ServerAuth::step`] consumes each [`ClientMessage`] until [`Step::Done`].
//! - Logging in to servers ([`client`]): build [`ClientCredentials`] once per server user; per connection,
//!   [`ClientAuth::on_request`] answers each [`ServerRequest`] with a [`Response`] and checks the server's
//!   SCRAM signature. The SCRAM keys for the server's salt are cached in the credentials, so only the first
//!   login to a server pays for PBKDF2.
//! - SCRAM pass-through: when the pool's server credentials are only a SCRAM verifier (no password), a client
//!   that logs in with SCRAM against that same verifier yields its [`ClientKey`] in [`Outcome::client_key`];
//!   [`ClientCredentials::set_client_key`] then lets pggat log in to servers holding that verifier, as
//!   PgBouncer does.
//!
//! ```text
//!  client ──Password / SASLInitialResponse / SASLResponse──▶ ServerAuth::step ──▶ Request ──▶ client
//!                                                                    └─ Done(Outcome { sasl_final, client_key })
//!  server ──Authentication*──▶ ClientAuth::on_request ──▶ Response ──▶ server        (Ok(None) on AuthenticationOk)
//! ```
//!
//! # Limits
//!
//! - Passwords are used as raw bytes. PostgreSQL SASLpreps SCRAM passwords first, which changes nothing for
//!   ASCII passwords and most NFKC-normalised Unicode ones; a password SASLprep would alter cannot log in with
//!   SCRAM against a verifier PostgreSQL computed.
//! - No channel binding (`SCRAM-SHA-256-PLUS`): a pooler terminates TLS, so there is no single channel to bind.
//! - PBKDF2 runs on the calling thread (a few milliseconds for 4096 iterations); the server sets the count a
//!   client login uses.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
mod error;
mod method;
mod scram;
pub mod secret;
pub mod server;

pub use client::{ClientAuth, ClientCredentials, Response, ServerRequest};
pub use error::Error;
pub use method::Method;
pub use secret::{ClientKey, Md5Secret, PreparedSecret, ScramSecret, Secret};
pub use server::{ClientMessage, Outcome, Request, ServerAuth, Step, choose_method};

#[cfg(test)]
mod tests;
