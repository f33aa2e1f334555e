//! The runtime view of a program's schema: the generated key table and lookups over it.

use super::path::KeyPath;

/// The value type of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    String,
    Bool,
    Int,
    Float,
    Path,
    Url,
    Enum,
    List,
    Map,
}

impl KeyType {
    pub fn name(self) -> &'static str {
        match self {
            KeyType::String => "string",
            KeyType::Bool => "bool",
            KeyType::Int => "int",
            KeyType::Float => "float",
            KeyType::Path => "path",
            KeyType::Url => "url",
            KeyType::Enum => "enum",
            KeyType::List => "list",
            KeyType::Map => "map",
        }
    }
}

/// One key of the schema, as codegen wrote it into the key table.
#[derive(Debug)]
pub struct KeySpec {
    /// Dotted path; a segment `<name>` stands for a user-chosen map entry.
    pub path: &'static str,
    pub ty: KeyType,
    /// The item type of a list.
    pub item: Option<KeyType>,
    pub doc: &'static str,
    /// The default as JSON text; empty for the value of a map entry, which has none.
    pub default: &'static str,
    pub nullable: bool,
    pub sensitive: bool,
    pub values: &'static [&'static str],
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub env: Option<&'static str>,
    pub old_names: &'static [&'static str],
    /// Why the key is kept when it is accepted only for compatibility and has no effect.
    pub compat: Option<&'static str>,
}

/// What `config info` and the generated docs say of a key marked `compat` in the schema, before
/// the reason.
pub const COMPAT_NOTE: &str = "Accepted for compatibility; has no effect.";

impl KeySpec {
    /// The default as a JSON value (`null` when there is none).
    pub fn default_value(&self) -> serde_json::Value {
        serde_json::from_str(self.default).unwrap_or(serde_json::Value::Null)
    }

    /// The compat note followed by the reason, or `None` for a key that has an effect.
    pub fn compat_text(&self) -> Option<String> {
        self.compat.map(|why| format!("{COMPAT_NOTE} {why}"))
    }

    /// The path's segments, with `<name>` templates kept as written.
    pub fn template(&self) -> KeyPath {
        KeyPath::template(self.path)
    }

    /// A short description of the type, e.g. `int (1..=65535)` or `enum: dark, light`.
    pub fn type_text(&self) -> String {
        let mut s = match (self.ty, self.item) {
            (KeyType::List, Some(item)) => format!("list of {}", item.name()),
            (ty, _) => ty.name().to_owned(),
        };
        match (self.min, self.max) {
            (Some(lo), Some(hi)) => s.push_str(&format!(" ({lo}..={hi})")),
            (Some(lo), None) => s.push_str(&format!(" (>= {lo})")),
            (None, Some(hi)) => s.push_str(&format!(" (<= {hi})")),
            (None, None) => {}
        }
        if self.nullable {
            s.push_str(", nullable");
        }
        s
    }
}

/// A section (or the entry of a map) of the schema.
#[derive(Debug)]
pub struct SectionSpec {
    pub path: &'static str,
    pub doc: &'static str,
    pub map_entry: bool,
}

/// Everything the config engine needs to know about one program's config file.
#[derive(Debug)]
pub struct ProgramSchema {
    /// `client` or `server`.
    pub program: &'static str,
    pub title: &'static str,
    pub keys: &'static [KeySpec],
    pub sections: &'static [SectionSpec],
    /// The generated JSON Schema document.
    pub json_schema: &'static str,
}

/// What a concrete path names in the schema.
#[derive(Debug, Clone, Copy)]
pub enum Found {
    Key(&'static KeySpec),
    Section(&'static SectionSpec),
}

impl ProgramSchema {
    /// The key a concrete path names (map entries matched by any name), through old names too.
    pub fn key(&self, path: &KeyPath) -> Option<&'static KeySpec> {
        let keys: &'static [KeySpec] = self.keys;
        keys.iter().find(|k| path.matches_template(k.path))
    }

    /// The key an old name of which `path` is.
    pub fn renamed(&self, path: &KeyPath) -> Option<&'static KeySpec> {
        let keys: &'static [KeySpec] = self.keys;
        keys.iter()
            .find(|k| k.old_names.iter().any(|o| path.matches_template(o)))
    }

    pub fn section(&self, path: &KeyPath) -> Option<&'static SectionSpec> {
        let sections: &'static [SectionSpec] = self.sections;
        sections.iter().find(|s| path.matches_template(s.path))
    }

    /// A key or section; `None` for anything the schema does not define.
    pub fn find(&self, path: &KeyPath) -> Option<Found> {
        if let Some(k) = self.key(path) {
            return Some(Found::Key(k));
        }
        self.section(path).map(Found::Section)
    }

    /// The top-level section names and top-level keys, in order.
    pub fn top_level(&self) -> Vec<&'static str> {
        let keys: &'static [KeySpec] = self.keys;
        let sections: &'static [SectionSpec] = self.sections;
        let mut out: Vec<&'static str> = Vec::new();
        for p in sections
            .iter()
            .map(|s| s.path)
            .chain(keys.iter().map(|k| k.path))
        {
            if !p.contains('.') && !out.contains(&p) {
                out.push(p);
            }
        }
        out
    }

    /// Up to three known paths closest to `input` (for "did you mean"), those as deep as
    /// `input` first: a mistyped section suggests sections, a mistyped key suggests keys.
    pub fn suggest(&self, input: &str) -> Vec<String> {
        let depth = |p: &str| p.matches('.').count();
        let mut scored: Vec<(f64, String)> = self
            .all_paths()
            .into_iter()
            .map(|p| (strsim::jaro_winkler(input, &p), p))
            .filter(|(score, p)| *score > 0.75 && !input.starts_with(&format!("{p}.")))
            .collect();
        if scored.iter().any(|(_, p)| depth(p) == depth(input)) {
            scored.retain(|(_, p)| depth(p) == depth(input));
        }
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        scored.into_iter().take(3).map(|(_, p)| p).collect()
    }

    /// Every key and section path, templates included.
    pub fn all_paths(&self) -> Vec<String> {
        self.sections
            .iter()
            .map(|s| s.path.to_owned())
            .chain(self.keys.iter().map(|k| k.path.to_owned()))
            .collect()
    }
}
