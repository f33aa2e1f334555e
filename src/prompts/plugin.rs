//! Prompt plugins in vibectl 0.11.6's file format: a JSON document with `plugin_metadata`
//! (name, version, description, author, compatible_vibectl_versions, created_at) and
//! `prompt_mappings` (prompt key, such as `check_plan` or `vibe_plan`, to the fields that
//! replace parts of that prompt). Parsing and checking a file, and [`Prompts`]: the mappings
//! that win for each prompt key once `plugins.precedence` has ordered the installed plugins.
//! Every prompt builder looks its key up here through [`super::Context::plugin`].

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// Largest plugin file read, in bytes.
pub const MAX_PLUGIN_BYTES: u64 = 256 * 1024;
/// Longest plugin name or version, in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// The vibectl version whose plugin format this is; `compatible_vibectl_versions` is checked
/// against it.
pub const FORMAT_VERSION: [u64; 3] = [0, 11, 6];

const METADATA_FIELDS: &[&str] = &[
    "name",
    "version",
    "description",
    "author",
    "compatible_vibectl_versions",
    "created_at",
];

/// A plugin file that is not valid, naming the field that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct PluginError {
    /// The dotted path of the field (`plugin_metadata.name`, `prompt_mappings.check_plan`).
    pub field: String,
    pub problem: String,
}

fn bad(field: impl Into<String>, problem: impl Into<String>) -> PluginError {
    PluginError {
        field: field.into(),
        problem: problem.into(),
    }
}

/// A checked plugin.
#[derive(Debug, Clone, PartialEq)]
pub struct Plugin {
    pub name: String,
    pub version: String,
    pub description: String,
    /// Prompt key to the fields that replace parts of it.
    pub mappings: BTreeMap<String, Map<String, Value>>,
}

impl Plugin {
    /// Parse and check a plugin file's text.
    pub fn parse(text: &str) -> Result<Plugin, PluginError> {
        if text.len() as u64 > MAX_PLUGIN_BYTES {
            return Err(bad(
                "(file)",
                format!("larger than {MAX_PLUGIN_BYTES} bytes"),
            ));
        }
        let doc: Value =
            serde_json::from_str(text).map_err(|e| bad("(file)", format!("not JSON: {e}")))?;
        let Value::Object(top) = doc else {
            return Err(bad("(file)", "expected a JSON object"));
        };
        for k in top.keys() {
            if k != "plugin_metadata" && k != "prompt_mappings" {
                return Err(bad(k.clone(), "unknown field"));
            }
        }
        let meta = match top.get("plugin_metadata") {
            Some(Value::Object(m)) => m,
            Some(_) => return Err(bad("plugin_metadata", "expected an object")),
            None => return Err(bad("plugin_metadata", "missing")),
        };
        for k in meta.keys() {
            if !METADATA_FIELDS.contains(&k.as_str()) {
                return Err(bad(format!("plugin_metadata.{k}"), "unknown field"));
            }
        }
        let text_field = |f: &str| -> Result<String, PluginError> {
            match meta.get(f) {
                Some(Value::String(s)) => Ok(s.clone()),
                Some(_) => Err(bad(format!("plugin_metadata.{f}"), "expected a string")),
                None => Err(bad(format!("plugin_metadata.{f}"), "missing")),
            }
        };
        let name = text_field("name")?;
        let version = text_field("version")?;
        for (f, v) in [("name", &name), ("version", &version)] {
            check_word(&format!("plugin_metadata.{f}"), v)?;
        }
        let description = text_field("description")?;
        text_field("author")?;
        text_field("created_at")?;
        let compat = text_field("compatible_vibectl_versions")?;
        if !compat.trim().is_empty() {
            check_compatible("plugin_metadata.compatible_vibectl_versions", &compat)?;
        }
        let mappings = match top.get("prompt_mappings") {
            Some(Value::Object(m)) if !m.is_empty() => m,
            Some(Value::Object(_)) => return Err(bad("prompt_mappings", "has no prompt")),
            Some(_) => return Err(bad("prompt_mappings", "expected an object")),
            None => return Err(bad("prompt_mappings", "missing")),
        };
        let mut out = BTreeMap::new();
        for (key, m) in mappings {
            let field = format!("prompt_mappings.{key}");
            let Value::Object(m) = m else {
                return Err(bad(field, "expected an object"));
            };
            check_mapping(&field, m)?;
            out.insert(key.clone(), m.clone());
        }
        Ok(Plugin {
            name,
            version,
            description,
            mappings: out,
        })
    }
}

/// A name or version usable in a file name.
fn check_word(field: &str, v: &str) -> Result<(), PluginError> {
    let ok = !v.is_empty()
        && v.chars().count() <= MAX_NAME_CHARS
        && !v.starts_with('.')
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(bad(
            field,
            format!(
                "`{v}` must be 1 to {MAX_NAME_CHARS} letters, digits, `.`, `_` or `-`, not starting with `.`"
            ),
        ))
    }
}

/// The fields of a prompt mapping whose type vibectl relies on.
fn check_mapping(field: &str, m: &Map<String, Value>) -> Result<(), PluginError> {
    for f in [
        "task_description",
        "context_instructions",
        "description",
        "command",
    ] {
        if let Some(v) = m.get(f)
            && !v.is_string()
        {
            return Err(bad(format!("{field}.{f}"), "expected a string"));
        }
    }
    for f in ["focus_points", "example_format"] {
        if let Some(v) = m.get(f) {
            let ok = v.as_array().is_some_and(|a| a.iter().all(Value::is_string));
            if !ok {
                return Err(bad(format!("{field}.{f}"), "expected a list of strings"));
            }
        }
    }
    // Examples take many shapes across 0.11.6's prompts; a list (or prose) is all they share.
    if let Some(v) = m.get("examples")
        && !v.is_array()
        && !v.is_string()
    {
        return Err(bad(
            format!("{field}.examples"),
            "expected a list or a string",
        ));
    }
    if let Some(v) = m.get("check_examples_data") {
        let ok = v.as_array().is_some_and(|a| {
            a.iter().all(|e| {
                e.as_array().is_some_and(|e| {
                    e.len() == 3 && e[0].is_string() && e[1].is_string() && e[2].is_object()
                })
            })
        });
        if !ok {
            return Err(bad(
                format!("{field}.check_examples_data"),
                "expected a list of [memory, predicate, action] items",
            ));
        }
    }
    let meta = m.get("prompt_metadata").and_then(Value::as_object);
    let flag = |k: &str| meta.and_then(|p| p.get(k)).and_then(Value::as_bool) == Some(true);
    if flag("is_planning_prompt") {
        for f in ["examples", "command"] {
            if m.get(f).is_none_or(|v| v.is_null() || v == "") {
                return Err(bad(format!("{field}.{f}"), "a planning prompt needs it"));
            }
        }
    } else if flag("is_summary_prompt")
        && m.get("focus_points").is_none()
        && m.get("example_format").is_none()
    {
        return Err(bad(
            format!("{field}.focus_points"),
            "a summary prompt needs focus_points or example_format",
        ));
    }
    Ok(())
}

/// `>=0.8.0,<1.0.0` must admit [`FORMAT_VERSION`].
fn check_compatible(field: &str, spec: &str) -> Result<(), PluginError> {
    for clause in spec.split(',').map(str::trim) {
        let (op, ver) = ["<=", ">=", "==", "!=", "<", ">", "="]
            .iter()
            .find_map(|op| clause.strip_prefix(op).map(|v| (*op, v.trim())))
            .ok_or_else(|| bad(field, format!("`{clause}` is not OP VERSION (>=0.8.0)")))?;
        let mut v = [0u64; 3];
        for (i, part) in ver.split('.').enumerate() {
            let n = part
                .parse()
                .map_err(|_| bad(field, format!("`{ver}` is not a version like 0.11.6")))?;
            if i < 3 {
                v[i] = n;
            }
        }
        let c = FORMAT_VERSION.cmp(&v);
        let holds = match op {
            "<=" => c.is_le(),
            ">=" => c.is_ge(),
            "<" => c.is_lt(),
            ">" => c.is_gt(),
            "!=" => c.is_ne(),
            _ => c.is_eq(),
        };
        if !holds {
            let [a, b, d] = FORMAT_VERSION;
            return Err(bad(
                field,
                format!("`{spec}` excludes the plugin format of vibectl {a}.{b}.{d}"),
            ));
        }
    }
    Ok(())
}

/// The winning mapping for each prompt key: the first plugin of `precedence` that maps it,
/// else the first of the others in `installed` order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Prompts {
    by_key: BTreeMap<String, (String, Map<String, Value>)>,
}

impl Prompts {
    pub fn resolve(installed: &[Plugin], precedence: &[String]) -> Prompts {
        let mut order: Vec<&Plugin> = precedence
            .iter()
            .filter_map(|n| installed.iter().find(|p| &p.name == n))
            .collect();
        order.extend(installed.iter().filter(|p| !precedence.contains(&p.name)));
        let mut by_key = BTreeMap::new();
        for p in order {
            for (k, m) in &p.mappings {
                by_key
                    .entry(k.clone())
                    .or_insert_with(|| (p.name.clone(), m.clone()));
            }
        }
        Prompts { by_key }
    }

    /// The mapping that replaces prompt `key`, and the plugin it comes from.
    pub fn get(&self, key: &str) -> Option<(&str, &Map<String, Value>)> {
        self.by_key.get(key).map(|(n, m)| (n.as_str(), m))
    }
}

/// A plugin's examples (`[memory, request, action]` or `[request, action]` items, or prose)
/// written the way the built-in examples are; `None` for other shapes (the built-in examples
/// are kept then).
pub fn format_examples(label: &str, v: &Value) -> Option<String> {
    if let Some(s) = v.as_str() {
        return Some(s.to_owned());
    }
    let items = v.as_array()?;
    let mut out = String::new();
    for item in items {
        let parts = item.as_array()?;
        let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        let (memory, request, action) = match parts.as_slice() {
            [m, r, a] if a.is_object() => (text(m), text(r), a),
            [r, a] if a.is_object() => (String::new(), text(r), a),
            _ => return None,
        };
        let memory = if memory.is_empty() {
            "(empty)".to_owned()
        } else {
            memory
        };
        out.push_str(&format!(
            "Memory: {memory}\n{label}: {request}\nAnswer: {}\n\n",
            serde_json::json!({ "action": action })
        ));
    }
    Some(out.trim_end().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(name: &str, key: &str, task: &str) -> String {
        serde_json::json!({
            "plugin_metadata": {"name": name, "version": "1.0.0", "description": "d",
                "author": "a", "compatible_vibectl_versions": ">=0.8.0,<1.0.0",
                "created_at": "2024-01-15T14:00:00Z"},
            "prompt_mappings": {key: {"task_description": task}}
        })
        .to_string()
    }

    #[test]
    fn a_bad_field_is_named() {
        let mut v: Value = serde_json::from_str(&doc("p", "check_plan", "t")).unwrap();
        v["plugin_metadata"]["name"] = Value::from("../evil");
        assert_eq!(
            Plugin::parse(&v.to_string()).unwrap_err().field,
            "plugin_metadata.name"
        );
        v["plugin_metadata"]["name"] = Value::from("ok");
        v["plugin_metadata"]["compatible_vibectl_versions"] = Value::from(">=2.0.0");
        assert_eq!(
            Plugin::parse(&v.to_string()).unwrap_err().field,
            "plugin_metadata.compatible_vibectl_versions"
        );
        v["plugin_metadata"]["compatible_vibectl_versions"] = Value::from("");
        v["prompt_mappings"]["check_plan"]["focus_points"] = Value::from(3);
        assert_eq!(
            Plugin::parse(&v.to_string()).unwrap_err().field,
            "prompt_mappings.check_plan.focus_points"
        );
        assert!(Plugin::parse(&doc("p", "check_plan", "t")).is_ok());
    }

    #[test]
    fn examples_of_other_prompts_keep_their_own_shapes() {
        // As 0.11.6's memory_update and recovery_suggestions plugins write them.
        let mut v: Value = serde_json::from_str(&doc("p", "memory_update", "t")).unwrap();
        v["prompt_mappings"]["memory_update"]["examples"] = serde_json::json!([["old", "new"]]);
        v["prompt_mappings"]["recovery_suggestions"] =
            serde_json::json!({"examples": [{"error_type": "x", "suggestion": "y"}]});
        assert!(Plugin::parse(&v.to_string()).is_ok());
        assert_eq!(
            format_examples(
                "Request",
                &v["prompt_mappings"]["memory_update"]["examples"]
            ),
            None
        );
        v["prompt_mappings"]["check_plan"] =
            serde_json::json!({"check_examples_data": [["only two", {}]]});
        assert_eq!(
            Plugin::parse(&v.to_string()).unwrap_err().field,
            "prompt_mappings.check_plan.check_examples_data"
        );
    }

    #[test]
    fn precedence_decides_then_installation_order() {
        let a = Plugin::parse(&doc("a", "check_plan", "from a")).unwrap();
        let b = Plugin::parse(&doc("b", "check_plan", "from b")).unwrap();
        let both = [a, b];
        assert_eq!(
            Prompts::resolve(&both, &[]).get("check_plan").unwrap().0,
            "a"
        );
        let first_b = Prompts::resolve(&both, &["b".to_owned()]);
        assert_eq!(first_b.get("check_plan").unwrap().0, "b");
        assert!(first_b.get("vibe_plan").is_none());
    }
}
