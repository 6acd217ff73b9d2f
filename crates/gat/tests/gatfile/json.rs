//! The JSON form: every valid Gatfile survives Gatfile -> JSON -> config unchanged, `load` picks the
//! right reader, and JSON mistakes are reported with their position.

use super::{corpus, load};

#[test]
fn every_valid_file_round_trips() {
    for path in corpus("testdata/valid") {
        let config = load(&path).unwrap_or_else(|e| panic!("{e}"));
        for pretty in [false, true] {
            let json = config.to_json(pretty);
            let back = gat::Config::from_json("x.json", &json)
                .unwrap_or_else(|e| panic!("{}: {e}\n{json}", path.display()));
            assert_eq!(back, config, "{}", path.display());
            // And the JSON of the copy is the same text: nothing is lost or reordered.
            assert_eq!(back.to_json(pretty), json);
        }
    }
}

#[test]
fn json_shape_is_readable() {
    let config = gat::parse_str(
        "Gatfile",
        "{\n  stat_log_period 1m30s\n}\n:6432 {\n  @ro user *_ro\n  trust @ro\n  pool /app* 127.0.0.1:5432 app app pw\n}\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let value: serde_json::Value = serde_json::from_str(&config.to_json(false)).unwrap_or_default();
    assert_eq!(value["global"]["stat_log_period"], "1m30s");
    assert_eq!(value["global"]["admin"], serde_json::Value::Null);
    assert_eq!(
        value["servers"][0]["listen"][0]["addr"]["tcp"]["port"],
        6432
    );
    assert_eq!(value["servers"][0]["routes"][0]["matcher"]["user"], "*_ro");
    assert_eq!(value["servers"][0]["routes"][0]["handler"], "trust");
    let pool = &value["servers"][0]["routes"][1]["handler"]["pool"];
    assert_eq!(pool["address"]["tcp"]["host"], "127.0.0.1");
    assert_eq!(pool["server_lifetime"], "1h");
    assert_eq!(pool["query_timeout"], serde_json::Value::Null);
    assert_eq!(pool["kind"]["basic"]["mode"], "transaction");
}

#[test]
fn json_mistakes_are_positioned() {
    let config = load(std::path::Path::new("testdata/valid/minimal.gatfile"))
        .unwrap_or_else(|e| panic!("{e}"));
    let json = config.to_json(true);

    let typo = json.replacen("\"max_connections\"", "\"max_conections\"", 1);
    let err = gat::Config::from_json("c.json", &typo)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.starts_with("c.json:") && err.contains("unknown field `max_conections`"),
        "{err}"
    );

    let missing = json.replacen("\"reset_query\": null,", "", 1);
    let err = gat::Config::from_json("c.json", &missing)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("missing field `reset_query`"),
        "a missing optional field is not silently None: {err}"
    );

    let bad = json.replacen(
        "\"server_lifetime\": \"1h\"",
        "\"server_lifetime\": \"1 hour\"",
        1,
    );
    let err = gat::Config::from_json("c.json", &bad)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("invalid duration \"1 hour\""), "{err}");

    let min_max = json.replacen("\"min_connections\": 0", "\"min_connections\": 50", 1);
    let err = gat::Config::from_json("c.json", &min_max)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert_eq!(
        err,
        "c.json: servers[0].routes[0].pool: min_connections 50 is greater than max_connections 20, expected min_connections <= max_connections"
    );
}

#[test]
fn load_chooses_json_by_extension_or_content() {
    let config =
        load(std::path::Path::new("testdata/valid/full.gatfile")).unwrap_or_else(|e| panic!("{e}"));
    let dir = std::env::temp_dir().join(format!("gat-json-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    for name in ["config.json", "config-without-extension"] {
        let path = dir.join(name);
        std::fs::write(&path, config.to_json(true)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            gat::load(&path).unwrap_or_else(|e| panic!("{name}: {e}")),
            config
        );
    }
    // A Gatfile that starts with its global block is not mistaken for JSON.
    let path = dir.join("Gatfile");
    std::fs::write(
        &path,
        "{\n    threads 2\n}\n:6432 {\n    pool * 127.0.0.1:5432 a a a\n}\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        gat::load(&path).map(|c| c.global.threads).ok(),
        Some(Some(2))
    );
    let _ = std::fs::remove_dir_all(&dir);
}
