use super::*;

fn params(pairs: &[(&str, &str)]) -> Params {
    let mut p = Params::default();
    for (k, v) in pairs {
        p.set(k, v);
    }
    p
}

#[test]
fn nothing_to_sync_between_equal_sides() {
    let tracked = vec!["TimeZone".to_owned()];
    let c = ClientSettings::new(params(&[("TimeZone", "UTC")]));
    let server = ServerSettings::default();
    assert_eq!(
        c.sync_query(&tracked, &params(&[("TimeZone", "UTC")]), &server),
        None
    );
}

#[test]
fn sync_resets_foreign_settings_and_replays_the_clients_own() {
    let tracked = vec!["TimeZone".to_owned()];
    let mut c = ClientSettings::new(params(&[("TimeZone", "Asia/Tokyo")]));
    c.tx.push(Change::Set {
        name: "statement_timeout".into(),
        stmt: "SET statement_timeout = '1s'".into(),
    });
    let mut mine = ServerSettings::default();
    c.commit(&mut mine);
    assert_eq!(
        c.settings().collect::<Vec<_>>(),
        [("statement_timeout", "SET statement_timeout = '1s'")]
    );
    // Another server, where someone left work_mem and a setting of unknown value.
    let mut other = ServerSettings::default();
    other
        .applied
        .insert("work_mem".into(), "SET work_mem = '64MB'".into());
    other.dirty.insert("My.Setting".into());
    let sql = c
        .sync_query(&tracked, &params(&[("TimeZone", "UTC")]), &other)
        .unwrap();
    assert_eq!(
        sql,
        "RESET \"My\".\"Setting\";RESET work_mem;SET statement_timeout = '1s';\
         SELECT pg_catalog.set_config(E'TimeZone', E'Asia/Tokyo', false)"
    );
    c.synced(&mut other);
    assert!(other.dirty.is_empty());
    assert_eq!(
        c.sync_query(&tracked, &params(&[("TimeZone", "Asia/Tokyo")]), &other),
        None
    );
    // On its own server nothing is needed either.
    assert_eq!(
        c.sync_query(&tracked, &params(&[("TimeZone", "Asia/Tokyo")]), &mine),
        None
    );
}

#[test]
fn a_dirty_setting_is_replayed_even_when_the_statement_matches() {
    let mut c = ClientSettings::default();
    c.tx.push(Change::Set {
        name: "work_mem".into(),
        stmt: "SET work_mem = '8MB'".into(),
    });
    let mut s = ServerSettings::default();
    c.commit(&mut s);
    s.dirty.insert("work_mem".into());
    assert_eq!(
        c.sync_query(&[], &Params::default(), &s).as_deref(),
        Some("SET work_mem = '8MB';")
    );
}

#[test]
fn discard_all_forgets_settings_and_unpins() {
    let mut c = ClientSettings {
        pin: Some(PinReason::Listen),
        ..Default::default()
    };
    c.tx.push(Change::Set {
        name: "work_mem".into(),
        stmt: "SET work_mem = '8MB'".into(),
    });
    c.tx.push(Change::DiscardAll);
    let mut s = ServerSettings::default();
    c.commit(&mut s);
    assert!(c.pinned().is_none());
    assert_eq!(c.settings().count(), 0);
    assert!(s.is_default());
}

#[test]
fn names_and_literals_are_quoted_safely() {
    assert_eq!(quote_name("statement_timeout"), "statement_timeout");
    assert_eq!(quote_name("app.user_id"), "app.user_id");
    assert_eq!(quote_name("Odd\"Name"), "\"Odd\"\"Name\"");
    assert_eq!(quote_literal(r"it's a \ test"), r"E'it''s a \\ test'");
}

#[test]
fn set_and_reset_keywords_are_recognised_case_insensitively() {
    assert!(starts_with_set(b"set local x = 1"));
    assert!(starts_with_set(b"RESET x"));
    assert!(!starts_with_set(b"SETTLE"));
    assert!(!starts_with_set(b"SELECT 1"));
}
