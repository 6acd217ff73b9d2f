//! `import` and snippets: splicing other files' and snippets' lines in place.
//!
//! `import NAME` names a snippet when a snippet `(NAME) { ... }` is defined at the top level of any file
//! read so far (for imports inside blocks: anywhere at the top level), otherwise a file or a glob whose
//! last path component may hold `*`, relative to the directory of the file that has the `import`. Spliced
//! tokens keep the positions of the file they were written in, so a mistake in an imported file is
//! reported with that file's name, line and column. An import that would re-enter a file or snippet
//! already being imported is a cycle and an error.
//!
//! Resolution is two passes: first the top level of the main file (top-level imports, snippet
//! definitions, server blocks), then the inside of every block, so a snippet may be defined after the
//! server block that uses it.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use super::Environment;
use super::parse::{Parsed, parse};
use super::source::Source;
use super::tree::{Block, Directive, Document, Token};
use crate::error::{Error, Pos, Result};
use crate::glob::Glob;

/// How deep imports may nest; a longer chain is almost certainly a cycle through differently spelled
/// paths (symlinks), and the limit also bounds the recursion.
const MAX_IMPORT_DEPTH: usize = 32;
/// How many directives a Gatfile may have once everything is spliced in, so that a file importing
/// another twice, which imports another twice, ... cannot grow without bound.
const MAX_DIRECTIVES: usize = 100_000;
/// How many files one Gatfile may read through imports, counting a file each time it is imported.
const MAX_FILE_READS: usize = 1_000;

struct Snippet {
    directives: Vec<Directive>,
    /// Directives in the body, nested ones included: what one splice costs.
    size: usize,
}

pub(crate) struct Expander<'a> {
    env: &'a dyn Environment,
    snippets: HashMap<String, Snippet>,
    /// The files and snippets being imported right now, outermost first, for cycle detection.
    stack: Vec<String>,
    directives: usize,
    reads: usize,
}

enum Target {
    Snippet(String),
    Files(Vec<PathBuf>),
}

impl<'a> Expander<'a> {
    pub(crate) fn new(env: &'a dyn Environment) -> Expander<'a> {
        Expander {
            env,
            snippets: HashMap::new(),
            stack: Vec::new(),
            directives: 0,
            reads: 0,
        }
    }

    pub(crate) fn document(mut self, name: &str, text: &str) -> Result<Document> {
        let parsed = self.parse_text(name, text)?;
        self.stack.push(normalize(Path::new(name)));
        let mut servers = Vec::new();
        self.top_level(parsed.lines, &mut servers)?;
        self.stack.pop();
        let global = match parsed.global {
            Some(block) => Some(self.block(block)?),
            None => None,
        };
        for server in &mut servers {
            if let Some(block) = server.block.take() {
                server.block = Some(self.block(block)?);
            }
        }
        Ok(Document { global, servers })
    }

    fn parse_text(&mut self, name: &str, text: &str) -> Result<Parsed> {
        let env = |var: &str| self.env.var(var);
        let src = Source::new(Arc::from(name), text, &env);
        let parsed = parse(&src)?;
        let global = parsed.global.as_ref().map_or(0, |b| size(&b.directives));
        self.count(
            size(&parsed.lines) + global,
            &Pos {
                file: src.file.clone(),
                line: 1,
                col: 1,
            },
        )?;
        Ok(parsed)
    }

    fn count(&mut self, n: usize, pos: &Pos) -> Result<()> {
        self.directives = self.directives.saturating_add(n);
        if self.directives > MAX_DIRECTIVES {
            return Err(Error::at(
                pos,
                format!("more than {MAX_DIRECTIVES} directives after imports"),
                "a smaller configuration (is a file imported many times over?)",
            ));
        }
        Ok(())
    }

    /// First pass over a file's top level: splices top-level imports, records snippets, keeps server blocks.
    fn top_level(&mut self, lines: Vec<Directive>, servers: &mut Vec<Directive>) -> Result<()> {
        for line in lines {
            if line.name.is_word("import") {
                let (key_and_lines, arg) = self.resolve(&line)?;
                for (key, lines) in key_and_lines {
                    self.enter(key, &arg)?;
                    self.top_level(lines, servers)?;
                    self.stack.pop();
                }
            } else if let Some(name) = snippet_name(&line.name) {
                self.define(name, line)?;
            } else {
                servers.push(line);
            }
        }
        Ok(())
    }

    fn define(&mut self, name: String, line: Directive) -> Result<()> {
        if let Some(extra) = line.args.first() {
            return Err(Error::at(
                &extra.pos,
                format!(
                    "unexpected {:?} after snippet name {:?}",
                    extra.text, line.name.text
                ),
                "\"{\"",
            ));
        }
        let Some(block) = line.block else {
            return Err(Error::at(
                &line.name.pos,
                format!("snippet {:?} without a block", line.name.text),
                "\"{\" at the end of the line",
            ));
        };
        if self.snippets.contains_key(&name) {
            return Err(Error::at(
                &line.name.pos,
                format!("duplicate snippet {:?}", line.name.text),
                "a new name",
            ));
        }
        let size = size(&block.directives);
        self.snippets.insert(
            name,
            Snippet {
                directives: block.directives,
                size,
            },
        );
        Ok(())
    }

    /// Second pass: splices imports inside a block, recursively.
    fn block(&mut self, block: Block) -> Result<Block> {
        Ok(Block {
            open: block.open,
            directives: self.lines(block.directives)?,
        })
    }

    fn lines(&mut self, lines: Vec<Directive>) -> Result<Vec<Directive>> {
        let mut out = Vec::with_capacity(lines.len());
        for mut line in lines {
            if line.name.is_word("import") {
                let (key_and_lines, arg) = self.resolve(&line)?;
                for (key, lines) in key_and_lines {
                    self.enter(key, &arg)?;
                    out.extend(self.lines(lines)?);
                    self.stack.pop();
                }
            } else {
                if let Some(block) = line.block.take() {
                    line.block = Some(self.block(block)?);
                }
                out.push(line);
            }
        }
        Ok(out)
    }

    /// Pushes an import onto the stack, refusing cycles and over-deep chains.
    fn enter(&mut self, key: String, arg: &Token) -> Result<()> {
        if let Some(first) = self.stack.iter().position(|k| *k == key) {
            let mut chain: Vec<&str> = self.stack[first..].iter().map(String::as_str).collect();
            chain.push(&key);
            return Err(Error::at(
                &arg.pos,
                format!("import cycle {}", chain.join(" -> ")),
                "imports that do not lead back to themselves",
            ));
        }
        if self.stack.len() >= MAX_IMPORT_DEPTH {
            return Err(Error::at(
                &arg.pos,
                format!("imports nested more than {MAX_IMPORT_DEPTH} deep"),
                "a shorter chain of imports",
            ));
        }
        self.stack.push(key);
        Ok(())
    }

    /// What an `import` line brings in: for each snippet or file, its stack key and its lines.
    #[allow(clippy::type_complexity)]
    fn resolve(&mut self, line: &Directive) -> Result<(Vec<(String, Vec<Directive>)>, Token)> {
        let Some(arg) = line.args.first() else {
            return Err(Error::at(
                &line.name.pos,
                "missing value for import",
                "a file, a glob or a snippet name",
            ));
        };
        if let Some(extra) = line.args.get(1) {
            return Err(Error::at(
                &extra.pos,
                format!("extra argument {:?} to import", extra.text),
                "end of line",
            ));
        }
        if let Some(block) = &line.block {
            return Err(Error::at(
                &block.open,
                "unexpected block after import",
                "end of line",
            ));
        }
        let mut out = Vec::new();
        match self.target(arg)? {
            Target::Snippet(name) => {
                let weight = self.snippets.get(&name).map_or(0, |s| s.size);
                // Counted before cloning, so a snippet spliced a million times fails before it is copied.
                self.count(weight, &arg.pos)?;
                let lines = self
                    .snippets
                    .get(&name)
                    .map(|s| s.directives.clone())
                    .unwrap_or_default();
                out.push((format!("({name})"), lines));
            }
            Target::Files(paths) => {
                for path in paths {
                    let name = path.to_string_lossy().into_owned();
                    let key = normalize(&path);
                    if self.stack.contains(&key) {
                        // Report the cycle before reading the file again.
                        out.push((key, Vec::new()));
                        continue;
                    }
                    self.reads += 1;
                    if self.reads > MAX_FILE_READS {
                        return Err(Error::at(
                            &arg.pos,
                            format!("more than {MAX_FILE_READS} files read through imports"),
                            "fewer imports (is a file imported many times over?)",
                        ));
                    }
                    let text = self.env.read(&path).map_err(|e| {
                        let why = match e.kind() {
                            std::io::ErrorKind::NotFound => "file not found".to_owned(),
                            _ => e.to_string(),
                        };
                        Error::at(
                            &arg.pos,
                            format!("cannot import {:?}: {why}", name),
                            "an existing file, a glob or a snippet name",
                        )
                    })?;
                    let parsed = self.parse_text(&name, &text)?;
                    if let Some(global) = parsed.global {
                        return Err(Error::at(
                            &global.open,
                            "global options block in an imported file",
                            "directives or server blocks (global options belong at the top of the main Gatfile)",
                        ));
                    }
                    out.push((key, parsed.lines));
                }
            }
        }
        Ok((out, arg.clone()))
    }

    fn target(&self, arg: &Token) -> Result<Target> {
        if self.snippets.contains_key(&arg.text) {
            return Ok(Target::Snippet(arg.text.clone()));
        }
        let base = Path::new(&*arg.pos.file).parent().unwrap_or(Path::new(""));
        let path = base.join(&arg.text);
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !file_name.contains('*') {
            if path
                .parent()
                .is_some_and(|dir| dir.to_string_lossy().contains('*'))
            {
                return Err(glob_in_dir(arg));
            }
            return Ok(Target::Files(vec![path]));
        }
        let dir = path.parent().unwrap_or(Path::new("")).to_path_buf();
        if dir.to_string_lossy().contains('*') {
            return Err(glob_in_dir(arg));
        }
        let glob = Glob::new(&file_name);
        let entries = self.env.list(&dir).map_err(|e| {
            Error::at(
                &arg.pos,
                format!("cannot list {:?} for import: {e}", dir.to_string_lossy()),
                "an existing directory",
            )
        })?;
        let mut paths: Vec<PathBuf> = entries
            .into_iter()
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| glob.matches(&n.to_string_lossy()))
            })
            .map(|p| dir.join(p.file_name().unwrap_or_default()))
            .collect();
        paths.sort();
        Ok(Target::Files(paths))
    }
}

fn glob_in_dir(arg: &Token) -> Error {
    Error::at(
        &arg.pos,
        format!("wildcard in a directory of import {:?}", arg.text),
        "`*` in the file name only",
    )
}

/// How many directives `lines` holds, nested ones included. Recursion is bounded by the parser's nesting
/// limit.
fn size(lines: &[Directive]) -> usize {
    lines
        .iter()
        .map(|d| 1 + d.block.as_ref().map_or(0, |b| size(&b.directives)))
        .sum()
}

/// `(name)` as the only key of a top-level line defines a snippet.
fn snippet_name(token: &Token) -> Option<String> {
    if token.quoted {
        return None;
    }
    let inner = token.text.strip_prefix('(')?.strip_suffix(')')?;
    (!inner.is_empty()).then(|| inner.to_owned())
}

/// A path with `.` and `name/..` removed, so `./a`, `a` and `b/../a` are the same import.
fn normalize(path: &Path) -> String {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if matches!(out.components().next_back(), Some(Component::Normal(_))) {
                    out.pop();
                } else {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out.to_string_lossy().into_owned()
}
