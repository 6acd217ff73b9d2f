//! Named matcher definitions and their conditions.
//!
//! `@name COND ARGS...` (inline, one condition) or `@name { COND ARGS... \n ... }` (block, all must
//! hold). Conditions: `user GLOB`, `database GLOB`, `ssl [true|false]`, `parameter NAME=GLOB`,
//! `not COND...` / `not { ... }`, `and { ... }`, `or { ... }`. A block of one condition is that condition.

use super::{Line, flag, unknown};
use crate::error::{Error, Result};
use crate::glob::Glob;
use crate::matcher::Matcher;
use crate::syntax::{Block, Directive};

const KNOWN: &[&str] = &[
    "and",
    "database",
    "local_address",
    "not",
    "or",
    "parameter",
    "ssl",
    "user",
];

/// Matchers nested deeper than this (`not not not ...` on one line, or blocks in blocks) are refused: the
/// parse and every evaluation recurse once per level.
const MAX_DEPTH: usize = 32;

/// A `@name ...` line.
pub(super) fn named(d: &Directive) -> Result<Matcher> {
    match d.args.split_first() {
        Some((first, rest)) => condition(
            &Directive {
                name: first.clone(),
                args: rest.to_vec(),
                block: d.block.clone(),
            },
            0,
        ),
        None => {
            let block =
                Line::new(d).block("a condition such as `user GLOB`, or \"{\" and conditions")?;
            all(block, &d.name.text, 0)
        }
    }
}

/// The conditions of a block, all of which must hold.
fn all(block: &Block, owner: &str, depth: usize) -> Result<Matcher> {
    let mut conditions = block
        .directives
        .iter()
        .map(|d| condition(d, depth + 1))
        .collect::<Result<Vec<_>>>()?;
    match conditions.len() {
        0 => Err(Error::at(
            &block.open,
            format!("empty block for {owner}"),
            "at least one condition",
        )),
        1 => Ok(conditions.remove(0)),
        _ => Ok(Matcher::And(conditions)),
    }
}

fn condition(d: &Directive, depth: usize) -> Result<Matcher> {
    if depth > MAX_DEPTH {
        return Err(Error::at(
            &d.name.pos,
            format!("matcher conditions nested more than {MAX_DEPTH} deep"),
            "a simpler matcher",
        ));
    }
    let mut line = Line::new(d);
    match d.name.text.as_str() {
        "user" => Ok(Matcher::User(Glob::new(
            &line.single("a user name or glob")?.text,
        ))),
        "database" => Ok(Matcher::Database(Glob::new(
            &line.single("a database name or glob")?.text,
        ))),
        "ssl" => Ok(Matcher::Ssl(flag(&mut line)?)),
        "local_address" => Ok(Matcher::LocalAddress(Glob::new(
            &line.single("an address or glob such as *:5433")?.text,
        ))),
        "parameter" => {
            let token = line.single("name=value")?;
            let Some((name, value)) = token.text.split_once('=').filter(|(k, _)| !k.is_empty())
            else {
                return Err(super::invalid(token, "parameter", "name=value"));
            };
            Ok(Matcher::Parameter {
                name: name.to_owned(),
                value: Glob::new(value),
            })
        }
        "not" => {
            let inner = match d.args.split_first() {
                Some((first, rest)) => condition(
                    &Directive {
                        name: first.clone(),
                        args: rest.to_vec(),
                        block: d.block.clone(),
                    },
                    depth + 1,
                )?,
                None => all(
                    line.block("a condition, or \"{\" and conditions")?,
                    "not",
                    depth,
                )?,
            };
            Ok(Matcher::Not(Box::new(inner)))
        }
        "and" | "or" => {
            line.end()?;
            let block = line.block("\"{\" and conditions")?;
            let mut conditions = block
                .directives
                .iter()
                .map(|d| condition(d, depth + 1))
                .collect::<Result<Vec<_>>>()?;
            if conditions.is_empty() {
                return Err(Error::at(
                    &block.open,
                    format!("empty block for {}", d.name.text),
                    "at least one condition",
                ));
            }
            if conditions.len() == 1 {
                return Ok(conditions.remove(0));
            }
            Ok(if d.name.text == "and" {
                Matcher::And(conditions)
            } else {
                Matcher::Or(conditions)
            })
        }
        _ => Err(unknown(d, "matcher condition", KNOWN)),
    }
}
