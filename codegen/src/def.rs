//! The model of `messages.def` and its line-based parser.
//!
//! The DSL is documented at the top of `codegen/messages.def`. Parsing is one
//! pass over the lines that builds the model; a second pass checks what needs
//! the whole file (tags unique per section, array element structs declared,
//! `rest` last...). Every error names the line and says what was expected.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A parse or validation error at a line of the definition file.
#[derive(Debug, PartialEq, Eq)]
pub struct Error {
    /// 1-based line number.
    pub line: usize,
    /// What was wrong and what was expected.
    pub msg: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.msg)
    }
}

fn err<T>(line: usize, msg: impl Into<String>) -> Result<T, Error> {
    Err(Error {
        line,
        msg: msg.into(),
    })
}

/// Which way a section's messages travel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Direction {
    /// Client to server, tagged.
    Frontend,
    /// Server to client, tagged.
    Backend,
    /// The untagged startup family.
    Startup,
}

impl Direction {
    /// The section keyword, also the generated module's name.
    pub fn keyword(self) -> &'static str {
        match self {
            Direction::Frontend => "frontend",
            Direction::Backend => "backend",
            Direction::Startup => "startup",
        }
    }
}

/// The whole file: its sections in file order.
#[derive(Debug, Default)]
pub struct Def {
    /// One entry per `section` line.
    pub sections: Vec<Section>,
}

/// The items of one `section`.
#[derive(Debug)]
pub struct Section {
    /// Which direction.
    pub dir: Direction,
    /// Composite array elements.
    pub structs: Vec<Struct>,
    /// Messages, in file order.
    pub messages: Vec<Message>,
    /// Tags shared by several messages.
    pub shared: Vec<Shared>,
}

/// `shared 'X' Name`.
#[derive(Debug)]
pub struct Shared {
    /// Doc comment.
    pub doc: Vec<String>,
    /// The tag.
    pub tag: u8,
    /// Variant name in the section enum.
    pub name: String,
    /// Where it was declared.
    pub line: usize,
}

/// `struct Name` and its fields.
#[derive(Debug)]
pub struct Struct {
    /// Doc comment.
    pub doc: Vec<String>,
    /// Type name.
    pub name: String,
    /// Fields in wire order.
    pub fields: Vec<Field>,
    /// Where it was declared.
    pub line: usize,
}

/// How a message is identified on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Head {
    /// A tag byte (frontend and backend).
    Tag(u8),
    /// A constant Int32 request code (startup).
    Code(i32),
    /// A protocol version field whose high 16 bits are this major (startup).
    Major(i32),
}

/// `message ...` and what follows it.
#[derive(Debug)]
pub struct Message {
    /// Doc comment.
    pub doc: Vec<String>,
    /// Type name.
    pub name: String,
    /// Tag, code or major version.
    pub head: Head,
    /// Fields, or union cases.
    pub body: Body,
    /// Where it was declared.
    pub line: usize,
}

/// A message's layout after its tag.
#[derive(Debug)]
pub enum Body {
    /// Plain fields in wire order.
    Fields(Vec<Field>),
    /// An Int32 subtype selecting one of the cases.
    Union(Vec<Case>),
}

/// `case Name N` in a union.
#[derive(Debug)]
pub struct Case {
    /// Doc comment.
    pub doc: Vec<String>,
    /// Variant name.
    pub name: String,
    /// The Int32 subtype.
    pub code: i32,
    /// Fields after the subtype.
    pub fields: Vec<Field>,
}

/// `name: shape [secret]`.
#[derive(Debug)]
pub struct Field {
    /// Doc comment.
    pub doc: Vec<String>,
    /// Rust field name.
    pub name: String,
    /// Wire shape.
    pub shape: Shape,
    /// Keep the value out of Debug output.
    pub secret: bool,
    /// Where it was declared.
    pub line: usize,
}

/// A field's wire shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Byte1.
    U8,
    /// Int16.
    I16,
    /// Int32.
    I32,
    /// NUL-terminated string.
    CStr,
    /// Exactly N bytes.
    Bytes(usize),
    /// Every remaining byte.
    Rest,
    /// Int32 length + bytes, -1 = NULL.
    NBytes,
    /// Int16 count + elements.
    Array(Elem),
    /// Int32 count + C strings.
    CStrList32,
    /// C strings ended by an empty one.
    CStrList,
    /// (key, value) C strings ended by an empty key.
    Pairs,
    /// (Byte1 code, C string) ended by a zero code.
    Fields,
}

impl Shape {
    /// Whether the Rust value borrows from the message (needs `'a`).
    pub fn borrows(&self) -> bool {
        !matches!(self, Shape::U8 | Shape::I16 | Shape::I32 | Shape::Bytes(_))
    }

    /// Whether the shape is self-delimiting and fixed-layout enough to be a
    /// struct (array element) field.
    pub fn is_scalar(&self) -> bool {
        matches!(
            self,
            Shape::U8 | Shape::I16 | Shape::I32 | Shape::CStr | Shape::Bytes(_) | Shape::NBytes
        )
    }
}

/// The element of an Int16-counted array.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Elem {
    /// Int16.
    I16,
    /// Int32.
    I32,
    /// Int32 length + bytes.
    NBytes,
    /// A `struct` of the same section.
    Struct(String),
}

/// Where fields currently go.
enum Open {
    Nothing,
    Struct,
    Message,
    Union,
    Case,
}

/// Parses and validates the definition file.
pub fn parse(src: &str) -> Result<Def, Error> {
    let mut def = Def::default();
    let mut doc: Vec<String> = Vec::new();
    let mut doc_line = 0;
    let mut open = Open::Nothing;
    for (i, raw) in src.lines().enumerate() {
        let line = i + 1;
        let text = raw.trim();
        if let Some(d) = text.strip_prefix("///") {
            if doc.is_empty() {
                doc_line = line;
            }
            doc.push(d.strip_prefix(' ').unwrap_or(d).trim_end().to_string());
            continue;
        }
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let words: Vec<&str> = text.split_whitespace().collect();
        let taken = std::mem::take(&mut doc);
        match words[0] {
            "section" => {
                let dir = match words.get(1..) {
                    Some(["frontend"]) => Direction::Frontend,
                    Some(["backend"]) => Direction::Backend,
                    Some(["startup"]) => Direction::Startup,
                    _ => return err(line, "expected `section frontend|backend|startup`"),
                };
                if def.sections.iter().any(|s| s.dir == dir) {
                    return err(line, format!("section {} appears twice", dir.keyword()));
                }
                if !taken.is_empty() {
                    return err(
                        doc_line,
                        "doc comment before `section`: nothing to attach it to",
                    );
                }
                def.sections.push(Section {
                    dir,
                    structs: Vec::new(),
                    messages: Vec::new(),
                    shared: Vec::new(),
                });
                open = Open::Nothing;
            }
            "struct" => {
                let sec = current(&mut def, line)?;
                let [_, name] = words[..] else {
                    return err(line, "expected `struct Name`");
                };
                type_name(line, name)?;
                sec.structs.push(Struct {
                    doc: taken,
                    name: name.to_string(),
                    fields: Vec::new(),
                    line,
                });
                open = Open::Struct;
            }
            "shared" => {
                let sec = current(&mut def, line)?;
                let [_, tag, name] = words[..] else {
                    return err(line, "expected `shared 'X' Name`");
                };
                let tag = tag_byte(line, tag)?;
                type_name(line, name)?;
                sec.shared.push(Shared {
                    doc: taken,
                    tag,
                    name: name.to_string(),
                    line,
                });
                open = Open::Nothing;
            }
            "message" => {
                let sec = current(&mut def, line)?;
                let (head, union) = match (sec.dir, &words[..]) {
                    (Direction::Startup, [_, _, "code", n]) => (Head::Code(int(line, n)?), false),
                    (Direction::Startup, [_, _, "major", n]) => (Head::Major(int(line, n)?), false),
                    (Direction::Startup, _) => {
                        return err(
                            line,
                            "expected `message Name code N` or `message Name major N` in section startup",
                        );
                    }
                    (_, [_, _, tag]) => (Head::Tag(tag_byte(line, tag)?), false),
                    (_, [_, _, tag, "union"]) => (Head::Tag(tag_byte(line, tag)?), true),
                    _ => {
                        return err(
                            line,
                            "expected `message Name 'X'` or `message Name 'X' union`",
                        );
                    }
                };
                let name = words[1];
                type_name(line, name)?;
                sec.messages.push(Message {
                    doc: taken,
                    name: name.to_string(),
                    head,
                    body: if union {
                        Body::Union(Vec::new())
                    } else {
                        Body::Fields(Vec::new())
                    },
                    line,
                });
                open = if union { Open::Union } else { Open::Message };
            }
            "case" => {
                let sec = current(&mut def, line)?;
                let [_, name, code] = words[..] else {
                    return err(line, "expected `case Name N`");
                };
                type_name(line, name)?;
                let code = int(line, code)?;
                let cases = match (&open, sec.messages.last_mut().map(|m| &mut m.body)) {
                    (Open::Union | Open::Case, Some(Body::Union(cases))) => cases,
                    _ => return err(line, "`case` outside a `message ... union`"),
                };
                cases.push(Case {
                    doc: taken,
                    name: name.to_string(),
                    code,
                    fields: Vec::new(),
                });
                open = Open::Case;
            }
            first if first.ends_with(':') => {
                let sec = current(&mut def, line)?;
                let field = field(line, &words, taken)?;
                let fields = match open {
                    Open::Struct => sec.structs.last_mut().map(|s| &mut s.fields),
                    Open::Message => match sec.messages.last_mut().map(|m| &mut m.body) {
                        Some(Body::Fields(f)) => Some(f),
                        _ => None,
                    },
                    Open::Case => match sec.messages.last_mut().map(|m| &mut m.body) {
                        Some(Body::Union(cases)) => cases.last_mut().map(|c| &mut c.fields),
                        _ => None,
                    },
                    Open::Union => {
                        return err(
                            line,
                            "a union's fields belong to a `case`: expected `case Name N` first",
                        );
                    }
                    Open::Nothing => None,
                };
                let Some(fields) = fields else {
                    return err(line, "field outside a message, struct or case");
                };
                fields.push(field);
            }
            other => {
                return err(
                    line,
                    format!(
                        "expected `section`, `struct`, `shared`, `message`, `case` or a field `name: shape`, found `{other}`"
                    ),
                );
            }
        }
    }
    if !doc.is_empty() {
        return err(
            doc_line,
            "doc comment at the end of the file: nothing to attach it to",
        );
    }
    validate(&def)?;
    Ok(def)
}

fn current(def: &mut Def, line: usize) -> Result<&mut Section, Error> {
    match def.sections.last_mut() {
        Some(s) => Ok(s),
        None => err(
            line,
            "expected `section frontend|backend|startup` before the first item",
        ),
    }
}

fn field(line: usize, words: &[&str], doc: Vec<String>) -> Result<Field, Error> {
    let name = words[0].trim_end_matches(':');
    let secret = match words.get(2..) {
        Some([]) => false,
        Some(["secret"]) => true,
        _ => return err(line, "expected `name: shape` or `name: shape secret`"),
    };
    if !is_snake(name) || KEYWORDS.contains(&name) {
        return err(
            line,
            format!("expected a snake_case field name that is not a Rust keyword, found `{name}`"),
        );
    }
    Ok(Field {
        doc,
        name: name.to_string(),
        shape: shape(line, words[1])?,
        secret,
        line,
    })
}

fn shape(line: usize, s: &str) -> Result<Shape, Error> {
    Ok(match s {
        "u8" => Shape::U8,
        "i16" => Shape::I16,
        "i32" => Shape::I32,
        "cstr" => Shape::CStr,
        "rest" => Shape::Rest,
        "nbytes" => Shape::NBytes,
        "cstr[i32]" => Shape::CStrList32,
        "cstr*" => Shape::CStrList,
        "pairs" => Shape::Pairs,
        "fields" => Shape::Fields,
        _ => {
            if let Some(n) = s.strip_prefix("bytes[").and_then(|r| r.strip_suffix(']')) {
                match n.parse::<usize>() {
                    Ok(n) if n > 0 => Shape::Bytes(n),
                    _ => return err(line, format!("expected `bytes[N]` with N > 0, found `{s}`")),
                }
            } else if let Some(e) = s.strip_suffix("[i16]") {
                Shape::Array(match e {
                    "i16" => Elem::I16,
                    "i32" => Elem::I32,
                    "nbytes" => Elem::NBytes,
                    _ if is_type_name(e) => Elem::Struct(e.to_string()),
                    _ => {
                        return err(
                            line,
                            format!(
                                "expected an array element i16, i32, nbytes or a struct name, found `{e}`"
                            ),
                        );
                    }
                })
            } else {
                return err(
                    line,
                    format!(
                        "expected a shape (u8, i16, i32, cstr, bytes[N], rest, nbytes, T[i16], cstr[i32], cstr*, pairs, fields), found `{s}`"
                    ),
                );
            }
        }
    })
}

fn tag_byte(line: usize, s: &str) -> Result<u8, Error> {
    let b = s.as_bytes();
    match b {
        [b'\'', c, b'\''] if c.is_ascii_graphic() => Ok(*c),
        _ => err(
            line,
            format!("expected a tag like 'Q' (one printable ASCII character), found `{s}`"),
        ),
    }
}

fn int(line: usize, s: &str) -> Result<i32, Error> {
    s.parse()
        .or_else(|_| err(line, format!("expected an Int32 number, found `{s}`")))
}

fn type_name(line: usize, s: &str) -> Result<(), Error> {
    if is_type_name(s) {
        Ok(())
    } else {
        err(line, format!("expected a CamelCase name, found `{s}`"))
    }
}

fn is_type_name(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_uppercase()) && s.chars().all(|c| c.is_ascii_alphanumeric())
}

fn is_snake(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

const KEYWORDS: &[&str] = &[
    "as", "async", "await", "box", "break", "const", "continue", "crate", "do", "dyn", "else",
    "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl", "in", "let", "loop",
    "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref", "return", "self",
    "static", "struct", "super", "trait", "true", "try", "type", "typeof", "unsafe", "unsized",
    "use", "virtual", "where", "while", "yield",
];

/// Whole-file checks.
fn validate(def: &Def) -> Result<(), Error> {
    for sec in &def.sections {
        let mut names = BTreeSet::new();
        for (name, line) in sec
            .structs
            .iter()
            .map(|s| (&s.name, s.line))
            .chain(sec.messages.iter().map(|m| (&m.name, m.line)))
            .chain(sec.shared.iter().map(|s| (&s.name, s.line)))
        {
            if !names.insert(name) {
                return err(
                    line,
                    format!(
                        "`{name}` is declared twice in section {}",
                        sec.dir.keyword()
                    ),
                );
            }
            if matches!(name.as_str(), "Frontend" | "Backend" | "Startup") {
                return err(line, format!("`{name}` is reserved for the section enum"));
            }
        }
        for s in &sec.structs {
            if s.fields.is_empty() {
                return err(
                    s.line,
                    format!("struct `{}` needs at least one field", s.name),
                );
            }
            fields(sec, &s.fields, true)?;
        }
        let mut by_tag: BTreeMap<u8, Vec<&Message>> = BTreeMap::new();
        let mut codes = BTreeMap::new();
        for m in &sec.messages {
            match m.head {
                Head::Tag(t) => by_tag.entry(t).or_default().push(m),
                Head::Code(c) | Head::Major(c) => {
                    if let Some(other) = codes.insert(c, &m.name) {
                        return err(m.line, format!("code {c} is already used by `{other}`"));
                    }
                }
            }
            match &m.body {
                Body::Fields(f) => {
                    fields(sec, f, false)?;
                    if let Head::Major(_) = m.head {
                        match f.first() {
                            Some(f) if f.shape == Shape::I32 => {}
                            _ => {
                                return err(
                                    m.line,
                                    "a `major` message's first field must be its i32 protocol version",
                                );
                            }
                        }
                    }
                }
                Body::Union(cases) => {
                    if cases.is_empty() {
                        return err(m.line, "a union needs at least one `case`");
                    }
                    let mut seen = BTreeSet::new();
                    let mut codes = BTreeSet::new();
                    for c in cases {
                        if !seen.insert(&c.name) || !codes.insert(c.code) {
                            return err(
                                m.line,
                                format!(
                                    "union `{}` repeats case `{}` or code {}",
                                    m.name, c.name, c.code
                                ),
                            );
                        }
                        fields(sec, &c.fields, false)?;
                    }
                }
            }
        }
        for (tag, ms) in &by_tag {
            let shared = sec.shared.iter().any(|s| s.tag == *tag);
            if ms.len() > 1 && !shared {
                return err(
                    ms[1].line,
                    format!(
                        "tag '{}' is already used by `{}`; declare `shared '{}' Name` if they share it",
                        char::from(*tag),
                        ms[0].name,
                        char::from(*tag)
                    ),
                );
            }
        }
        for s in &sec.shared {
            if by_tag.get(&s.tag).is_none_or(|ms| ms.len() < 2) {
                return err(
                    s.line,
                    format!(
                        "`shared '{}'` but fewer than two messages use that tag",
                        char::from(s.tag)
                    ),
                );
            }
        }
    }
    Ok(())
}

/// Checks one field list: unique names, `rest` last, arrays of declared
/// structs, and (in a struct) only self-delimiting scalar shapes.
fn fields(sec: &Section, fields: &[Field], in_struct: bool) -> Result<(), Error> {
    let mut names = BTreeSet::new();
    for (i, f) in fields.iter().enumerate() {
        if !names.insert(&f.name) {
            return err(f.line, format!("field `{}` appears twice", f.name));
        }
        match &f.shape {
            Shape::Rest if i + 1 != fields.len() => {
                return err(
                    f.line,
                    "`rest` takes every remaining byte, so it must be the last field",
                );
            }
            Shape::Array(Elem::Struct(s)) if !sec.structs.iter().any(|d| &d.name == s) => {
                return err(
                    f.line,
                    format!("unknown struct `{s}`: declare it with `struct {s}` in this section"),
                );
            }
            _ => {}
        }
        let scalar = f.shape.is_scalar();
        if in_struct && !scalar {
            return err(
                f.line,
                "a struct field must be u8, i16, i32, cstr, bytes[N] or nbytes",
            );
        }
        if f.secret && !scalar && f.shape != Shape::Rest {
            return err(f.line, "`secret` applies to scalar fields and `rest` only");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(src: &str) -> String {
        parse(src).unwrap_err().to_string()
    }

    #[test]
    fn parses_messages_structs_unions() {
        let def = parse(
            "section backend\n/// A column.\nstruct Col\n  name: cstr\nmessage Rows 'T'\n  cols: Col[i16]\n\
             message Auth 'R' union\n  case Ok 0\n  case Md5 5\n    salt: bytes[4]\n",
        )
        .unwrap();
        let sec = &def.sections[0];
        assert_eq!(sec.structs[0].doc, ["A column."]);
        assert_eq!(sec.messages[0].head, Head::Tag(b'T'));
        let Body::Union(cases) = &sec.messages[1].body else {
            panic!("not a union")
        };
        assert_eq!(cases[1].fields[0].shape, Shape::Bytes(4));
    }

    #[test]
    fn errors_name_the_line_and_the_expectation() {
        assert_eq!(
            error("section frontend\nmessage Q 'Q'\n  q: i64\n"),
            "line 3: expected a shape (u8, i16, i32, cstr, bytes[N], rest, nbytes, T[i16], cstr[i32], cstr*, pairs, fields), found `i64`"
        );
        assert_eq!(
            error("message Q 'Q'\n"),
            "line 1: expected `section frontend|backend|startup` before the first item"
        );
        assert_eq!(
            error("section frontend\nmessage Q \"Q\"\n"),
            "line 2: expected a tag like 'Q' (one printable ASCII character), found `\"Q\"`"
        );
        assert_eq!(
            error("section frontend\nmessage A 'd'\n  x: rest\n  y: u8\n"),
            "line 3: `rest` takes every remaining byte, so it must be the last field"
        );
        assert_eq!(
            error("section frontend\nmessage A 'd'\nmessage B 'd'\n"),
            "line 3: tag 'd' is already used by `A`; declare `shared 'd' Name` if they share it"
        );
        assert_eq!(
            error("section backend\nmessage A 'R' union\n  x: u8\n"),
            "line 3: a union's fields belong to a `case`: expected `case Name N` first"
        );
        assert_eq!(
            error("section backend\nmessage A 'T'\n  f: Col[i16]\n"),
            "line 3: unknown struct `Col`: declare it with `struct Col` in this section"
        );
        assert_eq!(
            error("section startup\nmessage S 'S'\n"),
            "line 2: expected `message Name code N` or `message Name major N` in section startup"
        );
        assert_eq!(
            error("section frontend\nmessage Q 'Q'\n  type: cstr\n"),
            "line 3: expected a snake_case field name that is not a Rust keyword, found `type`"
        );
        assert_eq!(
            error("section frontend\nfrobnicate\n"),
            "line 2: expected `section`, `struct`, `shared`, `message`, `case` or a field `name: shape`, found `frobnicate`"
        );
    }
}
