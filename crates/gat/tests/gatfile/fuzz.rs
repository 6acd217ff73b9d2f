//! Random and mutated inputs must never panic (or hang): every outcome is a config or an `Error`.
//!
//! A deterministic xorshift generator keeps failures reproducible without a dependency. Imports are
//! answered by an in-memory environment so mutated `import` lines cannot reach the real file system.

use std::io;
use std::path::{Path, PathBuf};

use gat::Environment;

struct NoFiles;

impl Environment for NoFiles {
    fn var(&self, name: &str) -> Option<String> {
        name.len().is_multiple_of(2).then(|| "x }{ \"".to_owned())
    }

    fn read(&self, path: &Path) -> io::Result<String> {
        // Every file imports itself (by its name, relative to its own directory), so imports end in a
        // cycle error at once rather than fanning out.
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(format!(":1 {{\n import {name}\n}}\nimport {name}\n"))
    }

    fn list(&self, _: &Path) -> io::Result<Vec<PathBuf>> {
        Ok(vec![PathBuf::from("x1"), PathBuf::from("x2")])
    }
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const PIECES: &[&str] = &[
    "{",
    "}",
    "\n",
    " ",
    "\t",
    "\"",
    "`",
    "\\",
    "#",
    "@",
    "/",
    "*",
    ":",
    "(",
    ")",
    "{$",
    "{$A:b}",
    "{$AB}",
    "import",
    "pool",
    "basic",
    "session",
    "address",
    "user",
    "not",
    "or",
    "and",
    "@m",
    "trust",
    "password",
    "5432",
    "1s",
    "é",
    "\r\n",
    "[::1]",
    "max_connections",
    "min_connections",
    "reconnect",
    "track",
    "=",
    "off",
    "0",
    "99999999999999999999",
];

#[test]
fn random_and_mutated_inputs_never_panic() {
    let corpus: Vec<String> = super::corpus("testdata/valid")
        .into_iter()
        .chain(super::corpus("testdata/invalid"))
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .collect();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut parsed = 0;
    for round in 0..3000 {
        let input = if round % 3 == 0 {
            // Random soup of Gatfile-ish pieces.
            (0..rng.below(60))
                .map(|_| PIECES[rng.below(PIECES.len())])
                .collect::<String>()
        } else {
            // A corpus file with a few pieces inserted, deleted or swapped.
            let mut text: Vec<char> = corpus[rng.below(corpus.len())].chars().collect();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(text.len() + 1);
                match rng.below(3) {
                    0 => {
                        let piece = PIECES[rng.below(PIECES.len())];
                        text.splice(at..at, piece.chars());
                    }
                    1 if at < text.len() => {
                        let end = (at + 1 + rng.below(8)).min(text.len());
                        text.drain(at..end);
                    }
                    _ => {
                        let other = rng.below(text.len() + 1);
                        if at < text.len() && other < text.len() {
                            text.swap(at, other);
                        }
                    }
                }
            }
            text.into_iter().collect()
        };
        if gat::parse_str_with("fuzz/Gatfile", &input, &NoFiles).is_ok() {
            parsed += 1;
        }
        let _ = gat::Config::from_json("fuzz.json", &input);
    }
    // Some mutations are harmless (a swapped comment character), so some inputs still parse.
    assert!(parsed > 0);
}

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    let depth = 100_000;
    let text = format!(
        ":1 {{\n{}{}}}\n",
        "a {\n".repeat(depth),
        "}\n".repeat(depth)
    );
    let err = gat::parse_str_with("Gatfile", &text, &NoFiles)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert_eq!(
        err,
        "Gatfile:65:3: blocks nested more than 64 deep, expected fewer nested blocks"
    );
}

#[test]
fn self_importing_files_terminate() {
    let err = gat::parse_str_with("Gatfile", "import a\n", &NoFiles)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("import cycle"), "{err}");
}

/// Every file imports two new files that each import two more...: no cycle, so only the limits stop it.
struct FanOut;

impl Environment for FanOut {
    fn var(&self, _: &str) -> Option<String> {
        None
    }

    fn read(&self, _: &Path) -> io::Result<String> {
        Ok("import d/*\n".to_owned())
    }

    fn list(&self, _: &Path) -> io::Result<Vec<PathBuf>> {
        Ok(vec![PathBuf::from("a"), PathBuf::from("b")])
    }
}

#[test]
fn import_fan_out_is_bounded() {
    let err = gat::parse_str_with("Gatfile", "import d/*\n", &FanOut)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("imports nested more than 32 deep")
            || err.contains("files read through imports"),
        "{err}"
    );
    let text = ":1 {\n    import d/*\n}\n";
    let err = gat::parse_str_with("Gatfile", text, &FanOut)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("imports nested more than 32 deep")
            || err.contains("files read through imports"),
        "{err}"
    );
}

/// Two files side by side, each imported many times: no nesting, only the read count stops it.
struct Wide;

impl Environment for Wide {
    fn var(&self, _: &str) -> Option<String> {
        None
    }

    fn read(&self, _: &Path) -> io::Result<String> {
        Ok("trust\n".to_owned())
    }

    fn list(&self, _: &Path) -> io::Result<Vec<PathBuf>> {
        Ok(Vec::new())
    }
}

#[test]
fn repeated_imports_are_bounded() {
    let text = format!(":1 {{\n{}}}\n", "    import f\n".repeat(1500));
    let err = gat::parse_str_with("Gatfile", &text, &Wide)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert_eq!(
        err,
        "Gatfile:1002:12: more than 1000 files read through imports, expected fewer imports (is a file imported many times over?)"
    );
}

#[test]
fn snippet_bombs_are_bounded() {
    let body = "    a {\n".to_owned() + &"        b\n".repeat(1000) + "    }\n";
    let text = format!(
        "(big) {{\n{body}}}\n:1 {{\n{}}}\n",
        "    import big\n".repeat(200)
    );
    let err = gat::parse_str_with("Gatfile", &text, &Wide)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("more than 100000 directives after imports"),
        "{err}"
    );
}

#[test]
fn long_not_chains_are_refused_not_overflowed() {
    let text = format!(
        ":1 {{\n    @m {}user x\n    trust @m\n}}\n",
        "not ".repeat(10_000)
    );
    let err = gat::parse_str_with("Gatfile", &text, &Wide)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.starts_with("Gatfile:2:")
            && err.contains("matcher conditions nested more than 32 deep"),
        "{err}"
    );
}
