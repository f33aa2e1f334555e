//! The schema model: what `schema/*.yaml` says, loaded into types codegen can walk.

use indexmap::IndexMap;
use serde_json::Value;

/// Which program a schema file configures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Program {
    Client,
    Server,
}

impl Program {
    pub fn name(self) -> &'static str {
        match self {
            Program::Client => "client",
            Program::Server => "server",
        }
    }

    /// The binary the program is run as.
    pub fn bin(self) -> &'static str {
        match self {
            Program::Client => "vibectl",
            Program::Server => "vibectl-server",
        }
    }

    /// The name of the generated root struct.
    pub fn root_struct(self) -> &'static str {
        match self {
            Program::Client => "ClientConfig",
            Program::Server => "ServerConfig",
        }
    }
}

/// One whole schema file.
#[derive(Debug, Clone)]
pub struct Schema {
    pub program: Program,
    pub title: String,
    pub doc: String,
    pub keys: IndexMap<String, Node>,
}

/// A node of the tree: a section of keys or a leaf value.
#[derive(Debug, Clone)]
pub enum Node {
    Section(Section),
    Leaf(Leaf),
}

#[derive(Debug, Clone)]
pub struct Section {
    pub doc: String,
    pub rust_name: Option<String>,
    pub keys: IndexMap<String, Node>,
}

/// The value types a leaf may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
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

impl Type {
    pub fn parse(s: &str) -> Option<Type> {
        Some(match s {
            "string" => Type::String,
            "bool" => Type::Bool,
            "int" => Type::Int,
            "float" => Type::Float,
            "path" => Type::Path,
            "url" => Type::Url,
            "enum" => Type::Enum,
            "list" => Type::List,
            "map" => Type::Map,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Type::String => "string",
            Type::Bool => "bool",
            Type::Int => "int",
            Type::Float => "float",
            Type::Path => "path",
            Type::Url => "url",
            Type::Enum => "enum",
            Type::List => "list",
            Type::Map => "map",
        }
    }

    /// The Rust variant name in `KeyType`.
    pub fn variant(self) -> &'static str {
        match self {
            Type::String => "String",
            Type::Bool => "Bool",
            Type::Int => "Int",
            Type::Float => "Float",
            Type::Path => "Path",
            Type::Url => "Url",
            Type::Enum => "Enum",
            Type::List => "List",
            Type::Map => "Map",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Leaf {
    pub ty: Type,
    pub doc: String,
    /// `None` when the schema gave no `default` at all (a rule violation except for maps).
    pub default: Option<Value>,
    pub nullable: bool,
    pub sensitive: bool,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub values: Vec<String>,
    pub items: Option<Type>,
    pub old_names: Vec<String>,
    pub example: Option<Value>,
    pub map: Option<MapSpec>,
    /// `Some(reason)` when the key is accepted only so that files carrying it load: it has no
    /// effect, and the reason says why it is kept.
    pub compat: Option<String>,
}

/// What every generated artifact says of a `compat` key, before the reason.
pub const COMPAT_NOTE: &str = "Accepted for compatibility; has no effect.";

impl Leaf {
    /// The compat note followed by the reason, or `None` for a key that has an effect.
    pub fn compat_text(&self) -> Option<String> {
        self.compat
            .as_ref()
            .map(|why| format!("{COMPAT_NOTE} {}", why.trim()))
    }
}

/// The entries of a `type: map` leaf.
#[derive(Debug, Clone)]
pub struct MapSpec {
    /// What an entry name is called (`profile`, `sub`, `id`).
    pub name: String,
    pub entry: Box<Node>,
}

/// An error in the shape of a schema file (before the rule checks).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{file}: {source}")]
    Yaml {
        file: String,
        source: Box<serde_saphyr::Error>,
    },
    #[error("{file}: at `{path}`: {what}")]
    Shape {
        file: String,
        path: String,
        what: String,
    },
}

const LEAF_ATTRS: &[&str] = &[
    "type",
    "doc",
    "default",
    "nullable",
    "sensitive",
    "min",
    "max",
    "values",
    "items",
    "old_names",
    "example",
    "name",
    "entry",
    "compat",
];
const SECTION_ATTRS: &[&str] = &["doc", "keys", "rust_name"];

impl Schema {
    /// Parse a schema file's text. `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Schema, LoadError> {
        let root: Value = serde_saphyr::from_str(text).map_err(|source| LoadError::Yaml {
            file: file.to_owned(),
            source: Box::new(source),
        })?;
        let shape = |path: &str, what: String| LoadError::Shape {
            file: file.to_owned(),
            path: path.to_owned(),
            what,
        };
        let obj = root
            .as_object()
            .ok_or_else(|| shape("", "the file must be a mapping".into()))?;
        let program = match obj.get("program").and_then(Value::as_str) {
            Some("client") => Program::Client,
            Some("server") => Program::Server,
            other => {
                return Err(shape(
                    "program",
                    format!("expected client or server, found {other:?}"),
                ));
            }
        };
        let str_of = |k: &str| {
            obj.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let keys = obj
            .get("keys")
            .ok_or_else(|| shape("", "missing `keys`".into()))?;
        let loader = Loader { file };
        Ok(Schema {
            program,
            title: str_of("title"),
            doc: str_of("doc"),
            keys: loader.children("", keys)?,
        })
    }
}

struct Loader<'a> {
    file: &'a str,
}

impl Loader<'_> {
    fn err(&self, path: &str, what: impl Into<String>) -> LoadError {
        LoadError::Shape {
            file: self.file.to_owned(),
            path: path.to_owned(),
            what: what.into(),
        }
    }

    fn children(&self, path: &str, v: &Value) -> Result<IndexMap<String, Node>, LoadError> {
        let obj = v
            .as_object()
            .ok_or_else(|| self.err(path, "`keys` must be a mapping of name to node"))?;
        let mut out = IndexMap::new();
        for (name, node) in obj {
            let child = if path.is_empty() {
                name.clone()
            } else {
                format!("{path}.{name}")
            };
            out.insert(name.clone(), self.node(&child, node)?);
        }
        Ok(out)
    }

    fn node(&self, path: &str, v: &Value) -> Result<Node, LoadError> {
        let obj = v
            .as_object()
            .ok_or_else(|| self.err(path, "a node must be a mapping with `type` or `keys`"))?;
        let doc = obj
            .get("doc")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if !obj.contains_key("type") {
            for k in obj.keys() {
                if !SECTION_ATTRS.contains(&k.as_str()) {
                    return Err(self.err(path, format!("unknown section attribute `{k}`")));
                }
            }
            let keys = obj.get("keys").ok_or_else(|| {
                self.err(path, "a node needs `type` (a leaf) or `keys` (a section)")
            })?;
            return Ok(Node::Section(Section {
                doc,
                rust_name: obj
                    .get("rust_name")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                keys: self.children(path, keys)?,
            }));
        }
        for k in obj.keys() {
            if !LEAF_ATTRS.contains(&k.as_str()) {
                return Err(self.err(path, format!("unknown leaf attribute `{k}`")));
            }
        }
        let ty_name = obj.get("type").and_then(Value::as_str).unwrap_or_default();
        let ty = Type::parse(ty_name)
            .ok_or_else(|| self.err(path, format!("unknown type `{ty_name}`")))?;
        let flag = |k: &str| obj.get(k).and_then(Value::as_bool).unwrap_or(false);
        let strings = |k: &str| -> Result<Vec<String>, LoadError> {
            match obj.get(k) {
                None => Ok(Vec::new()),
                Some(Value::Array(a)) => {
                    a.iter()
                        .map(|x| match x {
                            Value::String(s) => Ok(s.clone()),
                            Value::Number(n) => Ok(n.to_string()),
                            other => Err(self
                                .err(path, format!("`{k}` items must be strings, found {other}"))),
                        })
                        .collect()
                }
                Some(_) => Err(self.err(path, format!("`{k}` must be a list"))),
            }
        };
        let items = match obj.get("items").and_then(Value::as_str) {
            None => None,
            Some(s) => Some(
                Type::parse(s).ok_or_else(|| self.err(path, format!("unknown item type `{s}`")))?,
            ),
        };
        let compat = match obj.get("compat") {
            None => None,
            Some(Value::String(why)) => Some(why.clone()),
            Some(other) => {
                return Err(self.err(
                    path,
                    format!("`compat` must be a string saying why the key is kept, found {other}"),
                ));
            }
        };
        let map = if ty == Type::Map {
            let name = obj
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| self.err(path, "a map needs `name` (what an entry name is called)"))?
                .to_owned();
            let entry = obj
                .get("entry")
                .ok_or_else(|| self.err(path, "a map needs `entry` (the node each entry is)"))?;
            let entry_path = format!("{path}.<{name}>");
            Some(MapSpec {
                name,
                entry: Box::new(self.node(&entry_path, entry)?),
            })
        } else {
            None
        };
        Ok(Node::Leaf(Leaf {
            ty,
            doc,
            default: obj.get("default").cloned(),
            nullable: flag("nullable"),
            sensitive: flag("sensitive"),
            min: obj.get("min").and_then(Value::as_f64),
            max: obj.get("max").and_then(Value::as_f64),
            values: strings("values")?,
            items,
            old_names: strings("old_names")?,
            example: obj.get("example").cloned(),
            map,
            compat,
        }))
    }
}

/// One segment of a key's path in the schema: a fixed name, or a user-chosen map entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Name(String),
    Entry(String),
}

/// A path through the schema, for walking.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchemaPath(pub Vec<Seg>);

impl SchemaPath {
    pub fn child(&self, seg: Seg) -> SchemaPath {
        let mut v = self.0.clone();
        v.push(seg);
        SchemaPath(v)
    }

    /// The dotted form, with `<name>` for map entries.
    pub fn dotted(&self) -> String {
        self.0
            .iter()
            .map(|s| match s {
                Seg::Name(n) => n.clone(),
                Seg::Entry(n) => format!("<{n}>"),
            })
            .collect::<Vec<_>>()
            .join(".")
    }

    pub fn has_entry(&self) -> bool {
        self.0.iter().any(|s| matches!(s, Seg::Entry(_)))
    }

    /// `VIBECTL_` + the path in upper snake case; none under a map.
    pub fn env_var(&self) -> Option<String> {
        if self.has_entry() {
            return None;
        }
        Some(format!(
            "VIBECTL_{}",
            self.dotted().replace('.', "_").to_uppercase()
        ))
    }

    /// CamelCase of the fixed names (entries contribute `Entry`).
    pub fn camel(&self) -> String {
        self.0
            .iter()
            .map(|s| match s {
                Seg::Name(n) => camel(n),
                Seg::Entry(_) => "Entry".to_owned(),
            })
            .collect()
    }

    /// UPPER_SNAKE of the whole path, entries by their name.
    pub fn const_name(&self) -> String {
        self.0
            .iter()
            .map(|s| match s {
                Seg::Name(n) | Seg::Entry(n) => n.to_uppercase(),
            })
            .collect::<Vec<_>>()
            .join("_")
    }
}

/// `some_name-x.1` -> `SomeNameX1`.
pub fn camel(s: &str) -> String {
    let mut out = String::new();
    for part in s.split(|c: char| !c.is_ascii_alphanumeric()) {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            out.push(first.to_ascii_uppercase());
            out.extend(chars.map(|c| c.to_ascii_lowercase()));
        }
    }
    out
}

/// What a walk visits.
pub enum Visit<'a> {
    Section {
        path: SchemaPath,
        doc: &'a str,
        /// `Some(name)` when this section is the entry of a map.
        map_entry: bool,
    },
    Leaf {
        path: SchemaPath,
        leaf: &'a Leaf,
    },
}

impl Schema {
    /// Every section and leaf in schema order, depth first; map entries are walked too.
    pub fn walk(&self) -> Vec<Visit<'_>> {
        let mut out = Vec::new();
        walk_children(&SchemaPath::default(), &self.keys, &mut out);
        out
    }

    /// Every leaf, in order.
    pub fn leaves(&self) -> Vec<(SchemaPath, &Leaf)> {
        self.walk()
            .into_iter()
            .filter_map(|v| match v {
                Visit::Leaf { path, leaf } => Some((path, leaf)),
                Visit::Section { .. } => None,
            })
            .collect()
    }
}

fn walk_children<'a>(
    path: &SchemaPath,
    keys: &'a IndexMap<String, Node>,
    out: &mut Vec<Visit<'a>>,
) {
    for (name, node) in keys {
        walk_node(path.child(Seg::Name(name.clone())), node, false, out);
    }
}

fn walk_node<'a>(path: SchemaPath, node: &'a Node, map_entry: bool, out: &mut Vec<Visit<'a>>) {
    match node {
        Node::Section(s) => {
            out.push(Visit::Section {
                path: path.clone(),
                doc: &s.doc,
                map_entry,
            });
            walk_children(&path, &s.keys, out);
        }
        Node::Leaf(leaf) => {
            out.push(Visit::Leaf {
                path: path.clone(),
                leaf,
            });
            if let Some(map) = &leaf.map {
                walk_node(
                    path.child(Seg::Entry(map.name.clone())),
                    &map.entry,
                    true,
                    out,
                );
            }
        }
    }
}
