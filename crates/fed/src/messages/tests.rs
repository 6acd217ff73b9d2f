//! Hand-written tests: real byte strings as PostgreSQL and libpq send them
//! (written out from the protocol docs), malformed input that must fail with
//! its specific error and never panic, and the hand-written conveniences.
//! Every message's encode -> decode round trip is in the generated
//! `roundtrip.rs`.

use bytes::BytesMut;

use super::backend::{self, Authentication, Backend};
use super::frontend::{self, Frontend};
use super::startup::{self, Startup};
use super::{Severity, notice};
use crate::codec::{Array, DecodeError};
use crate::sqlstate::SqlState;

/// Frames `body` with `tag` and its length.
fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut f = vec![tag];
    f.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
    f.extend_from_slice(body);
    f
}

// ---- real bytes ----

#[test]
fn ready_for_query_idle() {
    let bytes = b"Z\0\0\0\x05I";
    let Ok(Backend::ReadyForQuery(rfq)) = Backend::decode_frame(bytes) else {
        panic!("not a ReadyForQuery");
    };
    assert!(rfq.is_idle());
    assert_eq!(rfq.status, backend::ReadyForQuery::IDLE);
}

#[test]
fn error_response_from_postgres() {
    let body = b"SFATAL\0VFATAL\0C28P01\0Mpassword authentication failed for user \"bob\"\0\
                 Fauth.c\0L326\0Rauth_failed\0\0";
    let bytes = frame(b'E', body);
    let Ok(Backend::ErrorResponse(e)) = Backend::decode_frame(&bytes) else {
        panic!("not an ErrorResponse");
    };
    assert_eq!(e.code(), Some(SqlState::INVALID_PASSWORD));
    assert_eq!(e.severity(), Some(&b"FATAL"[..]));
    assert_eq!(
        e.message(),
        Some(&b"password authentication failed for user \"bob\""[..])
    );
    assert_eq!(e.field(b'R'), Some(&b"auth_failed"[..]));
    assert_eq!(e.detail(), None);
    assert_eq!(e.fields.len(), 7);
    let codes: Vec<u8> = e.fields.iter().map(|(c, _)| c).collect();
    assert_eq!(codes, b"SVCMFLR");
}

#[test]
fn severity_prefers_the_unlocalized_field() {
    let body = b"SFEHLER\0VERROR\0C42P01\0Mx\0\0";
    let e = backend::ErrorResponse::decode(body).unwrap();
    assert_eq!(e.severity(), Some(&b"ERROR"[..]));
    assert_eq!(
        Severity::from_bytes(e.severity().unwrap()),
        Some(Severity::Error)
    );
    // A pre-9.6 server sends only S.
    let e = backend::ErrorResponse::decode(b"SERROR\0\0").unwrap();
    assert_eq!(e.severity(), Some(&b"ERROR"[..]));
}

#[test]
fn row_description_two_columns() {
    // SELECT 1 AS a, 'x'::text AS b
    let body = b"\0\x02\
                 a\0\0\0\0\0\0\0\0\0\0\x17\0\x04\xff\xff\xff\xff\0\0\
                 b\0\0\0\0\0\0\0\0\0\0\x19\xff\xff\xff\xff\xff\xff\0\0";
    let bytes = frame(b'T', body);
    let Ok(Backend::RowDescription(rd)) = Backend::decode_frame(&bytes) else {
        panic!("not a RowDescription");
    };
    assert_eq!(rd.fields.len(), 2);
    let cols: Vec<_> = rd.fields.iter().collect();
    assert_eq!(cols[0].name, b"a");
    assert_eq!(
        (cols[0].type_oid, cols[0].type_size, cols[0].type_modifier),
        (23, 4, -1)
    );
    assert_eq!(cols[1].name, b"b");
    assert_eq!(
        (cols[1].type_oid, cols[1].type_size, cols[1].format),
        (25, -1, 0)
    );
    assert_eq!(rd.fields.get(1), Some(cols[1]));
    assert_eq!(rd.fields.get(2), None);
    // Re-encoding a decoded view reproduces the bytes.
    let mut buf = BytesMut::new();
    rd.encode(&mut buf);
    assert_eq!(&buf[..], &bytes[..]);
}

#[test]
fn data_row_with_null() {
    let body = b"\0\x03\0\0\0\x0242\xff\xff\xff\xff\0\0\0\0";
    let row = backend::DataRow::decode(body).unwrap();
    let values: Vec<_> = row.values.iter().collect();
    assert_eq!(values, [Some(&b"42"[..]), None, Some(&b""[..])]);
    assert_eq!(row.values.iter().len(), 3);
}

#[test]
fn startup_message_with_user_and_database() {
    let body = b"\0\x03\0\0user\0bob\0database\0db\0options\0\0\0";
    let mut packet = (body.len() as i32 + 4).to_be_bytes().to_vec();
    packet.extend_from_slice(body);
    let Ok(Startup::StartupMessage(sm)) = Startup::decode_packet(&packet) else {
        panic!("not a StartupMessage");
    };
    assert_eq!(sm.protocol_version, startup::StartupMessage::PROTOCOL_3_0);
    assert_eq!((sm.major(), sm.minor()), (3, 0));
    assert_eq!(sm.parameter(b"user"), Some(&b"bob"[..]));
    assert_eq!(sm.parameter(b"database"), Some(&b"db"[..]));
    // An empty value is a value, not the end of the list.
    assert_eq!(sm.parameter(b"options"), Some(&b""[..]));
    assert_eq!(sm.parameter(b"application_name"), None);
    let pairs: Vec<_> = sm.parameters.iter().collect();
    assert_eq!(pairs.len(), 3);
    let mut buf = BytesMut::new();
    sm.encode(&mut buf);
    assert_eq!(&buf[..], &packet[..]);
}

#[test]
fn startup_requests_by_code() {
    assert_eq!(
        Startup::decode_packet(b"\0\0\0\x08\x04\xd2\x16\x2f"),
        Ok(Startup::SSLRequest(startup::SSLRequest))
    );
    assert_eq!(
        Startup::decode_packet(b"\0\0\0\x08\x04\xd2\x16\x30"),
        Ok(Startup::GSSENCRequest(startup::GSSENCRequest))
    );
    let cancel = b"\0\0\0\x10\x04\xd2\x16\x2e\0\0\x30\x39\xde\xad\xbe\xef";
    assert_eq!(
        Startup::decode_packet(cancel),
        Ok(Startup::CancelRequest(startup::CancelRequest {
            process_id: 12345,
            secret_key: 0xdeadbeef_u32 as i32,
        }))
    );
    // Minor versions above 0 are StartupMessages too (answered with
    // NegotiateProtocolVersion).
    let Ok(Startup::StartupMessage(sm)) = Startup::decode(b"\0\x03\0\x02user\0u\0\0") else {
        panic!("3.2 not accepted");
    };
    assert_eq!(sm.minor(), 2);
}

#[test]
fn authentication_requests() {
    let sasl = b"R\0\0\0\x2a\0\0\0\x0aSCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0";
    let Ok(Authentication::SASL { mechanisms }) = Authentication::decode_frame(sasl) else {
        panic!("not AuthenticationSASL");
    };
    let names: Vec<_> = mechanisms.iter().collect();
    assert_eq!(names, [&b"SCRAM-SHA-256-PLUS"[..], b"SCRAM-SHA-256"]);

    let md5 = b"R\0\0\0\x0c\0\0\0\x05\x01\x02\x03\x04";
    assert_eq!(
        Backend::decode_frame(md5),
        Ok(Backend::Authentication(Authentication::MD5Password {
            salt: [1, 2, 3, 4]
        }))
    );
    assert_eq!(
        Backend::decode_frame(b"R\0\0\0\x08\0\0\0\0"),
        Ok(Backend::Authentication(Authentication::Ok))
    );
    let fin = b"R\0\0\0\x0e\0\0\0\x0cv=abc=";
    assert_eq!(
        Authentication::decode_frame(fin),
        Ok(Authentication::SASLFinal { data: b"v=abc=" })
    );
}

#[test]
fn bind_from_libpq() {
    // PQexecPrepared(conn, "s1", 2, {"42", NULL}, NULL, NULL, 1)
    let body = b"\0s1\0\0\0\0\x02\0\0\0\x0242\xff\xff\xff\xff\0\x01\0\x01";
    let Ok(Frontend::Bind(b)) = Frontend::decode(b'B', body) else {
        panic!("not a Bind");
    };
    assert_eq!(b.portal, b"");
    assert_eq!(b.statement, b"s1");
    assert!(b.param_formats.is_empty());
    assert_eq!(b.params.get(0), Some(Some(&b"42"[..])));
    assert_eq!(b.params.get(1), Some(None));
    assert_eq!(b.result_formats, Array::from_slice(&[1]));
}

#[test]
fn password_like_is_decoded_by_context() {
    let mut buf = BytesMut::new();
    frontend::SASLInitialResponse {
        mechanism: b"SCRAM-SHA-256",
        data: Some(b"n,,n=,r=abc"),
    }
    .encode(&mut buf);
    let Ok(Frontend::PasswordLike(body)) = Frontend::decode_frame(&buf) else {
        panic!("'p' is not PasswordLike");
    };
    let init = frontend::SASLInitialResponse::decode(body).unwrap();
    assert_eq!(init.mechanism, b"SCRAM-SHA-256");
    // The same body read as a cleartext password is malformed: no single NUL end.
    assert!(frontend::PasswordMessage::decode(body).is_err());
    // Re-encoding the raw variant reproduces the frame.
    let mut again = BytesMut::new();
    Frontend::PasswordLike(body).encode(&mut again);
    assert_eq!(again, buf);
}

#[test]
fn command_complete_tags() {
    let cc = |t: &'static [u8]| backend::CommandComplete { tag: t };
    assert_eq!(cc(b"INSERT 0 5").command(), b"INSERT");
    assert_eq!(cc(b"INSERT 0 5").rows(), Some(5));
    assert_eq!(cc(b"SELECT 3").command(), b"SELECT");
    assert_eq!(cc(b"DISCARD ALL").command(), b"DISCARD ALL");
    assert_eq!(cc(b"DISCARD ALL").rows(), None);
    assert_eq!(cc(b"SET").command(), b"SET");
    assert_eq!(cc(b"SET").tag(), b"SET");
}

#[test]
fn error_encoder_writes_what_postgres_writes() {
    let mut buf = BytesMut::new();
    backend::ErrorResponse::encode_parts(
        &mut buf,
        Severity::Fatal,
        SqlState::TOO_MANY_CONNECTIONS,
        "too many clients",
        None,
        Some("raise max_connections"),
    );
    let expected = frame(
        b'E',
        b"SFATAL\0VFATAL\0C53300\0Mtoo many clients\0Hraise max_connections\0\0",
    );
    assert_eq!(&buf[..], &expected[..]);
    let e = backend::ErrorResponse::decode_frame(&buf).unwrap();
    assert_eq!(e.hint(), Some(&b"raise max_connections"[..]));

    buf.clear();
    backend::NoticeResponse::encode_parts(
        &mut buf,
        Severity::Warning,
        SqlState::WARNING,
        "m",
        Some("d"),
        None,
    );
    let n = backend::NoticeResponse::decode_frame(&buf).unwrap();
    assert_eq!(n.code(), Some(SqlState::WARNING));
    assert_eq!(n.detail(), Some(&b"d"[..]));
    assert_eq!(n.field(notice::field::SEVERITY), Some(&b"WARNING"[..]));
}

// ---- malformed input: the specific error, never a panic ----

#[test]
fn truncated_bodies() {
    assert_eq!(
        backend::ReadyForQuery::decode(b""),
        Err(DecodeError::TooShort { needed: 1, have: 0 })
    );
    assert_eq!(
        backend::BackendKeyData::decode(b"\0\0\0\x01\0\0"),
        Err(DecodeError::TooShort { needed: 4, have: 2 })
    );
    // RowDescription announcing two columns but carrying one.
    let one = b"\0\x02a\0\0\0\0\0\0\0\0\0\0\x17\0\x04\xff\xff\xff\xff\0\0";
    assert_eq!(
        backend::RowDescription::decode(one),
        Err(DecodeError::MissingNul)
    );
    // A DataRow value longer than the body.
    assert_eq!(
        backend::DataRow::decode(b"\0\x01\0\0\0\x09abc"),
        Err(DecodeError::TooShort { needed: 9, have: 3 })
    );
    // Field list without its terminating zero.
    assert_eq!(
        backend::ErrorResponse::decode(b"SERROR\0"),
        Err(DecodeError::TooShort { needed: 1, have: 0 })
    );
    // SASL mechanisms without the empty-string terminator.
    assert_eq!(
        Authentication::decode(b"\0\0\0\x0aSCRAM-SHA-256\0"),
        Err(DecodeError::MissingNul)
    );
    assert_eq!(
        Startup::decode(b"\0\x03"),
        Err(DecodeError::TooShort { needed: 4, have: 2 })
    );
}

#[test]
fn missing_nul() {
    assert_eq!(
        frontend::Query::decode(b"SELECT 1"),
        Err(DecodeError::MissingNul)
    );
    assert_eq!(
        frontend::Parse::decode(b"s1\0SELECT 1"),
        Err(DecodeError::MissingNul)
    );
}

#[test]
fn trailing_data() {
    assert_eq!(
        backend::ReadyForQuery::decode(b"IX"),
        Err(DecodeError::TrailingData { extra: 1 })
    );
    assert_eq!(
        frontend::Query::decode(b"SELECT 1\0;\0"),
        Err(DecodeError::TrailingData { extra: 2 })
    );
    assert_eq!(
        frontend::Sync::decode(b"\0"),
        Err(DecodeError::TrailingData { extra: 1 })
    );
    assert_eq!(
        Startup::decode(b"\x04\xd2\x16\x2f\0"),
        Err(DecodeError::TrailingData { extra: 1 })
    );
}

#[test]
fn negative_lengths_and_counts() {
    assert_eq!(
        backend::DataRow::decode(b"\0\x01\xff\xff\xff\xfe"),
        Err(DecodeError::BadLength(-2))
    );
    assert_eq!(
        backend::FunctionCallResponse::decode(b"\x80\0\0\0"),
        Err(DecodeError::BadLength(i32::MIN))
    );
    assert_eq!(
        backend::NegotiateProtocolVersion::decode(b"\0\0\0\0\xff\xff\xff\xff"),
        Err(DecodeError::NegativeCount(-1))
    );
    // A huge positive count fails on the missing elements, without looping
    // or reserving anything.
    assert_eq!(
        backend::NegotiateProtocolVersion::decode(b"\0\0\0\0\x7f\xff\xff\xff"),
        Err(DecodeError::MissingNul)
    );
    // A frame whose length disagrees with its size.
    assert_eq!(
        Backend::decode_frame(b"Z\0\0\0\x04I"),
        Err(DecodeError::BadLength(4))
    );
}

#[test]
fn unknown_types() {
    assert_eq!(
        Authentication::decode(b"\0\0\0\x06"),
        Err(DecodeError::UnknownAuthentication(6))
    );
    assert_eq!(
        Frontend::decode(b'z', b""),
        Err(DecodeError::UnknownTag(b'z'))
    );
    assert_eq!(
        Backend::decode(b'Q', b"x\0"),
        Err(DecodeError::UnknownTag(b'Q'))
    );
    assert_eq!(
        frontend::Query::decode_frame(b"Z\0\0\0\x05I"),
        Err(DecodeError::WrongTag {
            expected: b'Q',
            found: b'Z'
        })
    );
    // Protocol 2.0, and a made-up request code.
    assert_eq!(
        Startup::decode(b"\0\x02\0\0user\0u\0\0"),
        Err(DecodeError::UnknownStartupCode(2 << 16))
    );
    assert_eq!(
        Startup::decode(b"\x04\xd2\x16\x31"),
        Err(DecodeError::UnknownStartupCode(80877105))
    );
    assert_eq!(
        startup::CancelRequest::decode(b"\x04\xd2\x16\x2f\0\0\0\0\0\0\0\0"),
        Err(DecodeError::UnknownStartupCode(80877103))
    );
}

/// A tiny deterministic generator, so the fuzz-like tests need no crate.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u8 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 56) as u8
    }
}

/// Every byte value at every position of real bodies, and random bodies for
/// every tag: decoding returns Ok or Err and never panics.
#[test]
fn arbitrary_bytes_never_panic() {
    let seeds: &[(u8, &[u8])] = &[
        (
            b'T',
            b"\0\x01a\0\0\0\0\0\0\0\0\0\0\x17\0\x04\xff\xff\xff\xff\0\0",
        ),
        (b'D', b"\0\x02\0\0\0\x0242\xff\xff\xff\xff"),
        (b'E', b"SERROR\0C42P01\0Mx\0\0"),
        (b'R', b"\0\0\0\x0aSCRAM-SHA-256\0\0"),
        (b'v', b"\0\0\0\0\0\0\0\x01_pq_.x\0"),
        (b'B', b"\0s\0\0\x01\0\x01\0\x01\0\0\0\x011\0\x01\0\0"),
        (b'F', b"\0\0\0\x01\0\0\0\x01\0\0\0\x01x\0\0"),
    ];
    let decode_any = |tag: u8, body: &[u8]| {
        let _ = Backend::decode(tag, body);
        let _ = Frontend::decode(tag, body);
        let _ = Startup::decode(body);
        let _ = frontend::SASLInitialResponse::decode(body);
        let _ = frontend::PasswordMessage::decode(body);
    };
    for (tag, body) in seeds {
        for i in 0..body.len() {
            for v in [0u8, 1, 0x7f, 0x80, 0xfe, 0xff] {
                let mut b = body.to_vec();
                b[i] = v;
                decode_any(*tag, &b);
            }
        }
    }
    let mut rng = Lcg(42);
    for _ in 0..20_000 {
        let len = usize::from(rng.next() % 24);
        let body: Vec<u8> = (0..len).map(|_| rng.next() % 4).collect();
        decode_any(rng.next(), &body);
        let with_header: Vec<u8> = [&[0, 0, 0, len as u8 + 4][..], &body].concat();
        let _ = Startup::decode_packet(&with_header);
        let _ = Backend::decode_frame(&body);
    }
}

// ---- encoding edge cases ----

#[test]
fn counts_up_to_65535_round_trip() {
    let params = vec![Some(&b"x"[..]); 65_535];
    let bind = frontend::Bind {
        portal: b"",
        statement: b"s",
        param_formats: Array::EMPTY,
        params: Array::from_slice(&params),
        result_formats: Array::EMPTY,
    };
    let mut buf = BytesMut::new();
    bind.encode(&mut buf);
    let decoded = frontend::Bind::decode_frame(&buf).unwrap();
    assert_eq!(decoded.params.len(), 65_535);
    assert_eq!(decoded, bind);
}

#[test]
fn unrepresentable_values_are_clipped_not_misframed() {
    let mut buf = BytesMut::new();
    frontend::Query {
        query: b"SELECT 1\0; DROP TABLE t",
    }
    .encode(&mut buf);
    assert_eq!(
        frontend::Query::decode_frame(&buf),
        Ok(frontend::Query { query: b"SELECT 1" })
    );
}

#[test]
fn debug_is_readable_and_hides_secrets() {
    let q = frontend::Query {
        query: b"SELECT 'x'",
    };
    assert_eq!(format!("{q:?}"), r#"Query { query: "SELECT 'x'" }"#);
    let p = frontend::PasswordMessage {
        password: b"hunter2",
    };
    assert_eq!(
        format!("{p:?}"),
        "PasswordMessage { password: <7 bytes redacted> }"
    );
    assert!(!format!("{:?}", Frontend::PasswordLike(b"hunter2\0")).contains("hunter2"));
    let k = backend::BackendKeyData {
        process_id: 7,
        secret_key: 1234,
    };
    assert!(!format!("{k:?}").contains("1234"));
    let rfq = Backend::ReadyForQuery(backend::ReadyForQuery { status: b'I' });
    assert_eq!(format!("{rfq:?}"), "ReadyForQuery { status: b'I' }");
    assert_eq!(format!("{:?}", Authentication::Ok), "AuthenticationOk");
}
