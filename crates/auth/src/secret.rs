//! How a password is configured ([`Secret`] and its hashed forms) and what pggat derives from it once, at config
//! load, to check clients without redoing the expensive work per login ([`PreparedSecret`]).

use std::fmt;

use md5::{Digest as _, Md5};
use rand::CryptoRng;
use subtle::ConstantTimeEq as _;

use crate::scram::{self, KEY_LEN};
use crate::{Error, Method};

/// A password as configured (Gatfile, userlist.txt, `auth_query` result), in one of the three forms PostgreSQL
/// itself stores in `pg_authid.rolpassword`.
///
/// `Debug` prints the kind only, never the secret.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    /// The password itself. The only form that can answer every method on both sides.
    Plain(String),
    /// `md5` + hex(md5(password || username)).
    Md5(Md5Secret),
    /// A SCRAM-SHA-256 verifier.
    Scram(ScramSecret),
}

impl Secret {
    /// Recognises the form the way PostgreSQL does: `md5` followed by exactly 32 lowercase hex digits is an MD5
    /// hash, `SCRAM-SHA-256$...` is a verifier, anything else is a plain password.
    ///
    /// # Errors
    /// [`Error::BadScramSecret`] when the string starts with `SCRAM-SHA-256$` but is malformed. (PostgreSQL
    /// would take it as a plain password; refusing it surfaces the typo at config load instead.)
    pub fn parse(s: &str) -> Result<Secret, Error> {
        if let Some(md5) = Md5Secret::parse(s) {
            Ok(Secret::Md5(md5))
        } else if s.starts_with(ScramSecret::PREFIX) {
            ScramSecret::parse(s).map(Secret::Scram)
        } else {
            Ok(Secret::Plain(s.to_owned()))
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::Plain(_) => f.write_str("Plain(<redacted>)"),
            Secret::Md5(m) => f.debug_tuple("Md5").field(m).finish(),
            Secret::Scram(s) => f.debug_tuple("Scram").field(s).finish(),
        }
    }
}

/// md5(password || username), the 16 bytes behind PostgreSQL's `md5...` password hash.
///
/// It is password-equivalent for MD5 authentication (whoever holds it can log in), so `Debug` hides it;
/// `Display` writes the `md5<hex>` form deliberately, for writing config files.
#[derive(Clone, Eq)]
pub struct Md5Secret([u8; 16]);

impl Md5Secret {
    /// Hashes a password the way PostgreSQL stores it for `username`. The username is part of the hash, so a
    /// rewritten username needs a different secret.
    pub fn derive(password: impl AsRef<[u8]>, username: &str) -> Md5Secret {
        let mut h = Md5::new();
        h.update(password.as_ref());
        h.update(username.as_bytes());
        Md5Secret(h.finalize().into())
    }

    /// `md5` + 32 lowercase hex digits, exactly as PostgreSQL's `get_password_type` recognises it.
    fn parse(s: &str) -> Option<Md5Secret> {
        let hex = s.strip_prefix("md5")?.as_bytes();
        if hex.len() != 32 {
            return None;
        }
        let mut out = [0u8; 16];
        for (byte, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
            *byte = (lower_hex_digit(pair[0])? << 4) | lower_hex_digit(pair[1])?;
        }
        Some(Md5Secret(out))
    }

    /// What a client must send for `salt`: `md5` + hex(md5(hex(self) || salt)).
    pub(crate) fn salted_response(&self, salt: [u8; 4]) -> [u8; 35] {
        let mut h = Md5::new();
        h.update(hex(&self.0));
        h.update(salt);
        let mut out = [0u8; 35];
        out[..3].copy_from_slice(b"md5");
        out[3..].copy_from_slice(&hex(&h.finalize().into()));
        out
    }
}

impl PartialEq for Md5Secret {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Display for Md5Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("md5")?;
        f.write_str(std::str::from_utf8(&hex(&self.0)).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for Md5Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Md5Secret(<redacted>)")
    }
}

fn lower_hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

fn hex(bytes: &[u8; 16]) -> [u8; 32] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 32];
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 0x0f)];
    }
    out
}

/// A SCRAM-SHA-256 verifier: what a server needs to check a client's proof and to prove itself, without knowing
/// the password.
///
/// Written `SCRAM-SHA-256$<iterations>:<base64 salt>$<base64 StoredKey>:<base64 ServerKey>` (`Display`), the format
/// of `pg_authid.rolpassword`. `Debug` shows the iteration count only: the keys let anyone impersonate the server.
#[derive(Clone, Eq)]
pub struct ScramSecret {
    /// PBKDF2 iteration count.
    pub iterations: u32,
    /// PBKDF2 salt.
    pub salt: Vec<u8>,
    /// SHA-256(ClientKey): checks a client's proof.
    pub stored_key: [u8; KEY_LEN],
    /// HMAC(SaltedPassword, "Server Key"): signs the server's final message.
    pub server_key: [u8; KEY_LEN],
}

impl ScramSecret {
    const PREFIX: &'static str = "SCRAM-SHA-256$";

    /// Computes the verifier of `password` for a given salt and iteration count (RFC 5802 §3). Costs
    /// `iterations` HMACs: call it when the config loads, not per login.
    pub fn derive(password: impl AsRef<[u8]>, salt: &[u8], iterations: u32) -> ScramSecret {
        let salted = scram::salted_password(password.as_ref(), salt, iterations);
        let (client_key, server_key) = scram::client_and_server_keys(&salted);
        ScramSecret {
            iterations,
            salt: salt.to_vec(),
            stored_key: scram::sha256(&client_key),
            server_key,
        }
    }

    /// A verifier with a fresh 16-byte salt and 4096 iterations, PostgreSQL's defaults.
    pub fn generate(
        password: impl AsRef<[u8]>,
        rng: &mut (impl CryptoRng + ?Sized),
    ) -> ScramSecret {
        let mut salt = [0u8; scram::SALT_LEN];
        rng.fill_bytes(&mut salt);
        ScramSecret::derive(password, &salt, scram::DEFAULT_ITERATIONS)
    }

    fn parse(s: &str) -> Result<ScramSecret, Error> {
        let bad = |reason| Error::BadScramSecret { reason };
        let rest = s
            .strip_prefix(Self::PREFIX)
            .ok_or(bad("missing SCRAM-SHA-256$ prefix"))?;
        let (params, keys) = rest
            .split_once('$')
            .ok_or(bad("expected '$' before the keys"))?;
        let (iterations, salt) = params
            .split_once(':')
            .ok_or(bad("expected <iterations>:<salt>"))?;
        let (stored, server) = keys
            .split_once(':')
            .ok_or(bad("expected <StoredKey>:<ServerKey>"))?;
        let iterations = scram::parse_iterations(iterations.as_bytes())
            .ok_or(bad("iteration count is not a positive integer"))?;
        let salt = scram::decode64(salt.as_bytes(), b's').map_err(|_| bad("salt is not base64"))?;
        let key =
            |k: &str, what| scram::decode_key(k.as_bytes(), b'k', bad(what)).map_err(|_| bad(what));
        Ok(ScramSecret {
            iterations,
            salt,
            stored_key: key(stored, "StoredKey is not 32 bytes of base64")?,
            server_key: key(server, "ServerKey is not 32 bytes of base64")?,
        })
    }
}

impl PartialEq for ScramSecret {
    fn eq(&self, other: &Self) -> bool {
        let keys =
            self.stored_key.ct_eq(&other.stored_key) & self.server_key.ct_eq(&other.server_key);
        self.iterations == other.iterations && self.salt == other.salt && bool::from(keys)
    }
}

impl fmt::Display for ScramSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}:{}${}:{}",
            Self::PREFIX,
            self.iterations,
            scram::encode64(&self.salt),
            scram::encode64(&self.stored_key),
            scram::encode64(&self.server_key)
        )
    }
}

impl fmt::Debug for ScramSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramSecret")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

/// A SCRAM ClientKey, HMAC(SaltedPassword, "Client Key"), recovered by [`crate::ServerAuth`] from a client's
/// proof.
///
/// With the verifier it belongs to, it is enough to log in to a PostgreSQL server holding the same verifier,
/// which is how pggat forwards SCRAM logins without knowing passwords (PgBouncer's SCRAM pass-through). It is
/// therefore as sensitive as a password: `Debug` hides it and there is no accessor for its bytes.
#[derive(Clone, Eq)]
pub struct ClientKey(pub(crate) [u8; KEY_LEN]);

impl ClientKey {
    /// Whether this key belongs to `verifier` (SHA-256(ClientKey) == StoredKey), in constant time.
    pub fn matches(&self, verifier: &ScramSecret) -> bool {
        scram::sha256(&self.0).ct_eq(&verifier.stored_key).into()
    }
}

impl PartialEq for ClientKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientKey(<redacted>)")
    }
}

/// A user's secret prepared, once, for checking clients: every derived form a later login may need is computed
/// here so no login pays for PBKDF2 except a cleartext check against a bare SCRAM verifier (which cannot be
/// avoided: the password has to be hashed with the verifier's salt).
///
/// | configured | cleartext | MD5 | SCRAM |
/// |---|---|---|---|
/// | plain | yes | yes (hash derived here) | yes (verifier derived here, random salt) |
/// | MD5 hash | yes (hash the password sent) | yes | no |
/// | SCRAM verifier | yes (PBKDF2 per login) | no | yes |
///
/// `Debug` prints the user and which forms are held, never a secret.
#[derive(Clone)]
pub struct PreparedSecret {
    user: String,
    plain: Option<String>,
    md5: Option<Md5Secret>,
    scram: Option<ScramSecret>,
}

impl PreparedSecret {
    /// Prepares `secret` for `user` (the role name clients log in as: it salts MD5 hashes). For a plain password
    /// this runs PBKDF2 once, with a fresh salt from `rng`, to get a SCRAM verifier.
    pub fn new(
        user: impl Into<String>,
        secret: Secret,
        rng: &mut (impl CryptoRng + ?Sized),
    ) -> PreparedSecret {
        let user = user.into();
        match secret {
            Secret::Plain(password) => PreparedSecret {
                md5: Some(Md5Secret::derive(&password, &user)),
                scram: Some(ScramSecret::generate(&password, rng)),
                plain: Some(password),
                user,
            },
            Secret::Md5(md5) => PreparedSecret {
                user,
                plain: None,
                md5: Some(md5),
                scram: None,
            },
            Secret::Scram(scram) => PreparedSecret {
                user,
                plain: None,
                md5: None,
                scram: Some(scram),
            },
        }
    }

    /// The user this secret belongs to.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Whether a client can be checked with `method`: cleartext always (the password sent can be hashed into
    /// any form), MD5 with a plain password or an MD5 hash, SCRAM with a plain password or a verifier.
    pub fn supports(&self, method: Method) -> bool {
        match method {
            Method::Cleartext => true,
            Method::Md5 => self.md5.is_some(),
            Method::ScramSha256 => self.scram.is_some(),
        }
    }

    /// The SCRAM verifier clients are checked against (derived for a plain password), e.g. to publish it for
    /// pass-through setups.
    pub fn scram(&self) -> Option<&ScramSecret> {
        self.scram.as_ref()
    }

    pub(crate) fn md5(&self) -> Option<&Md5Secret> {
        self.md5.as_ref()
    }

    /// What is configured, in words, for error messages.
    pub(crate) fn describe(&self) -> &'static str {
        match (&self.plain, &self.md5, &self.scram) {
            (Some(_), _, _) => "a plain password",
            (None, Some(_), _) => "an MD5 hash",
            (None, None, _) => "a SCRAM verifier",
        }
    }

    /// Checks a password a client sent in clear, in constant time with respect to its content. An empty
    /// password never matches, as in PostgreSQL.
    pub(crate) fn check_cleartext(&self, password: &[u8]) -> bool {
        if password.is_empty() {
            return false;
        }
        if let Some(plain) = &self.plain {
            plain.as_bytes().ct_eq(password).into()
        } else if let Some(md5) = &self.md5 {
            Md5Secret::derive(password, &self.user) == *md5
        } else if let Some(verifier) = &self.scram {
            if verifier.iterations > scram::MAX_ITERATIONS {
                // Checking would hold a worker for as long as the verifier
                // says: refused, like a wrong password.
                return false;
            }
            let salted = scram::salted_password(password, &verifier.salt, verifier.iterations);
            let (client_key, _) = scram::client_and_server_keys(&salted);
            scram::sha256(&client_key)
                .ct_eq(&verifier.stored_key)
                .into()
        } else {
            false
        }
    }
}

impl fmt::Debug for PreparedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreparedSecret")
            .field("user", &self.user)
            .field("plain", &self.plain.is_some())
            .field("md5", &self.md5.is_some())
            .field("scram", &self.scram.is_some())
            .finish()
    }
}

#[cfg(test)]
pub(crate) mod tests;
