//! The `auth_file` (userlist.txt): one `"user" "secret"` pair per line, each in double quotes with `""`
//! for a quote inside. The secret is a plain password, an `md5...` hash or a `SCRAM-SHA-256$...`
//! verifier, as `pg_authid.rolpassword` holds them. Lines that do not start with `"` are comments.

use std::path::Path;

use super::ini::unquote;
use crate::error::{Error, Pos, Result};
use crate::syntax::Environment;

/// One user of the auth_file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// The user name.
    pub user: String,
    /// The secret as written.
    pub secret: String,
}

/// Reads the auth_file at `path`. `from` is where the setting naming it was written.
pub fn read(path: &Path, env: &dyn Environment, from: &Pos) -> Result<Vec<Credential>> {
    let (name, text) = super::read_named(path, env, from, "auth_file")?;
    let mut users = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let body = line.trim_start();
        if !body.starts_with('"') {
            continue;
        }
        let pos = super::line_start(&name, n, line);
        let expected = "\"user\" \"secret\"";
        let (user, rest) =
            unquote(body, '"').ok_or_else(|| Error::at(&pos, "an unterminated quote", expected))?;
        let (secret, _) = unquote(rest.trim_start(), '"').ok_or_else(|| {
            Error::at(
                &pos,
                format!("user {user:?} without a quoted secret"),
                expected,
            )
        })?;
        users.push(Credential { user, secret });
    }
    Ok(users)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pgbouncer::testing::Files;

    #[test]
    fn users_and_secrets() {
        let files = Files::new(&[(
            "users.txt",
            ";; comment\n\"alice\" \"md5a3556571e93b0d20722ba62be61e8c2d\"\n  \"bo\"\"b\"  \"pa ss\" \"ignored\"\n\n\"carol\" \"SCRAM-SHA-256$4096:c2FsdA==$a:b\"\n",
        )]);
        let from = Pos::file_only("p.ini");
        let users = read(Path::new("users.txt"), &files, &from).unwrap();
        let pairs: Vec<(&str, &str)> = users
            .iter()
            .map(|c| (c.user.as_str(), c.secret.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("alice", "md5a3556571e93b0d20722ba62be61e8c2d"),
                ("bo\"b", "pa ss"),
                ("carol", "SCRAM-SHA-256$4096:c2FsdA==$a:b"),
            ]
        );
        let files = Files::new(&[("bad.txt", "\"alice\"\n")]);
        let err = read(Path::new("bad.txt"), &files, &from)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "bad.txt:1:1: user \"alice\" without a quoted secret, expected \"user\" \"secret\""
        );
        let err = read(Path::new("missing.txt"), &files, &from)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("p.ini: cannot read auth_file missing.txt"),
            "{err}"
        );
    }
}
