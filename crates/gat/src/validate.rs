//! Checks across a whole config that no single directive can make: limits that must agree, listeners that
//! must be unique, blocks that must not be empty, routes that can never run (after a catch-all pool).
//!
//! Runs on every config, parsed from a Gatfile or read from JSON. Gatfile configs carry spans, so errors
//! point at the line; JSON configs do not, so errors name the file and the item's path in the JSON
//! (`servers[0].routes[2]`).

use std::collections::HashMap;

use crate::config::{Config, Handler, ListenAddr, Pool, PoolKind};
use crate::error::{Error, Pos, Result, Span};

pub(crate) fn validate(config: &Config, file: &str) -> Result<()> {
    if config.servers.is_empty() {
        return Err(Error::at(
            &Pos::file_only(file),
            "no server blocks",
            "at least one server block such as `:6432 { pool ... }`",
        ));
    }
    let mut listeners: HashMap<&ListenAddr, &Span> = HashMap::new();
    for (i, server) in config.servers.iter().enumerate() {
        let at = |span: &Span, path: String, found: String, expected: &str| -> Error {
            match &span.0 {
                Some(pos) => Error::at(pos, found, expected),
                None => Error::at(&Pos::file_only(file), format!("{path}: {found}"), expected),
            }
        };
        let name = server
            .listen
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" ");
        if server.listen.is_empty() {
            return Err(at(
                &server.span,
                format!("servers[{i}]"),
                "server without listen addresses".into(),
                "at least one",
            ));
        }
        for (j, listen) in server.listen.iter().enumerate() {
            if let Some(first) = listeners.get(&listen.addr) {
                let first = match &first.0 {
                    Some(pos) => format!(" (first at {pos})"),
                    None => String::new(),
                };
                return Err(at(
                    &listen.span,
                    format!("servers[{i}].listen[{j}]"),
                    format!("duplicate listen address {:?}{first}", listen.to_string()),
                    "each address in one server block only",
                ));
            }
            listeners.insert(&listen.addr, &listen.span);
        }
        if server.routes.is_empty() {
            return Err(at(
                &server.span,
                format!("servers[{i}]"),
                format!("server block {name:?} without routes"),
                "at least one handler such as pool",
            ));
        }
        let mut catch_all: Option<&Span> = None;
        for (j, route) in server.routes.iter().enumerate() {
            if let Some(first) = catch_all {
                let first = match &first.0 {
                    Some(pos) => format!(" at {pos}"),
                    None => String::new(),
                };
                return Err(at(
                    &route.span,
                    format!("servers[{i}].routes[{j}]"),
                    format!("unreachable route after the catch-all terminal route{first}"),
                    "routes before the catch-all, or a matcher on it",
                ));
            }
            if route.matcher.is_none() && route.handler.is_terminal() {
                catch_all = Some(&route.span);
            }
            if let Handler::Pool(pool) = &route.handler {
                let span = if pool.span.0.is_some() {
                    &pool.span
                } else {
                    &route.span
                };
                check_pool(pool).map_err(|(found, expected)| {
                    at(
                        span,
                        format!("servers[{i}].routes[{j}].pool"),
                        found,
                        expected,
                    )
                })?;
            }
        }
    }
    Ok(())
}

/// Per-pool checks: `(found, expected)` on failure.
fn check_pool(pool: &Pool) -> std::result::Result<(), (String, &'static str)> {
    if pool.max_connections == 0 {
        return Err(("max_connections 0".into(), "max_connections of at least 1"));
    }
    if pool.min_connections > pool.max_connections {
        return Err((
            format!(
                "min_connections {} is greater than max_connections {}",
                pool.min_connections, pool.max_connections
            ),
            "min_connections <= max_connections",
        ));
    }
    if pool.server_connect_timeout.is_zero() || pool.server_login_timeout.is_zero() {
        return Err((
            "a zero server_connect_timeout or server_login_timeout".into(),
            "timeouts above zero",
        ));
    }
    let basic = pool.kind.basic();
    if basic.reconnect_max < basic.reconnect_initial {
        return Err((
            "reconnect maximum below its initial delay".into(),
            "a maximum at least as long as the initial delay",
        ));
    }
    match &pool.kind {
        PoolKind::Basic(_) if !pool.replicas.is_empty() => {
            return Err((
                "replica addresses in a pool that is not hybrid".into(),
                "`pool hybrid` in the pool block, or no replica lines",
            ));
        }
        PoolKind::Hybrid(h) if h.basic.mode != crate::PoolMode::Transaction => {
            return Err((
                "a hybrid pool in session mode".into(),
                "transaction pooling (hybrid pools route each transaction)",
            ));
        }
        _ => {}
    }
    Ok(())
}
