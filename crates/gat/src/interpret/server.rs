//! A server block: its keys (listeners), `ssl`, named matchers and routes.

use std::collections::HashMap;
use std::path::PathBuf;

use super::{Line, Once, addr, choice, matcher, pool, positive, unknown};
use crate::config::{AuthMethod, Handler, Rewrite, RewriteMode, Route, Server, ServerSsl};
use crate::error::{Error, Pos, Result, Span};
use crate::matcher::Matcher;
use crate::syntax::{Directive, Token};

/// The directives of a server block, for the "unknown directive" message.
const KNOWN: &[&str] = &[
    "@name (a named matcher)",
    "allowed_startup_parameters",
    "auth_method",
    "database",
    "error",
    "max_connections",
    "parameter",
    "password",
    "pgbouncer",
    "pool",
    "require_ssl",
    "ssl",
    "trust",
    "user",
];

/// Named matchers of one server block: name (without `@`) -> matcher and where it was defined.
type Named = HashMap<String, (Matcher, Pos)>;

pub(super) fn server(d: &Directive) -> Result<Server> {
    let listen = std::iter::once(&d.name)
        .chain(&d.args)
        .map(addr::listen)
        .collect::<Result<Vec<_>>>()?;
    let Some(block) = &d.block else {
        return Err(Error::at(
            &d.name.pos,
            format!("server block {:?} without a body", d.name.text),
            "\"{\" at the end of the line",
        ));
    };
    // Matchers first, so a route may use a matcher defined further down (as in Caddy).
    let mut named = Named::new();
    for line in &block.directives {
        if let Some(name) = line
            .name
            .text
            .strip_prefix('@')
            .filter(|_| !line.name.quoted)
        {
            if name.is_empty() {
                return Err(Error::at(&line.name.pos, "matcher without a name", "@name"));
            }
            if let Some((_, first)) = named.get(name) {
                return Err(Error::at(
                    &line.name.pos,
                    format!(
                        "duplicate matcher {:?} (first defined at {first})",
                        line.name.text
                    ),
                    "a new name",
                ));
            }
            named.insert(
                name.to_owned(),
                (matcher::named(line)?, line.name.pos.clone()),
            );
        }
    }
    let mut ssl = None;
    let mut max_connections = None;
    let mut once = Once::default();
    let mut routes = Vec::new();
    for line in &block.directives {
        if !line.name.quoted && line.name.text.starts_with('@') {
            continue;
        }
        if line.name.is_word("ssl") {
            once.check(line)?;
            ssl = Some(server_ssl(Line::new(line))?);
            continue;
        }
        if line.name.is_word("max_connections") {
            once.check(line)?;
            let token = Line::new(line).single("a positive number of clients")?;
            max_connections = Some(positive(token, "max_connections")?);
            continue;
        }
        routes.push(route(line, &named)?);
    }
    Ok(Server {
        listen,
        ssl,
        max_connections,
        routes,
        span: Span::at(&d.name.pos),
    })
}

/// `ssl`, `ssl self_signed` or `ssl x509_key_pair CERT KEY`.
fn server_ssl(mut line: Line<'_>) -> Result<ServerSsl> {
    let ssl = match line.optional() {
        None => ServerSsl::SelfSigned,
        Some(kind) if kind.is_word("self_signed") => ServerSsl::SelfSigned,
        Some(kind) if kind.is_word("x509_key_pair") => {
            let cert_file = PathBuf::from(
                &line
                    .value("a certificate file (PEM) and a key file (PEM)")?
                    .text,
            );
            let key_file = PathBuf::from(&line.value("a key file (PEM)")?.text);
            ServerSsl::X509KeyPair {
                cert_file,
                key_file,
            }
        }
        Some(other) => {
            return Err(super::invalid(
                other,
                "ssl",
                "one of: self_signed, x509_key_pair",
            ));
        }
    };
    line.done()?;
    Ok(ssl)
}

fn route(d: &Directive, named: &Named) -> Result<Route> {
    let name = d.name.text.as_str();
    let (matcher, handler) = match name {
        "password" => {
            let (matcher, mut line) = split_matcher(d, 1, 1, named, |t| !marks_matcher(t))?;
            let secret = line.value("a password, md5 hash or SCRAM-SHA-256 verifier")?;
            line.done()?;
            (matcher, Handler::Password(secret.text.clone()))
        }
        "auth_method" => {
            let methods = [
                ("scram-sha-256", AuthMethod::ScramSha256),
                ("md5", AuthMethod::Md5),
                ("cleartext", AuthMethod::Cleartext),
            ];
            let (matcher, mut line) = split_matcher(d, 1, 1, named, |t| {
                methods.iter().any(|(w, _)| t.is_word(w))
            })?;
            let token = line.value("scram-sha-256, md5 or cleartext")?;
            let method = super::choice(token, "auth_method", &methods)?;
            line.done()?;
            (matcher, Handler::AuthMethod(method))
        }
        "trust" => {
            let (matcher, line) = split_matcher(d, 0, 0, named, |_| false)?;
            line.done()?;
            (matcher, Handler::Trust)
        }
        "require_ssl" => {
            let (matcher, mut line) =
                split_matcher(d, 0, 1, named, |t| t.is_word("true") || t.is_word("false"))?;
            let value = super::flag(&mut line)?;
            (matcher, Handler::RequireSsl(value))
        }
        "allowed_startup_parameters" => {
            let (matcher, line) = split_matcher(d, 0, 0, named, |_| false)?;
            line.end()?;
            let block = line.block("\"{\" and one parameter name per line")?;
            let mut names = Vec::new();
            for p in &block.directives {
                Line::new(p).done()?;
                names.push(p.name.text.clone());
            }
            (matcher, Handler::AllowedStartupParameters(names))
        }
        "user" | "database" => {
            let is_mode = |t: &Token| t.is_word("strip_prefix") || t.is_word("strip_suffix");
            let (matcher, mut line) = match d.args.len() {
                2 => split_matcher(d, 1, 2, named, is_mode)?,
                _ => split_matcher(d, 1, 2, named, |t| !marks_matcher(t))?,
            };
            let first = line.value("a name, or strip_prefix/strip_suffix and a text")?;
            let rewrite = match line.optional() {
                Some(value) => {
                    let modes = [
                        ("strip_prefix", RewriteMode::StripPrefix),
                        ("strip_suffix", RewriteMode::StripSuffix),
                    ];
                    Rewrite {
                        mode: choice(first, name, &modes)?,
                        value: value.text.clone(),
                    }
                }
                None => Rewrite {
                    mode: RewriteMode::Set,
                    value: first.text.clone(),
                },
            };
            line.done()?;
            (
                matcher,
                if name == "user" {
                    Handler::User(rewrite)
                } else {
                    Handler::Database(rewrite)
                },
            )
        }
        "parameter" => {
            let (matcher, mut line) = split_matcher(d, 1, 1, named, |t| t.text.contains('='))?;
            let token = line.value("name=value")?;
            line.done()?;
            let Some((key, value)) = token.text.split_once('=').filter(|(k, _)| !k.is_empty())
            else {
                return Err(super::invalid(token, "parameter", "name=value"));
            };
            (
                matcher,
                Handler::Parameter {
                    name: key.to_owned(),
                    value: value.to_owned(),
                },
            )
        }
        "error" => {
            let (matcher, mut line) = split_matcher(d, 1, 1, named, |t| !marks_matcher(t))?;
            let message = line.value("a message for the client")?;
            line.done()?;
            (matcher, Handler::Error(message.text.clone()))
        }
        "pgbouncer" => {
            let (matcher, mut line) = split_matcher(d, 0, 1, named, |t| !marks_matcher(t))?;
            let file = line.optional().map_or_else(
                || PathBuf::from("pgbouncer.ini"),
                |t| PathBuf::from(&t.text),
            );
            line.done()?;
            (matcher, Handler::Pgbouncer(file))
        }
        "pool" => {
            let n = if d.block.is_some() { 0 } else { 4 };
            let (matcher, line) = split_matcher(d, n, n, named, |t| !marks_matcher(t))?;
            (matcher, Handler::Pool(Box::new(pool::pool(line)?)))
        }
        _ => return Err(unknown(d, "directive", KNOWN)),
    };
    Ok(Route {
        matcher,
        handler,
        span: Span::at(&d.name.pos),
    })
}

/// Whether a token can only be a matcher: an unquoted `@name` or `*`. (`/db` also is one, but a path
/// starts with `/` too, so it counts only when the number of arguments says so.)
fn marks_matcher(token: &Token) -> bool {
    !token.quoted && (token.text.starts_with('@') || token.text == "*")
}

/// Takes the optional matcher token off a handler line whose own arguments number `min..=max`.
///
/// The first argument is the matcher when there are more arguments than the handler takes, or when it
/// looks like a matcher (`@name`, `/db`, `*`, unquoted) and the handler could not take it as its own first
/// value (`value_ok`). So `pool /var/run/postgresql db user pw` names a unix socket (four arguments: no
/// room for a matcher) while `pool /app* 127.0.0.1 app app pw` matches databases `app*`, and a lone
/// `password @bob` is a matcher with the password forgotten rather than the password "@bob".
fn split_matcher<'a>(
    d: &'a Directive,
    min: usize,
    max: usize,
    named: &Named,
    value_ok: impl Fn(&Token) -> bool,
) -> Result<(Option<Matcher>, Line<'a>)> {
    let mut line = Line::new(d);
    let Some(first) = d.args.first() else {
        return Ok((None, line));
    };
    let looks_like = !first.quoted && (first.text.starts_with(['@', '/']) || first.text == "*");
    let is_matcher = d.args.len() > max || (looks_like && !value_ok(first) && (min > 0 || max > 0));
    if !is_matcher {
        return Ok((None, line));
    }
    line.next = 1;
    Ok((matcher_token(first, named)?, line))
}

/// `@name`, `/dbglob` or `*`.
fn matcher_token(token: &Token, named: &Named) -> Result<Option<Matcher>> {
    let text = token.text.as_str();
    if token.quoted {
        return Err(Error::at(
            &token.pos,
            format!("quoted matcher {text:?}"),
            "@name, /database or * unquoted",
        ));
    }
    if text == "*" {
        return Ok(None);
    }
    if let Some(name) = text.strip_prefix('@') {
        return match named.get(name) {
            Some((m, _)) => Ok(Some(m.clone())),
            None => {
                let mut names: Vec<String> = named.keys().map(|n| format!("@{n}")).collect();
                names.sort();
                let expected = if names.is_empty() {
                    "a matcher defined in this server block with @name".to_owned()
                } else {
                    format!(
                        "a matcher defined in this server block: {}",
                        names.join(", ")
                    )
                };
                Err(Error::at(
                    &token.pos,
                    format!("undefined matcher {text:?}"),
                    expected,
                ))
            }
        };
    }
    if let Some(glob) = text.strip_prefix('/') {
        if glob.is_empty() {
            return Err(Error::at(
                &token.pos,
                "empty database pattern \"/\"",
                "/database or /glob*",
            ));
        }
        return Ok(Some(Matcher::database(glob)));
    }
    Err(Error::at(
        &token.pos,
        format!("unexpected argument {text:?}"),
        "a matcher: @name, /database or *",
    ))
}
