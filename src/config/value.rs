//! Parsing a command-line or env string into a key's typed value, and checking a value's type.

use serde_json::{Number, Value};

use super::error::ConfigError;
use super::schema::{KeySpec, KeyType};

/// Parse `text` as the value of `spec` (named `key` in errors; the value of a `sensitive` key is
/// never quoted).
pub fn parse(spec: &KeySpec, key: &str, text: &str) -> Result<Value, ConfigError> {
    parse_value(spec, key, text).map_err(|e| if spec.sensitive { e.redacted() } else { e })
}

fn parse_value(spec: &KeySpec, key: &str, text: &str) -> Result<Value, ConfigError> {
    if spec.nullable && matches!(text, "null" | "~") {
        return Ok(Value::Null);
    }
    let value = match spec.ty {
        KeyType::Map => {
            return Err(ConfigError::IsMap {
                key: key.to_owned(),
                example: format!("{key}.NAME..."),
            });
        }
        KeyType::List => {
            let item = spec.item.unwrap_or(KeyType::String);
            let trimmed = text.trim();
            let raw: Vec<String> = if trimmed.starts_with('[') {
                let items: Vec<Value> = serde_saphyr::from_str(trimmed)
                    .map_err(|e| bad(key, text, &format!("a list ({e})")))?;
                items
                    .into_iter()
                    .map(|v| match v {
                        Value::String(s) => s,
                        other => other.to_string(),
                    })
                    .collect()
            } else if trimmed.is_empty() {
                Vec::new()
            } else {
                trimmed.split(',').map(|s| s.trim().to_owned()).collect()
            };
            let items = raw
                .iter()
                .map(|s| scalar(item, spec, key, s))
                .collect::<Result<Vec<_>, _>>()?;
            Value::Array(items)
        }
        ty => scalar(ty, spec, key, text)?,
    };
    check(spec, key, &value)?;
    Ok(value)
}

fn bad(key: &str, value: &str, expected: &str) -> ConfigError {
    ConfigError::BadValue {
        key: key.to_owned(),
        value: value.to_owned(),
        expected: expected.to_owned(),
    }
}

fn scalar(ty: KeyType, spec: &KeySpec, key: &str, text: &str) -> Result<Value, ConfigError> {
    Ok(match ty {
        KeyType::String | KeyType::Path => Value::String(text.to_owned()),
        KeyType::Url => {
            if !is_url(text) {
                return Err(bad(key, text, "a URL (scheme://host...)"));
            }
            Value::String(text.to_owned())
        }
        KeyType::Bool => Value::Bool(
            parse_bool(text)
                .ok_or_else(|| bad(key, text, "a bool (true/false, yes/no, on/off, 1/0)"))?,
        ),
        KeyType::Int => Value::Number(
            text.trim()
                .parse::<i64>()
                .map_err(|_| bad(key, text, "an integer"))?
                .into(),
        ),
        KeyType::Float => {
            let f = text.trim().parse::<f64>().ok().filter(|f| f.is_finite());
            Value::Number(
                f.and_then(Number::from_f64)
                    .ok_or_else(|| bad(key, text, "a number"))?,
            )
        }
        KeyType::Enum => {
            let exact = spec.values.iter().find(|v| **v == text);
            let loose = || {
                let mut it = spec.values.iter().filter(|v| v.eq_ignore_ascii_case(text));
                it.next().filter(|_| it.next().is_none())
            };
            match exact.or_else(loose) {
                Some(v) => Value::String((*v).to_owned()),
                None => {
                    return Err(ConfigError::NotAllowed {
                        key: key.to_owned(),
                        value: text.to_owned(),
                        allowed: spec.values.iter().map(|v| (*v).to_owned()).collect(),
                    });
                }
            }
        }
        KeyType::List | KeyType::Map => return Err(bad(key, text, "a single value")),
    })
}

/// `true/false/yes/no/on/off/1/0`, any case.
pub fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Some(true),
        "false" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
}

/// `scheme://host...` with a letter-first scheme and a non-empty rest.
pub fn is_url(text: &str) -> bool {
    match text.split_once("://") {
        Some((scheme, rest)) => {
            scheme
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
                && !rest.is_empty()
                && !rest.starts_with('/')
                && !text.chars().any(char::is_whitespace)
        }
        None => false,
    }
}

/// Check a value already typed (from a file or a flag) against the key's rules (the value of a
/// `sensitive` key is never quoted).
pub fn check(spec: &KeySpec, key: &str, value: &Value) -> Result<(), ConfigError> {
    check_value(spec, key, value).map_err(|e| if spec.sensitive { e.redacted() } else { e })
}

fn check_value(spec: &KeySpec, key: &str, value: &Value) -> Result<(), ConfigError> {
    if value.is_null() {
        return if spec.nullable || spec.ty == KeyType::Map {
            Ok(())
        } else {
            Err(bad(
                key,
                "null",
                &format!("allowed here (expected {})", spec.type_text()),
            ))
        };
    }
    if let Some(n) = value.as_f64() {
        let below = spec.min.is_some_and(|m| n < m);
        let above = spec.max.is_some_and(|m| n > m);
        if below || above {
            let range = match (spec.min, spec.max) {
                (Some(lo), Some(hi)) => format!("{lo}..={hi}"),
                (Some(lo), None) => format!(">= {lo}"),
                (None, Some(hi)) => format!("<= {hi}"),
                (None, None) => String::new(),
            };
            return Err(ConfigError::OutOfRange {
                key: key.to_owned(),
                value: value.to_string(),
                range,
            });
        }
    }
    Ok(())
}

/// A value as `config get` prints it: strings bare, everything else as YAML/JSON text.
pub fn display(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "null".to_owned(),
        Value::Bool(_) | Value::Number(_) => value.to_string(),
        Value::Array(_) | Value::Object(_) => super::render::yaml(value).trim_end().to_owned(),
    }
}
