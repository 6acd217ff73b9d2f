//! The text of one file as the grammar sees it: `{$ENV}` placeholders substituted, with a map back to the
//! file as written so every position names the line and column the operator typed.
//!
//! Caddy substitutes environment variables before tokenising, so a value may hold several tokens, a
//! quote or a brace; we do the same. A placeholder is `{$NAME}` or `{$NAME:default}`: an unset variable
//! becomes its default, or nothing at all when it has none (so `max_connections {$UNSET}` is a missing
//! value, not the text `{$UNSET}`). One level only: a value is not substituted again. A `{$` with no `}`
//! before the end of the line, or an empty name, is left as written.

use std::sync::Arc;

use crate::error::Pos;

/// One run of the expanded text: either copied from the file or the value of one placeholder.
#[derive(Debug, Clone, Copy)]
struct Run {
    /// Start in the expanded text.
    expanded: usize,
    /// Start in the file; for a placeholder, the `{` of `{$`.
    original: usize,
    /// Whether the run was copied (offsets inside it map one to one) or substituted (everything maps to
    /// the placeholder).
    copied: bool,
}

/// A file's expanded text and the way back to its original positions.
pub(crate) struct Source {
    pub(crate) file: Arc<str>,
    pub(crate) text: String,
    runs: Vec<Run>,
    line_starts: Vec<usize>,
    original: String,
}

impl Source {
    /// Expands `{$...}` placeholders in `original`, looking variables up with `env`.
    pub(crate) fn new(
        file: Arc<str>,
        original: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Source {
        let mut text = String::with_capacity(original.len());
        let mut runs = vec![Run {
            expanded: 0,
            original: 0,
            copied: true,
        }];
        let mut copied_from = 0;
        let mut search = 0;
        while let Some(found) = original[search..].find("{$") {
            let start = search + found;
            let after = start + 2;
            let end = original[after..].find(['}', '\n']).map(|i| after + i);
            let Some(end) = end.filter(|&e| original.as_bytes()[e] == b'}') else {
                search = after;
                continue;
            };
            let inner = &original[after..end];
            let (name, default) = match inner.split_once(':') {
                Some((name, default)) => (name, Some(default)),
                None => (inner, None),
            };
            if name.is_empty() || name.contains([' ', '\t']) {
                search = after;
                continue;
            }
            let value = env(name)
                .or_else(|| default.map(str::to_owned))
                .unwrap_or_default();
            text.push_str(&original[copied_from..start]);
            runs.push(Run {
                expanded: text.len(),
                original: start,
                copied: false,
            });
            text.push_str(&value);
            copied_from = end + 1;
            runs.push(Run {
                expanded: text.len(),
                original: copied_from,
                copied: true,
            });
            search = copied_from;
        }
        text.push_str(&original[copied_from..]);
        let mut line_starts = vec![0];
        line_starts.extend(original.match_indices('\n').map(|(i, _)| i + 1));
        Source {
            file,
            text,
            runs,
            line_starts,
            original: original.to_owned(),
        }
    }

    /// The original byte offset of an offset in the expanded text.
    fn original_offset(&self, expanded: usize) -> usize {
        let index = self
            .runs
            .partition_point(|run| run.expanded <= expanded)
            .saturating_sub(1);
        match self.runs.get(index) {
            Some(run) if run.copied => run.original + (expanded - run.expanded),
            Some(run) => run.original,
            None => 0,
        }
    }

    /// The file position of an offset in the expanded text.
    pub(crate) fn pos(&self, expanded: usize) -> Pos {
        let offset = self.original_offset(expanded).min(self.original.len());
        let line = self
            .line_starts
            .partition_point(|&start| start <= offset)
            .max(1);
        let line_start = self.line_starts.get(line - 1).copied().unwrap_or(0);
        let col = self
            .original
            .get(line_start..offset)
            .map_or(0, |s| s.chars().count())
            + 1;
        Pos {
            file: self.file.clone(),
            line: u32::try_from(line).unwrap_or(u32::MAX),
            col: u32::try_from(col).unwrap_or(u32::MAX),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Source;

    fn env(name: &str) -> Option<String> {
        match name {
            "PORT" => Some("6432".to_owned()),
            "TWO" => Some("a b".to_owned()),
            _ => None,
        }
    }

    fn expand(text: &str) -> String {
        Source::new("t".into(), text, &env).text
    }

    #[test]
    fn substitutes() {
        assert_eq!(expand(":{$PORT} {"), ":6432 {");
        assert_eq!(expand("x {$UNSET} y"), "x  y");
        assert_eq!(expand("x {$UNSET:dflt} y"), "x dflt y");
        assert_eq!(expand("x {$PORT:dflt}"), "x 6432");
        assert_eq!(expand("{$TWO}"), "a b");
        assert_eq!(expand("{$} {$ X} {$OPEN\n}"), "{$} {$ X} {$OPEN\n}");
        assert_eq!(expand("{$PORT"), "{$PORT");
        assert_eq!(expand("é{$PORT}é"), "é6432é");
    }

    #[test]
    fn positions_point_into_the_file_as_written() {
        let src = Source::new("t".into(), "a {$PORT} b\n  {$UNSET:xyz} c", &env);
        assert_eq!(src.text, "a 6432 b\n  xyz c");
        let at = |needle: &str| {
            let offset = src.text.find(needle).unwrap_or(usize::MAX);
            let pos = src.pos(offset);
            (pos.line, pos.col)
        };
        assert_eq!(at("a"), (1, 1));
        assert_eq!(at("6432"), (1, 3));
        assert_eq!(at("32"), (1, 3), "inside a value: the placeholder");
        assert_eq!(at("b"), (1, 11));
        assert_eq!(at("xyz"), (2, 3));
        assert_eq!(at("c"), (2, 16));
        let end = src.pos(src.text.len());
        assert_eq!((end.line, end.col), (2, 17));
    }
}
