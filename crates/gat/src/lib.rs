//! Configuration for pggat: the Gatfile and its JSON form.
//!
//! # Tour
//!
//! A Gatfile is Caddyfile syntax: an optional global options block, then server blocks whose keys are
//! listen addresses and whose lines are named matchers and routes:
//!
//! ```text
//! { stat_log_period 10s }
//! :6432 {
//!     @ro user *_ro
//!     trust @ro
//!     pool /app* {
//!         address 127.0.0.1:5432
//!         username app
//!         password s3cret
//!         pool basic session
//!     }
//! }
//! ```
//!
//! Reading one goes through three stages, each in its own module:
//!
//! 1. [`syntax`]: `{$ENV}` substitution, then pest turns the text into a generic tree of
//!    [`Directive`](syntax::Directive)s (name, arguments, optional block), every token with its
//!    `file:line:col`; `import` lines and snippets are spliced in.
//! 2. `interpret`: hand-written match arms turn the tree into the typed [`Config`], filling in every
//!    default, so consumers never re-derive one.
//! 3. `validate`: checks across the config (min <= max connections, unique listen addresses, ...).
//!
//! The typed [`Config`] is also the JSON form ([`Config::to_json`], [`Config::from_json`]). At run time the
//! binary evaluates each route's [`Matcher`] against a [`ConnInfo`] once per client.
//!
//! Every mistake is one [`Error`] whose message reads `FILE:LINE:COL: <found>, expected <what>`. Only the
//! first mistake is reported. No input makes this crate panic: nesting, import depth, file size and the
//! number of directives are all bounded.
//!
//! ```
//! let config = gat::parse_str("Gatfile", ":6432 {\n    trust\n    pool /app* 127.0.0.1:5432 app app pw\n}\n")?;
//! // Per client, once, after startup: every matching route in order, up to the first terminal one.
//! let conn = gat::ConnInfo::new("alice", "app_prod");
//! let routes: Vec<&gat::Route> = config.servers[0].routes.iter().filter(|r| r.matches(&conn)).collect();
//! assert!(matches!(routes[0].handler, gat::Handler::Trust));
//! assert!(routes[1].handler.is_terminal());
//! # Ok::<(), gat::Error>(())
//! ```
//!
//! # Gatfile reference
//!
//! Lexical: one directive per line; tokens are bare words, `"quoted"` (escapes `\"` and `\\`) or
//! `` `backtick` `` strings; `#` at the start of a token comments out the rest of the line; `{` ends a
//! line to open a block and `}` closes it on its own line; `{$VAR}` / `{$VAR:default}` are substituted
//! first; `import FILE|GLOB|SNIPPET` splices lines in; `(name) { ... }` at the top level defines a snippet.
//!
//! Global block: `stat_log_period DUR|off` (1m), `admin HOST:PORT`, `threads N`, `shutdown_timeout DUR`
//! (30s).
//!
//! Server block keys: `[postgres://]HOST:PORT`, `:PORT`, `[V6]:PORT`, `/unix/socket` or `./socket`
//! (`tcp://`, `http://`: not supported yet). Inside:
//! - `@name COND ARGS` or `@name { COND... }` (all must hold); conditions `user GLOB`, `database GLOB`,
//!   `ssl [BOOL]`, `parameter NAME=GLOB`, `not COND` / `not { ... }`, `and { ... }`, `or { ... }`.
//! - `ssl [self_signed | x509_key_pair CERT KEY]`.
//! - Routes, each with an optional matcher first (`@name`, `/dbglob`, `*`): `password SECRET`, `trust`,
//!   `require_ssl [BOOL]`, `allowed_startup_parameters { NAME... }`,
//!   `user|database [strip_prefix|strip_suffix] NAME`, `parameter NAME=VALUE`, `error MESSAGE`,
//!   `pgbouncer [FILE]`, and `pool ADDRESS DATABASE USERNAME PASSWORD` or `pool { ... }` with `address`,
//!   `username`, `password`, `database`, `parameter K=V`, `ssl MODE [insecure_skip_verify]`,
//!   `min_connections`, `max_connections`, `client_acquire_timeout`, `server_connect_timeout`,
//!   `server_login_timeout`, `query_timeout`, `idle_transaction_timeout`, `client_idle_timeout`,
//!   `server_lifetime`, `server_check_delay`, `server_check_query`, and
//!   `pool basic [session|transaction] { pooler, reset_query, reset_query_timeout, idle_timeout,
//!   reconnect, release_after_transaction, parameter_status_sync, extended_query_sync, track }`.
//!
//! Defaults are documented on each field of [`Config`] and its parts; durations are described in
//! [`duration`].

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod duration;
mod error;
mod glob;
mod interpret;
mod matcher;
pub mod pgbouncer;
pub mod syntax;
mod validate;

use std::path::Path;

pub use config::{
    Address, AuthMethod, BasicPool, Config, Critic, DEFAULT_TRACKED, Global, Handler, HybridPool,
    Listen, ListenAddr, ParameterStatusSync, Pool, PoolKind, PoolMode, Pooler, Rewrite,
    RewriteMode, Route, Scheme, Server, ServerSsl, SslMode, Stickiness,
};
pub use error::{Error, Pos, Result, Span};
pub use glob::Glob;
pub use matcher::{ConnInfo, Matcher};
pub use syntax::{Environment, System};

/// Reads a configuration file: JSON when the name ends in `.json`, or when the text is a JSON object;
/// a Gatfile otherwise (a Gatfile may also start with `{`, its global block, but is never valid JSON).
/// Environment variables and imports come from the real process and file system.
pub fn load(path: impl AsRef<Path>) -> Result<Config> {
    load_with(path, &System)
}

/// [`load`] with a chosen [`Environment`].
pub fn load_with(path: impl AsRef<Path>, env: &dyn Environment) -> Result<Config> {
    let path = path.as_ref();
    let name = path.to_string_lossy();
    let text = env.read(path).map_err(|e| {
        let why = match e.kind() {
            std::io::ErrorKind::NotFound => "file not found".to_owned(),
            _ => e.to_string(),
        };
        Error::at(
            &Pos::file_only(name.as_ref()),
            format!("cannot read config: {why}"),
            "a readable Gatfile or JSON file",
        )
    })?;
    let is_json = path.extension().is_some_and(|ext| ext == "json")
        || (text.trim_start().starts_with('{')
            && serde_json::from_str::<serde_json::Value>(&text).is_ok_and(|v| v.is_object()));
    if is_json {
        Config::from_json(&name, &text)
    } else {
        parse_str_with(&name, &text, env)
    }
}

/// Parses Gatfile text. `name` is the file name used in messages and the base for relative imports.
pub fn parse_str(name: &str, text: &str) -> Result<Config> {
    parse_str_with(name, text, &System)
}

/// [`parse_str`] with a chosen [`Environment`] (tests, fuzzing, configs assembled in memory).
pub fn parse_str_with(name: &str, text: &str, env: &dyn Environment) -> Result<Config> {
    let doc = syntax::parse_document(name, text, env)?;
    let config = interpret::interpret(&doc)?;
    validate::validate(&config, name)?;
    Ok(config)
}
