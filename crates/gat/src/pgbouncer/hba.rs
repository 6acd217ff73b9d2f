//! `auth_hba_file`, in the subset of pg_hba.conf that PgBouncer reads: `local`, `host`, `hostssl` and
//! `hostnossl` lines with database and user lists (`all`, `sameuser`, names, comma-separated), an address
//! (`all`, CIDR, or address and mask) for host lines, and a method. The first line matching a client
//! decides; none matching rejects it.
//!
//! Methods: `trust`, `reject`, `password`, `md5`, `scram-sha-256`. `cert` and `peer` need facts pggat
//! does not have about a client (its certificate, its unix credentials) and are refused at load.

use std::net::IpAddr;
use std::path::Path;

use crate::error::{Error, Pos, Result};
use crate::syntax::Environment;

/// How a matched client is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Let in.
    Trust,
    /// Refuse.
    Reject,
    /// Plain password.
    Password,
    /// MD5, or SCRAM when the stored secret is a SCRAM verifier (as PostgreSQL).
    Md5,
    /// SCRAM-SHA-256.
    ScramSha256,
}

/// Which connections a line is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Unix socket.
    Local,
    /// TCP, with or without TLS.
    Host,
    /// TCP with TLS.
    HostSsl,
    /// TCP without TLS.
    HostNoSsl,
}

/// One line.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Connection kind.
    pub kind: Kind,
    /// Database names; empty means all.
    pub databases: Vec<String>,
    /// Whether the database must equal the user name (`sameuser`).
    pub same_user: bool,
    /// User names; empty means all.
    pub users: Vec<String>,
    /// Network and prefix length; `None` means any address.
    pub network: Option<(IpAddr, u8)>,
    /// The method.
    pub method: Method,
    /// Where the line is.
    pub pos: Pos,
}

/// A client as the rules see it.
#[derive(Debug, Clone, Copy)]
pub struct Client<'a> {
    /// Its address; `None` for a unix socket.
    pub addr: Option<IpAddr>,
    /// Whether it negotiated TLS.
    pub tls: bool,
    /// Its user.
    pub user: &'a str,
    /// The database it asked for.
    pub database: &'a str,
}

impl Rule {
    /// Whether the line applies to `c`.
    pub fn matches(&self, c: &Client<'_>) -> bool {
        let kind = match (self.kind, c.addr) {
            (Kind::Local, None) => true,
            (Kind::Host, Some(_)) => true,
            (Kind::HostSsl, Some(_)) => c.tls,
            (Kind::HostNoSsl, Some(_)) => !c.tls,
            _ => false,
        };
        let database = (self.databases.is_empty() && !self.same_user)
            || (self.same_user && c.database == c.user)
            || self.databases.iter().any(|d| d == c.database);
        let user = self.users.is_empty() || self.users.iter().any(|u| u == c.user);
        let address = match (self.network, c.addr) {
            (None, _) => true,
            (Some((net, bits)), Some(addr)) => in_network(addr, net, bits),
            (Some(_), None) => false,
        };
        kind && database && user && address
    }
}

/// The method of the first rule matching `c`; `Reject` when none does.
pub fn decide(rules: &[Rule], c: &Client<'_>) -> Method {
    rules
        .iter()
        .find(|r| r.matches(c))
        .map_or(Method::Reject, |r| r.method)
}

fn in_network(addr: IpAddr, net: IpAddr, bits: u8) -> bool {
    let addr = match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    match (addr, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// Reads an hba file. `from` is where `auth_hba_file` was written.
pub fn read(path: &Path, env: &dyn Environment, from: &Pos) -> Result<Vec<Rule>> {
    let (name, text) = super::read_named(path, env, from, "auth_hba_file")?;
    let mut rules = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default();
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.is_empty() {
            continue;
        }
        rules.push(rule(&words, super::line_start(&name, n, line))?);
    }
    Ok(rules)
}

fn rule(words: &[&str], pos: Pos) -> Result<Rule> {
    let bad = |found: String, expected: &str| Error::at(&pos, found, expected);
    let kind = match words[0] {
        "local" => Kind::Local,
        "host" => Kind::Host,
        "hostssl" => Kind::HostSsl,
        "hostnossl" => Kind::HostNoSsl,
        other => {
            return Err(bad(
                format!("connection type {other:?}"),
                "local, host, hostssl or hostnossl",
            ));
        }
    };
    let needed = if kind == Kind::Local { 4 } else { 5 };
    if words.len() < needed {
        return Err(bad(
            format!("{} fields", words.len()),
            if kind == Kind::Local {
                "local DATABASE USER METHOD"
            } else {
                "host DATABASE USER ADDRESS METHOD"
            },
        ));
    }
    let mut databases = Vec::new();
    let mut same_user = false;
    for d in names(words[1]) {
        match d.as_str() {
            "all" => {}
            "sameuser" => same_user = true,
            d if d.starts_with('@') => {
                return Err(bad(
                    format!("database {d}"),
                    "names: @file lists are not supported",
                ));
            }
            _ => databases.push(d),
        }
    }
    if names(words[1]).iter().any(|d| d == "all") {
        databases.clear();
        same_user = false;
    }
    let mut users: Vec<String> = names(words[2]);
    if users
        .iter()
        .any(|u| u.starts_with('+') || u.starts_with('@'))
    {
        return Err(bad(
            format!("user {}", words[2]),
            "user names: groups (+role) and @file lists are not supported",
        ));
    }
    if users.iter().any(|u| u == "all") {
        users.clear();
    }
    let mut next = 3;
    let network = if kind == Kind::Local {
        None
    } else {
        let addr = words[3];
        next = 4;
        if addr == "all" {
            None
        } else if let Some((ip, bits)) = addr.split_once('/') {
            let ip: IpAddr = ip.parse().map_err(|_| {
                bad(
                    format!("address {addr}"),
                    "an address: all, CIDR, or ADDRESS MASK",
                )
            })?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let bits: u8 = bits
                .parse()
                .ok()
                .filter(|b| *b <= max)
                .ok_or_else(|| bad(format!("address {addr}"), "a CIDR prefix length"))?;
            Some((ip, bits))
        } else {
            let ip: IpAddr = addr
                .parse()
                .map_err(|_| bad(format!("address {addr}"), "an address: all, CIDR, or ADDRESS MASK (host names, samehost and samenet are not supported)"))?;
            let mask: IpAddr = words.get(4).and_then(|m| m.parse().ok()).ok_or_else(|| {
                bad(
                    format!("address {addr} without a mask"),
                    "ADDRESS MASK or CIDR",
                )
            })?;
            next = 5;
            let bits = match mask {
                IpAddr::V4(m) => u32::from(m).count_ones() as u8,
                IpAddr::V6(m) => u128::from(m).count_ones() as u8,
            };
            Some((ip, bits))
        }
    };
    let method = match words.get(next).copied() {
        Some("trust") => Method::Trust,
        Some("reject") => Method::Reject,
        Some("password") => Method::Password,
        Some("md5") => Method::Md5,
        Some("scram-sha-256") => Method::ScramSha256,
        Some(m @ ("cert" | "peer")) => {
            return Err(bad(
                format!("method {m}"),
                "trust, reject, password, md5 or scram-sha-256 (pggat does not check client certificates or peer credentials)",
            ));
        }
        Some(m) => {
            return Err(bad(
                format!("method {m}"),
                "trust, reject, password, md5 or scram-sha-256",
            ));
        }
        None => {
            return Err(bad(
                "a line without a method".into(),
                "a method at the end of the line",
            ));
        }
    };
    Ok(Rule {
        kind,
        databases,
        same_user,
        users,
        network,
        method,
        pos,
    })
}

/// A comma-separated list of possibly quoted names.
fn names(field: &str) -> Vec<String> {
    field
        .split(',')
        .map(|n| n.trim_matches('"').to_owned())
        .filter(|n| !n.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pgbouncer::testing::Files;

    fn client<'a>(addr: Option<&str>, tls: bool, user: &'a str, database: &'a str) -> Client<'a> {
        Client {
            addr: addr.map(|a| a.parse().unwrap()),
            tls,
            user,
            database,
        }
    }

    #[test]
    fn first_match_decides() {
        let files = Files::new(&[(
            "hba.conf",
            "# comment\nlocal all all trust\nhostssl app alice 10.0.0.0/8 scram-sha-256\nhost sameuser all 127.0.0.1 255.255.255.255 md5\nhost app,other all ::1/128 password # trailing\nhost all bob all reject\nhost all all 0.0.0.0/0 md5\n",
        )]);
        let rules = read(Path::new("hba.conf"), &files, &Pos::file_only("p.ini")).unwrap();
        let m = |c: Client<'_>| decide(&rules, &c);
        assert_eq!(m(client(None, false, "x", "y")), Method::Trust);
        assert_eq!(
            m(client(Some("10.1.2.3"), true, "alice", "app")),
            Method::ScramSha256
        );
        assert_eq!(
            m(client(Some("10.1.2.3"), false, "alice", "app")),
            Method::Md5
        );
        assert_eq!(
            m(client(Some("127.0.0.1"), false, "carol", "carol")),
            Method::Md5
        );
        assert_eq!(
            m(client(Some("::1"), false, "carol", "other")),
            Method::Password
        );
        assert_eq!(
            m(client(Some("::ffff:192.168.0.1"), false, "bob", "db")),
            Method::Reject
        );
        assert_eq!(
            m(client(Some("::2"), false, "carol", "db")),
            Method::Reject,
            "no v6 rule matches"
        );
    }

    #[test]
    fn mistakes() {
        for (line, want) in [
            ("hostgssenc all all all md5", "connection type"),
            ("host all all", "host DATABASE USER ADDRESS METHOD"),
            ("host all all 10.0.0.0/40 md5", "CIDR prefix length"),
            ("host all all example.com md5", "host names"),
            ("host all all all cert", "client certificates"),
            ("local all +admins trust", "groups"),
            ("local all all ident", "method ident"),
        ] {
            let files = Files::new(&[("h", line)]);
            let err = read(Path::new("h"), &files, &Pos::file_only("p.ini"))
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with("h:1:1: ") && err.contains(want),
                "{line}: {err}"
            );
        }
    }
}
