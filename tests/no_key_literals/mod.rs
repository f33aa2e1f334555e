//! No config key is spelled as a string literal in `src/` outside generated code: code names a
//! key through `config::generated::{client,server}::key` so a renamed key fails to compile
//! instead of silently reading a default.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use vibectl::config::generated::{client, server};

use crate::harness::root;

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

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if e.file_type().unwrap().is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The string literals of Rust source with their line numbers; comments and char literals are
/// skipped, escapes in normal strings are kept as written (a key has none).
fn string_literals(src: &str) -> Vec<(usize, String)> {
    let b = src.as_bytes();
    let line = |i: usize| src[..i].matches('\n').count() + 1;
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let mut depth = 0;
                while i < b.len() {
                    if b[i..].starts_with(b"/*") {
                        depth += 1;
                        i += 2;
                    } else if b[i..].starts_with(b"*/") {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
            }
            b'r' if matches!(b.get(i + 1), Some(b'"' | b'#'))
                && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')) =>
            {
                let start = i;
                i += 1;
                let mut hashes = 0;
                while b.get(i) == Some(&b'#') {
                    hashes += 1;
                    i += 1;
                }
                if b.get(i) != Some(&b'"') {
                    continue; // a raw identifier such as r#type
                }
                i += 1;
                let close = format!("\"{}", "#".repeat(hashes));
                let body_start = i;
                let end = src[i..].find(&close).map(|k| i + k).unwrap_or(b.len());
                out.push((line(start), src[body_start..end].to_owned()));
                i = end + close.len();
            }
            b'"' => {
                let start = i;
                i += 1;
                let body_start = i;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                out.push((line(start), src[body_start..i.min(b.len())].to_owned()));
                i += 1;
            }
            b'\'' => {
                // A char literal ('"', '\'', '\u{1F600}') or a lifetime ('a).
                if b.get(i + 1) == Some(&b'\\') {
                    i += 2;
                    while i < b.len() && b[i] != b'\'' {
                        i += 1;
                    }
                    i += 1;
                } else if b.get(i + 2) == Some(&b'\'') {
                    i += 3;
                } else {
                    let ch_len = src[i + 1..].chars().next().map_or(1, char::len_utf8);
                    if b.get(i + 1 + ch_len) == Some(&b'\'') {
                        i += 2 + ch_len;
                    } else {
                        i += 1;
                    }
                }
            }
            _ => i += 1,
        }
    }
    out
}

/// `(file, line, literal)` for every literal in `src/` that is a key path.
fn offenders() -> Vec<(PathBuf, usize, String)> {
    let keys = dotted_paths();
    let root = root();
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let rel = f.strip_prefix(&root).unwrap().to_path_buf();
        if GENERATED.iter().any(|g| rel.starts_with(g)) {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        for (line, lit) in string_literals(&text) {
            if keys.contains(&lit) && !ALLOWED.iter().any(|(a, _)| *a == lit) {
                out.push((rel.clone(), line, lit));
            }
        }
    }
    out
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
fn the_scanner_finds_literals_and_skips_comments() {
    let src = r###"
        // "llm.model" in a comment
        /* "llm.model" /* nested */ "still a comment" */
        /// doc: "display.theme"
        let a = "llm.model";
        let b = r#"display.theme"#;
        let c = '"'; let d = "x"; let e = '\''; let f: &'static str = "a\"b";
        let r#type = 1;
        "###;
    let lits: Vec<String> = string_literals(src).into_iter().map(|(_, s)| s).collect();
    assert_eq!(lits, ["llm.model", "display.theme", "x", "a\\\"b"]);
    let lines: Vec<usize> = string_literals(src).into_iter().map(|(l, _)| l).collect();
    assert_eq!(lines[..2], [5, 6]);
}

#[test]
fn allowed_literals_are_explained() {
    for (lit, why) in ALLOWED {
        assert!(dotted_paths().contains(*lit), "{lit} is no longer a key");
        assert!(!why.is_empty());
    }
}
