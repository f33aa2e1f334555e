//! Printing config values: YAML, JSON, and a table with where each value came from.

use serde_json::Value;

/// A value as YAML text (ends with a newline).
pub fn yaml(v: &Value) -> String {
    match v {
        Value::Object(o) if o.is_empty() => "{}\n".to_owned(),
        Value::Array(a) if a.is_empty() => "[]\n".to_owned(),
        _ => {
            let mut s =
                serde_saphyr::to_string(v).unwrap_or_else(|e| format!("# cannot render: {e}\n"));
            if !s.ends_with('\n') {
                s.push('\n');
            }
            s
        }
    }
}

/// A value as pretty JSON (ends with a newline).
pub fn json(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_default();
    s.push('\n');
    s
}

/// Flatten a tree into `(dotted path, value text)` rows, leaves only.
pub fn rows(
    v: &Value,
    prefix: &super::path::KeyPath,
    out: &mut Vec<(super::path::KeyPath, String)>,
) {
    match v {
        Value::Object(o) if !o.is_empty() => {
            for (k, child) in o {
                rows(child, &prefix.child(k), out);
            }
        }
        leaf => out.push((prefix.clone(), compact(leaf))),
    }
}

/// One-line text of a value for tables.
pub fn compact(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A plain aligned table with a header row.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, cell) in r.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<String>| {
        let n = cells.len();
        for (i, c) in cells.into_iter().enumerate() {
            out.push_str(&c);
            if i + 1 < n {
                out.push_str(&" ".repeat(widths[i] - c.chars().count() + 2));
            }
        }
        out.push('\n');
    };
    line(header.iter().map(|h| (*h).to_owned()).collect());
    for r in rows {
        line(r.clone());
    }
    out
}
