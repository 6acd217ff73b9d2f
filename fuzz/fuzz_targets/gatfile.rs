//! The Gatfile parser and interpreter (pest grammar, env substitution,
//! snippets, imports, matchers, every handler): any text is a config or an
//! error with a position, never a panic.
#![no_main]
#![forbid(unsafe_code)]

use std::io;
use std::path::{Path, PathBuf};

use libfuzzer_sys::fuzz_target;

/// No environment variables; any import reads the input itself once more
/// (so cycles are met), directories are empty.
struct Env<'a>(&'a str);

impl gat::Environment for Env<'_> {
    fn var(&self, name: &str) -> Option<String> {
        (name == "SET").then(|| "value".to_owned())
    }

    fn read(&self, _path: &Path) -> io::Result<String> {
        Ok(self.0.to_owned())
    }

    fn list(&self, _dir: &Path) -> io::Result<Vec<PathBuf>> {
        Ok(Vec::new())
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = gat::parse_str_with("Gatfile", text, &Env(text)) {
        // Every error says where.
        let _ = e.to_string();
    }
    // The JSON form too.
    let _ = serde_json::from_str::<gat::Config>(text);
});
