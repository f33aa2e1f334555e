//! The sample config files: every valid one (and every file vibectl 0.11.6 wrote) loads,
//! validates and shows; every `invalid/<rule>.yaml` fails naming the key of its `# expect:` line.

use std::path::{Path, PathBuf};

use serde_json::Value;
use vibectl::config::{CLIENT, ClientConfig, Engine, KeyPath, SERVER, ServerConfig, document};

use crate::support::cli::{Bin, Run, clean, sample};

fn yaml_files(dir: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(sample(dir))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no samples in {dir}");
    out
}

/// Load, validate and merge a file; the effective config parses into the typed struct.
fn effective(engine: &Engine, file: &Path) -> Value {
    let loaded = engine
        .load(file)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    engine
        .validate(&loaded)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    engine
        .effective(&loaded, &|_| None, &[])
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

fn get<'a>(v: &'a Value, key: &str) -> &'a Value {
    document::get(v, &KeyPath::parse(key).unwrap()).unwrap_or_else(|| panic!("{key} is missing"))
}

/// `config validate FILE` and `config show` (the file as the config file) for either binary.
fn cli_shows(bin: Bin, file: &Path) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let mut validate = clean(bin, tmp.path());
    validate.args(["config", "validate"]).arg(file);
    let run = Run::of(&mut validate, tmp.path());
    assert!(run.ok().ends_with("is valid\n"), "{}", run.transcript());
    let mut show = clean(bin, tmp.path());
    match bin {
        Bin::Client => {
            let dir = tmp.path().join("client");
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::copy(file, dir.join("config.yaml")).unwrap();
            show.env("VIBECTL_CLIENT_CONFIG_DIR", &dir);
        }
        Bin::Server => {
            show.arg("--config").arg(file);
        }
    }
    show.args(["config", "show"]);
    let run = Run::of(&mut show, tmp.path());
    run.ok().to_owned()
}

#[test]
fn valid_client_samples_load_and_show() {
    for f in yaml_files("valid") {
        let v = effective(&CLIENT, &f);
        let _: ClientConfig = CLIENT.typed(&v).unwrap();
        let shown = cli_shows(Bin::Client, &f);
        assert!(
            shown.contains("llm:\n  model: "),
            "{}: {shown}",
            f.display()
        );
    }
}

#[test]
fn the_client_file_of_0_11_6_loads_and_shows() {
    let f = sample("client-0.11.6/config.yaml");
    let v = effective(&CLIENT, &f);
    let typed: ClientConfig = CLIENT.typed(&v).unwrap();
    assert_eq!(typed.llm.model, "gpt-4o");
    assert_eq!(get(&v, "display.theme"), "dark");
    assert_eq!(get(&v, "display.show_metrics"), "all");
    assert_eq!(get(&v, "proxy.active"), "prod");
    assert_eq!(get(&v, "system.custom_instructions"), "Answer briefly.");
    assert_eq!(get(&v, "memory_content"), "Working in namespace demo.");
    assert_eq!(get(&v, "proxy.profiles.prod.security.audit_logging"), true);
    assert_eq!(
        get(&v, "proxy.profiles.dev.server_url"),
        "vibectl-server-insecure://127.0.0.1:50051"
    );
    let shown = cli_shows(Bin::Client, &f);
    // The token inside the shared profile's URL never prints.
    assert!(
        shown.contains("vibectl-server://***@llm.example.com:8443"),
        "{shown}"
    );
    assert!(!shown.contains("eyJhbGci"), "{shown}");
}

#[test]
fn old_names_are_read_as_their_new_keys() {
    let f = sample("valid/old-names.yaml");
    let loaded = CLIENT.load(&f).unwrap();
    assert!(
        loaded
            .renamed
            .contains(&("theme".into(), "display.theme".into()))
    );
    let v = effective(&CLIENT, &f);
    assert_eq!(get(&v, "display.theme"), "dark");
    assert_eq!(get(&v, "llm.model"), "gpt-4o");
    assert_eq!(get(&v, "memory.max_chars"), 800);
    assert_eq!(get(&v, "providers.openai.key"), "sk-test-not-a-real-key");
    assert_eq!(get(&v, "system.custom_instructions"), "Keep answers short.");
}

#[test]
fn the_server_files_of_0_11_6_load_and_show() {
    let mut files = yaml_files("server-0.11.6");
    files.extend(yaml_files("server-valid"));
    for f in &files {
        let v = effective(&SERVER, f);
        let _: ServerConfig = SERVER.typed(&v).unwrap();
        cli_shows(Bin::Server, f);
    }
    let configured = sample("server-0.11.6/configured.yaml");
    let v = effective(&SERVER, &configured);
    assert_eq!(get(&v, "server.host"), "127.0.0.1");
    assert_eq!(get(&v, "server.default_model"), "claude-3.7-sonnet");
    assert_eq!(get(&v, "jwt.enabled"), true);
    assert_eq!(
        get(&v, "server.limits.per_token.alice.max_requests_per_minute"),
        10
    );
    assert_eq!(get(&v, "model_aliases.fast"), "gpt-4o-mini");
    let shown = cli_shows(Bin::Server, &configured);
    assert!(shown.contains("secret_key: '**REDACTED**'") || shown.contains("**REDACTED**"));
    assert!(!shown.contains("FsJgck0MNbA9"), "{shown}");
}

/// `(rule, key or "line N")` from an invalid sample's first line.
fn expectation(file: &Path) -> (String, String) {
    let text = std::fs::read_to_string(file).unwrap();
    let first = text.lines().next().unwrap_or_default();
    let rest = first
        .strip_prefix("# expect: ")
        .unwrap_or_else(|| panic!("{} has no `# expect:` line", file.display()));
    let (rule, at) = rest
        .split_once(" at ")
        .unwrap_or_else(|| panic!("{}: `# expect: RULE at KEY`", file.display()));
    let at = at.split(" (").next().unwrap().trim().to_owned();
    (rule.to_owned(), at)
}

#[test]
fn invalid_samples_fail_naming_their_key() {
    let files = yaml_files("invalid");
    let rules: Vec<String> = files
        .iter()
        .map(|f| f.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    for rule in [
        "wrong-type",
        "out-of-range",
        "unknown-key",
        "bad-enum",
        "section-is-scalar",
        "malformed-yaml",
    ] {
        assert!(rules.iter().any(|r| r == rule), "no invalid/{rule}.yaml");
    }
    for f in &files {
        let (rule, at) = expectation(f);
        assert_eq!(
            f.file_stem().unwrap().to_string_lossy(),
            rule,
            "{} is named after its rule",
            f.display()
        );
        let err = match CLIENT.load(f) {
            Err(e) => e,
            Ok(loaded) => CLIENT
                .validate(&loaded)
                .expect_err(&format!("{} should be invalid", f.display())),
        };
        let text = err.to_string();
        if let Some(line) = at.strip_prefix("line ") {
            assert!(text.contains(&format!("line {line}")), "{rule}: {text}");
        } else {
            let problems = match &err {
                vibectl::config::ConfigError::Invalid { problems, .. } => problems,
                other => panic!("{rule}: expected validation problems, got {other}"),
            };
            assert_eq!(problems.len(), 1, "{rule} breaks exactly one rule: {text}");
            assert_eq!(problems[0].key, at, "{rule}: {text}");
            assert!(problems[0].line.is_some(), "{rule} names the line: {text}");
        }
        // The command line says the same, with exit code 1.
        let tmp = tempfile::tempdir().unwrap();
        let mut c = clean(Bin::Client, tmp.path());
        c.args(["config", "validate"]).arg(f);
        let run = Run::of(&mut c, tmp.path());
        assert_eq!(run.code, 1, "{}", run.transcript());
        assert!(run.stderr.contains(&at), "{rule}: {}", run.stderr);
        assert!(run.stderr.contains("hint: "), "{rule}: {}", run.stderr);
    }
}

#[test]
fn invalid_messages_say_what_was_expected() {
    let expect = [
        (
            "wrong-type",
            "expected int (0..=10), found the string \"two\"",
        ),
        ("out-of-range", "0 is out of range (1..=300)"),
        ("unknown-key", "unknown key (did you mean llm.model?)"),
        (
            "bad-enum",
            "is not one of the allowed values: default, dark, light, accessible",
        ),
        ("section-is-scalar", "expected a section"),
    ];
    for (rule, message) in expect {
        let f = sample(&format!("invalid/{rule}.yaml"));
        let err = CLIENT.validate(&CLIENT.load(&f).unwrap()).unwrap_err();
        assert!(err.to_string().contains(message), "{rule}: {err}");
    }
}
