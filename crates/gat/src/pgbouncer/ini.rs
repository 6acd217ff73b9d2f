//! PgBouncer's ini dialect: `[section]` headers, `key = value` lines, `;` and `#` comment lines, and
//! `%include FILE` lines that splice another file in where they stand.
//!
//! Values run to the end of the line (trailing blanks trimmed, no inline comments: PgBouncer reads a `;` in
//! a value as part of it). Keys may be double-quoted, for database names that are not bare words. Every
//! entry keeps its `file:line:col`, so a bad value is reported where it was written.

use std::path::{Path, PathBuf};

use crate::error::{Error, Pos, Result};
use crate::syntax::Environment;

/// Deepest `%include` nesting; deeper is taken as a loop.
const MAX_INCLUDE_DEPTH: usize = 8;

/// One `key = value` line.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The key as written (quotes removed).
    pub key: String,
    /// The value, trimmed.
    pub value: String,
    /// Where the key is.
    pub pos: Pos,
    /// Where the value starts.
    pub value_pos: Pos,
}

/// A `[section]` and its entries, in file order (includes spliced in).
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    /// The name, lower-cased.
    pub name: String,
    /// Where the header is.
    pub pos: Pos,
    /// Its entries.
    pub entries: Vec<Entry>,
}

/// Reads `path` and every file it includes.
pub fn read(path: &Path, env: &dyn Environment) -> Result<Vec<Section>> {
    let mut sections = Vec::new();
    read_into(path, env, &mut sections, 0, None)?;
    Ok(sections)
}

fn read_into(
    path: &Path,
    env: &dyn Environment,
    sections: &mut Vec<Section>,
    depth: usize,
    from: Option<&Pos>,
) -> Result<()> {
    let name: std::sync::Arc<str> = path.to_string_lossy().into();
    let text = env.read(path).map_err(|e| {
        let at = from
            .cloned()
            .unwrap_or_else(|| Pos::file_only(name.clone()));
        let why = match e.kind() {
            std::io::ErrorKind::NotFound => "file not found".to_owned(),
            _ => e.to_string(),
        };
        Error::at(
            &at,
            format!("cannot read {}: {why}", path.display()),
            "a readable pgbouncer.ini",
        )
    })?;
    for (n, line) in text.lines().enumerate() {
        let line_no = u32::try_from(n + 1).unwrap_or(u32::MAX);
        let indent = line.len() - line.trim_start().len();
        let pos_at = |byte: usize| Pos {
            file: name.clone(),
            line: line_no,
            col: u32::try_from(line[..byte].chars().count() + 1).unwrap_or(u32::MAX),
        };
        let body = line.trim();
        if body.is_empty() || body.starts_with(';') || body.starts_with('#') {
            continue;
        }
        if let Some(target) = body.strip_prefix("%include") {
            let target = target.trim();
            let pos = pos_at(indent);
            if target.is_empty() {
                return Err(Error::at(&pos, "%include without a file", "%include FILE"));
            }
            if depth >= MAX_INCLUDE_DEPTH {
                return Err(Error::at(
                    &pos,
                    format!("%include nested more than {MAX_INCLUDE_DEPTH} deep"),
                    "includes that do not include themselves",
                ));
            }
            let target = include_path(path, target, env);
            read_into(&target, env, sections, depth + 1, Some(&pos))?;
            continue;
        }
        if let Some(header) = body.strip_prefix('[') {
            let Some(section) = header.strip_suffix(']') else {
                return Err(Error::at(
                    &pos_at(indent),
                    format!("section header {body:?} without its closing ]"),
                    "[section]",
                ));
            };
            sections.push(Section {
                name: section.trim().to_ascii_lowercase(),
                pos: pos_at(indent),
                entries: Vec::new(),
            });
            continue;
        }
        let pos = pos_at(indent);
        let (key, rest) = split_key(body).ok_or_else(|| {
            Error::at(
                &pos,
                format!("{body:?}"),
                "key = value, [section], %include FILE or a comment",
            )
        })?;
        let Some(value) = rest.trim_start().strip_prefix('=') else {
            return Err(Error::at(
                &pos,
                format!("{body:?} without ="),
                "key = value",
            ));
        };
        // Where the value starts in the line: measured in the trimmed body
        // (the value is a suffix of it; the line may have trailing spaces).
        let value_at = indent + body.len() - value.trim_start().len();
        let Some(section) = sections.last_mut() else {
            return Err(Error::at(
                &pos,
                format!("{key} before any [section]"),
                "[pgbouncer], [databases] or [users] first",
            ));
        };
        section.entries.push(Entry {
            key,
            value: value.trim().to_owned(),
            value_pos: pos_at(value_at),
            pos,
        });
    }
    Ok(())
}

/// A relative include is looked for beside the including file, then in the working directory.
fn include_path(from: &Path, target: &str, env: &dyn Environment) -> PathBuf {
    let target = Path::new(target);
    if target.is_absolute() {
        return target.to_owned();
    }
    match from.parent() {
        Some(dir) if env.read(&dir.join(target)).is_ok() => dir.join(target),
        _ => target.to_owned(),
    }
}

/// The key of a line and what follows it: a bare word (letters, digits, `_ . - *` and anything but
/// blanks and `=`) or a double-quoted name with `""` for a quote.
fn split_key(body: &str) -> Option<(String, &str)> {
    if body.starts_with('"') {
        return unquote(body, '"');
    }
    let end = body
        .find(|c: char| c == '=' || c.is_whitespace())
        .unwrap_or(body.len());
    (end > 0).then(|| (body[..end].to_owned(), &body[end..]))
}

/// A leading token quoted with `q`, a doubled `q` standing for one (PgBouncer's quoting in the ini,
/// the auth_file and the admin console): its content and what follows it. `None` when `text` does not
/// start with `q` or the quote is not closed.
pub fn unquote(text: &str, q: char) -> Option<(String, &str)> {
    let inner = text.strip_prefix(q)?;
    let mut out = String::new();
    let mut chars = inner.char_indices();
    while let Some((i, c)) = chars.next() {
        if c == q {
            if inner[i + 1..].starts_with(q) {
                out.push(q);
                chars.next();
                continue;
            }
            return Some((out, &inner[i + 1..]));
        }
        out.push(c);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pgbouncer::testing::Files;

    #[test]
    fn sections_entries_comments_and_includes() {
        let files = Files::new(&[
            (
                "/etc/pgb/pgbouncer.ini",
                "; comment\n[databases]\n  app = host=localhost dbname=app ; not a comment\n\"my db\" = dbname=x\n\n# also\n%include extra.ini\n[pgbouncer]\nlisten_port=6432\n",
            ),
            ("/etc/pgb/extra.ini", "[users]\nalice = pool_mode=session\n"),
        ]);
        let sections = read(Path::new("/etc/pgb/pgbouncer.ini"), &files).unwrap();
        let names: Vec<&str> = sections.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["databases", "users", "pgbouncer"]);
        let app = &sections[0].entries[0];
        assert_eq!(app.key, "app");
        assert_eq!(app.value, "host=localhost dbname=app ; not a comment");
        assert_eq!((app.pos.line, app.pos.col), (3, 3));
        assert_eq!(app.value_pos.col, 9);
        assert_eq!(sections[0].entries[1].key, "my db");
        assert_eq!(
            sections[1].entries[0].pos.file.as_ref(),
            "/etc/pgb/extra.ini"
        );
        assert_eq!(sections[2].entries[0].key, "listen_port");
        assert_eq!(sections[2].entries[0].value, "6432");
    }

    /// Found by the pgbouncer_ini fuzz target: trailing spaces after a value
    /// that holds multi-byte characters put its position inside one (a
    /// panic on slicing), and pointed past the value anyway.
    #[test]
    fn value_positions_ignore_trailing_spaces() {
        let files = Files::new(&[("/f.ini", "[databases]\np0 = p\u{e9}\u{e9} host=x  \n")]);
        let sections = read(Path::new("/f.ini"), &files).unwrap();
        let entry = &sections[0].entries[0];
        assert_eq!(entry.value, "p\u{e9}\u{e9} host=x");
        assert_eq!(entry.value_pos.col, 6);
    }

    #[test]
    fn mistakes_have_positions() {
        let cases = [
            ("x = 1\n", "f.ini:1:1: x before any [section]"),
            ("[pgbouncer\n", "f.ini:1:1: section header"),
            (
                "[pgbouncer]\n  listen_port 6432\n",
                "f.ini:2:3: \"listen_port 6432\" without =",
            ),
            (
                "[pgbouncer]\n%include nope.ini\n",
                "f.ini:2:1: cannot read nope.ini",
            ),
            (
                "[pgbouncer]\n%include f.ini\n",
                "%include nested more than 8 deep",
            ),
        ];
        for (text, want) in cases {
            let files = Files::new(&[("f.ini", text)]);
            let err = read(Path::new("f.ini"), &files).unwrap_err().to_string();
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }
}
