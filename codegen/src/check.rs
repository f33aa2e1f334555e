//! The rules a schema must keep before codegen writes anything; each rule is a named test.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::model::{Leaf, Schema, Type, Visit};

/// One broken rule, with the key that breaks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub rule: &'static str,
    pub key: String,
    pub what: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}] {}: {}", self.rule, self.key, self.what)
    }
}

/// A rule: a name and a check over the whole schema.
pub struct Rule {
    pub name: &'static str,
    pub check: fn(&Schema) -> Vec<Problem>,
}

pub const RULES: &[Rule] = &[
    Rule {
        name: "unique_paths",
        check: unique_paths,
    },
    Rule {
        name: "docs_are_sentences",
        check: docs_are_sentences,
    },
    Rule {
        name: "defaults_present",
        check: defaults_present,
    },
    Rule {
        name: "enum_values_valid",
        check: enum_values_valid,
    },
    Rule {
        name: "ranges_only_on_numbers",
        check: ranges_only_on_numbers,
    },
    Rule {
        name: "names_are_snake_case",
        check: names_are_snake_case,
    },
    Rule {
        name: "maps_have_entries",
        check: maps_have_entries,
    },
    Rule {
        name: "compat_is_explained",
        check: compat_is_explained,
    },
];

/// Every problem of every rule.
pub fn check(schema: &Schema) -> Vec<Problem> {
    RULES.iter().flat_map(|r| (r.check)(schema)).collect()
}

fn problem(rule: &'static str, key: String, what: impl Into<String>) -> Problem {
    Problem {
        rule,
        key,
        what: what.into(),
    }
}

pub fn unique_paths(schema: &Schema) -> Vec<Problem> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for v in schema.walk() {
        let (path, olds): (String, &[String]) = match &v {
            Visit::Section { path, .. } => (path.dotted(), &[]),
            Visit::Leaf { path, leaf } => (path.dotted(), &leaf.old_names),
        };
        for p in std::iter::once(&path).chain(olds.iter()) {
            if !seen.insert(p.clone()) {
                out.push(problem(
                    "unique_paths",
                    path.clone(),
                    format!("the path `{p}` is defined twice"),
                ));
            }
        }
    }
    out
}

/// A sentence: starts with a capital letter or a backquote, ends with `.`, `?` or `!`, has a space.
pub fn is_sentence(doc: &str) -> bool {
    let doc = doc.trim();
    let first_ok = doc
        .chars()
        .next()
        .is_some_and(|c| c.is_uppercase() || c == '`' || c.is_ascii_digit());
    first_ok && doc.ends_with(['.', '?', '!']) && doc.contains(' ')
}

pub fn docs_are_sentences(schema: &Schema) -> Vec<Problem> {
    let mut out = Vec::new();
    for v in schema.walk() {
        let (path, doc) = match &v {
            Visit::Section { path, doc, .. } => (path.dotted(), *doc),
            Visit::Leaf { path, leaf } => (path.dotted(), leaf.doc.as_str()),
        };
        if !is_sentence(doc) {
            out.push(problem(
                "docs_are_sentences",
                path,
                format!("`doc` must be one or more sentences (capital first, full stop last), found {doc:?}"),
            ));
        }
    }
    out
}

/// Whether `v` is a value of the leaf's type (null only when nullable).
pub fn value_fits(leaf: &Leaf, v: &Value) -> Result<(), String> {
    if v.is_null() {
        return if leaf.nullable || leaf.ty == Type::Map {
            Ok(())
        } else {
            Err("null is not allowed: the key is not nullable".into())
        };
    }
    scalar_fits(leaf.ty, leaf, v)
}

fn scalar_fits(ty: Type, leaf: &Leaf, v: &Value) -> Result<(), String> {
    let ok = match ty {
        Type::String | Type::Path | Type::Url => v.is_string(),
        Type::Bool => v.is_boolean(),
        Type::Int => v.is_i64() || v.is_u64(),
        Type::Float => v.is_number(),
        Type::Enum => match v.as_str() {
            Some(s) if leaf.values.iter().any(|x| x == s) => true,
            Some(s) => return Err(format!("`{s}` is not one of {:?}", leaf.values)),
            None => false,
        },
        Type::List => match v.as_array() {
            Some(items) => {
                let item_ty = leaf.items.unwrap_or(Type::String);
                for item in items {
                    scalar_fits(item_ty, leaf, item)?;
                }
                true
            }
            None => false,
        },
        Type::Map => v.is_object(),
    };
    if !ok {
        return Err(format!("{v} is not a {}", ty.name()));
    }
    if let Some(n) = v.as_f64().filter(|_| matches!(ty, Type::Int | Type::Float))
        && (leaf.min.is_some_and(|m| n < m) || leaf.max.is_some_and(|m| n > m))
    {
        return Err(format!("{n} is outside {:?}..={:?}", leaf.min, leaf.max));
    }
    Ok(())
}

pub fn defaults_present(schema: &Schema) -> Vec<Problem> {
    let mut out = Vec::new();
    for (path, leaf) in schema.leaves() {
        let key = path.dotted();
        match (&leaf.default, leaf.ty) {
            (None, Type::Map) => {}
            (None, _) if path.has_entry() && leaf.map.is_none() && is_map_value(schema, &key) => {}
            (None, _) => out.push(problem("defaults_present", key, "no `default`")),
            (Some(d), _) => {
                if let Err(e) = value_fits(leaf, d) {
                    out.push(problem(
                        "defaults_present",
                        key,
                        format!("default does not fit: {e}"),
                    ));
                }
            }
        }
    }
    out
}

/// A leaf that is itself the entry of a map (`model_aliases.<alias>`) needs no default.
fn is_map_value(schema: &Schema, key: &str) -> bool {
    key.ends_with('>')
        && schema
            .leaves()
            .iter()
            .any(|(p, l)| l.map.is_some() && key.starts_with(&format!("{}.<", p.dotted())))
}

pub fn enum_values_valid(schema: &Schema) -> Vec<Problem> {
    let mut out = Vec::new();
    for (path, leaf) in schema.leaves() {
        let key = path.dotted();
        if leaf.ty == Type::Enum {
            if leaf.values.is_empty() {
                out.push(problem(
                    "enum_values_valid",
                    key.clone(),
                    "an enum needs `values`",
                ));
            }
            let unique: BTreeSet<_> = leaf.values.iter().collect();
            if unique.len() != leaf.values.len() {
                out.push(problem("enum_values_valid", key, "`values` has duplicates"));
            }
        } else if !leaf.values.is_empty() {
            out.push(problem(
                "enum_values_valid",
                key,
                "`values` is only for `type: enum`",
            ));
        }
    }
    out
}

pub fn ranges_only_on_numbers(schema: &Schema) -> Vec<Problem> {
    let mut out = Vec::new();
    for (path, leaf) in schema.leaves() {
        let numeric = matches!(leaf.ty, Type::Int | Type::Float);
        if (leaf.min.is_some() || leaf.max.is_some()) && !numeric {
            out.push(problem(
                "ranges_only_on_numbers",
                path.dotted(),
                "`min`/`max` are only for int and float",
            ));
        }
        if let (Some(lo), Some(hi)) = (leaf.min, leaf.max)
            && lo > hi
        {
            out.push(problem(
                "ranges_only_on_numbers",
                path.dotted(),
                "`min` is above `max`",
            ));
        }
    }
    out
}

pub fn names_are_snake_case(schema: &Schema) -> Vec<Problem> {
    let mut out = Vec::new();
    for v in schema.walk() {
        let path = match &v {
            Visit::Section { path, .. } | Visit::Leaf { path, .. } => path,
        };
        if let Some(crate::model::Seg::Name(n)) = path.0.last() {
            let ok = n.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                && n.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !ok {
                out.push(problem(
                    "names_are_snake_case",
                    path.dotted(),
                    format!("`{n}` is not snake_case"),
                ));
            }
        }
    }
    out
}

pub fn maps_have_entries(schema: &Schema) -> Vec<Problem> {
    let mut out = Vec::new();
    for (path, leaf) in schema.leaves() {
        if leaf.ty == Type::Map && leaf.map.is_none() {
            out.push(problem(
                "maps_have_entries",
                path.dotted(),
                "a map needs `name` and `entry`",
            ));
        }
        if leaf.ty == Type::List && leaf.items == Some(Type::List) {
            out.push(problem(
                "maps_have_entries",
                path.dotted(),
                "lists of lists are not supported",
            ));
        }
    }
    out
}

/// A `compat` key says why it is kept, as sentences, and does not repeat the note every
/// artifact already prints before the reason.
pub fn compat_is_explained(schema: &Schema) -> Vec<Problem> {
    let mut out = Vec::new();
    for (path, leaf) in schema.leaves() {
        let Some(why) = &leaf.compat else { continue };
        if !is_sentence(why) {
            out.push(problem(
                "compat_is_explained",
                path.dotted(),
                format!(
                    "`compat` must give the reason the key is kept as sentences, found {why:?}"
                ),
            ));
        } else if why.contains(crate::model::COMPAT_NOTE) {
            out.push(problem(
                "compat_is_explained",
                path.dotted(),
                "`compat` gives only the reason; the note that the key has no effect is added",
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(keys: &str) -> Schema {
        let text = format!("program: client\ntitle: t\ndoc: A test.\nkeys:\n{keys}");
        Schema::parse("test.yaml", &text).expect("test schema parses")
    }

    fn rule_hits(rule: fn(&Schema) -> Vec<Problem>, keys: &str) -> Vec<String> {
        rule(&schema(keys)).into_iter().map(|p| p.key).collect()
    }

    const GOOD: &str = "  llm:\n    doc: Model settings.\n    keys:\n      model:\n        type: string\n        default: x\n        doc: The model to use.\n";

    #[test]
    fn good_schema_passes_every_rule() {
        assert_eq!(check(&schema(GOOD)), vec![]);
    }

    #[test]
    fn unique_paths() {
        let keys = format!(
            "{GOOD}  other:\n    doc: Other things.\n    keys:\n      x:\n        type: bool\n        default: false\n        doc: A flag here.\n        old_names: [llm.model]\n"
        );
        assert_eq!(rule_hits(super::unique_paths, &keys), vec!["other.x"]);
    }

    #[test]
    fn docs_are_sentences() {
        let keys = GOOD.replace("The model to use.", "the model");
        assert_eq!(
            rule_hits(super::docs_are_sentences, &keys),
            vec!["llm.model"]
        );
    }

    #[test]
    fn defaults_present() {
        let missing = GOOD.replace("        default: x\n", "");
        assert_eq!(
            rule_hits(super::defaults_present, &missing),
            vec!["llm.model"]
        );
        let wrong_type = GOOD.replace("default: x", "default: 3");
        assert_eq!(
            rule_hits(super::defaults_present, &wrong_type),
            vec!["llm.model"]
        );
        let null = GOOD.replace("default: x", "default: null");
        assert_eq!(rule_hits(super::defaults_present, &null), vec!["llm.model"]);
        let out_of_range =
            "  n:\n    type: int\n    default: 0\n    min: 1\n    doc: A number here.\n";
        assert_eq!(rule_hits(super::defaults_present, out_of_range), vec!["n"]);
    }

    #[test]
    fn enum_values_valid() {
        let no_values = "  t:\n    type: enum\n    default: a\n    doc: A choice here.\n";
        assert_eq!(rule_hits(super::enum_values_valid, no_values), vec!["t"]);
        let dup =
            "  t:\n    type: enum\n    values: [a, a]\n    default: a\n    doc: A choice here.\n";
        assert_eq!(rule_hits(super::enum_values_valid, dup), vec!["t"]);
        let on_string =
            "  t:\n    type: string\n    values: [a]\n    default: a\n    doc: A choice here.\n";
        assert_eq!(rule_hits(super::enum_values_valid, on_string), vec!["t"]);
        let bad_default =
            "  t:\n    type: enum\n    values: [a, b]\n    default: c\n    doc: A choice here.\n";
        assert_eq!(rule_hits(super::defaults_present, bad_default), vec!["t"]);
    }

    #[test]
    fn ranges_only_on_numbers() {
        let keys = "  t:\n    type: string\n    min: 1\n    default: a\n    doc: A name here.\n";
        assert_eq!(rule_hits(super::ranges_only_on_numbers, keys), vec!["t"]);
        let inverted = "  n:\n    type: int\n    min: 5\n    max: 1\n    default: 3\n    doc: A number here.\n";
        assert_eq!(
            rule_hits(super::ranges_only_on_numbers, inverted),
            vec!["n"]
        );
    }

    #[test]
    fn names_are_snake_case() {
        let keys = GOOD.replace("model:", "Model:");
        assert_eq!(
            rule_hits(super::names_are_snake_case, &keys),
            vec!["llm.Model"]
        );
    }

    #[test]
    fn compat_is_explained() {
        let kept = GOOD.replace(
            "doc: The model to use.\n",
            "doc: The model to use.\n        compat: Read by a command not built yet.\n",
        );
        assert_eq!(check(&schema(&kept)), vec![]);
        assert_eq!(
            schema(&kept).leaves()[0].1.compat_text().as_deref(),
            Some("Accepted for compatibility; has no effect. Read by a command not built yet.")
        );
        let terse = kept.replace("Read by a command not built yet.", "legacy");
        assert_eq!(
            rule_hits(super::compat_is_explained, &terse),
            vec!["llm.model"]
        );
        let repeated = kept.replace(
            "Read by a command",
            "Accepted for compatibility; has no effect. Read by a command",
        );
        assert_eq!(
            rule_hits(super::compat_is_explained, &repeated),
            vec!["llm.model"]
        );
        let flag = kept.replace("compat: Read by a command not built yet.", "compat: true");
        assert!(Schema::parse("t", &format!("program: client\nkeys:\n{flag}")).is_err());
    }

    #[test]
    fn maps_have_entries() {
        let keys = "  m:\n    type: map\n    doc: A map here.\n";
        assert!(Schema::parse("t", &format!("program: client\nkeys:\n{keys}")).is_err());
        let ok = "  m:\n    type: map\n    name: id\n    doc: A map here.\n    entry:\n      type: string\n      doc: A value here.\n";
        assert_eq!(check(&schema(ok)), vec![]);
    }
}
