//! Emits the JSON Schema (draft 2020-12) of a config file, for editors and for validation.

use indexmap::IndexMap;
use serde_json::{Map, Value, json};

use crate::model::{Leaf, Node, Schema, Type};

pub fn document(schema: &Schema) -> String {
    let mut root = section(&schema.doc, &schema.keys);
    let obj = root.as_object_mut().expect("a section is an object");
    let mut head = Map::new();
    head.insert(
        "$schema".into(),
        json!("https://json-schema.org/draft/2020-12/schema"),
    );
    head.insert("title".into(), json!(schema.title));
    head.append(obj);
    let mut text = serde_json::to_string_pretty(&Value::Object(head)).expect("JSON serializes");
    text.push('\n');
    text
}

fn section(doc: &str, keys: &IndexMap<String, Node>) -> Value {
    let mut props = Map::new();
    for (name, node) in keys {
        props.insert(name.clone(), node_schema(node));
    }
    json!({
        "description": doc.trim(),
        "type": ["object", "null"],
        "properties": props,
        "additionalProperties": false,
    })
}

fn node_schema(node: &Node) -> Value {
    match node {
        Node::Section(s) => section(&s.doc, &s.keys),
        Node::Leaf(l) => leaf_schema(l),
    }
}

fn type_schema(ty: Type, leaf: &Leaf) -> Map<String, Value> {
    let mut m = Map::new();
    let name = match ty {
        Type::String | Type::Path | Type::Url | Type::Enum => "string",
        Type::Bool => "boolean",
        Type::Int => "integer",
        Type::Float => "number",
        Type::List => "array",
        Type::Map => "object",
    };
    m.insert("type".into(), json!(name));
    match ty {
        Type::Enum => {
            m.insert("enum".into(), json!(leaf.values));
        }
        Type::Url => {
            m.insert("format".into(), json!("uri"));
        }
        Type::Int | Type::Float => {
            if let Some(min) = leaf.min {
                m.insert("minimum".into(), number(ty, min));
            }
            if let Some(max) = leaf.max {
                m.insert("maximum".into(), number(ty, max));
            }
        }
        Type::List => {
            let item = leaf.items.unwrap_or(Type::String);
            m.insert("items".into(), Value::Object(type_schema(item, leaf)));
        }
        Type::Map => {
            let entry = leaf
                .map
                .as_ref()
                .map(|m| node_schema(&m.entry))
                .unwrap_or(json!({}));
            m.insert("additionalProperties".into(), entry);
        }
        _ => {}
    }
    m
}

fn number(ty: Type, x: f64) -> Value {
    if ty == Type::Int {
        json!(x as i64)
    } else {
        json!(x)
    }
}

fn leaf_schema(leaf: &Leaf) -> Value {
    let mut m = Map::new();
    let description = match leaf.compat_text() {
        Some(note) => format!("{} {note}", leaf.doc.trim()),
        None => leaf.doc.trim().to_owned(),
    };
    m.insert("description".into(), json!(description));
    let mut t = type_schema(leaf.ty, leaf);
    if leaf.nullable || leaf.ty == Type::Map {
        // Null means "not set" (a map written as `key:` with nothing under it is empty).
        if let Some(Value::String(name)) = t.get("type").cloned() {
            t.insert("type".into(), json!([name, "null"]));
        }
        if let Some(Value::Array(mut vals)) = t.get("enum").cloned() {
            vals.push(Value::Null);
            t.insert("enum".into(), Value::Array(vals));
        }
    }
    m.append(&mut t);
    if let Some(d) = &leaf.default {
        m.insert("default".into(), d.clone());
    }
    if leaf.sensitive {
        m.insert("writeOnly".into(), json!(true));
    }
    if !leaf.old_names.is_empty() {
        m.insert("x-old-names".into(), json!(leaf.old_names));
    }
    if let Some(e) = &leaf.example {
        m.insert("examples".into(), json!([e]));
    }
    Value::Object(m)
}
