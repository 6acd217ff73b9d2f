use super::*;

fn parse_body(name: &str, query: &str, types: &[i32]) -> Vec<u8> {
    let mut b = BytesMut::new();
    frontend::Parse {
        statement: name.as_bytes(),
        query: query.as_bytes(),
        param_types: crate::codec::Array::from_slice(types),
    }
    .encode(&mut b);
    b[5..].to_vec()
}

#[test]
fn same_content_same_server_name_whatever_the_client_name() {
    let a = Statement::new(&parse_body("s1", "SELECT $1", &[23]), 2, true);
    let b = Statement::new(&parse_body("other", "SELECT $1", &[23]), 5, true);
    let c = Statement::new(&parse_body("s1", "SELECT $1", &[25]), 2, true);
    assert_eq!(a.server_name(), b.server_name());
    assert_ne!(
        a.server_name(),
        c.server_name(),
        "parameter types are content"
    );
    assert!(a.server_name().starts_with(b"pggat_"));
    assert_eq!(a.server_name().len(), 6 + 32);
    // The Parse it carries creates it under the server name.
    let p = frontend::Parse::decode(&a.parse[5..]).unwrap();
    assert_eq!(p.statement, a.server_name());
    assert_eq!(p.query, b"SELECT $1");
}

#[test]
fn server_statements_evict_the_least_recently_used() {
    let mut s = ServerStatements::with_capacity(2);
    assert_eq!(s.insert(1, 0), None);
    assert_eq!(s.insert(2, 0), None);
    assert!(s.has(1), "touch 1: 2 is now the oldest");
    assert_eq!(s.insert(3, 0), Some(2));
    assert!(s.has(1) && s.has(3) && !s.has(2));
    assert_eq!(s.len(), 2);
    s.clear();
    assert!(s.is_empty());
}

#[test]
fn bind_names_are_split_without_decoding_parameters() {
    let (portal, stmt, rest) = split_two_cstrs(b"p1\0s1\0\x00\x01rest").unwrap();
    assert_eq!(
        (portal, stmt, rest),
        (&b"p1"[..], &b"s1"[..], &b"\x00\x01rest"[..])
    );
    assert!(split_two_cstrs(b"no terminator").is_none());
}

#[test]
fn parses_are_answered_locally_only_for_known_contents() {
    let known = Known::default();
    let mut c = ClientStatements::default();
    let body = parse_body("s1", "SELECT 1", &[]);
    assert!(!c.can_parse_locally(&body, &known), "never parsed anywhere");
    known.insert(Statement::new(&body, 2, true).hash);
    assert!(c.can_parse_locally(&body, &known));
    c.parse_locally(&body);
    assert_eq!(c.len(), 1);
    assert!(!c.can_parse_locally(&body, &known), "the name exists now");
    assert!(
        !c.can_parse_locally(&parse_body("", "SELECT 1", &[]), &known),
        "the unnamed statement goes to a server"
    );
    let mut close = BytesMut::new();
    frontend::Close {
        kind: b'S',
        name: b"s1",
    }
    .encode(&mut close);
    assert!(ClientStatements::can_close_locally(&close[5..]));
    c.close_locally(&close[5..]);
    assert!(c.is_empty());
}

#[test]
fn deallocate_of_a_client_statement_is_recognised_by_its_canonical_name() {
    let mut c = ClientStatements::default();
    c.parse_locally(&parse_body("s_1", "SELECT 1", &[]));
    c.parse_locally(&parse_body("Mixed", "SELECT 2", &[]));
    for (sql, found) in [
        (&b"DEALLOCATE S_1"[..], Some(&b"s_1"[..])),
        (b"  deallocate prepare s_1 ;", Some(b"s_1")),
        (b"/* c */ DEALLOCATE \"Mixed\"", Some(b"Mixed")),
        (b"DEALLOCATE Mixed", None),
        (b"DEALLOCATE ALL", None),
        (b"DEALLOCATE s_1; SELECT 1", None),
        (b"SELECT 'DEALLOCATE s_1'", None),
        (b"DEALLOCATE nope", None),
    ] {
        assert_eq!(
            c.deallocated(sql).map(|(n, _)| n),
            found.map(Box::from),
            "{}",
            String::from_utf8_lossy(sql)
        );
    }
}

#[test]
fn deallocate_between_transactions_is_answered_and_forgets_the_name() {
    let mut c = ClientStatements::default();
    c.parse_locally(&parse_body("s1", "SELECT 1", &[]));
    let mut replies = BytesMut::new();
    assert!(!c.deallocate_locally(b"DEALLOCATE other\0", &mut replies));
    assert!(replies.is_empty() && c.len() == 1, "untouched");
    assert!(c.deallocate_locally(b"DEALLOCATE s1\0", &mut replies));
    assert!(c.is_empty());
    assert_eq!(&replies[..], b"C\0\0\0\x0fDEALLOCATE\0Z\0\0\0\x05I");
}
