//! Emits the Rust message views of one section (`frontend.rs`, `backend.rs`,
//! `startup.rs`) from the parsed definition.
//!
//! The output is plain, unindented Rust; `main` runs it through rustfmt. What
//! the generated code looks like is documented in `crates/fed/src/messages/mod.rs`.

use std::collections::BTreeSet;

use crate::def::{Body, Case, Direction, Elem, Field, Head, Message, Section, Shape, Struct};

/// Appends one formatted line.
macro_rules! w {
    ($out:expr) => { $out.push('\n') };
    ($out:expr, $($arg:tt)*) => {{
        $out.push_str(&format!($($arg)*));
        $out.push('\n');
    }};
}
pub(crate) use w;

/// `SASLInitialResponse` -> `SASL_INITIAL_RESPONSE`, `MD5Password` ->
/// `MD5_PASSWORD`: a break before an uppercase letter that follows a
/// lowercase letter or digit, or that starts a word after an acronym.
pub fn screaming(name: &str) -> String {
    let c: Vec<char> = name.chars().collect();
    let mut out = String::new();
    for (i, &ch) in c.iter().enumerate() {
        if i > 0 && ch.is_ascii_uppercase() {
            let prev = c[i - 1];
            let next_lower = c.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if prev.is_ascii_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_ascii_uppercase() && next_lower)
            {
                out.push('_');
            }
        }
        out.push(ch.to_ascii_uppercase());
    }
    out
}

/// `SASLInitialResponse` -> `sasl_initial_response`.
pub fn snake(name: &str) -> String {
    screaming(name).to_ascii_lowercase()
}

/// A Rust byte-string literal for `b`.
pub fn byte_str(b: &[u8]) -> String {
    format!("b\"{}\"", b.escape_ascii())
}

/// A Rust byte literal for `b`.
pub fn byte_lit(b: u8) -> String {
    format!("b'{}'", [b].escape_ascii())
}

/// Names from `crate::codec` and `bytes` that a file uses, so that it imports
/// exactly those.
#[derive(Default)]
pub(crate) struct Uses(BTreeSet<&'static str>);

impl Uses {
    pub(crate) fn add(&mut self, name: &'static str) {
        self.0.insert(name);
    }
    fn has(&self, name: &str) -> bool {
        self.0.contains(name)
    }
}

/// Everything the emitter needs to know about the section being written.
pub(crate) struct Ctx<'d> {
    pub(crate) sec: &'d Section,
    pub(crate) uses: Uses,
}

impl Ctx<'_> {
    fn struct_borrows(&self, name: &str) -> bool {
        self.sec
            .structs
            .iter()
            .find(|s| s.name == name)
            .is_some_and(|s| fields_borrow(&s.fields))
    }

    /// The Rust type of a field of `shape`.
    fn rust_type(&mut self, shape: &Shape) -> String {
        match shape {
            Shape::U8 => "u8".into(),
            Shape::I16 => "i16".into(),
            Shape::I32 => "i32".into(),
            Shape::CStr | Shape::Rest => "&'a [u8]".into(),
            Shape::Bytes(n) => format!("[u8; {n}]"),
            Shape::NBytes => "Option<&'a [u8]>".into(),
            Shape::Array(e) => {
                self.uses.add("Array");
                let e = match e {
                    Elem::I16 => "i16".to_string(),
                    Elem::I32 => "i32".to_string(),
                    Elem::NBytes => "Option<&'a [u8]>".to_string(),
                    Elem::Struct(s) if self.struct_borrows(s) => format!("{s}<'a>"),
                    Elem::Struct(s) => s.clone(),
                };
                format!("Array<'a, {e}>")
            }
            Shape::CStrList32 | Shape::CStrList => {
                self.uses.add("CStrList");
                "CStrList<'a>".into()
            }
            Shape::Pairs => {
                self.uses.add("PairList");
                "PairList<'a>".into()
            }
            Shape::Fields => {
                self.uses.add("FieldList");
                "FieldList<'a>".into()
            }
        }
    }

    /// An expression reading a field of `shape` from `r`.
    fn read(&mut self, shape: &Shape) -> &'static str {
        match shape {
            Shape::U8 => "r.u8()?",
            Shape::I16 => "r.i16()?",
            Shape::I32 => "r.i32()?",
            Shape::CStr => "r.cstr()?",
            Shape::Bytes(_) => "r.array()?",
            Shape::Rest => "r.rest()",
            Shape::NBytes => "r.nbytes()?",
            Shape::Array(_) => "r.array16()?",
            Shape::CStrList32 => "r.cstr_list32()?",
            Shape::CStrList => "r.cstr_list()?",
            Shape::Pairs => "r.pairs()?",
            Shape::Fields => "r.field_list()?",
        }
    }

    /// A statement writing `v` (a value of the field's type) to `buf`.
    fn write(&mut self, shape: &Shape, v: &str) -> String {
        let bufmut = |ctx: &mut Self, s: String| {
            ctx.uses.add("BufMut");
            s
        };
        match shape {
            Shape::U8 => bufmut(self, format!("buf.put_u8({v});")),
            Shape::I16 => bufmut(self, format!("buf.put_i16({v});")),
            Shape::I32 => bufmut(self, format!("buf.put_i32({v});")),
            Shape::CStr => format!("codec::put_cstr(buf, {v});"),
            Shape::Bytes(_) => bufmut(self, format!("buf.put_slice(&{v});")),
            Shape::Rest => bufmut(self, format!("buf.put_slice({v});")),
            Shape::NBytes => format!("codec::put_nbytes(buf, {v});"),
            Shape::Array(_) => format!("codec::put_array16(buf, &{v});"),
            Shape::CStrList32 => format!("codec::put_cstr_list32(buf, &{v});"),
            Shape::CStrList => format!("codec::put_cstr_list(buf, &{v});"),
            Shape::Pairs => format!("codec::put_pairs(buf, &{v});"),
            Shape::Fields => format!("codec::put_field_list(buf, &{v});"),
        }
    }

    /// An expression borrowing a Debug view of `v`.
    fn debug(&mut self, f: &Field, v: &str) -> String {
        if f.secret {
            self.uses.add("Redacted");
            return match &f.shape {
                Shape::U8 => "&Redacted(1)".into(),
                Shape::I16 => "&Redacted(2)".into(),
                Shape::I32 => "&Redacted(4)".into(),
                Shape::Bytes(n) => format!("&Redacted({n})"),
                Shape::NBytes => format!("&{v}.map(|d| Redacted(d.len()))"),
                _ => format!("&Redacted({v}.len())"),
            };
        }
        match &f.shape {
            Shape::U8 => {
                self.uses.add("Byte");
                format!("&Byte({v})")
            }
            Shape::CStr | Shape::Rest => {
                self.uses.add("Str");
                format!("&Str({v})")
            }
            Shape::Bytes(_) => {
                self.uses.add("Str");
                format!("&Str(&{v})")
            }
            Shape::NBytes => {
                self.uses.add("Str");
                format!("&{v}.map(Str)")
            }
            _ => format!("&{v}"),
        }
    }
}

fn fields_borrow(fields: &[Field]) -> bool {
    fields.iter().any(|f| f.shape.borrows())
}

/// Whether a message's Rust type carries the `'a` lifetime.
pub fn message_borrows(m: &Message) -> bool {
    match &m.body {
        Body::Fields(f) => fields_borrow(f),
        Body::Union(cases) => cases.iter().any(|c| fields_borrow(&c.fields)),
    }
}

pub(crate) fn doc(out: &mut String, lines: &[String]) {
    for l in lines {
        if l.is_empty() {
            w!(out, "///");
        } else {
            w!(out, "/// {l}");
        }
    }
}

/// The name of the section enum.
pub fn enum_name(dir: Direction) -> &'static str {
    match dir {
        Direction::Frontend => "Frontend",
        Direction::Backend => "Backend",
        Direction::Startup => "Startup",
    }
}

/// Generates one section's module source (unformatted), after `header`.
pub fn section(header: &str, sec: &Section) -> String {
    let mut ctx = Ctx {
        sec,
        uses: Uses::default(),
    };
    let mut body = String::new();
    match sec.dir {
        Direction::Startup => codes_module(&mut body, sec),
        _ => tags_module(&mut body, sec),
    }
    for s in &sec.structs {
        element(&mut body, &mut ctx, s);
    }
    for m in &sec.messages {
        match &m.body {
            Body::Fields(fields) => message(&mut body, &mut ctx, m, fields),
            Body::Union(cases) => union(&mut body, &mut ctx, m, cases),
        }
    }
    crate::emit_enum::section_enum(&mut body, &mut ctx);

    let mut out = String::new();
    w!(out, "{header}");
    match sec.dir {
        Direction::Frontend => {
            w!(
                out,
                "//! Frontend messages: what a client sends to a server."
            );
            w!(out, "//!");
            w!(
                out,
                "//! One borrowed view per message type, plus [`Frontend`] to dispatch on a tag."
            );
            w!(out, "//! See [`crate::messages`] for how the views work.");
        }
        Direction::Backend => {
            w!(
                out,
                "//! Backend messages: what a server sends to a client."
            );
            w!(out, "//!");
            w!(
                out,
                "//! One borrowed view per message type, plus [`Backend`] to dispatch on a tag."
            );
            w!(out, "//! See [`crate::messages`] for how the views work.");
        }
        Direction::Startup => {
            w!(
                out,
                "//! The startup family: the untagged packets a client may send first."
            );
            w!(out, "//!");
            w!(
                out,
                "//! Each packet is an Int32 length, an Int32 request code, then the body."
            );
            w!(
                out,
                "//! [`Startup::decode`] takes everything after the length and dispatches on"
            );
            w!(
                out,
                "//! the code; the encoders write the whole packet, length included."
            );
        }
    }
    w!(out);
    w!(out, "use std::fmt;");
    w!(out);
    if ctx.uses.has("BufMut") {
        w!(out, "use bytes::{{BufMut, BytesMut}};");
    } else {
        w!(out, "use bytes::BytesMut;");
    }
    w!(out);
    let mut codec: Vec<&str> = vec!["self", "DecodeError", "Reader"];
    codec.extend(ctx.uses.0.iter().copied().filter(|n| *n != "BufMut"));
    codec.sort_by_key(|n| (*n != "self", n.to_ascii_lowercase()));
    w!(out, "use crate::codec::{{{}}};", codec.join(", "));
    w!(out);
    out.push_str(&body);
    out
}

fn tags_module(out: &mut String, sec: &Section) {
    w!(
        out,
        "/// The tag byte of each {} message.",
        sec.dir.keyword()
    );
    w!(out, "pub mod tag {{");
    let mut shared_done = BTreeSet::new();
    for m in &sec.messages {
        let Head::Tag(t) = m.head else { continue };
        if let Some(s) = sec.shared.iter().find(|s| s.tag == t)
            && shared_done.insert(t)
        {
            w!(
                out,
                "/// [`super::{}::{}`]: every message tagged {}.",
                enum_name(sec.dir),
                s.name,
                byte_lit(t)
            );
            w!(
                out,
                "pub const {}: u8 = {};",
                screaming(&s.name),
                byte_lit(t)
            );
        }
        w!(out, "/// [`super::{}`].", m.name);
        w!(
            out,
            "pub const {}: u8 = {};",
            screaming(&m.name),
            byte_lit(t)
        );
    }
    w!(out, "}}");
    w!(out);
}

fn codes_module(out: &mut String, sec: &Section) {
    w!(
        out,
        "/// The request code of each startup packet that has a fixed one."
    );
    w!(out, "pub mod code {{");
    for m in &sec.messages {
        if let Head::Code(c) = m.head {
            w!(
                out,
                "/// [`super::{}`] ({}.{}).",
                m.name,
                c >> 16,
                c & 0xffff
            );
            w!(out, "pub const {}: i32 = {c};", screaming(&m.name));
        }
    }
    w!(out, "}}");
    w!(out);
}

/// `<'a>` when the type borrows.
pub(crate) fn lt(borrows: bool) -> &'static str {
    if borrows { "<'a>" } else { "" }
}

/// `<'_>` when the type borrows.
pub(crate) fn anon(borrows: bool) -> &'static str {
    if borrows { "<'_>" } else { "" }
}

/// The struct definition with documented public fields.
fn struct_def(out: &mut String, ctx: &mut Ctx, name: &str, fields: &[Field]) {
    let b = fields_borrow(fields);
    if fields.is_empty() {
        w!(out, "#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]");
        w!(out, "pub struct {name};");
        w!(out);
        return;
    }
    w!(out, "#[derive(Clone, Copy, PartialEq, Eq)]");
    w!(out, "pub struct {name}{} {{", lt(b));
    for f in fields {
        doc(out, &f.doc);
        let ty = ctx.rust_type(&f.shape);
        w!(out, "pub {}: {ty},", f.name);
    }
    w!(out, "}}");
    w!(out);
}

/// `Self { a: r.cstr()?, ... }`, reading in wire order; `skip` fields already
/// read into locals of the same name.
fn construct(ctx: &mut Ctx, fields: &[Field], skip: usize) -> String {
    if fields.is_empty() {
        return "Self".into();
    }
    let mut s = String::from("Self {\n");
    for (i, f) in fields.iter().enumerate() {
        if i < skip {
            s.push_str(&format!("{},\n", f.name));
        } else {
            s.push_str(&format!("{}: {},\n", f.name, ctx.read(&f.shape)));
        }
    }
    s.push('}');
    s
}

fn debug_impl(out: &mut String, ctx: &mut Ctx, name: &str, fields: &[Field]) {
    if fields.is_empty() {
        return;
    }
    w!(
        out,
        "impl fmt::Debug for {name}{} {{",
        anon(fields_borrow(fields))
    );
    w!(
        out,
        "fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {{"
    );
    w!(out, "f.debug_struct(\"{name}\")");
    for fd in fields {
        let d = ctx.debug(fd, &format!("self.{}", fd.name));
        w!(out, ".field(\"{}\", {d})", fd.name);
    }
    w!(out, ".finish()");
    w!(out, "}}");
    w!(out, "}}");
    w!(out);
}

/// A composite array element: the struct, Debug and `Element`.
fn element(out: &mut String, ctx: &mut Ctx, s: &Struct) {
    ctx.uses.add("Element");
    let b = fields_borrow(&s.fields);
    doc(out, &s.doc);
    struct_def(out, ctx, &s.name, &s.fields);
    debug_impl(out, ctx, &s.name, &s.fields);
    w!(out, "impl<'a> Element<'a> for {}{} {{", s.name, lt(b));
    w!(
        out,
        "fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {{"
    );
    w!(out, "Ok({})", construct(ctx, &s.fields, 0));
    w!(out, "}}");
    w!(out);
    w!(out, "fn write(&self, buf: &mut BytesMut) {{");
    for f in &s.fields {
        let st = ctx.write(&f.shape, &format!("self.{}", f.name));
        w!(out, "{st}");
    }
    w!(out, "}}");
    w!(out);
    w!(
        out,
        "fn fmt_element(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {{"
    );
    w!(out, "fmt::Debug::fmt(self, f)");
    w!(out, "}}");
    w!(out, "}}");
    w!(out);
}

fn message(out: &mut String, ctx: &mut Ctx, m: &Message, fields: &[Field]) {
    let b = fields_borrow(fields);
    let body_lt = if b { "&'a [u8]" } else { "&[u8]" };
    doc(out, &m.doc);
    w!(out, "///");
    match m.head {
        Head::Tag(t) => w!(out, "/// Tag {}.", byte_lit(t)),
        Head::Code(c) => w!(out, "/// Request code {c}."),
        Head::Major(v) => w!(out, "/// Protocol major version {v}."),
    }
    struct_def(out, ctx, &m.name, fields);
    debug_impl(out, ctx, &m.name, fields);

    w!(out, "impl{} {}{} {{", lt(b), m.name, lt(b));
    let mut skip = 0;
    match m.head {
        Head::Tag(_) if fields.is_empty() => {
            w!(out, "/// This message's tag.");
            w!(out, "pub const TAG: u8 = tag::{};", screaming(&m.name));
            w!(out);
            w!(
                out,
                "/// Decodes a body (the bytes after the tag and length), which must be"
            );
            w!(out, "/// empty.");
            w!(
                out,
                "pub fn decode(body: &[u8]) -> Result<Self, DecodeError> {{"
            );
            w!(out, "Reader::new(body).finish()?;");
            w!(out, "Ok(Self)");
            w!(out, "}}");
            w!(out);
        }
        Head::Tag(_) => {
            w!(out, "/// This message's tag.");
            w!(out, "pub const TAG: u8 = tag::{};", screaming(&m.name));
            w!(out);
            w!(
                out,
                "/// Decodes a body (the bytes after the tag and length), validating"
            );
            w!(
                out,
                "/// all of it: every length, every NUL, no bytes left over."
            );
            w!(
                out,
                "pub fn decode(body: {body_lt}) -> Result<Self, DecodeError> {{"
            );
            w!(out, "let mut r = Reader::new(body);");
        }
        Head::Code(_) => {
            w!(out, "/// The request code that identifies this packet.");
            w!(out, "pub const CODE: i32 = code::{};", screaming(&m.name));
            w!(out);
            w!(
                out,
                "/// Decodes a packet body (everything after the length, request code"
            );
            w!(out, "/// included), validating all of it.");
            w!(
                out,
                "pub fn decode(body: {body_lt}) -> Result<Self, DecodeError> {{"
            );
            w!(out, "let mut r = Reader::new(body);");
            w!(out, "let request = r.i32()?;");
            w!(out, "if request != Self::CODE {{");
            w!(out, "return Err(DecodeError::UnknownStartupCode(request));");
            w!(out, "}}");
        }
        Head::Major(v) => {
            let first = &fields[0].name;
            w!(
                out,
                "/// The protocol major version this message is for; the minor version"
            );
            w!(out, "/// is free (the low 16 bits of `{first}`).");
            w!(out, "pub const MAJOR: i32 = {v};");
            w!(out);
            w!(
                out,
                "/// Decodes a packet body (everything after the length, protocol"
            );
            w!(
                out,
                "/// version included), validating all of it. Another major version is"
            );
            w!(out, "/// [`DecodeError::UnknownStartupCode`].");
            w!(
                out,
                "pub fn decode(body: {body_lt}) -> Result<Self, DecodeError> {{"
            );
            w!(out, "let mut r = Reader::new(body);");
            w!(out, "let {first} = r.i32()?;");
            w!(out, "if {first} >> 16 != Self::MAJOR {{");
            w!(out, "return Err(DecodeError::UnknownStartupCode({first}));");
            w!(out, "}}");
            skip = 1;
        }
    }
    if !(fields.is_empty() && matches!(m.head, Head::Tag(_))) {
        w!(out, "let msg = {};", construct(ctx, fields, skip));
        w!(out, "r.finish()?;");
        w!(out, "Ok(msg)");
        w!(out, "}}");
        w!(out);
    }
    frame_decoder(out, m, body_lt);
    w!(
        out,
        "/// Appends the whole message to `buf`: {}.",
        whole(m.head)
    );
    w!(out, "pub fn encode(&self, buf: &mut BytesMut) {{");
    begin(out, ctx, m.head);
    for f in fields {
        let st = ctx.write(&f.shape, &format!("self.{}", f.name));
        w!(out, "{st}");
    }
    w!(out, "codec::finish(buf, mark);");
    w!(out, "}}");
    w!(out, "}}");
    w!(out);
}

/// What `encode` writes, for its doc comment.
fn whole(head: Head) -> &'static str {
    match head {
        Head::Tag(_) => "tag, length, body",
        Head::Code(_) => "length, request code, body",
        Head::Major(_) => "length, body",
    }
}

fn begin(out: &mut String, ctx: &mut Ctx, head: Head) {
    match head {
        Head::Tag(_) => w!(out, "let mark = codec::begin(buf, Self::TAG);"),
        Head::Code(_) => {
            ctx.uses.add("BufMut");
            w!(out, "let mark = codec::begin_untagged(buf);");
            w!(out, "buf.put_i32(Self::CODE);");
        }
        Head::Major(_) => w!(out, "let mark = codec::begin_untagged(buf);"),
    }
}

fn frame_decoder(out: &mut String, m: &Message, body_lt: &str) {
    let param = body_lt;
    if let Head::Tag(_) = m.head {
        w!(
            out,
            "/// Decodes a whole frame (tag, length, body), checking the tag and that"
        );
        w!(out, "/// the length matches the frame's size.");
        w!(
            out,
            "pub fn decode_frame(frame: {param}) -> Result<Self, DecodeError> {{"
        );
        w!(out, "Self::decode(codec::frame_body(frame, Self::TAG)?)");
    } else {
        w!(
            out,
            "/// Decodes a whole packet (length, body), checking that the length"
        );
        w!(out, "/// matches the packet's size.");
        w!(
            out,
            "pub fn decode_packet(packet: {param}) -> Result<Self, DecodeError> {{"
        );
        w!(out, "Self::decode(codec::packet_body(packet)?)");
    }
    w!(out, "}}");
    w!(out);
}

fn union(out: &mut String, ctx: &mut Ctx, m: &Message, cases: &[Case]) {
    let b = message_borrows(m);
    let Head::Tag(t) = m.head else { return };
    let codes = format!("{}_code", snake(&m.name));
    doc(out, &m.doc);
    w!(out, "///");
    w!(
        out,
        "/// Tag {}; an Int32 subtype (see [`{codes}`]) selects the case.",
        byte_lit(t)
    );
    w!(
        out,
        "#[allow(clippy::upper_case_acronyms)] // case names follow the PostgreSQL docs"
    );
    w!(out, "#[derive(Clone, Copy, PartialEq, Eq)]");
    w!(out, "pub enum {}{} {{", m.name, lt(b));
    for c in cases {
        doc(out, &c.doc);
        if c.fields.is_empty() {
            w!(out, "{},", c.name);
        } else {
            w!(out, "{} {{", c.name);
            for f in &c.fields {
                doc(out, &f.doc);
                let ty = ctx.rust_type(&f.shape);
                w!(out, "{}: {ty},", f.name);
            }
            w!(out, "}},");
        }
    }
    w!(out, "}}");
    w!(out);

    w!(out, "/// The Int32 subtype of each [`{}`] case.", m.name);
    w!(out, "pub mod {codes} {{");
    for c in cases {
        w!(out, "/// [`super::{}::{}`].", m.name, c.name);
        w!(out, "pub const {}: i32 = {};", screaming(&c.name), c.code);
    }
    w!(out, "}}");
    w!(out);

    let pattern = |c: &Case| {
        if c.fields.is_empty() {
            format!("Self::{}", c.name)
        } else {
            let names: Vec<&str> = c.fields.iter().map(|f| f.name.as_str()).collect();
            format!("Self::{} {{ {} }}", c.name, names.join(", "))
        }
    };

    w!(out, "impl fmt::Debug for {}{} {{", m.name, anon(b));
    w!(
        out,
        "fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {{"
    );
    w!(out, "match *self {{");
    for c in cases {
        let debug_name = format!("{}{}", m.name, c.name);
        if c.fields.is_empty() {
            w!(out, "{} => f.write_str(\"{debug_name}\"),", pattern(c));
        } else {
            w!(out, "{} => f.debug_struct(\"{debug_name}\")", pattern(c));
            for fd in &c.fields {
                let d = ctx.debug(fd, &fd.name);
                w!(out, ".field(\"{}\", {d})", fd.name);
            }
            w!(out, ".finish(),");
        }
    }
    w!(out, "}}");
    w!(out, "}}");
    w!(out, "}}");
    w!(out);

    let body_lt = if b { "&'a [u8]" } else { "&[u8]" };
    w!(out, "impl{} {}{} {{", lt(b), m.name, lt(b));
    w!(out, "/// This message's tag.");
    w!(out, "pub const TAG: u8 = tag::{};", screaming(&m.name));
    w!(out);
    w!(out, "/// The Int32 subtype of this case.");
    w!(out, "pub fn code(&self) -> i32 {{");
    w!(out, "match self {{");
    for c in cases {
        let pat = if c.fields.is_empty() {
            format!("Self::{}", c.name)
        } else {
            format!("Self::{} {{ .. }}", c.name)
        };
        w!(out, "{pat} => {codes}::{},", screaming(&c.name));
    }
    w!(out, "}}");
    w!(out, "}}");
    w!(out);
    w!(
        out,
        "/// Decodes a body (the bytes after the tag and length), validating"
    );
    w!(
        out,
        "/// all of it; an unknown subtype is [`DecodeError::Unknown{}`].",
        m.name
    );
    w!(
        out,
        "pub fn decode(body: {body_lt}) -> Result<Self, DecodeError> {{"
    );
    w!(out, "let mut r = Reader::new(body);");
    w!(out, "let msg = match r.i32()? {{");
    for c in cases {
        let built = construct(ctx, &c.fields, 0).replacen("Self", &format!("Self::{}", c.name), 1);
        w!(out, "{codes}::{} => {built},", screaming(&c.name));
    }
    w!(
        out,
        "other => return Err(DecodeError::Unknown{}(other)),",
        m.name
    );
    w!(out, "}};");
    w!(out, "r.finish()?;");
    w!(out, "Ok(msg)");
    w!(out, "}}");
    w!(out);
    frame_decoder(out, m, body_lt);
    ctx.uses.add("BufMut");
    w!(
        out,
        "/// Appends the whole message to `buf`: tag, length, subtype, body."
    );
    w!(out, "pub fn encode(&self, buf: &mut BytesMut) {{");
    w!(out, "let mark = codec::begin(buf, Self::TAG);");
    w!(out, "buf.put_i32(self.code());");
    w!(out, "match *self {{");
    let mut empty = Vec::new();
    for c in cases {
        if c.fields.is_empty() {
            empty.push(format!("Self::{}", c.name));
            continue;
        }
        w!(out, "{} => {{", pattern(c));
        for f in &c.fields {
            let st = ctx.write(&f.shape, &f.name);
            w!(out, "{st}");
        }
        w!(out, "}}");
    }
    if !empty.is_empty() {
        w!(out, "{} => {{}}", empty.join(" | "));
    }
    w!(out, "}}");
    w!(out, "codec::finish(buf, mark);");
    w!(out, "}}");
    w!(out, "}}");
    w!(out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(screaming("SASLInitialResponse"), "SASL_INITIAL_RESPONSE");
        assert_eq!(screaming("MD5Password"), "MD5_PASSWORD");
        assert_eq!(screaming("GSSENCRequest"), "GSSENC_REQUEST");
        assert_eq!(screaming("KerberosV5"), "KERBEROS_V5");
        assert_eq!(screaming("Ok"), "OK");
        assert_eq!(snake("CopyInResponse"), "copy_in_response");
        assert_eq!(byte_str(b"a\"\0\xff"), r#"b"a\"\x00\xff""#);
        assert_eq!(byte_lit(b'\''), r"b'\''");
    }
}
