//! Config file text built from dotted keys, so a test that writes a config names each key it sets
//! (through `config::generated::*::key` or a concrete dotted path) instead of a nested spelling.

/// YAML text setting each `(dotted key, value as YAML)` pair, in order; keys that share a prefix
/// share its sections.
pub fn config<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> String {
    let mut out = String::new();
    let mut open: Vec<&str> = Vec::new();
    let mut seen: Vec<Vec<&str>> = Vec::new();
    for (key, value) in pairs {
        let (key, value) = (key.as_ref(), value.as_ref());
        let segs: Vec<&str> = key.split('.').collect();
        let (leaf, parents) = segs.split_last().expect("a key has a segment");
        assert!(
            !seen.iter().any(|s| s.as_slice() == parents) || open.as_slice() == parents,
            "{key}: keys of one section must be consecutive"
        );
        let common = open.iter().zip(parents).take_while(|(a, b)| a == b).count();
        open.truncate(common);
        for (depth, seg) in parents.iter().enumerate().skip(common) {
            out.push_str(&format!("{}{seg}:\n", "  ".repeat(depth)));
            open.push(seg);
        }
        seen.push(parents.to_vec());
        out.push_str(&format!("{}{leaf}: {value}\n", "  ".repeat(parents.len())));
    }
    out
}

/// The concrete path of a key under a map: `template` (a generated `key::` constant such as
/// `providers.<provider>.kind`) with its `<name>` segment replaced by `name`.
pub fn entry(template: &str, name: &str) -> String {
    let segs: Vec<&str> = template.split('.').collect();
    let holes = segs.iter().filter(|s| s.starts_with('<')).count();
    assert_eq!(holes, 1, "{template}: one map segment expected");
    assert!(
        !name.contains(['.', ':', ' ']),
        "{name}: not a plain entry name"
    );
    segs.iter()
        .map(|s| if s.starts_with('<') { name } else { s })
        .collect::<Vec<_>>()
        .join(".")
}

#[test]
fn entry_fills_the_map_segment() {
    assert_eq!(
        entry("models.<id>.aliases", "mock-model"),
        "models.mock-model.aliases"
    );
}

#[test]
fn config_nests_dotted_keys() {
    assert_eq!(
        config(&[
            ("display.show_kubectl", "true"),
            ("display.show_raw_output", "true"),
            ("memory.enabled", "false"),
            ("proxy.profiles.prod.timeout_seconds", "5"),
            ("memory_content", "x"),
        ]),
        "display:\n  show_kubectl: true\n  show_raw_output: true\nmemory:\n  enabled: false\n\
         proxy:\n  profiles:\n    prod:\n      timeout_seconds: 5\nmemory_content: x\n"
    );
}
