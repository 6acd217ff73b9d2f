//! SCRAM-SHA-256 primitives shared by the client and server machines: the key schedule of RFC 5802 §3 and a
//! bounds-checked reader for the `letter=value,...` attribute syntax.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac as _};
use rand::CryptoRng;
use sha2::{Digest as _, Sha256};

use crate::Error;

/// The only SASL mechanism pggat speaks, on either side.
pub(crate) const MECHANISM: &str = "SCRAM-SHA-256";

/// Length of SHA-256 output, hence of every SCRAM key, proof and signature.
pub(crate) const KEY_LEN: usize = 32;

/// Random bytes in a nonce, before base64. PostgreSQL and libpq both use 18 (24 printable characters).
pub(crate) const NONCE_RAW_LEN: usize = 18;

/// Iterations for verifiers pggat derives itself; PostgreSQL's default `scram_iterations`.
pub(crate) const DEFAULT_ITERATIONS: u32 = 4096;

/// Bytes of salt for verifiers pggat derives itself; PostgreSQL's `SCRAM_DEFAULT_SALT_LEN`.
pub(crate) const SALT_LEN: usize = 16;

/// HMAC-SHA-256 over the concatenation of `parts`, so callers need not build the AuthMessage twice.
pub(crate) fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; KEY_LEN] {
    // HMAC takes keys of any length (long ones are hashed), so this cannot fail.
    let mut mac = <Hmac<Sha256> as hmac::digest::KeyInit>::new_from_slice(key)
        .expect("HMAC accepts keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

pub(crate) fn sha256(data: &[u8]) -> [u8; KEY_LEN] {
    Sha256::digest(data).into()
}

/// SaltedPassword = Hi(password, salt, i), the expensive step that verifiers and caches exist to avoid.
///
/// The password is used as raw bytes. PostgreSQL first applies SASLprep, which is the identity for ASCII
/// passwords and for most Unicode ones already in NFKC form; passwords that SASLprep would change produce a
/// different key here (see the crate docs).
pub(crate) fn salted_password(password: &[u8], salt: &[u8], iterations: u32) -> [u8; KEY_LEN] {
    let mut out = [0u8; KEY_LEN];
    pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
    out
}

/// The two keys a client needs to prove itself and check the server: (ClientKey, ServerKey).
pub(crate) fn client_and_server_keys(salted: &[u8; KEY_LEN]) -> ([u8; KEY_LEN], [u8; KEY_LEN]) {
    (
        hmac(salted, &[b"Client Key"]),
        hmac(salted, &[b"Server Key"]),
    )
}

pub(crate) fn xor(a: &[u8; KEY_LEN], b: &[u8; KEY_LEN]) -> [u8; KEY_LEN] {
    std::array::from_fn(|i| a[i] ^ b[i])
}

/// A fresh printable nonce part: base64 of [`NONCE_RAW_LEN`] random bytes, as PostgreSQL and libpq make them.
pub(crate) fn random_nonce(rng: &mut (impl CryptoRng + ?Sized)) -> String {
    let mut raw = [0u8; NONCE_RAW_LEN];
    rng.fill_bytes(&mut raw);
    STANDARD.encode(raw)
}

/// RFC 5802: `printable = %x21-2B / %x2D-7E` (printable ASCII except `,`). An empty nonce is refused too.
pub(crate) fn is_valid_nonce(nonce: &[u8]) -> bool {
    !nonce.is_empty()
        && nonce
            .iter()
            .all(|&b| (0x21..=0x7e).contains(&b) && b != b',')
}

pub(crate) fn encode64(data: &[u8]) -> String {
    STANDARD.encode(data)
}

pub(crate) fn decode64(data: &[u8], attribute: u8) -> Result<Vec<u8>, Error> {
    STANDARD.decode(data).map_err(|_| Error::BadBase64 {
        attribute: char::from(attribute),
    })
}

/// Decodes a base64 attribute that must hold exactly one key (32 bytes).
pub(crate) fn decode_key(
    data: &[u8],
    attribute: u8,
    wrong_len: Error,
) -> Result<[u8; KEY_LEN], Error> {
    decode64(data, attribute)?.try_into().map_err(|_| wrong_len)
}

/// Most PBKDF2 iterations pggat runs for one login: the key derivation is
/// synchronous CPU work, and a server (or a verifier) naming billions would
/// hold a worker thread for an hour. 2^20 is over OWASP's advice for
/// PBKDF2-SHA-256 (600,000) and 256 times PostgreSQL's default (4096).
pub const MAX_ITERATIONS: u32 = 1 << 20;

/// A positive decimal iteration count. Digits only: no sign, no spaces, nothing `str::parse` would forgive.
pub(crate) fn parse_iterations(data: &[u8]) -> Option<u32> {
    if data.is_empty() || !data.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(data)
        .ok()?
        .parse()
        .ok()
        .filter(|&i| i > 0)
}

/// Lossy, length-capped text of a peer's bytes for an error message: enough to diagnose, never unbounded.
pub(crate) fn excerpt(data: &[u8]) -> String {
    const MAX: usize = 64;
    let cut = &data[..data.len().min(MAX)];
    String::from_utf8_lossy(cut).into_owned()
}

/// A cursor over `attr=value,attr=value` that never indexes out of bounds.
///
/// Values may contain `=` (base64 padding, nonces) but never `,`, so splitting on `,` is exact.
pub(crate) struct Attributes<'a> {
    msg: &'a [u8],
    /// Start of the next attribute; always `<= msg.len()`.
    pos: usize,
    /// The last attribute had no trailing comma: nothing more to read.
    done: bool,
}

impl<'a> Attributes<'a> {
    pub(crate) fn new(msg: &'a [u8]) -> Self {
        Attributes {
            msg,
            pos: 0,
            done: false,
        }
    }

    /// Offset of the next attribute in the message, to cut "everything before the proof".
    pub(crate) fn offset(&self) -> usize {
        self.pos
    }

    /// The key letter of the next attribute, without consuming it.
    pub(crate) fn peek_key(&self) -> Option<u8> {
        if self.done {
            return None;
        }
        self.msg.get(self.pos).copied()
    }

    fn next_raw(&mut self) -> Option<&'a [u8]> {
        if self.done {
            return None;
        }
        let rest = self.msg.get(self.pos..).unwrap_or_default();
        match memchr_comma(rest) {
            Some(i) => {
                self.pos += i + 1;
                rest.get(..i)
            }
            None => {
                self.pos = self.msg.len();
                self.done = true;
                Some(rest)
            }
        }
    }

    /// The next attribute, whatever its letter; `None` at the end of the message.
    pub(crate) fn next_any(&mut self) -> Result<Option<(u8, &'a [u8])>, Error> {
        match self.next_raw() {
            None => Ok(None),
            Some(raw) => split(raw).map(Some).ok_or(Error::MalformedAttribute),
        }
    }

    /// The next attribute, which must be `key=...`; returns its value.
    pub(crate) fn expect(&mut self, key: u8) -> Result<&'a [u8], Error> {
        let missing = Error::MissingAttribute {
            expected: char::from(key),
        };
        match self.next_raw().and_then(split) {
            Some((k, value)) if k == key => Ok(value),
            _ => Err(missing),
        }
    }

    /// Skips optional extension attributes up to the end, checking only that they are attributes.
    pub(crate) fn skip_extensions(&mut self) -> Result<(), Error> {
        while self.next_any()?.is_some() {}
        Ok(())
    }

    /// Fails if anything is left.
    pub(crate) fn finish(&self) -> Result<(), Error> {
        if self.done {
            Ok(())
        } else {
            Err(Error::TrailingData)
        }
    }
}

fn memchr_comma(data: &[u8]) -> Option<usize> {
    data.iter().position(|&b| b == b',')
}

/// `letter=value` -> (letter, value).
fn split(raw: &[u8]) -> Option<(u8, &[u8])> {
    match raw {
        [key, b'=', value @ ..] if key.is_ascii_alphabetic() => Some((*key, value)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_walk_and_bounds() {
        let mut a = Attributes::new(b"r=abc,s=QQ==,i=4096");
        assert_eq!(a.expect(b'r').unwrap(), b"abc");
        assert_eq!(a.peek_key(), Some(b's'));
        assert_eq!(a.next_any().unwrap(), Some((b's', &b"QQ=="[..])));
        assert_eq!(a.expect(b'i').unwrap(), b"4096");
        assert!(a.finish().is_ok());
        assert_eq!(a.next_any().unwrap(), None);
        assert_eq!(
            a.expect(b'x'),
            Err(Error::MissingAttribute { expected: 'x' })
        );

        let mut a = Attributes::new(b"");
        assert_eq!(
            a.expect(b'r'),
            Err(Error::MissingAttribute { expected: 'r' })
        );
        let mut a = Attributes::new(b"r=a,");
        a.expect(b'r').unwrap();
        assert_eq!(a.finish(), Err(Error::TrailingData));
        assert_eq!(a.next_any(), Err(Error::MalformedAttribute));
        let mut a = Attributes::new(b"r");
        assert_eq!(
            a.expect(b'r'),
            Err(Error::MissingAttribute { expected: 'r' })
        );
        let mut a = Attributes::new(b"1=x");
        assert_eq!(a.next_any(), Err(Error::MalformedAttribute));
    }

    #[test]
    fn iterations_are_strict() {
        assert_eq!(parse_iterations(b"4096"), Some(4096));
        for bad in [&b""[..], b"0", b"+1", b" 1", b"-1", b"4294967296", b"1x"] {
            assert_eq!(parse_iterations(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn nonce_charset() {
        assert!(is_valid_nonce(b"%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"));
        assert!(!is_valid_nonce(b""));
        assert!(!is_valid_nonce(b"a,b"));
        assert!(!is_valid_nonce(b"a b"));
        assert!(!is_valid_nonce(b"a\x7f"));
    }
}
