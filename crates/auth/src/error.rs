//! The one error type of the crate.

use crate::Method;

/// Why an authentication exchange (or a configured secret) was rejected.
///
/// Variants are fine-grained so tests can assert the exact failure and logs can say what went wrong. What a
/// *client* is told is the caller's choice: PostgreSQL answers every failed login with the same 28P01 message,
/// and pggat should too, whatever the variant (see [`Error::WrongPassword`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    // ---- configured secrets ----
    /// A configured secret starts with `SCRAM-SHA-256$` but is not a well-formed verifier. It is refused rather
    /// than taken as a plain password: a verifier mangled by copy-paste would otherwise silently become a
    /// password nobody knows.
    #[error("malformed SCRAM-SHA-256 secret: {reason}")]
    BadScramSecret {
        /// Which part of `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` is wrong.
        reason: &'static str,
    },

    // ---- pggat checking a client ----
    /// The client does not know the password. One variant for every failed check (cleartext, MD5 hash, SCRAM
    /// proof) so nothing tells an attacker which part was wrong.
    #[error("password authentication failed")]
    WrongPassword,
    /// The configured secret cannot check a client with the method asked for, e.g. SCRAM with only an MD5 hash
    /// configured (the SCRAM verifier cannot be derived from an MD5 hash).
    #[error("cannot check user \"{user}\" with {method}: only {have} is configured")]
    CannotCheck {
        /// The method that was asked for.
        method: Method,
        /// The user being checked.
        user: String,
        /// What is configured, in words ("an MD5 hash").
        have: &'static str,
    },
    /// The client picked a SASL mechanism pggat did not offer (only `SCRAM-SHA-256` is offered).
    #[error("client selected unsupported SASL mechanism \"{mechanism}\"")]
    UnsupportedMechanism {
        /// The mechanism name as sent, lossily decoded and truncated.
        mechanism: String,
    },
    /// The GS2 header of a client-first-message is not `n,,`, `y,,` or `p=...,`.
    #[error("malformed SCRAM message: bad GS2 header")]
    BadGs2Header,
    /// The client asked for channel binding (`p=...`). pggat never advertises `SCRAM-SHA-256-PLUS`, so a client
    /// asking for it is confused or tampered with.
    #[error("SCRAM channel binding was requested but is not supported")]
    ChannelBindingUnsupported,
    /// The client sent an authorization identity (`a=...`); PostgreSQL does not support one either.
    #[error("SCRAM authorization identity is not supported")]
    AuthzidUnsupported,
    /// A SCRAM message starts with `m=`, a mandatory extension this implementation (like every other) does not
    /// know.
    #[error("SCRAM message requires an unsupported mandatory extension")]
    UnsupportedExtension,
    /// A SCRAM message lacks an attribute where the grammar requires it.
    #[error("malformed SCRAM message: expected attribute '{expected}'")]
    MissingAttribute {
        /// The attribute letter that was expected (`r`, `s`, `i`, `c`, `p`, `v`, `n`).
        expected: char,
    },
    /// A SCRAM message contains something that is not a `letter=value` attribute.
    #[error("malformed SCRAM message: malformed attribute")]
    MalformedAttribute,
    /// A nonce is empty or contains a character RFC 5802 forbids (non-printable, or `,`).
    #[error("malformed SCRAM message: invalid nonce")]
    BadNonce,
    /// The nonce in client-final (server side) or server-first (client side) does not continue the exchange.
    #[error("SCRAM nonce mismatch")]
    NonceMismatch,
    /// The channel-binding attribute `c=` of client-final does not repeat the GS2 header of client-first.
    #[error("SCRAM channel binding check failed")]
    ChannelBindingMismatch,
    /// An attribute that must be base64 is not.
    #[error("malformed SCRAM message: attribute '{attribute}' is not valid base64")]
    BadBase64 {
        /// The attribute letter.
        attribute: char,
    },
    /// The client proof does not decode to 32 bytes.
    #[error("malformed SCRAM message: invalid client proof")]
    BadProof,
    /// The iteration count in server-first is not a positive decimal number that fits in 32 bits.
    #[error("malformed SCRAM message: invalid iteration count")]
    BadIterations,
    /// The server asks for more PBKDF2 iterations than pggat runs (2^20):
    /// deriving the keys would hold a worker thread for as long as it says.
    #[error("the server asks for {count} SCRAM iterations, more than the {max} pggat runs")]
    TooManyIterations {
        /// What the server asked for.
        count: u32,
        /// The ceiling.
        max: u32,
    },
    /// Bytes follow the last attribute a SCRAM message may carry.
    #[error("malformed SCRAM message: trailing data")]
    TrailingData,
    /// A message arrived that the exchange does not expect now: out of order, after the end, or of the wrong
    /// kind (a PasswordMessage during SCRAM).
    #[error("unexpected authentication message: expected {expected}")]
    UnexpectedMessage {
        /// What the state machine was waiting for.
        expected: &'static str,
    },

    // ---- pggat logging in to PostgreSQL ----
    /// The server's SCRAM signature is wrong: it does not know the verifier, so it is not the server the
    /// credentials were made for (or a man in the middle). The login must be abandoned.
    #[error("SCRAM server signature mismatch: the server does not know the password")]
    ServerSignatureMismatch,
    /// The server asked for a method these credentials cannot answer.
    #[error(
        "server requested {requested} authentication but only {have} is configured for user \"{user}\"; \
         configure the plain password"
    )]
    CannotAnswer {
        /// What the server asked for.
        requested: Method,
        /// What is configured, in words ("a SCRAM verifier").
        have: &'static str,
        /// The user logging in.
        user: String,
    },
    /// The server asked for an authentication method pggat does not implement.
    #[error(
        "server requested {name} authentication (code {code}), which pggat does not support; \
         configure password, md5 or scram-sha-256 in pg_hba.conf"
    )]
    UnsupportedAuthMethod {
        /// PostgreSQL's name for it ("GSSAPI", "SSPI", "Kerberos V5", ...).
        name: &'static str,
        /// The AuthenticationRequest code.
        code: i32,
    },
    /// The server offered SASL but not `SCRAM-SHA-256` (channel binding alone, `-PLUS`, is not supported).
    #[error("server offered no supported SASL mechanism (need SCRAM-SHA-256)")]
    NoCommonMechanism,
    /// The server ended SCRAM with an `e=` error attribute.
    #[error("server rejected SCRAM authentication: {error}")]
    ServerSaslError {
        /// The server's error value, lossily decoded and truncated.
        error: String,
    },
    /// The server sent AuthenticationOk before proving itself with a valid SASLFinal. Accepting it would let a
    /// server that never knew the password (an impostor) skip the mutual part of SCRAM.
    #[error("server ended authentication before completing SCRAM")]
    IncompleteExchange,
    /// SCRAM pass-through needs the server to use the very verifier configured in pggat; this server presented
    /// another salt or iteration count.
    #[error(
        "server's SCRAM salt or iteration count for user \"{user}\" differs from the configured verifier; \
         SCRAM pass-through needs the same verifier in pggat and on the server (or configure the plain password)"
    )]
    VerifierMismatch {
        /// The user logging in.
        user: String,
    },
    /// A ClientKey handed to the credentials does not belong to their SCRAM verifier.
    #[error("SCRAM client key does not match the configured verifier")]
    ClientKeyMismatch,
}
