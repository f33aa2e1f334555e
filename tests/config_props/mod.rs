//! Property tests of the config engine: for every key of both schemas (map entries with
//! generated names, dots and spaces included) `set` of any valid value reads back as that
//! value, and no input to the path, value or file parsers panics.

mod schema_agrees;
mod strategies;

use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::Value;
use vibectl::config::schema::{KeySpec, KeyType};
use vibectl::config::{CLIENT, ConfigError, Engine, KeyPath, SERVER, document, value};

use strategies::{entry_name, valid_value};

/// Cases per key; enough to hit each shape of value, few enough to stay fast.
const CASES_PER_KEY: u32 = 8;

fn fake_path() -> &'static Path {
    Path::new("/nonexistent/vibectl-props/config.yaml")
}

/// The files a `set` starts from: empty, and a realistic one with comments and values.
fn bases(engine: &Engine) -> [String; 2] {
    let sample = match engine.schema.program {
        "client" => "valid/commented.yaml",
        _ => "server-0.11.6/configured.yaml",
    };
    [
        String::new(),
        std::fs::read_to_string(crate::support::cli::sample(sample)).unwrap(),
    ]
}

fn fail(msg: String) -> TestCaseError {
    TestCaseError::fail(msg)
}

/// Set `key` to `raw` on `base`, then check the value read back from the new text.
fn set_reads_back(
    engine: &Engine,
    base: &str,
    key: &KeyPath,
    raw: &str,
    expected: &Value,
) -> Result<(), TestCaseError> {
    let loaded = engine
        .from_text(fake_path(), Some(base.to_owned()))
        .map_err(|e| fail(format!("base: {e}")))?;
    let (text, value) = engine
        .set(&loaded, key, raw)
        .map_err(|e| fail(format!("set {key} {raw:?}: {e}")))?;
    prop_assert_eq!(&value, expected, "parsed value of {} {:?}", key, raw);
    let after = engine
        .from_text(fake_path(), Some(text.clone()))
        .map_err(|e| fail(format!("re-read after set {key} {raw:?}: {e}\n{text}")))?;
    engine
        .validate(&after)
        .map_err(|e| fail(format!("invalid after set {key} {raw:?}: {e}\n{text}")))?;
    let effective = engine
        .effective(&after, &|_| None, &[])
        .map_err(|e| fail(e.to_string()))?;
    prop_assert_eq!(
        document::get(&effective, key),
        Some(expected),
        "get after set {} {:?}\n{}",
        key,
        raw,
        text
    );
    // Setting the same value again changes nothing.
    let (again, _) = engine
        .set(&after, key, raw)
        .map_err(|e| fail(format!("second set {key} {raw:?}: {e}")))?;
    prop_assert_eq!(
        &again,
        &text,
        "a second set of {} {:?} changed the file",
        key,
        raw
    );
    // And unset takes the key out of the file again.
    let unset = engine
        .unset(&after, key)
        .map_err(|e| fail(format!("unset {key} after set {raw:?}: {e}\n{text}")))?;
    let gone = engine
        .from_text(fake_path(), Some(unset.clone()))
        .map_err(|e| fail(format!("after unset {key}: {e}\n{unset}")))?;
    prop_assert!(
        document::get(&gone.file, key).is_none(),
        "{} still set after unset\n{}",
        key,
        unset
    );
    Ok(())
}

/// Run the get-after-set property for every settable key of an engine.
fn every_key_round_trips(engine: &'static Engine) {
    let bases = bases(engine);
    let mut tested = 0;
    for spec in engine.schema.keys {
        if spec.ty == KeyType::Map {
            continue;
        }
        tested += 1;
        let holes = spec.path.matches('<').count();
        let strategy = (
            valid_value(spec),
            prop::collection::vec(entry_name(), holes),
            0..bases.len(),
        );
        let mut runner = TestRunner::new(Config {
            cases: CASES_PER_KEY,
            failure_persistence: None,
            ..Config::default()
        });
        let result = runner.run(&strategy, |((raw, expected), names, base)| {
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let key = KeyPath::fill(spec.path, &names);
            // The dotted form parses back to the same path, quotes and all.
            prop_assert_eq!(KeyPath::parse(&key.to_string()).ok(), Some(key.clone()));
            set_reads_back(engine, &bases[base], &key, &raw, &expected)
        });
        if let Err(e) = result {
            panic!("{} {}: {e}", engine.schema.program, spec.path);
        }
    }
    assert!(tested > 50, "only {tested} keys were tested");
}

#[test]
fn client_get_after_set_round_trips_for_every_key() {
    every_key_round_trips(&CLIENT);
}

#[test]
fn server_get_after_set_round_trips_for_every_key() {
    every_key_round_trips(&SERVER);
}

#[test]
fn maps_cannot_be_set_whole() {
    for engine in [&CLIENT, &SERVER] {
        let loaded = engine.from_text(fake_path(), None).unwrap();
        for spec in engine.schema.keys.iter().filter(|k| k.ty == KeyType::Map) {
            if spec.path.contains('<') {
                continue;
            }
            let key = KeyPath::parse(spec.path).unwrap();
            let err = engine.set(&loaded, &key, "{}").unwrap_err();
            assert!(
                matches!(err, ConfigError::IsMap { .. }),
                "{}: {err}",
                spec.path
            );
        }
    }
}

/// Text that stresses a parser: YAML and path punctuation, quotes, escapes, unicode.
fn tricky_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-z.\"\\\\ <>_-]{0,16}",
        "[\\[\\]{}\",:#&*!|>'%@`~ \n\ta-z0-9.+-]{0,24}",
        "(true|no|null|~|0x1F|1e9|-0|.inf|NaN|  )[a-z, ]{0,6}",
    ]
}

fn all_specs() -> Vec<&'static KeySpec> {
    CLIENT
        .schema
        .keys
        .iter()
        .chain(SERVER.schema.keys)
        .collect()
}

proptest! {
    #![proptest_config(Config { cases: 512, failure_persistence: None, ..Config::default() })]

    #[test]
    fn key_paths_parse_without_panicking(s in tricky_text()) {
        if let Ok(p) = KeyPath::parse(&s) {
            prop_assert!(!p.is_empty());
            prop_assert!(p.segments().iter().all(|seg| !seg.is_empty()));
            // What prints parses back to the same path.
            prop_assert_eq!(KeyPath::parse(&p.to_string()), Ok(p.clone()));
            let _ = p.to_yaml_edit();
        }
    }

    #[test]
    fn values_parse_without_panicking(i in any::<prop::sample::Index>(), s in tricky_text()) {
        let specs = all_specs();
        let spec = specs[i.index(specs.len())];
        if let Ok(v) = value::parse(spec, spec.path, &s) {
            // Whatever parses passes the key's own check.
            prop_assert!(value::check(spec, spec.path, &v).is_ok());
        }
    }

    #[test]
    fn set_of_any_text_never_panics(i in any::<prop::sample::Index>(), s in tricky_text()) {
        let specs = all_specs();
        let spec = specs[i.index(specs.len())];
        let engine = if CLIENT.schema.keys.iter().any(|k| std::ptr::eq(k, spec)) { &CLIENT } else { &SERVER };
        let key = KeyPath::fill(spec.path, &["p", "q"]);
        let loaded = engine.from_text(fake_path(), None).unwrap();
        // Ok or a typed error, and an Ok always reads back.
        if let Ok((text, v)) = engine.set(&loaded, &key, &s) {
            let after = engine.from_text(fake_path(), Some(text)).unwrap();
            prop_assert_eq!(document::get(&after.file, &key), Some(&v));
        }
    }
}

proptest! {
    #![proptest_config(Config { cases: 256, failure_persistence: None, ..Config::default() })]

    #[test]
    fn config_files_parse_without_panicking(s in tricky_text()) {
        for engine in [&CLIENT, &SERVER] {
            if let Ok(loaded) = engine.from_text(fake_path(), Some(s.clone())) {
                let _ = engine.problems(&loaded);
            }
        }
    }
}
