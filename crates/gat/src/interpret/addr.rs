//! Addresses: server block keys (listeners), the admin listener and pool server addresses.

use std::path::PathBuf;

use crate::config::{Address, Listen, ListenAddr, Scheme};
use crate::error::{Error, Result, Span};
use crate::syntax::Token;

const LISTEN_EXPECTED: &str =
    "host:port, :port, [v6addr]:port or a unix socket path starting with / or ./";

/// A server block key: `[scheme://]address`.
pub(super) fn listen(token: &Token) -> Result<Listen> {
    let text = token.text.as_str();
    let (scheme, rest) = match text.split_once("://") {
        None => (Scheme::Postgres, text),
        Some(("postgres" | "postgresql", rest)) => (Scheme::Postgres, rest),
        Some(("tcp", _)) => (Scheme::Tcp, ""),
        Some(("http", _)) => (Scheme::Http, ""),
        Some((other, _)) => {
            return Err(Error::at(
                &token.pos,
                format!("unknown scheme {other:?} in listen address {text:?}"),
                "postgres:// or no scheme",
            ));
        }
    };
    if scheme != Scheme::Postgres {
        return Err(Error::at(
            &token.pos,
            format!(
                "{text:?}: {} listeners are not supported yet",
                if scheme == Scheme::Tcp {
                    "tcp://"
                } else {
                    "http://"
                }
            ),
            "a PostgreSQL listener (postgres:// or no scheme)",
        ));
    }
    let addr = if is_path(rest) {
        ListenAddr::Unix(PathBuf::from(rest))
    } else {
        let (host, port) = host_port(rest, None).ok_or_else(|| {
            Error::at(
                &token.pos,
                format!("invalid listen address {text:?}"),
                LISTEN_EXPECTED,
            )
        })?;
        ListenAddr::Tcp { host, port }
    };
    Ok(Listen {
        scheme,
        addr,
        span: Span::at(&token.pos),
    })
}

/// A TCP listen address for a setting such as `admin`.
pub(super) fn listen_tcp(token: &Token, setting: &str) -> Result<(String, u16)> {
    host_port(&token.text, None)
        .ok_or_else(|| super::invalid(token, setting, "host:port, :port or [v6addr]:port"))
}

/// A server address: `host[:port]` (port 5432 by default), `[v6addr][:port]` or a unix socket path.
pub(super) fn address(token: &Token, setting: &str) -> Result<Address> {
    let text = token.text.as_str();
    if is_path(text) {
        if text.contains('*') {
            return Err(super::invalid(token, setting, "a socket path without `*`"));
        }
        return Ok(Address::Unix(PathBuf::from(text)));
    }
    match host_port(text, Some(5432)) {
        Some((host, port)) if !host.is_empty() => Ok(Address::Tcp { host, port }),
        _ => Err(super::invalid(
            token,
            setting,
            "host, host:port, [v6addr]:port or a unix socket path starting with / or ./",
        )),
    }
}

fn is_path(text: &str) -> bool {
    text.starts_with('/') || text.starts_with("./") || text.starts_with("../")
}

/// Splits `host:port`, `:port` or `[v6]:port`; a missing port takes `default_port` when there is one.
/// The host comes back without brackets; an unbracketed host may not contain `:`.
fn host_port(text: &str, default_port: Option<u16>) -> Option<(String, u16)> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        if host.is_empty() || !host.contains(':') {
            return None;
        }
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':')?)),
        }
    } else {
        match text.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    let valid_host = host
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '%'));
    if !valid_host || (!text.starts_with('[') && host.contains(':')) {
        return None;
    }
    let port = match port {
        Some(port) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            port.parse().ok()?
        }
        Some(_) => return None,
        None => default_port?,
    };
    Some((host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::host_port;

    #[test]
    fn host_ports() {
        let hp = |t: &str, d| host_port(t, d);
        assert_eq!(hp("127.0.0.1:6432", None), Some(("127.0.0.1".into(), 6432)));
        assert_eq!(hp(":5433", None), Some(("".into(), 5433)));
        assert_eq!(hp("[::1]:5433", None), Some(("::1".into(), 5433)));
        assert_eq!(hp("[::1]", Some(5432)), Some(("::1".into(), 5432)));
        assert_eq!(
            hp("db.internal", Some(5432)),
            Some(("db.internal".into(), 5432))
        );
        assert_eq!(hp("db.internal", None), None);
        assert_eq!(hp("::1:5432", None), None);
        assert_eq!(hp("host:99999", None), None);
        assert_eq!(hp("host:", None), None);
        assert_eq!(hp("host:x", None), None);
        assert_eq!(hp("[]:5", None), None);
        assert_eq!(hp("[::1]x", None), None);
        assert_eq!(hp("a b:5", None), None);
        assert_eq!(hp("user@host:5", None), None);
    }
}
