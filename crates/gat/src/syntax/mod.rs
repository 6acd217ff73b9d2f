//! Caddyfile syntax: text -> generic tree, with `{$ENV}`, `import` and snippets resolved.
//!
//! Steps, per file: substitute `{$ENV}` (`source`), parse with pest (`parse`), then splice imports
//! (`import`). Nothing here knows what a directive means; that is `crate::interpret`'s job.

mod import;
mod parse;
mod source;
mod tree;

use std::io;
use std::path::{Path, PathBuf};

pub use tree::{Block, Directive, Document, Token};

/// What parsing may read from outside the text it is given: environment variables for `{$NAME}` and files
/// for `import`. [`System`] reads the real ones; tests and fuzzers pass their own.
pub trait Environment {
    /// The value of an environment variable, `None` when unset.
    fn var(&self, name: &str) -> Option<String>;
    /// The text of an imported file.
    fn read(&self, path: &Path) -> io::Result<String>;
    /// The entries of a directory, for `import dir/*.gatfile`.
    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>>;
}

/// Files larger than this are refused: a Gatfile is a few kilobytes, and an `import` of the wrong path
/// (a log, a device) must fail rather than fill memory.
pub const MAX_FILE_SIZE: u64 = 16 * 1024 * 1024;

/// The real process environment and file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct System;

impl Environment for System {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var_os(name).map(|v| v.to_string_lossy().into_owned())
    }

    fn read(&self, path: &Path) -> io::Result<String> {
        use std::io::Read as _;
        let file = std::fs::File::open(path)?;
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file",
            ));
        }
        if meta.len() > MAX_FILE_SIZE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "larger than 16 MiB",
            ));
        }
        let mut text = String::new();
        file.take(MAX_FILE_SIZE + 1).read_to_string(&mut text)?;
        if text.len() as u64 > MAX_FILE_SIZE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "larger than 16 MiB",
            ));
        }
        Ok(text)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        std::fs::read_dir(dir)?
            .map(|entry| entry.map(|e| e.path()))
            .collect()
    }
}

/// Parses a whole Gatfile named `name` (the name in messages, and the base for relative imports).
pub fn parse_document(name: &str, text: &str, env: &dyn Environment) -> crate::Result<Document> {
    import::Expander::new(env).document(name, text)
}
