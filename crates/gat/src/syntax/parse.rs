//! One file's text -> the generic tree, with pest doing the work and this module turning pest's errors
//! into `FILE:LINE:COL: <found>, expected <what>`.

use pest::Parser as _;
use pest::iterators::Pair;

use super::source::Source;
use super::tree::{Block, Directive, Token};
use crate::error::{Error, Result};

/// Deeper nesting than this is refused before the recursive grammar runs, so no input can exhaust the
/// stack. Real Gatfiles nest four or five levels (server, pool, inner pool, critic).
pub(crate) const MAX_DEPTH: usize = 64;

#[derive(pest_derive::Parser)]
#[grammar = "syntax/gatfile.pest"]
struct Grammar;

/// A file's top level: the global options block, if any, and its lines.
pub(crate) struct Parsed {
    pub(crate) global: Option<Block>,
    pub(crate) lines: Vec<Directive>,
}

/// Parses one file's expanded text.
pub(crate) fn parse(src: &Source) -> Result<Parsed> {
    check_tokens(src)?;
    let mut pairs = match Grammar::parse(Rule::file, &src.text) {
        Ok(pairs) => pairs,
        Err(err) => return Err(map_error(src, &err)),
    };
    let mut parsed = Parsed {
        global: None,
        lines: Vec::new(),
    };
    let Some(file) = pairs.next() else {
        return Ok(parsed);
    };
    for pair in file.into_inner() {
        match pair.as_rule() {
            Rule::global => parsed.global = Some(block(src, pair)),
            Rule::body => parsed.lines = body(src, pair),
            _ => {}
        }
    }
    Ok(parsed)
}

/// Runs the flat `lex` rule: reports an unterminated quote where it starts, and refuses nesting deeper
/// than [`MAX_DEPTH`].
fn check_tokens(src: &Source) -> Result<()> {
    let pairs = match Grammar::parse(Rule::lex, &src.text) {
        Ok(pairs) => pairs,
        // `lex` accepts every input; if pest still says no, let `file` produce the message.
        Err(_) => return Ok(()),
    };
    let mut depth = 0usize;
    for pair in pairs.flatten() {
        match pair.as_rule() {
            Rule::unterminated => {
                let quote = if pair.as_str().starts_with('`') {
                    "`"
                } else {
                    "\""
                };
                return Err(Error::at(
                    &src.pos(pair.as_span().start()),
                    "unterminated quoted string",
                    format!("a closing {quote}"),
                ));
            }
            Rule::brace if pair.as_str() == "{" => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(Error::at(
                        &src.pos(pair.as_span().start()),
                        format!("blocks nested more than {MAX_DEPTH} deep"),
                        "fewer nested blocks",
                    ));
                }
            }
            Rule::brace => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

fn body(src: &Source, pair: Pair<'_, Rule>) -> Vec<Directive> {
    pair.into_inner()
        .filter(|p| p.as_rule() == Rule::line)
        .filter_map(|p| line(src, p))
        .collect()
}

fn line(src: &Source, pair: Pair<'_, Rule>) -> Option<Directive> {
    let mut tokens = Vec::new();
    let mut nested = None;
    let mut inner = pair.into_inner().peekable();
    while let Some(p) = inner.next() {
        match p.as_rule() {
            Rule::token => tokens.push(token(src, p)),
            Rule::open => {
                let open = src.pos(p.as_span().start());
                let directives = inner.next().map(|b| body(src, b)).unwrap_or_default();
                nested = Some(Block { open, directives });
            }
            _ => {}
        }
    }
    let mut tokens = tokens.into_iter();
    let name = tokens.next()?;
    Some(Directive {
        name,
        args: tokens.collect(),
        block: nested,
    })
}

fn block(src: &Source, pair: Pair<'_, Rule>) -> Block {
    let mut open = src.pos(pair.as_span().start());
    let mut directives = Vec::new();
    for p in pair.into_inner() {
        match p.as_rule() {
            Rule::open => open = src.pos(p.as_span().start()),
            Rule::body => directives = body(src, p),
            _ => {}
        }
    }
    Block { open, directives }
}

fn token(src: &Source, pair: Pair<'_, Rule>) -> Token {
    let pos = src.pos(pair.as_span().start());
    let Some(inner) = pair.into_inner().next() else {
        return Token {
            text: String::new(),
            pos,
            quoted: false,
        };
    };
    match inner.as_rule() {
        Rule::quoted => {
            let raw = inner.into_inner().next().map_or("", |p| p.as_str());
            Token {
                text: unescape(raw),
                pos,
                quoted: true,
            }
        }
        Rule::backtick => {
            let raw = inner.into_inner().next().map_or("", |p| p.as_str());
            Token {
                text: raw.to_owned(),
                pos,
                quoted: true,
            }
        }
        _ => Token {
            text: inner.as_str().to_owned(),
            pos,
            quoted: false,
        },
    }
}

/// Inside double quotes `\"` is a quote and `\\` a backslash; any other backslash stays as written
/// (Caddy only knows `\"`; `\\` is added so a string can end in a backslash).
fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(next @ ('"' | '\\')) => out.push(next),
            Some(next) => {
                out.push('\\');
                out.push(next);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Turns pest's "expected one of these rules at byte N" into our message.
fn map_error(src: &Source, err: &pest::error::Error<Rule>) -> Error {
    let offset = match err.location {
        pest::error::InputLocation::Pos(p) => p,
        pest::error::InputLocation::Span((start, _)) => start,
    };
    let positives: &[Rule] = match &err.variant {
        pest::error::ErrorVariant::ParsingError { positives, .. } => positives,
        pest::error::ErrorVariant::CustomError { .. } => &[],
    };
    let offset = offset.min(src.text.len());
    let rest = src.text.get(offset..).unwrap_or("");
    // Point at what is there, not at the blanks before it.
    let trimmed = rest.trim_start_matches([' ', '\t']);
    let (offset, rest) = (offset + (rest.len() - trimmed.len()), trimmed);
    let head = src.text.get(..offset).unwrap_or("");
    let before = head.rsplit('\n').next().unwrap_or("").trim_end();
    let mut found = describe_found(rest);
    let expected = if rest.is_empty() && positives.contains(&Rule::close) {
        "\"}\""
    } else if !before.is_empty() {
        // Mid-line: any token would have been taken, so the line had to end here, after a brace.
        if let Some(brace) = ["{", "}"].into_iter().find(|b| {
            before == *b
                || before.ends_with(&format!(" {b}"))
                || before.ends_with(&format!("\t{b}"))
        }) {
            found = format!("{found} after \"{brace}\"");
        }
        "end of line"
    } else if rest.starts_with('}') {
        // Every `}` that closes something is consumed by the grammar; this one closes nothing.
        found = "unexpected \"}\" with no open block".to_owned();
        "a server block or end of file"
    } else if positives.contains(&Rule::close) {
        "\"}\""
    } else {
        "a server block or end of file"
    };
    Error::at(&src.pos(offset), found, expected)
}

fn describe_found(rest: &str) -> String {
    let rest_trimmed = rest;
    if rest_trimmed.is_empty() {
        return "unexpected end of file".to_owned();
    }
    if rest_trimmed.starts_with(['\r', '\n']) {
        return "unexpected end of line".to_owned();
    }
    let word: String = rest_trimmed
        .chars()
        .take_while(|c| !c.is_whitespace())
        .take(40)
        .collect();
    format!("unexpected {word:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Result<Parsed> {
        parse(&Source::new("t".into(), text, &|_| None))
    }

    fn err(text: &str) -> String {
        parse_text(text)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    fn shape(d: &Directive) -> String {
        let mut out = d.name.text.clone();
        for arg in &d.args {
            out.push(' ');
            out.push_str(&arg.text);
        }
        if let Some(block) = &d.block {
            out.push_str(" {");
            for inner in &block.directives {
                out.push(' ');
                out.push_str(&shape(inner));
                out.push(';');
            }
            out.push_str(" }");
        }
        out
    }

    #[test]
    fn tree_shape_and_positions() {
        let parsed =
            parse_text("{\n  a 1\n}\n\n# c\nk1 \"k 2\" {  # c\n\tx `y z` {\n  }\n  w\n}\n")
                .unwrap_or_else(|e| panic!("{e}"));
        let global = parsed.global.unwrap_or_else(|| panic!("no global"));
        assert_eq!(global.directives.len(), 1);
        assert_eq!(parsed.lines.len(), 1);
        assert_eq!(shape(&parsed.lines[0]), "k1 k 2 { x y z { }; w; }");
        let server = &parsed.lines[0];
        assert_eq!((server.name.pos.line, server.name.pos.col), (6, 1));
        assert_eq!(
            (
                server.args[0].pos.line,
                server.args[0].pos.col,
                server.args[0].quoted
            ),
            (6, 4, true)
        );
        let x = &server
            .block
            .as_ref()
            .unwrap_or_else(|| panic!("no block"))
            .directives[0];
        assert_eq!(
            (x.name.pos.line, x.name.pos.col),
            (7, 2),
            "a tab is one column"
        );
        assert_eq!((x.args[0].pos.line, x.args[0].pos.col), (7, 4));
    }

    #[test]
    fn tokens() {
        let parsed = parse_text("a \"q \\\" \\\\ \\n\" `b\\\"` c#d \"\" e\"f\" \"g\"h # comment\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let texts: Vec<&str> = parsed.lines[0]
            .args
            .iter()
            .map(|t| t.text.as_str())
            .collect();
        assert_eq!(
            texts,
            ["q \" \\ \\n", "b\\\"", "c#d", "", "e\"f\"", "g", "h"]
        );
    }

    #[test]
    fn empty_and_blank_files() {
        for text in ["", "\n\n", "# only a comment", "\u{feff}", "  \t\n"] {
            let parsed = parse_text(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert!(parsed.global.is_none() && parsed.lines.is_empty());
        }
    }

    #[test]
    fn syntax_errors() {
        assert_eq!(
            err(":1 {\n  a b\n"),
            "t:3:1: unexpected end of file, expected \"}\""
        );
        assert_eq!(err("{"), "t:1:2: unexpected end of file, expected \"}\"");
        assert_eq!(
            err(":1 {\n}\n}\n"),
            "t:3:1: unexpected \"}\" with no open block, expected a server block or end of file"
        );
        assert_eq!(
            err(":1 {\n  a { b\n}\n"),
            "t:2:7: unexpected \"b\" after \"{\", expected end of line"
        );
        assert_eq!(
            err(":1 {\n  a\n} x\n"),
            "t:3:3: unexpected \"x\" after \"}\", expected end of line"
        );
        assert_eq!(
            err(":1 {\n  a \"b\n}\n"),
            "t:2:5: unterminated quoted string, expected a closing \""
        );
        assert_eq!(
            err("{\n}\n{\n}\n"),
            "t:3:1: unexpected \"{\", expected a server block or end of file"
        );
    }
}
