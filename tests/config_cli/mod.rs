//! `vibectl config` and `vibectl-server config` as a user runs them: bad input is refused with
//! exit 1, an `error:` naming the key and a `hint:`, and leaves the config file byte-identical;
//! good input prints what it did; a commented file keeps its comments through `set` and `unset`.

mod roundtrip;

use crate::support::cli::{Bin, ConfigDir, sample};

/// A hand-edited file the failing commands must leave exactly as it is.
fn commented() -> ConfigDir {
    ConfigDir::with_sample("valid/commented.yaml")
}

/// stderr of a failing run, for snapshots.
fn errors(d: &ConfigDir, args: &[&str]) -> String {
    d.fails(args).stderr
}

#[test]
fn malformed_yaml_names_the_line() {
    let d = ConfigDir::with_sample("invalid/malformed-yaml.yaml");
    for args in [
        &["config", "show"][..],
        &["config", "show", "llm"],
        &["config", "get", "llm.model"],
        &["config", "set", "llm.model", "gpt-4o"],
        &["config", "unset", "display.show_vibe"],
        &["config", "info", "llm.model"],
        &["config", "validate"],
    ] {
        let run = d.fails(args);
        assert!(
            run.stderr.contains("line 4"),
            "{args:?} names line 4\n{}",
            run.transcript()
        );
        assert!(run.stderr.contains("hint: fix the YAML at line 4"));
    }
    insta::assert_snapshot!(errors(&d, &["config", "show", "llm"]));
}

#[test]
fn wrong_type_is_refused() {
    let d = commented();
    insta::assert_snapshot!(errors(&d, &["config", "set", "display.show_vibe", "maybe"]));
    for (key, value) in [
        ("llm.max_retries", "two"),
        ("llm.max_retries", "1.5"),
        ("llm.retry_delay_seconds", "soon"),
        ("llm.retry_delay_seconds", "NaN"),
        ("providers.openai.base_url", "not a url"),
        ("memory.enabled", ""),
        ("live_display.max_lines", "[1, 2]"),
    ] {
        let err = d.fails(&["config", "set", key, value]).stderr;
        assert!(err.contains(&format!("invalid value for {key}")), "{err}");
    }
}

#[test]
fn number_out_of_range_is_refused() {
    let d = commented();
    insta::assert_snapshot!(errors(&d, &["config", "set", "llm.max_retries", "11"]));
    for (key, value, range) in [
        ("llm.max_retries", "-1", "0..=10"),
        ("proxy.timeout_seconds", "0", "1..=300"),
        ("llm.retry_delay_seconds", "60.5", "0..=60"),
        ("memory.max_chars", "100001", "1..=100000"),
    ] {
        let err = d.fails(&["config", "set", key, value]).stderr;
        assert!(err.contains(key) && err.contains(range), "{err}");
    }
}

#[test]
fn unknown_key_or_section_suggests_the_closest() {
    let d = commented();
    insta::assert_snapshot!(
        "unknown_key",
        errors(&d, &["config", "set", "llm.modle", "gpt-4o"])
    );
    insta::assert_snapshot!(
        "unknown_section",
        errors(&d, &["config", "show", "dispaly"])
    );
    for (args, suggestion) in [
        (&["config", "set", "lm.model", "x"][..], "llm.model"),
        (&["config", "get", "display.theem"], "display.theme"),
        (&["config", "unset", "memory.max_char"], "memory.max_chars"),
        (
            &["config", "info", "proxy.timeout_second"],
            "proxy.timeout_seconds",
        ),
    ] {
        let err = d.fails(args).stderr;
        assert!(
            err.contains(&format!("hint: did you mean {suggestion}")),
            "{err}"
        );
    }
    let err = d.fails(&["config", "set", "zzz", "1"]).stderr;
    assert!(
        err.contains("unknown key zzz") && err.contains("hint:"),
        "{err}"
    );
}

#[test]
fn value_outside_an_enum_lists_the_allowed_values() {
    let d = commented();
    insta::assert_snapshot!(errors(&d, &["config", "set", "display.theme", "neon"]));
    let err = d
        .fails(&["config", "set", "system.log_level", "LOUD"])
        .stderr;
    assert!(
        err.contains("allowed values: DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        "{err}"
    );
}

#[test]
fn a_section_is_not_a_value() {
    let d = commented();
    insta::assert_snapshot!(errors(&d, &["config", "set", "display", "dark"]));
    let err = d.fails(&["config", "set", "proxy.profiles", "x"]).stderr;
    assert!(err.contains("proxy.profiles is a map"), "{err}");
    // A file that sets a section to a scalar is refused by every reading command.
    let d = ConfigDir::with_sample("invalid/section-is-scalar.yaml");
    let err = d.fails(&["config", "show"]).stderr;
    assert!(
        err.contains("display: expected a section") && err.contains("line 2"),
        "{err}"
    );
    // Setting a key under it cannot work either, and says how to fix the file.
    let err = d.fails(&["config", "set", "display.theme", "dark"]).stderr;
    assert!(
        err.contains("display.theme") && err.contains("hint:"),
        "{err}"
    );
}

#[test]
fn unset_of_a_key_that_is_not_set() {
    let d = commented();
    insta::assert_snapshot!(errors(&d, &["config", "unset", "display.show_vibe"]));
    // With no file at all, nothing is created.
    let d = ConfigDir::new();
    d.fails(&["config", "unset", "llm.model"]);
    assert_eq!(d.bytes(), None);
}

/// Whether this process can read a file it has no permission for (root can).
fn privileged(probe: &std::path::Path) -> bool {
    std::fs::File::open(probe).is_ok()
}

#[test]
fn unreadable_config_file() {
    use std::os::unix::fs::PermissionsExt;
    let d = commented();
    std::fs::set_permissions(d.file(), std::fs::Permissions::from_mode(0o000)).unwrap();
    if !privileged(&d.file()) {
        let err = d.fails(&["config", "show"]).stderr;
        assert!(
            err.contains("cannot read") && err.contains("chmod u+r"),
            "{err}"
        );
        d.fails(&["config", "set", "llm.model", "x"]);
    }
    std::fs::set_permissions(d.file(), std::fs::Permissions::from_mode(0o644)).unwrap();
    // A file that cannot be read by anyone: a directory where the file should be.
    let d = ConfigDir::new();
    std::fs::create_dir_all(d.file()).unwrap();
    let err = d.fails(&["config", "show"]).stderr;
    assert!(
        err.contains("cannot read") && err.contains("is a directory"),
        "{err}"
    );
    d.fails(&["config", "set", "llm.model", "x"]);
    // And one that is not UTF-8 text.
    let d = ConfigDir::new();
    d.write("");
    std::fs::write(d.file(), b"llm:\n  model: \xff\xfe\n").unwrap();
    let err = d.fails(&["config", "show"]).stderr;
    assert!(err.contains("UTF-8"), "{err}");
}

#[test]
fn read_only_config_file() {
    use std::os::unix::fs::PermissionsExt;
    let d = commented();
    std::fs::set_permissions(d.file(), std::fs::Permissions::from_mode(0o444)).unwrap();
    let err = errors(&d, &["config", "set", "llm.model", "gpt-4o"]);
    insta::assert_snapshot!(err);
    d.fails(&["config", "unset", "llm.model"]);
    // Reading still works.
    assert!(
        d.run(&["config", "get", "llm.model"])
            .ok()
            .contains("claude")
    );
}

#[test]
fn config_dir_that_is_a_file() {
    let d = ConfigDir::new();
    std::fs::write(d.dir(), "not a directory\n").unwrap();
    let before = std::fs::read(d.dir()).unwrap();
    for args in [
        &["config", "show"][..],
        &["config", "set", "llm.model", "x"],
        &["config", "unset", "llm.model"],
    ] {
        let run = d.fails(args);
        assert!(
            run.stderr.contains("is a file, not a directory"),
            "{}",
            run.transcript()
        );
    }
    insta::assert_snapshot!(errors(&d, &["config", "set", "llm.model", "x"]));
    // A file further up the path is found too.
    let mut c = d.vibectl();
    c.env("VIBECTL_CLIENT_CONFIG_DIR", d.dir().join("deeper"));
    let run = crate::support::cli::Run::of(c.args(["config", "set", "llm.model", "x"]), d.path());
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("[DIR]/client is a file"),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read(d.dir()).unwrap(), before);
}

#[test]
fn empty_file_means_all_defaults() {
    let none = ConfigDir::new();
    let defaults = none.run(&["config", "show"]).ok().to_owned();
    assert!(defaults.contains("model: claude-3.7-sonnet"));
    for text in ["", "\n", "   \n\n", "# just a comment\n", "---\n", "llm:\n"] {
        let d = ConfigDir::with(text);
        assert_eq!(d.run(&["config", "show"]).ok(), defaults, "file {text:?}");
        assert_eq!(d.bytes().unwrap(), text.as_bytes());
    }
    insta::assert_snapshot!(none.run(&["config", "show", "llm"]).ok());
}

#[test]
fn command_line_misuse_exits_2() {
    let d = commented();
    let before = d.bytes();
    for args in [
        &["config", "set", "llm.model"][..],
        &["config", "set", "llm..model", "x"],
        &["config", "show", "--format", "xml"],
        &["config", "frobnicate"],
    ] {
        let run = d.run(args);
        assert_eq!(run.code, 2, "{args:?}\n{}", run.transcript());
    }
    assert_eq!(d.bytes(), before);
}

#[test]
fn set_get_unset_show() {
    let d = ConfigDir::new();
    assert_eq!(
        d.run(&["config", "set", "display.theme", "dark"]).ok(),
        "set display.theme = dark\n"
    );
    assert_eq!(
        d.run(&["config", "set", "display.show_vibe", "off"]).ok(),
        "set display.show_vibe = false\n"
    );
    assert_eq!(
        d.run(&["config", "set", "plugins.precedence", "a, b"]).ok(),
        "set plugins.precedence = [\"a\",\"b\"]\n"
    );
    assert_eq!(
        d.run(&["config", "set", "llm.model", "no"]).ok(),
        "set llm.model = no\n"
    );
    assert_eq!(d.run(&["config", "get", "llm.model"]).ok(), "no\n");
    assert_eq!(d.run(&["config", "get", "display.theme"]).ok(), "dark\n");
    insta::assert_snapshot!("file_after_sets", d.text());
    insta::assert_snapshot!(
        "show_display_table",
        d.run(&["config", "show", "display", "--format", "table"])
            .ok()
    );
    assert_eq!(
        d.run(&["config", "unset", "display.theme"]).ok(),
        "unset display.theme\n"
    );
    assert_eq!(d.run(&["config", "get", "display.theme"]).ok(), "default\n");
    insta::assert_snapshot!(
        "info_display_theme",
        d.run(&["config", "info", "display.theme"]).ok()
    );
}

#[test]
fn secrets_are_redacted_and_the_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let d = ConfigDir::new();
    let out = d
        .run(&["config", "set", "providers.openai.key", "sk-secret"])
        .ok()
        .to_owned();
    assert_eq!(out, "set providers.openai.key = **REDACTED**\n");
    let mode = std::fs::metadata(d.file()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let shown = d
        .run(&["config", "show", "providers.openai"])
        .ok()
        .to_owned();
    assert!(shown.contains("**REDACTED**") && !shown.contains("sk-secret"));
    let get = d.run(&["config", "get", "providers.openai.key", "--show-secrets"]);
    assert_eq!(get.ok(), "sk-secret\n");
    // A file holding a secret that someone made readable is made private again on the next
    // set, even one that changes nothing.
    std::fs::set_permissions(d.file(), std::fs::Permissions::from_mode(0o644)).unwrap();
    d.run(&["config", "set", "providers.openai.key", "sk-secret"])
        .ok();
    let mode = std::fs::metadata(d.file()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn server_config_shares_the_toolkit() {
    let d = ConfigDir::with_sample("server-0.11.6/config.yaml");
    let err = d
        .fails_with(Bin::Server, &["config", "set", "server.port", "70000"])
        .stderr;
    assert!(err.contains("server.port"), "{err}");
    let err = d
        .fails_with(Bin::Server, &["config", "set", "server.hots", "0.0.0.0"])
        .stderr;
    assert!(err.contains("did you mean server.host"), "{err}");
    let run = d.run_server(&["config", "set", "server.port", "50052"]);
    assert_eq!(run.ok(), "set server.port = 50052\n");
    assert_eq!(
        d.run_server(&["config", "get", "server.port"]).ok(),
        "50052\n"
    );
    // Everything but that one value is as 0.11.6 wrote it.
    let original = std::fs::read_to_string(sample("server-0.11.6/config.yaml")).unwrap();
    let edited = d.text();
    let changed: Vec<_> = original
        .lines()
        .zip(edited.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert!(changed[0].1.trim_start().starts_with("port: 50052"));
}

#[test]
fn old_names_are_accepted_with_a_warning() {
    let d = ConfigDir::new();
    let run = d.run(&["config", "set", "theme", "dark"]);
    assert_eq!(run.ok(), "set display.theme = dark\n");
    assert!(
        run.stderr
            .contains("warning: theme is the old name of display.theme"),
        "{}",
        run.stderr
    );
    assert_eq!(d.text(), "display:\n  theme: dark\n");
    assert_eq!(d.run(&["config", "get", "theme"]).ok(), "dark\n");
    assert_eq!(
        d.run(&["config", "unset", "theme"]).ok(),
        "unset display.theme\n"
    );
    assert_eq!(d.text(), "");
}

#[test]
fn a_bad_environment_variable_names_itself() {
    let d = commented();
    let mut c = d.vibectl();
    c.env("VIBECTL_LLM_MAX_RETRIES", "99")
        .args(["config", "show", "llm"]);
    let run = crate::support::cli::Run::of(&mut c, d.path());
    assert_eq!(run.code, 1, "{}", run.transcript());
    insta::assert_snapshot!(run.stderr);
    // A good one wins over the file, and `config info` says where it came from.
    let mut c = d.vibectl();
    c.env("VIBECTL_LLM_MAX_RETRIES", "7")
        .args(["config", "info", "llm.max_retries"]);
    let run = crate::support::cli::Run::of(&mut c, d.path());
    let out = run.ok();
    let row = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(name).map(str::trim))
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(row("value "), "7", "{out}");
    assert_eq!(row("source "), "env VIBECTL_LLM_MAX_RETRIES", "{out}");
}
