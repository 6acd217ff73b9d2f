//! The `[pgbouncer]` section: every setting PgBouncer knows, its default, whether `SET` may change it on a
//! running process, and what pggat does with it.
//!
//! A setting pggat cannot honour is never dropped silently: one that would change who gets in or what
//! clients are sent is an error at load (and refused by SET) when set to anything but its default
//! ([`Support::Refused`]); the rest are accepted and named in a warning at load ([`Support::Ignored`]):
//! PgBouncer's own plumbing (log files, socket tuning, DNS caching), and a few tunings of behaviour pggat
//! does its own way (`server_round_robin`, `query_wait_notify`, `max_packet_size`, `suspend_timeout`,
//! `cancel_wait_timeout`, `autodb_idle_timeout`).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::error::{Error, Pos, Result};

/// What pggat does with a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// Honoured as PgBouncer documents it.
    Used,
    /// Accepted and named in a warning at load; has no effect (see the module docs).
    Ignored,
    /// Not implemented; an error unless left at its default.
    Refused,
}

/// One known setting.
#[derive(Debug, Clone, Copy)]
pub struct Known {
    /// Its name as PgBouncer spells it.
    pub name: &'static str,
    /// PgBouncer's default, as SHOW CONFIG prints it.
    pub default: &'static str,
    /// Whether `SET` may change it on a running process.
    pub changeable: bool,
    /// What pggat does with it.
    pub support: Support,
}

const fn known(
    name: &'static str,
    default: &'static str,
    changeable: bool,
    support: Support,
) -> Known {
    Known {
        name,
        default,
        changeable,
        support,
    }
}

use Support::{Ignored, Refused, Used};

/// PgBouncer's default `auth_query`.
pub const DEFAULT_AUTH_QUERY: &str = "SELECT rolname, CASE WHEN rolvaliduntil < now() THEN NULL ELSE rolpassword END FROM pg_authid WHERE rolname=$1 AND rolcanlogin";

/// Every setting of `[pgbouncer]`, sorted by name (SHOW CONFIG's order).
pub const KNOWN: &[Known] = &[
    known("admin_users", "", true, Used),
    known("application_name_add_host", "0", true, Refused),
    known("auth_dbname", "", true, Used),
    known("auth_file", "", true, Used),
    known("auth_hba_file", "", true, Used),
    known("auth_ident_file", "", true, Refused),
    known("auth_ldap_options", "", true, Refused),
    known("auth_query", DEFAULT_AUTH_QUERY, true, Used),
    known("auth_type", "md5", true, Used),
    known("auth_user", "", true, Used),
    known("autodb_idle_timeout", "3600", true, Ignored),
    known("cancel_wait_timeout", "10", true, Ignored),
    known("client_idle_timeout", "0", true, Used),
    known("client_login_timeout", "60", true, Refused),
    known("client_tls13_ciphers", "", true, Ignored),
    known("client_tls_ca_file", "", true, Refused),
    known("client_tls_cert_file", "", true, Used),
    known("client_tls_ciphers", "default", true, Ignored),
    known("client_tls_dheparams", "auto", true, Ignored),
    known("client_tls_ecdhcurve", "auto", true, Ignored),
    known("client_tls_key_file", "", true, Used),
    known("client_tls_protocols", "secure", true, Ignored),
    known("client_tls_sslmode", "disable", true, Used),
    known("conffile", "", true, Ignored),
    known("default_pool_size", "20", true, Used),
    known("disable_pqexec", "0", false, Refused),
    known("dns_max_ttl", "15", true, Ignored),
    known("dns_nxdomain_ttl", "15", true, Ignored),
    known("dns_zone_check_period", "0", true, Ignored),
    known("idle_transaction_timeout", "0", true, Used),
    known("ignore_startup_parameters", "", true, Used),
    known("job_name", "pgbouncer", false, Ignored),
    known("listen_addr", "", false, Used),
    known("listen_backlog", "128", false, Ignored),
    known("listen_port", "6432", false, Used),
    known("log_connections", "1", true, Ignored),
    known("log_disconnections", "1", true, Ignored),
    known("log_pooler_errors", "1", true, Ignored),
    known("log_stats", "1", true, Used),
    known("logfile", "", true, Ignored),
    known("max_client_conn", "100", true, Used),
    known("max_db_client_connections", "0", true, Used),
    known("max_db_connections", "0", true, Used),
    known("max_packet_size", "2147483647", true, Ignored),
    known("max_prepared_statements", "200", true, Used),
    known("max_user_client_connections", "0", true, Used),
    known("max_user_connections", "0", true, Used),
    known("min_pool_size", "0", true, Used),
    known("peer_id", "0", false, Refused),
    known("pidfile", "", false, Ignored),
    known("pkt_buf", "4096", false, Ignored),
    known("pool_mode", "session", true, Used),
    known("query_timeout", "0", true, Used),
    known("query_wait_notify", "5", true, Ignored),
    known("query_wait_timeout", "120", true, Used),
    known("reserve_pool_size", "0", true, Used),
    known("reserve_pool_timeout", "5", true, Used),
    known("resolv_conf", "", false, Ignored),
    known("sbuf_loopcnt", "5", true, Ignored),
    known("scram_iterations", "4096", true, Ignored),
    known("server_check_delay", "30", true, Used),
    known("server_check_query", "<empty>", true, Used),
    known("server_connect_timeout", "15", true, Used),
    known("server_fast_close", "0", true, Refused),
    known("server_idle_timeout", "600", true, Used),
    known("server_lifetime", "3600", true, Used),
    known("server_login_retry", "15", true, Used),
    known("server_reset_query", "DISCARD ALL", true, Used),
    known("server_reset_query_always", "0", true, Used),
    known("server_round_robin", "0", true, Ignored),
    known("server_tls13_ciphers", "", true, Ignored),
    known("server_tls_ca_file", "", true, Used),
    known("server_tls_cert_file", "", true, Refused),
    known("server_tls_ciphers", "default", true, Ignored),
    known("server_tls_key_file", "", true, Refused),
    known("server_tls_protocols", "secure", true, Ignored),
    known("server_tls_sslmode", "prefer", true, Used),
    known("so_reuseport", "0", false, Ignored),
    known("stats_period", "60", true, Used),
    known("stats_users", "", true, Used),
    known("suspend_timeout", "10", true, Ignored),
    known("syslog", "0", true, Ignored),
    known("syslog_facility", "daemon", true, Ignored),
    known("syslog_ident", "pgbouncer", true, Ignored),
    known("tcp_defer_accept", "1", true, Ignored),
    known("tcp_keepalive", "1", true, Ignored),
    known("tcp_keepcnt", "0", true, Ignored),
    known("tcp_keepidle", "0", true, Ignored),
    known("tcp_keepintvl", "0", true, Ignored),
    known("tcp_socket_buffer", "0", true, Ignored),
    known("tcp_user_timeout", "0", true, Ignored),
    known("track_extra_parameters", "IntervalStyle", false, Used),
    known("transaction_timeout", "0", true, Refused),
    known("unix_socket_dir", "/tmp", false, Used),
    known("unix_socket_group", "", false, Ignored),
    known("unix_socket_mode", "0777", false, Refused),
    known("user", "", false, Ignored),
    known("verbose", "0", true, Ignored),
];

/// The known setting `name` (case-insensitive, as PgBouncer).
pub fn lookup(name: &str) -> Option<&'static Known> {
    KNOWN.iter().find(|k| k.name.eq_ignore_ascii_case(name))
}

/// The values of `[pgbouncer]`: every known setting, as written or defaulted, with where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Values {
    values: BTreeMap<&'static str, (String, Option<Pos>)>,
}

impl Default for Values {
    fn default() -> Values {
        Values {
            values: KNOWN
                .iter()
                .map(|k| (k.name, (k.default.to_owned(), None)))
                .collect(),
        }
    }
}

impl Values {
    /// Sets `name` written at `pos`: an unknown name is an error.
    pub fn set(&mut self, name: &str, value: &str, pos: Option<Pos>) -> Result<&'static Known> {
        let Some(k) = lookup(name) else {
            let at = pos.unwrap_or_else(|| Pos::file_only("SET"));
            return Err(Error::at(
                &at,
                format!("unknown setting {name:?}"),
                "a PgBouncer setting (see SHOW CONFIG)",
            ));
        };
        self.values.insert(k.name, (value.to_owned(), pos));
        Ok(k)
    }

    /// The value of a known setting.
    pub fn get(&self, name: &str) -> &str {
        self.values.get(name).map_or("", |(v, _)| v.as_str())
    }

    /// Where a setting was written, when it was.
    pub fn pos(&self, name: &str) -> Option<&Pos> {
        self.values.get(name).and_then(|(_, p)| p.as_ref())
    }

    /// Every setting with its value, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static Known, &str)> {
        KNOWN.iter().map(|k| (k, self.get(k.name)))
    }

    /// Settings set (in a file, or by the console's SET) to something other
    /// than their default, by support; with where, for a file's.
    pub fn written(
        &self,
        support: Support,
    ) -> impl Iterator<Item = (&'static Known, Option<&Pos>)> {
        KNOWN.iter().filter_map(move |k| {
            let (value, pos) = self.values.get(k.name)?;
            (k.support == support && value != k.default).then_some((k, pos.as_ref()))
        })
    }

    fn bad(&self, name: &str, expected: &str) -> Error {
        let pos = self
            .pos(name)
            .cloned()
            .unwrap_or_else(|| Pos::file_only(name.to_owned()));
        Error::at(&pos, format!("{name} = {:?}", self.get(name)), expected)
    }

    /// An integer setting.
    pub fn int(&self, name: &str) -> Result<u32> {
        self.get(name)
            .trim()
            .parse()
            .map_err(|_| self.bad(name, "a non-negative integer"))
    }

    /// A boolean setting (`0`/`1`, `on`/`off`, `true`/`false`, `yes`/`no`).
    pub fn flag(&self, name: &str) -> Result<bool> {
        match self.get(name).trim().to_ascii_lowercase().as_str() {
            "1" | "on" | "true" | "yes" => Ok(true),
            "0" | "off" | "false" | "no" => Ok(false),
            _ => Err(self.bad(name, "0 or 1")),
        }
    }

    /// A time setting: seconds (fractions allowed, as PgBouncer) or a duration with a unit.
    pub fn time(&self, name: &str) -> Result<Duration> {
        parse_seconds(self.get(name)).ok_or_else(|| self.bad(name, "seconds, such as 30 or 0.5"))
    }

    /// A time setting where `0` means never.
    pub fn timeout(&self, name: &str) -> Result<Option<Duration>> {
        self.time(name).map(|d| (!d.is_zero()).then_some(d))
    }

    /// A comma-separated list setting, blanks trimmed, empty items dropped.
    pub fn list(&self, name: &str) -> Vec<String> {
        split_list(self.get(name))
    }

    /// A string setting; `None` when empty.
    pub fn text(&self, name: &str) -> Option<String> {
        let v = self.get(name).trim();
        (!v.is_empty()).then(|| v.to_owned())
    }
}

/// PgBouncer's time values: seconds as a decimal number, or (as newer versions also take) with a unit.
pub fn parse_seconds(text: &str) -> Option<Duration> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<f64>() {
        // try_: 1e20 seconds is finite but no Duration (a panic, not an error).
        return Duration::try_from_secs_f64(secs).ok();
    }
    let unit_of = [("min", "m"), ("sec", "s")];
    let mut owned = text.to_owned();
    for (long, short) in unit_of {
        owned = owned.replace(long, short);
    }
    crate::duration::parse(&owned)
}

/// Splits a comma-separated list.
pub fn split_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_past_what_a_duration_holds_are_errors_not_panics() {
        use super::parse_seconds;
        for bad in ["1e20", "2e19", "inf", "NaN", "-1", "-0.5"] {
            assert_eq!(parse_seconds(bad), None, "{bad}");
        }
        assert_eq!(
            parse_seconds("1.5"),
            Some(std::time::Duration::from_millis(1500))
        );
    }

    use super::*;

    #[test]
    fn table_is_sorted_and_unique() {
        for pair in KNOWN.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "{} / {}",
                pair[0].name,
                pair[1].name
            );
        }
    }

    #[test]
    fn values_parse_as_pgbouncer_writes_them() {
        let mut v = Values::default();
        assert_eq!(v.int("default_pool_size").unwrap(), 20);
        assert_eq!(
            v.time("reserve_pool_timeout").unwrap(),
            Duration::from_secs(5)
        );
        assert_eq!(v.timeout("query_timeout").unwrap(), None);
        v.set("RESERVE_POOL_TIMEOUT", "0.5", None).unwrap();
        assert_eq!(
            v.time("reserve_pool_timeout").unwrap(),
            Duration::from_millis(500)
        );
        v.set("server_lifetime", "1min", None).unwrap();
        assert_eq!(v.time("server_lifetime").unwrap(), Duration::from_secs(60));
        v.set(
            "ignore_startup_parameters",
            " extra_float_digits, ,options",
            None,
        )
        .unwrap();
        assert_eq!(
            v.list("ignore_startup_parameters"),
            ["extra_float_digits", "options"]
        );
        assert!(v.set("no_such_thing", "1", None).is_err());
        v.set(
            "default_pool_size",
            "-1",
            Some(Pos {
                file: "p.ini".into(),
                line: 4,
                col: 1,
            }),
        )
        .unwrap();
        assert_eq!(
            v.int("default_pool_size").unwrap_err().to_string(),
            "p.ini:4:1: default_pool_size = \"-1\", expected a non-negative integer"
        );
    }
}
