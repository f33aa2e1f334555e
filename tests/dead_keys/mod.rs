//! No dead keys: every config key of both schemas is either marked `compat` (accepted, no
//! effect, and the docs say so) or named, in code, by an integration test that shows its effect.
//! A documented key that nothing reads cannot land unnoticed.

use std::collections::BTreeSet;
use std::path::Path;

use vibectl::config::generated::{client, server};
use vibectl::config::schema::{COMPAT_NOTE, KeySpec};

use crate::support::cli::{ConfigDir, root};
use crate::support::rust_source::{Token, rust_files, tokens};

/// Keys whose tests are written but not merged yet. Each entry must be a key that is not
/// `compat` and that no test names yet; once one is named, it comes off this list.
const PENDING: &[&str] = &[];

/// Files under `tests/` that name keys as data about the schema, not to show a key's effect,
/// each with the reason; `tests/dead_keys/` itself is skipped too.
const NOT_USES: &[(&str, &str)] = &[
    (
        "tests/no_key_literals",
        "checks that the key list covers both schemas",
    ),
    (
        "tests/support/rust_source.rs",
        "feeds key-like literals to the lexer",
    ),
    (
        "tests/config_cli",
        "drives config get/set/show over keys, not what a key does",
    ),
    (
        "tests/config_samples",
        "checks how sample files load, not what a key does",
    ),
    (
        "tests/config_props",
        "checks the config engine over every key, not what a key does",
    ),
];

/// A dotted path written in code: its segments, a quoted segment unquoted.
fn segments(candidate: &str) -> Option<Vec<String>> {
    let text = candidate.trim_matches(['.', '"']);
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' => quoted = !quoted,
            '.' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    let concrete = |s: &String| !s.is_empty() && !s.contains(['<', '>']);
    out.iter().all(concrete).then_some(out)
}

/// Whether a concrete path fits a key's template, `<name>` matching any entry name.
fn fits(template: &str, concrete: &[String]) -> bool {
    let t: Vec<&str> = template.split('.').collect();
    t.len() == concrete.len()
        && t.iter()
            .zip(concrete)
            .all(|(t, c)| t.starts_with('<') || *t == c)
}

/// The generated constant of a key: its path in upper snake case, a `<name>` by its name.
fn constant(template: &str) -> String {
    template
        .replace(['<', '>'], "")
        .replace('.', "_")
        .to_uppercase()
}

/// The environment variable of a key: `VIBECTL_` and its path in upper snake case; none under a
/// map.
fn env_var(template: &str) -> Option<String> {
    (!template.contains('<')).then(|| format!("VIBECTL_{}", constant(template)))
}

/// The keys of `templates` that `src` names in code: a dotted path inside a string literal (a
/// one-segment key only as the whole literal), its environment variable as a whole literal, its
/// generated constant as an identifier, or its whole path as a field chain of the generated
/// config struct (`cfg.tls.hsts.max_age`; keys under a map are not reached this way). Comments
/// do not count, and neither does a YAML-nested spelling, which has no dotted path.
fn named_in<'k>(src: &str, templates: &[&'k str]) -> BTreeSet<&'k str> {
    let mut out = BTreeSet::new();
    for token in tokens(src) {
        match token {
            Token::Str(_, lit) => {
                out.extend(
                    templates
                        .iter()
                        .filter(|t| env_var(t).is_some_and(|e| e == lit)),
                );
                let text = lit
                    .replace("\\\"", "\"")
                    .replace("\\n", " ")
                    .replace("\\t", " ")
                    .replace("\\r", " ");
                let path_char = |c: char| c.is_ascii_alphanumeric() || "_.-\"<>".contains(c);
                for candidate in text.split(|c: char| !path_char(c)) {
                    let Some(segs) = segments(candidate) else {
                        continue;
                    };
                    for t in templates {
                        let whole = !t.contains('.') && lit == *t;
                        if (t.contains('.') || whole) && fits(t, &segs) {
                            out.insert(*t);
                        }
                    }
                }
            }
            Token::Ident(_, id) => {
                out.extend(templates.iter().filter(|t| constant(t) == id));
            }
            Token::Dot(_) => {}
        }
    }
    for chain in field_chains(src) {
        for t in templates {
            let segs: Vec<&str> = t.split('.').collect();
            if segs.len() >= 2
                && !t.contains('<')
                && chain.windows(segs.len()).any(|w| w == segs.as_slice())
            {
                out.insert(*t);
            }
        }
    }
    out
}

/// Every chain of identifiers joined by dots, such as `cfg.tls.hsts.max_age`: a key reached
/// through the generated config struct is named by its path, so a renamed key fails to compile.
fn field_chains(src: &str) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = Vec::new();
    let mut cur: Vec<String> = Vec::new();
    let mut after_dot = false;
    for token in tokens(src) {
        match token {
            Token::Ident(_, id) if after_dot => {
                cur.push(id);
                after_dot = false;
            }
            Token::Ident(_, id) => {
                out.push(std::mem::replace(&mut cur, vec![id]));
            }
            Token::Dot(_) => after_dot = true,
            Token::Str(..) => {
                out.push(std::mem::take(&mut cur));
                after_dot = false;
            }
        }
    }
    out.push(cur);
    out.retain(|c| c.len() >= 2);
    out
}

/// The test files whose names count, as `(path relative to the root, text)`.
fn test_sources() -> Vec<(String, String)> {
    let root = root();
    rust_files(&root.join("tests"))
        .into_iter()
        .map(|f| f.strip_prefix(&root).unwrap().to_path_buf())
        .filter(|rel| {
            !rel.starts_with("tests/dead_keys")
                && !rel.starts_with("tests/sample-configs")
                && !NOT_USES.iter().any(|(p, _)| rel.starts_with(p))
        })
        .map(|rel| {
            let text = std::fs::read_to_string(root.join(&rel)).unwrap();
            (rel.display().to_string(), text)
        })
        .collect()
}

/// Every key of a table that a test names, a map counting as named when one of its entries'
/// keys is.
fn exercised(keys: &'static [KeySpec], sources: &[(String, String)]) -> BTreeSet<&'static str> {
    let templates: Vec<&'static str> = keys.iter().map(|k| k.path).collect();
    let mut named = BTreeSet::new();
    for (_, text) in sources {
        named.extend(named_in(text, &templates));
    }
    let maps: Vec<&'static str> = templates
        .iter()
        .copied()
        .filter(|t| named.iter().any(|n| n.starts_with(&format!("{t}."))))
        .collect();
    named.extend(maps);
    named
}

/// The first words of a doc, for the failure message.
fn first_words(doc: &str) -> String {
    let words: Vec<&str> = doc.split_whitespace().collect();
    if words.len() <= 10 {
        return words.join(" ");
    }
    format!("{} ...", words[..10].join(" "))
}

fn tables() -> [(&'static str, &'static [KeySpec]); 2] {
    [("client", client::KEYS), ("server", server::KEYS)]
}

#[test]
fn every_key_is_compat_or_named_by_a_test() {
    let sources = test_sources();
    let mut dead = Vec::new();
    for (program, keys) in tables() {
        let named = exercised(keys, &sources);
        for k in keys {
            if k.compat.is_none() && !named.contains(k.path) && !PENDING.contains(&k.path) {
                dead.push(format!(
                    "  {program} {}: \"{}\"",
                    k.path,
                    first_words(k.doc)
                ));
            }
        }
    }
    assert!(
        dead.is_empty(),
        "{} config key(s) have no integration test that shows their effect:\n{}\n\n\
         For each, either\n\
         - write an integration test under tests/ that shows the key's effect and names it in \
         code: its dotted path in a string literal (\"proxy.profiles.prod.timeout_seconds\"; a \
         YAML-nested spelling or a comment does not count), its generated constant \
         (key::PROXY_PROFILES_PROFILE_TIMEOUT_SECONDS; support::yaml::config builds a config file \
         from them), its environment variable as a whole literal (\"VIBECTL_LLM_MODEL\") or its \
         whole path as a field of the typed config (cfg.tls.hsts.max_age), or\n\
         - when the key is accepted only so that files carrying it load, mark it \
         `compat: <why it is kept>` in schema/{{client,server}}.yaml, make its doc promise \
         nothing, and run `cargo run -p codegen`.",
        dead.len(),
        dead.join("\n")
    );
}

#[test]
fn pending_keys_are_still_pending() {
    let sources = test_sources();
    let named = tables().map(|(_, keys)| exercised(keys, &sources));
    let mut stale = Vec::new();
    for p in PENDING {
        let (i, (program, keys)) = tables()
            .into_iter()
            .enumerate()
            .find(|(_, (_, keys))| keys.iter().any(|k| k.path == *p))
            .unwrap_or_else(|| panic!("PENDING lists {p}, which is not a key"));
        let spec = keys.iter().find(|k| k.path == *p).unwrap();
        if spec.compat.is_some() {
            stale.push(format!("  {program} {p} (compat)"));
        } else if named[i].contains(p) {
            stale.push(format!("  {program} {p} (named by a test)"));
        }
    }
    assert!(
        stale.is_empty(),
        "remove these keys from PENDING in tests/dead_keys/mod.rs:\n{}",
        stale.join("\n")
    );
}

#[test]
fn the_matcher_counts_code_not_comments_or_nested_yaml() {
    let templates = [
        "proxy.profiles.<profile>.timeout_seconds",
        "proxy.profiles",
        "display.theme",
        "llm.model",
        "memory.max_chars",
        "memory_content",
        "models.<id>.provider",
        "system.log_level",
    ];
    let only_comment = r#"
        // config set proxy.profiles.prod.timeout_seconds 5
        /* "display.theme" and key::LLM_MODEL */
        /// `memory.max_chars`
        let x = 1;
    "#;
    assert_eq!(named_in(only_comment, &templates), BTreeSet::new());
    let nested_yaml = r#"
        let text = "proxy:\n  profiles:\n    prod:\n      timeout_seconds: 5\n";
        let other = r"display:
  theme: dark
memory:
  max_chars: 10";
        let sentence = "the memory_content is kept";
    "#;
    assert_eq!(named_in(nested_yaml, &templates), BTreeSet::new());
    let proper = r#"
        d.run(&["config", "set", "proxy.profiles.prod.timeout_seconds", "5"]);
        let yaml = format!("{}: dark\n", key::DISPLAY_THEME);
        use vibectl::config::generated::client::key::LLM_MODEL as M;
        let set = "--set memory.max_chars=10,";
        let c = "memory_content";
        cmd.env("VIBECTL_SYSTEM_LOG_LEVEL", "DEBUG");
        let quoted = "models.\"gpt-4.1\".provider";
    "#;
    assert_eq!(
        named_in(proper, &templates),
        BTreeSet::from([
            "proxy.profiles.<profile>.timeout_seconds",
            "display.theme",
            "llm.model",
            "memory.max_chars",
            "memory_content",
            "models.<id>.provider",
            "system.log_level",
        ])
    );
    // A longer or shorter path is another key, and a template is not a concrete path.
    let fields = r#"
        cfg.memory.max_chars = 10;
        let b = ProxyConfig { timeout_seconds: 5 };
        c.max_chars = 1; llm(model);
        // cfg.memory.max_chars = 10;
    "#;
    assert_eq!(
        named_in(fields, &templates),
        BTreeSet::from(["memory.max_chars"])
    );
    let near = r#"let a = "display.theme.x"; let b = "proxy.profiles.<profile>.timeout_seconds";
        let c = "VIBECTL_SYSTEM_LOG_LEVEL=x";"#;
    assert_eq!(named_in(near, &templates), BTreeSet::new());
}

#[test]
fn a_map_counts_as_named_through_its_entries() {
    let sources = vec![(
        "t.rs".to_owned(),
        r#"let k = "proxy.profiles.prod.jwt_path";"#.to_owned(),
    )];
    let named = exercised(client::KEYS, &sources);
    assert!(named.contains(client::key::PROXY_PROFILES));
    assert!(named.contains(client::key::PROXY_PROFILES_PROFILE_JWT_PATH));
    assert!(!named.contains(client::key::PROXY_ACTIVE));
}

#[test]
fn every_key_constant_is_derived_as_the_matcher_expects() {
    for (program, keys) in tables() {
        let generated =
            std::fs::read_to_string(root().join(format!("src/config/generated/{program}.rs")))
                .unwrap();
        for k in keys {
            let line = format!("pub const {}: &str = {:?};", constant(k.path), k.path);
            assert!(generated.contains(&line), "{program}: no `{line}`");
            if let Some(env) = k.env {
                assert_eq!(
                    env_var(k.path).as_deref(),
                    Some(env),
                    "{program} {}",
                    k.path
                );
            }
        }
    }
}

#[test]
fn every_artifact_says_a_compat_key_has_no_effect() {
    for (program, keys) in tables() {
        let docs =
            std::fs::read_to_string(root().join(format!("docs/config-{program}.md"))).unwrap();
        let compat: Vec<&KeySpec> = keys.iter().filter(|k| k.compat.is_some()).collect();
        assert!(!compat.is_empty(), "{program} has no compat key to check");
        for k in compat {
            let why = k.compat.unwrap();
            assert!(
                docs.contains(&format!("**{COMPAT_NOTE}** {why}")),
                "docs/config-{program}.md does not say {} has no effect",
                k.path
            );
            assert_eq!(
                k.compat_text().unwrap(),
                format!("Accepted for compatibility; has no effect. {why}")
            );
        }
    }
}

/// The `effect` row of `config info KEY`, if any.
fn effect_row(info: &str) -> Option<&str> {
    info.lines()
        .find_map(|l| l.strip_prefix("effect"))
        .map(str::trim)
}

#[test]
fn config_info_says_whether_a_key_has_effect() {
    let d = ConfigDir::new();
    let info = d.run(&["config", "info", client::key::PROXY_ENABLED]);
    assert_eq!(
        effect_row(info.ok()),
        Some(
            "Accepted for compatibility; has no effect. Files carried over from vibectl 0.10 and \
             0.11.0 hold it, and vibectl 0.11.6 ignores it too."
        )
    );
    let info = d.run_server(&["config", "info", server::key::JWT_EXPIRATION_HOURS]);
    assert_eq!(
        effect_row(info.ok()),
        Some(
            "Accepted for compatibility; has no effect. Files written by vibectl-server 0.11.6 \
             init-config hold it."
        )
    );
    let info = d.run(&["config", "info", client::key::DISPLAY_THEME]);
    assert_eq!(effect_row(info.ok()), None);
}

#[test]
fn skipped_files_exist_and_are_explained() {
    for (p, why) in NOT_USES {
        assert!(Path::new(&root().join(p)).exists(), "{p} no longer exists");
        assert!(!why.is_empty());
    }
}
