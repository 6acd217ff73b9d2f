//! The generic tree a Gatfile parses into, before any directive has a meaning.

use crate::error::Pos;

/// One token: a bare word, a `"quoted"` or a `` `backtick` `` string, with escapes already resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    /// The text, unquoted.
    pub text: String,
    /// Where the token starts (its opening quote, for a quoted token).
    pub pos: Pos,
    /// Whether it was quoted. A quoted token is never taken for a keyword, a brace, a matcher or an
    /// `import`, which is how a password that starts with `/` or `@` is written.
    pub quoted: bool,
}

impl Token {
    /// Whether this is the bare word `word` (not a quoted string that happens to read the same).
    pub fn is_word(&self, word: &str) -> bool {
        !self.quoted && self.text == word
    }
}

/// One line: a name, its arguments, and the block it opens, if it ends with `{`.
#[derive(Debug, Clone, PartialEq)]
pub struct Directive {
    /// The first token on the line.
    pub name: Token,
    /// The other tokens on the line.
    pub args: Vec<Token>,
    /// The nested block, when the line ends with `{`.
    pub block: Option<Block>,
}

/// A `{ ... }` block: its lines in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    /// Where the `{` is.
    pub open: Pos,
    /// The lines inside.
    pub directives: Vec<Directive>,
}

/// A whole Gatfile after imports and snippets have been spliced in.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The global options block, if the file starts with one.
    pub global: Option<Block>,
    /// The server blocks: the keys are the directive's name and arguments, the body its block.
    pub servers: Vec<Directive>,
}
