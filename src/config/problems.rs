//! Validating a loaded file: the JSON Schema finds the problems, the key table words them (the
//! expected type, the allowed values, the range) so each names its key and how to fix it.

use std::sync::{Mutex, OnceLock};

use jsonschema::error::ValidationErrorKind;
use serde_json::Value;

use super::document;
use super::engine::{Engine, Loaded};
use super::error::{ConfigError, Problem};
use super::path::KeyPath;
use super::schema::{KeySpec, KeyType, ProgramSchema};

impl Engine {
    /// Every problem of a file value: the JSON Schema first, then the typed parse.
    pub fn problems(&self, loaded: &Loaded) -> Vec<Problem> {
        let mut out = Vec::new();
        let text = loaded.text.as_deref().unwrap_or_default();
        for err in validator(self.schema).iter_errors(&loaded.file) {
            let base = pointer_path(err.instance_path().as_str());
            if let ValidationErrorKind::AdditionalProperties { unexpected } = err.kind() {
                for name in unexpected {
                    let key = base.child(name);
                    let suggestions = self.schema.suggest(&key.to_string());
                    let hint = if suggestions.is_empty() {
                        String::new()
                    } else {
                        format!(" (did you mean {}?)", suggestions.join(" or "))
                    };
                    out.push(Problem {
                        line: document::line_of(text, &key),
                        key: key.to_string(),
                        message: format!("unknown key{hint}"),
                    });
                }
                continue;
            }
            let (key, message) = self.word(&base, err.kind(), err.instance(), || err.to_string());
            out.push(Problem {
                line: document::line_of(text, &base).or_else(|| document::line_of(text, &key)),
                key: if key.is_empty() {
                    "(file)".into()
                } else {
                    key.to_string()
                },
                message,
            });
        }
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

    /// The key a schema error is about and a message in the key table's words.
    fn word(
        &self,
        at: &KeyPath,
        kind: &ValidationErrorKind,
        found: &Value,
        fallback: impl FnOnce() -> String,
    ) -> (KeyPath, String) {
        if self.schema.section(at).is_some() || at.is_empty() {
            if let ValidationErrorKind::Type { .. } = kind {
                return (
                    at.clone(),
                    format!(
                        "expected a section (its keys indented below it), found {}",
                        describe(found)
                    ),
                );
            }
            return (at.clone(), fallback());
        }
        // An item of a list: name the list and the item's position.
        let list_item = at
            .parent()
            .and_then(|p| self.schema.key(&p).map(|k| (p, k)))
            .filter(|(_, k)| k.ty == KeyType::List && at.last().parse::<usize>().is_ok());
        let (key, spec, item) = match (self.schema.key(at), list_item) {
            (Some(spec), _) => (at.clone(), spec, None),
            (None, Some((list, spec))) => (list, spec, at.last().parse::<usize>().ok()),
            (None, None) => return (at.clone(), fallback()),
        };
        let prefix = item
            .map(|i| format!("item {}: ", i + 1))
            .unwrap_or_default();
        let message = match kind {
            ValidationErrorKind::Type { .. } => {
                let expected = match (item, spec.item) {
                    (Some(_), Some(ty)) => ty.name().to_owned(),
                    _ => spec.type_text(),
                };
                format!("expected {expected}, found {}", describe(found))
            }
            ValidationErrorKind::Enum { .. } => format!(
                "{} is not one of the allowed values: {}",
                describe(found),
                spec.values.join(", ")
            ),
            ValidationErrorKind::Minimum { .. }
            | ValidationErrorKind::Maximum { .. }
            | ValidationErrorKind::ExclusiveMinimum { .. }
            | ValidationErrorKind::ExclusiveMaximum { .. } => {
                format!("{found} is out of range ({})", range(spec))
            }
            _ => fallback(),
        };
        (key, format!("{prefix}{message}"))
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

/// The compiled JSON Schema of a program, built once per process.
fn validator(schema: &'static ProgramSchema) -> &'static jsonschema::Validator {
    type Cache = Mutex<Vec<(usize, &'static jsonschema::Validator)>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let id = std::ptr::from_ref(schema) as usize;
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some((_, v)) = cache.iter().find(|(k, _)| *k == id) {
        return v;
    }
    let doc: Value =
        serde_json::from_str(schema.json_schema).expect("the generated JSON Schema parses");
    let compiled: &'static jsonschema::Validator = Box::leak(Box::new(
        jsonschema::validator_for(&doc).expect("the generated JSON Schema compiles"),
    ));
    cache.push((id, compiled));
    compiled
}

fn pointer_path(pointer: &str) -> KeyPath {
    KeyPath::from_segments(
        pointer
            .split('/')
            .skip(1)
            .map(|s| s.replace("~1", "/").replace("~0", "~"))
            .collect(),
    )
}
