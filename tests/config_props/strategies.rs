//! Generators of valid values for a key (as the text a user types and the value it means) and
//! of map entry names.

use proptest::prelude::*;
use serde_json::{Number, Value};
use vibectl::config::schema::{KeySpec, KeyType};

/// A map entry name: plain, with a dot (written quoted), digits only, with a space or quote.
pub fn entry_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z][a-z0-9_-]{0,8}",
        2 => "[a-z0-9]{1,4}\\.[a-z0-9]{1,4}",
        1 => "[0-9]{1,3}",
        1 => "[a-z]{1,3} [a-z]{1,3}",
        1 => "(gpt-4\\.1|claude-3\\.7-sonnet|o'brien|a\"b|null|true|~)",
    ]
}

/// `(text, value)` pairs for a key: what `config set KEY TEXT` is given and what it stores.
pub fn valid_value(spec: &'static KeySpec) -> BoxedStrategy<(String, Value)> {
    let base = match spec.ty {
        KeyType::List => list(spec),
        ty => scalar(ty, spec),
    };
    if spec.nullable {
        prop_oneof![
            1 => prop_oneof![Just("null"), Just("~")].prop_map(|s| (s.to_owned(), Value::Null)),
            6 => base,
        ]
        .boxed()
    } else {
        base
    }
}

fn scalar(ty: KeyType, spec: &'static KeySpec) -> BoxedStrategy<(String, Value)> {
    match ty {
        KeyType::Bool => prop::sample::select(vec![
            ("true", true),
            ("yes", true),
            ("On", true),
            ("1", true),
            ("false", false),
            ("no", false),
            ("OFF", false),
            ("0", false),
        ])
        .prop_map(|(s, b)| (s.to_owned(), Value::Bool(b)))
        .boxed(),
        KeyType::Int => {
            let lo = spec.min.map_or(i64::MIN, |m| m as i64);
            let hi = spec.max.map_or(i64::MAX, |m| m as i64);
            prop_oneof![Just(lo), Just(hi), lo..=hi]
                .prop_map(|n| (n.to_string(), Value::from(n)))
                .boxed()
        }
        KeyType::Float => {
            let lo = spec.min.unwrap_or(-1e9);
            let hi = spec.max.unwrap_or(1e9);
            prop_oneof![
                Just(lo),
                Just(hi),
                lo..=hi,
                (lo.ceil() as i64..=hi.floor() as i64).prop_map(|n| n as f64)
            ]
            .prop_map(|f| {
                (
                    f.to_string(),
                    Value::Number(Number::from_f64(f).expect("finite")),
                )
            })
            .boxed()
        }
        KeyType::Enum => {
            let values: Vec<&'static str> = spec.values.to_vec();
            (prop::sample::select(values), any::<bool>())
                .prop_map(|(v, shout)| {
                    // Case does not matter when only one value matches.
                    let typed = if shout {
                        v.to_uppercase()
                    } else {
                        v.to_owned()
                    };
                    (typed, Value::String(v.to_owned()))
                })
                .boxed()
        }
        KeyType::Url => url().prop_map(|u| (u.clone(), Value::String(u))).boxed(),
        KeyType::String | KeyType::Path => {
            let nullable = spec.nullable;
            text()
                .prop_map(move |s| {
                    let v = if nullable && matches!(s.as_str(), "null" | "~") {
                        Value::Null
                    } else {
                        Value::String(s.clone())
                    };
                    (s, v)
                })
                .boxed()
        }
        KeyType::List | KeyType::Map => unreachable!("not a scalar"),
    }
}

/// Strings a user might set: plain words, YAML's special words and punctuation, unicode,
/// spaces at the ends, several lines.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Z0-9_./:-]{1,20}",
        2 => "[ -~]{0,24}",
        1 => "(yes|no|on|off|y|n|true|False|null|~|1|1\\.5|0x10|0o7|1e3|\\.inf|-|- a|a: b|#x|&a|\\*a|!t|%p|@x|`x|\\[a\\]|\\{a\\}|'q'|\"q\")",
        1 => "\\PC{1,12}",
        1 => "[a-z]{1,6}(\n[a-z ]{0,6}){1,3}",
    ]
}

fn url() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec![
            "http",
            "https",
            "vibectl-server",
            "vibectl-server-insecure",
        ]),
        prop::option::of("[a-zA-Z0-9._-]{1,12}@"),
        "[a-z0-9][a-z0-9.-]{0,15}",
        prop::option::of(1u16..),
        "(/[a-z0-9_-]{0,6}){0,2}",
    )
        .prop_map(|(scheme, token, host, port, path)| {
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            format!("{scheme}://{}{host}{port}{path}", token.unwrap_or_default())
        })
}

fn list(spec: &'static KeySpec) -> BoxedStrategy<(String, Value)> {
    let item = spec.item.unwrap_or(KeyType::String);
    let items: BoxedStrategy<Vec<(String, Value)>> = match item {
        KeyType::String | KeyType::Path => prop::collection::vec(
            "[a-zA-Z0-9_./:-]{1,10}".prop_map(|s| (s.clone(), Value::String(s))),
            0..5,
        )
        .boxed(),
        KeyType::Url => {
            prop::collection::vec(url().prop_map(|s| (s.clone(), Value::String(s))), 0..3).boxed()
        }
        KeyType::Int => prop::collection::vec(
            any::<i32>().prop_map(|n| (n.to_string(), Value::from(n))),
            0..5,
        )
        .boxed(),
        KeyType::Bool => prop::collection::vec(
            any::<bool>().prop_map(|b| (b.to_string(), Value::Bool(b))),
            0..5,
        )
        .boxed(),
        KeyType::Float => prop::collection::vec(
            (-1e6f64..1e6)
                .prop_map(|f| (f.to_string(), Value::Number(Number::from_f64(f).unwrap()))),
            0..5,
        )
        .boxed(),
        other => unreachable!("no list of {other:?}"),
    };
    (items, any::<bool>())
        .prop_map(|(items, flow)| {
            let value = Value::Array(items.iter().map(|(_, v)| v.clone()).collect());
            let text = if flow {
                // YAML flow syntax, items quoted as JSON strings where they are strings.
                let parts: Vec<String> = items
                    .iter()
                    .map(|(t, v)| match v {
                        Value::String(_) => serde_json::to_string(t).unwrap(),
                        _ => t.clone(),
                    })
                    .collect();
                format!("[{}]", parts.join(", "))
            } else {
                items
                    .iter()
                    .map(|(t, _)| t.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            };
            (text, value)
        })
        .boxed()
}
