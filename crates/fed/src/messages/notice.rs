//! ErrorResponse and NoticeResponse fields: accessors for the ones a pooler
//! reads, and an encoder for the errors it sends itself.

use bytes::BytesMut;

use super::backend::{ErrorResponse, NoticeResponse};
use crate::codec::FieldList;
use crate::sqlstate::SqlState;

/// Field codes of ErrorResponse and NoticeResponse (PostgreSQL docs, "Error
/// and Notice Message Fields").
pub mod field {
    /// Severity, possibly localized.
    pub const SEVERITY: u8 = b'S';
    /// Severity, never localized (PostgreSQL 9.6+).
    pub const SEVERITY_RAW: u8 = b'V';
    /// SQLSTATE code.
    pub const CODE: u8 = b'C';
    /// Primary message.
    pub const MESSAGE: u8 = b'M';
    /// Detail.
    pub const DETAIL: u8 = b'D';
    /// Hint.
    pub const HINT: u8 = b'H';
    /// Cursor position in the query string.
    pub const POSITION: u8 = b'P';
}

/// The severity of an error or notice, as PostgreSQL spells it in the `V`
/// field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Severity {
    /// The statement failed; the session goes on.
    Error,
    /// The session ends.
    Fatal,
    /// Every session of the server ends.
    Panic,
    /// A notice: something may be wrong.
    Warning,
    /// A notice: something the user may want to know.
    Notice,
    /// A notice: debugging output.
    Debug,
    /// A notice: information the user asked for.
    Info,
    /// A notice: server log output.
    Log,
}

impl Severity {
    /// The wire spelling (`ERROR`, `FATAL`...).
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "ERROR",
            Severity::Fatal => "FATAL",
            Severity::Panic => "PANIC",
            Severity::Warning => "WARNING",
            Severity::Notice => "NOTICE",
            Severity::Debug => "DEBUG",
            Severity::Info => "INFO",
            Severity::Log => "LOG",
        }
    }

    /// Parses the non-localized spelling.
    pub fn from_bytes(s: &[u8]) -> Option<Severity> {
        Some(match s {
            b"ERROR" => Severity::Error,
            b"FATAL" => Severity::Fatal,
            b"PANIC" => Severity::Panic,
            b"WARNING" => Severity::Warning,
            b"NOTICE" => Severity::Notice,
            b"DEBUG" => Severity::Debug,
            b"INFO" => Severity::Info,
            b"LOG" => Severity::Log,
            _ => return None,
        })
    }
}

/// Accessors shared by ErrorResponse and NoticeResponse.
macro_rules! fields_accessors {
    ($ty:ident) => {
        impl<'a> $ty<'a> {
            /// The value of the first field with `code`.
            pub fn field(&self, code: u8) -> Option<&'a [u8]> {
                self.fields.field(code)
            }

            /// The severity: the non-localized `V` field when present (servers
            /// since 9.6), else the possibly localized `S`.
            pub fn severity(&self) -> Option<&'a [u8]> {
                self.field(field::SEVERITY_RAW)
                    .or_else(|| self.field(field::SEVERITY))
            }

            /// The SQLSTATE, if the `C` field holds a well-formed one.
            pub fn code(&self) -> Option<SqlState> {
                SqlState::from_code(self.field(field::CODE)?)
            }

            /// The primary message.
            pub fn message(&self) -> Option<&'a [u8]> {
                self.field(field::MESSAGE)
            }

            /// The detail, if any.
            pub fn detail(&self) -> Option<&'a [u8]> {
                self.field(field::DETAIL)
            }

            /// The hint, if any.
            pub fn hint(&self) -> Option<&'a [u8]> {
                self.field(field::HINT)
            }

            /// Appends a message with the fields PostgreSQL always sends
            /// (`S` and `V` severity, `C`, `M`) plus optional detail and hint,
            /// without allocating.
            pub fn encode_parts(
                buf: &mut BytesMut,
                severity: Severity,
                code: SqlState,
                message: &str,
                detail: Option<&str>,
                hint: Option<&str>,
            ) {
                let sev = severity.as_str().as_bytes();
                let mut fields = [
                    (field::SEVERITY, sev),
                    (field::SEVERITY_RAW, sev),
                    (field::CODE, &code.as_bytes()[..]),
                    (field::MESSAGE, message.as_bytes()),
                    (0, &b""[..]),
                    (0, &b""[..]),
                ];
                let mut n = 4;
                for (c, v) in [(field::DETAIL, detail), (field::HINT, hint)] {
                    if let Some(v) = v {
                        fields[n] = (c, v.as_bytes());
                        n += 1;
                    }
                }
                $ty {
                    fields: FieldList::from_slice(&fields[..n]),
                }
                .encode(buf);
            }
        }
    };
}

fields_accessors!(ErrorResponse);
fields_accessors!(NoticeResponse);
