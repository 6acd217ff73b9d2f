//! pggat as the client: logging in to a PostgreSQL server.
//!
//! [`ClientCredentials`] are built once per (server user, secret) when the config loads and shared by every
//! connection to that user's servers. [`ClientAuth`] is a sans-I/O state machine for one login: the caller
//! decodes each Authentication* message into a [`ServerRequest`], passes it to [`ClientAuth::on_request`] and
//! sends the [`Response`] if there is one, until AuthenticationOk yields `Ok(None)`.

use std::fmt;
use std::mem;
use std::sync::{Mutex, PoisonError};

use subtle::ConstantTimeEq as _;

use crate::scram::{self, Attributes, KEY_LEN, MECHANISM};
use crate::{ClientKey, Error, Md5Secret, Method, ScramSecret, Secret};

/// What pggat can prove to a server about one user, and a cache of the SCRAM keys derived for that server.
///
/// | configured | cleartext | MD5 | SCRAM |
/// |---|---|---|---|
/// | plain | yes | yes | yes |
/// | MD5 hash | no | yes | no |
/// | SCRAM verifier | no | no | after [`set_client_key`](Self::set_client_key) |
///
/// SCRAM's salt and iteration count come from the server, so the PBKDF2 result cannot be computed at load
/// time; instead the keys for the last few (salt, iterations) servers presented are kept. A role's verifier
/// rarely changes and replicas share their primary's, so only the first login to a cluster pays for PBKDF2;
/// keeping a few entries lets one user's credentials serve several independent clusters without thrashing.
pub struct ClientCredentials {
    user: String,
    plain: Option<String>,
    md5: Option<Md5Secret>,
    verifier: Option<ScramSecret>,
    /// Keys per (salt, iterations), most recently derived first, at most [`CACHED_SALTS`]: derived from the
    /// plain password, or the one pass-through ClientKey with the verifier's ServerKey. The lock is held only
    /// to copy keys in or out, never across PBKDF2.
    keys: Mutex<Vec<ScramKeys>>,
}

/// How many (salt, iterations) pairs [`ClientCredentials`] remembers: one per independent cluster a user logs
/// in to is plenty.
const CACHED_SALTS: usize = 4;

#[derive(Clone)]
struct ScramKeys {
    salt: Vec<u8>,
    iterations: u32,
    client_key: [u8; KEY_LEN],
    server_key: [u8; KEY_LEN],
}

impl ClientCredentials {
    /// Credentials for logging in as `user` with `secret`.
    pub fn new(user: impl Into<String>, secret: Secret) -> ClientCredentials {
        let user = user.into();
        let (plain, md5, verifier) = match secret {
            Secret::Plain(password) => {
                let md5 = Md5Secret::derive(&password, &user);
                (Some(password), Some(md5), None)
            }
            Secret::Md5(md5) => (None, Some(md5), None),
            Secret::Scram(verifier) => (None, None, Some(verifier)),
        };
        ClientCredentials {
            user,
            plain,
            md5,
            verifier,
            keys: Mutex::new(Vec::new()),
        }
    }

    /// The user these credentials log in as.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Supplies the ClientKey a client proved with SCRAM against the same verifier ([`crate::Outcome::client_key`]),
    /// enabling SCRAM logins for credentials that hold only that verifier. The key is the same for every login
    /// of that user, so setting it again is harmless. With a plain password it is not needed and is ignored.
    ///
    /// # Errors
    /// [`Error::ClientKeyMismatch`] if the key does not belong to the configured verifier (or there is none).
    pub fn set_client_key(&self, key: &ClientKey) -> Result<(), Error> {
        if self.plain.is_some() {
            return Ok(());
        }
        let verifier = self.verifier.as_ref().ok_or(Error::ClientKeyMismatch)?;
        if !key.matches(verifier) {
            return Err(Error::ClientKeyMismatch);
        }
        *self.lock_keys() = vec![ScramKeys {
            salt: verifier.salt.clone(),
            iterations: verifier.iterations,
            client_key: key.0,
            server_key: verifier.server_key,
        }];
        Ok(())
    }

    /// Whether a server asking for `method` can be answered now.
    pub fn supports(&self, method: Method) -> bool {
        match method {
            Method::Cleartext => self.plain.is_some(),
            Method::Md5 => self.md5.is_some(),
            Method::ScramSha256 => self.plain.is_some() || !self.lock_keys().is_empty(),
        }
    }

    fn lock_keys(&self) -> std::sync::MutexGuard<'_, Vec<ScramKeys>> {
        // Entries are whole values pushed or replaced in one step, so a panic elsewhere cannot leave one half-written.
        self.keys.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn cannot_answer(&self, requested: Method) -> Error {
        let have = match (&self.plain, &self.md5, &self.verifier) {
            (Some(_), _, _) => "a plain password",
            (None, Some(_), _) => "an MD5 hash",
            (None, None, _) if !self.lock_keys().is_empty() => "a SCRAM verifier",
            (None, None, _) => {
                "a SCRAM verifier (and no client has logged in through SCRAM pass-through yet)"
            }
        };
        Error::CannotAnswer {
            requested,
            have,
            user: self.user.clone(),
        }
    }

    /// (ClientKey, ServerKey) for the salt and iteration count the server presented.
    fn scram_keys(
        &self,
        salt: &[u8],
        iterations: u32,
    ) -> Result<([u8; KEY_LEN], [u8; KEY_LEN]), Error> {
        let same = |k: &ScramKeys| k.salt == salt && k.iterations == iterations;
        if let Some(k) = self.lock_keys().iter().find(|k| same(k)) {
            return Ok((k.client_key, k.server_key));
        }
        let Some(password) = &self.plain else {
            return Err(if self.lock_keys().is_empty() {
                self.cannot_answer(Method::ScramSha256)
            } else {
                Error::VerifierMismatch {
                    user: self.user.clone(),
                }
            });
        };
        // Concurrent first logins may each derive the keys; the result is the same and it happens once per salt.
        let salted = scram::salted_password(password.as_bytes(), salt, iterations);
        let (client_key, server_key) = scram::client_and_server_keys(&salted);
        let mut keys = self.lock_keys();
        keys.retain(|k| !same(k));
        keys.insert(
            0,
            ScramKeys {
                salt: salt.to_vec(),
                iterations,
                client_key,
                server_key,
            },
        );
        keys.truncate(CACHED_SALTS);
        Ok((client_key, server_key))
    }
}

impl fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("user", &self.user)
            .field("plain", &self.plain.is_some())
            .field("md5", &self.md5.is_some())
            .field("verifier", &self.verifier.is_some())
            .finish_non_exhaustive()
    }
}

/// One Authentication* message from the server, decoded by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerRequest<'a> {
    /// AuthenticationOk (code 0).
    Ok,
    /// AuthenticationCleartextPassword (code 3).
    Cleartext,
    /// AuthenticationMD5Password (code 5).
    Md5 {
        /// The 4 salt bytes.
        salt: [u8; 4],
    },
    /// AuthenticationSASL (code 10).
    Sasl {
        /// The mechanism names listed, without NULs and without the empty terminator.
        mechanisms: &'a [&'a [u8]],
    },
    /// AuthenticationSASLContinue (code 11): its data.
    SaslContinue(&'a [u8]),
    /// AuthenticationSASLFinal (code 12): its data.
    SaslFinal(&'a [u8]),
    /// Any other code: Kerberos V5 (2), SCM credentials (6), GSSAPI (7, 8), SSPI (9) or unknown.
    Other(i32),
}

/// What to send the server: the payload of one `'p'` message.
#[derive(Clone, PartialEq, Eq)]
pub enum Response {
    /// A PasswordMessage body without its NUL terminator (the password, or `md5...`).
    Password(Vec<u8>),
    /// A SASLInitialResponse.
    SaslInitial {
        /// The chosen mechanism, `SCRAM-SHA-256`.
        mechanism: &'static str,
        /// The client-first-message.
        data: Vec<u8>,
    },
    /// A SASLResponse carrying client-final-message.
    SaslResponse(Vec<u8>),
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // A cleartext password or a replayable-for-this-salt MD5 answer: never printed.
            Response::Password(_) => f.write_str("Password(<redacted>)"),
            Response::SaslInitial { mechanism, data } => f
                .debug_struct("SaslInitial")
                .field("mechanism", mechanism)
                .field("data", &String::from_utf8_lossy(data))
                .finish(),
            Response::SaslResponse(data) => f
                .debug_tuple("SaslResponse")
                .field(&String::from_utf8_lossy(data))
                .finish(),
        }
    }
}

/// One login to a server. Single use: after AuthenticationOk or an error, every further request is
/// [`Error::UnexpectedMessage`].
pub struct ClientAuth<'a> {
    credentials: &'a ClientCredentials,
    state: State,
    /// Injected by tests; otherwise drawn from the thread RNG when SCRAM starts.
    nonce: Option<String>,
    /// The SASL username sent in client-first. Empty, as libpq sends it: PostgreSQL ignores it in favour of the
    /// startup packet's user. Only RFC 7677's test vector needs another one.
    sasl_user: &'static str,
}

enum State {
    Start,
    /// A password or MD5 answer went out; only AuthenticationOk may follow.
    Sent,
    ScramFirst {
        client_nonce: Vec<u8>,
        client_first_bare: Vec<u8>,
    },
    ScramFinal {
        server_signature: [u8; KEY_LEN],
    },
    /// The server proved itself; AuthenticationOk may follow.
    ScramVerified,
    /// Done, failed, or mid-step (the placeholder `mem::replace` leaves behind).
    Finished,
}

impl State {
    fn expects(&self) -> &'static str {
        match self {
            State::Start => "an authentication request",
            State::Sent | State::ScramVerified => "AuthenticationOk",
            State::ScramFirst { .. } => "AuthenticationSASLContinue",
            State::ScramFinal { .. } => "AuthenticationSASLFinal",
            State::Finished => "nothing (authentication is over)",
        }
    }
}

impl<'a> ClientAuth<'a> {
    /// Starts a login with `credentials`. SCRAM nonces come from [`rand::rng`], a CSPRNG.
    pub fn new(credentials: &'a ClientCredentials) -> ClientAuth<'a> {
        ClientAuth {
            credentials,
            state: State::Start,
            nonce: None,
            sasl_user: "",
        }
    }

    /// `new` with the client nonce (and SASL username) supplied, for tests that replay known exchanges.
    #[cfg(test)]
    pub(crate) fn with_nonce(
        credentials: &'a ClientCredentials,
        nonce: &str,
        sasl_user: &'static str,
    ) -> ClientAuth<'a> {
        ClientAuth {
            nonce: Some(nonce.to_owned()),
            sasl_user,
            ..ClientAuth::new(credentials)
        }
    }

    /// Answers one request from the server. `Ok(None)` means there is nothing to send: after AuthenticationOk
    /// the login is complete; after AuthenticationSASLFinal the server has proved itself and AuthenticationOk
    /// should follow.
    ///
    /// # Errors
    /// [`Error::CannotAnswer`] / [`Error::UnsupportedAuthMethod`] when the server wants something these
    /// credentials or pggat cannot do, [`Error::ServerSignatureMismatch`] when the server fails to prove it
    /// knows the verifier, [`Error::IncompleteExchange`] when it skips that proof, and a specific error for
    /// malformed SCRAM messages. After an error the login is over.
    pub fn on_request(&mut self, req: ServerRequest<'_>) -> Result<Option<Response>, Error> {
        match (mem::replace(&mut self.state, State::Finished), req) {
            (State::Start | State::Sent | State::ScramVerified, ServerRequest::Ok) => Ok(None),
            (State::ScramFirst { .. } | State::ScramFinal { .. }, ServerRequest::Ok) => {
                Err(Error::IncompleteExchange)
            }
            (_, ServerRequest::Other(code)) => Err(Error::UnsupportedAuthMethod {
                name: method_name(code),
                code,
            }),
            (State::Start, ServerRequest::Cleartext) => {
                let password = self
                    .credentials
                    .plain
                    .as_ref()
                    .ok_or_else(|| self.credentials.cannot_answer(Method::Cleartext))?;
                self.state = State::Sent;
                Ok(Some(Response::Password(password.as_bytes().to_vec())))
            }
            (State::Start, ServerRequest::Md5 { salt }) => {
                let md5 = self
                    .credentials
                    .md5
                    .as_ref()
                    .ok_or_else(|| self.credentials.cannot_answer(Method::Md5))?;
                self.state = State::Sent;
                Ok(Some(Response::Password(md5.salted_response(salt).to_vec())))
            }
            (State::Start, ServerRequest::Sasl { mechanisms }) => {
                if !mechanisms.contains(&MECHANISM.as_bytes()) {
                    return Err(Error::NoCommonMechanism);
                }
                if !self.credentials.supports(Method::ScramSha256) {
                    return Err(self.credentials.cannot_answer(Method::ScramSha256));
                }
                let client_nonce = match self.nonce.take() {
                    Some(nonce) => nonce,
                    None => scram::random_nonce(&mut rand::rng()),
                };
                let client_first_bare =
                    format!("n={},r={client_nonce}", self.sasl_user).into_bytes();
                let mut data = b"n,,".to_vec();
                data.extend_from_slice(&client_first_bare);
                self.state = State::ScramFirst {
                    client_nonce: client_nonce.into_bytes(),
                    client_first_bare,
                };
                Ok(Some(Response::SaslInitial {
                    mechanism: MECHANISM,
                    data,
                }))
            }
            (
                State::ScramFirst {
                    client_nonce,
                    client_first_bare,
                },
                ServerRequest::SaslContinue(server_first),
            ) => {
                let (server_signature, client_final) =
                    self.server_first(&client_nonce, &client_first_bare, server_first)?;
                self.state = State::ScramFinal { server_signature };
                Ok(Some(Response::SaslResponse(client_final)))
            }
            (State::ScramFinal { server_signature }, ServerRequest::SaslFinal(server_final)) => {
                verify_server_final(&server_signature, server_final)?;
                self.state = State::ScramVerified;
                Ok(None)
            }
            (state, _) => Err(Error::UnexpectedMessage {
                expected: state.expects(),
            }),
        }
    }

    /// Parses server-first-message (`r=...,s=...,i=...`) and builds client-final-message; returns the server
    /// signature to expect in server-final.
    fn server_first(
        &self,
        client_nonce: &[u8],
        client_first_bare: &[u8],
        server_first: &[u8],
    ) -> Result<([u8; KEY_LEN], Vec<u8>), Error> {
        let mut attrs = Attributes::new(server_first);
        if attrs.peek_key() == Some(b'm') {
            return Err(Error::UnsupportedExtension);
        }
        let nonce = attrs.expect(b'r')?;
        if !scram::is_valid_nonce(nonce) {
            return Err(Error::BadNonce);
        }
        // The server must extend our nonce with a part of its own, or replay protection is gone.
        if nonce.len() <= client_nonce.len() || !nonce.starts_with(client_nonce) {
            return Err(Error::NonceMismatch);
        }
        let salt = scram::decode64(attrs.expect(b's')?, b's')?;
        let iterations =
            scram::parse_iterations(attrs.expect(b'i')?).ok_or(Error::BadIterations)?;
        if iterations > scram::MAX_ITERATIONS {
            return Err(Error::TooManyIterations {
                count: iterations,
                max: scram::MAX_ITERATIONS,
            });
        }
        attrs.skip_extensions()?;

        let (client_key, server_key) = self.credentials.scram_keys(&salt, iterations)?;
        // c=biws is base64("n,,"): no channel binding, matching the gs2 header sent in client-first.
        let mut client_final = b"c=biws,r=".to_vec();
        client_final.extend_from_slice(nonce);
        let auth_message: [&[u8]; 5] = [client_first_bare, b",", server_first, b",", &client_final];
        let stored_key = scram::sha256(&client_key);
        let proof = scram::xor(&client_key, &scram::hmac(&stored_key, &auth_message));
        let server_signature = scram::hmac(&server_key, &auth_message);
        client_final.extend_from_slice(b",p=");
        client_final.extend_from_slice(scram::encode64(&proof).as_bytes());
        Ok((server_signature, client_final))
    }
}

impl fmt::Debug for ClientAuth<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientAuth")
            .field("user", &self.credentials.user)
            .field("expects", &self.state.expects())
            .finish()
    }
}

/// Checks server-final-message (`v=...` or `e=...`) against the expected signature, in constant time.
fn verify_server_final(expected: &[u8; KEY_LEN], server_final: &[u8]) -> Result<(), Error> {
    let mut attrs = Attributes::new(server_final);
    if attrs.peek_key() == Some(b'e') {
        return Err(Error::ServerSaslError {
            error: scram::excerpt(attrs.expect(b'e')?),
        });
    }
    let signature = scram::decode_key(attrs.expect(b'v')?, b'v', Error::ServerSignatureMismatch)?;
    attrs.skip_extensions()?;
    if bool::from(signature.ct_eq(expected)) {
        Ok(())
    } else {
        Err(Error::ServerSignatureMismatch)
    }
}

/// PostgreSQL's names for the AuthenticationRequest codes pggat does not implement.
fn method_name(code: i32) -> &'static str {
    match code {
        2 => "Kerberos V5",
        6 => "SCM credentials",
        7 | 8 => "GSSAPI",
        9 => "SSPI",
        _ => "an unknown method",
    }
}

#[cfg(test)]
mod tests;
