//! The config file as text: parsing it, and editing it in place so comments and order survive.

use std::path::Path;
use std::str::FromStr;

use serde_json::Value;
use yaml_edit::path::YamlPath;
use yaml_edit::{Document, YamlValue};

use super::error::ConfigError;
use super::path::KeyPath;

/// Parse a config file's text into a JSON value. Empty text (or only comments) is `{}`.
pub fn parse(file: &Path, text: &str) -> Result<Value, ConfigError> {
    let value: Value = serde_saphyr::from_str(text).map_err(|e| ConfigError::Yaml {
        file: file.to_owned(),
        line: e.location().map(|l| l.line() as usize),
        message: e.to_string().lines().next().unwrap_or_default().to_owned(),
    })?;
    match value {
        Value::Null => Ok(Value::Object(Default::default())),
        Value::Object(_) => Ok(value),
        other => Err(ConfigError::NotAMapping {
            file: file.to_owned(),
            found: kind(&other).to_owned(),
        }),
    }
}

/// `a string`, `a list`, ... for messages.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn document(file: &Path, text: &str) -> Result<Document, ConfigError> {
    Document::from_str(text).map_err(|e| ConfigError::Yaml {
        file: file.to_owned(),
        line: None,
        message: format!("{e:?}"),
    })
}

fn yaml_value(v: &Value) -> YamlValue {
    match v {
        Value::Null => YamlValue::Scalar(yaml_edit::ScalarValue::null()),
        Value::Bool(b) => YamlValue::from(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => YamlValue::from(i),
            None => YamlValue::from(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => YamlValue::from(s.as_str()),
        Value::Array(a) => YamlValue::Sequence(a.iter().map(yaml_value).collect()),
        Value::Object(o) => {
            YamlValue::OrderedMapping(o.iter().map(|(k, v)| (k.clone(), yaml_value(v))).collect())
        }
    }
}

/// The text with `path` set to `value`; missing parent sections are created.
pub fn set(file: &Path, text: &str, path: &KeyPath, value: &Value) -> Result<String, ConfigError> {
    let doc = document(file, text)?;
    doc.try_set_path(&path.to_yaml_edit(), yaml_value(value))
        .map_err(|e| ConfigError::Edit {
            key: path.to_string(),
            file: file.to_owned(),
            detail: e.to_string(),
        })?;
    let mut out = doc.to_string();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    Ok(out)
}

/// The text with `path` removed, and any section it leaves empty removed too.
pub fn remove(file: &Path, text: &str, path: &KeyPath) -> Result<String, ConfigError> {
    let doc = document(file, text)?;
    doc.try_remove_path(&path.to_yaml_edit())
        .map_err(|e| ConfigError::Edit {
            key: path.to_string(),
            file: file.to_owned(),
            detail: e.to_string(),
        })?;
    let mut parent = path.parent();
    while let Some(p) = parent {
        let empty = doc
            .try_get_path(&p.to_yaml_edit())
            .ok()
            .map(|n| {
                n.as_mapping().is_some_and(|m| m.is_empty())
                    || n.as_scalar()
                        .is_some_and(|s| s.as_string().trim().is_empty())
            })
            .unwrap_or(false);
        if !empty {
            break;
        }
        let _ = doc.try_remove_path(&p.to_yaml_edit());
        parent = p.parent();
    }
    let mut out = doc.to_string();
    if matches!(out.trim(), "" | "{}") {
        out.clear();
    } else if !out.ends_with('\n') {
        out.push('\n');
    }
    Ok(out)
}

/// The 1-based line where `path`'s value sits in `text`, if it is there.
pub fn line_of(text: &str, path: &KeyPath) -> Option<usize> {
    let doc = Document::from_str(text).ok()?;
    let node = doc.try_get_path(&path.to_yaml_edit()).ok()?;
    Some(yaml_edit::byte_offset_to_line_column(text, node.byte_range().start as usize).line)
}

/// The value at `path` in a JSON tree.
pub fn get<'a>(root: &'a Value, path: &KeyPath) -> Option<&'a Value> {
    path.segments()
        .iter()
        .try_fold(root, |v, seg| v.as_object()?.get(seg))
}

/// Set the value at `path` in a JSON tree, creating objects on the way.
pub fn insert(root: &mut Value, path: &KeyPath, value: Value) {
    let mut cur = root;
    for seg in &path.segments()[..path.len().saturating_sub(1)] {
        if !cur.is_object() {
            *cur = Value::Object(Default::default());
        }
        let obj = cur.as_object_mut().expect("made an object above");
        cur = obj
            .entry(seg.clone())
            .or_insert_with(|| Value::Object(Default::default()));
    }
    if !cur.is_object() {
        *cur = Value::Object(Default::default());
    }
    if let Some(obj) = cur.as_object_mut() {
        obj.insert(path.last().to_owned(), value);
    }
}

/// Remove the value at `path` from a JSON tree.
pub fn take(root: &mut Value, path: &KeyPath) -> Option<Value> {
    let parent = match path.parent() {
        Some(p) => p
            .segments()
            .iter()
            .try_fold(root, |v, seg| v.as_object_mut()?.get_mut(seg))?,
        None => root,
    };
    parent.as_object_mut()?.shift_remove(path.last())
}
