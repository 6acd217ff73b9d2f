//! Reading what a client sends before it is authenticated: SSLRequest,
//! GSSENCRequest, CancelRequest, StartupMessage.
//!
//! Every packet is bounded (10 000 bytes, PostgreSQL's own limit) before
//! anything is allocated for it. A protocol we do not speak, a malformed
//! packet or a missing `user` gets a FATAL ErrorResponse and a closed socket.

use fed::Conn;
use fed::messages::{backend, startup};
use fed::sqlstate::SqlState;

use crate::errors::ClientError;

/// What the client asked for.
#[derive(Debug)]
pub enum Request {
    /// A session, with these parameters.
    Startup(Startup),
    /// TLS, which the listener offers: 'S' was sent, the handshake is next.
    StartTls,
    /// Cancel the query of the client holding this key.
    Cancel {
        /// Client key process id.
        pid: i32,
        /// Client key secret.
        secret: i32,
    },
}

/// A StartupMessage, normalised.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Startup {
    /// `user`.
    pub user: String,
    /// `database` (defaults to the user, as in PostgreSQL).
    pub database: String,
    /// Every other parameter, in the client's order, with `options`'
    /// `-c name=value` / `--name=value` pairs expanded into it.
    pub params: Vec<(String, String)>,
}

impl Startup {
    /// The value of a parameter the client sent.
    pub fn param(&self, name: &str) -> Option<&str> {
        param(&self.params, name)
    }
}

/// The value of startup parameter `name` (case-insensitive; the last one
/// sent wins, as in PostgreSQL).
pub fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .rev()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Reads startup packets until the client asks for a session, a cancel, or
/// (when `offer_tls`) TLS. GSSENCRequest, and SSLRequest when TLS is not
/// offered (or already on), are declined with 'N' and the client may go on
/// in plain text.
pub async fn negotiate(conn: &mut Conn, offer_tls: bool) -> Result<Request, ClientError> {
    loop {
        let body = conn.read_startup().await.map_err(|e| match e {
            fed::Error::TooLong { .. } | fed::Error::BadLength(_) => ClientError::fatal(
                SqlState::PROTOCOL_VIOLATION,
                "invalid length of startup packet",
            ),
            e => ClientError::fatal(
                SqlState::PROTOCOL_VIOLATION,
                format!("incomplete startup packet: {e}"),
            ),
        })?;
        let packet = startup::Startup::decode(&body).map_err(|e| match e {
            fed::codec::DecodeError::UnknownStartupCode(code) => unsupported_protocol(code),
            e => ClientError::fatal(
                SqlState::PROTOCOL_VIOLATION,
                format!("invalid startup packet layout: {e}"),
            ),
        })?;
        match packet {
            startup::Startup::SSLRequest(_) if offer_tls => {
                conn.out().extend_from_slice(b"S");
                conn.flush()
                    .await
                    .map_err(|e| ClientError::fatal(SqlState::CONNECTION_FAILURE, e.to_string()))?;
                return Ok(Request::StartTls);
            }
            startup::Startup::SSLRequest(_) | startup::Startup::GSSENCRequest(_) => {
                conn.out().extend_from_slice(b"N");
                conn.flush()
                    .await
                    .map_err(|e| ClientError::fatal(SqlState::CONNECTION_FAILURE, e.to_string()))?;
            }
            startup::Startup::CancelRequest(c) => {
                return Ok(Request::Cancel {
                    pid: c.process_id,
                    secret: c.secret_key,
                });
            }
            startup::Startup::StartupMessage(m) => {
                let major = (m.protocol_version >> 16) as u16;
                let minor = (m.protocol_version & 0xffff) as u16;
                if major != 3 {
                    return Err(unsupported_protocol(m.protocol_version));
                }
                let mut s = Startup::default();
                let mut unsupported: Vec<&[u8]> = Vec::new();
                let mut user = None;
                let mut database = None;
                for (k, v) in m.parameters.iter() {
                    let key = String::from_utf8_lossy(k);
                    let val = String::from_utf8_lossy(v).into_owned();
                    match &*key {
                        "user" => user = Some(val),
                        "database" => database = Some(val),
                        "options" => parse_options(&val, &mut s.params)?,
                        "replication" if !matches!(val.as_str(), "false" | "off" | "no" | "0") => {
                            return Err(ClientError::fatal(
                                SqlState::FEATURE_NOT_SUPPORTED,
                                "replication connections are not supported by pggat; connect to the server directly",
                            ));
                        }
                        "replication" => {}
                        _ if key.starts_with("_pq_.") => unsupported.push(k),
                        _ => s.params.push((key.into_owned(), val)),
                    }
                }
                if minor > 0 || !unsupported.is_empty() {
                    backend::NegotiateProtocolVersion {
                        newest_minor: 0,
                        unrecognized: fed::codec::CStrList::from_slice(&unsupported),
                    }
                    .encode(conn.out());
                }
                s.user = user.filter(|u| !u.is_empty()).ok_or_else(|| {
                    ClientError::fatal(
                        SqlState::INVALID_AUTHORIZATION_SPECIFICATION,
                        "no PostgreSQL user name specified in startup packet",
                    )
                })?;
                s.database = database
                    .filter(|d| !d.is_empty())
                    .unwrap_or_else(|| s.user.clone());
                return Ok(Request::Startup(s));
            }
        }
    }
}

fn unsupported_protocol(version: i32) -> ClientError {
    ClientError::fatal(
        SqlState::FEATURE_NOT_SUPPORTED,
        format!(
            "unsupported frontend protocol {}.{}: server supports 3.0 to 3.0",
            (version >> 16) as u16,
            (version & 0xffff) as u16
        ),
    )
}

/// Expands the `options` startup parameter: `-c name=value`, `-cname=value`
/// and `--name=value`, with backslash-escaped spaces, as PostgreSQL reads it.
fn parse_options(options: &str, out: &mut Vec<(String, String)>) -> Result<(), ClientError> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut chars = options.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            c if c.is_ascii_whitespace() => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    let mut it = words.into_iter();
    while let Some(w) = it.next() {
        let setting = if w == "-c" {
            it.next()
        } else if let Some(rest) = w.strip_prefix("-c") {
            Some(rest.to_owned())
        } else {
            w.strip_prefix("--").map(str::to_owned)
        };
        let Some(setting) = setting else {
            return Err(ClientError::fatal(
                SqlState::FEATURE_NOT_SUPPORTED,
                format!(
                    "unsupported startup option \"{w}\": pggat accepts only -c name=value and --name=value"
                ),
            ));
        };
        // An empty name (`-c=`, `-c =x`, `--=`) names no setting.
        let Some((k, v)) = setting.split_once('=').filter(|(k, _)| !k.is_empty()) else {
            return Err(ClientError::fatal(
                SqlState::SYNTAX_ERROR,
                format!("invalid startup option \"{setting}\": expected name=value"),
            ));
        };
        out.push((k.replace('-', "_"), v.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_expand_into_parameters() {
        let mut out = Vec::new();
        parse_options(r"-c search_path=a,b  -cstatement_timeout=5s --work-mem=64MB -c application_name=my\ app", &mut out).unwrap();
        assert_eq!(
            out,
            vec![
                ("search_path".into(), "a,b".into()),
                ("statement_timeout".into(), "5s".into()),
                ("work_mem".into(), "64MB".into()),
                ("application_name".into(), "my app".into()),
            ]
        );
    }

    #[test]
    fn options_reject_unknown_switches() {
        let mut out = Vec::new();
        assert!(parse_options("-F", &mut out).is_err());
        assert!(parse_options("-c novalue", &mut out).is_err());
    }

    /// Options that name no setting (CVE-2025-107349's class) are refused
    /// with a clear error, never passed on as an empty name.
    #[test]
    fn options_without_a_name_are_refused() {
        for options in ["-c=", "-c =x", "--=", "--=x", "-c", "--", "-c= -c a=b"] {
            let mut out = Vec::new();
            let err = parse_options(options, &mut out).expect_err(options);
            assert!(out.iter().all(|(k, _)| !k.is_empty()), "{options}: {out:?}");
            assert!(
                err.code == SqlState::SYNTAX_ERROR || err.code == SqlState::FEATURE_NOT_SUPPORTED,
                "{options}: {:?}",
                err.code
            );
        }
    }
}
