//! The config file as text: parsing it, and editing it in place so comments and order survive.

use std::path::Path;
use std::str::FromStr;

use serde_json::Value;
use yaml_edit::path::YamlPath;
use yaml_edit::{Document, YamlFile, YamlValue};

use super::error::ConfigError;
use super::path::KeyPath;

/// Parse a config file's text into a JSON value. Empty text (or only comments) is `{}`.
pub fn parse(file: &Path, text: &str) -> Result<Value, ConfigError> {
    let value: Value = serde_saphyr::from_str(text).map_err(|e| ConfigError::Yaml {
        file: file.to_owned(),
        line: e.location().map(|l| l.line() as usize),
        message: {
            let first = e.to_string().lines().next().unwrap_or_default().to_owned();
            first.strip_prefix("error: ").unwrap_or(&first).to_owned()
        },
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

/// The editable tree of a file's text and its (first) document. A file holding only comments,
/// or comments before `---`, keeps them: they belong to the stream, not the document.
fn document(file: &Path, text: &str) -> Result<(YamlFile, Document), ConfigError> {
    let stream = YamlFile::from_str(text).map_err(|e| ConfigError::Yaml {
        file: file.to_owned(),
        line: match &e {
            yaml_edit::YamlError::Parse { line, .. } => *line,
            _ => None,
        },
        message: e.to_string(),
    })?;
    if stream.documents().count() > 1 {
        return Err(ConfigError::Yaml {
            file: file.to_owned(),
            line: None,
            message: "the file holds more than one YAML document".into(),
        });
    }
    let doc = stream.ensure_document();
    Ok((stream, doc))
}

/// The stream's text, ending with a newline; `{}` left by emptying the root is dropped, so a
/// file whose last key was removed keeps only its comments.
fn render(stream: &YamlFile, doc: &Document) -> String {
    let mut out = stream.to_string();
    if doc.as_mapping().is_some_and(|m| m.is_empty()) {
        out = out
            .split_inclusive('\n')
            .filter(|l| l.trim() != "{}")
            .collect();
        if out.trim().is_empty() {
            out.clear();
        }
    }
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

fn yaml_value(v: &Value) -> YamlValue {
    match v {
        Value::Null => YamlValue::Scalar(yaml_edit::ScalarValue::null()),
        Value::Bool(b) => YamlValue::from(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => YamlValue::from(i),
            None => YamlValue::from(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => yaml_string(s),
        Value::Array(a) => YamlValue::Sequence(a.iter().map(yaml_value).collect()),
        Value::Object(o) => {
            YamlValue::OrderedMapping(o.iter().map(|(k, v)| (k.clone(), yaml_value(v))).collect())
        }
    }
}

/// A string scalar that reads back as the same string. yaml-edit quotes by YAML 1.2, but the
/// parser (and PyYAML in vibectl 0.11.6) also reads YAML 1.1 words such as `y`, `no` and `off`
/// as bools, so a one-line string that would not read back as itself is double-quoted.
fn yaml_string(s: &str) -> YamlValue {
    let reads_back = || serde_saphyr::from_str::<Value>(s).is_ok_and(|v| v.as_str() == Some(s));
    if s.contains('\n') || reads_back() {
        YamlValue::from(s)
    } else {
        YamlValue::Scalar(yaml_edit::ScalarValue::double_quoted(s))
    }
}

/// The text with `path` set to `value`; missing parent sections are created.
pub fn set(file: &Path, text: &str, path: &KeyPath, value: &Value) -> Result<String, ConfigError> {
    let (stream, doc) = document(file, text)?;
    let at = path.to_yaml_edit();
    let blank_before = doc
        .try_get_path(&at)
        .ok()
        .filter(|n| !keeps_trailing_lines(n.to_string().as_str()))
        .map(|n| blank_lines_after(text, n.byte_range()).1);
    let eol = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let top = KeyPath::from_segments(vec![path.segments()[0].clone()]);
    let new_section = path.len() > 1 && doc.try_get_path(&top.to_yaml_edit()).is_err();
    doc.try_set_path(&at, yaml_value(value))
        .map_err(|e| ConfigError::Edit {
            key: path.to_string(),
            file: file.to_owned(),
            detail: e.to_string(),
        })?;
    let mut out = render(&stream, &doc);
    // A new section goes at the end; in a file whose sections are set apart by blank lines, so
    // is this one.
    if new_section && text.contains(&format!("{eol}{eol}")) {
        let head = format!("{eol}{top}:");
        if let Some(i) = out.rfind(&head)
            && !out[..i].ends_with(eol)
        {
            out.insert_str(i + eol.len(), eol);
        }
    }
    // A block scalar (`|`) owns the blank lines after it, so replacing it drops them; put back
    // the ones that separated it from what follows.
    if let (Some(before), Ok(node)) = (blank_before, doc.try_get_path(&at)) {
        let (pos, now) = blank_lines_after(&out, node.byte_range());
        if now < before && pos <= out.len() {
            out.insert_str(pos, &eol.repeat(before - now));
        }
    }
    Ok(out)
}

/// Whether a block scalar keeps its trailing line breaks as part of its value (`|+`, `>+`).
fn keeps_trailing_lines(node_text: &str) -> bool {
    node_text.starts_with(['|', '>']) && node_text.lines().next().is_some_and(|h| h.contains('+'))
}

/// After the value at `range` of `text`: where the line after its last line starts,
/// and how many blank lines follow from there.
fn blank_lines_after(text: &str, range: yaml_edit::TextPosition) -> (usize, usize) {
    let start = (range.start as usize).min(text.len());
    let end = (range.end as usize).min(text.len());
    let content_end = text
        .get(start..end)
        .map(|v| start + v.trim_end().len())
        .unwrap_or(end);
    let Some(nl) = text.get(content_end..).and_then(|rest| rest.find('\n')) else {
        return (text.len(), 0);
    };
    let line_start = content_end + nl + 1;
    let blank = text[line_start..]
        .split_inclusive('\n')
        .take_while(|l| l.ends_with('\n') && l.trim().is_empty())
        .count();
    (line_start, blank)
}

/// The text with `path` removed, and any section it leaves empty removed too.
pub fn remove(file: &Path, text: &str, path: &KeyPath) -> Result<String, ConfigError> {
    let (stream, doc) = document(file, text)?;
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
    let mut out = render(&stream, &doc);
    // Removing the last section leaves the blank line that set it apart; drop what the file
    // did not end with before.
    let (had, has) = (trailing_blank_lines(text), trailing_blank_lines(&out));
    if has > had {
        let keep = out.trim_end().len();
        let eol = if text.contains("\r\n") { "\r\n" } else { "\n" };
        out.truncate(keep);
        out.push_str(&eol.repeat(had + 1));
    }
    Ok(out)
}

/// How many blank lines a text ends with (after the line break of its last line).
fn trailing_blank_lines(text: &str) -> usize {
    let body = text.trim_end();
    if body.is_empty() {
        return 0;
    }
    text[body.len()..].matches('\n').count().saturating_sub(1)
}

/// The 1-based line where `path`'s value sits in `text`, if it is there.
pub fn line_of(text: &str, path: &KeyPath) -> Option<usize> {
    let doc = YamlFile::from_str(text).ok()?.document()?;
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
