//! A hand-commented file through `config set` and `config unset`: every comment, blank line and
//! the key order survive, and setting a new key then unsetting it gives back the same bytes.

use crate::support::cli::ConfigDir;

const SAMPLE: &str = "valid/commented.yaml";

/// The comments of a YAML text (`# ...` at a line start or after a value), in order.
fn comments(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let t = l.trim_start();
            if t.starts_with('#') {
                return Some(t.to_owned());
            }
            // An inline comment: ` #` outside quotes (the sample has no `#` inside values).
            l.find(" #").map(|i| l[i..].trim().to_owned())
        })
        .collect()
}

#[test]
fn set_and_unset_keep_every_comment() {
    let d = ConfigDir::with_sample(SAMPLE);
    let original = d.text();
    let steps: &[&[&str]] = &[
        &["set", "display.theme", "dark"],
        &["set", "proxy.active", "staging"],
        &["set", "llm.max_retries", "5"],
        &[
            "set",
            "proxy.profiles.staging.security.audit_logging",
            "yes",
        ],
        &["set", "plugins.precedence", "[annotating-patch]"],
        &["set", "system.custom_instructions", "Be brief."],
        &["set", "warnings.warn_no_output", "false"],
        &[
            "set",
            "proxy.profiles.\"edge.eu\".server_url",
            "vibectl-server://edge.eu:443",
        ],
        &["unset", "llm.retry_delay_seconds"],
        &["unset", "memory.max_chars"],
        &["unset", "proxy.profiles.staging.retry_attempts"],
        &["unset", "live_display"],
    ];
    let mut log = String::new();
    for step in steps {
        let mut args = vec!["config"];
        args.extend_from_slice(step);
        log.push_str(d.run(&args).ok());
    }
    let edited = d.text();
    assert_eq!(
        comments(&edited),
        comments(&original),
        "a comment was lost or changed\n{edited}"
    );
    insta::assert_snapshot!("commands", log);
    insta::assert_snapshot!("edited", edited);
    // The edited file is valid and reads back what was set.
    assert_eq!(d.run(&["config", "get", "proxy.active"]).ok(), "staging\n");
    assert_eq!(d.run(&["config", "get", "memory.max_chars"]).ok(), "500\n");
    d.run(&["config", "validate"]).ok();
}

#[test]
fn set_then_unset_of_a_new_key_restores_the_bytes() {
    for (key, value) in [
        ("display.show_raw_output", "true"),
        ("features.intelligent_edit", "no"),
        ("proxy.profiles.staging.ca_bundle_path", "/etc/ssl/ca.pem"),
        ("proxy.profiles.dev.timeout_seconds", "9"),
        ("providers.ollama.base_url", "http://127.0.0.1:11434"),
    ] {
        let d = ConfigDir::with_sample(SAMPLE);
        let before = d.bytes();
        d.run(&["config", "set", key, value]).ok();
        assert_ne!(d.bytes(), before, "{key} was written");
        d.run(&["config", "unset", key]).ok();
        assert_eq!(d.bytes(), before, "set+unset of {key} left\n{}", d.text());
    }
}

#[test]
fn setting_a_key_to_its_current_value_changes_nothing() {
    use std::os::unix::fs::MetadataExt;
    let d = ConfigDir::with_sample(SAMPLE);
    let before = d.bytes();
    let inode = std::fs::metadata(d.file()).unwrap().ino();
    for (key, value) in [
        ("display.theme", "accessible"),
        ("llm.max_retries", "3"),
        ("proxy.timeout_seconds", "60"),
        (
            "proxy.profiles.staging.security.confirmation_mode",
            "per-session",
        ),
        ("networking.intermediate_port_range", "10000-11000"),
    ] {
        d.run(&["config", "set", key, value]).ok();
        assert_eq!(d.bytes(), before, "set {key} {value} changed the file");
    }
    // Not even rewritten with the same bytes.
    assert_eq!(std::fs::metadata(d.file()).unwrap().ino(), inode);
}

#[test]
fn a_file_of_only_comments_keeps_them() {
    let text = "# my vibectl settings\n\n# nothing yet\n";
    let d = ConfigDir::with(text);
    d.run(&["config", "set", "llm.model", "gpt-4o"]).ok();
    assert!(d.text().starts_with(text), "{}", d.text());
    d.run(&["config", "unset", "llm.model"]).ok();
    assert_eq!(d.text(), text);
}
