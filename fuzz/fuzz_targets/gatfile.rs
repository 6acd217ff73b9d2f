//! The Gatfile parser and interpreter (pest grammar, env substitution,
//! snippets, imports, matchers, every handler): any text is a config or an
//! error with a position, never a panic.
#![no_main]
#![forbid(unsafe_code)]

use std::io;
use std::path::{Path, PathBuf};

use libfuzzer_sys::fuzz_target;

/// One environment variable; an import reads a small fixed file (the
/// input itself would make every import re-parse all of it, and an input
/// full of imports cost seconds), directories are empty.
struct Env;

/// What every imported file holds.
const IMPORTED: &str = "(snippet) {\n    max_connections 5\n}\n@named user alice\n";

impl gat::Environment for Env {
    fn var(&self, name: &str) -> Option<String> {
        (name == "SET").then(|| "value".to_owned())
    }

    fn read(&self, _path: &Path) -> io::Result<String> {
        Ok(IMPORTED.to_owned())
    }

    fn list(&self, _dir: &Path) -> io::Result<Vec<PathBuf>> {
        Ok(Vec::new())
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = gat::parse_str_with("Gatfile", text, &Env) {
        // Every error says where.
        let _ = e.to_string();
    }
    // The JSON form too.
    let _ = serde_json::from_str::<gat::Config>(text);
});
