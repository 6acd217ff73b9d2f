//! Emits the section enum (`Frontend`, `Backend`, `Startup`): one variant per
//! message, or per shared tag, with `decode` dispatching on the tag (request
//! code), `encode`, and a Debug that delegates to the message.

use std::collections::BTreeSet;

use crate::def::{Body, Direction, Head, Message, Section, Shared};
use crate::emit::{Ctx, anon, doc, enum_name, lt, message_borrows, screaming, w};

/// A variant of the section enum: a message, or a shared tag's raw body.
enum Variant<'d> {
    Message(&'d Message),
    Shared(&'d Shared),
}

fn variants(sec: &Section) -> Vec<Variant<'_>> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for m in &sec.messages {
        if let Head::Tag(t) = m.head
            && let Some(s) = sec.shared.iter().find(|s| s.tag == t)
        {
            if seen.insert(t) {
                out.push(Variant::Shared(s));
            }
            continue;
        }
        out.push(Variant::Message(m));
    }
    out
}

/// Whether any message sharing tag `t` has a secret field.
fn shared_secret(sec: &Section, t: u8) -> bool {
    sec.messages
        .iter()
        .filter(|m| m.head == Head::Tag(t))
        .any(|m| match &m.body {
            Body::Fields(f) => f.iter().any(|f| f.secret),
            Body::Union(cases) => cases.iter().any(|c| c.fields.iter().any(|f| f.secret)),
        })
}

pub(crate) fn section_enum(out: &mut String, ctx: &mut Ctx) {
    let sec = ctx.sec;
    let name = enum_name(sec.dir);
    let vs = variants(sec);
    let b = vs.iter().any(|v| match v {
        Variant::Message(m) => message_borrows(m),
        Variant::Shared(_) => true,
    });
    let body_lt = if b { "&'a [u8]" } else { "&[u8]" };
    match sec.dir {
        Direction::Startup => {
            w!(
                out,
                "/// Any startup-family packet, decoded by its request code."
            );
        }
        _ => {
            w!(
                out,
                "/// Any {} message, decoded by its tag.",
                sec.dir.keyword()
            );
        }
    }
    w!(out, "#[derive(Clone, Copy, PartialEq, Eq)]");
    w!(out, "pub enum {name}{} {{", lt(b));
    for v in &vs {
        match v {
            Variant::Message(m) => {
                w!(out, "/// [`{}`].", m.name);
                w!(out, "{}({}{}),", m.name, m.name, lt(message_borrows(m)));
            }
            Variant::Shared(s) => {
                doc(out, &s.doc);
                w!(out, "///");
                w!(
                    out,
                    "/// Holds the raw body; decode it with the message type the context calls for."
                );
                w!(out, "{}({body_lt}),", s.name);
            }
        }
    }
    w!(out, "}}");
    w!(out);

    w!(out, "impl fmt::Debug for {name}{} {{", anon(b));
    w!(
        out,
        "fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {{"
    );
    w!(out, "match self {{");
    for v in &vs {
        match v {
            Variant::Message(m) => w!(out, "Self::{}(m) => fmt::Debug::fmt(m, f),", m.name),
            Variant::Shared(s) => {
                let field = if shared_secret(sec, s.tag) {
                    ctx.uses.add("Redacted");
                    "&Redacted(body.len())"
                } else {
                    ctx.uses.add("Str");
                    "&Str(body)"
                };
                w!(
                    out,
                    "Self::{}(body) => f.debug_tuple(\"{}\").field({field}).finish(),",
                    s.name,
                    s.name
                );
            }
        }
    }
    w!(out, "}}");
    w!(out, "}}");
    w!(out, "}}");
    w!(out);

    w!(out, "impl{} {name}{} {{", lt(b), lt(b));
    if sec.dir == Direction::Startup {
        w!(
            out,
            "/// Decodes a packet body (everything after the length) by its request"
        );
        w!(
            out,
            "/// code. A code that is neither a known request nor a supported protocol"
        );
        w!(out, "/// version is [`DecodeError::UnknownStartupCode`].");
        w!(
            out,
            "pub fn decode(body: {body_lt}) -> Result<Self, DecodeError> {{"
        );
        w!(out, "let request = Reader::new(body).i32()?;");
        w!(out, "Ok(match request {{");
        for m in &sec.messages {
            if let Head::Code(_) = m.head {
                w!(
                    out,
                    "code::{} => Self::{}({}::decode(body)?),",
                    screaming(&m.name),
                    m.name,
                    m.name
                );
            }
        }
        for m in &sec.messages {
            if let Head::Major(_) = m.head {
                w!(
                    out,
                    "_ if request >> 16 == {}::MAJOR => Self::{}({}::decode(body)?),",
                    m.name,
                    m.name,
                    m.name
                );
            }
        }
        w!(
            out,
            "other => return Err(DecodeError::UnknownStartupCode(other)),"
        );
        w!(out, "}})");
        w!(out, "}}");
        w!(out);
        w!(
            out,
            "/// Decodes a whole packet (length, body), checking that the length"
        );
        w!(out, "/// matches the packet's size.");
        w!(
            out,
            "pub fn decode_packet(packet: {body_lt}) -> Result<Self, DecodeError> {{"
        );
        w!(out, "Self::decode(codec::packet_body(packet)?)");
        w!(out, "}}");
        w!(out);
    } else {
        w!(
            out,
            "/// Decodes a body (the bytes after the tag and length) by its tag,"
        );
        w!(
            out,
            "/// validating all of it. A tag no {} message uses is",
            sec.dir.keyword()
        );
        w!(out, "/// [`DecodeError::UnknownTag`].");
        w!(
            out,
            "pub fn decode(tag: u8, body: {body_lt}) -> Result<Self, DecodeError> {{"
        );
        w!(out, "Ok(match tag {{");
        for v in &vs {
            match v {
                Variant::Message(m) => {
                    w!(
                        out,
                        "tag::{} => Self::{}({}::decode(body)?),",
                        screaming(&m.name),
                        m.name,
                        m.name
                    )
                }
                Variant::Shared(s) => w!(
                    out,
                    "tag::{} => Self::{}(body),",
                    screaming(&s.name),
                    s.name
                ),
            }
        }
        w!(out, "other => return Err(DecodeError::UnknownTag(other)),");
        w!(out, "}})");
        w!(out, "}}");
        w!(out);
        w!(
            out,
            "/// Decodes a whole frame (tag, length, body), checking that the length"
        );
        w!(out, "/// matches the frame's size.");
        w!(
            out,
            "pub fn decode_frame(frame: {body_lt}) -> Result<Self, DecodeError> {{"
        );
        w!(out, "let (tag, body) = codec::split_frame(frame)?;");
        w!(out, "Self::decode(tag, body)");
        w!(out, "}}");
        w!(out);
        w!(out, "/// The message's tag.");
        w!(out, "pub fn tag(&self) -> u8 {{");
        w!(out, "match self {{");
        for v in &vs {
            match v {
                Variant::Message(m) => {
                    w!(out, "Self::{}(_) => tag::{},", m.name, screaming(&m.name))
                }
                Variant::Shared(s) => {
                    w!(out, "Self::{}(_) => tag::{},", s.name, screaming(&s.name))
                }
            }
        }
        w!(out, "}}");
        w!(out, "}}");
        w!(out);
    }
    w!(
        out,
        "/// Appends the whole message to `buf`, as its type's `encode` does."
    );
    w!(out, "pub fn encode(&self, buf: &mut BytesMut) {{");
    w!(out, "match self {{");
    for v in &vs {
        match v {
            Variant::Message(m) => w!(out, "Self::{}(m) => m.encode(buf),", m.name),
            Variant::Shared(s) => {
                ctx.uses.add("BufMut");
                w!(out, "Self::{}(body) => {{", s.name);
                w!(
                    out,
                    "let mark = codec::begin(buf, tag::{});",
                    screaming(&s.name)
                );
                w!(out, "buf.put_slice(body);");
                w!(out, "codec::finish(buf, mark);");
                w!(out, "}}");
            }
        }
    }
    w!(out, "}}");
    w!(out, "}}");
    w!(out, "}}");
}
