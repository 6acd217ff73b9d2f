//! pggat as the server: checking a client that connects to it.
//!
//! [`ServerAuth`] is a sans-I/O state machine. [`ServerAuth::start`] returns the first [`Request`] to send (an
//! AuthenticationCleartextPassword, AuthenticationMD5Password or AuthenticationSASL); the caller decodes each
//! client reply into a [`ClientMessage`] and feeds it to [`ServerAuth::step`] until it returns
//! [`Step::Done`], then sends the [`Outcome`]'s SASLFinal (if any) and AuthenticationOk.

use std::mem;

use rand::CryptoRng;
use subtle::ConstantTimeEq as _;

use crate::scram::{self, Attributes, KEY_LEN, MECHANISM};
use crate::{ClientKey, Error, Method, PreparedSecret};

/// The SASL mechanisms pggat offers: SCRAM-SHA-256 only. `-PLUS` (channel binding) would need the TLS
/// certificate hash from the listener, and a pooler terminating TLS cannot forward it to the server anyway.
pub const MECHANISMS: &[&str] = &[MECHANISM];

/// Picks how to check a client whose secret is `secret`, following DESIGN.md §2.3.
///
/// - `configured` is `None` (the default): SCRAM-SHA-256 when the secret allows it (plain password or verifier),
///   otherwise MD5 (an MD5 hash cannot do SCRAM).
/// - `Some(Cleartext)`: cleartext, which every secret can check. Never chosen unless asked for.
/// - `Some(Md5)`: MD5, except that a bare SCRAM verifier is checked with SCRAM instead, as PostgreSQL does for
///   `md5` in pg_hba and PgBouncer does for `auth_type md5`: it is a stronger method the client also knows.
/// - `Some(ScramSha256)`: SCRAM, or [`Error::CannotCheck`] for an MD5 hash.
///
/// # Errors
/// [`Error::CannotCheck`] when the secret cannot serve what was configured.
pub fn choose_method(secret: &PreparedSecret, configured: Option<Method>) -> Result<Method, Error> {
    let method = match configured {
        None | Some(Method::ScramSha256) if secret.supports(Method::ScramSha256) => {
            Method::ScramSha256
        }
        None | Some(Method::Md5) if secret.supports(Method::Md5) => Method::Md5,
        Some(Method::Md5) if secret.supports(Method::ScramSha256) => Method::ScramSha256,
        Some(Method::Cleartext) => Method::Cleartext,
        Some(method) => method,
        None => Method::ScramSha256,
    };
    if secret.supports(method) {
        Ok(method)
    } else {
        Err(cannot_check(secret, method))
    }
}

fn cannot_check(secret: &PreparedSecret, method: Method) -> Error {
    Error::CannotCheck {
        method,
        user: secret.user().to_owned(),
        have: secret.describe(),
    }
}

/// What pggat sends the client next: the payload of one Authentication* message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// AuthenticationCleartextPassword (code 3). The client answers with a PasswordMessage:
    /// feed it as [`ClientMessage::Password`].
    Cleartext,
    /// AuthenticationMD5Password (code 5) with this salt. The client answers with a PasswordMessage:
    /// feed it as [`ClientMessage::Password`].
    Md5 {
        /// Random per login, so a recorded answer cannot be replayed.
        salt: [u8; 4],
    },
    /// AuthenticationSASL (code 10) listing these mechanisms. The client answers with a SASLInitialResponse:
    /// feed it as [`ClientMessage::SaslInitial`].
    Sasl {
        /// Always [`MECHANISMS`].
        mechanisms: &'static [&'static str],
    },
    /// AuthenticationSASLContinue (code 11) with this data (the SCRAM server-first-message). The client answers
    /// with a SASLResponse: feed it as [`ClientMessage::SaslResponse`].
    SaslContinue(Vec<u8>),
}

/// A client's reply, decoded by the caller from a `'p'` message. PasswordMessage, SASLInitialResponse and
/// SASLResponse share that tag, so the caller picks the variant from the [`Request`] it sent last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientMessage<'a> {
    /// The body of a PasswordMessage without its terminating NUL.
    Password(&'a [u8]),
    /// A SASLInitialResponse.
    SaslInitial {
        /// The selected mechanism name, without its NUL.
        mechanism: &'a [u8],
        /// The initial response; empty when the message's length field was -1.
        data: &'a [u8],
    },
    /// The body of a SASLResponse.
    SaslResponse(&'a [u8]),
}

/// What [`ServerAuth::step`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send this request and feed the client's reply to `step` again.
    Continue(Request),
    /// The client is authenticated.
    Done(Outcome),
}

/// A successful check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// For SCRAM, the server-final-message to send as AuthenticationSASLFinal (code 12) before AuthenticationOk;
    /// it proves to the client that pggat knows the verifier.
    pub sasl_final: Option<Vec<u8>>,
    /// For SCRAM, the client's ClientKey, recovered from its proof. Hand it to
    /// [`crate::ClientCredentials::set_client_key`] so pggat can log in to servers holding the same verifier
    /// on the client's behalf (SCRAM pass-through).
    pub client_key: Option<ClientKey>,
}

/// Checks one connecting client against a [`PreparedSecret`]. Single use: after `Done` or an error, every
/// further message is [`Error::UnexpectedMessage`].
pub struct ServerAuth<'a> {
    secret: &'a PreparedSecret,
    state: State,
}

enum State {
    Cleartext,
    Md5 {
        salt: [u8; 4],
    },
    ScramInitial {
        /// Our half of the nonce, drawn at `start` so tests can inject it.
        server_nonce: String,
    },
    ScramFinal {
        /// `n,,` or `y,,`, which client-final's `c=` must repeat.
        gs2_header: [u8; 3],
        client_first_bare: Vec<u8>,
        server_first: Vec<u8>,
        /// client nonce + server nonce, which client-final's `r=` must repeat.
        nonce: Vec<u8>,
    },
    /// Done, failed, or mid-step (the placeholder `mem::replace` leaves behind).
    Finished,
}

impl State {
    fn expects(&self) -> &'static str {
        match self {
            State::Cleartext | State::Md5 { .. } => "PasswordMessage",
            State::ScramInitial { .. } => "SASLInitialResponse",
            State::ScramFinal { .. } => "SASLResponse",
            State::Finished => "nothing (authentication is over)",
        }
    }
}

impl<'a> ServerAuth<'a> {
    /// Begins checking a client with `method` (from [`choose_method`]). `rng` draws the MD5 salt or the SCRAM
    /// server nonce (18 random bytes).
    ///
    /// # Errors
    /// [`Error::CannotCheck`] if `secret` cannot serve `method`.
    pub fn start(
        method: Method,
        secret: &'a PreparedSecret,
        rng: &mut (impl CryptoRng + ?Sized),
    ) -> Result<(ServerAuth<'a>, Request), Error> {
        let mut salt = [0u8; 4];
        if method == Method::Md5 {
            rng.fill_bytes(&mut salt);
        }
        let nonce = if method == Method::ScramSha256 {
            scram::random_nonce(rng)
        } else {
            String::new()
        };
        Self::start_with(method, secret, salt, nonce)
    }

    /// `start` with the randomness supplied, for tests that replay known exchanges.
    pub(crate) fn start_with(
        method: Method,
        secret: &'a PreparedSecret,
        salt: [u8; 4],
        server_nonce: String,
    ) -> Result<(ServerAuth<'a>, Request), Error> {
        if !secret.supports(method) {
            return Err(cannot_check(secret, method));
        }
        let (state, request) = match method {
            Method::Cleartext => (State::Cleartext, Request::Cleartext),
            Method::Md5 => (State::Md5 { salt }, Request::Md5 { salt }),
            Method::ScramSha256 => (
                State::ScramInitial { server_nonce },
                Request::Sasl {
                    mechanisms: MECHANISMS,
                },
            ),
        };
        Ok((ServerAuth { secret, state }, request))
    }

    /// Feeds the client's reply to the last request.
    ///
    /// # Errors
    /// [`Error::WrongPassword`] for any wrong password, hash or proof; a specific error for a malformed or
    /// out-of-order message. After an error the exchange is over.
    pub fn step(&mut self, msg: ClientMessage<'_>) -> Result<Step, Error> {
        match (mem::replace(&mut self.state, State::Finished), msg) {
            (State::Cleartext, ClientMessage::Password(password)) => {
                if self.secret.check_cleartext(password) {
                    Ok(Step::Done(Outcome::default()))
                } else {
                    Err(Error::WrongPassword)
                }
            }
            (State::Md5 { salt }, ClientMessage::Password(answer)) => {
                let md5 = self
                    .secret
                    .md5()
                    .ok_or_else(|| cannot_check(self.secret, Method::Md5))?;
                if bool::from(md5.salted_response(salt)[..].ct_eq(answer)) {
                    Ok(Step::Done(Outcome::default()))
                } else {
                    Err(Error::WrongPassword)
                }
            }
            (
                State::ScramInitial { server_nonce },
                ClientMessage::SaslInitial { mechanism, data },
            ) => {
                let (state, server_first) = self.client_first(&server_nonce, mechanism, data)?;
                self.state = state;
                Ok(Step::Continue(Request::SaslContinue(server_first)))
            }
            (
                State::ScramFinal {
                    gs2_header,
                    client_first_bare,
                    server_first,
                    nonce,
                },
                ClientMessage::SaslResponse(data),
            ) => self
                .client_final(&gs2_header, &client_first_bare, &server_first, &nonce, data)
                .map(Step::Done),
            (state, _) => Err(Error::UnexpectedMessage {
                expected: state.expects(),
            }),
        }
    }

    /// Parses client-first-message (`gs2-header client-first-message-bare`) and builds server-first-message.
    fn client_first(
        &self,
        server_nonce: &str,
        mechanism: &[u8],
        data: &[u8],
    ) -> Result<(State, Vec<u8>), Error> {
        if mechanism != MECHANISM.as_bytes() {
            return Err(Error::UnsupportedMechanism {
                mechanism: scram::excerpt(mechanism),
            });
        }
        let verifier = self
            .secret
            .scram()
            .ok_or_else(|| cannot_check(self.secret, Method::ScramSha256))?;
        let (gs2_header, bare) = split_gs2_header(data)?;
        let mut attrs = Attributes::new(bare);
        if attrs.peek_key() == Some(b'm') {
            return Err(Error::UnsupportedExtension);
        }
        // The SASL username is ignored, as PostgreSQL does: the role is the startup packet's `user`, and libpq
        // sends `n=` empty.
        attrs.expect(b'n')?;
        let client_nonce = attrs.expect(b'r')?;
        if !scram::is_valid_nonce(client_nonce) {
            return Err(Error::BadNonce);
        }
        attrs.skip_extensions()?;

        let mut nonce = client_nonce.to_vec();
        nonce.extend_from_slice(server_nonce.as_bytes());
        let mut server_first = b"r=".to_vec();
        server_first.extend_from_slice(&nonce);
        server_first.extend_from_slice(
            format!(
                ",s={},i={}",
                scram::encode64(&verifier.salt),
                verifier.iterations
            )
            .as_bytes(),
        );
        let state = State::ScramFinal {
            gs2_header,
            client_first_bare: bare.to_vec(),
            server_first: server_first.clone(),
            nonce,
        };
        Ok((state, server_first))
    }

    /// Checks client-final-message (`c=...,r=...[,ext...],p=...`) and builds server-final-message.
    fn client_final(
        &self,
        gs2_header: &[u8; 3],
        client_first_bare: &[u8],
        server_first: &[u8],
        nonce: &[u8],
        data: &[u8],
    ) -> Result<Outcome, Error> {
        let verifier = self
            .secret
            .scram()
            .ok_or_else(|| cannot_check(self.secret, Method::ScramSha256))?;
        let mut attrs = Attributes::new(data);
        if scram::decode64(attrs.expect(b'c')?, b'c')? != gs2_header {
            return Err(Error::ChannelBindingMismatch);
        }
        if attrs.expect(b'r')? != nonce {
            return Err(Error::NonceMismatch);
        }
        let (proof_at, proof) = loop {
            let at = attrs.offset();
            match attrs.next_any()? {
                None => return Err(Error::MissingAttribute { expected: 'p' }),
                Some((b'p', proof)) => break (at, proof),
                Some(_extension) => {}
            }
        };
        attrs.finish()?;
        let proof: [u8; KEY_LEN] = scram::decode_key(proof, b'p', Error::BadProof)?;
        // client-final-message-without-proof: everything before the comma that precedes `p=`.
        let without_proof = data
            .get(..proof_at.saturating_sub(1))
            .ok_or(Error::MalformedAttribute)?;

        let auth_message: [&[u8]; 5] = [client_first_bare, b",", server_first, b",", without_proof];
        let client_signature = scram::hmac(&verifier.stored_key, &auth_message);
        let client_key = scram::xor(&proof, &client_signature);
        if !bool::from(scram::sha256(&client_key).ct_eq(&verifier.stored_key)) {
            return Err(Error::WrongPassword);
        }
        let server_signature = scram::hmac(&verifier.server_key, &auth_message);
        let sasl_final = format!("v={}", scram::encode64(&server_signature)).into_bytes();
        Ok(Outcome {
            sasl_final: Some(sasl_final),
            client_key: Some(ClientKey(client_key)),
        })
    }
}

impl std::fmt::Debug for ServerAuth<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerAuth")
            .field("user", &self.secret.user())
            .field("expects", &self.state.expects())
            .finish()
    }
}

/// Splits `gs2-header` off a client-first-message. Only `n,,` and `y,,` are accepted: `p=` asks for channel
/// binding we never offered, `a=` an authorization identity PostgreSQL does not support either.
fn split_gs2_header(data: &[u8]) -> Result<([u8; 3], &[u8]), Error> {
    match data {
        [b'p', b'=', ..] => Err(Error::ChannelBindingUnsupported),
        [flag @ (b'n' | b'y'), b',', b',', bare @ ..] => Ok(([*flag, b',', b','], bare)),
        [b'n' | b'y', b',', b'a', b'=', ..] => Err(Error::AuthzidUnsupported),
        _ => Err(Error::BadGs2Header),
    }
}

#[cfg(test)]
pub(crate) mod tests;
