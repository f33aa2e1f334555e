//! One config engine for both programs: load, layer, validate, edit, write.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::document;
use super::error::{ConfigError, Problem};

use super::path::{KeyPath, is_placeholder};
use super::schema::{Found, KeySpec, KeyType, ProgramSchema};
use super::store;
use super::value;

/// Where an effective value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Default,
    File(PathBuf),
    Env(String),
    Flag(String),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::File(p) => write!(f, "file {}", p.display()),
            Origin::Env(v) => write!(f, "env {v}"),
            Origin::Flag(n) => write!(f, "flag {n}"),
        }
    }
}

/// A value set on the command line for this run only (`--model X` is `llm.model`).
#[derive(Debug, Clone)]
pub struct Override {
    pub key: KeyPath,
    pub value: Value,
    /// The flag as the user typed it, for `config info`.
    pub flag: String,
}

/// A config file as read: its text and its parsed value (old names moved to their new ones).
#[derive(Debug, Clone)]
pub struct Loaded {
    pub path: PathBuf,
    /// `None` when the file does not exist.
    pub text: Option<String>,
    pub file: Value,
    /// `(old, new)` for each old name the file still uses.
    pub renamed: Vec<(String, String)>,
}

/// The engine over one program's schema.
#[derive(Clone, Copy)]
pub struct Engine {
    pub schema: &'static ProgramSchema,
    pub(super) typed: fn(&Value) -> Result<(), String>,
}

/// A process environment lookup (tests pass their own).
pub type EnvFn<'a> = &'a dyn Fn(&str) -> Option<String>;

impl Engine {
    pub const fn new(
        schema: &'static ProgramSchema,
        typed: fn(&Value) -> Result<(), String>,
    ) -> Engine {
        Engine { schema, typed }
    }

    /// Read and parse a config file (a missing file is empty).
    pub fn load(&self, path: &Path) -> Result<Loaded, ConfigError> {
        let text = store::read(path)?;
        self.from_text(path, text)
    }

    /// Parse text as if read from `path`.
    pub fn from_text(&self, path: &Path, text: Option<String>) -> Result<Loaded, ConfigError> {
        let mut file = match &text {
            Some(t) => document::parse(path, t)?,
            None => Value::Object(Map::new()),
        };
        let renamed = self.apply_old_names(&mut file);
        drop_null_sections(self.schema, &mut file, &KeyPath::from_segments(Vec::new()));
        Ok(Loaded {
            path: path.to_owned(),
            text,
            file,
            renamed,
        })
    }

    fn apply_old_names(&self, file: &mut Value) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for key in self.schema.keys {
            for old in key.old_names {
                // Most files use no old name: look at the top-level entry before anything else.
                let top = old.split('.').next().unwrap_or_default();
                if file.get(top).is_none() {
                    continue;
                }
                let old_path = KeyPath::template(old);
                if let Some(v) = document::take(file, &old_path) {
                    let new_path = KeyPath::template(key.path);
                    if document::get(file, &new_path).is_none() {
                        document::insert(file, &new_path, v);
                    }
                    out.push(((*old).to_owned(), key.path.to_owned()));
                    let mut parent = old_path.parent();
                    while let Some(p) = parent {
                        if !document::get(file, &p)
                            .is_some_and(|v| v.as_object().is_some_and(|o| o.is_empty()))
                        {
                            break;
                        }
                        document::take(file, &p);
                        parent = p.parent();
                    }
                }
            }
        }
        out
    }

    /// What a path names; an unknown path is an error with the closest known keys.
    pub fn resolve(&self, path: &KeyPath) -> Result<Found, ConfigError> {
        if let Some(found) = self.schema.find(path) {
            return Ok(found);
        }
        if let Some(key) = self.schema.renamed(path) {
            return Ok(Found::Key(key));
        }
        Err(ConfigError::UnknownKey {
            key: path.to_string(),
            suggestions: self.schema.suggest(&path.to_string()),
        })
    }

    /// The path as the schema names it now: an old name (`theme`) gives its new one
    /// (`display.theme`); anything else is returned as it is.
    pub fn canonical(&self, path: &KeyPath) -> KeyPath {
        if self.schema.key(path).is_some() || self.schema.section(path).is_some() {
            return path.clone();
        }
        match self.schema.renamed(path) {
            Some(k) => KeyPath::template(k.path),
            None => path.clone(),
        }
    }

    /// The effective config: defaults < file < env < flags, with map entries filled with their
    /// defaults. The file must be valid.
    pub fn effective(
        &self,
        loaded: &Loaded,
        env: EnvFn<'_>,
        flags: &[Override],
    ) -> Result<Value, ConfigError> {
        let mut v = self.defaults();
        merge(&mut v, &loaded.file);
        for key in self.schema.keys {
            if let Some((var, raw)) = key.env.and_then(|var| env(var).map(|raw| (var, raw))) {
                let path = KeyPath::template(key.path);
                let parsed =
                    value::parse(key, key.path, &raw).map_err(|e| ConfigError::BadEnv {
                        var: var.to_owned(),
                        key: key.path.to_owned(),
                        detail: e.detail(),
                    })?;
                document::insert(&mut v, &path, parsed);
            }
        }
        for o in flags {
            document::insert(&mut v, &o.key, o.value.clone());
        }
        self.fill_entries(&mut v);
        Ok(v)
    }

    /// The effective config parsed into the program's typed struct.
    pub fn typed<T: serde::de::DeserializeOwned>(
        &self,
        effective: &Value,
    ) -> Result<T, ConfigError> {
        serde_json::from_value(effective.clone()).map_err(|e| ConfigError::Invalid {
            file: PathBuf::from("(effective config)"),
            problems: vec![Problem {
                key: "(config)".into(),
                line: None,
                message: e.to_string(),
            }],
        })
    }

    /// The built-in defaults as a tree (maps empty).
    pub fn defaults(&self) -> Value {
        let mut v = Value::Object(Map::new());
        for key in self.schema.keys.iter().filter(|k| !k.path.contains('<')) {
            document::insert(&mut v, &KeyPath::template(key.path), key.default_value());
        }
        v
    }

    /// Give every map entry the defaults of the keys it leaves out.
    fn fill_entries(&self, root: &mut Value) {
        for key in self
            .schema
            .keys
            .iter()
            .filter(|k| k.path.contains('<') && !k.default.is_empty())
        {
            let template = key.template();
            for concrete in expand(root, template.segments(), Vec::new()) {
                let path = KeyPath::from_segments(concrete);
                if document::get(root, &path).is_none() {
                    document::insert(root, &path, key.default_value());
                }
            }
        }
    }

    /// Where the effective value at `path` comes from.
    pub fn origin(
        &self,
        loaded: &Loaded,
        env: EnvFn<'_>,
        flags: &[Override],
        path: &KeyPath,
    ) -> Origin {
        if let Some(o) = flags.iter().rev().find(|o| path.starts_with(&o.key)) {
            return Origin::Flag(o.flag.clone());
        }
        if let Some(var) = self
            .schema
            .key(path)
            .and_then(|k| k.env)
            .filter(|var| env(var).is_some())
        {
            return Origin::Env(var.to_owned());
        }
        if document::get(&loaded.file, path).is_some() {
            return Origin::File(loaded.path.clone());
        }
        Origin::Default
    }

    /// The file's new text with `key` set from `raw`, checked in full; nothing is written.
    pub fn set(
        &self,
        loaded: &Loaded,
        key: &KeyPath,
        raw: &str,
    ) -> Result<(String, Value), ConfigError> {
        let spec = self.leaf(key)?;
        let key = self.canonical(key);
        let value = value::parse(spec, &key.to_string(), raw)?;
        let old_text = loaded.text.clone().unwrap_or_default();
        let new_text = document::set(&loaded.path, &old_text, &key, &value)?;
        let after = self.from_text(&loaded.path, Some(new_text.clone()))?;
        self.validate(&after)?;
        if document::get(&after.file, &key) != Some(&value) {
            return Err(ConfigError::Edit {
                key: key.to_string(),
                file: loaded.path.clone(),
                detail: "the edited file does not read back the value written".into(),
            });
        }
        Ok((new_text, value))
    }

    /// The file's new text with `key` removed; an error when the file does not set it.
    pub fn unset(&self, loaded: &Loaded, key: &KeyPath) -> Result<String, ConfigError> {
        self.resolve(key)?;
        let key = self.canonical(key);
        let text = loaded.text.clone().unwrap_or_default();
        if document::get(&loaded.file, &key).is_none() || document::line_of(&text, &key).is_none() {
            return Err(ConfigError::NotSet {
                key: key.to_string(),
                file: loaded.path.clone(),
            });
        }
        let new_text = document::remove(&loaded.path, &text, &key)?;
        let after = self.from_text(&loaded.path, Some(new_text.clone()))?;
        self.validate(&after)?;
        Ok(new_text)
    }

    /// The key spec for a path that must name a single settable key.
    pub fn leaf(&self, key: &KeyPath) -> Result<&'static KeySpec, ConfigError> {
        match self.resolve(key)? {
            Found::Key(spec) => Ok(spec),
            Found::Section(s) => Err(ConfigError::IsSection {
                key: key.to_string(),
                children: self.children(&KeyPath::template(s.path)),
            }),
        }
    }

    /// The keys and sections directly under a section.
    pub fn children(&self, section: &KeyPath) -> Vec<String> {
        self.schema
            .all_paths()
            .iter()
            .map(|p| KeyPath::template(p))
            .filter(|p| {
                p.parent()
                    .is_some_and(|pp| section.matches(&pp) || pp == *section)
            })
            .map(|p| p.to_string())
            .collect()
    }

    /// Write new text for a loaded file (0600 when it holds a secret).
    /// Nothing is written when the text is unchanged and the mode is already right.
    pub fn write(&self, loaded: &Loaded, new_text: &str) -> Result<(), ConfigError> {
        let after = self.from_text(&loaded.path, Some(new_text.to_owned()))?;
        let secret = self.holds_secret(&after.file);
        if loaded.text.as_deref() == Some(new_text) && store::mode_ok(&loaded.path, secret) {
            return Ok(());
        }
        store::write_atomic(&loaded.path, new_text, secret)
    }

    /// Whether a file value holds a secret: a sensitive key set, or a URL with a token in it.
    pub fn holds_secret(&self, file: &Value) -> bool {
        self.schema.keys.iter().any(|k| {
            let template = k.template();
            expand(file, template.segments(), Vec::new())
                .into_iter()
                .any(|segs| {
                    let v = document::get(file, &KeyPath::from_segments(segs));
                    match v {
                        Some(Value::Null) | None => false,
                        Some(Value::String(s)) if k.ty == KeyType::Url => url_has_token(s),
                        Some(_) => k.sensitive,
                    }
                })
        })
    }

    /// A copy of `v` (rooted at `at`) with secrets replaced by `**REDACTED**` and URL tokens by `***`.
    pub fn redact(&self, v: &Value, at: &KeyPath) -> Value {
        let mut out = v.clone();
        for k in self
            .schema
            .keys
            .iter()
            .filter(|k| k.sensitive || k.ty == KeyType::Url)
        {
            let template = k.template();
            for segs in expand(v, template.segments(), at.segments().to_vec()) {
                let rel = KeyPath::from_segments(segs[at.len()..].to_vec());
                let replacement = match document::get(v, &rel) {
                    Some(Value::String(s)) if k.sensitive => {
                        Value::String(super::secret::REDACTED.into())
                    }
                    Some(Value::String(s)) if url_has_token(s) => Value::String(redact_url(s)),
                    _ => continue,
                };
                if rel.is_empty() {
                    out = replacement;
                } else {
                    document::insert(&mut out, &rel, replacement);
                }
            }
        }
        out
    }
}

/// Concrete paths matching a template, `<name>` expanded over the entries that exist in `root`
/// (fixed segments are kept whether or not they exist). `prefix`
/// is the part of the template already consumed, when `root` is a subtree.
fn expand(root: &Value, template: &[String], prefix: Vec<String>) -> Vec<Vec<String>> {
    let depth = prefix.len();
    if depth > template.len() {
        return Vec::new();
    }
    if !KeyPath::from_segments(prefix.clone())
        .matches(&KeyPath::from_segments(template[..depth].to_vec()))
    {
        return Vec::new();
    }
    let mut paths = vec![prefix];
    for seg in &template[depth..] {
        let mut next = Vec::new();
        for p in paths {
            if is_placeholder(seg) {
                let rel = KeyPath::from_segments(p[depth..].to_vec());
                let node = if rel.is_empty() {
                    Some(root)
                } else {
                    document::get(root, &rel)
                };
                let Some(Value::Object(obj)) = node else {
                    continue;
                };
                for name in obj.keys() {
                    let mut q = p.clone();
                    q.push(name.clone());
                    next.push(q);
                }
            } else {
                let mut q = p.clone();
                q.push(seg.clone());
                next.push(q);
            }
        }
        paths = next;
    }
    paths
}

/// Overlay `top` onto `base`, objects merged key by key.
fn merge(base: &mut Value, top: &Value) {
    match (base, top) {
        (Value::Object(b), Value::Object(t)) => {
            for (k, v) in t {
                match b.get_mut(k) {
                    Some(existing) if existing.is_object() && v.is_object() => merge(existing, v),
                    _ => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, t) => *b = t.clone(),
    }
}

/// Remove `section: null` (an empty section in YAML) so the defaults apply.
fn drop_null_sections(schema: &ProgramSchema, v: &mut Value, at: &KeyPath) {
    let Value::Object(obj) = v else { return };
    let names: Vec<String> = obj.keys().cloned().collect();
    for name in names {
        let child = at.child(&name);
        let is_container = schema.section(&child).is_some()
            || schema.key(&child).is_some_and(|k| k.ty == KeyType::Map);
        if !is_container {
            continue;
        }
        if obj.get(&name).is_some_and(Value::is_null) {
            obj.shift_remove(&name);
        } else if let Some(inner) = obj.get_mut(&name) {
            drop_null_sections(schema, inner, &child);
        }
    }
}

/// Whether a URL carries credentials in its user part (`scheme://TOKEN@host`).
pub fn url_has_token(url: &str) -> bool {
    url.split_once("://")
        .map(|(_, rest)| {
            rest.split(['/', '?', '#'])
                .next()
                .unwrap_or_default()
                .contains('@')
        })
        .unwrap_or(false)
}

/// `scheme://TOKEN@host:port` -> `scheme://***@host:port`.
pub fn redact_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            let (authority, tail) = rest.split_at(authority_end);
            match authority.rsplit_once('@') {
                Some((_, host)) => format!("{scheme}://***@{host}{tail}"),
                None => url.to_owned(),
            }
        }
        None => url.to_owned(),
    }
}
