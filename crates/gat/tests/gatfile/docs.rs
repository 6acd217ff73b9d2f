//! The examples in docs/gatfile.md are real: every fenced block marked `<!-- check: KIND -->` parses
//! (snippets wrapped in the smallest server or pool block around them; the import example with the
//! file it imports beside it), the mistake shown is the corpus file it names, and the JSON shown is
//! exactly what `adapt --pretty` prints for the example marked `json-source`.

use std::io;
use std::path::{Path, PathBuf};

use gat::{Environment, System};

/// The file the reference's import example imports, as the reference shows it.
const POOLS_INC: &str = "pool /public {\n    address 127.0.0.1:5432\n    username public\n    password \"public-secret\"\n}\n";

/// The real environment, plus `pools.inc`.
struct WithPoolsInc;

impl Environment for WithPoolsInc {
    fn var(&self, name: &str) -> Option<String> {
        System.var(name)
    }

    fn read(&self, path: &Path) -> io::Result<String> {
        if path.file_name().is_some_and(|n| n == "pools.inc") {
            return Ok(POOLS_INC.to_owned());
        }
        System.read(path)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        System.list(dir)
    }
}

const DOC: &str = include_str!("../../../../docs/gatfile.md");

/// Each checked example: its kind, the marker's other words, the block's text and its line.
fn examples() -> Vec<(String, Vec<String>, String, usize)> {
    let lines: Vec<&str> = DOC.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(marker) = lines[i]
            .strip_prefix("<!-- check: ")
            .and_then(|m| m.strip_suffix(" -->"))
        else {
            i += 1;
            continue;
        };
        let mut words = marker.split_whitespace().map(str::to_owned);
        let kind = words.next().unwrap_or_default();
        let start = i + 1;
        assert!(
            lines[start].starts_with("```"),
            "line {}: a marker without a block",
            i + 1
        );
        let end = (start + 1..lines.len())
            .find(|&j| lines[j].starts_with("```"))
            .unwrap_or_else(|| panic!("line {}: unterminated block", start + 1));
        let text = lines[start + 1..end].join("\n") + "\n";
        out.push((kind, words.collect(), text, start + 1));
        i = end + 1;
    }
    out
}

fn indent(text: &str, n: usize) -> String {
    text.lines()
        .map(|l| {
            if l.is_empty() {
                String::new()
            } else {
                format!("{}{l}", " ".repeat(n))
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_example_in_the_reference_parses() {
    let mut checked = 0;
    let mut json_source = None;
    for (kind, words, text, line) in examples() {
        let gatfile = match kind.as_str() {
            "file" => text.clone(),
            "global" => {
                format!("{text}:6432 {{\n    pool * 127.0.0.1:5432 postgres postgres pw\n}}\n")
            }
            "server" => format!(":6432 {{\n{}\n}}\n", indent(&text, 4)),
            "pool" => format!(
                ":6432 {{\n    trust\n    pool * {{\n        address 127.0.0.1:5432\n{}\n    }}\n}}\n",
                indent(&text, 8)
            ),
            "imports" => {
                gat::parse_str_with("docs/gatfile.md", &text, &WithPoolsInc)
                    .unwrap_or_else(|e| panic!("docs/gatfile.md:{line}: {e}\n{text}"));
                checked += 1;
                continue;
            }
            "corpus" => {
                let name = words.first().expect("the corpus file's name");
                let file = std::fs::read_to_string(format!("testdata/invalid/{name}.gatfile"))
                    .unwrap_or_else(|e| panic!("docs/gatfile.md:{line}: {name}: {e}"));
                assert_eq!(
                    text, file,
                    "docs/gatfile.md:{line}: differs from the corpus"
                );
                let expect = file.lines().next().unwrap_or_default();
                let message = expect.strip_prefix("# expect: ").unwrap_or(expect);
                assert!(
                    DOC.contains(&format!("```text\n{message}\n```")),
                    "docs/gatfile.md:{line}: the message shown is not the corpus's"
                );
                checked += 1;
                continue;
            }
            "json" => {
                let source: &gat::Config =
                    json_source.as_ref().expect("a json-source example first");
                assert_eq!(
                    text.trim(),
                    source.to_json(true).trim(),
                    "docs/gatfile.md:{line}"
                );
                checked += 1;
                continue;
            }
            other => panic!("docs/gatfile.md:{line}: unknown check kind {other:?}"),
        };
        let config = gat::parse_str("docs/gatfile.md", &gatfile)
            .unwrap_or_else(|e| panic!("docs/gatfile.md:{line}: {e}\n{gatfile}"));
        if words.iter().any(|w| w == "json-source") {
            json_source = Some(config);
        }
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} examples checked");
}
