//! The engine validates files by walking the key table; the generated JSON Schema (for editors
//! and other tools) must accept exactly the same files. Random files mix valid values, wrong
//! types, numbers out of range, unknown keys and sections set to scalars.

use std::path::PathBuf;
use std::sync::OnceLock;

use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{Map, Value, json};
use vibectl::config::schema::KeyType;
use vibectl::config::{CLIENT, Engine, KeyPath, Loaded, SERVER, document};

use super::strategies::{entry_name, valid_value};

fn compiled(engine: &Engine) -> &'static jsonschema::Validator {
    static CLIENT_V: OnceLock<jsonschema::Validator> = OnceLock::new();
    static SERVER_V: OnceLock<jsonschema::Validator> = OnceLock::new();
    let cell = if engine.schema.program == "client" {
        &CLIENT_V
    } else {
        &SERVER_V
    };
    cell.get_or_init(|| {
        let doc: Value = serde_json::from_str(engine.schema.json_schema).unwrap();
        jsonschema::validator_for(&doc).unwrap()
    })
}

/// One edit to a file: a path (map entries named) and the value put there.
fn edit(engine: &'static Engine) -> BoxedStrategy<(KeyPath, Value)> {
    let keys: Vec<_> = engine
        .schema
        .keys
        .iter()
        .filter(|k| k.ty != KeyType::Map)
        .collect();
    let sections: Vec<&'static str> = engine.schema.sections.iter().map(|s| s.path).collect();
    let wrong = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1e12f64..1e12).prop_map(|f| json!(f)),
        "[a-z]{0,6}".prop_map(Value::String),
        Just(json!([1, "a"])),
        Just(json!({"x": 1})),
    ];
    // Mostly valid values, so that many files have a single fault or none.
    let key_edit = (
        prop::sample::select(keys),
        prop::collection::vec(entry_name(), 2),
        prop::bool::weighted(0.8),
        wrong.clone(),
        any::<bool>(),
    )
        .prop_flat_map(|(spec, names, valid, wrong, as_int)| {
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let path = KeyPath::fill(spec.path, &names);
            if valid {
                valid_value(spec)
                    .prop_map(move |(_, v)| {
                        // A whole number in a float key, as YAML reads `2`, is an int.
                        let v = match v.as_f64() {
                            Some(f) if as_int && f.fract() == 0.0 && f.abs() < 1e15 => {
                                Value::from(f as i64)
                            }
                            _ => v,
                        };
                        (path.clone(), v)
                    })
                    .boxed()
            } else {
                Just((path, wrong.clone())).boxed()
            }
        });
    let section_edit = (prop::sample::select(sections), "[a-z]{1,4}", wrong.clone())
        .prop_map(|(s, name, v)| (KeyPath::fill(s, &[&name, &name]), v));
    let unknown = (
        prop::sample::select(
            engine
                .schema
                .keys
                .iter()
                .map(|k| k.path)
                .collect::<Vec<_>>(),
        ),
        "[a-z_]{1,6}",
        wrong,
    )
        .prop_map(|(p, extra, v)| (KeyPath::fill(p, &["n", "n"]).child(&extra), v));
    prop_oneof![6 => key_edit, 1 => section_edit, 1 => unknown].boxed()
}

fn file(engine: &'static Engine) -> impl Strategy<Value = Value> {
    prop::collection::vec(edit(engine), 0..6).prop_map(|edits| {
        let mut root = Value::Object(Map::new());
        for (path, v) in edits {
            document::insert(&mut root, &path, v);
        }
        root
    })
}

fn agrees(engine: &'static Engine, value: Value) -> Result<(), TestCaseError> {
    let loaded = Loaded {
        path: PathBuf::from("/nonexistent/config.yaml"),
        text: None,
        file: value.clone(),
        renamed: Vec::new(),
    };
    let ours = engine.problems(&loaded);
    let schema_ok = compiled(engine).is_valid(&value);
    // The JSON Schema checks the shape; the typed parse is the last word in both cases.
    let typed_ok = engine.typed::<Value>(&value).is_ok() && {
        match engine.schema.program {
            "client" => {
                serde_json::from_value::<vibectl::config::ClientConfig>(value.clone()).is_ok()
            }
            _ => serde_json::from_value::<vibectl::config::ServerConfig>(value.clone()).is_ok(),
        }
    };
    prop_assert_eq!(
        ours.is_empty(),
        schema_ok && typed_ok,
        "the engine and the JSON Schema disagree on\n{}\nengine: {:?}\nJSON Schema: {:?}",
        serde_json::to_string_pretty(&value).unwrap(),
        ours,
        compiled(engine)
            .iter_errors(&value)
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
    );
    Ok(())
}

proptest! {
    #![proptest_config(Config { cases: 384, failure_persistence: None, ..Config::default() })]

    #[test]
    fn client_schema_and_engine_accept_the_same_files(v in file(&CLIENT)) {
        agrees(&CLIENT, v)?;
    }

    #[test]
    fn server_schema_and_engine_accept_the_same_files(v in file(&SERVER)) {
        agrees(&SERVER, v)?;
    }
}

#[test]
fn every_sample_is_judged_the_same() {
    let root = crate::support::cli::sample("");
    for (engine, dirs) in [
        (&CLIENT, &["valid", "invalid", "client-0.11.6"][..]),
        (&SERVER, &["server-valid", "server-0.11.6"]),
    ] {
        for dir in dirs {
            for f in std::fs::read_dir(root.join(dir)).unwrap().flatten() {
                if f.path().extension().is_none_or(|x| x != "yaml") {
                    continue;
                }
                let Ok(loaded) = engine.load(&f.path()) else {
                    continue; // malformed YAML: no value to judge
                };
                agrees(engine, loaded.file).unwrap();
            }
        }
    }
}
