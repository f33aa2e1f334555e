//! Validating a loaded file against the key table: unknown keys (with the closest known ones),
//! a section set to a value, a value of the wrong type, outside its range or its allowed values.
//!
//! The generated JSON Schema states the same rules for editors and other tools; a property test
//! (`tests/config_props`) checks that both accept exactly the same files. Walking the table here
//! instead of compiling the JSON Schema keeps every command that reads the config fast: compiling
//! it (and checking it against its meta-schema) cost more than the rest of `config show`.

use serde_json::Value;

use super::document;
use super::engine::{Engine, Loaded};
use super::error::{ConfigError, Problem};
use super::path::KeyPath;
use super::schema::{KeySpec, KeyType};

impl Engine {
    /// Every problem of a file value, in file order; the typed parse last.
    pub fn problems(&self, loaded: &Loaded) -> Vec<Problem> {
        let text = loaded.text.as_deref().unwrap_or_default();
        let mut found = Vec::new();
        match &loaded.file {
            Value::Object(_) => self.walk(
                &loaded.file,
                &KeyPath::from_segments(Vec::new()),
                &mut found,
            ),
            Value::Null => {}
            other => found.push((
                KeyPath::from_segments(Vec::new()),
                format!("expected a mapping of sections, found {}", describe(other)),
            )),
        }
        let mut out: Vec<Problem> = found
            .into_iter()
            .map(|(key, message)| Problem {
                line: document::line_of(text, &key),
                key: if key.is_empty() {
                    "(file)".into()
                } else {
                    key.to_string()
                },
                message,
            })
            .collect();
        if out.is_empty()
            && let Err(e) = (self.typed)(&loaded.file)
        {
            out.push(Problem {
                key: "(file)".into(),
                line: None,
                message: e,
            });
        }
        out
    }

    /// `Ok` when the file is valid; otherwise every problem at once.
    pub fn validate(&self, loaded: &Loaded) -> Result<(), ConfigError> {
        let problems = self.problems(loaded);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid {
                file: loaded.path.clone(),
                problems,
            })
        }
    }

    /// Check the entries of a mapping at `at` (the root, a section, a map or a map entry).
    fn walk(&self, node: &Value, at: &KeyPath, out: &mut Vec<(KeyPath, String)>) {
        let Value::Object(entries) = node else { return };
        for (name, child) in entries {
            let path = at.child(name);
            if self.schema.section(&path).is_some() {
                match child {
                    Value::Object(_) => self.walk(child, &path, out),
                    Value::Null => {}
                    other => out.push((
                        path,
                        format!(
                            "expected a section (its keys indented below it), found {}",
                            describe(other)
                        ),
                    )),
                }
            } else if let Some(spec) = self.schema.key(&path) {
                match (spec.ty, child) {
                    (KeyType::Map, Value::Object(_)) => self.walk(child, &path, out),
                    (KeyType::Map, Value::Null) => {}
                    _ => {
                        if let Some(message) = leaf_problem(spec, child) {
                            out.push((path, message));
                        }
                    }
                }
            } else {
                let suggestions = self.schema.suggest(&path.to_string());
                let hint = if suggestions.is_empty() {
                    String::new()
                } else {
                    format!(" (did you mean {}?)", suggestions.join(" or "))
                };
                out.push((path, format!("unknown key{hint}")));
            }
        }
    }
}

/// What is wrong with `v` as the value of `spec`, if anything; the value of a `sensitive` key
/// is described by its type only, never quoted.
fn leaf_problem(spec: &KeySpec, v: &Value) -> Option<String> {
    let describe = |v: &Value| {
        if spec.sensitive {
            format!("{} ({})", document::kind(v), super::secret::REDACTED)
        } else {
            describe(v)
        }
    };
    if v.is_null() {
        return (!spec.nullable).then(|| format!("expected {}, found null", spec.type_text()));
    }
    if let Value::Array(items) = v
        && spec.ty == KeyType::List
    {
        let item = spec.item.unwrap_or(KeyType::String);
        return items.iter().enumerate().find_map(|(i, it)| {
            (!is_a(item, it)).then(|| {
                format!(
                    "item {}: expected {}, found {}",
                    i + 1,
                    item.name(),
                    describe(it)
                )
            })
        });
    }
    if !is_a(spec.ty, v) {
        return Some(format!(
            "expected {}, found {}",
            spec.type_text(),
            describe(v)
        ));
    }
    if spec.ty == KeyType::Enum && !spec.values.iter().any(|a| v.as_str() == Some(a)) {
        return Some(format!(
            "{} is not one of the allowed values: {}",
            describe(v),
            spec.values.join(", ")
        ));
    }
    let n = v.as_f64()?;
    let outside = spec.min.is_some_and(|m| n < m) || spec.max.is_some_and(|m| n > m);
    let shown = if spec.sensitive {
        super::secret::REDACTED.to_owned()
    } else {
        v.to_string()
    };
    outside.then(|| format!("{shown} is out of range ({})", range(spec)))
}

/// Whether `v` (not null) has the JSON shape of type `ty`.
fn is_a(ty: KeyType, v: &Value) -> bool {
    match ty {
        KeyType::String | KeyType::Path | KeyType::Url | KeyType::Enum => v.is_string(),
        KeyType::Bool => v.is_boolean(),
        KeyType::Int => v.is_i64() || v.is_u64(),
        KeyType::Float => v.is_number(),
        KeyType::List => v.is_array(),
        KeyType::Map => v.is_object(),
    }
}

/// `the string "two"`, `the number 3`, `a list` ... for messages.
fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => format!("the string {s:?}"),
        Value::Number(n) => format!("the number {n}"),
        Value::Bool(b) => format!("the bool {b}"),
        other => document::kind(other).to_owned(),
    }
}

/// `1..=300`, `>= 0` or `<= 10`.
fn range(spec: &KeySpec) -> String {
    match (spec.min, spec.max) {
        (Some(lo), Some(hi)) => format!("{lo}..={hi}"),
        (Some(lo), None) => format!(">= {lo}"),
        (None, Some(hi)) => format!("<= {hi}"),
        (None, None) => "unbounded".to_owned(),
    }
}
