//! No config key is spelled as a string literal in `src/` outside generated code: code names a
//! key through `config::generated::{client,server}::key` so a renamed key fails to compile
//! instead of silently reading a default.

use std::collections::BTreeSet;
use std::path::PathBuf;

use vibectl::config::generated::{client, server};

use crate::support::cli::root;
use crate::support::rust_source::{rust_files, string_literals};

/// Directories under `src/` whose files are generated from the schema and the protocol.
const GENERATED: &[&str] = &["src/config/generated", "src/proto/generated"];

/// Literals that equal a key path but are not used as one, each with the reason.
const ALLOWED: &[(&str, &str)] = &[];

/// Every dotted key path, old name and section path of both schemas.
fn dotted_paths() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for keys in [client::KEYS, server::KEYS] {
        for k in keys {
            out.insert(k.path.to_owned());
            out.extend(k.old_names.iter().map(|o| (*o).to_owned()));
        }
    }
    for sections in [client::SECTIONS, server::SECTIONS] {
        out.extend(sections.iter().map(|s| s.path.to_owned()));
    }
    out.retain(|p| p.contains('.'));
    out
}

/// `(file, line, literal)` for every literal in `src/` that is a key path.
fn offenders() -> Vec<(PathBuf, usize, String)> {
    let keys = dotted_paths();
    let root = root();
    let mut out = Vec::new();
    for f in rust_files(&root.join("src")) {
        let rel = f.strip_prefix(&root).unwrap().to_path_buf();
        if GENERATED.iter().any(|g| rel.starts_with(g)) {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        for (line, lit) in string_literals(&text) {
            // The literal itself, or a key written inside a message or format string.
            for word in key_like_words(&lit) {
                if keys.contains(word) && !ALLOWED.iter().any(|(a, _)| *a == word) {
                    out.push((rel.clone(), line, word.to_owned()));
                }
            }
        }
    }
    out
}

/// The dotted words of a literal: runs of `[A-Za-z0-9_.<>"-]` split on anything else, with
/// dots at their ends trimmed (`set llm.model.` at the end of a sentence).
fn key_like_words(lit: &str) -> impl Iterator<Item = &str> {
    lit.split(|c: char| !(c.is_ascii_alphanumeric() || "_.<>-".contains(c)))
        .map(|w| w.trim_matches('.'))
        .filter(|w| w.contains('.'))
}

#[test]
fn keys_inside_messages_and_format_strings_are_found() {
    let words: Vec<&str> =
        key_like_words("fix tls.cert_file and {}, or set llm.model. (see 1.5)").collect();
    assert_eq!(words, ["tls.cert_file", "llm.model", "1.5"]);
}

#[test]
fn no_key_is_spelled_as_a_literal() {
    let found = offenders();
    assert!(
        found.is_empty(),
        "config keys spelled as string literals (use config::generated::{{client,server}}::key::*):\n{}",
        found
            .iter()
            .map(|(f, l, k)| format!("  {}:{l}: \"{k}\"", f.display()))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn the_key_list_covers_both_schemas() {
    let keys = dotted_paths();
    for k in [
        client::key::LLM_MODEL,
        client::key::PROXY_PROFILES_PROFILE_SERVER_URL,
        server::key::SERVER_PORT,
        client::section::PROVIDERS_ANTHROPIC,
    ] {
        assert!(keys.contains(k), "{k}");
    }
    assert!(!keys.iter().any(|k| !k.contains('.')));
}

#[test]
fn allowed_literals_are_explained() {
    for (lit, why) in ALLOWED {
        assert!(dotted_paths().contains(*lit), "{lit} is no longer a key");
        assert!(!why.is_empty());
    }
}
