//! Builds a small JSON document that satisfies a (simple) JSON Schema, for structured-output
//! answers when no explicit reply is configured.

use serde_json::{Map, Value, json};

/// Nesting beyond this yields `null` (guards against recursive schemas).
const MAX_DEPTH: u32 = 24;

/// The answer used when the request asks for JSON but gives no usable schema: a planner
/// response in the shape vibectl's planner prompt asks for.
pub fn planner_default() -> Value {
    json!({
        "action": {
            "action_type": "COMMAND",
            "commands": ["get", "pods"],
            "explanation": "mock plan",
        }
    })
}

/// A document valid for `schema`: `const`/`enum`/`default` values first, the first branch of
/// `oneOf`/`anyOf`/`allOf` (skipping `null`), every property of an object, one item for an
/// array (or `minItems`), `"mock"` for strings, the minimum (or 1) for numbers, `true` for
/// booleans. `$ref` into `#/$defs` or `#/definitions` is followed.
pub fn instance(schema: &Value) -> Value {
    if !schema.is_object() {
        return planner_default();
    }
    build(schema, schema, 0)
}

fn build(schema: &Value, root: &Value, depth: u32) -> Value {
    if depth > MAX_DEPTH {
        return Value::Null;
    }
    let Some(obj) = schema.as_object() else {
        return Value::Null;
    };
    if let Some(r) = obj.get("$ref").and_then(Value::as_str) {
        let target = r.strip_prefix('#').and_then(|p| root.pointer(p));
        return target.map_or(Value::Null, |t| build(t, root, depth + 1));
    }
    if let Some(c) = obj.get("const") {
        return c.clone();
    }
    if let Some(first) = obj
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    if let Some(d) = obj.get("default") {
        return d.clone();
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(branches) = obj.get(key).and_then(Value::as_array) {
            let pick = branches
                .iter()
                .find(|b| b.get("type").and_then(Value::as_str) != Some("null"))
                .or(branches.first());
            if let Some(b) = pick {
                return build(b, root, depth + 1);
            }
        }
    }
    let ty = match obj.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null"),
        _ if obj.contains_key("properties") => "object",
        _ if obj.contains_key("items") => "array",
        _ => "string",
    };
    match ty {
        "object" => {
            let mut out = Map::new();
            if let Some(props) = obj.get("properties").and_then(Value::as_object) {
                for (name, sub) in props {
                    out.insert(name.clone(), build(sub, root, depth + 1));
                }
            }
            Value::Object(out)
        }
        "array" => {
            let n = obj
                .get("minItems")
                .and_then(Value::as_u64)
                .unwrap_or(1)
                .max(1);
            let item = obj
                .get("items")
                .map_or_else(|| json!("mock"), |i| build(i, root, depth + 1));
            Value::Array((0..n).map(|_| item.clone()).collect())
        }
        "integer" => json!(obj.get("minimum").and_then(Value::as_i64).unwrap_or(1)),
        "number" => json!(obj.get("minimum").and_then(Value::as_f64).unwrap_or(1.0)),
        "boolean" => Value::Bool(true),
        "null" => Value::Null,
        _ => {
            let min = obj.get("minLength").and_then(Value::as_u64).unwrap_or(0);
            let mut s = String::from("mock");
            while (s.len() as u64) < min {
                s.push('k');
            }
            Value::String(s)
        }
    }
}
