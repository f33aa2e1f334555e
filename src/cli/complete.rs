//! Dynamic shell completion: keys (with their doc), sections, enum values and the map entry
//! names present in the config file, computed by the binary itself at <TAB> time.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::sync::OnceLock;

use clap_complete::engine::{ArgValueCompleter, CompletionCandidate};

use crate::config::path::is_placeholder;
use crate::config::{Engine, KeyPath, document, schema::KeyType};

/// What the running binary completes against.
pub struct Source {
    pub engine: &'static Engine,
    /// Finds the config file from the words typed so far.
    pub file: fn(&[String]) -> Option<PathBuf>,
}

static SOURCE: OnceLock<Source> = OnceLock::new();

/// Called first thing by each binary.
pub fn init(source: Source) {
    let _ = SOURCE.set(source);
}

/// The words on the command line being completed (after clap_complete's `--`).
fn words() -> Vec<String> {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == "--") {
        Some(i) => args[i + 1..].to_vec(),
        None => args,
    }
}

/// Every concrete path (keys and sections), map entries expanded with the names in the file.
fn concrete_paths(source: &Source) -> Vec<(String, &'static str)> {
    let file = (source.file)(&words())
        .and_then(|f| source.engine.load(&f).ok())
        .map(|l| l.file)
        .unwrap_or(serde_json::Value::Null);
    let schema = source.engine.schema;
    let templates = schema
        .sections
        .iter()
        .map(|s| (s.path, s.doc))
        .chain(schema.keys.iter().map(|k| (k.path, k.doc)));
    let mut out = Vec::new();
    for (template, doc) in templates {
        let segs: Vec<&str> = template.split('.').collect();
        let mut paths: Vec<Vec<String>> = vec![Vec::new()];
        for seg in segs {
            let mut next = Vec::new();
            for p in paths {
                if is_placeholder(seg) {
                    let at = KeyPath::from_segments(p.clone());
                    if let Some(serde_json::Value::Object(entries)) = document::get(&file, &at) {
                        for name in entries.keys() {
                            let mut q = p.clone();
                            q.push(name.clone());
                            next.push(q);
                        }
                    }
                } else {
                    let mut q = p;
                    q.push(seg.to_owned());
                    next.push(q);
                }
            }
            paths = next;
        }
        out.extend(
            paths
                .into_iter()
                .map(|p| (KeyPath::from_segments(p).to_string(), doc)),
        );
    }
    out
}

/// The candidates one level below what is typed: `llm.` gives the keys of `llm`.
fn level_candidates(current: &str) -> Vec<CompletionCandidate> {
    let Some(source) = SOURCE.get() else {
        return Vec::new();
    };
    let depth = depth(current);
    let mut seen: Vec<(String, &str)> = Vec::new();
    for (path, doc) in concrete_paths(source) {
        let path_depth = KeyPath::parse(&path)
            .map(|p| p.len() - 1)
            .unwrap_or(usize::MAX);
        if path.starts_with(current) && path_depth == depth && !seen.iter().any(|(p, _)| *p == path)
        {
            seen.push((path, doc));
        }
    }
    seen.into_iter()
        .map(|(p, doc)| CompletionCandidate::new(p).help(Some(doc.into())))
        .collect()
}

/// The level being typed: the dots outside double quotes (`llm.mo` is 1, and so is
/// `models."gpt-4.`, whose quoted name is still open).
fn depth(current: &str) -> usize {
    let mut quoted = false;
    let mut escaped = false;
    let mut dots = 0;
    for c in current.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '.' if !quoted => dots += 1,
            _ => {}
        }
    }
    dots
}

/// Completes a key argument, level by level.
pub fn key_completer() -> ArgValueCompleter {
    ArgValueCompleter::new(|current: &OsStr| level_candidates(&current.to_string_lossy()))
}

/// Completes `config show`: sections first, then keys below them.
pub fn section_completer() -> ArgValueCompleter {
    ArgValueCompleter::new(|current: &OsStr| level_candidates(&current.to_string_lossy()))
}

/// Completes the VALUE of `config set KEY VALUE`: enum values and bools.
pub fn value_completer() -> ArgValueCompleter {
    ArgValueCompleter::new(|current: &OsStr| {
        let Some(source) = SOURCE.get() else {
            return Vec::new();
        };
        let words = words();
        let Some(i) = words.iter().position(|w| w == "set") else {
            return Vec::new();
        };
        let Some(key) = words.get(i + 1).and_then(|k| KeyPath::parse(k).ok()) else {
            return Vec::new();
        };
        let schema = source.engine.schema;
        let Some(spec) = schema.key(&key).or_else(|| schema.renamed(&key)) else {
            return Vec::new();
        };
        let values: Vec<&str> = match spec.ty {
            KeyType::Enum => spec.values.to_vec(),
            KeyType::Bool => vec!["true", "false"],
            _ => Vec::new(),
        };
        let current = current.to_string_lossy();
        values
            .into_iter()
            .filter(|v| v.starts_with(current.as_ref()))
            .map(CompletionCandidate::new)
            .collect()
    })
}

/// The value of `--flag VALUE` or `--flag=VALUE` among the typed words.
pub fn flag_value(words: &[String], flag: &str) -> Option<String> {
    let eq = format!("{flag}=");
    words.iter().enumerate().find_map(|(i, w)| {
        if w == flag {
            words.get(i + 1).cloned()
        } else {
            w.strip_prefix(&eq).map(str::to_owned)
        }
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn depth_skips_dots_inside_quotes() {
        assert_eq!(super::depth(""), 0);
        assert_eq!(super::depth("ll"), 0);
        assert_eq!(super::depth("a.b"), 1);
        assert_eq!(super::depth("a.b."), 2);
        assert_eq!(super::depth(r#"a.b."c.d"."#), 3);
        assert_eq!(super::depth(r#"a.b."c.d"#), 2);
        assert_eq!(super::depth(r#"a."x\".y"."#), 2);
    }
}
