//! The typed configuration: what a Gatfile means, with every default filled in.
//!
//! Consumers never re-derive a default: a pool that did not say `max_connections` has `20` here, a
//! session pool that did not say `reset_query` has `DISCARD ALL`. The same structure is the JSON form
//! ([`Config::to_json`], [`Config::from_json`]); that form is complete: `to_json` writes every field and
//! `from_json` requires every field and refuses unknown ones, so a typo in a hand-written JSON config is an
//! error rather than a silently ignored setting.

mod listen;
mod pool;

use std::path::PathBuf;
use std::time::Duration;

pub use listen::{Listen, ListenAddr, Scheme};
pub use pool::{
    Address, BasicPool, Critic, DEFAULT_TRACKED, HybridPool, ParameterStatusSync, Pool, PoolKind,
    PoolMode, Pooler, SslMode, Stickiness,
};

use crate::duration::{serde_duration, serde_opt_duration};
use crate::error::{Error, Pos, Result, Span};
use crate::matcher::{ConnInfo, Matcher};

/// A whole configuration: global options and server blocks.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The global options block.
    pub global: Global,
    /// The server blocks, in file order.
    pub servers: Vec<Server>,
}

/// Global options (the `{ ... }` block at the top of the Gatfile).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Global {
    /// How often to log a line of pool statistics; `None` (`stat_log_period off`) logs none.
    /// Default 1m, as pggat.
    #[serde(with = "serde_opt_duration")]
    pub stat_log_period: Option<Duration>,
    /// Where to serve Prometheus `/metrics`, `/healthz` and `/readyz` (`host:port`); `None` serves
    /// nothing.
    #[serde(deserialize_with = "required")]
    pub admin: Option<String>,
    /// Runtime worker threads; `None` means one per core.
    #[serde(deserialize_with = "required")]
    pub threads: Option<usize>,
    /// How long a shutdown waits for clients to finish their transactions. Default 30s.
    #[serde(with = "serde_duration")]
    pub shutdown_timeout: Duration,
}

impl Default for Global {
    fn default() -> Global {
        Global {
            stat_log_period: Some(Duration::from_secs(60)),
            admin: None,
            threads: None,
            shutdown_timeout: Duration::from_secs(30),
        }
    }
}

/// One server block: where to listen and the routes that serve what arrives there.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    /// The block's keys: one listener each.
    pub listen: Vec<Listen>,
    /// TLS for clients of these listeners (`ssl`); `None` answers SSLRequest with 'N'.
    #[serde(deserialize_with = "required")]
    pub ssl: Option<ServerSsl>,
    /// Most clients connected at once through each of these listeners (`max_connections N`); past it
    /// a client gets 53300. `None` (default) has no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<u32>,
    /// The routes in file order. Every route whose matcher holds runs, in this order, until a terminal
    /// handler (a pool, `error`, `pgbouncer`) serves the client.
    pub routes: Vec<Route>,
    /// Where the block starts (its first key).
    #[serde(skip)]
    pub span: Span,
}

/// A handler and the connections it applies to.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// `None` applies to every connection (no matcher, or `*`).
    #[serde(deserialize_with = "required")]
    pub matcher: Option<Matcher>,
    /// What to do with a matching connection.
    pub handler: Handler,
    /// Where the handler's line is.
    #[serde(skip)]
    pub span: Span,
}

impl Route {
    /// Whether this route applies to the connection.
    pub fn matches(&self, conn: &ConnInfo<'_>) -> bool {
        self.matcher.as_ref().is_none_or(|m| m.matches(conn))
    }
}

/// Where a server block's TLS certificate comes from (`ssl ...`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerSsl {
    /// `ssl` or `ssl self_signed`: a certificate generated at start-up (encryption without identity).
    SelfSigned,
    /// `ssl x509_key_pair CERT KEY`: PEM files, paths as written (relative to the working directory, as
    /// in pggat).
    X509KeyPair {
        /// The certificate chain (PEM).
        cert_file: PathBuf,
        /// The private key (PEM).
        key_file: PathBuf,
    },
}

/// What a route does. JSON: externally tagged, e.g. `{"password": "..."}`, `"trust"`, `{"pool": {...}}`.
///
/// Non-terminal handlers adjust the connection (credentials, names, parameters, checks) and routing goes
/// on; a terminal handler serves the client and routing stops there.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Handler {
    /// `password SECRET`: the secret matching clients must present (plain text, `md5...` or a
    /// `SCRAM-SHA-256$...` verifier; kept as written, the binary interprets it).
    Password(String),
    /// `trust`: matching clients get in without a password. The only way to skip authentication.
    Trust,
    /// `auth_method scram-sha-256|md5|cleartext` (pggat extension): how matching clients are asked for
    /// their password. Without it: SCRAM-SHA-256, or MD5 when the secret is an md5 hash. `cleartext`
    /// sends the password over the wire as is; use it only with TLS or for clients that can do nothing
    /// else.
    AuthMethod(AuthMethod),
    /// `require_ssl [true|false]`: refuse clients that did (not) negotiate TLS.
    RequireSsl(bool),
    /// `allowed_startup_parameters { NAME... }`: refuse clients sending startup parameters not listed
    /// (`user`, `database` and `options`-derived ones are always allowed by the binary).
    AllowedStartupParameters(Vec<String>),
    /// `user [strip_prefix|strip_suffix] NAME`: rewrite the user name used from here on.
    User(Rewrite),
    /// `database [strip_prefix|strip_suffix] NAME`: rewrite the database name used from here on.
    Database(Rewrite),
    /// `parameter NAME=VALUE`: set a startup parameter as if the client had sent it.
    Parameter {
        /// Parameter name.
        name: String,
        /// Its value.
        value: String,
    },
    /// `error MESSAGE`: refuse matching clients with this message. Terminal.
    Error(String),
    /// `pgbouncer [FILE]`: serve matching clients as PgBouncer configured by this ini file would
    /// (default `pgbouncer.ini`). Terminal.
    Pgbouncer(PathBuf),
    /// `pool ...`: serve matching clients from a pool of server connections. Terminal.
    Pool(Box<Pool>),
}

impl Handler {
    /// Whether this handler ends routing (it serves or refuses the client) rather than adjusting it.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Handler::Pool(_) | Handler::Error(_) | Handler::Pgbouncer(_)
        )
    }
}

/// A client authentication method (`auth_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthMethod {
    /// SCRAM-SHA-256 (RFC 7677).
    ScramSha256,
    /// PostgreSQL's MD5 challenge.
    Md5,
    /// The password in clear text.
    Cleartext,
}

/// A user or database name rewrite.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rewrite {
    /// How `value` is applied.
    pub mode: RewriteMode,
    /// The new name, or the prefix/suffix to strip.
    pub value: String,
}

/// How a [`Rewrite`] applies its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RewriteMode {
    /// Replace the name.
    Set,
    /// Remove the value from the start of the name, when it is there.
    StripPrefix,
    /// Remove the value from the end of the name, when it is there.
    StripSuffix,
}

impl Rewrite {
    /// The name after the rewrite.
    pub fn apply(&self, name: &str) -> String {
        match self.mode {
            RewriteMode::Set => self.value.clone(),
            RewriteMode::StripPrefix => name
                .strip_prefix(self.value.as_str())
                .unwrap_or(name)
                .to_owned(),
            RewriteMode::StripSuffix => name
                .strip_suffix(self.value.as_str())
                .unwrap_or(name)
                .to_owned(),
        }
    }
}

impl Config {
    /// Reads the JSON form. `name` is the file name used in error messages. The result is validated like
    /// a parsed Gatfile.
    pub fn from_json(name: &str, text: &str) -> Result<Config> {
        let config: Config = serde_json::from_str(text).map_err(|e| {
            let message = e.to_string();
            let suffix = format!(" at line {} column {}", e.line(), e.column());
            let message = message.strip_suffix(&suffix).unwrap_or(&message).to_owned();
            let line = u32::try_from(e.line()).unwrap_or(u32::MAX);
            let col = u32::try_from(e.column()).unwrap_or(u32::MAX);
            Error::Json {
                pos: Pos {
                    file: name.into(),
                    line,
                    col,
                },
                message,
            }
        })?;
        crate::validate::validate(&config, name)?;
        Ok(config)
    }

    /// The JSON form, indented when `pretty`.
    pub fn to_json(&self, pretty: bool) -> String {
        let result = if pretty {
            serde_json::to_string_pretty(self)
        } else {
            serde_json::to_string(self)
        };
        // Serialising these types cannot fail: every map key is a string and every custom serialiser is
        // infallible. Should that ever change, say so in the output rather than panic.
        result.unwrap_or_else(|e| format!("{{\"error\": {:?}}}", e.to_string()))
    }
}

/// Makes an `Option` field required in JSON: serde would otherwise take a missing field as `None`, and a
/// missing `reset_query` must not silently mean "no reset".
fn required<'de, D, T>(deserializer: D) -> std::result::Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(deserializer)
}
