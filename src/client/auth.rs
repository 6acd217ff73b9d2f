//! Checking a client's password: drives [`auth::ServerAuth`] over the wire.

use std::time::Duration;

use fed::Conn;
use fed::messages::{backend, frontend};
use fed::sqlstate::SqlState;

use crate::errors::ClientError;

/// A failed login waits this long before the error goes out, so guessing
/// passwords is slow and a wrong user cannot be told from a wrong password by
/// timing.
pub const FAILURE_DELAY: Duration = Duration::from_millis(200);

/// PostgreSQL's answer to a wrong password (or an unknown user, which must
/// not be told apart), after [`FAILURE_DELAY`].
pub async fn wrong_password(user: &str) -> ClientError {
    tokio::time::sleep(FAILURE_DELAY).await;
    ClientError::fatal(
        SqlState::INVALID_PASSWORD,
        format!("password authentication failed for user \"{user}\""),
    )
}

/// Most bytes of one message a client may send before it is authenticated,
/// header included: PostgreSQL's own limit on an authentication packet
/// (PG_MAX_AUTH_TOKEN_LENGTH). A stranger cannot make pggat hold more.
const MAX_AUTH_MESSAGE: usize = 65535 + fed::frame::HEADER_LEN;

/// Runs the authentication exchange with `secret` for `user`. On success
/// returns the SCRAM ClientKey when the client used SCRAM (for pass-through).
/// AuthenticationOk is *not* sent: the caller sends it with the rest of the
/// startup reply.
pub async fn authenticate(
    conn: &mut Conn,
    user: &str,
    secret: &auth::PreparedSecret,
    method: Option<auth::Method>,
) -> Result<Option<auth::ClientKey>, ClientError> {
    conn.set_max_message(MAX_AUTH_MESSAGE);
    let result = exchange(conn, user, secret, method).await;
    conn.set_max_message(fed::frame::DEFAULT_MAX_MESSAGE);
    result
}

async fn exchange(
    conn: &mut Conn,
    user: &str,
    secret: &auth::PreparedSecret,
    method: Option<auth::Method>,
) -> Result<Option<auth::ClientKey>, ClientError> {
    let method = auth::choose_method(secret, method).map_err(|e| {
        ClientError::fatal(SqlState::INVALID_AUTHORIZATION_SPECIFICATION, e.to_string())
    })?;
    let (mut state, first) =
        auth::ServerAuth::start(method, secret, &mut rand::rng()).map_err(|e| {
            ClientError::fatal(SqlState::INVALID_AUTHORIZATION_SPECIFICATION, e.to_string())
        })?;
    let mut request = first;
    loop {
        send_request(conn, &request);
        conn.flush().await.map_err(io_err)?;
        // Judged by its first byte, before its length: anything but a
        // password message (a second StartupMessage, whose first byte is a
        // length's) is refused at once, not waited for.
        while conn.buffered().is_empty() {
            conn.fill().await.map_err(io_err)?;
        }
        let tag = conn.buffered()[0];
        if tag != frontend::tag::PASSWORD_LIKE {
            return Err(unexpected(tag));
        }
        let msg = conn.read().await.map_err(io_err)?;
        let reply = match request {
            auth::Request::Cleartext | auth::Request::Md5 { .. } => {
                let pw = frontend::PasswordMessage::decode(&msg.body).map_err(malformed)?;
                auth::ClientMessage::Password(pw.password)
            }
            auth::Request::Sasl { .. } => {
                let init = frontend::SASLInitialResponse::decode(&msg.body).map_err(malformed)?;
                auth::ClientMessage::SaslInitial {
                    mechanism: init.mechanism,
                    data: init.data.unwrap_or_default(),
                }
            }
            auth::Request::SaslContinue(_) => {
                let r = frontend::SASLResponse::decode(&msg.body).map_err(malformed)?;
                auth::ClientMessage::SaslResponse(r.data)
            }
        };
        match state.step(reply) {
            Ok(auth::Step::Continue(next)) => request = next,
            Ok(auth::Step::Done(outcome)) => {
                if let Some(fin) = &outcome.sasl_final {
                    backend::Authentication::SASLFinal { data: fin }.encode(conn.out());
                }
                return Ok(outcome.client_key);
            }
            Err(auth::Error::WrongPassword) => return Err(wrong_password(user).await),
            Err(e) => {
                tokio::time::sleep(FAILURE_DELAY).await;
                return Err(ClientError::fatal(
                    SqlState::INVALID_AUTHORIZATION_SPECIFICATION,
                    format!("authentication failed for user \"{user}\": {e}"),
                ));
            }
        }
    }
}

fn send_request(conn: &mut Conn, request: &auth::Request) {
    let out = conn.out();
    match request {
        auth::Request::Cleartext => backend::Authentication::CleartextPassword.encode(out),
        auth::Request::Md5 { salt } => {
            backend::Authentication::MD5Password { salt: *salt }.encode(out)
        }
        auth::Request::Sasl { mechanisms } => {
            let names: Vec<&[u8]> = mechanisms.iter().map(|m| m.as_bytes()).collect();
            backend::Authentication::SASL {
                mechanisms: fed::codec::CStrList::from_slice(&names),
            }
            .encode(out);
        }
        auth::Request::SaslContinue(data) => {
            backend::Authentication::SASLContinue { data }.encode(out)
        }
    }
}

fn unexpected(tag: u8) -> ClientError {
    ClientError::fatal(
        SqlState::PROTOCOL_VIOLATION,
        format!(
            "expected password response, got message type {:?}",
            tag as char
        ),
    )
}

fn io_err(e: fed::Error) -> ClientError {
    if let fed::Error::TooLong { .. } | fed::Error::BadLength(_) = e {
        return ClientError::fatal(
            SqlState::PROTOCOL_VIOLATION,
            format!("invalid password packet: {e}"),
        );
    }
    ClientError::fatal(
        SqlState::CONNECTION_FAILURE,
        format!("connection lost during authentication: {e}"),
    )
}

fn malformed(e: fed::codec::DecodeError) -> ClientError {
    ClientError::fatal(
        SqlState::PROTOCOL_VIOLATION,
        format!("malformed password message: {e}"),
    )
}
