//! Where a mistake is, and the one error type of the crate.
//!
//! Every message has the shape `FILE:LINE:COL: <what was found>, expected <what>` so an operator can jump
//! straight to the spot, whether the mistake is a syntax error, an unknown directive, a bad value or a
//! cross-check that failed during validation.

use std::fmt;
use std::sync::Arc;

/// A position in a configuration file: the file as it was named (relative paths stay relative), the
/// 1-based line and the 1-based column counted in characters.
///
/// `line == 0` means "somewhere in this file": used for configs read from JSON, where the typed value no
/// longer knows which line it came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pos {
    /// The file, as named by the caller or by the `import` that pulled it in.
    pub file: Arc<str>,
    /// 1-based line, or 0 when only the file is known.
    pub line: u32,
    /// 1-based column in characters, or 0 when only the file is known.
    pub col: u32,
}

impl Pos {
    /// A position that only names a file (JSON configs, unreadable files).
    pub fn file_only(file: impl Into<Arc<str>>) -> Pos {
        Pos {
            file: file.into(),
            line: 0,
            col: 0,
        }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.file)
        } else {
            write!(f, "{}:{}:{}", self.file, self.line, self.col)
        }
    }
}

/// Where a typed config item was written, kept so that validation and the binary's later messages (a pool
/// that cannot connect, a reload that failed) can point at the Gatfile line.
///
/// A span never takes part in equality and is not serialised: two configs that mean the same thing are
/// equal wherever their items were written, which is what a reload diff wants (moving a pool down three
/// lines must not drain it) and what the JSON round trip needs.
#[derive(Debug, Clone, Default)]
pub struct Span(pub Option<Pos>);

impl PartialEq for Span {
    fn eq(&self, _: &Span) -> bool {
        true
    }
}

impl Span {
    /// The span of an item written at `pos`.
    pub fn at(pos: &Pos) -> Span {
        Span(Some(pos.clone()))
    }
}

/// Everything that can go wrong while reading a configuration.
///
/// Only the first mistake is reported: later ones are often consequences of the first (an unterminated
/// block swallows the rest of the file), and one precise message is what a reload log needs.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// A mistake at a known place: syntax, an unknown directive, a bad value, a failed cross-check.
    #[error("{pos}: {found}, expected {expected}")]
    At {
        /// Where it is.
        pos: Pos,
        /// What was found there, e.g. `unknown directive "pol"`.
        found: String,
        /// What would have been accepted, e.g. `one of: pool, password, trust`.
        expected: String,
    },
    /// The JSON form did not deserialise (serde's own message, which already says what it expected).
    #[error("{pos}: {message}")]
    Json {
        /// Where serde stopped.
        pos: Pos,
        /// serde_json's message without its trailing `at line .. column ..`.
        message: String,
    },
}

impl Error {
    /// The usual shape: something unexpected at `pos`.
    pub(crate) fn at(pos: &Pos, found: impl Into<String>, expected: impl Into<String>) -> Error {
        Error::At {
            pos: pos.clone(),
            found: found.into(),
            expected: expected.into(),
        }
    }

    /// Where the mistake is.
    pub fn pos(&self) -> &Pos {
        match self {
            Error::At { pos, .. } | Error::Json { pos, .. } => pos,
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
