//! Emits `crates/fed/src/messages/roundtrip.rs`: an encode -> decode test for
//! every message (every union case) in the definition, so that a message added
//! to `messages.def` is tested without anyone writing a test.
//!
//! Each message gets two samples: every field at its smallest (empty strings,
//! NULL, empty arrays, MIN integers) and at its largest (64 KiB strings, 1 MiB
//! byte strings, arrays holding NULL, empty and long elements, MAX integers).
//! Each sample checks: the framing of the encoding, decode == the sample, the
//! section enum agrees, re-encoding the decoded view gives the same bytes,
//! every proper prefix of a self-delimiting body fails, and one extra byte is
//! `TrailingData`.

use crate::def::{Body, Def, Direction, Elem, Field, Head, Message, Section, Shape};
use crate::emit::{byte_str, enum_name, snake, w};

/// Local variables a sample needs, and which big buffers it uses.
#[derive(Default)]
struct Sample {
    lets: Vec<String>,
    text: bool,
    blob: bool,
}

impl Sample {
    /// Binds `value` to a fresh local and returns its name.
    fn local(&mut self, value: String) -> String {
        let name = format!("a{}", self.lets.len());
        self.lets.push(format!("let {name} = {value};"));
        name
    }

    fn text(&mut self) -> &'static str {
        self.text = true;
        "&text[..]"
    }

    fn blob(&mut self) -> &'static str {
        self.blob = true;
        "&blob[..]"
    }

    /// An expression of the field's type: its smallest or largest value.
    fn value(&mut self, sec: &Section, module: &str, shape: &Shape, max: bool) -> String {
        let lit = |b: &[u8]| format!("&{}[..]", byte_str(b));
        match (shape, max) {
            (Shape::U8, false) => "0".into(),
            (Shape::U8, true) => "u8::MAX".into(),
            (Shape::I16, false) => "i16::MIN".into(),
            (Shape::I16, true) => "i16::MAX".into(),
            (Shape::I32, false) => "i32::MIN".into(),
            (Shape::I32, true) => "i32::MAX".into(),
            (Shape::CStr | Shape::Rest, false) => "b\"\"".into(),
            (Shape::CStr, true) => self.text().into(),
            (Shape::Rest, true) => self.blob().into(),
            (Shape::Bytes(n), false) => format!("[0; {n}]"),
            (Shape::Bytes(n), true) => format!("[u8::MAX; {n}]"),
            (Shape::NBytes, false) => "None".into(),
            (Shape::NBytes, true) => format!("Some({})", self.blob()),
            (
                Shape::Array(_)
                | Shape::CStrList
                | Shape::CStrList32
                | Shape::Pairs
                | Shape::Fields,
                false,
            ) => "Array::EMPTY".into(),
            (Shape::Array(Elem::I16), true) => self.array("[i16::MIN, -1, 0, 1, i16::MAX]".into()),
            (Shape::Array(Elem::I32), true) => self.array("[i32::MIN, -1, 0, 1, i32::MAX]".into()),
            (Shape::Array(Elem::NBytes), true) => {
                let items = format!(
                    "[None, Some({}), Some({}), Some({})]",
                    lit(b""),
                    lit(b"\0\xff"),
                    self.blob()
                );
                self.array(items)
            }
            (Shape::Array(Elem::Struct(name)), true) => {
                let Some(s) = sec.structs.iter().find(|s| &s.name == name) else {
                    return "Array::EMPTY".into();
                };
                let small = self.literal(sec, module, name, &s.fields, false, None);
                let large = self.literal(sec, module, name, &s.fields, true, None);
                self.array(format!("[{small}, {large}]"))
            }
            (Shape::CStrList32 | Shape::CStrList, true) => {
                let items = format!(
                    "[{}, {}, {}]",
                    lit(b"SCRAM-SHA-256"),
                    lit(b"_pq_.x"),
                    self.text()
                );
                self.array(items)
            }
            (Shape::Pairs, true) => {
                let t = self.text();
                let items = format!(
                    "[({}, {}), ({}, {}), ({t}, {t})]",
                    lit(b"user"),
                    lit(b"alice"),
                    lit(b"options"),
                    lit(b"")
                );
                self.array(items)
            }
            (Shape::Fields, true) => {
                let items = format!(
                    "[(b'S', {}), (b'C', {}), (u8::MAX, {}), (b'M', {})]",
                    lit(b"ERROR"),
                    lit(b"XX000"),
                    lit(b""),
                    self.text()
                );
                self.array(items)
            }
        }
    }

    fn array(&mut self, items: String) -> String {
        let name = self.local(items);
        format!("Array::from_slice(&{name})")
    }

    /// `Name { field: value, ... }` (a struct or a message with fields);
    /// `first`, when given, is the first field's value.
    fn literal(
        &mut self,
        sec: &Section,
        module: &str,
        path: &str,
        fields: &[Field],
        max: bool,
        first: Option<String>,
    ) -> String {
        if fields.is_empty() {
            return format!("{module}::{path}");
        }
        let mut s = format!("{module}::{path} {{ ");
        let mut first = first;
        for f in fields {
            let v = match first.take() {
                Some(v) => v,
                None => self.value(sec, module, &f.shape, max),
            };
            s.push_str(&format!("{}: {v}, ", f.name));
        }
        s.push('}');
        s
    }
}

/// Generates the whole test file (unformatted), after `header`.
pub fn roundtrip(header: &str, def: &Def) -> String {
    let mut body = String::new();
    for sec in &def.sections {
        for m in &sec.messages {
            match &m.body {
                Body::Fields(fields) => {
                    for max in [false, true] {
                        if fields.is_empty() && max {
                            continue;
                        }
                        let mut sample = Sample::default();
                        let module = sec.dir.keyword();
                        // A version field must carry the message's major version.
                        let version = match m.head {
                            Head::Major(_) if max => {
                                Some(format!("{module}::{}::MAJOR << 16 | 0xffff", m.name))
                            }
                            Head::Major(_) => Some(format!("{module}::{}::MAJOR << 16", m.name)),
                            _ => None,
                        };
                        let value = sample.literal(sec, module, &m.name, fields, max, version);
                        let suffix = if fields.is_empty() {
                            ""
                        } else if max {
                            "_max"
                        } else {
                            "_min"
                        };
                        let open = fields.last().is_some_and(|f| f.shape == Shape::Rest);
                        test(
                            &mut body,
                            sec,
                            m,
                            &format!("{}{suffix}", snake(&m.name)),
                            sample,
                            &value,
                            open,
                        );
                    }
                }
                Body::Union(cases) => {
                    for c in cases {
                        for max in [false, true] {
                            if c.fields.is_empty() && max {
                                continue;
                            }
                            let mut sample = Sample::default();
                            let module = sec.dir.keyword();
                            let path = format!("{}::{}", m.name, c.name);
                            let value = sample.literal(sec, module, &path, &c.fields, max, None);
                            let suffix = if c.fields.is_empty() {
                                ""
                            } else if max {
                                "_max"
                            } else {
                                "_min"
                            };
                            let open = c.fields.last().is_some_and(|f| f.shape == Shape::Rest);
                            let name = format!("{}_{}{suffix}", snake(&m.name), snake(&c.name));
                            test(&mut body, sec, m, &name, sample, &value, open);
                        }
                    }
                }
            }
        }
    }

    let mut out = String::new();
    w!(out, "{header}");
    w!(
        out,
        "//! Encode -> decode round trips for every message in `codegen/messages.def`,"
    );
    w!(
        out,
        "//! each with its fields at their smallest and at their largest, plus"
    );
    w!(
        out,
        "//! truncation and trailing-byte checks. Generated so that a new message gets"
    );
    w!(out, "//! its test without anyone writing one.");
    w!(out);
    w!(out, "use bytes::BytesMut;");
    w!(out);
    if body.contains("Array::") {
        w!(out, "use crate::codec::{{self, Array, DecodeError}};");
    } else {
        w!(out, "use crate::codec::{{self, DecodeError}};");
    }
    for sec in &def.sections {
        w!(
            out,
            "use crate::messages::{}::{{self, {}}};",
            sec.dir.keyword(),
            enum_name(sec.dir)
        );
    }
    w!(out);
    w!(
        out,
        "/// 64 KiB of text without NUL bytes, for the longest C strings."
    );
    w!(out, "fn text() -> Vec<u8> {{");
    w!(out, "(0..65_536u32).map(|i| (i % 255 + 1) as u8).collect()");
    w!(out, "}}");
    w!(out);
    w!(
        out,
        "/// 1 MiB holding every byte value, for the longest byte strings."
    );
    w!(out, "fn blob() -> Vec<u8> {{");
    w!(out, "(0..1u32 << 20).map(|i| (i % 256) as u8).collect()");
    w!(out, "}}");
    w!(out);
    w!(
        out,
        "/// Checks that no truncation of `body` decodes (unless the message ends"
    );
    w!(
        out,
        "/// with a `rest` field, which takes any length) and that one byte too many"
    );
    w!(
        out,
        "/// is `TrailingData`. For long bodies only cuts near either end are tried."
    );
    w!(
        out,
        "fn check_malformed(body: &[u8], open_ended: bool, decode: impl Fn(&[u8]) -> Result<(), DecodeError>) {{"
    );
    w!(
        out,
        "for n in (0..body.len()).filter(|&n| n < 256 || body.len() - n <= 256) {{"
    );
    w!(out, "let result = decode(&body[..n]);");
    w!(
        out,
        "assert!(open_ended || result.is_err(), \"a {{n}}-byte prefix decoded\");"
    );
    w!(out, "}}");
    w!(out, "let mut longer = body.to_vec();");
    w!(out, "longer.push(0);");
    w!(out, "let result = decode(&longer);");
    w!(out, "if open_ended {{");
    w!(out, "assert!(result.is_ok());");
    w!(out, "}} else {{");
    w!(
        out,
        "assert_eq!(result, Err(DecodeError::TrailingData {{ extra: 1 }}));"
    );
    w!(out, "}}");
    w!(out, "}}");
    w!(out);
    out.push_str(&body);
    out
}

fn test(
    out: &mut String,
    sec: &Section,
    m: &Message,
    name: &str,
    sample: Sample,
    value: &str,
    open: bool,
) {
    let module = sec.dir.keyword();
    let ty = format!("{module}::{}", m.name);
    let en = enum_name(sec.dir);
    w!(out, "#[test]");
    w!(out, "fn {module}_{name}() {{");
    if sample.text {
        w!(out, "let text = text();");
    }
    if sample.blob {
        w!(out, "let blob = blob();");
    }
    for l in &sample.lets {
        w!(out, "{l}");
    }
    w!(out, "let msg = {value};");
    w!(out, "let mut buf = BytesMut::new();");
    w!(out, "msg.encode(&mut buf);");
    let shared = match m.head {
        Head::Tag(t) => sec.shared.iter().find(|s| s.tag == t),
        _ => None,
    };
    if sec.dir == Direction::Startup {
        w!(out, "let body = codec::packet_body(&buf).unwrap();");
        w!(out, "assert_eq!({ty}::decode_packet(&buf), Ok(msg));");
        w!(
            out,
            "assert_eq!({en}::decode(body), Ok({en}::{}(msg)));",
            m.name
        );
    } else {
        w!(
            out,
            "let body = codec::frame_body(&buf, {ty}::TAG).unwrap();"
        );
        w!(out, "assert_eq!({ty}::decode_frame(&buf), Ok(msg));");
        match shared {
            Some(s) => w!(
                out,
                "assert_eq!({en}::decode({ty}::TAG, body), Ok({en}::{}(body)));",
                s.name
            ),
            None => w!(
                out,
                "assert_eq!({en}::decode_frame(&buf), Ok({en}::{}(msg)));",
                m.name
            ),
        }
    }
    w!(out, "let decoded = {ty}::decode(body).unwrap();");
    w!(out, "assert_eq!(decoded, msg);");
    w!(out, "let mut again = BytesMut::new();");
    w!(out, "decoded.encode(&mut again);");
    w!(out, "assert_eq!(again, buf);");
    if shared.is_none() {
        w!(out, "again.clear();");
        w!(out, "{en}::{}(decoded).encode(&mut again);", m.name);
        w!(out, "assert_eq!(again, buf);");
    }
    w!(
        out,
        "check_malformed(body, {open}, |b| {ty}::decode(b).map(drop));"
    );
    w!(out, "}}");
    w!(out);
}
