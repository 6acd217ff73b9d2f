//! `*` wildcard patterns for user names, database names and import file names.
//!
//! Only `*` is special (any run of characters, including none); everything else matches itself,
//! case-sensitively, as PostgreSQL compares role and database names. The pattern is split at its stars
//! once, when the config loads, so matching a connection is a handful of `starts_with`/`find` calls.

use std::fmt;

/// A compiled `*` pattern. Serialises as its source text.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(from = "String", into = "String")]
pub struct Glob {
    source: String,
    /// The literal pieces between stars; `parts.len() == stars + 1`.
    parts: Vec<String>,
}

impl Glob {
    /// Compiles a pattern. Every string is a valid pattern.
    pub fn new(pattern: &str) -> Glob {
        Glob {
            source: pattern.to_owned(),
            parts: pattern.split('*').map(str::to_owned).collect(),
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the pattern contains a `*`.
    pub fn is_wildcard(&self) -> bool {
        self.parts.len() > 1
    }

    /// Whether `text` matches the whole pattern.
    ///
    /// The first piece must be a prefix and the last a suffix; the middle pieces are found left to right,
    /// each as early as possible, which is exact for patterns whose only wildcard is `*`.
    pub fn matches(&self, text: &str) -> bool {
        let (first, rest) = match self.parts.split_first() {
            Some(split) => split,
            None => return text.is_empty(),
        };
        let Some((last, middle)) = rest.split_last() else {
            return text == first;
        };
        if text.len() < first.len() + last.len()
            || !text.starts_with(first.as_str())
            || !text.ends_with(last.as_str())
        {
            return false;
        }
        let mut inner = &text[first.len()..text.len() - last.len()];
        for part in middle {
            match inner.find(part.as_str()) {
                Some(at) => inner = &inner[at + part.len()..],
                None => return false,
            }
        }
        true
    }
}

impl PartialEq for Glob {
    fn eq(&self, other: &Glob) -> bool {
        self.source == other.source
    }
}

impl Eq for Glob {}

impl fmt::Debug for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Glob({:?})", self.source)
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl From<String> for Glob {
    fn from(source: String) -> Glob {
        Glob::new(&source)
    }
}

impl From<Glob> for String {
    fn from(glob: Glob) -> String {
        glob.source
    }
}

#[cfg(test)]
mod tests {
    use super::Glob;

    fn m(pattern: &str, text: &str) -> bool {
        Glob::new(pattern).matches(text)
    }

    #[test]
    fn literal() {
        assert!(m("bob", "bob"));
        assert!(!m("bob", "Bob"));
        assert!(!m("bob", "bobby"));
        assert!(!m("bob", ""));
        assert!(m("", ""));
        assert!(!m("", "x"));
    }

    #[test]
    fn star_alone_matches_everything() {
        assert!(m("*", ""));
        assert!(m("*", "anything at all"));
        assert!(m("**", "x"));
    }

    #[test]
    fn prefix_suffix_middle() {
        assert!(m("app*", "app"));
        assert!(m("app*", "app_prod"));
        assert!(!m("app*", "ap"));
        assert!(!m("app*", "myapp"));
        assert!(m("*_ro", "bob_ro"));
        assert!(m("*_ro", "_ro"));
        assert!(!m("*_ro", "bob_rw"));
        assert!(m("a*z", "az"));
        assert!(m("a*z", "abcz"));
        assert!(!m("a*z", "abc"));
        assert!(!m("a*a", "a"), "prefix and suffix must not overlap");
        assert!(m("a*b*c", "abc"));
        assert!(m("a*b*c", "a_b_b_c"));
        assert!(!m("a*b*c", "acb"));
        assert!(m("*b*", "abc"));
        assert!(!m("*b*", "ac"));
        assert!(m("é*ü", "éaü"));
    }

    #[test]
    fn serialises_as_source() {
        let glob = Glob::new("app*");
        let json = serde_json::to_string(&glob).unwrap_or_default();
        assert_eq!(json, "\"app*\"");
        let back: Glob = serde_json::from_str(&json).unwrap_or_else(|_| Glob::new(""));
        assert_eq!(back, glob);
        assert!(back.matches("app1"));
    }
}
