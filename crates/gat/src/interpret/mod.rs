//! The generic tree -> typed [`Config`]: one function per block kind, one match arm per directive.
//!
//! Adding a directive is adding a match arm (and its name to the block's `KNOWN` list, which the
//! "unknown directive" message prints). Every argument is consumed explicitly through [`Line`], which
//! turns a missing value, an extra argument or a stray block into a positioned error, so nothing is ever
//! silently ignored.

mod addr;
mod global;
mod matcher;
mod pool;
mod server;

use std::collections::HashMap;
use std::time::Duration;

use crate::config::Config;
use crate::duration;
use crate::error::{Error, Pos, Result};
use crate::syntax::{Block, Directive, Document, Token};

/// Interprets a parsed document. Validation runs afterwards, separately.
pub(crate) fn interpret(doc: &Document) -> Result<Config> {
    let global = match &doc.global {
        Some(block) => global::global(block)?,
        None => crate::config::Global::default(),
    };
    let servers = doc
        .servers
        .iter()
        .map(server::server)
        .collect::<Result<Vec<_>>>()?;
    Ok(Config { global, servers })
}

/// The "unknown directive" error for a block whose directives are `known`.
fn unknown(d: &Directive, kind: &str, known: &[&str]) -> Error {
    Error::at(
        &d.name.pos,
        format!("unknown {kind} {:?}", d.name.text),
        format!("one of: {}", known.join(", ")),
    )
}

/// A cursor over one directive's arguments.
pub(crate) struct Line<'a> {
    d: &'a Directive,
    next: usize,
}

impl<'a> Line<'a> {
    fn new(d: &'a Directive) -> Line<'a> {
        Line { d, next: 0 }
    }

    fn name(&self) -> &'a str {
        &self.d.name.text
    }

    fn pos(&self) -> &'a Pos {
        &self.d.name.pos
    }

    /// The next argument, which must be there.
    fn value(&mut self, expected: &str) -> Result<&'a Token> {
        match self.d.args.get(self.next) {
            Some(token) => {
                self.next += 1;
                Ok(token)
            }
            None => Err(Error::at(
                self.pos(),
                format!("missing value for {}", self.name()),
                expected,
            )),
        }
    }

    /// The next argument, if there is one.
    fn optional(&mut self) -> Option<&'a Token> {
        let token = self.d.args.get(self.next)?;
        self.next += 1;
        Some(token)
    }

    /// No arguments are left.
    fn end(&self) -> Result<()> {
        match self.d.args.get(self.next) {
            Some(extra) => Err(Error::at(
                &extra.pos,
                format!("extra argument {:?} to {}", extra.text, self.name()),
                "end of line",
            )),
            None => Ok(()),
        }
    }

    /// The line does not open a block.
    fn no_block(&self) -> Result<()> {
        match &self.d.block {
            Some(block) => Err(Error::at(
                &block.open,
                format!("unexpected block after {}", self.name()),
                "end of line",
            )),
            None => Ok(()),
        }
    }

    /// No arguments are left and there is no block: the line is fully used.
    fn done(&self) -> Result<()> {
        self.end()?;
        self.no_block()
    }

    /// The block the line opens, which must be there.
    fn block(&self, expected: &str) -> Result<&'a Block> {
        self.d.block.as_ref().ok_or_else(|| {
            Error::at(
                self.pos(),
                format!("missing block for {}", self.name()),
                expected,
            )
        })
    }

    /// A single-value setting: `NAME VALUE`, nothing more.
    fn single(&mut self, expected: &str) -> Result<&'a Token> {
        let token = self.value(expected)?;
        self.done()?;
        Ok(token)
    }
}

/// Remembers which once-only directives a block has had, to refuse a second one.
#[derive(Default)]
struct Once {
    seen: HashMap<String, Pos>,
}

impl Once {
    fn check(&mut self, d: &Directive) -> Result<()> {
        if let Some(first) = self.seen.get(&d.name.text) {
            return Err(Error::at(
                &d.name.pos,
                format!("duplicate {} (first set at {first})", d.name.text),
                format!("one {} line", d.name.text),
            ));
        }
        self.seen.insert(d.name.text.clone(), d.name.pos.clone());
        Ok(())
    }
}

fn invalid(token: &Token, setting: &str, expected: impl Into<String>) -> Error {
    Error::at(
        &token.pos,
        format!("invalid value {:?} for {setting}", token.text),
        expected,
    )
}

const NON_NEGATIVE: &str = "a non-negative integer";

fn uint(token: &Token, setting: &str) -> Result<u32> {
    if !token.text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(token, setting, NON_NEGATIVE));
    }
    token
        .text
        .parse()
        .map_err(|_| invalid(token, setting, format!("{NON_NEGATIVE} up to {}", u32::MAX)))
}

fn positive(token: &Token, setting: &str) -> Result<u32> {
    match uint(token, setting) {
        Ok(0) | Err(_) => Err(invalid(token, setting, "a positive integer")),
        Ok(n) => Ok(n),
    }
}

fn duration(token: &Token, setting: &str) -> Result<Duration> {
    duration::parse(&token.text).ok_or_else(|| invalid(token, setting, duration::EXPECTED))
}

/// A duration that must not be zero (a zero connect timeout would fail every dial).
fn nonzero_duration(token: &Token, setting: &str) -> Result<Duration> {
    match duration::parse(&token.text) {
        Some(d) if !d.is_zero() => Ok(d),
        _ => Err(invalid(
            token,
            setting,
            format!("{} (not zero)", duration::EXPECTED),
        )),
    }
}

fn duration_or_off(token: &Token, setting: &str) -> Result<Option<Duration>> {
    duration::parse_or_off(&token.text)
        .ok_or_else(|| invalid(token, setting, format!("{}, or off", duration::EXPECTED)))
}

/// One of a fixed set of words.
fn choice<T: Copy>(token: &Token, setting: &str, options: &[(&str, T)]) -> Result<T> {
    options
        .iter()
        .find(|(word, _)| token.is_word(word))
        .map(|(_, value)| *value)
        .ok_or_else(|| {
            let names: Vec<&str> = options.iter().map(|(word, _)| *word).collect();
            invalid(token, setting, format!("one of: {}", names.join(", ")))
        })
}

/// A flag: `NAME` alone is true, `NAME true|false` says which.
fn flag(line: &mut Line<'_>) -> Result<bool> {
    let value = match line.optional() {
        Some(token) => choice(
            token,
            line.name(),
            &[
                ("true", true),
                ("on", true),
                ("false", false),
                ("off", false),
            ],
        )?,
        None => true,
    };
    line.done()?;
    Ok(value)
}
