//! Every file in testdata/invalid starts with `# expect: MESSAGE`; loading it must fail with exactly that
//! message.

use super::{corpus, load};

#[test]
fn every_mistake_has_its_exact_message() {
    let files = corpus("testdata/invalid");
    assert!(files.len() >= 30, "corpus went missing: {files:?}");
    let mut failures = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let expected = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{} has no `# expect:` first line", path.display()));
        match load(path) {
            Ok(config) => failures.push(format!(
                "{}: parsed, expected an error: {config:?}",
                path.display()
            )),
            Err(err) if err.to_string() == expected => {}
            Err(err) => failures.push(format!(
                "{}:\n  got:      {err}\n  expected: {expected}",
                path.display()
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[test]
fn env_default_fills_what_unset_leaves_empty() {
    // The same line as testdata/invalid/env_unset.gatfile, with a default: now it parses.
    let text = ":6432 {\n    pool * {\n        address 127.0.0.1:5432\n        max_connections {$PGGAT_TEST_UNSET:5}\n    }\n}\n";
    let (_, pool) = super::first_pool(text);
    assert_eq!(pool.max_connections, 5);
}

#[test]
fn error_positions_survive_env_substitution() {
    // The value expands to more text than the placeholder: the bad token after it still points at the
    // column where it is written.
    let text = ":6432 {\n    pool * {$PGGAT_TEST_HOST} postgres postgres pw extra\n}\n";
    let err = gat::parse_str_with("Gatfile", text, &super::TestEnv::new())
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("Gatfile:2:52: extra argument \"extra\" to pool, expected end of line")
    );
    let text = ":6432 {\n    {$PGGAT_TEST_HOST:x}   tru\n}\n";
    let err = gat::parse_str_with("Gatfile", text, &super::TestEnv::new())
        .err()
        .map(|e| e.to_string());
    assert!(
        err.as_deref()
            .is_some_and(|e| e.starts_with("Gatfile:2:5: unknown directive \"db.example\"")),
        "{err:?}"
    );
}

#[test]
fn crlf_line_endings() {
    let text = "{\r\n    threads 2\r\n}\r\n:6432 {\r\n    pool * 127.0.0.1:5432 postgres postgres pw\r\n}\r\n";
    let config = gat::parse_str("Gatfile", text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.global.threads, Some(2));
    let text = ":6432 {\r\n    pool * 127.0.0.1:5432 postgres postgres\r\n}\r\n";
    let err = gat::parse_str("Gatfile", text).err().map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("Gatfile:2:5: missing value for pool, expected a password")
    );
}

#[test]
fn unreadable_config() {
    let err = gat::load("testdata/does-not-exist.gatfile")
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some(
            "testdata/does-not-exist.gatfile: cannot read config: file not found, expected a readable Gatfile or JSON file"
        )
    );
}
