//! Reads PostgreSQL's `errcodes.txt` and emits `crates/fed/src/sqlstate.rs`.
//!
//! The list's format (from its own header): comment lines start with `#`,
//! `Section: ...` lines open an error class, and every other line is
//! `sqlstate E|W|S ERRCODE_MACRO [condition_name]`.

use std::collections::BTreeMap;

use crate::def::Error;
use crate::emit::w;

/// One line of the list.
struct Code {
    code: String,
    /// Macro name without `ERRCODE_`.
    constant: String,
    /// PL/pgSQL condition name, when the line has one.
    condition: Option<String>,
}

/// A `Section:` line or a code, in file order.
enum Item {
    Section(String),
    Code(Code),
}

fn parse(src: &str) -> Result<Vec<Item>, Error> {
    let mut items = Vec::new();
    for (i, raw) in src.lines().enumerate() {
        let line = i + 1;
        let text = raw.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        if let Some(s) = text.strip_prefix("Section:") {
            items.push(Item::Section(s.trim().to_string()));
            continue;
        }
        let words: Vec<&str> = text.split_whitespace().collect();
        let (code, kind, mac, condition) = match words[..] {
            [c, k, m] => (c, k, m, None),
            [c, k, m, n] => (c, k, m, Some(n)),
            _ => {
                return Err(Error {
                    line,
                    msg: "expected `sqlstate E|W|S ERRCODE_NAME [condition_name]`".into(),
                });
            }
        };
        let well_formed = code.len() == 5
            && code
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase());
        let constant = mac.strip_prefix("ERRCODE_").filter(|c| {
            !c.is_empty()
                && c.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        });
        match (well_formed, matches!(kind, "E" | "W" | "S"), constant) {
            (true, true, Some(constant)) => items.push(Item::Code(Code {
                code: code.to_string(),
                constant: constant.to_string(),
                condition: condition.map(str::to_string),
            })),
            _ => {
                return Err(Error {
                    line,
                    msg: format!(
                        "expected a five-character code of 0-9/A-Z, E/W/S and an ERRCODE_ macro, found `{text}`"
                    ),
                });
            }
        }
    }
    Ok(items)
}

/// Generates `sqlstate.rs` (unformatted), after `header`.
pub fn generate(header: &str, src: &str) -> Result<String, Error> {
    let items = parse(src)?;
    // One name per code: the first condition name given for it (several
    // macros share a code, e.g. 3D000 is INVALID_CATALOG_NAME and
    // UNDEFINED_DATABASE, and only one of them carries a condition name).
    let mut names: BTreeMap<&str, String> = BTreeMap::new();
    for item in &items {
        if let Item::Code(c) = item
            && let Some(n) = &c.condition
        {
            names.entry(&c.code).or_insert_with(|| n.clone());
        }
    }
    for item in &items {
        if let Item::Code(c) = item {
            names
                .entry(&c.code)
                .or_insert_with(|| c.constant.to_ascii_lowercase());
        }
    }

    let mut out = String::new();
    w!(out, "{header}");
    w!(
        out,
        "//! SQLSTATE codes: PostgreSQL's errcodes list as constants with their"
    );
    w!(
        out,
        "//! condition names, so that errors we send and errors we inspect (25006 for"
    );
    w!(
        out,
        "//! the hybrid pool's write fallback, 57014 for cancels) are named, not spelt."
    );
    w!(out);
    w!(out, "use std::fmt;");
    w!(out);
    w!(out, "/// A five-character SQLSTATE code, such as `28P01`.");
    w!(out, "///");
    w!(
        out,
        "/// Any well-formed code can be held, not only the listed ones: extensions"
    );
    w!(
        out,
        "/// and `RAISE ... USING ERRCODE` invent their own, and a pooler must pass"
    );
    w!(
        out,
        "/// them on. The constants are named after PostgreSQL's `ERRCODE_` macros;"
    );
    w!(out, "/// several may share a code.");
    w!(
        out,
        "#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]"
    );
    w!(out, "pub struct SqlState([u8; 5]);");
    w!(out);
    w!(out, "impl SqlState {{");
    for item in &items {
        match item {
            Item::Section(s) => {
                w!(out);
                w!(out, "// {s}");
            }
            Item::Code(c) => {
                let name = names.get(c.code.as_str()).map_or("", String::as_str);
                w!(out, "/// `{}` {name}", c.code);
                w!(
                    out,
                    "pub const {}: SqlState = SqlState(*b\"{}\");",
                    c.constant,
                    c.code
                );
            }
        }
    }
    w!(out);
    w!(
        out,
        "/// The code spelt by `code`, if it is five characters of 0-9 and A-Z."
    );
    w!(out, "pub fn from_code(code: &[u8]) -> Option<SqlState> {{");
    w!(out, "let code: [u8; 5] = code.try_into().ok()?;");
    w!(out, "code.iter()");
    w!(
        out,
        ".all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())"
    );
    w!(out, ".then_some(SqlState(code))");
    w!(out, "}}");
    w!(out);
    w!(out, "/// The code's five bytes.");
    w!(out, "pub const fn as_bytes(&self) -> &[u8; 5] {{");
    w!(out, "&self.0");
    w!(out, "}}");
    w!(out);
    w!(out, "/// The code as text.");
    w!(out, "pub fn as_str(&self) -> &str {{");
    w!(out, "// Always ASCII: every constructor checks it.");
    w!(out, "std::str::from_utf8(&self.0).unwrap_or(\"?????\")");
    w!(out, "}}");
    w!(out);
    w!(
        out,
        "/// The class: the first two characters (`28` for `28P01`)."
    );
    w!(out, "pub fn class(&self) -> &str {{");
    w!(out, "self.as_str().get(..2).unwrap_or(\"\")");
    w!(out, "}}");
    w!(out);
    w!(
        out,
        "/// The lowercase condition name PostgreSQL gives this code"
    );
    w!(
        out,
        "/// (`invalid_password`), or None for a code it does not list."
    );
    w!(out, "pub fn name(&self) -> Option<&'static str> {{");
    w!(out, "NAMES");
    w!(out, ".binary_search_by(|(code, _)| code.cmp(&self.0))");
    w!(out, ".ok()");
    w!(out, ".map(|i| NAMES[i].1)");
    w!(out, "}}");
    w!(out, "}}");
    w!(out);
    w!(
        out,
        "/// `28P01 (invalid_password)`, or just the code when it is not listed."
    );
    w!(out, "impl fmt::Display for SqlState {{");
    w!(
        out,
        "fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {{"
    );
    w!(out, "match self.name() {{");
    w!(
        out,
        "Some(name) => write!(f, \"{{}} ({{name}})\", self.as_str()),"
    );
    w!(out, "None => f.write_str(self.as_str()),");
    w!(out, "}}");
    w!(out, "}}");
    w!(out, "}}");
    w!(out);
    w!(out, "impl fmt::Debug for SqlState {{");
    w!(
        out,
        "fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {{"
    );
    w!(out, "write!(f, \"SqlState({{self}})\")");
    w!(out, "}}");
    w!(out, "}}");
    w!(out);
    w!(
        out,
        "/// Every listed code with its condition name, sorted by code."
    );
    w!(out, "static NAMES: [([u8; 5], &str); {}] = [", names.len());
    for (code, name) in &names {
        w!(out, "(*b\"{code}\", \"{name}\"),");
    }
    w!(out, "];");
    w!(out);
    w!(out, "#[cfg(test)]");
    w!(out, "mod tests {{");
    w!(out, "use super::*;");
    w!(out);
    out.push_str(TESTS);
    w!(out, "}}");
    Ok(out)
}

/// Tests of the generated table, emitted into its test module.
const TESTS: &str = r#"
#[test]
fn names_are_sorted_for_binary_search() {
    assert!(NAMES.windows(2).all(|w| w[0].0 < w[1].0));
}

#[test]
fn constants_match_postgres() {
    assert_eq!(SqlState::INVALID_PASSWORD.as_str(), "28P01");
    assert_eq!(SqlState::UNDEFINED_DATABASE.as_str(), "3D000");
    assert_eq!(SqlState::TOO_MANY_CONNECTIONS.as_str(), "53300");
    assert_eq!(SqlState::QUERY_CANCELED.as_str(), "57014");
    assert_eq!(SqlState::READ_ONLY_SQL_TRANSACTION.as_str(), "25006");
    assert_eq!(SqlState::PROTOCOL_VIOLATION.as_str(), "08P01");
}

#[test]
fn lookup_name_class() {
    let s = SqlState::from_code(b"28P01").unwrap();
    assert_eq!(s, SqlState::INVALID_PASSWORD);
    assert_eq!(s.name(), Some("invalid_password"));
    assert_eq!(s.class(), "28");
    assert_eq!(SqlState::READ_ONLY_SQL_TRANSACTION.name(), Some("read_only_sql_transaction"));
    // Codes several macros share take the listed condition name.
    assert_eq!(SqlState::UNDEFINED_DATABASE.name(), Some("invalid_catalog_name"));
    // Unlisted but well-formed codes are kept, without a name.
    let custom = SqlState::from_code(b"P9999").unwrap();
    assert_eq!(custom.name(), None);
    assert_eq!(custom.to_string(), "P9999");
    for bad in [&b"28p01"[..], b"2801", b"28P011", b"28P0\0", b""] {
        assert_eq!(SqlState::from_code(bad), None);
    }
}

#[test]
fn display_and_debug_show_code_and_name() {
    assert_eq!(SqlState::QUERY_CANCELED.to_string(), "57014 (query_canceled)");
    assert_eq!(format!("{:?}", SqlState::QUERY_CANCELED), "SqlState(57014 (query_canceled))");
}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_lines_are_reported() {
        let e = generate(
            "",
            "Section: Class 00\n00000 S ERRCODE_SUCCESSFUL_COMPLETION ok\n0000 E ERRCODE_X\n",
        )
        .unwrap_err();
        assert_eq!(e.line, 3);
        let e = generate("", "00000 S\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 1: expected `sqlstate E|W|S ERRCODE_NAME [condition_name]`"
        );
    }

    #[test]
    fn shared_codes_take_the_listed_condition_name() {
        let out = generate(
            "",
            "3D000 E ERRCODE_INVALID_CATALOG_NAME invalid_catalog_name\n3D000 E ERRCODE_UNDEFINED_DATABASE\n",
        )
        .unwrap();
        assert!(out.contains("pub const UNDEFINED_DATABASE: SqlState = SqlState(*b\"3D000\");"));
        assert!(out.contains("(*b\"3D000\", \"invalid_catalog_name\"),"));
        assert!(out.contains("[([u8; 5], &str); 1]"));
    }
}
