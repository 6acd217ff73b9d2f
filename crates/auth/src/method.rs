//! The three password methods.

use std::fmt;

/// A password authentication method, as PostgreSQL names them in `pg_hba.conf`.
///
/// Used on both sides: which method pggat asks a client for ([`crate::ServerAuth::start`]) and, in errors,
/// which method a server asked pggat for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// The password in clear (`password` in pg_hba). Only safe over TLS; never chosen by default.
    Cleartext,
    /// `md5`: the client proves knowledge of md5(password || user) with a random salt. Replayable by anyone who
    /// stole the stored hash, hence SCRAM is preferred whenever the secret allows it.
    Md5,
    /// `scram-sha-256` (RFC 5802 / 7677) without channel binding.
    ScramSha256,
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Method::Cleartext => "cleartext password",
            Method::Md5 => "MD5",
            Method::ScramSha256 => "SCRAM-SHA-256",
        })
    }
}
