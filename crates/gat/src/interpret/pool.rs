//! The `pool` handler: short form `pool [matcher] ADDRESS DATABASE USERNAME PASSWORD`, or a block.

use super::{
    Line, Once, addr, choice, duration, duration_or_off, flag, nonzero_duration, positive, uint,
    unknown,
};
use std::time::Duration;

use crate::config::{
    BasicPool, Critic, HybridPool, ParameterStatusSync, Pool, PoolKind, PoolMode, Pooler, SslMode,
    Stickiness,
};
use crate::error::{Error, Result, Span};
use crate::syntax::{Block, Directive};

const KNOWN: &[&str] = &[
    "address",
    "client_acquire_timeout",
    "client_idle_timeout",
    "connect_query",
    "database",
    "idle_transaction_timeout",
    "max_connections",
    "min_connections",
    "parameter",
    "password",
    "pool",
    "query_timeout",
    "replica",
    "server_check_delay",
    "server_check_query",
    "server_connect_timeout",
    "server_lifetime",
    "server_login_timeout",
    "ssl",
    "ssl_root_cert",
    "username",
];

const BASIC_KNOWN: &[&str] = &[
    "extended_query_sync",
    "idle_timeout",
    "max_prepared_statements",
    "parameter_status_sync",
    "penalize",
    "pin_session_state",
    "pooler",
    "reconnect",
    "release_after_transaction",
    "reset_query",
    "reset_query_timeout",
    "track",
];

const ADDRESS: &str = "an address: host, host:port, [v6addr]:port or a unix socket path";

/// `line` is positioned after the matcher, if any.
pub(super) fn pool(mut line: Line<'_>) -> Result<Pool> {
    let Some(block) = &line.d.block else {
        let address = addr::address(line.value(ADDRESS)?, "pool address")?;
        let mut pool = Pool::new(address);
        pool.database = Some(line.value("a database name")?.text.clone());
        pool.username = Some(line.value("a user name")?.text.clone());
        pool.password = Some(line.value("a password")?.text.clone());
        line.end()?;
        pool.span = Span::at(line.pos());
        return Ok(pool);
    };
    line.end()?;
    pool_block(line.d, block)
}

fn pool_block(d: &Directive, block: &Block) -> Result<Pool> {
    let mut address = None;
    // Fill a pool with a placeholder address, then require that one was given.
    let mut pool = Pool::new(crate::config::Address::tcp("", 5432));
    let mut once = Once::default();
    for d in &block.directives {
        let mut line = Line::new(d);
        let name = d.name.text.as_str();
        if !KNOWN.contains(&name) {
            return Err(unknown(d, "directive", KNOWN));
        }
        if name != "parameter" && name != "replica" {
            once.check(d)?;
        }
        match name {
            "address" => address = Some(addr::address(line.single(ADDRESS)?, "address")?),
            "username" => pool.username = Some(line.single("a user name")?.text.clone()),
            "password" => {
                pool.password = Some(
                    line.single("a password, md5 hash or SCRAM verifier")?
                        .text
                        .clone(),
                )
            }
            "database" => pool.database = Some(line.single("a database name")?.text.clone()),
            "parameter" => {
                let token = line.single("name=value")?;
                let Some((key, value)) = token.text.split_once('=').filter(|(k, _)| !k.is_empty())
                else {
                    return Err(super::invalid(token, "parameter", "name=value"));
                };
                if pool
                    .parameters
                    .insert(key.to_owned(), value.to_owned())
                    .is_some()
                {
                    return Err(Error::at(
                        &token.pos,
                        format!("duplicate parameter {key:?}"),
                        "each parameter once",
                    ));
                }
            }
            "min_connections" => {
                pool.min_connections = uint(line.single("a non-negative integer")?, name)?
            }
            "max_connections" => {
                pool.max_connections = positive(line.single("a positive integer")?, name)?
            }
            "client_acquire_timeout" => pool.client_acquire_timeout = off_setting(&mut line)?,
            "query_timeout" => pool.query_timeout = off_setting(&mut line)?,
            "idle_transaction_timeout" => pool.idle_transaction_timeout = off_setting(&mut line)?,
            "client_idle_timeout" => pool.client_idle_timeout = off_setting(&mut line)?,
            "server_lifetime" => pool.server_lifetime = off_setting(&mut line)?,
            "server_connect_timeout" => {
                pool.server_connect_timeout = nonzero_duration(line.single("a duration")?, name)?
            }
            "server_login_timeout" => {
                pool.server_login_timeout = nonzero_duration(line.single("a duration")?, name)?
            }
            "server_check_delay" => {
                let token = line.single("a duration, or off")?;
                pool.server_check_delay = if token.is_word("off") {
                    None
                } else {
                    Some(duration(token, name)?)
                };
            }
            "server_check_query" => {
                pool.server_check_query = line.single("a query such as ;")?.text.clone()
            }
            "connect_query" => {
                pool.connect_query = Some(line.single("a query")?.text.clone());
            }
            "pool" => pool.kind = kind(line)?,
            "ssl" => pool.ssl_mode = ssl_mode(line)?,
            "replica" => {
                let token = line.single(ADDRESS)?;
                pool.replicas.push(addr::address(token, "replica address")?);
            }
            "ssl_root_cert" => {
                pool.ssl_root_cert = Some(
                    line.single("a PEM file of CA certificates")?
                        .text
                        .clone()
                        .into(),
                )
            }
            _ => return Err(unknown(d, "directive", KNOWN)),
        }
    }
    let Some(address) = address else {
        return Err(Error::at(
            &d.name.pos,
            "pool without an address",
            "an `address` line in the pool block",
        ));
    };
    if matches!(pool.ssl_mode, SslMode::VerifyCa | SslMode::VerifyFull)
        && pool.ssl_root_cert.is_none()
    {
        return Err(Error::at(
            &d.name.pos,
            "a verifying sslmode without the certificates to verify against",
            "an `ssl_root_cert FILE` line in the pool block",
        ));
    }
    pool.address = address;
    pool.span = Span::at(&d.name.pos);
    Ok(pool)
}

/// `ssl MODE [insecure_skip_verify]`: libpq's sslmode names. pggat's `insecure_skip_verify` provider is
/// accepted where it changes nothing (modes that do not verify) and refused where it would contradict
/// the mode.
fn ssl_mode(mut line: Line<'_>) -> Result<SslMode> {
    let modes = [
        ("disable", SslMode::Disable),
        ("allow", SslMode::Allow),
        ("prefer", SslMode::Prefer),
        ("require", SslMode::Require),
        ("verify-ca", SslMode::VerifyCa),
        ("verify-full", SslMode::VerifyFull),
    ];
    let mode = choice(line.value("an sslmode such as require")?, "ssl", &modes)?;
    if let Some(provider) = line.optional() {
        if !provider.is_word("insecure_skip_verify") {
            return Err(super::invalid(
                provider,
                "ssl",
                "insecure_skip_verify or end of line",
            ));
        }
        if matches!(mode, SslMode::VerifyCa | SslMode::VerifyFull) {
            return Err(Error::at(
                &provider.pos,
                "insecure_skip_verify with a verifying sslmode",
                "require (which does not verify) or no insecure_skip_verify",
            ));
        }
    }
    line.done()?;
    Ok(mode)
}

/// A timeout that `off` (or `0`) switches off.
fn off_setting(line: &mut Line<'_>) -> Result<Option<std::time::Duration>> {
    let name = line.name();
    duration_or_off(line.single("a duration, or off")?, name)
}

/// Directives of a `pool hybrid { ... }` block besides the basic ones.
const HYBRID_KNOWN: &[&str] = &["hybrid_replay", "primary_stickiness"];

/// `pool basic [session|transaction] [{ ... }]` or `pool hybrid [{ ... }]`.
fn kind(mut line: Line<'_>) -> Result<PoolKind> {
    let kind = line.value("a pool kind: basic or hybrid")?;
    match kind.text.as_str() {
        "basic" if !kind.quoted => {}
        "hybrid" if !kind.quoted => {
            line.end()?;
            let mut hybrid = HybridPool::new();
            if let Some(block) = &line.d.block {
                let (basic, own): (Vec<&Directive>, Vec<&Directive>) = block
                    .directives
                    .iter()
                    .partition(|d| !HYBRID_KNOWN.contains(&d.name.text.as_str()));
                directives(basic, &mut hybrid.basic, HYBRID_KNOWN)?;
                let mut once = Once::default();
                for d in own {
                    once.check(d)?;
                    let mut line = Line::new(d);
                    match d.name.text.as_str() {
                        "primary_stickiness" => {
                            let token = line.single("a duration, or lsn")?;
                            hybrid.primary_stickiness = if token.is_word("lsn") {
                                Stickiness::Lsn
                            } else {
                                Stickiness::For(duration(token, "primary_stickiness").map_err(
                                    |_| {
                                        super::invalid(
                                            token,
                                            "primary_stickiness",
                                            format!("{}, or lsn", crate::duration::EXPECTED),
                                        )
                                    },
                                )?)
                            }
                        }
                        _ => hybrid.replay = flag(&mut line)?,
                    }
                }
            }
            return Ok(PoolKind::Hybrid(hybrid));
        }
        _ => return Err(super::invalid(kind, "pool", "one of: basic, hybrid")),
    }
    let mode = match line.optional() {
        Some(token) => choice(
            token,
            "pool basic",
            &[
                ("session", PoolMode::Session),
                ("transaction", PoolMode::Transaction),
                ("statement", PoolMode::Statement),
            ],
        )?,
        None => PoolMode::Transaction,
    };
    line.end()?;
    let mut basic = BasicPool::new(mode);
    if let Some(block) = &line.d.block {
        directives(block.directives.iter().collect(), &mut basic, &[])?;
    }
    Ok(PoolKind::Basic(basic))
}

/// The directives of a `pool basic` block (also allowed in `pool hybrid`,
/// whose own `extra` ones count as known in messages).
fn directives(list: Vec<&Directive>, basic: &mut BasicPool, extra: &[&str]) -> Result<()> {
    let known: Vec<&str> = BASIC_KNOWN.iter().chain(extra).copied().collect();
    let mut once = Once::default();
    let mut tracked = false;
    for d in list {
        let mut line = Line::new(d);
        let name = d.name.text.as_str();
        if !BASIC_KNOWN.contains(&name) {
            return Err(unknown(d, "directive", &known));
        }
        if name != "track" && name != "penalize" {
            once.check(d)?;
        }
        match name {
            "pooler" => {
                basic.pooler = choice(
                    line.single("lifo or rob")?,
                    name,
                    &[("rob", Pooler::Rob), ("lifo", Pooler::Lifo)],
                )?;
            }
            "reset_query" => {
                let token = line.single("a query, or off")?;
                basic.reset_query =
                    (!token.is_word("off") && !token.text.is_empty()).then(|| token.text.clone());
            }
            "reset_query_timeout" => {
                basic.reset_query_timeout = nonzero_duration(line.single("a duration")?, name)?
            }
            "idle_timeout" => basic.idle_timeout = off_setting(&mut line)?,
            "reconnect" => {
                let initial_token = line.value("an initial delay such as 5s")?;
                let initial = duration(initial_token, name)?;
                let max_token = line.optional();
                let max = match max_token {
                    Some(token) => duration(token, name)?,
                    None => initial,
                };
                line.done()?;
                if let Some(token) = max_token.filter(|_| max < initial) {
                    return Err(Error::at(
                        &token.pos,
                        format!(
                            "reconnect maximum {:?} is below the initial delay {:?}",
                            token.text, initial_token.text
                        ),
                        "a maximum at least as long as the initial delay",
                    ));
                }
                basic.reconnect_initial = initial;
                basic.reconnect_max = max;
            }
            "release_after_transaction" => basic.release_after_transaction = flag(&mut line)?,
            "pin_session_state" => basic.pin_session_state = flag(&mut line)?,
            "max_prepared_statements" => {
                basic.max_prepared_statements =
                    positive(line.single("a positive number of statements")?, name)?
            }
            "extended_query_sync" => basic.extended_query_sync = flag(&mut line)?,
            "parameter_status_sync" => {
                basic.parameter_status_sync = choice(
                    line.single("none, initial or dynamic")?,
                    name,
                    &[
                        ("none", ParameterStatusSync::None),
                        ("initial", ParameterStatusSync::Initial),
                        ("dynamic", ParameterStatusSync::Dynamic),
                    ],
                )?;
            }
            "track" => {
                if !tracked {
                    basic.track.clear();
                    tracked = true;
                }
                let token = line.single("a parameter name")?;
                if !basic
                    .track
                    .iter()
                    .any(|t| t.eq_ignore_ascii_case(&token.text))
                {
                    basic.track.push(token.text.clone());
                }
            }
            "penalize" => basic.penalize.push(critic(line)?),
            _ => return Err(unknown(d, "directive", &known)),
        }
    }
    Ok(())
}

const CRITIC_KNOWN: &[&str] = &["max_lag", "threshold", "validity"];

/// `penalize query_latency|latency|replication_latency [{ threshold D; validity D; max_lag D }]`.
fn critic(mut line: Line<'_>) -> Result<Critic> {
    let token = line.value("a critic: query_latency, latency or replication_latency")?;
    let replication = match token.text.as_str() {
        "query_latency" | "latency" if !token.quoted => false,
        "replication_latency" if !token.quoted => true,
        _ => {
            return Err(super::invalid(
                token,
                "penalize",
                "one of: query_latency, latency, replication_latency",
            ));
        }
    };
    line.end()?;
    let (mut threshold, mut validity, mut max_lag) = if replication {
        (Duration::from_secs(3), Duration::from_secs(300), None)
    } else {
        (Duration::from_millis(300), Duration::from_secs(300), None)
    };
    if let Some(block) = &line.d.block {
        let mut once = Once::default();
        for d in &block.directives {
            let name = d.name.text.as_str();
            if !CRITIC_KNOWN.contains(&name) || (name == "max_lag" && !replication) {
                let known: &[&str] = if replication {
                    CRITIC_KNOWN
                } else {
                    &["threshold", "validity"]
                };
                return Err(unknown(d, "critic option", known));
            }
            once.check(d)?;
            let mut line = Line::new(d);
            match name {
                "threshold" => threshold = nonzero_duration(line.single("a duration")?, name)?,
                "validity" => validity = nonzero_duration(line.single("a duration")?, name)?,
                _ => max_lag = off_setting(&mut line)?,
            }
        }
    }
    Ok(if replication {
        Critic::ReplicationLatency {
            threshold,
            validity,
            max_lag,
        }
    } else {
        Critic::QueryLatency {
            threshold,
            validity,
        }
    })
}
