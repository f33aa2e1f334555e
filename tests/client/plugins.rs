//! Prompt plugins in 0.11.6's file format: `plugin install|list|update|uninstall`, a bad file
//! refused naming the wrong field (and nothing written), and `plugins.precedence` deciding
//! whose prompt replaces the built-in one, seen in what the model receives, in direct mode and
//! through our server.

use serde_json::json;
use vibectl::config::generated::client::key;

use super::Client;
use super::scripted::{CHECK, done, in_both_modes, prompts_with};
use crate::support::yaml;

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// A plugin replacing the check prompt's task with `task`.
fn plugin(name: &str, version: &str, task: &str) -> serde_json::Value {
    json!({
        "plugin_metadata": {
            "name": name, "version": version, "description": format!("{name} demo"),
            "author": "tests", "compatible_vibectl_versions": ">=0.8.0,<1.0.0",
            "created_at": "2024-01-15T14:00:00Z"
        },
        "prompt_mappings": {
            "check_plan": {
                "description": "stricter checks",
                "task_description": task,
                "check_examples_data": [
                    ["", "is the registry reachable?",
                     {"action_type": "COMMAND", "commands": ["get", "pods", "-n", "registry"]}]
                ]
            }
        }
    })
}

fn write(client: &Client, file: &str, doc: &serde_json::Value) -> String {
    let path = client.path().join(file);
    std::fs::write(&path, doc.to_string()).expect("write the plugin");
    path.display().to_string()
}

fn installed(client: &Client) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(client.dir().join("plugins"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn install_list_update_uninstall() {
    let client = Client::with_pods();
    client.write("");
    let v1 = write(
        &client,
        "a1.json",
        &plugin("strict-check", "1.0.0", "TASK ONE"),
    );
    let out = client.run(&["plugin", "install", &v1]);
    out.assert_success();
    assert!(
        out.stderr
            .contains("installed strict-check 1.0.0 (1 prompt)"),
        "{out}"
    );
    assert_eq!(installed(&client), ["strict-check-1.0.0.json"]);

    let out = client.fails(&["plugin", "install", &v1]);
    assert!(out.stderr.contains("already installed"), "{out}");
    assert!(out.stderr.contains("vibectl plugin update"), "{out}");

    let out = client.run(&["plugin", "list"]);
    assert_eq!(
        out.assert_success().stdout,
        "strict-check 1.0.0  strict-check demo\n  check_plan\n"
    );

    let v2 = write(
        &client,
        "a2.json",
        &plugin("strict-check", "2.0.0", "TASK TWO"),
    );
    let out = client.run(&["plugin", "update", &v2]);
    assert!(
        out.assert_success()
            .stderr
            .contains("updated strict-check 2.0.0"),
        "{out}"
    );
    assert_eq!(installed(&client), ["strict-check-2.0.0.json"]);

    let other = write(&client, "o.json", &plugin("other", "1.0.0", "T"));
    let out = client.fails(&["plugin", "update", &other]);
    assert!(
        out.stderr.contains("no plugin named `other` is installed"),
        "{out}"
    );
    assert_eq!(installed(&client), ["strict-check-2.0.0.json"]);

    client
        .run(&["plugin", "uninstall", "strict-check"])
        .assert_success();
    assert!(installed(&client).is_empty());
    let out = client.fails(&["plugin", "uninstall", "strict-check"]);
    assert!(
        out.stderr.contains("no plugin named `strict-check`"),
        "{out}"
    );
}

#[test]
fn a_bad_plugin_file_is_refused_naming_the_field() {
    let client = Client::with_pods();
    client.write("");
    let mut doc = plugin("p", "1.0.0", "T");
    type Spoil = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: Vec<(&str, Spoil)> = vec![
        (
            "plugin_metadata.version",
            Box::new(|d| {
                d["plugin_metadata"]
                    .as_object_mut()
                    .unwrap()
                    .remove("version");
            }),
        ),
        (
            "plugin_metadata.name",
            Box::new(|d| d["plugin_metadata"]["name"] = json!("../x")),
        ),
        (
            "prompt_mappings.check_plan.task_description",
            Box::new(|d| d["prompt_mappings"]["check_plan"]["task_description"] = json!(7)),
        ),
        (
            "plugin_metadata.compatible_vibectl_versions",
            Box::new(|d| d["plugin_metadata"]["compatible_vibectl_versions"] = json!(">=1.0.0")),
        ),
        (
            "prompt_mappings",
            Box::new(|d| d["prompt_mappings"] = json!({})),
        ),
    ];
    for (field, spoil) in cases {
        spoil(&mut doc);
        let path = write(&client, "bad.json", &doc);
        let out = client.fails(&["plugin", "install", &path]);
        assert!(
            out.stderr
                .contains(&format!("not a valid plugin: {field}:")),
            "{field}: {out}"
        );
        assert!(
            out.stderr.contains(&format!("fix the field `{field}`")),
            "{out}"
        );
        assert!(installed(&client).is_empty(), "nothing written");
        doc = plugin("p", "1.0.0", "T");
    }
    // A file too large to be a plugin is refused before it is parsed.
    let path = client.path().join("huge.json");
    std::fs::write(&path, " ".repeat(300 * 1024)).expect("write");
    let out = client.fails(&["plugin", "install", &path.display().to_string()]);
    assert!(out.stderr.contains("larger than"), "{out}");
}

#[test]
fn precedence_decides_whose_prompt_the_model_gets() {
    let replies = [done(Some(0), "yes")];
    for (precedence, winner, loser) in [
        (None, "TASK FROM ALPHA", "TASK FROM BETA"),
        (Some("[beta]"), "TASK FROM BETA", "TASK FROM ALPHA"),
    ] {
        let extra = match precedence {
            Some(p) => format!(
                "memory:\n  enabled: false\n{}",
                yaml::config(&[(key::PLUGINS_PRECEDENCE, p)])
            ),
            None => "memory:\n  enabled: false\n".to_owned(),
        };
        in_both_modes(&[(CHECK, &replies)], &extra, |mode, client, mock| {
            for (name, task) in [("alpha", "TASK FROM ALPHA"), ("beta", "TASK FROM BETA")] {
                let f = write(
                    client,
                    &format!("{name}.json"),
                    &plugin(name, "1.0.0", task),
                );
                client.run(&["plugin", "install", &f]).assert_success();
            }
            let out = client.run(&["check", "the registry is up"]);
            assert_eq!(out.status.code(), Some(0), "{mode:?}\n{out}");
            let prompts = block_on(prompts_with(mock, CHECK));
            assert!(prompts[0].contains(winner), "{mode:?}: {}", prompts[0]);
            assert!(!prompts[0].contains(loser));
            // The plugin's examples replace the built-in ones too.
            assert!(prompts[0].contains("is the registry reachable?"));
            assert!(!prompts[0].contains("good mood"), "built-in examples gone");

            let listed = client
                .run(&["plugin", "list"])
                .assert_success()
                .stdout
                .clone();
            let loser_name = if winner.contains("ALPHA") {
                "beta"
            } else {
                "alpha"
            };
            assert!(
                listed.contains(&format!(
                    "{loser_name} 1.0.0  {loser_name} demo\n  check_plan (another plugin wins)"
                )),
                "{listed}"
            );
        });
    }
    // Without plugins the built-in prompt is sent.
    in_both_modes(
        &[(CHECK, &replies)],
        "memory:\n  enabled: false\n",
        |_, client, mock| {
            client.run(&["check", "x"]);
            let prompts = block_on(prompts_with(mock, CHECK));
            assert!(prompts[0].contains("good mood"), "{}", prompts[0]);
        },
    );
}

/// The order `plugin precedence list` prints.
fn order(client: &Client) -> String {
    client
        .run(&["plugin", "precedence", "list"])
        .assert_success()
        .stdout
        .clone()
}

#[test]
fn precedence_list_set_add_remove_edit_the_key_and_refuse_bad_names() {
    let client = Client::with_pods();
    client.write("# my settings\nplugins:\n  # the order I want\n  precedence: []\n");
    let out = client.run(&["plugin", "precedence", "list"]);
    assert_eq!(out.assert_success().stdout, "", "{out}");
    assert!(out.stderr.contains("no plugin precedence is set"), "{out}");
    for name in ["alpha", "beta", "gamma"] {
        let f = write(
            &client,
            &format!("{name}.json"),
            &plugin(name, "1.0.0", "T"),
        );
        client.run(&["plugin", "install", &f]).assert_success();
    }

    let out = client.run(&["plugin", "precedence", "set", "beta", "alpha"]);
    out.assert_success();
    assert!(
        out.stderr
            .contains("plugins.precedence is now:\n  1. beta\n  2. alpha\n"),
        "{out}"
    );
    assert_eq!(order(&client), "  1. beta\n  2. alpha\n");
    let text = client.text();
    assert!(
        text.contains("# my settings") && text.contains("# the order I want"),
        "comments kept: {text}"
    );
    // The order is the one the prompts are resolved by: beta's check prompt wins.
    let listed = client
        .run(&["plugin", "list"])
        .assert_success()
        .stdout
        .clone();
    assert!(
        listed.contains("alpha 1.0.0  alpha demo\n  check_plan (another plugin wins)"),
        "{listed}"
    );
    assert!(
        listed.contains("beta 1.0.0  beta demo\n  check_plan\n"),
        "{listed}"
    );

    // Unknown names and a name given twice are refused and change nothing.
    let out = client.fails(&["plugin", "precedence", "set", "beta", "nope", "zeta"]);
    assert!(
        out.stderr
            .contains("no plugin named `nope`, `zeta` is installed"),
        "{out}"
    );
    assert!(
        out.stderr
            .contains("installed plugins: `alpha`, `beta`, `gamma`"),
        "{out}"
    );
    let out = client.fails(&["plugin", "precedence", "set", "beta", "alpha", "beta"]);
    assert!(out.stderr.contains("`beta` is named twice"), "{out}");
    let out = client.run(&["plugin", "precedence", "set"]);
    assert_eq!(out.status.code(), Some(2), "PLUGINS are required\n{out}");
    let out = client.fails(&["plugin", "precedence", "add", "nope"]);
    assert!(out.stderr.contains("no plugin named `nope`"), "{out}");

    // add: at a 1-based position, moved when already listed, past the end means last.
    let out = client.run(&["plugin", "precedence", "add", "gamma", "--position", "1"]);
    out.assert_success();
    assert!(out.stderr.contains("  1. gamma  (new place)\n"), "{out}");
    assert_eq!(order(&client), "  1. gamma\n  2. beta\n  3. alpha\n");
    client
        .run(&["plugin", "precedence", "add", "gamma", "--position", "99"])
        .assert_success();
    assert_eq!(order(&client), "  1. beta\n  2. alpha\n  3. gamma\n");
    client
        .run(&["plugin", "precedence", "add", "beta", "--position", "2"])
        .assert_success();
    assert_eq!(order(&client), "  1. alpha\n  2. beta\n  3. gamma\n");
    let before = client.text();
    let out = client.run(&["plugin", "precedence", "add", "beta", "--position", "0"]);
    assert_eq!(out.status.code(), Some(2), "{out}");
    assert!(out.stderr.contains("--position"), "{out}");
    assert_eq!(client.text(), before);

    // remove: only a listed name.
    client
        .run(&["plugin", "precedence", "remove", "beta"])
        .assert_success();
    assert_eq!(order(&client), "  1. alpha\n  2. gamma\n");
    let out = client.fails(&["plugin", "precedence", "remove", "beta"]);
    assert!(
        out.stderr.contains("`beta` is not in plugins.precedence"),
        "{out}"
    );

    // Uninstalling a listed plugin takes it out of the order too.
    let out = client.run(&["plugin", "uninstall", "alpha"]);
    out.assert_success();
    assert!(
        out.stderr
            .contains("removed `alpha` from plugins.precedence"),
        "{out}"
    );
    assert_eq!(order(&client), "  1. gamma\n");
    let out = client.run(&["plugin", "precedence", "remove", "gamma"]);
    assert!(
        out.assert_success()
            .stderr
            .contains("plugins.precedence is now empty"),
        "{out}"
    );
    assert_eq!(order(&client), "");
    assert!(client.text().contains("# the order I want"));
}

#[test]
fn install_with_precedence_first_or_last_places_the_plugin() {
    let client = Client::with_pods();
    client.write("");
    for (name, place) in [("alpha", "last"), ("beta", "first"), ("gamma", "last")] {
        let f = write(
            &client,
            &format!("{name}.json"),
            &plugin(name, "1.0.0", "T"),
        );
        let out = client.run(&["plugin", "install", &f, "--precedence", place]);
        out.assert_success();
        assert!(
            out.stderr.contains(&format!("{name} is {place} (")),
            "{out}"
        );
    }
    assert_eq!(order(&client), "  1. beta\n  2. alpha\n  3. gamma\n");
    // Reinstalled with --force and --precedence first: moved, not listed twice.
    let f = write(&client, "gamma2.json", &plugin("gamma", "1.1.0", "T"));
    client
        .run(&["plugin", "install", &f, "--force", "--precedence", "first"])
        .assert_success();
    assert_eq!(order(&client), "  1. gamma\n  2. beta\n  3. alpha\n");
    // A refused install places nothing.
    let mut bad = plugin("delta", "1.0.0", "T");
    bad["plugin_metadata"]["name"] = json!("../delta");
    let f = write(&client, "delta.json", &bad);
    let out = client.fails(&["plugin", "install", &f, "--precedence", "first"]);
    assert!(out.stderr.contains("plugin_metadata.name"), "{out}");
    assert_eq!(order(&client), "  1. gamma\n  2. beta\n  3. alpha\n");
    let out = client.run(&["plugin", "install", &f, "--precedence", "middle"]);
    assert_eq!(out.status.code(), Some(2), "{out}");
    assert!(
        out.stderr.contains("first") && out.stderr.contains("last"),
        "{out}"
    );
}
